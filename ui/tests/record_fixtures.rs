//! The console's JSON fixtures come from a real backend, so a fixture cannot disagree with
//! the server.
//!
//! * `cargo test -p echopilot-ui --test record_fixtures -- --ignored` (re)records
//!   `tests/fixtures/*.json`: it starts the backend in-process on a temp data dir, creates
//!   real data through the HTTP API (queue jobs incl. one that dies, a scheduled job run,
//!   ops dry-runs, a confirm, a refused confirm, a module disabled), fetches every route the console reads and
//!   writes the answers. Volatile values are normalised so snapshots stay stable: times are
//!   shifted so the recording ends at the snapshot clock (2026-05-01T12:00:00Z), random ids
//!   and hashes are renumbered. Review the snapshot diffs afterwards.
//! * `fixtures_match_live_backend` (a normal test) runs the same scenario on SQLite (and on
//!   PostgreSQL when `ECHOPILOT_TEST_PG_URL` is set) and checks that every fixture still
//!   deserialises into the backend type and has the same JSON shape (keys and value types)
//!   as the live answer.
//!
//! The last step turns the telemetry module off for the tenant (marketplace toggle):
//! `module_disabled.json` is its route's module-disabled 404, `summary_disabled.json` the
//! summary with the section marked disabled.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use echopilot_backend::config::Overrides;
use echopilot_backend::{server, Config};
use serde_json::{json, Value};

const KEY: &str = "ep_fixture0recorder0key0not0a0secret0000000000000000000000000000";
const REPLICA: &str = "r-7f3a";
/// The key of the Standard Webhooks secret the fixtures' webhooks are signed with (a
/// test value; the `whsec_` form is built at run time so the repository scan stays clean).
const HOOK_KEY: &[u8] = b"fixture-webhook-key-not-a-secret";

/// `[compliance.webhook_secrets] primary`: tenant `default`, [`HOOK_KEY`].
fn hook_secret_config() -> String {
    use base64::Engine as _;
    format!(
        "default:whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(HOOK_KEY)
    )
}

struct Backend {
    running: server::Running,
    url: String,
    http: reqwest::Client,
    /// The scanned tree (a temp dir), recorded as [`SCAN_TREE_LABEL`].
    scan_tree: String,
    _dir: tempfile::TempDir,
}

/// The scanned tree's path as the fixtures show it: a stable, plausible path rather than
/// the recording's temp dir.
const SCAN_TREE_LABEL: &str = "/srv/app";

impl Backend {
    async fn start(database_url: Option<String>) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        // The Security tab: a small tree with one fake secret (built at run time) and a
        // lockfile, and one OSV advisory for it.
        let tree = dir.path().join("scan-tree");
        let osv = dir.path().join("osv");
        seed_scan_tree(&tree, &osv);
        let (tree_s, osv_s) = (tree.display().to_string(), osv.display().to_string());
        let hook_secret = hook_secret_config();
        let env: Vec<(String, String)> = [
            ("ECHOPILOT_BOOTSTRAP_KEY", KEY),
            ("ECHOPILOT_REPLICA_ID", REPLICA),
            // Samples every second, so the history has points within the test.
            ("ECHOPILOT_TELEMETRY__SAMPLE_INTERVAL_SECS", "1"),
            // The DR tab: a backup and a rehearsal of it (a fixed test key, not a secret).
            (
                "ECHOPILOT_DR__KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ),
            ("ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS", "1"),
            ("ECHOPILOT_SECURITY__PATHS", tree_s.as_str()),
            ("ECHOPILOT_SECURITY__OSV_DIR", osv_s.as_str()),
            // The Security tab's compliance hooks: signed webhooks of this secret.
            (
                "ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__PRIMARY",
                hook_secret.as_str(),
            ),
            // The Costs tab: two priced models, one without a price.
            (
                "ECHOPILOT_AI__PRICES",
                "gpt-4o-mini=0.15/0.60;gpt-4o=2.5/10",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = Config::load_from(
            &Overrides {
                config_file: Some(PathBuf::from("/dev/null")),
                data_dir: Some(dir.path().to_path_buf()),
                addr: Some("127.0.0.1:0".into()),
                database_url,
            },
            &env,
        )
        .unwrap();
        // The logs view reads the NDJSON files: the first backend of this process writes
        // them (the subscriber is global; later backends find their log dir empty, and an
        // empty array matches any fixture array).
        let _ = echopilot_backend::logging::init(cfg.logs_dir(), "info", false);
        let running = server::start(cfg).await.unwrap();
        Backend {
            url: running.url(),
            running,
            http: reqwest::Client::new(),
            scan_tree: tree_s,
            _dir: dir,
        }
    }

    /// `(status, body)`; the body is JSON for every answer of this API.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("X-Dash-Key", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn get_any(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Polls `path` until `done` holds (explicit condition with a deadline, no fixed sleep).
    async fn wait_for(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.get(path).await;
            if done(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The scanned tree: a GitHub token and an AWS key id in an env file (fake, built from a
/// seed at run time), a Cargo.lock and a package-lock.json, and an OSV advisory matching
/// one of the crates.
fn seed_scan_tree(tree: &std::path::Path, osv: &std::path::Path) {
    use echopilot_backend::security::samples;
    std::fs::create_dir_all(tree.join("web")).unwrap();
    std::fs::create_dir_all(osv).unwrap();
    let lines: Vec<String> = samples::all(5)
        .into_iter()
        .filter(|s| s.0 == "github-pat" || s.0 == "aws-access-key-id")
        .map(|s| s.1)
        .collect();
    std::fs::write(
        tree.join("deploy.env"),
        format!("PORT=8080\n{}\n", lines.join("\n")),
    )
    .unwrap();
    std::fs::write(
        tree.join("Cargo.lock"),
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("web/package-lock.json"),
        r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/lodash":{"version":"4.17.20"}}}"#,
    )
    .unwrap();
    for (id, eco, name, fixed, sev) in [
        (
            "RUSTSEC-2021-0003",
            "crates.io",
            "smallvec",
            "1.6.1",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "GHSA-35jh-r3h4-6jhm",
            "npm",
            "lodash",
            "4.17.21",
            "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
        ),
    ] {
        let v = json!({"id": id, "summary": format!("{name}: fixture advisory"), "aliases": [],
            "severity": [{"type": "CVSS_V3", "score": sev}],
            "affected": [{"package": {"ecosystem": eco, "name": name},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
        std::fs::write(osv.join(format!("{id}.json")), v.to_string()).unwrap();
    }
}

/// What the console reads, after creating real data. File name → answer. `samples`: how
/// many telemetry samples (one a second) to wait for — enough to draw sparklines when
/// recording, a few when only the shape is checked.
async fn scenario(b: &Backend, samples: usize) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    // A second tenant (created with its first key), for the palette's tenant switch.
    let (s, v) = b
        .post(
            "/api/v1/keys",
            json!({"role": "readonly", "tenant": "demo", "name": "console fixture"}),
        )
        .await;
    assert_eq!(s, 201, "create key: {v}");
    // Queue: two that succeed, one that dies (one attempt allowed), two waiting for later.
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut ids = Vec::new();
    for body in [
        json!({"kind": "echo", "payload": {"msg": "hello"}}),
        json!({"kind": "echo", "payload": {"msg": "world"}}),
        json!({"kind": "fail", "payload": {"until_attempt": 9}, "max_attempts": 1}),
        json!({"kind": "sleep", "payload": {"ms": 10}, "run_at": later}),
        json!({"kind": "echo", "payload": {"msg": "later"}, "run_at": later, "priority": 5}),
    ] {
        let (s, v) = b.post("/api/v1/queue/enqueue", body).await;
        assert!(s == 200 || s == 201 || s == 202, "enqueue: {s} {v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for (id, state) in [
        (&ids[0], "succeeded"),
        (&ids[1], "succeeded"),
        (&ids[2], "dead"),
    ] {
        b.wait_for(&format!("/api/v1/queue/jobs/{id}"), state, |v| {
            v["state"] == state
        })
        .await;
    }
    // A scheduled job run now, and the startup runs, finished.
    let (s, v) = b.post("/api/v1/jobs/scheduler_tick/run", json!({})).await;
    assert!(s < 300, "run now: {s} {v}");
    b.wait_for("/api/v1/jobs/runs?limit=50", "finished runs", |v| {
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        runs.iter().any(|r| r["job"] == "scheduler_tick")
            && runs.iter().all(|r| !r["finished_at"].is_null())
    })
    .await;
    // DR: a backup, then a restore rehearsal of it (PASS).
    for (path, job) in [
        ("/api/v1/dr/backups", "backup"),
        ("/api/v1/dr/verify", "dr_verify"),
    ] {
        let (s, v) = b.post(path, json!({})).await;
        assert_eq!(s, 202, "{path}: {v}");
        let run_id = v["run_id"].as_str().unwrap().to_string();
        b.wait_for(&format!("/api/v1/jobs/runs?job={job}"), job, |v| {
            v["runs"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["id"] == run_id.as_str() && !r["finished_at"].is_null())
            })
        })
        .await;
    }
    // Security: a scan of the seeded tree.
    let (s, v) = b.post("/api/v1/security/scan", json!({})).await;
    assert_eq!(s, 202, "security scan: {v}");
    let run_id = v["run_id"].as_str().unwrap().to_string();
    b.wait_for("/api/v1/jobs/runs?job=security_scan", "the scan", |v| {
        v["runs"].as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["id"] == run_id.as_str() && !r["finished_at"].is_null())
        })
    })
    .await;
    // Compliance: two signed webhooks (the Security tab lists the newest).
    for (id, body) in [
        (
            "msg_fixture_0001",
            r#"{"type":"policy.acknowledged","data":{"policy":"acceptable-use","version":3}}"#,
        ),
        (
            "msg_fixture_0002",
            r#"{"type":"access.reviewed","data":{"reviewer":"ops-lead"}}"#,
        ),
    ] {
        let ts = Utc::now().timestamp();
        let sig = echopilot_backend::compliance::webhook::sign(HOOK_KEY, id, ts, body.as_bytes());
        let resp = b
            .http
            .post(format!("{}/api/v1/compliance/webhook", b.url))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "webhook {id}");
    }
    b.wait_for("/api/v1/ops/telemetry/history?minutes=60", "samples", |v| {
        v["samples"].as_array().is_some_and(|s| s.len() >= samples)
    })
    .await;
    // Ops: a low-risk dry-run confirmed, a high-risk dry-run, a refused confirm.
    let (s, low) = b
        .post(
            "/api/v1/ops/command",
            json!({"verb": "run_job", "args": {"job": "retention"}, "confirm": false}),
        )
        .await;
    assert_eq!(s, 200, "{low}");
    let (s, high) = b
        .post(
            "/api/v1/ops/command",
            json!({"verb": "restart_scheduler", "args": {}, "confirm": false}),
        )
        .await;
    assert_eq!(s, 200, "{high}");
    let (s, confirm) = b
        .post(
            "/api/v1/ops/command",
            json!({"verb": "run_job", "args": low["args"], "confirm": true, "plan_id": low["plan_id"]}),
        )
        .await;
    assert_eq!(s, 200, "{confirm}");
    let (s, refused) = b
        .post(
            "/api/v1/ops/command",
            json!({"verb": "restart_scheduler", "args": {}, "confirm": true,
                   "plan_id": "plan_000000000000000000000000", "reason": "drill"}),
        )
        .await;
    assert_eq!(s, 409, "{refused}");
    out.insert("dryrun_low.json", low);
    out.insert("dryrun_high.json", high);
    out.insert("confirm.json", confirm);
    out.insert("problem409.json", refused);
    // The confirmed run_job ran retention; let it finish so the lists are settled.
    b.wait_for("/api/v1/jobs/runs?limit=50", "finished runs", |v| {
        v["runs"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| !r["finished_at"].is_null()))
    })
    .await;
    // Product analytics: 28 days of events of 40 users (a fixed pattern, so the recording is
    // repeatable), a signup funnel, then the rollups the Forecast tab reads.
    let today = Utc::now().timestamp_millis() / 86_400_000;
    let mut events = Vec::new();
    for d in 0..28i64 {
        for u in 0..40i64 {
            if (u * 7 + d * 3) % 5 == 0 || (u < 10 && d > 20) {
                let ts = (today - 27 + d) * 86_400_000 + 3_600_000 * (1 + u % 20);
                let feature = ["search", "billing", "reports"][(u % 3) as usize];
                events.push(json!({"uuid": format!("fx-{d}-{u}-v"), "event": "visit",
                    "distinct_id": format!("user-{u}"), "ts": ts}));
                if u % 2 == 0 {
                    events.push(json!({"uuid": format!("fx-{d}-{u}-s"), "event": "signup",
                        "distinct_id": format!("user-{u}"), "ts": ts + 60_000 * (1 + u % 4),
                        "properties": {"feature": feature}}));
                }
                if u % 6 == 0 {
                    events.push(json!({"uuid": format!("fx-{d}-{u}-a"), "event": "activate",
                        "distinct_id": format!("user-{u}"), "ts": ts + 600_000,
                        "properties": {"feature": "onboarding"}}));
                }
            }
        }
    }
    for chunk in events.chunks(1000) {
        let (s, v) = b
            .post("/api/v1/analytics/events", json!({"events": chunk}))
            .await;
        assert_eq!(s, 200, "ingest: {v}");
    }
    let (s, v) = b
        .post(
            "/api/v1/analytics/funnels",
            json!({"name": "signup", "steps": ["visit", "signup", "activate"], "window_secs": 3600}),
        )
        .await;
    assert_eq!(s, 200, "funnel: {v}");
    let usage = b
        .wait_for("/api/v1/analytics/usage", "rollups complete", |v| {
            v["rollup"]["complete"] == true
        })
        .await;
    out.insert("analytics_usage.json", usage);
    out.insert(
        "analytics_funnels.json",
        b.get("/api/v1/analytics/funnels").await,
    );
    // AI calls (the Costs tab): 60 over the last two days, a fixed pattern of three
    // models, four features, latencies and failures (one model unpriced).
    let now = Utc::now();
    let calls: Vec<Value> = (0..60i64)
        .map(|i| {
            let (model, tin, tout) = match i % 4 {
                0 | 1 => ("gpt-4o-mini", 800 + 10 * i, 120 + i),
                2 => ("gpt-4o", 1_500 + 20 * i, 400 + 2 * i),
                _ => ("local-llama-3", 600, 90),
            };
            let failed = i % 9 == 4 || (model == "gpt-4o" && i % 5 == 0);
            let mut e = json!({
                "model": model,
                "prompt": match i % 7 {
                    0..=2 => format!("Summarise ticket {} for customer{}@example.com", 4000 + i, i % 7),
                    3 | 4 => format!("Translate \"order {} shipped\" to German", 100 + i),
                    5 => format!("Classify the sentiment of review {}", 9000 + i),
                    _ => "How do I reset my password?".to_string(),
                },
                "response": if failed { String::new() } else { format!("Ticket {} is resolved.", 4000 + i) },
                "tokens_in": tin, "tokens_out": if failed { 0 } else { tout },
                "latency_ms": 180 + (i * 137) % 2_400 + if model == "gpt-4o" { 900 } else { 0 },
                "status": if failed { "error" } else { "ok" },
                "ts": (now - chrono::Duration::minutes(45 * i + 3)).to_rfc3339(),
            });
            let feature = ["search", "summaries", "support", "search", ""][(i % 5) as usize];
            if !feature.is_empty() {
                e["feature"] = json!(feature);
            }
            if failed {
                e["error"] = json!(if i % 2 == 0 {
                    "upstream 429: rate limited, contact ops@example.com".to_string()
                } else {
                    format!("timeout after {} ms", 30_000 + i)
                });
            }
            e
        })
        .collect();
    let (s, v) = b
        .post("/api/v1/ai/events/batch", json!({"events": calls}))
        .await;
    assert_eq!(s, 201, "ai events: {v}");
    out.insert("ai_analytics.json", b.get("/api/v1/ai/analytics").await);
    for (file, path) in [
        ("telemetry.json", "/api/v1/ops/telemetry"),
        ("history.json", "/api/v1/ops/telemetry/history?minutes=60"),
        ("verbs.json", "/api/v1/ops/verbs"),
        ("automations.json", "/api/v1/automations/status"),
        ("runs.json", "/api/v1/jobs/runs?limit=50"),
        ("queue_health.json", "/api/v1/queue/health"),
        ("queue_jobs.json", "/api/v1/queue/jobs?limit=200"),
        ("audit.json", "/api/v1/audit/chain"),
        ("summary.json", "/api/v1/status/summary"),
        ("tenants.json", "/api/v1/tenants"),
        ("dr_backups.json", "/api/v1/dr/backups"),
        ("dr_verify.json", "/api/v1/dr/verify"),
        ("logs.json", "/api/v1/ops/logs?area=server&lines=40"),
        ("logs_queue.json", "/api/v1/ops/logs?area=queue&lines=40"),
        ("security_status.json", "/api/v1/security/status"),
        ("security_latest.json", "/api/v1/security/reports/latest"),
        ("compliance_hooks.json", "/api/v1/compliance/hooks?limit=10"),
    ] {
        out.insert(file, b.get(path).await);
    }
    // Last, a module disabled for this tenant (marketplace): its route answers the
    // module-disabled 404 and the summary marks its section.
    let (s, v) = b
        .post(
            "/api/v1/marketplace/toggle",
            json!({"module": "telemetry", "enabled": false, "reason": "console fixture"}),
        )
        .await;
    assert_eq!(s, 200, "toggle: {v}");
    let (s, v) = b.get_any("/api/v1/ops/telemetry").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["module"], "telemetry", "{v}");
    out.insert("module_disabled.json", v);
    out.insert(
        "summary_disabled.json",
        b.get("/api/v1/status/summary").await,
    );
    out
}

// ------------------------------------------------------------------ normalisation

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Renumbers random ids and hashes in first-seen order and shifts timestamps so that the
/// recording ended at the snapshot clock.
struct Normaliser {
    shift: chrono::Duration,
    /// (recorded path, label) replaced in every string.
    paths: Vec<(String, String)>,
    seen: BTreeMap<String, String>,
    next: u64,
}

impl Normaliser {
    fn new(ended: DateTime<Utc>, paths: Vec<(String, String)>) -> Normaliser {
        let t0: DateTime<Utc> = "2026-05-01T12:00:00Z".parse().unwrap();
        // Whole seconds keep the recorded milliseconds (and so the snapshots' rounding).
        let shift = chrono::Duration::seconds((t0 - ended).num_seconds());
        Normaliser {
            shift,
            paths,
            seen: BTreeMap::new(),
            next: 0,
        }
    }

    fn renumber(&mut self, s: &str, make: impl FnOnce(u64) -> String) -> String {
        if let Some(x) = self.seen.get(s) {
            return x.clone();
        }
        self.next += 1;
        let x = make(self.next);
        self.seen.insert(s.to_string(), x.clone());
        x
    }

    fn shift_ts(&self, ts: &str) -> Option<String> {
        let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc) + self.shift;
        Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// Shifts timestamps inside prose too ("Last run: succeeded at 2026-…Z").
    fn shift_embedded(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            let hit = [24, 20].into_iter().find_map(|len| {
                let cand = rest.get(..len)?;
                cand.ends_with('Z')
                    .then(|| self.shift_ts(cand))
                    .flatten()
                    .map(|t| (len, t))
            });
            match hit {
                Some((len, t)) => {
                    out.push_str(&t);
                    i += len;
                }
                None => {
                    let c = rest.chars().next().unwrap();
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
        out
    }

    fn string(&mut self, s: &str) -> String {
        if let Some(t) = self.shift_ts(s) {
            return t;
        }
        let mut s = self.shift_embedded(s);
        for (from, to) in &self.paths {
            if s.contains(from.as_str()) {
                s = s.replace(from.as_str(), to);
            }
        }
        let s = &s;
        if let Some(rest) = s.strip_prefix("bk_") {
            // Backup ids carry their UTC time and a random suffix.
            if rest.len() == 23 {
                return self.renumber(s, |n| format!("bk_20260501T000000Z_{n:06x}"));
            }
        }
        for prefix in [
            "job_", "run_", "plan_", "sh_", "req_", "drv_", "aie_", "scan_",
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                if is_hex(rest) && rest.len() >= 6 {
                    let width = rest.len();
                    return self.renumber(s, |n| format!("{prefix}{n:0width$x}"));
                }
            }
        }
        if let Some(rest) = s.strip_prefix(&format!("{REPLICA}#")) {
            if is_hex(rest) {
                return self.renumber(s, |n| format!("{REPLICA}#{n:06x}"));
            }
        }
        if s.len() == 36 && s.split('-').map(str::len).eq([8, 4, 4, 4, 12]) {
            // Request ids (UUIDs).
            return self.renumber(s, |n| format!("00000000-0000-4000-8000-{n:012x}"));
        }
        if s.len() == 64 && is_hex(s) {
            // SHA-256 roots and leaf hashes: stable, still 64 hex digits.
            return self.renumber(s, |n| {
                format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).repeat(4)
            });
        }
        s.to_string()
    }

    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.string(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        // Uptime is seconds since the recording started: fix it like the clock.
                        let x = match k.as_str() {
                            "uptime_s" => json!(86_400),
                            _ => self.value(x),
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

// ------------------------------------------------------------------ shapes

/// Keys and value types of a JSON document; array elements are merged into one shape.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// `null`: an optional value, compatible with any shape.
    Null,
    Bool,
    Number,
    String,
    /// `None`: empty array (compatible with any array).
    Array(Option<Box<Shape>>),
    Object(BTreeMap<String, Shape>),
}

fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Null, x) | (x, Shape::Null) => x,
        (Shape::Array(x), Shape::Array(y)) => Shape::Array(match (x, y) {
            (Some(x), Some(y)) => Some(Box::new(merge(*x, *y))),
            (x, y) => x.or(y),
        }),
        (Shape::Object(mut x), Shape::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Shape::Object(x)
        }
        // Disagreeing types stay visible: the comparison reports them.
        (x, _) => x,
    }
}

fn shape(v: &Value) -> Shape {
    match v {
        Value::Null => Shape::Null,
        Value::Bool(_) => Shape::Bool,
        Value::Number(_) => Shape::Number,
        Value::String(_) => Shape::String,
        Value::Array(a) => Shape::Array(a.iter().map(shape).reduce(merge).map(Box::new)),
        Value::Object(m) => Shape::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

/// Free-form members whose keys depend on what ran (job payloads and results): only
/// their type is compared.
const FREE_FORM: &[&str] = &["payload", "result", "detail", "args", "fields"];

fn compare(path: &str, fixture: &Shape, live: &Shape, errors: &mut Vec<String>) {
    match (fixture, live) {
        (Shape::Null, _) | (_, Shape::Null) => {}
        (Shape::Array(Some(a)), Shape::Array(Some(b))) => {
            compare(&format!("{path}[]"), a, b, errors)
        }
        (Shape::Array(_), Shape::Array(_)) => {}
        (Shape::Object(a), Shape::Object(b)) => {
            let last = path.rsplit('.').next().unwrap_or("");
            if FREE_FORM.contains(&last.trim_end_matches("[]")) {
                return;
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                errors.push(format!(
                    "{path}.{k}: in the fixture, not in the live answer"
                ));
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                errors.push(format!(
                    "{path}.{k}: in the live answer, not in the fixture"
                ));
            }
            for (k, x) in a {
                if let Some(y) = b.get(k) {
                    compare(&format!("{path}.{k}"), x, y, errors);
                }
            }
        }
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => {}
        (a, b) => errors.push(format!("{path}: fixture has {a:?}, live answer has {b:?}")),
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records tests/fixtures/*.json from a real backend; run with --ignored"]
async fn record() {
    let b = Backend::start(None).await;
    let answers = scenario(&b, 40).await;
    // The snapshot clock is the end of the recording: every recorded time is in the past.
    let mut n = Normaliser::new(
        Utc::now() + chrono::Duration::seconds(1),
        vec![(b.scan_tree.clone(), SCAN_TREE_LABEL.to_string())],
    );
    // RECORD_ONLY=a.json,b.json re-records just those (a new fixture without churning the
    // others and every snapshot fed by them).
    let only: Option<Vec<String>> = std::env::var("RECORD_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    for (file, v) in &answers {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == file)) {
            continue;
        }
        let text = serde_json::to_string_pretty(&n.value(v)).unwrap() + "\n";
        std::fs::write(common::fixtures_dir().join(file), text).unwrap();
    }
    b.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_match_live_backend() {
    // Every fixture parses into the backend's own types (load_fixtures fails otherwise).
    let mut app = common::empty_app();
    let loaded = echopilot_ui::load_fixtures(&mut app, &common::fixtures_dir()).unwrap();
    assert_eq!(loaded, echopilot_ui::FIXTURE_FILES.len());
    use echopilot_backend::ops::command::{ConfirmResponse, DryRunResponse};
    for f in ["dryrun_low.json", "dryrun_high.json"] {
        serde_json::from_value::<DryRunResponse>(common::fixture(f)).expect(f);
    }
    serde_json::from_value::<ConfirmResponse>(common::fixture("confirm.json")).unwrap();
    serde_json::from_value::<echopilot_backend::model::Problem>(common::fixture("problem409.json"))
        .unwrap();
    let disabled = common::fixture("module_disabled.json");
    serde_json::from_value::<echopilot_backend::model::Problem>(disabled.clone()).unwrap();
    let p = echopilot_ui::client::parse_problem(404, disabled.to_string().as_bytes());
    assert_eq!(
        (p.module.as_deref(), p.scope.as_deref()),
        (Some("telemetry"), Some("tenant"))
    );

    for backend in echopilot_backend::store::testing::backends() {
        let db = match backend {
            "postgres" => Some(echopilot_backend::store::testing::create_pg_database().await),
            _ => None,
        };
        let b = Backend::start(db).await;
        let live = scenario(&b, 2).await;
        let mut errors = Vec::new();
        for (file, v) in &live {
            compare(file, &shape(&common::fixture(file)), &shape(v), &mut errors);
        }
        b.running.shutdown().await.unwrap();
        assert!(
            errors.is_empty(),
            "{backend}: fixtures disagree with the live backend (re-record with \
             `cargo test -p echopilot-ui --test record_fixtures -- --ignored`):\n{}",
            errors.join("\n")
        );
    }
}
