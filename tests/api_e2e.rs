//! End-to-end tests of the foundation: the real binary on a random port, driven over
//! HTTP, on SQLite and (when ECHOPILOT_TEST_PG_URL is set) on PostgreSQL.

mod common;

use std::time::Duration;

use common::{Opts, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

async fn start(backend: &str, env: Vec<(String, String)>) -> Server {
    let database_url = common::fresh_database(backend).await;
    Server::start_with(Opts {
        database_url,
        env,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn error_paths_are_problem_json() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();

        c.anonymous()
            .get("/api/v1/status/summary")
            .await
            .assert_problem(401);
        c.with_key("ep_0000000000000000000000000000000000000000000000000000000000000000")
            .get("/api/v1/status/summary")
            .await
            .assert_problem(401);
        c.get("/api/v1/no/such/route").await.assert_problem(404);
        c.send(c.req(reqwest::Method::PUT, "/api/v1/keys"))
            .await
            .assert_problem(405);

        // Malformed JSON, unknown field, wrong type → 400; valid JSON, invalid value → 422.
        let raw = |body: &'static str| {
            c.req(reqwest::Method::POST, "/api/v1/keys")
                .header("content-type", "application/json")
                .body(body)
        };
        c.send(raw("{\"role\": ")).await.assert_problem(400);
        c.post(
            "/api/v1/keys",
            json!({"role": "readonly", "tenant": "t1", "extra": 1}),
        )
        .await
        .assert_problem(400);
        c.post("/api/v1/keys", json!({"role": 5, "tenant": "t1"}))
            .await
            .assert_problem(400);
        c.post("/api/v1/keys", json!({"role": "emperor", "tenant": "t1"}))
            .await
            .assert_problem(422);
        c.post(
            "/api/v1/keys",
            json!({"role": "readonly", "tenant": "Bad Tenant!"}),
        )
        .await
        .assert_problem(422);
        // No content type → 415, still problem+json.
        c.send(c.req(reqwest::Method::POST, "/api/v1/keys").body("{}"))
            .await
            .assert_problem(415);

        // Over the 1 MiB default limit → 413.
        let big = format!(
            "{{\"role\":\"readonly\",\"tenant\":\"t1\",\"name\":\"{}\"}}",
            "x".repeat(1_100_000)
        );
        c.send(
            c.req(reqwest::Method::POST, "/api/v1/keys")
                .header("content-type", "application/json")
                .body(big),
        )
        .await
        .assert_problem(413);

        // Query and path parameters of the wrong type → 400.
        c.get("/api/v1/audit/receipt/abc").await.assert_problem(400);
        c.get("/api/v1/audit/records?limit=many")
            .await
            .assert_problem(400);
        c.get("/api/v1/audit/records?limit=0")
            .await
            .assert_problem(422);
        c.get("/api/v1/audit/consistency?from=5&to=2")
            .await
            .assert_problem(422);
        c.get("/api/v1/audit/receipt/999999")
            .await
            .assert_problem(422);

        // Nothing above created a key: only the bootstrap key exists.
        let keys = c.get("/api/v1/keys").await;
        assert_eq!(keys.status, 200);
        assert_eq!(
            keys.body["keys"].as_array().unwrap().len(),
            1,
            "{}",
            keys.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_legacy_aliases_health_and_openapi() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();

        let r = c
            .send(
                c.req(reqwest::Method::GET, "/api/v1/status/summary")
                    .header("X-Request-ID", "trace-abc.123"),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-request-id"], "trace-abc.123");
        let r = c.get("/api/v1/status/summary").await;
        let generated = r.headers["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(generated.len(), 36, "a UUID is generated: {generated}");
        // The id is also in problem bodies.
        let r = c
            .send(
                c.anonymous()
                    .req(reqwest::Method::GET, "/api/v1/keys")
                    .header("X-Request-ID", "rid-401"),
            )
            .await;
        assert_eq!(r.body["request_id"], "rid-401");
        assert_eq!(r.body["instance"], "/api/v1/keys");

        // Legacy unversioned path answers like v1, flagged as deprecated.
        let old = c.get("/api/audit/chain").await;
        assert_eq!(old.status, 200, "{}", old.text);
        assert_eq!(old.headers["deprecation"], "true");
        assert_eq!(
            old.headers["link"].to_str().unwrap(),
            "</api/v1/audit/chain>; rel=\"successor-version\""
        );
        let new = c.get("/api/v1/audit/chain").await;
        assert!(new.headers.get("deprecation").is_none());
        assert_eq!(old.body["root"], new.body["root"]);

        assert_eq!(c.anonymous().get("/healthz").await.status, 200);
        let ready = c.anonymous().get("/readyz").await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        let metrics = c.anonymous().get("/metrics").await;
        assert!(
            metrics.text.contains("echopilot_http_requests_total"),
            "{}",
            metrics.text
        );
        assert!(metrics
            .text
            .contains("echopilot_http_request_duration_seconds_bucket"));

        let spec = c.anonymous().get("/api/v1/openapi.json").await;
        assert_eq!(spec.status, 200);
        let paths = spec.body["paths"].as_object().unwrap();
        for p in [
            "/api/v1/keys",
            "/api/v1/keys/{id}",
            "/api/v1/tenants",
            "/api/v1/audit/chain",
            "/api/v1/audit/records",
            "/api/v1/audit/receipt/{seq}",
            "/api/v1/audit/consistency",
            "/api/v1/audit/verify",
            "/api/v1/status/summary",
            "/api/v1/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "OpenAPI lacks {p}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_roles_and_tenants() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let root = srv.client();

        // Superadmin creates an admin for tenant acme; the key is shown once.
        let r = root
            .post(
                "/api/v1/keys",
                json!({"role": "admin", "tenant": "acme", "name": "acme admin"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let admin_key = r.body["key"].as_str().unwrap().to_string();
        let admin_id = r.body["id"].as_str().unwrap().to_string();
        assert!(admin_key.starts_with("ep_") && admin_key.len() == 67);
        let admin = root.with_key(&admin_key);

        // Listing never shows secrets or hashes.
        let list = admin.get("/api/v1/keys").await;
        assert_eq!(list.status, 200);
        assert!(!list.text.contains(&admin_key));
        assert!(!list.text.contains("hash"));
        assert_eq!(
            list.body["keys"].as_array().unwrap().len(),
            1,
            "admin sees only acme"
        );

        // The admin may create an operator in its tenant, not in another, not a superadmin.
        let op = admin
            .post(
                "/api/v1/keys",
                json!({"role": "operator", "tenant": "acme"}),
            )
            .await;
        assert_eq!(op.status, 201, "{}", op.text);
        let op_key = op.body["key"].as_str().unwrap().to_string();
        admin
            .post(
                "/api/v1/keys",
                json!({"role": "operator", "tenant": "globex"}),
            )
            .await
            .assert_problem(403);
        admin
            .post(
                "/api/v1/keys",
                json!({"role": "superadmin", "tenant": "acme"}),
            )
            .await
            .assert_problem(403);
        // An operator cannot manage keys at all.
        root.with_key(&op_key)
            .get("/api/v1/keys")
            .await
            .assert_problem(403);

        // Cross-tenant access → 403, and the attempt is in the audit log as denied.
        let denied = admin
            .with_tenant("globex")
            .get("/api/v1/status/summary")
            .await;
        denied.assert_problem(403);
        let rid = denied.headers["x-request-id"].to_str().unwrap().to_string();
        let recs = root
            .with_tenant("globex")
            .get("/api/v1/audit/records?action=tenant.access")
            .await;
        assert_eq!(recs.status, 200, "{}", recs.text);
        let rec = recs.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == rid.as_str())
            .unwrap_or_else(|| panic!("denied access not audited: {}", recs.text))
            .clone();
        assert_eq!(rec["outcome"], "denied");
        assert_eq!(rec["actor"], admin_id.as_str());
        assert!(!recs.text.contains(&admin_key), "audit never holds a key");
        // A superadmin may select any tenant.
        assert_eq!(
            root.with_tenant("globex")
                .get("/api/v1/status/summary")
                .await
                .status,
            200
        );
        // Malformed tenant header → 400.
        root.with_tenant("NOT OK")
            .get("/api/v1/status/summary")
            .await
            .assert_problem(400);

        // Revocation takes effect at once; revoking twice is harmless; unknown id → 404.
        assert_eq!(admin.get("/api/v1/status/summary").await.status, 200);
        let rv = root.delete(&format!("/api/v1/keys/{admin_id}")).await;
        assert_eq!(rv.status, 200, "{}", rv.text);
        assert!(rv.body["revoked_at"].is_string());
        admin
            .get("/api/v1/status/summary")
            .await
            .assert_problem(401);
        assert_eq!(
            root.delete(&format!("/api/v1/keys/{admin_id}"))
                .await
                .status,
            200
        );
        root.delete("/api/v1/keys/key_nope")
            .await
            .assert_problem(404);

        // The last superadmin key cannot be revoked (no lock-out).
        let supers = root.get("/api/v1/keys").await;
        let super_id = supers.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == "superadmin")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        root.delete(&format!("/api/v1/keys/{super_id}"))
            .await
            .assert_problem(409);

        // Tenants: superadmin sees all, a tenant key only its own.
        let t = root.get("/api/v1/tenants").await;
        let ids: Vec<&str> = t.body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"acme") && ids.contains(&"default"), "{ids:?}");
        let t = root.with_key(&op_key).get("/api/v1/tenants").await;
        assert_eq!(t.body["tenants"].as_array().unwrap().len(), 1);

        // Audit records are tenant-scoped: acme's operator does not see default's records.
        let r = root.with_key(&op_key).get("/api/v1/audit/records").await;
        assert!(
            r.body["records"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["tenant_id"] == "acme"),
            "{}",
            r.text
        );

        // No key ever reaches a log file. The appender writes in the background: wait
        // until the last request's line is there, so every earlier line is too.
        let last_rid = r.headers["x-request-id"].to_str().unwrap().to_string();
        let logs = common::eventually(Duration::from_secs(10), "last request logged", || {
            let logs = srv.read_logs();
            let done = logs
                .lines()
                .any(|l| l.contains(&last_rid) && l.contains("request finished"));
            async move { done.then_some(logs) }
        })
        .await;
        assert!(!logs.is_empty(), "logs were written");
        for k in [&srv.key, &admin_key, &op_key] {
            assert!(!logs.contains(k.as_str()), "a key leaked into the logs");
        }
        // Every log line is JSON with the standard fields.
        for line in logs.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("bad NDJSON line {line}: {e}"));
            for f in ["ts", "level", "area", "request_id", "tenant_id"] {
                assert!(v.get(f).is_some(), "log line lacks {f}: {line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429_with_retry_after() {
    let srv = start(
        "sqlite",
        vec![
            ("ECHOPILOT_RATE_LIMIT_PER_SEC".into(), "1".into()),
            ("ECHOPILOT_RATE_LIMIT_BURST".into(), "3".into()),
        ],
    )
    .await;
    let c = srv.client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(c.get("/api/v1/audit/chain").await);
    }
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("some request is limited");
    limited.assert_problem(429);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Health endpoints are not rate limited.
    assert_eq!(c.anonymous().get("/healthz").await.status, 200);
}

// ---- An independent RFC 6962 / RFC 9162 verifier (no code shared with the server). ----

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn unhex(s: &Value) -> [u8; 32] {
    hex::decode(s.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn verify_inclusion(
    leaf_hash: [u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf_hash);
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode % 2 == 1 || fnode == snode {
            r = sha(&[&[1], p, &r]);
            while fnode % 2 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = sha(&[&[1], &r, p]);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == root
}

fn verify_consistency(m: u64, n: u64, proof: &[[u8; 32]], old: [u8; 32], new: [u8; 32]) -> bool {
    if m == n {
        return proof.is_empty() && old == new;
    }
    let mut p = proof.to_vec();
    if m.is_power_of_two() {
        p.insert(0, old);
    }
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode % 2 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (p[0], p[0]);
    for c in &p[1..] {
        if snode == 0 {
            return false;
        }
        if fnode % 2 == 1 || fnode == snode {
            fr = sha(&[&[1], c, &fr]);
            sr = sha(&[&[1], c, &sr]);
            while fnode % 2 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = sha(&[&[1], &sr, c]);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == old && sr == new && snode == 0
}

fn proof_of(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().unwrap().iter().map(unhex).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_receipts_and_consistency_verify_independently() {
    for backend in common::backends() {
        // Hundreds of proof requests: lift the per-key rate limit for this test.
        let unlimited = vec![
            (
                "ECHOPILOT_RATE_LIMIT_PER_SEC".to_string(),
                "100000".to_string(),
            ),
            (
                "ECHOPILOT_RATE_LIMIT_BURST".to_string(),
                "100000".to_string(),
            ),
        ];
        let srv = start(backend, unlimited).await;
        let c = srv.client();
        let empty = c.get("/api/v1/audit/chain").await;
        assert_eq!(empty.body["size"], 1, "bootstrap key creation is record 0");

        // Grow the log: key creations and revocations are audited mutations.
        let mut roots = vec![];
        for i in 0..20 {
            let r = c
                .post(
                    "/api/v1/keys",
                    json!({"role": "readonly", "tenant": format!("t{}", i % 3)}),
                )
                .await;
            assert_eq!(r.status, 201);
            let chain = c.get("/api/v1/audit/chain").await;
            roots.push((
                chain.body["size"].as_u64().unwrap(),
                unhex(&chain.body["root"]),
            ));
        }
        let chain = c.get("/api/v1/audit/chain").await;
        let size = chain.body["size"].as_u64().unwrap();
        assert_eq!(size, 21);
        assert_eq!(chain.body["root"].as_str().unwrap().len(), 64);
        assert_eq!(chain.body["head"]["seq"], 20);

        // Every record's receipt verifies against every tree size that contains it.
        for (n, root) in &roots {
            for seq in 0..*n {
                let r = c
                    .get(&format!("/api/v1/audit/receipt/{seq}?size={n}"))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                let leaf = r.body["leaf"].as_str().unwrap();
                let lh = sha(&[&[0], leaf.as_bytes()]);
                assert_eq!(
                    lh,
                    unhex(&r.body["leaf_hash"]),
                    "leaf hash is SHA-256(0x00 ‖ leaf)"
                );
                assert_eq!(unhex(&r.body["root"]), *root);
                assert!(
                    verify_inclusion(lh, seq, *n, &proof_of(&r.body["proof"]), *root),
                    "receipt {seq}@{n}"
                );
                // The leaf is the record's canonical JSON.
                let rec: Value = serde_json::from_str(leaf).unwrap();
                assert_eq!(rec["seq"], seq);
                // A tampered leaf fails.
                let bad = sha(&[&[0], format!("{leaf} ").as_bytes()]);
                assert!(!verify_inclusion(
                    bad,
                    seq,
                    *n,
                    &proof_of(&r.body["proof"]),
                    *root
                ));
            }
        }
        // Consistency between every pair of observed sizes.
        for (m, old) in &roots {
            for (n, new) in &roots {
                if m > n {
                    continue;
                }
                let r = c
                    .get(&format!("/api/v1/audit/consistency?from={m}&to={n}"))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                assert!(
                    verify_consistency(*m, *n, &proof_of(&r.body["proof"]), *old, *new),
                    "consistency {m}→{n}"
                );
                assert!(
                    m == n || !verify_consistency(*m, *n, &proof_of(&r.body["proof"]), *new, *old)
                );
            }
        }

        // Another tenant's receipt is hidden from a tenant key.
        let t = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "zeta"}),
            )
            .await;
        let zeta = c.with_key(t.body["key"].as_str().unwrap());
        zeta.get("/api/v1/audit/receipt/0")
            .await
            .assert_problem(404);

        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.body["ok"], true, "{}", v.text);
    }
}

/// Modify a stored audit row directly in the database: verify must name it.
#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_catches_tampering() {
    use sqlx::Connection;
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();
        for i in 0..10 {
            c.post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": format!("v{i}")}),
            )
            .await;
        }
        assert_eq!(c.get("/api/v1/audit/verify").await.body["ok"], true);

        sqlx::any::install_default_drivers();
        let url = srv
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", srv.data_dir.join("echopilot.db").display()));
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 6")
            .execute(&mut conn)
            .await
            .unwrap();
        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.body["ok"], false, "{}", v.text);
        assert_eq!(v.body["first_bad_seq"], 6, "{}", v.text);

        // Restore it, then delete a row instead.
        sqlx::query("UPDATE audit_log SET outcome = 'ok' WHERE seq = 6")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(c.get("/api/v1/audit/verify").await.body["ok"], true);
        sqlx::query("DELETE FROM audit_log WHERE seq = 3")
            .execute(&mut conn)
            .await
            .unwrap();
        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.body["ok"], false);
        assert_eq!(v.body["first_bad_seq"], 3, "{}", v.text);
        let _ = conn.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_keys_config_errors_and_graceful_shutdown() {
    let bin = env!("CARGO_BIN_EXE_echopilot");
    let dir = tempfile::tempdir().unwrap();

    // Invalid config → exit 2 and a message naming the key.
    let out = std::process::Command::new(bin)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .env("ECHOPILOT_REQUEST_TIMEOUT_SECS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("request_timeout_secs") && err.contains("ECHOPILOT_REQUEST_TIMEOUT_SECS"),
        "{err}"
    );

    // `keys create` works on the data dir directly; the key then works over HTTP.
    let mut srv = Server::start_with(Opts {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    let out = std::process::Command::new(bin)
        .args([
            "keys",
            "create",
            "--role",
            "readonly",
            "--tenant",
            "cli-t",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let c = srv.client().with_key(&key);
    let s = c.get("/api/v1/status/summary").await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["server"]["tenant"], "cli-t");
    let out = std::process::Command::new(bin)
        .args(["keys", "list", "--json", "--data-dir"])
        .arg(dir.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("cli-t") && !listed.contains(&key));

    // SIGTERM → clean exit 0.
    assert_eq!(srv.terminate(), Some(0));

    // Bootstrap without a key writes admin.key with mode 0600.
    let dir2 = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir2.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .env_remove("ECHOPILOT_BOOTSTRAP_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let path = dir2.path().join("admin.key");
    let content = common::eventually(Duration::from_secs(30), "admin.key written", || {
        let p = path.clone();
        async move {
            std::fs::read_to_string(&p)
                .ok()
                .filter(|s| s.ends_with('\n'))
        }
    })
    .await;
    assert!(content.trim().starts_with("ep_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Fleet-wide switches (queue pause, self-heal, the scheduler) are not one tenant's to
/// flip: another tenant's operator is refused and the refusal is audited.
#[tokio::test(flavor = "multi_thread")]
async fn system_wide_actions_need_the_system_tenant() {
    let srv = start("sqlite", vec![]).await;
    let root = srv.client();
    let acme = root
        .post(
            "/api/v1/keys",
            json!({"role": "operator", "tenant": "acme"}),
        )
        .await;
    let acme = root.with_key(acme.body["key"].as_str().unwrap());
    let ops = root
        .post(
            "/api/v1/keys",
            json!({"role": "operator", "tenant": "default"}),
        )
        .await;
    let ops = root.with_key(ops.body["key"].as_str().unwrap());
    for path in [
        "/api/v1/queue/pause",
        "/api/v1/selfheal/run",
        "/api/v1/automations/stop",
    ] {
        acme.post(path, json!({})).await.assert_problem(403);
    }
    // The ops verbs refuse already at the dry-run (and again on confirm, which re-plans).
    for verb in ["pause_queue", "self_heal_run", "restart_scheduler"] {
        acme.post(
            "/api/v1/ops/command",
            json!({"verb": verb, "args": {}, "confirm": false}),
        )
        .await
        .assert_problem(403);
    }
    assert_eq!(root.get("/api/v1/queue/health").await.body["paused"], false);
    let denied = root
        .with_tenant("acme")
        .get("/api/v1/audit/records?action=queue.pause")
        .await;
    assert!(denied.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "denied"));
    assert!(
        !denied.body["records"].as_array().unwrap().is_empty(),
        "{}",
        denied.text
    );
    // The system tenant's operator may.
    assert_eq!(ops.post("/api/v1/queue/pause", json!({})).await.status, 200);
    assert_eq!(root.get("/api/v1/queue/health").await.body["paused"], true);
    assert_eq!(
        ops.post("/api/v1/queue/resume", json!({})).await.status,
        200
    );
}

/// Corrupt rows (JSON that does not parse, an unknown role, a stored status that is no
/// HTTP status) are answered with a 500 problem naming table, column and row — never a
/// silent `null`/default, never the stored content — and the server keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_rows_are_reported_not_hidden() {
    use sqlx::Connection;
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();
        let ro = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default"}),
            )
            .await;
        assert_eq!(ro.status, 201, "{}", ro.text);
        let ro_id = ro.body["id"].as_str().unwrap().to_string();
        let ro_key = ro.body["key"].as_str().unwrap().to_string();
        // The bootstrap key's record: the caller's tenant (default) sees it.
        let head = 0_i64;

        sqlx::any::install_default_drivers();
        let url = srv
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", srv.data_dir.join("echopilot.db").display()));
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();

        // audit_log.detail
        sqlx::query("UPDATE audit_log SET detail = '{\"role\": sk_secret' WHERE seq = $1")
            .bind(head)
            .execute(&mut conn)
            .await
            .unwrap();
        let r = c.get("/api/v1/audit/records").await;
        r.assert_problem(500);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("audit_log.detail (seq {head})"))
                && detail.contains("stored JSON is invalid"),
            "{backend}: {detail}"
        );
        assert!(
            !r.text.contains("sk_secret"),
            "stored content leaked: {}",
            r.text
        );
        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.status, 200, "{}", v.text);
        assert_eq!(v.body["ok"], false);
        assert_eq!(v.body["first_bad_seq"], head);
        assert!(
            v.body["reason"].as_str().unwrap().contains("corrupt"),
            "{}",
            v.text
        );

        // api_keys.role: listing names the row; the key itself fails closed.
        sqlx::query("UPDATE api_keys SET role = 'root' WHERE id = $1")
            .bind(&ro_id)
            .execute(&mut conn)
            .await
            .unwrap();
        let r = c.get("/api/v1/keys").await;
        r.assert_problem(500);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("api_keys.role ({ro_id})")) && detail.contains("unknown role"),
            "{backend}: {detail}"
        );
        c.with_key(&ro_key)
            .get("/api/v1/status/summary")
            .await
            .assert_problem(500);

        // idempotency_keys.body / .status of a stored answer (key creation is never
        // stored, so another POST).
        let idem = |body: Value| {
            c.req(reqwest::Method::POST, "/api/v1/queue/pause")
                .header("Idempotency-Key", "corrupt-1")
                .json(&body)
        };
        let body = json!({});
        let first = c.send(idem(body.clone())).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let again = c.send(idem(body.clone())).await;
        assert_eq!(again.headers["idempotent-replayed"], "true");
        sqlx::query("UPDATE idempotency_keys SET body = '{\"key\": ' WHERE idem_key = 'corrupt-1'")
            .execute(&mut conn)
            .await
            .unwrap();
        let r = c.send(idem(body.clone())).await;
        r.assert_problem(500);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("idempotency_keys.body"),
            "{}",
            r.text
        );
        sqlx::query(
            "UPDATE idempotency_keys SET body = '{}', status = 7 WHERE idem_key = 'corrupt-1'",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let r = c.send(idem(body)).await;
        r.assert_problem(500);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("not an HTTP status"),
            "{}",
            r.text
        );

        // Nothing panicked: the server still answers.
        assert_eq!(c.anonymous().get("/healthz").await.status, 200);
        let _ = conn.close().await;
    }
}
