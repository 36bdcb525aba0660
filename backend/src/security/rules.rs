//! Secret rules and the detector that runs them.
//!
//! Matching works as gitleaks does: every rule's keywords go into one Aho-Corasick
//! automaton (ASCII case-insensitive); a rule's regex runs on a file only when one of its
//! keywords occurs in it. The secret is the rule's secret group, kept only when its
//! Shannon entropy reaches the rule's threshold and no allowlist entry covers it.
//!
//! Regexes are `regex::bytes` with `unicode(false)`: `\w`, `\s` and `\d` are ASCII (as
//! Go's are), files need not be UTF-8, and the compiled size of the wide rules stays far
//! below the default limit (Unicode `\w` under large repeats passes it).
//!
//! The rules are written for this project (not copied from gitleaks' file); they cover the
//! same families: cloud providers, code hosts, chat, payments, AI APIs, package
//! registries, SaaS tokens, private keys, JWTs and generic high-entropy assignments.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::model::Severity;

/// One secret rule.
pub struct RuleDef {
    pub id: &'static str,
    pub description: &'static str,
    /// Lower-case keywords; the regex runs only when one occurs (empty: always runs).
    pub keywords: &'static [&'static str],
    pub regex: &'static str,
    /// Capture group holding the secret (0: the whole match).
    pub group: usize,
    /// Minimum Shannon entropy (bits per byte) of the secret; 0: none.
    pub entropy: f64,
    pub severity: Severity,
}

const fn rule(
    id: &'static str,
    description: &'static str,
    keywords: &'static [&'static str],
    regex: &'static str,
    group: usize,
    entropy: f64,
    severity: Severity,
) -> RuleDef {
    RuleDef {
        id,
        description,
        keywords,
        regex,
        group,
        entropy,
        severity,
    }
}

use Severity::{Critical, High, Medium};

macro_rules! tok {
    ($body:expr) => {
        concat!(r"(?:^|[^A-Za-z0-9_\-])(", $body, r")(?:[^A-Za-z0-9_\-]|$)")
    };
}

/// The rule set.
pub static RULES: &[RuleDef] = &[
    // --- cloud providers
    rule(
        "aws-access-key-id",
        "AWS access key id",
        &["akia", "asia", "abia", "acca", "a3t"],
        tok!(r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"),
        1,
        3.0,
        High,
    ),
    rule(
        "aws-secret-access-key",
        "AWS secret access key in an assignment",
        &["aws"],
        r#"(?i)aws[\w.\-]{0,20}(?:secret|private)[\w.\-]{0,20}[\s"':=>]{1,6}["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        1,
        3.5,
        Critical,
    ),
    rule(
        "gcp-api-key",
        "Google Cloud / Firebase API key",
        &["aiza"],
        tok!(r"AIza[\w\-]{35}"),
        1,
        3.0,
        High,
    ),
    rule(
        "gcp-oauth-client-secret",
        "Google OAuth client secret",
        &["gocspx-"],
        tok!(r"GOCSPX-[\w\-]{28}"),
        1,
        3.0,
        High,
    ),
    rule(
        "azure-storage-account-key",
        "Azure storage account key",
        &["accountkey"],
        r#"(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)"#,
        1,
        4.0,
        Critical,
    ),
    rule(
        "azure-ad-client-secret",
        "Azure AD client secret",
        &["q~"],
        r#"(?:^|[\s'"`=:(,])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)"#,
        1,
        3.0,
        High,
    ),
    rule(
        "alibaba-access-key-id",
        "Alibaba Cloud access key id",
        &["ltai"],
        tok!(r"LTAI[A-Za-z0-9]{20}"),
        1,
        3.0,
        High,
    ),
    rule(
        "digitalocean-token",
        "DigitalOcean personal access / OAuth token",
        &["dop_v1_", "doo_v1_", "dor_v1_"],
        tok!(r"do[opr]_v1_[a-f0-9]{64}"),
        1,
        3.0,
        High,
    ),
    rule(
        "heroku-api-key",
        "Heroku API key",
        &["heroku"],
        r#"(?i)heroku[\w.\-]{0,20}[\s"':=>]{1,6}["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"#,
        1,
        3.0,
        High,
    ),
    rule(
        "flyio-token",
        "Fly.io access token",
        &["fo1_", "fm2_"],
        tok!(r"(?:fo1_[\w\-]{43}|fm2_[A-Za-z0-9+/]{100,}={0,3})"),
        1,
        4.0,
        High,
    ),
    rule(
        "cloudflare-api-token",
        "Cloudflare API token / key in an assignment",
        &["cloudflare", "cf_api"],
        r#"(?i)(?:cloudflare|cf_api)[\w.\-]{0,20}[\s"':=>]{1,6}["']?([A-Za-z0-9_\-]{40}|[a-f0-9]{37})(?:[^A-Za-z0-9_\-]|$)"#,
        1,
        3.5,
        High,
    ),
    rule(
        "hashicorp-vault-token",
        "HashiCorp Vault service / batch token",
        &["hvs.", "hvb."],
        tok!(r"hv[sb]\.[\w\-]{90,120}"),
        1,
        3.5,
        Critical,
    ),
    rule(
        "terraform-cloud-token",
        "Terraform Cloud / Enterprise API token",
        &[".atlasv1."],
        tok!(r"[a-z0-9]{14}\.atlasv1\.[a-z0-9_=\-]{60,70}"),
        1,
        3.5,
        High,
    ),
    rule(
        "databricks-token",
        "Databricks API token",
        &["dapi"],
        tok!(r"dapi[a-f0-9]{32}(?:-\d)?"),
        1,
        3.0,
        High,
    ),
    rule(
        "planetscale-token",
        "PlanetScale password / token",
        &["pscale_"],
        tok!(r"pscale_(?:pw|tkn|oauth)_[\w.\-]{32,64}"),
        1,
        3.0,
        High,
    ),
    rule(
        "supabase-token",
        "Supabase personal access token",
        &["sbp_"],
        tok!(r"sbp_[a-f0-9]{40}"),
        1,
        3.0,
        High,
    ),
    // --- code hosts and CI
    rule(
        "github-pat",
        "GitHub personal access token (classic)",
        &["ghp_"],
        tok!(r"ghp_[A-Za-z0-9]{36}"),
        1,
        3.0,
        High,
    ),
    rule(
        "github-fine-grained-pat",
        "GitHub fine-grained personal access token",
        &["github_pat_"],
        tok!(r"github_pat_\w{82}"),
        1,
        3.0,
        High,
    ),
    rule(
        "github-oauth",
        "GitHub OAuth access token",
        &["gho_"],
        tok!(r"gho_[A-Za-z0-9]{36}"),
        1,
        3.0,
        High,
    ),
    rule(
        "github-app-token",
        "GitHub app user-to-server / server-to-server token",
        &["ghu_", "ghs_"],
        tok!(r"gh[us]_[A-Za-z0-9]{36}"),
        1,
        3.0,
        High,
    ),
    rule(
        "github-refresh-token",
        "GitHub refresh token",
        &["ghr_"],
        tok!(r"ghr_[A-Za-z0-9]{36}"),
        1,
        3.0,
        High,
    ),
    rule(
        "gitlab-pat",
        "GitLab personal / project / group access token",
        &["glpat-"],
        tok!(r"glpat-[\w\-]{20}"),
        1,
        3.0,
        High,
    ),
    rule(
        "gitlab-deploy-token",
        "GitLab deploy token",
        &["gldt-"],
        tok!(r"gldt-[\w\-]{20}"),
        1,
        3.0,
        High,
    ),
    rule(
        "gitlab-pipeline-trigger",
        "GitLab pipeline trigger token",
        &["glptt-"],
        tok!(r"glptt-[a-f0-9]{40}"),
        1,
        3.0,
        High,
    ),
    rule(
        "gitlab-runner-token",
        "GitLab runner registration / authentication token",
        &["gr1348941", "glrt-"],
        tok!(r"(?:GR1348941[\w\-]{20}|glrt-[\w\-]{20})"),
        1,
        3.0,
        High,
    ),
    rule(
        "bitbucket-client-secret",
        "Bitbucket client secret",
        &["bitbucket"],
        r#"(?i)bitbucket[\w.\-]{0,20}secret[\w.\-]{0,20}[\s"':=>]{1,6}["']?([\w=\-]{64})(?:[^\w=\-]|$)"#,
        1,
        3.5,
        High,
    ),
    rule(
        "npm-token",
        "npm access token",
        &["npm_"],
        tok!(r"npm_[A-Za-z0-9]{36}"),
        1,
        3.0,
        High,
    ),
    rule(
        "pypi-token",
        "PyPI upload token",
        &["pypi-ageichlwas5vcmc"],
        tok!(r"pypi-AgEIcHlwaS5vcmc[\w\-]{50,1000}"),
        1,
        3.0,
        High,
    ),
    rule(
        "rubygems-token",
        "RubyGems API key",
        &["rubygems_"],
        tok!(r"rubygems_[a-f0-9]{48}"),
        1,
        3.0,
        High,
    ),
    rule(
        "docker-hub-pat",
        "Docker Hub personal access token",
        &["dckr_pat_"],
        tok!(r"dckr_pat_[\w\-]{27}"),
        1,
        3.0,
        High,
    ),
    rule(
        "nuget-api-key",
        "NuGet API key",
        &["oy2"],
        tok!(r"oy2[a-z0-9]{43}"),
        1,
        3.5,
        High,
    ),
    rule(
        "sonar-token",
        "SonarQube / SonarCloud token",
        &["sqp_", "squ_", "sqa_"],
        tok!(r"sq[pua]_[a-f0-9]{40}"),
        1,
        3.0,
        High,
    ),
    // --- chat and messaging
    rule(
        "slack-bot-token",
        "Slack bot token",
        &["xoxb-"],
        tok!(r"xoxb-\d{10,13}-\d{10,13}[A-Za-z0-9\-]*"),
        1,
        3.0,
        High,
    ),
    rule(
        "slack-user-token",
        "Slack user / legacy token",
        &["xoxp-", "xoxa-", "xoxo-", "xoxr-", "xoxs-"],
        tok!(r"xox[paors]-(?:\d+-){2,3}[A-Za-z0-9]{20,}"),
        1,
        3.0,
        High,
    ),
    rule(
        "slack-app-token",
        "Slack app-level token",
        &["xapp-"],
        tok!(r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"),
        1,
        3.0,
        High,
    ),
    rule(
        "slack-config-token",
        "Slack configuration token",
        &["xoxe"],
        tok!(r"xoxe(?:\.xox[bp])?-\d-[A-Z0-9]{146,170}"),
        1,
        3.0,
        High,
    ),
    rule(
        "slack-webhook",
        "Slack incoming webhook URL",
        &["hooks.slack.com"],
        r#"(https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56})"#,
        1,
        3.0,
        High,
    ),
    rule(
        "discord-webhook",
        "Discord webhook URL",
        &["discord.com/api/webhooks", "discordapp.com/api/webhooks"],
        r#"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w\-]{60,70})"#,
        1,
        3.0,
        High,
    ),
    rule(
        "discord-bot-token",
        "Discord bot token in an assignment",
        &["discord"],
        r#"(?i)discord[\w.\-]{0,20}(?:token|secret|key)[\w.\-]{0,10}[\s"':=>]{1,6}["']?([MNO][A-Za-z\d_\-]{23,25}\.[\w\-]{6}\.[\w\-]{27,38})"#,
        1,
        3.5,
        High,
    ),
    rule(
        "telegram-bot-token",
        "Telegram bot API token",
        &[":aa"],
        tok!(r"\d{8,10}:AA[\w\-]{33}"),
        1,
        3.0,
        High,
    ),
    rule(
        "twilio-api-key",
        "Twilio API key SID",
        &["sk"],
        tok!(r"SK[0-9a-fA-F]{32}"),
        1,
        3.0,
        Medium,
    ),
    rule(
        "sendgrid-api-key",
        "SendGrid API key",
        &["sg."],
        tok!(r"SG\.[\w\-]{22}\.[\w\-]{43}"),
        1,
        3.0,
        High,
    ),
    rule(
        "mailgun-api-key",
        "Mailgun private API key",
        &["key-"],
        r#"(?i)mailgun[\w.\-]{0,30}[\s"':=>]{1,6}["']?(key-[a-f0-9]{32})"#,
        1,
        3.0,
        High,
    ),
    rule(
        "mailchimp-api-key",
        "Mailchimp API key",
        &["-us"],
        tok!(r"[0-9a-f]{32}-us\d{1,2}"),
        1,
        3.0,
        High,
    ),
    rule(
        "postmark-token",
        "Postmark server token in an assignment",
        &["postmark"],
        r#"(?i)postmark[\w.\-]{0,20}[\s"':=>]{1,6}["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"#,
        1,
        3.0,
        High,
    ),
    // --- payments and commerce
    rule(
        "stripe-secret-key",
        "Stripe secret / restricted key",
        &["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
        tok!(r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}"),
        1,
        3.0,
        Critical,
    ),
    rule(
        "stripe-webhook-secret",
        "Stripe webhook signing secret",
        &["whsec_"],
        tok!(r"whsec_[A-Za-z0-9]{32,64}"),
        1,
        3.0,
        High,
    ),
    rule(
        "square-token",
        "Square access token / OAuth secret",
        &["sq0atp-", "sq0csp-", "eaaa"],
        tok!(r"(?:sq0atp-[\w\-]{22}|sq0csp-[\w\-]{43}|EAAA[\w\-+=]{60})"),
        1,
        3.0,
        High,
    ),
    rule(
        "paypal-braintree-token",
        "PayPal / Braintree access token",
        &["access_token$production$"],
        r#"(access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32})"#,
        1,
        3.0,
        Critical,
    ),
    rule(
        "shopify-token",
        "Shopify access / custom app / private app token or shared secret",
        &["shpat_", "shpca_", "shppa_", "shpss_"],
        tok!(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
        1,
        3.0,
        High,
    ),
    // --- AI APIs
    rule(
        "openai-api-key",
        "OpenAI API key",
        &["sk-", "t3blbkfj"],
        tok!(
            r"sk-(?:(?:proj|svcacct|admin)-[\w\-]{58,74}T3BlbkFJ[\w\-]{58,74}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"
        ),
        1,
        3.0,
        Critical,
    ),
    rule(
        "anthropic-api-key",
        "Anthropic API key",
        &["sk-ant-"],
        tok!(r"sk-ant-(?:api03|admin01)-[\w\-]{93}AA"),
        1,
        3.0,
        Critical,
    ),
    rule(
        "huggingface-token",
        "Hugging Face access token",
        &["hf_"],
        tok!(r"hf_[A-Za-z]{34}"),
        1,
        3.0,
        High,
    ),
    rule(
        "cohere-api-key",
        "Cohere API key in an assignment",
        &["cohere", "co_api_key"],
        r#"(?i)(?:cohere|co_api_key)[\w.\-]{0,20}[\s"':=>]{1,6}["']?([A-Za-z0-9]{40})(?:[^A-Za-z0-9]|$)"#,
        1,
        4.0,
        High,
    ),
    // --- SaaS and observability
    rule(
        "atlassian-api-token",
        "Atlassian API token",
        &["atatt3"],
        tok!(r"ATATT3[A-Za-z0-9_\-=]{186}"),
        1,
        3.5,
        High,
    ),
    rule(
        "linear-api-key",
        "Linear API key",
        &["lin_api_"],
        tok!(r"lin_api_[A-Za-z0-9]{40}"),
        1,
        3.0,
        High,
    ),
    rule(
        "grafana-token",
        "Grafana cloud / service account token",
        &["glc_", "glsa_"],
        tok!(r"(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})"),
        1,
        3.0,
        High,
    ),
    rule(
        "sentry-token",
        "Sentry organisation / user auth token",
        &["sntrys_", "sntryu_"],
        tok!(r"(?:sntrys_eyJ[A-Za-z0-9+/=_\-]{80,}|sntryu_[a-f0-9]{64})"),
        1,
        3.0,
        High,
    ),
    rule(
        "new-relic-key",
        "New Relic user / ingest key",
        &["nrak-", "nrii-"],
        tok!(r"NR(?:AK|II)-[A-Z0-9]{27}"),
        1,
        3.0,
        High,
    ),
    rule(
        "datadog-api-key",
        "Datadog API / application key in an assignment",
        &["datadog", "dd_api", "dd_app"],
        r#"(?i)(?:datadog|dd_api|dd_app)[\w.\-]{0,20}[\s"':=>]{1,6}["']?([a-f0-9]{32}|[a-f0-9]{40})(?:[^a-f0-9]|$)"#,
        1,
        3.0,
        High,
    ),
    rule(
        "doppler-token",
        "Doppler API token",
        &["dp.pt."],
        tok!(r"dp\.pt\.[a-zA-Z0-9]{43}"),
        1,
        3.0,
        High,
    ),
    rule(
        "postman-api-key",
        "Postman API key",
        &["pmak-"],
        tok!(r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
        1,
        3.0,
        High,
    ),
    rule(
        "pulumi-token",
        "Pulumi access token",
        &["pul-"],
        tok!(r"pul-[a-f0-9]{40}"),
        1,
        3.0,
        High,
    ),
    rule(
        "dropbox-token",
        "Dropbox short-lived access token",
        &["sl."],
        tok!(r"sl\.[\w\-]{130,152}"),
        1,
        3.5,
        High,
    ),
    rule(
        "twitter-bearer-token",
        "Twitter / X app bearer token",
        &["aaaaaaaaaaaaaaaaaaaaa"],
        tok!(r"A{22}[A-Za-z0-9%]{80,100}"),
        1,
        3.0,
        High,
    ),
    rule(
        "facebook-access-token",
        "Facebook / Meta access token",
        &["eaacedeose0cba"],
        tok!(r"EAACEdEose0cBA[A-Za-z0-9]{20,}"),
        1,
        3.0,
        High,
    ),
    rule(
        "okta-api-token",
        "Okta API token in an assignment",
        &["okta"],
        r#"(?i)okta[\w.\-]{0,20}[\s"':=>]{1,6}["']?(00[\w=\-]{40})(?:[^\w=\-]|$)"#,
        1,
        3.5,
        High,
    ),
    rule(
        "age-secret-key",
        "age encryption secret key",
        &["age-secret-key-1"],
        r#"(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})"#,
        1,
        3.0,
        Critical,
    ),
    rule(
        "echopilot-api-key",
        "EchoPilot API key",
        &["ep_"],
        tok!(r"ep_[0-9a-f]{64}"),
        1,
        3.0,
        Critical,
    ),
    // --- keys, tokens, credentials in URLs
    rule(
        "private-key",
        "Private key block (PEM / OpenSSH / PGP)",
        &["private key"],
        r#"(-----BEGIN[ A-Z0-9_]{0,30}PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9_]{0,30}PRIVATE KEY(?: BLOCK)?-----)"#,
        1,
        0.0,
        Critical,
    ),
    rule(
        "jwt",
        "JSON Web Token",
        &["eyj"],
        tok!(r"eyJ[A-Za-z0-9_\-]{15,}\.eyJ[A-Za-z0-9_\-]{15,}\.[A-Za-z0-9_\-]{20,}"),
        1,
        3.0,
        Medium,
    ),
    rule(
        "url-credentials",
        "Password in a URL",
        &["://"],
        r#"[a-z][a-z0-9+.\-]{1,20}://[^\s:/@'"]{1,64}:([^\s:/@'"$<>{}]{8,64})@[a-z0-9.\-]+"#,
        1,
        3.2,
        High,
    ),
    rule(
        "generic-api-key",
        "High-entropy secret in a key / token / password assignment",
        &[
            "key",
            "secret",
            "token",
            "passw",
            "pwd",
            "auth",
            "credential",
            "creds",
        ],
        r#"(?i)(?:access|auth|api|credential|creds|key|passw(?:or)?d|pwd|secret|token)[\w.\-]{0,25}["']?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?([A-Za-z0-9_.=+/~\-]{16,128})(?:["'`;,\s\\]|$)"#,
        1,
        3.7,
        Medium,
    ),
];

/// Secrets of the generic rule that are code, not secrets (identifiers, paths, sample text).
fn generic_rejects(secret: &[u8]) -> bool {
    let has_digit = secret.iter().any(u8::is_ascii_digit);
    let has_alpha = secret.iter().any(u8::is_ascii_alphabetic);
    if !has_digit || !has_alpha {
        return true;
    }
    let lower = secret.to_ascii_lowercase();
    const STOP: &[&[u8]] = &[
        b"example",
        b"xxxxxx",
        b"changeme",
        b"placeholder",
        b"your_",
        b"dummy",
        b"redacted",
        b"sample",
        b"00000000",
        b"12345678",
    ];
    if STOP.iter().any(|w| contains(&lower, w)) {
        return true;
    }
    // Dotted or path-like identifiers (`self.config.api_key2`, `crate/foo/bar1`).
    let dots = secret.iter().filter(|b| **b == b'.' || **b == b'/').count();
    dots >= 2
        && secret
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._/".contains(b))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Shannon entropy of `s` in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s {
        counts[*b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// A compiled rule.
struct Compiled {
    def: &'static RuleDef,
    regex: Regex,
}

/// One raw match (the secret's byte range in the file).
#[derive(Debug, Clone)]
pub struct RawMatch {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

/// The compiled rule set: one keyword automaton and each rule's regex.
pub struct Detector {
    rules: Vec<Compiled>,
    keywords: AhoCorasick,
    /// For each keyword pattern, the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords (always run).
    always: Vec<usize>,
}

impl Detector {
    pub fn new() -> anyhow::Result<Detector> {
        let mut rules = Vec::new();
        let mut patterns: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, def) in RULES.iter().enumerate() {
            let regex = RegexBuilder::new(def.regex)
                .unicode(false)
                .build()
                .map_err(|e| anyhow::anyhow!("rule {}: {e}", def.id))?;
            rules.push(Compiled { def, regex });
            if def.keywords.is_empty() {
                always.push(i);
            }
            for kw in def.keywords {
                match patterns.iter().position(|p| p == kw) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        patterns.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&patterns)?;
        Ok(Detector {
            rules,
            keywords,
            keyword_rules,
            always,
        })
    }

    pub fn rule(&self, i: usize) -> &'static RuleDef {
        self.rules[i].def
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Every secret in `text` that passes its rule's entropy and filters.
    pub fn find(&self, text: &[u8]) -> Vec<RawMatch> {
        let mut active = vec![false; self.rules.len()];
        for i in &self.always {
            active[*i] = true;
        }
        let mut remaining = self.rules.len() - self.always.len();
        // Overlapping: every keyword counts, including ones inside others (`sk-ant-`/`sk-`).
        for m in self.keywords.find_overlapping_iter(text) {
            for r in &self.keyword_rules[m.pattern().as_usize()] {
                if !active[*r] {
                    active[*r] = true;
                    remaining -= 1;
                }
            }
            if remaining == 0 {
                break;
            }
        }
        let mut out: Vec<RawMatch> = Vec::new();
        for (i, on) in active.iter().enumerate() {
            if !on {
                continue;
            }
            let c = &self.rules[i];
            for caps in c.regex.captures_iter(text) {
                let Some(g) = caps.get(c.def.group) else {
                    continue;
                };
                let secret = g.as_bytes();
                if c.def.entropy > 0.0 && entropy(secret) < c.def.entropy {
                    continue;
                }
                if c.def.id == "generic-api-key" && generic_rejects(secret) {
                    continue;
                }
                out.push(RawMatch {
                    rule: i,
                    start: g.start(),
                    end: g.end(),
                });
            }
        }
        // A specific rule wins over the generic one for the same bytes.
        out.sort_by_key(|m| (m.start, m.end));
        let generic = self
            .rules
            .iter()
            .position(|c| c.def.id == "generic-api-key");
        let mut kept: Vec<RawMatch> = Vec::with_capacity(out.len());
        for m in out.iter() {
            let overlaps = |a: &RawMatch| a.start < m.end && m.start < a.end;
            if Some(m.rule) == generic && out.iter().any(|o| o.rule != m.rule && overlaps(o)) {
                continue;
            }
            if kept
                .iter()
                .any(|k| k.rule == m.rule && k.start == m.start && k.end == m.end)
            {
                continue;
            }
            kept.push(m.clone());
        }
        kept
    }
}

/// The redacted form of a secret: a short prefix (at most a quarter of it, at most 4
/// bytes) and its length; never enough to use or guess it.
pub fn redact(secret: &[u8]) -> String {
    let keep = (secret.len() / 4).min(4);
    let prefix: String = secret[..keep]
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                '?'
            }
        })
        .collect();
    format!("{prefix}…[REDACTED {} bytes]", secret.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles_and_has_keywords_in_lower_case() {
        let d = Detector::new().unwrap();
        assert!(d.rule_count() >= 60, "{}", d.rule_count());
        for r in RULES {
            for k in r.keywords {
                assert_eq!(*k, k.to_ascii_lowercase(), "{}", r.id);
            }
        }
    }

    #[test]
    fn every_sample_is_found_by_its_rule_and_redacted() {
        let d = Detector::new().unwrap();
        for (rule, line, secret) in super::super::samples::all(7) {
            let found = d.find(line.as_bytes());
            let hit = found
                .iter()
                .find(|m| d.rule(m.rule).id == rule)
                .unwrap_or_else(|| panic!("{rule} not found in {line:?}: {found:?}"));
            assert_eq!(
                &line.as_bytes()[hit.start..hit.end],
                secret.as_bytes(),
                "{rule}"
            );
            // One finding per line: no second rule reports the same secret.
            let ids: Vec<&str> = found.iter().map(|m| d.rule(m.rule).id).collect();
            assert_eq!(ids, [rule], "{line:?}");
            assert!(!redact(secret.as_bytes()).contains(&secret), "{rule}");
        }
    }

    #[test]
    fn low_entropy_and_code_are_not_secrets() {
        let d = Detector::new().unwrap();
        for text in [
            "let key = crate::util::random_id(\"run_\", 10);",
            "password = \"aaaaaaaaaaaaaaaaaaaaaaaa\"",
            "api_key: self.config.api_key_value2",
            "token = example_token_1234567890",
            "secret_key_base = ENV.fetch('SECRET_KEY_BASE')",
        ] {
            let found = d.find(text.as_bytes());
            assert!(found.is_empty(), "{text}: {found:?}");
        }
    }

    #[test]
    fn entropy_is_shannon() {
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
