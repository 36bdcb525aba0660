//! End-to-end tests of the compliance module against the real binary, on SQLite and
//! PostgreSQL: Standard Webhooks signatures (bad signature, stale timestamp, replayed id,
//! a rotated second secret, a secret per tenant), the evidence bundle (verified offline by
//! `echopilot evidence verify`, failing when one byte changes; sections that are not
//! installed say so), GDPR export and delete across the areas (nothing of the subject
//! left, seen through the areas' own routes; a repeat says nothing left), and the access
//! rules (wrong key 401, wrong role 403, other tenant empty, bad input problem+json).

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use common::{key_and_secret, Client, Opts, Server};

// Three secrets: two for `default` (the second is the rotated one), one for `acme`.
const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_B: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdA==";
const SECRET_ACME: &str = "whsec_YWNtZS10ZW5hbnQtc2VjcmV0LWtleS1ieXRlcy0wMQ==";
const HOOK: &str = "/api/v1/compliance/webhook";

async fn start(backend: &str) -> Server {
    let database_url = common::fresh_database(backend).await;
    let env = [
        (
            "ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__PRIMARY",
            format!("default:{SECRET_A}"),
        ),
        (
            "ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__ROTATED",
            format!("default:{SECRET_B}"),
        ),
        (
            "ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__ACME",
            format!("acme:{SECRET_ACME}"),
        ),
        ("ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS", "1".to_string()),
        ("ECHOPILOT_RATE_LIMIT_PER_SEC", "100000".to_string()),
        ("ECHOPILOT_RATE_LIMIT_BURST", "100000".to_string()),
    ];
    Server::start_with(Opts {
        database_url,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        capture_stderr: true,
        ..Default::default()
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `v1,<base64 HMAC-SHA256>` of `id.ts.body`, as a Standard Webhooks sender computes it
/// (written here from the spec, not with the server's code).
fn signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn deliver(c: &Client, id: &str, ts: i64, sig: &str, body: &str) -> common::Resp {
    let rb = c
        .anonymous()
        .req(reqwest::Method::POST, HOOK)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_string());
    c.send(rb).await
}

async fn hooks(c: &Client) -> Vec<Value> {
    let r = c.get("/api/v1/compliance/hooks?limit=200").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["hooks"].as_array().unwrap().clone()
}

async fn audit_records(c: &Client, action: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/api/v1/audit/records?action={action}&limit=1000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_a_fresh_unique_signature_of_a_configured_secret() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let now = now_secs();
        let body =
            r#"{"type":"policy.acknowledged","data":{"policy":"acceptable-use","version":3}}"#;

        // A good one.
        let r = deliver(
            &root,
            "msg_1",
            now,
            &signature(SECRET_A, "msg_1", now, body),
            body,
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["accepted"], true);
        assert_eq!(r.body["webhook_id"], "msg_1");
        // The same id again (a replay, even correctly signed and fresh): 401.
        let r = deliver(
            &root,
            "msg_1",
            now,
            &signature(SECRET_A, "msg_1", now, body),
            body,
        )
        .await;
        r.assert_problem(401);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("already received"),
            "{}",
            r.text
        );
        // A bad signature: signed with a secret the server does not have, or another body.
        let wrong = "whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0wMDAw";
        let r = deliver(
            &root,
            "msg_2",
            now,
            &signature(wrong, "msg_2", now, body),
            body,
        )
        .await;
        r.assert_problem(401);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("does not match"),
            "{}",
            r.text
        );
        let r = deliver(
            &root,
            "msg_2",
            now,
            &signature(SECRET_A, "msg_2", now, body),
            "{}",
        )
        .await;
        r.assert_problem(401);
        // A stale timestamp (6 minutes old, correctly signed), and one from the future.
        for ts in [now - 360, now + 360] {
            let r = deliver(
                &root,
                "msg_3",
                ts,
                &signature(SECRET_A, "msg_3", ts, body),
                body,
            )
            .await;
            r.assert_problem(401);
            assert!(
                r.body["detail"].as_str().unwrap().contains("window"),
                "{}",
                r.text
            );
        }
        // Missing headers.
        let rb = root
            .anonymous()
            .req(reqwest::Method::POST, HOOK)
            .body(body.to_string());
        root.send(rb).await.assert_problem(401);
        // The rotated second secret works at the same time, and so does a list of
        // signatures where only one is valid.
        let sigs = format!(
            "v1,AAAA {} v1,{}",
            signature(SECRET_B, "msg_4", now, body),
            "bm9wZQ=="
        );
        let r = deliver(&root, "msg_4", now, &sigs, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Valid signature, but the body is no JSON: 422 after authentication.
        let r = deliver(
            &root,
            "msg_5",
            now,
            &signature(SECRET_A, "msg_5", now, "nope"),
            "nope",
        )
        .await;
        r.assert_problem(422);

        // Stored for the secret's tenant only.
        let listed = hooks(&root).await;
        let ids: Vec<&str> = listed
            .iter()
            .map(|h| h["webhook_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{listed:?}");
        assert!(ids.contains(&"msg_1") && ids.contains(&"msg_4"), "{ids:?}");
        let m4 = listed.iter().find(|h| h["webhook_id"] == "msg_4").unwrap();
        assert_eq!(m4["secret_name"], "rotated");
        assert_eq!(m4["event_type"], "policy.acknowledged");
        assert_eq!(m4["payload"]["data"]["version"], 3);
        let acme_body = r#"{"type":"training.completed","data":{"course":"security-101"}}"#;
        let r = deliver(
            &root,
            "msg_1",
            now,
            &signature(SECRET_ACME, "msg_1", now, acme_body),
            acme_body,
        )
        .await;
        assert_eq!(
            r.status, 200,
            "the same id in another tenant is another event: {}",
            r.text
        );
        let (acme_op, _) = key_and_secret(&root, "operator", "acme").await;
        let acme_hooks = hooks(&acme_op).await;
        assert_eq!(acme_hooks.len(), 1, "{acme_hooks:?}");
        assert_eq!(acme_hooks[0]["event_type"], "training.completed");
        assert_eq!(hooks(&root).await.len(), 2, "acme's event is not default's");

        // Refusals are audited (denied, with the reason), acceptances too.
        let recs = audit_records(&root, "compliance.webhook").await;
        let reasons: Vec<&str> = recs
            .iter()
            .filter(|r| r["outcome"] == "denied")
            .map(|r| r["detail"]["reason"].as_str().unwrap())
            .collect();
        for want in ["replayed", "bad_signature", "stale", "malformed"] {
            assert!(reasons.contains(&want), "{want} not audited: {reasons:?}");
        }
        assert_eq!(recs.iter().filter(|r| r["outcome"] == "ok").count(), 2);

        // Access: the list needs a key and the operator role.
        root.anonymous()
            .get("/api/v1/compliance/hooks")
            .await
            .assert_problem(401);
        root.with_key("ep_0000000000000000000000000000000000000000000000000000000000000000")
            .get("/api/v1/compliance/hooks")
            .await
            .assert_problem(401);
        let (ro, _) = key_and_secret(&root, "readonly", "default").await;
        ro.get("/api/v1/compliance/hooks").await.assert_problem(403);
        root.get("/api/v1/compliance/hooks?limit=0")
            .await
            .assert_problem(422);

        // Counters.
        let s = root.get("/api/v1/status/summary").await;
        let c = &s.body["compliance"];
        assert_eq!(c["hooks"], 2, "{}", s.text);
        assert_eq!(c["webhook_secrets"], 2, "{}", s.text);
        let metrics = reqwest::get(format!("{}/metrics", srv.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("echopilot_compliance_webhooks_total{result=\"accepted\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("echopilot_compliance_webhooks_total{result=\"replayed\"} 1"),
            "{metrics}"
        );

        // Events in the NDJSON log; no secret anywhere in logs or stderr.
        let logs = srv.read_logs();
        assert!(
            logs.contains("compliance webhook accepted") && logs.contains("msg_4"),
            "{logs}"
        );
        let all = format!("{logs}{}", srv.stderr_text());
        for s in [SECRET_A, SECRET_B, SECRET_ACME] {
            let b64 = s.strip_prefix("whsec_").unwrap();
            assert!(
                !all.contains(b64),
                "{backend}: a webhook secret leaked into the logs"
            );
        }
    }
}

/// Log lines of `srv` whose message is `msg`, parsed.
fn log_lines(srv: &Server, msg: &str) -> Vec<Value> {
    srv.read_logs()
        .lines()
        .filter(|l| l.contains(msg))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_webhooks_are_logged_within_a_budget_then_summarised_and_all_audited() {
    for backend in common::backends() {
        let srv = Server::start_with(Opts {
            database_url: common::fresh_database(backend).await,
            env: vec![
                (
                    "ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__PRIMARY".into(),
                    format!("default:{SECRET_A}"),
                ),
                (
                    "ECHOPILOT_COMPLIANCE__REJECTION_LOG_BUDGET".into(),
                    "3".into(),
                ),
                (
                    "ECHOPILOT_COMPLIANCE__REJECTION_LOG_INTERVAL_SECS".into(),
                    "1".into(),
                ),
                ("ECHOPILOT_RATE_LIMIT_PER_SEC".into(), "100000".into()),
                ("ECHOPILOT_RATE_LIMIT_BURST".into(), "100000".into()),
            ],
            ..Default::default()
        });
        let c = srv.client();
        let body = r#"{"type":"policy.acknowledged"}"#;
        let ts = now_secs();
        let bad = signature(SECRET_B, "msg_bad", ts, body);
        // 25 bad signatures in a burst. They may span several 1-second intervals, so the
        // checks below sum over however many intervals it took.
        for i in 0..25 {
            deliver(&c, &format!("msg_bad_{i}"), ts, &bad, body)
                .await
                .assert_problem(401);
        }
        // Every refusal is counted by the summaries or logged on its own, and the lines
        // of their own never exceed the budget per interval.
        let summaries = common::eventually(
            Duration::from_secs(20),
            "the rejection summary lines to account for every refusal",
            || async {
                let each = log_lines(&srv, "\"compliance webhook rejected\"").len() as u64;
                let sums = log_lines(&srv, "compliance webhook rejections over the log budget");
                let unlogged: u64 = sums
                    .iter()
                    .map(|l| l["not_logged_each"].as_u64().unwrap())
                    .sum();
                (each + unlogged == 25 && !sums.is_empty()).then_some((each, sums))
            },
        )
        .await;
        let (each, sums) = summaries;
        assert!(
            each >= 3,
            "{backend}: the budget's lines are written: {each}"
        );
        assert!(each < 25, "{backend}: not one line per refusal: {each}");
        for l in &sums {
            assert_eq!(l["logged_each"].as_u64().unwrap(), 3, "{backend}: {l}");
            assert_eq!(
                l["rejected"].as_u64().unwrap(),
                l["bad_signature"].as_u64().unwrap(),
                "{l}"
            );
            assert!(
                l["top_addresses"].as_str().unwrap().contains("127.0.0.1"),
                "{l}"
            );
        }
        // The audit records stay: one per refusal (within audit_rejections_per_minute, 60).
        let recs = audit_records(&c, "compliance.webhook").await;
        let denied = recs.iter().filter(|r| r["outcome"] == "denied").count();
        assert_eq!(denied, 25, "{backend}: every refusal audited");
    }
}

/// The entries of a zip, by name.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().unwrap().to_string(), b);
    }
    out
}

/// The same entries written again with one byte of `name` changed.
fn rezip_with_one_byte_changed(bytes: &[u8], name: &str) -> Vec<u8> {
    let entries = unzip(bytes);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (n, mut b) in entries {
        if n == name {
            let i = b.len() / 2;
            b[i] ^= 0x01;
        }
        w.start_file(n, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&b).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `echopilot evidence verify FILE` (exit code, stdout + stderr).
fn verify_cli(path: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_echopilot"))
        .args(["evidence", "verify"])
        .arg(path)
        .args(extra)
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn export(c: &Client, body: Value) -> reqwest::Response {
    c.req(reqwest::Method::POST, "/api/v1/compliance/evidence/export")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_bundle_verifies_offline_and_fails_when_one_byte_changes() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        // Some history: a confirmed ops command with its reason, keys, a revocation.
        let r = root
            .post("/api/v1/ops/command", json!({"verb": "tail_logs", "args": {"area": "server", "lines": 5}, "confirm": false}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let plan = r.body["plan_id"].as_str().unwrap().to_string();
        let r = root
            .post("/api/v1/ops/command", json!({"verb": "tail_logs", "args": {"area": "server", "lines": 5}, "confirm": true, "plan_id": plan, "reason": "INC-42 triage"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = root
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default", "name": "auditor"}),
            )
            .await;
        let gone = r.body["id"].as_str().unwrap().to_string();
        let r = root.delete(&format!("/api/v1/keys/{gone}")).await;
        assert!(r.status < 300, "{}", r.text);
        let (acme_admin, _) = key_and_secret(&root, "admin", "acme").await;

        let today = chrono::Utc::now().date_naive();
        let period = json!({"from": (today - chrono::Duration::days(1)).to_string(), "to": today.to_string()});
        let resp = export(&root, period.clone()).await;
        assert_eq!(resp.status(), 200, "{backend}");
        assert_eq!(resp.headers()["content-type"], "application/zip");
        let disposition = resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(disposition.contains("evidence-default-"), "{disposition}");
        let zip_bytes = resp.bytes().await.unwrap().to_vec();
        let files = unzip(&zip_bytes);
        let manifest: Value = serde_json::from_slice(&files["evidence.json"]).unwrap();

        // evidence.json: period, tree head, every expected section, hashes of every file.
        assert_eq!(manifest["tenant"], "default");
        assert_eq!(
            manifest["period"]["from"],
            format!("{}T00:00:00.000Z", today - chrono::Duration::days(1))
        );
        assert_eq!(manifest["period"]["to"], format!("{today}T23:59:59.999Z"));
        assert!(
            manifest["tree_head"]["tree_size"].as_i64().unwrap() > 0,
            "{manifest}"
        );
        let sections = &manifest["sections"];
        for s in ["audit", "access_review", "change_log", "dr"] {
            assert_eq!(sections[s]["status"], "included", "{s}: {manifest:#}");
        }
        // No SLO area exists in this build: it says so instead of inventing a report.
        assert_eq!(sections["slo"]["status"], "not_installed", "{manifest:#}");
        assert!(sections["slo"]["reason"]
            .as_str()
            .unwrap()
            .contains("not part of this build"));
        assert!(sections["security"]["status"] != "error", "{manifest:#}");
        for (name, meta) in manifest["files"].as_object().unwrap() {
            use sha2::Digest;
            assert_eq!(
                meta["sha256"].as_str().unwrap(),
                hex::encode(sha2::Sha256::digest(&files[name])),
                "{name}"
            );
        }
        // The change log holds the confirmed command with its reason.
        let log = String::from_utf8(files["change_log/change_log.ndjson"].clone()).unwrap();
        assert!(
            log.contains("tail_logs") && log.contains("INC-42 triage"),
            "{log}"
        );
        // The access review: keys, roles, last use, the revocation.
        let keys: Value = serde_json::from_slice(&files["access_review/keys.json"]).unwrap();
        let revoked = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == gone.as_str())
            .unwrap();
        assert_eq!(revoked["status"], "revoked");
        assert!(keys
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["role"] == "superadmin" && k["last_used_at"].is_string()));
        let revs: Value = serde_json::from_slice(&files["access_review/revocations.json"]).unwrap();
        assert_eq!(revs.as_array().unwrap().len(), 1, "{revs}");
        // Audit records of the tenant only.
        let recs = String::from_utf8(files["audit/records.ndjson"].clone()).unwrap();
        assert!(recs.lines().count() > 3);
        assert!(recs
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).unwrap()["tenant_id"] == "default"));
        // No secret in the bundle.
        let all: Vec<u8> = files.values().flatten().copied().collect();
        assert!(
            !String::from_utf8_lossy(&all).contains(&srv.key),
            "the bootstrap key leaked into the bundle"
        );

        // Offline verification with the CLI: passes, pinned to the server's key too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.zip");
        std::fs::write(&path, &zip_bytes).unwrap();
        let (code, out) = verify_cli(&path, &[]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("inclusion"), "{out}");
        let pk = root.get("/api/v1/status/summary").await.body["compliance"]["evidence_public_key"]
            .as_str()
            .unwrap()
            .to_string();
        let (code, out) = verify_cli(&path, &["--public-key", &pk]);
        assert_eq!(code, 0, "{out}");
        let other = "0".repeat(64);
        let (code, out) = verify_cli(&path, &["--public-key", &other]);
        assert_ne!(code, 0, "{out}");
        // `| head -c 10`: the reader goes away; no panic, the verdict is the exit status.
        let garbage = dir.path().join("garbage.zip");
        std::fs::write(&garbage, b"not a zip").unwrap();
        for (bundle, want) in [(&path, 0), (&garbage, 1)] {
            for extra in [&["--json"][..], &[]] {
                let (code, err) = common::run_with_closed_stdout(
                    Command::new(env!("CARGO_BIN_EXE_echopilot"))
                        .args(["evidence", "verify"])
                        .arg(bundle)
                        .args(extra)
                        .env("ECHOPILOT_CONFIG", "/dev/null"),
                );
                assert_eq!(code, Some(want), "{extra:?}: {err}");
                assert!(!err.contains("panicked"), "{extra:?}: {err}");
            }
        }
        // One byte changed in a file's content (re-zipped cleanly), in evidence.json, or
        // in the raw zip inside a file's data: each fails.
        for name in [
            "audit/records.ndjson",
            "change_log/change_log.ndjson",
            "evidence.json",
        ] {
            let p = dir.path().join("changed.zip");
            std::fs::write(&p, rezip_with_one_byte_changed(&zip_bytes, name)).unwrap();
            let (code, out) = verify_cli(&p, &[]);
            assert_ne!(code, 0, "{name} changed but verify passed: {out}");
        }
        let at = zip_bytes
            .windows(b"audit/records.ndjson".len())
            .position(|w| w == b"audit/records.ndjson")
            .unwrap();
        let mut raw = zip_bytes.clone();
        raw[at + b"audit/records.ndjson".len() + 20] ^= 0x01;
        let p = dir.path().join("raw.zip");
        std::fs::write(&p, &raw).unwrap();
        let (code, out) = verify_cli(&p, &[]);
        assert_ne!(code, 0, "a raw byte changed but verify passed: {out}");

        // The export itself is audited, with the manifest's hash.
        let recs = audit_records(&root, "compliance.evidence.export").await;
        assert_eq!(recs.len(), 1);

        // Another tenant's bundle holds its own records only.
        let resp = export(&acme_admin, period.clone()).await;
        assert_eq!(resp.status(), 200);
        let files = unzip(&resp.bytes().await.unwrap());
        let m: Value = serde_json::from_slice(&files["evidence.json"]).unwrap();
        assert_eq!(m["tenant"], "acme");
        let recs = String::from_utf8(files["audit/records.ndjson"].clone()).unwrap();
        assert!(
            recs.lines()
                .all(|l| serde_json::from_str::<Value>(l).unwrap()["tenant_id"] == "acme"),
            "{recs}"
        );
        let keys: Value = serde_json::from_slice(&files["access_review/keys.json"]).unwrap();
        assert!(keys
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != gone.as_str()));

        // Bad input: problem+json 4xx, never 5xx.
        let bad = [
            json!({"from": "yesterday", "to": today.to_string()}),
            json!({"from": today.to_string(), "to": (today - chrono::Duration::days(3)).to_string()}),
            json!({"from": "2020-01-01", "to": today.to_string()}),
            json!({"from": today.to_string()}),
            json!({"from": today.to_string(), "to": today.to_string(), "extra": 1}),
        ];
        for b in bad {
            let r = root
                .post("/api/v1/compliance/evidence/export", b.clone())
                .await;
            assert!((400..500).contains(&r.status), "{b}: {}", r.text);
            r.assert_problem(r.status);
        }
        // Wrong key 401, wrong role 403.
        root.anonymous()
            .post("/api/v1/compliance/evidence/export", period.clone())
            .await
            .assert_problem(401);
        let (op, _) = key_and_secret(&root, "operator", "default").await;
        op.post("/api/v1/compliance/evidence/export", period.clone())
            .await
            .assert_problem(403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdpr_export_and_delete_leave_nothing_of_the_subject_behind() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let subject = "user-42@example.com";
        let (int, _) = key_and_secret(&root, "integration", "default").await;
        let ts = chrono::Utc::now().timestamp_millis() - 60_000;
        // Analytics events of the subject and of someone else.
        let r = int
            .post("/api/v1/analytics/events", json!({"events": [
                {"event": "signup", "distinct_id": subject, "ts": ts, "properties": {"plan": "pro"}},
                {"event": "pageview", "distinct_id": subject, "ts": ts},
                {"event": "pageview", "distinct_id": "someone-else", "ts": ts},
            ]}))
            .await;
        assert_eq!(r.body["created"], 3, "{}", r.text);
        // An AI event of the subject.
        let r = int
            .post("/api/v1/ai/events", json!({"model": "gpt-4o-mini", "prompt": "hello", "response": "hi", "tokens_in": 1, "tokens_out": 1, "latency_ms": 10, "status": "ok", "distinct_id": subject}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        // A key labelled with the subject's address.
        let r = root
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default", "name": subject}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        // A compliance event naming the subject.
        let now = now_secs();
        let body = json!({"type": "consent.withdrawn", "data": {"user": subject}}).to_string();
        let r = deliver(
            &root,
            "msg_gdpr",
            now,
            &signature(SECRET_A, "msg_gdpr", now, &body),
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Rollups include the subject: DAU 2.
        let dau = |c: Client| async move {
            common::eventually(Duration::from_secs(60), "rollups complete", || {
                let c = c.clone();
                async move {
                    let r = c.get("/api/v1/analytics/usage").await;
                    (r.body["rollup"]["complete"] == true).then(|| {
                        r.body["series"].as_array().unwrap().last().unwrap()["dau"]
                            .as_i64()
                            .unwrap()
                    })
                }
            })
            .await
        };
        assert_eq!(dau(root.clone()).await, 2);

        let q = urlencode(subject);
        // Export: grouped by area.
        let r = root.get(&format!("/api/v1/gdpr/export?subject={q}")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let areas = &r.body["areas"];
        assert_eq!(areas["analytics"]["records"], 2, "{}", r.text);
        assert_eq!(areas["ai"]["records"], 1, "{}", r.text);
        assert_eq!(areas["keys"]["records"], 1, "{}", r.text);
        assert_eq!(areas["compliance"]["records"], 1, "{}", r.text);
        assert!(r.text.contains("\"plan\":\"pro\""), "{}", r.text);

        // Another tenant's admin sees nothing of it and deletes nothing of it.
        let (acme, _) = key_and_secret(&root, "admin", "acme").await;
        let r = acme.get(&format!("/api/v1/gdpr/export?subject={q}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for a in ["analytics", "ai", "keys", "compliance", "ops"] {
            assert_eq!(r.body["areas"][a]["records"], 0, "{a}: {}", r.text);
        }
        let r = acme
            .delete(&format!("/api/v1/gdpr/delete?subject={q}"))
            .await;
        assert_eq!(r.body["nothing_left"], true, "{}", r.text);

        // Delete.
        let r = root
            .delete(&format!("/api/v1/gdpr/delete?subject={q}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["nothing_left"], false, "{}", r.text);
        assert_eq!(
            r.body["areas"]["analytics"]["deleted"]["events"], 2,
            "{}",
            r.text
        );
        assert_eq!(r.body["areas"]["ai"]["deleted"]["events"], 1, "{}", r.text);
        assert_eq!(
            r.body["areas"]["keys"]["anonymised"]["key_labels"], 1,
            "{}",
            r.text
        );
        assert_eq!(
            r.body["areas"]["compliance"]["deleted"]["hooks"], 1,
            "{}",
            r.text
        );
        let request_id = r.body["request_id"].as_str().unwrap().to_string();

        // Nothing left: the export, and each area's own routes.
        let r = root.get(&format!("/api/v1/gdpr/export?subject={q}")).await;
        for (a, v) in r.body["areas"].as_object().unwrap() {
            if a == "audit" {
                // The append-only audit log keeps its records (key ids, the key's label
                // in keys.create); the export says why.
                assert!(v["notes"].to_string().contains("append-only"), "{}", r.text);
                continue;
            }
            assert_eq!(v["records"], 0, "{a} still holds data: {}", r.text);
        }
        let ai = root.get("/api/v1/ai/events?limit=100").await;
        assert!(!ai.text.contains(subject), "{}", ai.text);
        let keys = root.get("/api/v1/keys").await;
        assert!(!keys.text.contains(subject), "{}", keys.text);
        let hooks_now = root.get("/api/v1/compliance/hooks").await;
        assert!(!hooks_now.text.contains(subject), "{}", hooks_now.text);
        assert_eq!(
            dau(root.clone()).await,
            1,
            "the rollups no longer count the subject"
        );

        // The audit records say what was deleted, without the subject.
        let recs = audit_records(&root, "gdpr.delete").await;
        let ours: Vec<&Value> = recs
            .iter()
            .filter(|r| r["request_id"] == request_id.as_str())
            .collect();
        assert!(ours.len() >= 4, "{recs:?}");
        for rec in &recs {
            assert!(!rec.to_string().contains(subject), "{rec}");
        }
        assert!(ours
            .iter()
            .any(|r| r["target"] == "analytics" && r["detail"]["deleted"]["events"] == 2));

        // A repeat says nothing left.
        let r = root
            .delete(&format!("/api/v1/gdpr/delete?subject={q}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["nothing_left"], true, "{}", r.text);
        assert!(
            r.body["detail"].as_str().unwrap().contains("nothing left"),
            "{}",
            r.text
        );

        // Access and input.
        root.anonymous()
            .get(&format!("/api/v1/gdpr/export?subject={q}"))
            .await
            .assert_problem(401);
        let (op, _) = key_and_secret(&root, "operator", "default").await;
        op.get(&format!("/api/v1/gdpr/export?subject={q}"))
            .await
            .assert_problem(403);
        op.delete(&format!("/api/v1/gdpr/delete?subject={q}"))
            .await
            .assert_problem(403);
        for path in [
            "/api/v1/gdpr/export",
            "/api/v1/gdpr/export?subject=",
            "/api/v1/gdpr/delete?subject=%20",
            "/api/v1/gdpr/export?subject=a&x=1",
        ] {
            let r = if path.contains("delete") {
                root.delete(path).await
            } else {
                root.get(path).await
            };
            assert!((400..500).contains(&r.status), "{path}: {}", r.text);
            r.assert_problem(r.status);
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
