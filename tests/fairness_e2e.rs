//! Fairness and least privilege (issue 9, item 5), against the real binary on SQLite and
//! PostgreSQL: one tenant flooding the queue with long jobs cannot hold every worker slot,
//! the platform's scheduled jobs still run, the diagnostic kinds are bounded, and an admin
//! cannot revoke a key above its own role.

mod common;

use std::time::Duration;

use common::{eventually, Opts, Server};
use serde_json::{json, Value};

/// Four slots per process (the default), fast polling, no rate limit in the way.
fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("ECHOPILOT_QUEUE__CONCURRENCY", "4"),
        ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
        ("ECHOPILOT_RATE_LIMIT_PER_SEC", "100000"),
        ("ECHOPILOT_RATE_LIMIT_BURST", "100000"),
        ("ECHOPILOT_TEST_JOBS", "1"),
        ("ECHOPILOT_TEST_SLEEP_MS", "10"),
        ("ECHOPILOT_JOBS__ALERT_RULES__ENABLED", "false"),
        ("ECHOPILOT_JOBS__SELF_HEAL__ENABLED", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn start(backend: &str, extra: &[(&str, &str)]) -> Server {
    Server::start_with(Opts {
        database_url: common::fresh_database(backend).await,
        env: env(extra),
        ..Default::default()
    })
}

/// A new key of `role` in `tenant`, minted by the superadmin client `c`.
async fn key(c: &common::Client, role: &str, tenant: &str) -> (String, common::Client) {
    let r = c
        .post(
            "/api/v1/keys",
            json!({"role": role, "tenant": tenant, "name": format!("{role} of {tenant}")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    (id, c.with_key(r.body["key"].as_str().unwrap()))
}

async fn depth(c: &common::Client) -> Value {
    let r = c.get("/api/v1/queue/health").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["depth"].clone()
}

/// Twelve one-minute sleeps: many more than the slots, each far longer than the test.
async fn flood(c: &common::Client) {
    let jobs: Vec<Value> = (0..12)
        .map(|_| json!({"kind": "sleep", "payload": {"ms": 60_000}}))
        .collect();
    let r = c
        .post("/api/v1/queue/enqueue/batch", json!({ "jobs": jobs }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Wait until `c`'s tenant runs `n` jobs; fails if it ever runs more (its cap).
async fn wait_running(c: &common::Client, n: i64, what: &str) {
    eventually(Duration::from_secs(30), what, || async {
        let d = depth(c).await;
        let running = d["running"].as_i64().unwrap();
        assert!(
            running <= n,
            "the flood holds {running} slots, above its cap {n}: {d}"
        );
        (running == n).then_some(())
    })
    .await
}

/// The job `id` of `c`'s tenant succeeded while every flood job was still sleeping: it got
/// a slot because of the cap, not because a flood job finished.
async fn runs_beside_the_flood(c: &common::Client, flood: &common::Client, id: &str, cap: i64) {
    eventually(
        Duration::from_secs(30),
        "the quiet tenant's job",
        || async {
            let r = c.get(&format!("/api/v1/queue/jobs/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            (r.body["state"] == "succeeded").then_some(())
        },
    )
    .await;
    let d = depth(flood).await;
    assert_eq!(d["succeeded"], 0, "a flood job finished first: {d}");
    assert_eq!(d["running"], cap, "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_tenant_and_the_platform_run_while_one_tenant_floods() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let admin = srv.client();
        let (_, flooder) = key(&admin, "operator", "flood").await;
        let (_, quiet) = key(&admin, "operator", "quiet").await;
        flood(&flooder).await;
        // 75 % of four slots: the flood takes three and leaves one.
        wait_running(&flooder, 3, "the flood to fill its share").await;
        let r = quiet
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {"q": 1}}),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        runs_beside_the_flood(&quiet, &flooder, &id, 3).await;
        // The platform's own jobs (tenant _system) run beside the flood too.
        let r = admin.post("/api/v1/jobs/test_sleep/run", json!({})).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let run_id = r.body["run_id"].as_str().unwrap().to_string();
        eventually(
            Duration::from_secs(30),
            "the scheduled job's run",
            || async {
                let r = admin.get("/api/v1/jobs/runs?job=test_sleep&limit=50").await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.body["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|run| run["id"] == run_id && run["outcome"] == "succeeded")
                    .then_some(())
            },
        )
        .await;
        let d = depth(&flooder).await;
        assert_eq!(
            d["succeeded"], 0,
            "{backend}: a flood job finished first: {d}"
        );
        assert_eq!(d["queued"], 9, "{backend}: {d}");
    }
}

/// Two replicas on one PostgreSQL: each caps the flood at its share of its own slots, so
/// fleet-wide the flood holds 6 of 8 and the quiet tenant's job starts on either replica.
#[tokio::test(flavor = "multi_thread")]
async fn the_cap_holds_on_every_replica() {
    if !common::backends().contains(&"postgres") {
        return;
    }
    let url = common::fresh_database("postgres").await;
    let key_secret = common::random_key();
    let mk = |replica: &str| {
        Server::start_with(Opts {
            database_url: url.clone(),
            key: Some(key_secret.clone()),
            env: env(&[("ECHOPILOT_REPLICA_ID", replica)]),
            ..Default::default()
        })
    };
    let servers = [mk("replica-a"), mk("replica-b")];
    let admin = servers[0].client();
    let (_, flooder) = key(&admin, "operator", "flood").await;
    let (_, quiet) = key(&admin, "operator", "quiet").await;
    let quiet_b = common::Client {
        base: servers[1].url.clone(),
        ..quiet.clone()
    };
    flood(&flooder).await;
    wait_running(&flooder, 6, "the flood to fill its share on both replicas").await;
    let mut ids = Vec::new();
    for c in [&quiet, &quiet_b] {
        let r = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        runs_beside_the_flood(&quiet, &flooder, id, 6).await;
    }
    let r = flooder.get("/api/v1/queue/jobs?state=running").await;
    let mut per_replica = std::collections::HashMap::<String, i64>::new();
    for j in r.body["jobs"].as_array().unwrap() {
        let worker = j["worker"].as_str().unwrap();
        let replica = worker.split('#').next().unwrap().to_string();
        *per_replica.entry(replica).or_default() += 1;
    }
    assert_eq!(per_replica.len(), 2, "{per_replica:?}");
    assert!(per_replica.values().all(|n| *n == 3), "{per_replica:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_diagnostic_kinds_are_bounded() {
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_QUEUE__MAX_SLEEP_MS", "2000")]).await;
        let c = srv.client();
        for (body, status) in [
            (json!({"kind": "sleep", "payload": {"ms": 2000}}), 201),
            (json!({"kind": "sleep", "payload": {"ms": 2001}}), 422),
            (json!({"kind": "sleep", "payload": {"ms": 600_000}}), 422),
            (
                json!({"kind": "fail", "payload": {"until_attempt": 3}, "max_attempts": 101}),
                422,
            ),
            (
                json!({"kind": "fail", "payload": {"until_attempt": 1001}}),
                422,
            ),
        ] {
            let r = c.post("/api/v1/queue/enqueue", body.clone()).await;
            if status == 201 {
                assert_eq!(r.status, 201, "{backend}: {body}: {}", r.text);
            } else {
                r.assert_problem(status);
            }
        }
        let r = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "sleep", "payload": {"ms": 2001}}),
            )
            .await;
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("2000") && detail.contains("queue.max_sleep_ms"),
            "{detail}"
        );
        let r = c
            .post(
                "/api/v1/queue/enqueue/batch",
                json!({"jobs": [{"kind": "echo", "payload": {}}, {"kind": "sleep", "payload": {"ms": 5000}}]}),
            )
            .await;
        r.assert_problem(422);
        assert!(
            r.body["detail"].as_str().unwrap().contains("jobs[1]"),
            "{}",
            r.text
        );
    }
    // The default bound is one minute, and the ceiling of the setting ten.
    let srv = Server::start_with(Opts {
        env: env(&[]),
        ..Default::default()
    });
    let c = srv.client();
    let ok = c
        .post(
            "/api/v1/queue/enqueue",
            json!({"kind": "sleep", "payload": {"ms": 60_000}}),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    c.post(
        "/api/v1/queue/enqueue",
        json!({"kind": "sleep", "payload": {"ms": 60_001}}),
    )
    .await
    .assert_problem(422);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_cannot_revoke_a_key_above_its_own_role() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let root = srv.client();
        let me: Value = root.get("/api/v1/keys").await.body["keys"][0].clone();
        let tenant = me["tenant"].as_str().unwrap().to_string();
        // A second superadmin, so the last-superadmin guard is not what answers.
        let (super_id, super_c) = key(&root, "superadmin", &tenant).await;
        let (_, admin) = key(&root, "admin", &tenant).await;
        let (peer_id, _) = key(&root, "admin", &tenant).await;
        let (op_id, _) = key(&root, "operator", &tenant).await;
        let r = admin.delete(&format!("/api/v1/keys/{super_id}")).await;
        r.assert_problem(403);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("cannot revoke a superadmin key"),
            "{backend}: {}",
            r.text
        );
        // Still active: the superadmin key works and is listed unrevoked.
        assert_eq!(super_c.get("/api/v1/keys").await.status, 200, "{backend}");
        let keys = root.get("/api/v1/keys").await.body["keys"].clone();
        let listed = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == super_id.as_str())
            .unwrap()
            .clone();
        assert!(listed["revoked_at"].is_null(), "{backend}: {listed}");
        let denied = root.get("/api/v1/audit/records?action=keys.revoke").await;
        let recs = denied.body["records"].as_array().unwrap();
        assert!(
            recs.iter().any(|r| r["outcome"] == "denied"),
            "{backend}: the denial is not audited: {}",
            denied.text
        );
        // Keys of the admin's own rank and below it may still be revoked.
        for id in [&op_id, &peer_id] {
            let r = admin.delete(&format!("/api/v1/keys/{id}")).await;
            assert_eq!(r.status, 200, "{backend}: {}", r.text);
            assert!(r.body["revoked_at"].is_string(), "{}", r.text);
        }
        // A superadmin may revoke another superadmin key (not the last one).
        let r = root.delete(&format!("/api/v1/keys/{super_id}")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
    }
}
