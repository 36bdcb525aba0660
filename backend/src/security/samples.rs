//! Fake but pattern-valid secrets, built at run time from a seed: the rule tests, the
//! e2e test's seeded tree and the benchmark corpus use them, and none is ever written in
//! this repository's files (so scanning the repository stays clean).

/// A small deterministic generator (xorshift64*): samples are the same for a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn from(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const WORD: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";

/// One sample per rule: (rule id, a line of text holding the secret, the secret).
pub fn all(seed: u64) -> Vec<(&'static str, String, String)> {
    let mut r = Rng::new(seed);
    let mut v: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |rule: &'static str, secret: String, line: &dyn Fn(&str) -> String| {
        let l = line(&secret);
        v.push((rule, l, secret));
    };
    add(
        "aws-access-key-id",
        format!("AKIA{}", r.from(UPPER32, 16)),
        &|s| format!("AWS_ACCESS_KEY_ID={s}"),
    );
    add("aws-secret-access-key", r.from(B64, 40), &|s| {
        format!("aws_secret_access_key = \"{s}\"")
    });
    add("gcp-api-key", format!("AIza{}", r.from(WORD, 35)), &|s| {
        format!("firebase_config = {{ apiKey: \"{s}\" }}")
    });
    add(
        "gcp-oauth-client-secret",
        format!("GOCSPX-{}", r.from(WORD, 28)),
        &|s| format!("client_secret: {s}"),
    );
    add(
        "azure-storage-account-key",
        format!("{}==", r.from(B64, 86)),
        &|s| {
            format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={s};EndpointSuffix=core.windows.net")
        },
    );
    add(
        "azure-ad-client-secret",
        format!("{}{}Q~{}", r.from(ALNUM, 3), r.below(10), r.from(ALNUM, 34)),
        &|s| format!("AZURE_CLIENT_SECRET='{s}'"),
    );
    add(
        "alibaba-access-key-id",
        format!("LTAI{}", r.from(ALNUM, 20)),
        &|s| format!("alicloud_access_key = {s}"),
    );
    add(
        "digitalocean-token",
        format!("dop_v1_{}", r.from(HEX, 64)),
        &|s| format!("DIGITALOCEAN_TOKEN={s}"),
    );
    add(
        "heroku-api-key",
        format!(
            "{}-{}-{}-{}-{}",
            r.from(HEX, 8),
            r.from(HEX, 4),
            r.from(HEX, 4),
            r.from(HEX, 4),
            r.from(HEX, 12)
        ),
        &|s| format!("HEROKU_API_KEY={s}"),
    );
    add("flyio-token", format!("fo1_{}", r.from(WORD, 43)), &|s| {
        format!("FLY_API_TOKEN={s}")
    });
    add("cloudflare-api-token", r.from(ALNUM, 40), &|s| {
        format!("CLOUDFLARE_API_TOKEN=\"{s}\"")
    });
    add(
        "hashicorp-vault-token",
        format!("hvs.{}", r.from(WORD, 95)),
        &|s| format!("VAULT_TOKEN={s}"),
    );
    add(
        "terraform-cloud-token",
        format!(
            "{}.atlasv1.{}",
            r.from(LOWER_ALNUM, 14),
            r.from(LOWER_ALNUM, 67)
        ),
        &|s| format!("token = \"{s}\""),
    );
    add(
        "databricks-token",
        format!("dapi{}", r.from(HEX, 32)),
        &|s| format!("DATABRICKS_TOKEN={s}"),
    );
    add(
        "planetscale-token",
        format!("pscale_tkn_{}", r.from(ALNUM, 43)),
        &|s| format!("PLANETSCALE_SERVICE_TOKEN={s}"),
    );
    add("supabase-token", format!("sbp_{}", r.from(HEX, 40)), &|s| {
        format!("SUPABASE_ACCESS_TOKEN={s}")
    });
    add("github-pat", format!("ghp_{}", r.from(ALNUM, 36)), &|s| {
        format!("export GITHUB_TOKEN={s}")
    });
    add(
        "github-fine-grained-pat",
        format!("github_pat_{}", r.from(ALNUM, 82)),
        &|s| format!("gh_token: {s}"),
    );
    add("github-oauth", format!("gho_{}", r.from(ALNUM, 36)), &|s| {
        format!("oauth = \"{s}\"")
    });
    add(
        "github-app-token",
        format!("ghs_{}", r.from(ALNUM, 36)),
        &|s| format!("installation_token={s}"),
    );
    add(
        "github-refresh-token",
        format!("ghr_{}", r.from(ALNUM, 36)),
        &|s| format!("refresh={s}"),
    );
    add("gitlab-pat", format!("glpat-{}", r.from(ALNUM, 20)), &|s| {
        format!("GITLAB_TOKEN={s}")
    });
    add(
        "gitlab-deploy-token",
        format!("gldt-{}", r.from(ALNUM, 20)),
        &|s| format!("deploy: {s}"),
    );
    add(
        "gitlab-pipeline-trigger",
        format!("glptt-{}", r.from(HEX, 40)),
        &|s| format!("curl -F token={s} https://gitlab.example/api"),
    );
    add(
        "gitlab-runner-token",
        format!("glrt-{}", r.from(ALNUM, 20)),
        &|s| format!("runner_token = \"{s}\""),
    );
    add("bitbucket-client-secret", r.from(ALNUM, 64), &|s| {
        format!("BITBUCKET_CLIENT_SECRET={s}")
    });
    add("npm-token", format!("npm_{}", r.from(ALNUM, 36)), &|s| {
        format!("//registry.npmjs.org/:_authToken={s}")
    });
    add(
        "pypi-token",
        format!("pypi-AgEIcHlwaS5vcmc{}", r.from(WORD, 70)),
        &|s| format!("password = {s}"),
    );
    add(
        "rubygems-token",
        format!("rubygems_{}", r.from(HEX, 48)),
        &|s| format!("GEM_HOST_API_KEY={s}"),
    );
    add(
        "docker-hub-pat",
        format!("dckr_pat_{}", r.from(ALNUM, 27)),
        &|s| format!("docker login -p {s}"),
    );
    add(
        "nuget-api-key",
        format!("oy2{}", r.from(LOWER_ALNUM, 43)),
        &|s| format!("nuget push -k {s}"),
    );
    add("sonar-token", format!("sqp_{}", r.from(HEX, 40)), &|s| {
        format!("SONAR_TOKEN={s}")
    });
    add(
        "slack-bot-token",
        format!(
            "xoxb-{}-{}-{}",
            r.from("0123456789", 12),
            r.from("0123456789", 13),
            r.from(ALNUM, 24)
        ),
        &|s| format!("SLACK_BOT_TOKEN={s}"),
    );
    add(
        "slack-user-token",
        format!(
            "xoxp-{}-{}-{}-{}",
            r.from("0123456789", 12),
            r.from("0123456789", 12),
            r.from("0123456789", 13),
            r.from(HEX, 32)
        ),
        &|s| format!("slack = '{s}'"),
    );
    add(
        "slack-app-token",
        format!(
            "xapp-1-A{}-{}-{}",
            r.from(UPPER32, 10),
            r.from("0123456789", 13),
            r.from(HEX, 64)
        ),
        &|s| format!("SLACK_APP_TOKEN={s}"),
    );
    add(
        "slack-config-token",
        format!(
            "xoxe.xoxp-1-{}",
            r.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 160)
        ),
        &|s| format!("cfg={s}"),
    );
    add(
        "slack-webhook",
        format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            r.from(UPPER32, 8),
            r.from(UPPER32, 10),
            r.from(ALNUM, 24)
        ),
        &|s| format!("webhook_url: \"{s}\""),
    );
    add(
        "discord-webhook",
        format!(
            "https://discord.com/api/webhooks/{}/{}",
            r.from("0123456789", 18),
            r.from(WORD, 68)
        ),
        &|s| format!("DISCORD_WEBHOOK={s}"),
    );
    add(
        "discord-bot-token",
        format!(
            "M{}.{}.{}",
            r.from(ALNUM, 24),
            r.from(ALNUM, 6),
            r.from(ALNUM, 27)
        ),
        &|s| format!("DISCORD_BOT_TOKEN=\"{s}\""),
    );
    add(
        "telegram-bot-token",
        format!(
            "{}:AA{}",
            1_000_000_000 + r.below(999_999_999) as u64,
            r.from(ALNUM, 33)
        ),
        &|s| format!("TELEGRAM_BOT_TOKEN={s}"),
    );
    add("twilio-api-key", format!("SK{}", r.from(HEX, 32)), &|s| {
        format!("twilio_key_sid = \"{s}\"")
    });
    add(
        "sendgrid-api-key",
        format!("SG.{}.{}", r.from(WORD, 22), r.from(WORD, 43)),
        &|s| format!("SENDGRID_API_KEY={s}"),
    );
    add(
        "mailgun-api-key",
        format!("key-{}", r.from(HEX, 32)),
        &|s| format!("MAILGUN_API_KEY={s}"),
    );
    add(
        "mailchimp-api-key",
        format!("{}-us{}", r.from(HEX, 32), 1 + r.below(20)),
        &|s| format!("mailchimp: {s}"),
    );
    add(
        "postmark-token",
        format!(
            "{}-{}-{}-{}-{}",
            r.from(HEX, 8),
            r.from(HEX, 4),
            r.from(HEX, 4),
            r.from(HEX, 4),
            r.from(HEX, 12)
        ),
        &|s| format!("POSTMARK_SERVER_TOKEN={s}"),
    );
    add(
        "stripe-secret-key",
        format!("sk_live_{}", r.from(ALNUM, 32)),
        &|s| format!("Stripe.api_key = \"{s}\""),
    );
    add(
        "stripe-webhook-secret",
        format!("whsec_{}", r.from(ALNUM, 32)),
        &|s| format!("STRIPE_WEBHOOK_SECRET={s}"),
    );
    add(
        "square-token",
        format!("sq0atp-{}", r.from(WORD, 22)),
        &|s| format!("SQUARE_ACCESS_TOKEN={s}"),
    );
    add(
        "paypal-braintree-token",
        format!(
            "access_token$production${}${}",
            r.from(LOWER_ALNUM, 16),
            r.from(HEX, 32)
        ),
        &|s| format!("BRAINTREE={s}"),
    );
    add(
        "shopify-token",
        format!("shpat_{}", r.from(HEX, 32)),
        &|s| format!("SHOPIFY_ACCESS_TOKEN={s}"),
    );
    add(
        "openai-api-key",
        format!("sk-proj-{}T3BlbkFJ{}", r.from(ALNUM, 64), r.from(ALNUM, 64)),
        &|s| format!("OPENAI_API_KEY={s}"),
    );
    add(
        "anthropic-api-key",
        format!("sk-ant-api03-{}AA", r.from(WORD, 93)),
        &|s| format!("ANTHROPIC_API_KEY={s}"),
    );
    add(
        "huggingface-token",
        format!(
            "hf_{}",
            r.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
        ),
        &|s| format!("HF_TOKEN={s}"),
    );
    add("cohere-api-key", r.from(ALNUM, 40), &|s| {
        format!("COHERE_API_KEY={s}")
    });
    add(
        "atlassian-api-token",
        format!("ATATT3{}", r.from(ALNUM, 186)),
        &|s| format!("JIRA_TOKEN={s}"),
    );
    add(
        "linear-api-key",
        format!("lin_api_{}", r.from(ALNUM, 40)),
        &|s| format!("LINEAR_API_KEY={s}"),
    );
    add(
        "grafana-token",
        format!("glsa_{}_{}", r.from(ALNUM, 32), r.from(HEX, 8)),
        &|s| format!("GRAFANA_SA_TOKEN={s}"),
    );
    add(
        "sentry-token",
        format!("sntryu_{}", r.from(HEX, 64)),
        &|s| format!("SENTRY_AUTH_TOKEN={s}"),
    );
    add(
        "new-relic-key",
        format!(
            "NRAK-{}",
            r.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 27)
        ),
        &|s| format!("NEW_RELIC_API_KEY={s}"),
    );
    add("datadog-api-key", r.from(HEX, 32), &|s| {
        format!("DD_API_KEY={s}")
    });
    add(
        "doppler-token",
        format!("dp.pt.{}", r.from(ALNUM, 43)),
        &|s| format!("DOPPLER_TOKEN={s}"),
    );
    add(
        "postman-api-key",
        format!("PMAK-{}-{}", r.from(HEX, 24), r.from(HEX, 34)),
        &|s| format!("POSTMAN_API_KEY={s}"),
    );
    add("pulumi-token", format!("pul-{}", r.from(HEX, 40)), &|s| {
        format!("PULUMI_ACCESS_TOKEN={s}")
    });
    add("dropbox-token", format!("sl.{}", r.from(WORD, 138)), &|s| {
        format!("DROPBOX_TOKEN={s}")
    });
    add(
        "twitter-bearer-token",
        format!("{}{}", "A".repeat(22), r.from(ALNUM, 90)),
        &|s| format!("TWITTER_BEARER_TOKEN={s}"),
    );
    add(
        "facebook-access-token",
        format!("EAACEdEose0cBA{}", r.from(ALNUM, 60)),
        &|s| format!("FB_ACCESS_TOKEN={s}"),
    );
    add("okta-api-token", format!("00{}", r.from(ALNUM, 40)), &|s| {
        format!("OKTA_API_TOKEN={s}")
    });
    add(
        "age-secret-key",
        format!("AGE-SECRET-KEY-1{}", r.from(BECH32, 58)),
        &|s| format!("# key: {s}"),
    );
    add(
        "echopilot-api-key",
        format!("ep_{}", r.from(HEX, 64)),
        &|s| format!("ECHOPILOT_KEY={s}"),
    );
    let body: Vec<String> = (0..6).map(|_| r.from(B64, 64)).collect();
    add(
        "private-key",
        format!(
            "{}{}{}\n{}\n{}{}{}",
            "-----BEGIN ",
            "RSA PRIVATE",
            " KEY-----",
            body.join("\n"),
            "-----END ",
            "RSA PRIVATE",
            " KEY-----"
        ),
        &|s| s.to_string(),
    );
    let jwt = format!(
        "eyJ{}.eyJ{}.{}",
        r.from(WORD, 33),
        r.from(WORD, 60),
        r.from(WORD, 43)
    );
    add("jwt", jwt, &|s| format!("Authorization: Bearer {s}"));
    add("url-credentials", r.from(ALNUM, 20), &|s| {
        format!("DATABASE_URL=postgres://app:{s}@db.internal:5432/app")
    });
    add(
        "generic-api-key",
        format!("{}{}", r.from(ALNUM, 20), r.below(10)),
        &|s| format!("internal_service_secret = \"{s}\""),
    );
    v
}

/// One seeded secret of a corpus.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Seeded {
    pub file: String,
    pub line: u64,
    pub rule: String,
}

const NOISE: &[&str] = &[
    "fn handle(req: Request) -> Result<Response, Error> {",
    "    let items = store.list(tenant, limit).await?;",
    "    for item in items.iter().filter(|i| i.enabled) {",
    "        total += item.amount_cents;",
    "    }",
    "}",
    "// Retry with backoff: the upstream answers 503 while it restarts.",
    "timeout_secs = 30",
    "api_url = \"https://api.example.com/v1/orders\"",
    "log_level: info",
    "import os, sys, json",
    "def load(path):",
    "    with open(path) as f:",
    "        return json.load(f)",
    "const config = { retries: 3, region: 'eu-west-1' };",
    "export function sum(a, b) { return a + b; }",
    "SELECT id, name FROM customers WHERE tenant_id = $1 ORDER BY id;",
    "    \"version\": \"1.4.2\",",
    "key_prefix = \"orders/\"",
    "password_min_length = 12",
    "token_ttl_secs = 3600",
    "# The cache is warmed at start-up; see docs/CACHE.md.",
    "",
];

/// Write a corpus of about `bytes` bytes of source-like files under `dir`, with one
/// sample secret of every rule per `secrets_every` lines; returns where each secret is.
pub fn write_corpus(
    dir: &std::path::Path,
    bytes: u64,
    secrets_every: usize,
    seed: u64,
) -> std::io::Result<Vec<Seeded>> {
    let mut r = Rng::new(seed);
    let exts = ["rs", "py", "js", "yaml", "env", "toml", "md", "ts"];
    let mut seeded = Vec::new();
    let mut written = 0u64;
    let mut file_no = 0;
    let mut samples = all(seed).into_iter().cycle();
    let mut round = 0u64;
    while written < bytes {
        let sub = format!("pkg{:03}", file_no / 50);
        std::fs::create_dir_all(dir.join(&sub))?;
        let rel = format!("{sub}/file{file_no:05}.{}", exts[file_no % exts.len()]);
        let mut text = String::new();
        let mut line = 1u64;
        // Files of 200-1200 lines, like source files.
        let lines = 200 + r.below(1000);
        for i in 0..lines {
            if i % secrets_every == secrets_every / 2 {
                let (rule, sample, _) = samples.next().expect("cycle");
                round += 1;
                // A fresh secret each time (the same rule's shape, other random bytes).
                let (_, fresh, _) = all(seed ^ round.wrapping_mul(0x9E37))
                    .into_iter()
                    .find(|s| s.0 == rule)
                    .unwrap_or((rule, sample, String::new()));
                seeded.push(Seeded {
                    file: rel.clone(),
                    line,
                    rule: rule.to_string(),
                });
                line += fresh.matches('\n').count() as u64 + 1;
                text.push_str(&fresh);
                text.push('\n');
            } else {
                text.push_str(NOISE[r.below(NOISE.len())]);
                text.push('\n');
                line += 1;
            }
        }
        written += text.len() as u64;
        std::fs::write(dir.join(&rel), text)?;
        file_no += 1;
    }
    Ok(seeded)
}
