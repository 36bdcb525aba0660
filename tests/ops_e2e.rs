//! End-to-end tests of the ops command protocol and telemetry against the real binary,
//! on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::{Client, Opts, Server};

const CMD: &str = "/api/v1/ops/command";

async fn start(backend: &str) -> Server {
    let database_url = common::fresh_database(backend).await;
    Server::start_with(Opts {
        database_url,
        env: [
            ("ECHOPILOT_TELEMETRY__SAMPLE_INTERVAL_SECS", "1"),
            ("ECHOPILOT_QUEUE__BACKOFF_BASE_MS", "100"),
            ("ECHOPILOT_QUEUE__BACKOFF_CAP_MS", "400"),
            ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
            ("ECHOPILOT_RATE_LIMIT_PER_SEC", "100000"),
            ("ECHOPILOT_RATE_LIMIT_BURST", "100000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    })
}

async fn create_key(c: &Client, role: &str, tenant: &str) -> (String, String) {
    let r = c
        .post("/api/v1/keys", json!({"role": role, "tenant": tenant}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["key"].as_str().unwrap().to_string(),
    )
}

async fn dry_run(c: &Client, verb: &str, args: Value) -> Value {
    let r = c
        .post(CMD, json!({"verb": verb, "args": args, "confirm": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn audit_records(c: &Client, action: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/api/v1/audit/records?action={action}&limit=1000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["records"].as_array().unwrap().clone()
}

/// The server's database, to change stored rows directly.
async fn store_of(srv: &Server) -> echopilot_backend::Store {
    let url = match &srv.database_url {
        Some(u) => u.clone(),
        None => echopilot_backend::store::sqlite_url(&srv.data_dir.join("echopilot.db")),
    };
    echopilot_backend::Store::connect(&url, 1).await.unwrap()
}

/// Change a stored plan directly (the only way to age one past 5 minutes in a test).
async fn expire_plan(srv: &Server, plan_id: &str) {
    let store = store_of(srv).await;
    sqlx::query("UPDATE ops_plans SET expires_at = 0 WHERE plan_id = $1")
        .bind(plan_id)
        .execute(store.writer())
        .await
        .unwrap();
    store.close().await;
}

/// A corrupt plan row (plan JSON, risk, stored result) is a 500 naming table, column and
/// plan — not a silent default, not a panic — and nothing is executed from it.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_plan_rows_are_reported() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        let store = store_of(&srv).await;
        let args = json!({"area": "server", "lines": 5});
        let confirm =
            |pid: &str| json!({"verb": "tail_logs", "args": args, "confirm": true, "plan_id": pid});
        let corrupt = |sql: &'static str, pid: String| {
            let store = store.clone();
            async move {
                let n = sqlx::query(sql)
                    .bind(pid)
                    .execute(store.writer())
                    .await
                    .unwrap()
                    .rows_affected();
                assert_eq!(n, 1);
            }
        };

        for (sql, column) in [
            (
                "UPDATE ops_plans SET plan = '{\"summary\": ' WHERE plan_id = $1",
                "plan",
            ),
            (
                "UPDATE ops_plans SET risk = 'extreme' WHERE plan_id = $1",
                "risk",
            ),
        ] {
            let p = dry_run(&c, "tail_logs", args.clone()).await;
            let pid = p["plan_id"].as_str().unwrap().to_string();
            corrupt(sql, pid.clone()).await;
            let r = c.post(CMD, confirm(&pid)).await;
            r.assert_problem(500);
            let detail = r.body["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("ops_plans.{column} ({pid})")),
                "{backend}: {detail}"
            );
        }
        assert!(
            audit_records(&c, "ops.confirm").await.is_empty(),
            "nothing ran"
        );

        // A confirmed plan whose stored answer no longer parses is not replayed as null.
        let p = dry_run(&c, "tail_logs", args.clone()).await;
        let pid = p["plan_id"].as_str().unwrap().to_string();
        assert_eq!(c.post(CMD, confirm(&pid)).await.status, 200);
        corrupt(
            "UPDATE ops_plans SET result = '[1, ' WHERE plan_id = $1",
            pid.clone(),
        )
        .await;
        let r = c.post(CMD, confirm(&pid)).await;
        r.assert_problem(500);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("ops_plans.result ({pid})")),
            "{}",
            r.text
        );
        assert_eq!(audit_records(&c, "ops.confirm").await.len(), 1, "ran once");
        assert_eq!(c.anonymous().get("/healthz").await.status, 200);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ops_protocol_end_to_end() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();

        // The registry.
        let r = c.get("/api/v1/ops/verbs").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let verbs = r.body["verbs"].as_array().unwrap();
        let tail = verbs
            .iter()
            .find(|v| v["name"] == "tail_logs")
            .expect("tail_logs listed");
        for f in [
            "aliases",
            "description",
            "args",
            "risk",
            "min_role",
            "mutating",
        ] {
            assert!(!tail[f].is_null(), "verb field {f} missing: {tail}");
        }
        assert_eq!(tail["risk"], "low");
        assert_eq!(tail["mutating"], false);
        assert_eq!(tail["min_role"], "readonly");
        for v in verbs {
            assert!(v["risk"] == "low" || v["risk"] == "high", "{v}");
        }

        // Unknown verb → 400; invalid args → 422.
        c.post(CMD, json!({"verb": "format_disk", "args": {}}))
            .await
            .assert_problem(400);
        let r = c
            .post(CMD, json!({"verb": "tail_logs", "args": {"lines": 0}}))
            .await;
        r.assert_problem(422);
        assert!(
            r.body["detail"].as_str().unwrap().contains("lines"),
            "{}",
            r.text
        );
        c.post(CMD, json!({"verb": "tail_logs", "args": {"area": "nope"}}))
            .await
            .assert_problem(422);

        // Dry-run: a plan, stored and audited; nothing executed.
        let args = json!({"area": "server", "lines": 20});
        let plan = dry_run(&c, "tail_logs", args.clone()).await;
        assert_eq!(plan["dry_run"], true);
        assert_eq!(plan["risk"], "low");
        assert!(plan["plan"]["summary"].as_str().unwrap().contains("server"));
        assert!(plan["plan"]["steps"].is_array() && plan["plan"]["effects"].is_array());
        assert!(plan["expires_at"].is_string());
        let plan_id = plan["plan_id"].as_str().unwrap().to_string();
        assert!(audit_records(&c, "ops.confirm").await.is_empty());
        let dry = audit_records(&c, "ops.dry_run").await;
        assert!(dry
            .iter()
            .any(|r| r["target"] == "tail_logs" && r["detail"]["plan_id"] == json!(plan_id)));

        // Confirm by alias with the same args: executes, audited with its seq.
        let body = json!({"verb": "logs", "args": args, "confirm": true, "plan_id": plan_id});
        let r = c.post(CMD, body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["dry_run"], false);
        assert!(r.body["result"]["lines"].is_array(), "{}", r.text);
        let seq = r.body["audit_seq"].as_i64().expect("audit_seq");
        let confirms = audit_records(&c, "ops.confirm").await;
        assert_eq!(confirms.len(), 1);
        assert_eq!(confirms[0]["seq"], json!(seq));
        assert_eq!(confirms[0]["target"], "tail_logs");
        assert_eq!(confirms[0]["detail"]["plan_id"], json!(plan_id));
        assert_eq!(confirms[0]["detail"]["args"], args);

        // Confirming again replays the first result and runs nothing.
        let again = c.post(CMD, body).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body, r.body);
        assert_eq!(audit_records(&c, "ops.confirm").await.len(), 1);

        // Mismatched args, foreign key, foreign tenant, expired → 409.
        let p = dry_run(&c, "tail_logs", json!({"lines": 5})).await;
        let pid = p["plan_id"].as_str().unwrap();
        c.post(
            CMD,
            json!({"verb": "tail_logs", "args": {"lines": 6}, "confirm": true, "plan_id": pid}),
        )
        .await
        .assert_problem(409);
        let (_, other_key) = create_key(&c, "operator", "default").await;
        c.with_key(&other_key)
            .post(
                CMD,
                json!({"verb": "tail_logs", "args": {"lines": 5}, "confirm": true, "plan_id": pid}),
            )
            .await
            .assert_problem(409);
        let (_, other_tenant_key) = create_key(&c, "admin", "acme").await;
        c.with_key(&other_tenant_key)
            .post(
                CMD,
                json!({"verb": "tail_logs", "args": {"lines": 5}, "confirm": true, "plan_id": pid}),
            )
            .await
            .assert_problem(409);
        expire_plan(&srv, pid).await;
        let r = c
            .post(
                CMD,
                json!({"verb": "tail_logs", "args": {"lines": 5}, "confirm": true, "plan_id": pid}),
            )
            .await;
        r.assert_problem(409);
        assert!(
            r.body["detail"].as_str().unwrap().contains("expired"),
            "{}",
            r.text
        );
        // Confirm without a plan_id is invalid.
        c.post(
            CMD,
            json!({"verb": "tail_logs", "args": {}, "confirm": true}),
        )
        .await
        .assert_problem(422);

        // An integration key is below tail_logs' min_role: 403, audited.
        let (int_id, int_key) = create_key(&c, "integration", "default").await;
        c.with_key(&int_key)
            .post(CMD, json!({"verb": "tail_logs", "args": {}}))
            .await
            .assert_problem(403);
        let denied = audit_records(&c, "ops.dry_run").await;
        assert!(denied
            .iter()
            .any(|r| r["outcome"] == "denied" && r["actor"] == json!(int_id)));

        // Both steps reach ops_console.ndjson.
        let logs = common::eventually(Duration::from_secs(10), "ops_console log", || {
            let logs = srv.read_logs();
            async move {
                (logs.contains("\"area\":\"ops_console\"")
                    && logs.contains("ops command confirmed"))
                .then_some(logs)
            }
        })
        .await;
        assert!(logs.contains("ops dry-run planned"));
    }
}

async fn tail(c: &Client, area: &str, lines: u64) -> Value {
    let args = json!({"area": area, "lines": lines});
    let plan = dry_run(c, "tail_logs", args.clone()).await;
    let r = c
        .post(
            CMD,
            json!({"verb": "tail_logs", "args": args, "confirm": true, "plan_id": plan["plan_id"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["result"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_logs_never_shows_a_key() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        let (_, key) = create_key(&c, "operator", "default").await;
        // Use the key, and put it where a careless logger would write it: the path.
        assert_eq!(c.with_key(&key).get("/api/v1/tenants").await.status, 200);
        let r = c.get(&format!("/api/v1/no-such-route/{key}")).await;
        assert_eq!(r.status, 404);
        let r = c.with_key(&format!("{key}x")).get("/api/v1/tenants").await;
        assert_eq!(r.status, 401);
        // And a line that leaked it anyway (written straight into the log file).
        let day = chrono_day();
        let leak = srv.data_dir.join(format!("logs/server.{day}.ndjson"));
        common::eventually(Duration::from_secs(10), "server log file", || {
            let ok = leak.exists();
            async move { ok.then_some(()) }
        })
        .await;
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&leak)
                .unwrap();
            writeln!(f, "{{\"msg\":\"leaked {key}\",\"tenant_id\":\"default\"}}").unwrap();
        }
        let result = tail(&c, "server", 1000).await;
        let text = result.to_string();
        assert!(result["count"].as_u64().unwrap() > 0, "{text}");
        assert!(!text.contains(&key), "tail_logs returned the key");
        assert!(text.contains("ep_[REDACTED]"), "{text}");
        assert!(
            text.contains("no-such-route"),
            "the requests were logged: {text}"
        );
        let sec = tail(&c, "security", 200).await.to_string();
        assert!(!sec.contains(&key));

        // A non-superadmin sees only its own tenant's lines.
        let (_, acme) = create_key(&c, "admin", "acme").await;
        let acme_c = c.with_key(&acme);
        assert_eq!(acme_c.get("/api/v1/tenants").await.status, 200);
        let res = tail(&acme_c, "server", 1000).await;
        assert_eq!(res["tenant_filter"], "acme");
        for l in res["lines"].as_array().unwrap() {
            let v: Value = serde_json::from_str(l.as_str().unwrap()).unwrap();
            assert_eq!(v["tenant_id"], "acme", "{l}");
        }
    }
}

fn chrono_day() -> String {
    // The log file name's date (UTC), as tracing-appender's daily rotation names it.
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_history_and_system_health() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        // Some traffic for the api component, including a client error.
        for _ in 0..5 {
            assert_eq!(c.get("/api/v1/tenants").await.status, 200);
        }
        assert_eq!(c.get("/api/v1/nope").await.status, 404);

        let r = c.get("/api/v1/ops/telemetry").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let overall = r.body["overall"].as_str().unwrap();
        assert!(["green", "yellow", "red"].contains(&overall), "{}", r.text);
        let comps = r.body["components"].as_object().unwrap();
        for name in [
            "scheduler",
            "queue",
            "database",
            "system",
            "alerts",
            "audit",
            "api",
        ] {
            let comp = &comps[name];
            let st = comp["status"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {comp}"));
            assert!(
                ["green", "yellow", "red", "absent"].contains(&st),
                "{name}: {comp}"
            );
            assert!(comp["details"].is_object(), "{name}: {comp}");
        }
        assert_eq!(comps["database"]["status"], "green", "{}", r.text);
        // Every area of this build reports live figures, none is absent.
        for name in ["scheduler", "queue", "alerts"] {
            assert_ne!(comps[name]["status"], "absent", "{name}: {}", r.text);
        }
        assert!(
            comps["alerts"]["details"]["channels"].is_array(),
            "{}",
            r.text
        );
        assert!(comps["api"]["details"]["requests"].as_u64().unwrap() >= 6);
        assert!(comps["api"]["details"]["p95_ms"].is_number());
        assert!(comps["audit"]["details"]["records"].as_i64().unwrap() >= 1);

        let samples = common::eventually(Duration::from_secs(15), "two telemetry samples", || {
            let c = c.clone();
            async move {
                let r = c.get("/api/v1/ops/telemetry/history?minutes=60").await;
                assert_eq!(r.status, 200, "{}", r.text);
                let s = r.body["samples"].as_array().cloned().unwrap_or_default();
                (s.len() >= 2).then_some(s)
            }
        })
        .await;
        for s in &samples {
            for f in [
                "ts",
                "cpu_pct",
                "mem_pct",
                "disk_pct",
                "queue_depth",
                "api_p95_ms",
                "error_rate",
            ] {
                assert!(s.get(f).is_some(), "sample field {f} missing: {s}");
            }
            assert!(s["ts"].is_string());
            let cpu = s["cpu_pct"].as_f64().expect("cpu_pct");
            let mem = s["mem_pct"].as_f64().expect("mem_pct");
            assert!(
                (0.0..=100.0).contains(&cpu) && (0.0..=100.0).contains(&mem),
                "{s}"
            );
        }
        let r = c.get("/api/v1/ops/telemetry").await;
        assert_eq!(
            r.body["components"]["system"]["details"]["cpus"]
                .as_u64()
                .map(|n| n > 0),
            Some(true),
            "{}",
            r.text
        );
        c.get("/api/v1/ops/telemetry/history?minutes=0")
            .await
            .assert_problem(422);
        c.get("/api/v1/ops/telemetry/history?minutes=61")
            .await
            .assert_problem(422);

        let r = c.get("/api/v1/system-health").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["ok"].is_boolean());
        assert!(r.body["issues"].is_array());
        let comps = r.body["components"].as_object().unwrap();
        for name in [
            "database",
            "migrations",
            "database_write",
            "audit",
            "disk",
            "logs",
            "telemetry_sampler",
        ] {
            let p = &comps[name];
            assert!(
                p["status"].is_string() && p["detail"].is_string(),
                "{name}: {p}"
            );
        }
        assert_eq!(comps["database"]["status"], "ok");
        assert_eq!(comps["migrations"]["status"], "ok");
        for name in ["queue", "scheduler", "alerts"] {
            assert_eq!(comps[name]["status"], "ok", "{name}: {}", r.text);
        }
        if r.body["ok"] == true {
            assert!(r.body["issues"].as_array().unwrap().is_empty());
        } else {
            assert!(!r.body["issues"].as_array().unwrap().is_empty());
        }

        // Readonly keys may read telemetry; anonymous callers may not.
        let (_, ro) = create_key(&c, "readonly", "default").await;
        assert_eq!(
            c.with_key(&ro).get("/api/v1/ops/telemetry").await.status,
            200
        );
        c.anonymous()
            .get("/api/v1/system-health")
            .await
            .assert_problem(401);
    }
}

async fn confirm(
    c: &Client,
    verb: &str,
    args: Value,
    plan: &Value,
    reason: Option<&str>,
) -> common::Resp {
    let mut body = json!({"verb": verb, "args": args, "confirm": true, "plan_id": plan["plan_id"]});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    c.post(CMD, body).await
}

async fn enqueue_dead(c: &Client) -> String {
    let r = c
        .post(
            "/api/v1/queue/enqueue",
            json!({"kind": "fail", "payload": {"until_attempt": 100}, "max_attempts": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_job(c, &id, "dead").await;
    id
}

async fn wait_job(c: &Client, id: &str, state: &str) -> Value {
    common::eventually(
        Duration::from_secs(30),
        &format!("job {id} {state}"),
        || async {
            let r = c.get(&format!("/api/v1/queue/jobs/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            (r.body["state"] == state).then_some(r.body)
        },
    )
    .await
}

async fn paused(c: &Client) -> bool {
    let r = c.get("/api/v1/queue/health").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["paused"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_and_self_heal_verbs() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        let r = c.get("/api/v1/ops/verbs").await;
        let verbs = r.body["verbs"].as_array().unwrap().clone();
        let find = |n: &str| {
            verbs
                .iter()
                .find(|v| v["name"] == n)
                .cloned()
                .unwrap_or_else(|| panic!("verb {n} missing: {}", r.text))
        };
        for (name, risk) in [
            ("pause_queue", "low"),
            ("resume_queue", "low"),
            ("retry_job", "low"),
            ("purge_dlq", "high"),
            ("self_heal_run", "low"),
        ] {
            let v = find(name);
            assert_eq!(v["risk"], risk, "{v}");
            assert_eq!(v["mutating"], true, "{v}");
            assert_eq!(v["min_role"], "operator", "{v}");
        }

        // pause_queue: the dry-run changes nothing; a readonly key cannot confirm.
        let plan = dry_run(&c, "pause_queue", json!({})).await;
        assert!(!paused(&c).await, "a dry-run paused the queue");
        let (_, ro) = create_key(&c, "readonly", "default").await;
        confirm(&c.with_key(&ro), "pause_queue", json!({}), &plan, None)
            .await
            .assert_problem(403);
        assert!(!paused(&c).await);
        let denied = audit_records(&c, "ops.confirm").await;
        assert!(denied
            .iter()
            .any(|r| r["outcome"] == "denied" && r["target"] == "pause_queue"));
        let r = confirm(&c, "pause_queue", json!({}), &plan, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"], json!({"paused": true, "changed": true}));
        assert!(paused(&c).await);
        assert!(
            !audit_records(&c, "queue.pause").await.is_empty(),
            "the queue's own record"
        );

        // The world changes between plan and confirm → 409, nothing runs.
        let plan = dry_run(&c, "resume_queue", json!({})).await;
        assert_eq!(c.post("/api/v1/queue/resume", json!({})).await.status, 200);
        let before = audit_records(&c, "queue.resume").await.len();
        let r = confirm(&c, "resume_queue", json!({}), &plan, None).await;
        r.assert_problem(409);
        assert!(
            r.body["detail"].as_str().unwrap().contains("changed"),
            "{}",
            r.text
        );
        assert_eq!(
            audit_records(&c, "queue.resume").await.len(),
            before,
            "nothing ran"
        );
        assert!(!paused(&c).await);

        // retry_job on a dead job.
        let dead = enqueue_dead(&c).await;
        dry_run_status(&c, "retry_job", json!({"id": "job_nope"}), 404).await;
        dry_run_status(&c, "retry_job", json!({}), 422).await;
        let plan = dry_run(&c, "retry_job", json!({"id": dead})).await;
        assert!(plan["plan"]["summary"].as_str().unwrap().contains(&dead));
        assert_eq!(wait_job(&c, &dead, "dead").await["state"], "dead");
        let r = confirm(&c, "retry_job", json!({"id": dead}), &plan, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"]["state"], "queued");
        wait_job(&c, &dead, "dead").await;
        // A job that is not dead cannot be planned for retry.
        let ok = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": 1}),
            )
            .await;
        let ok_id = ok.body["id"].as_str().unwrap().to_string();
        wait_job(&c, &ok_id, "succeeded").await;
        dry_run_status(&c, "retry_job", json!({"id": ok_id}), 409).await;

        // purge_dlq: high risk needs a reason; a job that died after the plan → 409.
        let plan = dry_run(&c, "purge_dlq", json!({})).await;
        assert_eq!(plan["risk"], "high");
        assert!(
            plan["plan"]["summary"].as_str().unwrap().contains("1 dead"),
            "{plan}"
        );
        confirm(&c, "purge_dlq", json!({}), &plan, None)
            .await
            .assert_problem(422);
        assert_eq!(wait_job(&c, &dead, "dead").await["state"], "dead");
        let second = enqueue_dead(&c).await;
        confirm(&c, "purge_dlq", json!({}), &plan, Some("cleanup"))
            .await
            .assert_problem(409);
        let plan = dry_run(&c, "purge_dlq", json!({})).await;
        assert!(
            plan["plan"]["summary"].as_str().unwrap().contains("2 dead"),
            "{plan}"
        );
        let r = confirm(
            &c,
            "purge_dlq",
            json!({}),
            &plan,
            Some("cleanup after test"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"]["purged"], 2);
        let again = confirm(
            &c,
            "purge_dlq",
            json!({}),
            &plan,
            Some("cleanup after test"),
        )
        .await;
        assert_eq!(again.body, r.body, "the repeat replays the first answer");
        c.get(&format!("/api/v1/queue/jobs/{second}"))
            .await
            .assert_problem(404);
        let rec = audit_records(&c, "ops.confirm")
            .await
            .into_iter()
            .find(|x| x["seq"] == r.body["audit_seq"])
            .expect("ops.confirm record");
        assert_eq!(rec["detail"]["reason"], "cleanup after test");
        assert_eq!(audit_records(&c, "queue.dlq.purge").await.len(), 1);

        // self_heal_run runs the safe remediations.
        let plan = dry_run(&c, "self_heal_run", json!({})).await;
        assert_eq!(plan["plan"]["steps"].as_array().unwrap().len(), 3, "{plan}");
        let r = confirm(&c, "self_heal_run", json!({}), &plan, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["result"]["actions"].as_array().unwrap().len(),
            3,
            "{}",
            r.text
        );

        // Telemetry now has a live queue component and queue depth samples.
        let t = c.get("/api/v1/ops/telemetry").await;
        assert_ne!(
            t.body["components"]["queue"]["status"], "absent",
            "{}",
            t.text
        );
        assert!(
            t.body["components"]["queue"]["details"]["depth"].is_object(),
            "{}",
            t.text
        );
        common::eventually(Duration::from_secs(10), "a queue_depth sample", || {
            let c = c.clone();
            async move {
                let h = c.get("/api/v1/ops/telemetry/history?minutes=1").await;
                h.body["samples"]
                    .as_array()
                    .and_then(|s| s.last().cloned())
                    .filter(|s| s["queue_depth"].is_number())
            }
        })
        .await;
        let h = c.get("/api/v1/system-health").await;
        assert_eq!(h.body["components"]["queue"]["status"], "ok", "{}", h.text);
    }
}

async fn dry_run_status(c: &Client, verb: &str, args: Value, status: u16) {
    c.post(CMD, json!({"verb": verb, "args": args, "confirm": false}))
        .await
        .assert_problem(status);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_verbs() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        let r = c.get("/api/v1/ops/verbs").await;
        let verbs = r.body["verbs"].as_array().unwrap().clone();
        let run_job = verbs
            .iter()
            .find(|v| v["name"] == "run_job")
            .expect("run_job");
        assert_eq!(run_job["risk"], "low");
        let names = run_job["args"]["properties"]["job"]["enum"]
            .as_array()
            .unwrap();
        assert!(names.contains(&json!("health_probe")), "{run_job}");
        let restart = verbs
            .iter()
            .find(|v| v["name"] == "restart_scheduler")
            .expect("restart_scheduler");
        assert_eq!(restart["risk"], "high");

        // run_job: unknown job → 422 (not in the enum); a key of another tenant → 403.
        dry_run_status(&c, "run_job", json!({"job": "nope"}), 422).await;
        let (_, acme) = create_key(&c, "admin", "acme").await;
        c.with_key(&acme)
            .post(
                CMD,
                json!({"verb": "run_job", "args": {"job": "health_probe"}}),
            )
            .await
            .assert_problem(403);
        let manual_runs = |c: Client| async move {
            let r = c.get("/api/v1/jobs/runs?job=health_probe").await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["runs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["trigger"] == "manual")
                .cloned()
                .collect::<Vec<_>>()
        };
        let args = json!({"job": "health_probe"});
        let plan = dry_run(&c, "run_job", args.clone()).await;
        assert!(plan["plan"]["summary"]
            .as_str()
            .unwrap()
            .contains("health_probe"));
        assert!(
            manual_runs(c.clone()).await.is_empty(),
            "a dry-run started a run"
        );
        let r = confirm(&c, "run_job", args, &plan, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let run_id = r.body["result"]["run_id"].as_str().unwrap().to_string();
        common::eventually(Duration::from_secs(30), "the manual run", || {
            let c = c.clone();
            let run_id = run_id.clone();
            async move {
                manual_runs(c)
                    .await
                    .into_iter()
                    .find(|r| r["id"] == json!(run_id) && r["outcome"] != "running")
            }
        })
        .await;
        assert!(audit_records(&c, "jobs.run")
            .await
            .iter()
            .any(|r| r["detail"]["run_id"] == json!(run_id)));

        // restart_scheduler brings a stopped scheduler back; the world must match the plan.
        let status = |c: Client| async move {
            let r = c.get("/api/v1/automations/status").await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["running"].as_bool().unwrap()
        };
        let plan = dry_run(&c, "restart_scheduler", json!({})).await;
        assert_eq!(
            c.post("/api/v1/automations/stop", json!({})).await.status,
            200
        );
        confirm(&c, "restart_scheduler", json!({}), &plan, Some("test"))
            .await
            .assert_problem(409);
        assert!(!status(c.clone()).await);
        let plan = dry_run(&c, "restart_scheduler", json!({})).await;
        assert!(
            plan["plan"]["summary"]
                .as_str()
                .unwrap()
                .contains("stopped"),
            "{plan}"
        );
        confirm(&c, "restart_scheduler", json!({}), &plan, None)
            .await
            .assert_problem(422);
        assert!(!status(c.clone()).await, "422 changed nothing");
        let r = confirm(
            &c,
            "restart_scheduler",
            json!({}),
            &plan,
            Some("scheduler was stopped"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"]["running"], true);
        assert_eq!(r.body["result"]["was_running"], false);
        assert!(status(c.clone()).await);
        let restarts = audit_records(&c, "automations.restart").await;
        assert_eq!(restarts.len(), 1);
        assert_eq!(restarts[0]["detail"]["was_running"], false);

        let t = c.get("/api/v1/ops/telemetry").await;
        assert_ne!(
            t.body["components"]["scheduler"]["status"], "absent",
            "{}",
            t.text
        );
        assert_eq!(
            t.body["components"]["scheduler"]["details"]["running"],
            true
        );
        let h = c.get("/api/v1/system-health").await;
        assert_eq!(
            h.body["components"]["scheduler"]["status"], "ok",
            "{}",
            h.text
        );
    }
}

/// `GET /api/v1/ops/logs`, the console's logs view: lines as columns, a tenant's key sees
/// only its tenant's lines, level and text filters, clear 4xx for bad input.
#[tokio::test(flavor = "multi_thread")]
async fn the_logs_route_reads_an_area_log_filtered_per_tenant() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let acme = common::key(&root, "readonly", "acme").await;
        // A request of each tenant, so the server log has lines stamped with both.
        assert_eq!(acme.get("/api/v1/queue/jobs?limit=1").await.status, 200);
        assert_eq!(root.get("/api/v1/queue/jobs?limit=2").await.status, 200);
        let lines = common::eventually(Duration::from_secs(10), "both requests logged", || {
            let root = root.clone();
            async move {
                let r = root
                    .get("/api/v1/ops/logs?area=server&lines=1000&q=queue/jobs")
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                let lines = r.body["lines"].as_array()?.clone();
                let tenants: Vec<&str> = lines
                    .iter()
                    .filter_map(|l| l["tenant_id"].as_str())
                    .collect();
                (tenants.contains(&"acme") && tenants.contains(&"default")).then_some(lines)
            }
        })
        .await;
        let l = lines.iter().find(|l| l["tenant_id"] == "acme").unwrap();
        assert_eq!(l["route"], "/api/v1/queue/jobs", "{l}");
        assert_eq!(l["status"], 200);
        assert!(l["ms"].as_f64().is_some(), "{l}");
        assert!(l["ts"].as_str().unwrap().ends_with('Z'));
        assert_eq!(l["msg"], "request finished");

        // A tenant's key: its own lines only, and it is told so.
        let r = acme.get("/api/v1/ops/logs?area=server&lines=1000").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["tenant_filter"], "acme");
        let mine = r.body["lines"].as_array().unwrap();
        assert!(!mine.is_empty());
        assert!(mine.iter().all(|l| l["tenant_id"] == "acme"), "{mine:?}");

        // Level filter: nothing below warn. A refused access is a warning of the security
        // log.
        let denied = acme
            .post("/api/v1/keys", json!({"role": "admin", "tenant": "acme"}))
            .await;
        assert_eq!(denied.status, 403, "{}", denied.text);
        let r = common::eventually(Duration::from_secs(10), "a warning logged", || {
            let root = root.clone();
            async move {
                let r = root.get("/api/v1/ops/logs?area=security&level=warn").await;
                (r.status == 200 && !r.body["lines"].as_array()?.is_empty()).then_some(r)
            }
        })
        .await;
        for l in r.body["lines"].as_array().unwrap() {
            let level = l["level"].as_str().unwrap().to_ascii_lowercase();
            assert!(level == "warn" || level == "error", "{l}");
        }

        // Bad input: 4xx problems, never a 5xx.
        root.get("/api/v1/ops/logs?area=nope")
            .await
            .assert_problem(422);
        root.get("/api/v1/ops/logs?lines=0")
            .await
            .assert_problem(422);
        root.get("/api/v1/ops/logs?lines=abc")
            .await
            .assert_problem(400);
        root.get("/api/v1/ops/logs?level=loud")
            .await
            .assert_problem(400);
        root.get("/api/v1/ops/logs?q=").await.assert_problem(422);
        root.get("/api/v1/ops/logs?bogus=1")
            .await
            .assert_problem(400);
        root.anonymous()
            .get("/api/v1/ops/logs")
            .await
            .assert_problem(401);
        // Secrets stay redacted: the key of this test never appears.
        let all = root.get("/api/v1/ops/logs?area=security&lines=1000").await;
        assert!(!all.text.contains(&srv.key), "a key in the logs view");
    }
}
