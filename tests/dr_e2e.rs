//! End-to-end tests of disaster recovery against the real binary, on SQLite and
//! PostgreSQL: a backup taken while writes go on restores to the same rows and audit root
//! (rehearsal and `echopilot restore`), a changed or missing file fails by name, another
//! key does not open a backup, retention keeps exactly the policy's set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use common::{Client, Opts, Server};

const KEY1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const KEY2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

async fn start(backend: &str, env: &[(&str, &str)]) -> Server {
    let database_url = common::fresh_database(backend).await;
    Server::start_with(Opts {
        database_url,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

/// Start `job` through its DR route and wait for the run to finish; returns the run.
async fn run(c: &Client, path: &str, job: &str) -> Value {
    let r = c.post(path, json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["job"], job);
    let run_id = r.body["run_id"].as_str().unwrap().to_string();
    common::eventually(Duration::from_secs(120), "the DR run to finish", || {
        let (c, run_id) = (c.clone(), run_id.clone());
        async move {
            let runs = c
                .get(&format!("/api/v1/jobs/runs?job={job}&limit=20"))
                .await;
            runs.body["runs"]
                .as_array()?
                .iter()
                .find(|r| r["id"] == run_id.as_str() && r["outcome"] != "running")
                .cloned()
        }
    })
    .await
}

async fn metrics(srv: &Server) -> String {
    reqwest::get(format!("{}/metrics", srv.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled gauge on `/metrics`.
async fn gauge(srv: &Server, name: &str) -> f64 {
    let text = metrics(srv).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

async fn backups(c: &Client) -> Value {
    let r = c.get("/api/v1/dr/backups").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn latest_verify(c: &Client) -> Value {
    let r = c.get("/api/v1/dr/verify").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["latest"].clone()
}

fn backup_dir(srv: &Server, id: &str) -> PathBuf {
    srv.data_dir.join("backups").join(id)
}

/// `echopilot restore` with the given key; returns (exit code, stdout, stderr).
fn restore_cli(
    from: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    key: &str,
) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echopilot"));
    cmd.arg("restore")
        .arg("--from")
        .arg(from)
        .arg("--data-dir")
        .arg(data_dir)
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .env("ECHOPILOT_DR__KEY", key)
        .env_remove("ECHOPILOT_DATABASE_URL");
    if let Some(u) = database_url {
        cmd.arg("--database-url").arg(u);
    }
    let out = cmd.output().expect("run echopilot restore");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_writes_restores_to_the_same_rows_and_audit_root() {
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_DR__KEY", KEY1)]).await;
        let c = srv.client();

        // Writes go on while the backup runs: each key is a row plus an audit record.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (c, stop) = (c.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let r = c
                        .post(
                            "/api/v1/keys",
                            json!({"role": "readonly", "tenant": "acme"}),
                        )
                        .await;
                    assert_eq!(r.status, 201, "{}", r.text);
                    n += 1;
                }
                n
            })
        };
        common::eventually(
            Duration::from_secs(30),
            "some writes before the backup",
            || {
                let c = c.clone();
                async move {
                    let r = c.get("/api/v1/audit/chain").await;
                    (r.body["size"].as_i64()? > 5).then_some(())
                }
            },
        )
        .await;
        let b = run(&c, "/api/v1/dr/backups", "backup").await;
        assert_eq!(b["outcome"], "succeeded", "{backend}: {b}");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let written = writer.await.unwrap();
        assert!(written > 0);

        let list = backups(&c).await;
        let bk = &list["backups"][0];
        let m = &bk["manifest"];
        // /metrics carries the backup's creation time (alert on `time() - it`), set by the
        // backup itself: nothing has computed the status summary yet.
        let created_s = m["created_at_ms"].as_f64().unwrap() / 1000.0;
        assert!(
            (gauge(&srv, "echopilot_dr_last_backup_timestamp_seconds").await - created_s).abs()
                < 0.01,
            "{backend}"
        );
        assert_eq!(
            m["engine"],
            if backend == "postgres" {
                "postgres"
            } else {
                "sqlite"
            }
        );
        assert!(m["audit"]["size"].as_i64().unwrap() > 5, "{m}");
        assert!(m["row_counts"]["api_keys"].as_i64().unwrap() > 1, "{m}");
        assert_eq!(bk["present"], true);
        assert!(bk["verified"].is_null());
        let names: Vec<&str> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"config.toml.enc"), "{names:?}");
        // Nothing in the backup is readable without the key: no config value in clear.
        let dir = backup_dir(&srv, bk["id"].as_str().unwrap());
        for f in &names {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            assert!(bytes.starts_with(b"EPDRAES1"), "{f}");
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("acme") && !text.contains(&srv.key),
                "{f} has clear text"
            );
        }

        // The rehearsal restores it for real and proves it.
        let v = run(&c, "/api/v1/dr/verify", "dr_verify").await;
        assert_eq!(v["outcome"], "succeeded", "{backend}: {v}");
        let rep = latest_verify(&c).await;
        assert_eq!(rep["result"], "PASS", "{backend}: {rep}");
        assert_eq!(rep["backup_id"], bk["id"]);
        assert_eq!(rep["hashes_matching"], rep["file_count"]);
        let checks: Vec<&str> = rep["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for want in ["schema_version", "row_counts", "audit_verify", "audit_root"] {
            assert!(checks.contains(&want), "{checks:?}");
        }
        let integrity = if backend == "postgres" {
            "sanity_queries"
        } else {
            "integrity_check"
        };
        assert!(checks.contains(&integrity), "{checks:?}");
        assert!(
            rep["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true),
            "{rep}"
        );
        let list = backups(&c).await;
        assert_eq!(list["backups"][0]["verified"], "pass");
        assert!(list["measured_rpo_secs"].as_i64().is_some());
        assert!(
            (gauge(&srv, "echopilot_dr_last_verified_backup_timestamp_seconds").await - created_s)
                .abs()
                < 0.01,
            "{backend}"
        );
        let summary = c.get("/api/v1/status/summary").await;
        assert_eq!(
            summary.body["dr"]["last_verify"], "PASS",
            "{}",
            summary.text
        );
        assert_eq!(summary.body["dr"]["light"], "green", "{}", summary.text);
        let metrics = metrics(&srv).await;
        assert!(metrics.contains("echopilot_dr_backups_total"), "{metrics}");
        assert!(
            metrics.contains("echopilot_dr_last_verify_pass 1"),
            "{metrics}"
        );

        // Restore for real onto a fresh data dir (and a fresh database on PostgreSQL).
        let new_dir = tempfile::tempdir().unwrap();
        let target_db = common::fresh_database(backend).await;
        let (code, out, err) = restore_cli(&dir, new_dir.path(), target_db.as_deref(), KEY1);
        assert_eq!(code, 0, "{backend}: {out}\n{err}");
        assert!(
            out.contains(&format!("restored backup {}", bk["id"].as_str().unwrap())),
            "{out}"
        );
        assert!(out.contains("check audit_root: ok"), "{out}");
        assert!(out.contains("decrypt+load"), "{out}");
        // The parent directory instead of a backup: the error names the backup to pass.
        let other_dir = tempfile::tempdir().unwrap();
        let (code, _, err) = restore_cli(
            &srv.data_dir.join("backups"),
            other_dir.path(),
            target_db.as_deref(),
            KEY1,
        );
        assert_ne!(code, 0);
        assert!(
            err.contains("is not a backup directory")
                && err.contains(&format!("pass --from {}", dir.display())),
            "{err}"
        );
        if backend == "postgres" {
            // A database that does not exist: said once, with what to do.
            let missing = format!(
                "{}_missing",
                target_db
                    .as_deref()
                    .unwrap()
                    .rsplit_once('?')
                    .map_or(target_db.as_deref().unwrap(), |(u, _)| u)
            );
            let (code, _, err) = restore_cli(&dir, other_dir.path(), Some(&missing), KEY1);
            assert_ne!(code, 0);
            assert!(err.contains("create it first"), "{err}");
            assert_eq!(err.matches("does not exist").count(), 1, "{err}");
        }
        // A second restore onto the now non-empty dir is refused without --force.
        let (code, _, err) = restore_cli(&dir, new_dir.path(), None, KEY1);
        assert_ne!(code, 0);
        assert!(err.contains("not empty") || err.contains("in use"), "{err}");

        let restored = Server::start_with(Opts {
            data_dir: Some(new_dir.path().to_path_buf()),
            database_url: target_db.clone(),
            key: Some(srv.key.clone()),
            env: vec![("ECHOPILOT_DR__KEY".into(), KEY1.into())],
            ..Default::default()
        });
        let rc = restored.client();
        let verify = rc.get("/api/v1/audit/verify").await;
        assert_eq!(verify.status, 200, "{}", verify.text);
        assert_eq!(verify.body["ok"], true, "{backend}: {}", verify.text);
        // The same audit root at the backup's size, and the same rows.
        let size = m["audit"]["size"].as_i64().unwrap();
        let now = rc.get("/api/v1/audit/chain").await.body["size"]
            .as_i64()
            .unwrap();
        assert!(now >= size);
        let proof = rc
            .get(&format!("/api/v1/audit/consistency?from={size}&to={now}"))
            .await;
        assert_eq!(
            proof.body["from_root"], m["audit"]["root"],
            "{backend}: {}",
            proof.text
        );
        let keys = rc.get("/api/v1/keys?all=true").await;
        assert_eq!(keys.status, 200, "{}", keys.text);
        assert_eq!(
            keys.body["keys"].as_array().unwrap().len() as i64,
            m["row_counts"]["api_keys"].as_i64().unwrap(),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_missing_file_fails_the_rehearsal_by_name() {
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_DR__KEY", KEY1)]).await;
        let c = srv.client();
        assert_eq!(
            run(&c, "/api/v1/dr/backups", "backup").await["outcome"],
            "succeeded"
        );
        let bk = backups(&c).await["backups"][0].clone();
        let dir = backup_dir(&srv, bk["id"].as_str().unwrap());
        let db = bk["manifest"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "database")
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string();

        // One flipped byte in the middle of the database file.
        let path = dir.join(&db);
        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        std::fs::write(&path, &flipped).unwrap();
        let v = run(&c, "/api/v1/dr/verify", "dr_verify").await;
        assert_eq!(v["outcome"], "failed", "{backend}: {v}");
        let rep = latest_verify(&c).await;
        assert_eq!(rep["result"], "FAIL", "{rep}");
        let failures = rep["failures"].to_string();
        assert!(
            failures.contains(&db) && failures.contains("SHA-256"),
            "{backend}: {failures}"
        );
        assert_eq!(
            rep["hashes_matching"].as_i64().unwrap() + 1,
            rep["file_count"].as_i64().unwrap()
        );
        // The FAIL raised an alert carrying the log.
        let alerts = c.get("/api/v1/alerts").await;
        assert!(
            alerts.text.contains("DR restore rehearsal FAILED"),
            "{}",
            alerts.text
        );
        assert!(alerts.text.contains("dr.ndjson"), "{}", alerts.text);
        let summary = c.get("/api/v1/status/summary").await;
        assert_eq!(summary.body["dr"]["light"], "red", "{}", summary.text);

        // Put it back, delete the config file instead.
        std::fs::write(&path, &original).unwrap();
        std::fs::remove_file(dir.join("config.toml.enc")).unwrap();
        run(&c, "/api/v1/dr/verify", "dr_verify").await;
        let rep = latest_verify(&c).await;
        assert_eq!(rep["result"], "FAIL", "{rep}");
        let failures = rep["failures"].to_string();
        assert!(
            failures.contains("config.toml.enc: file is missing"),
            "{backend}: {failures}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_does_not_restore_and_no_key_is_a_clear_error() {
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_DR__KEY", KEY1)]).await;
        let c = srv.client();
        assert_eq!(
            run(&c, "/api/v1/dr/backups", "backup").await["outcome"],
            "succeeded"
        );
        let bk = backups(&c).await["backups"][0].clone();
        let dir = backup_dir(&srv, bk["id"].as_str().unwrap());
        let new_dir = tempfile::tempdir().unwrap();
        let target_db = common::fresh_database(backend).await;
        let (code, out, err) = restore_cli(&dir, new_dir.path(), target_db.as_deref(), KEY2);
        assert_ne!(code, 0, "{out}");
        assert!(err.contains("encrypted with key id"), "{err}");
        assert_eq!(
            std::fs::read_dir(new_dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
        // A key id is not a key: the key never shows.
        assert!(!err.contains(KEY1) && !err.contains(KEY2));

        // The same data served with another key: the rehearsal FAILs on the key, by id.
        let mut srv = srv;
        srv.kill9();
        let other = Server::start_with(Opts {
            data_dir: Some(srv.data_dir.clone()),
            database_url: srv.database_url.clone(),
            key: Some(srv.key.clone()),
            env: vec![("ECHOPILOT_DR__KEY".into(), KEY2.into())],
            ..Default::default()
        });
        let oc = other.client();
        let v = run(&oc, "/api/v1/dr/verify", "dr_verify").await;
        assert_eq!(v["outcome"], "failed", "{backend}: {v}");
        let rep = latest_verify(&oc).await;
        assert_eq!(rep["result"], "FAIL", "{backend}: {rep}");
        assert_eq!(rep["backup_id"], bk["id"]);
        let failures = rep["failures"].to_string();
        assert!(
            failures.contains("key: backup") && failures.contains("encrypted with key id"),
            "{backend}: {failures}"
        );
        assert!(!rep.to_string().contains(KEY1) && !rep.to_string().contains(KEY2));
    }
    // Without a key, starting a backup is refused naming where the key comes from.
    let srv = Server::start();
    let c = srv.client();
    let r = c.post("/api/v1/dr/backups", json!({})).await;
    r.assert_problem(409);
    assert!(r.text.contains("ECHOPILOT_DR__KEY"), "{}", r.text);
    // The start routes take no body: a body that says something is refused, not ignored
    // (before: malformed JSON got 202 and started a run).
    for path in ["/api/v1/dr/backups", "/api/v1/dr/verify"] {
        let raw = |body: &'static str, ct: &'static str| {
            c.req(reqwest::Method::POST, path)
                .header("content-type", ct)
                .body(body)
        };
        c.send(raw("{\"bogus\":", "application/json"))
            .await
            .assert_problem(400);
        c.send(raw("{\"keep\": 3}", "application/json"))
            .await
            .assert_problem(422);
        c.send(raw("[1]", "application/json"))
            .await
            .assert_problem(422);
        c.send(raw("x", "text/plain")).await.assert_problem(415);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_exactly_the_policy_set_and_roles_are_enforced() {
    for backend in common::backends() {
        // Same-day backups: keep_daily = 2 keeps only the newest of today.
        let srv = start(
            backend,
            &[
                ("ECHOPILOT_DR__KEY", KEY1),
                ("ECHOPILOT_DR__KEEP_DAILY", "2"),
                ("ECHOPILOT_DR__KEEP_WEEKLY", "0"),
                ("ECHOPILOT_DR__KEEP_MONTHLY", "0"),
            ],
        )
        .await;
        let c = srv.client();
        // What an interrupted backup and rehearsal leave (clear copies of the database) is
        // removed by the next run.
        let root = srv.data_dir.join("backups");
        for (d, f) in [
            (".bk_20260101T000000Z_abc.partial", ".database.sqlite.plain"),
            (".rehearsal-drv_interrupted", "echopilot.db"),
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
            std::fs::write(root.join(d).join(f), "clear tenant data").unwrap();
        }
        let mut ids = Vec::new();
        for i in 0..4 {
            assert_eq!(
                run(&c, "/api/v1/dr/backups", "backup").await["outcome"],
                "succeeded"
            );
            ids.push(
                backups(&c).await["backups"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            if i == 1 {
                // The newest backup that passed a rehearsal is kept whatever the policy.
                let v = run(&c, "/api/v1/dr/verify", "dr_verify").await;
                assert_eq!(v["outcome"], "succeeded", "{backend}: {v}");
            }
        }
        let list = backups(&c).await;
        let kept: Vec<&str> = list["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap())
            .collect();
        // keep_daily = 2 over same-day backups keeps the newest of today; plus the verified.
        assert_eq!(kept, vec![ids[3].as_str(), ids[1].as_str()], "{backend}");
        assert_eq!(list["backups"][1]["verified"], "pass");
        let mut on_disk: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut want = vec![ids[1].clone(), ids[3].clone()];
        want.sort();
        assert_eq!(
            on_disk, want,
            "{backend}: exactly the kept set, nothing else"
        );

        // DR is fleet-level: a tenant's admin and a readonly key of the system tenant may not
        // start one; the tenant's admin may not even read it.
        let mk = |role: &str, tenant: &str| {
            let c = c.clone();
            let (role, tenant) = (role.to_string(), tenant.to_string());
            async move {
                let r = c
                    .post("/api/v1/keys", json!({"role": role, "tenant": tenant}))
                    .await;
                c.with_key(r.body["key"].as_str().unwrap())
            }
        };
        let tenant_admin = mk("admin", "acme").await;
        tenant_admin
            .post("/api/v1/dr/backups", json!({}))
            .await
            .assert_problem(403);
        tenant_admin
            .get("/api/v1/dr/backups")
            .await
            .assert_problem(403);
        // Nor may an operator of the system tenant, through the scheduler's own doors.
        let op = mk("operator", "default").await;
        op.post("/api/v1/dr/backups", json!({}))
            .await
            .assert_problem(403);
        for job in ["backup", "dr_verify"] {
            let r = op.post(&format!("/api/v1/jobs/{job}/run"), json!({})).await;
            r.assert_problem(403);
            assert!(r.text.contains("role admin"), "{}", r.text);
            op.post(
                "/api/v1/ops/command",
                json!({"verb": "run_job", "args": {"job": job}, "confirm": false}),
            )
            .await
            .assert_problem(403);
        }
        // Other jobs stay an operator's to start.
        let r = op.post("/api/v1/jobs/retention/run", json!({})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let ro = mk("readonly", "default").await;
        ro.post("/api/v1/dr/verify", json!({}))
            .await
            .assert_problem(403);
        c.anonymous()
            .get("/api/v1/dr/verify")
            .await
            .assert_problem(401);
    }
    // `[modules] dr = false` is the rollback: the routes answer 404 naming the module.
    let srv = Server::start_with(Opts {
        env: vec![("ECHOPILOT_MODULES__DR".into(), "false".into())],
        ..Default::default()
    });
    let r = srv.client().get("/api/v1/dr/backups").await;
    r.assert_problem(404);
    assert_eq!(r.body["module"], "dr");
}
