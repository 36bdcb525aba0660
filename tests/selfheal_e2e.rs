//! Self-heal end to end: a stuck job (expired lease of a dead worker) is resolved by
//! `/selfheal/run`, and history, audit and `self_heal.ndjson` show it; a poison job is
//! quarantined. SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Opts, Server};
use echopilot_backend::Store;
use serde_json::{json, Value};

async fn store_of(srv: &Server) -> Store {
    let url = match &srv.database_url {
        Some(u) => u.clone(),
        None => echopilot_backend::store::sqlite_url(&srv.data_dir.join("echopilot.db")),
    };
    Store::connect(&url, 2)
        .await
        .expect("connect to the server's database")
}

async fn job(c: &common::Client, id: &str) -> Value {
    let r = c.get(&format!("/api/v1/queue/jobs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_job_is_resolved_and_recorded() {
    for backend in common::backends() {
        let env: Vec<(String, String)> = [
            // The pool's own sweep is hourly here, so only self-heal can unstick the job.
            ("ECHOPILOT_QUEUE__RECLAIM_INTERVAL_S", "3600"),
            ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
            ("ECHOPILOT_QUEUE__BACKOFF_BASE_MS", "1000"),
            ("ECHOPILOT_QUEUE__BACKOFF_CAP_MS", "1000"),
            ("ECHOPILOT_SELFHEAL__POISON_THRESHOLD", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let srv = Server::start_with(Opts {
            database_url: common::fresh_database(backend).await,
            env,
            ..Default::default()
        });
        let c = srv.client();

        let lib = c.get("/api/v1/selfheal/remediations").await;
        assert_eq!(lib.status, 200, "{}", lib.text);
        let lib = lib.body["remediations"].as_array().unwrap().clone();
        assert_eq!(lib.len(), 4);
        let safe = |n: &str| lib.iter().find(|r| r["name"] == n).unwrap()["safe"].clone();
        assert_eq!(safe("requeue_expired_leases"), true);
        assert_eq!(safe("restart_worker_pool"), true);
        assert_eq!(safe("quarantine_poison_jobs"), true);
        assert_eq!(safe("rotate_signing_keys"), false);

        // A job held by a worker that died: running, lease long expired.
        assert_eq!(c.post("/api/v1/queue/pause", json!({})).await.status, 200);
        let r = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {"stuck": true}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        let store = store_of(&srv).await;
        let now = echopilot_backend::util::now_ms();
        let n = sqlx::query(
            "UPDATE queue_jobs SET state = 'running', attempts = 1, worker = 'gone-replica#dead00', \
             lease_until = $1, started_at = $2 WHERE id = $3",
        )
        .bind(now - 60_000)
        .bind(now - 120_000)
        .bind(&id)
        .execute(store.writer())
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(n, 1);
        assert_eq!(c.post("/api/v1/queue/resume", json!({})).await.status, 200);
        // A probe job enqueued after the resume finishing proves the pool has been
        // claiming since; the stuck job must still be running then (only self-heal may
        // unstick it).
        let probe = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {}}),
            )
            .await;
        assert_eq!(probe.status, 201, "{}", probe.text);
        let probe = probe.body["id"].as_str().unwrap().to_string();
        common::eventually(Duration::from_secs(30), "probe job to finish", || async {
            (job(&c, &probe).await["state"] == "succeeded").then_some(())
        })
        .await;
        assert_eq!(
            job(&c, &id).await["state"],
            "running",
            "{backend}: nothing else may unstick it"
        );

        let run = c.post("/api/v1/selfheal/run", json!({})).await;
        assert_eq!(run.status, 200, "{}", run.text);
        let actions = run.body["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 3, "only safe remediations run: {}", run.text);
        let requeue = actions
            .iter()
            .find(|a| a["remediation"] == "requeue_expired_leases")
            .unwrap();
        assert_eq!(requeue["outcome"], "applied", "{}", run.text);
        assert_eq!(requeue["affected"], 1);
        assert!(actions
            .iter()
            .all(|a| a["remediation"] != "rotate_signing_keys"));

        let done = common::eventually(Duration::from_secs(30), "stuck job to finish", || async {
            let j = job(&c, &id).await;
            (j["state"] == "succeeded").then_some(j)
        })
        .await;
        assert_eq!(done["attempts"], 2, "{done}");
        assert_eq!(done["result"], json!({"stuck": true}));
        assert!(!done["worker"].as_str().unwrap().starts_with("gone-replica"));

        let h = c
            .get("/api/v1/selfheal/history?remediation=requeue_expired_leases")
            .await;
        assert_eq!(h.status, 200, "{}", h.text);
        let first = &h.body["actions"][0];
        assert_eq!(first["outcome"], "applied");
        assert_eq!(first["affected"], 1);
        assert_eq!(first["trigger"], "api");
        assert!(first["ts"].is_string() && first["id"].is_string());
        assert_eq!(
            echopilot_backend::selfheal::requeue_count_24h(&store).await,
            1,
            "{backend}"
        );

        let audit = c
            .get("/api/v1/audit/records?action=selfheal.requeue_expired_leases")
            .await;
        assert_eq!(
            audit.body["records"].as_array().unwrap().len(),
            1,
            "{}",
            audit.text
        );
        let summary = c.get("/api/v1/status/summary").await;
        assert_eq!(
            summary.body["self_heal"]["requeued_24h"], 1,
            "{}",
            summary.text
        );

        // Poison: fails at once on every attempt; quarantined before it burns all 10.
        let r = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "fail", "payload": {"until_attempt": 1000}, "max_attempts": 10}),
            )
            .await;
        let poison = r.body["id"].as_str().unwrap().to_string();
        let dead = common::eventually(
            Duration::from_secs(30),
            "poison job quarantined",
            || async {
                let r = c.post("/api/v1/selfheal/run", json!({})).await;
                assert_eq!(r.status, 200, "{}", r.text);
                let j = job(&c, &poison).await;
                (j["state"] == "dead").then_some(j)
            },
        )
        .await;
        assert!(
            dead["error"]
                .as_str()
                .unwrap()
                .contains("quarantined by self-heal"),
            "{dead}"
        );
        assert!(dead["attempts"].as_i64().unwrap() < 10, "{dead}");

        // Read-only keys cannot run remediations.
        let ro = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default"}),
            )
            .await;
        c.with_key(ro.body["key"].as_str().unwrap())
            .post("/api/v1/selfheal/run", json!({}))
            .await
            .assert_problem(403);
        c.get("/api/v1/selfheal/history?limit=0")
            .await
            .assert_problem(422);
        c.get("/api/v1/selfheal/history?remediation=nope")
            .await
            .assert_problem(422);

        let logs = srv.read_logs();
        let line = logs
            .lines()
            .find(|l| l.contains("\"area\":\"self_heal\"") && l.contains(&id))
            .unwrap_or_else(|| panic!("{backend}: requeue of {id} not in self_heal log"));
        assert!(line.contains("expired lease"), "{line}");
        assert!(logs
            .lines()
            .any(|l| l.contains("\"area\":\"self_heal\"") && l.contains("remediation ran")));

        // A corrupt history row is reported by name, not shown as `null`.
        let action_id = first["id"].as_str().unwrap().to_string();
        sqlx::query("UPDATE selfheal_actions SET detail = '{\"requeued\": ' WHERE id = $1")
            .bind(&action_id)
            .execute(store.writer())
            .await
            .unwrap();
        let r = c.get("/api/v1/selfheal/history").await;
        r.assert_problem(500);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("selfheal_actions.detail ({action_id})"))
                && detail.contains("stored JSON is invalid"),
            "{backend}: {detail}"
        );
        sqlx::query("UPDATE selfheal_actions SET detail = '{}', outcome = 'maybe' WHERE id = $1")
            .bind(&action_id)
            .execute(store.writer())
            .await
            .unwrap();
        let r = c.get("/api/v1/selfheal/history").await;
        r.assert_problem(500);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("selfheal_actions.outcome"),
            "{}",
            r.text
        );
        assert_eq!(c.anonymous().get("/healthz").await.status, 200);
        store.close().await;
    }
}
