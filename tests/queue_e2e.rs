//! Durable queue end to end, against the real binary, on SQLite and PostgreSQL.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Opts, Server};
use serde_json::{json, Value};

/// Fast retries and lease sweeps so the tests take seconds; no rate limit in the way.
fn fast_env() -> Vec<(String, String)> {
    [
        ("ECHOPILOT_QUEUE__BACKOFF_BASE_MS", "100"),
        ("ECHOPILOT_QUEUE__BACKOFF_CAP_MS", "400"),
        ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
        ("ECHOPILOT_RATE_LIMIT_PER_SEC", "100000"),
        ("ECHOPILOT_RATE_LIMIT_BURST", "100000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn start(backend: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = fast_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Server::start_with(Opts {
        database_url: common::fresh_database(backend).await,
        env,
        ..Default::default()
    })
}

async fn wait_state(c: &common::Client, id: &str, state: &str, secs: u64) -> Value {
    common::eventually(
        Duration::from_secs(secs),
        &format!("job {id} to be {state}"),
        || async {
            let r = c.get(&format!("/api/v1/queue/jobs/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            (r.body["state"] == state).then_some(r.body)
        },
    )
    .await
}

/// The job was claimed (`started_at`) no earlier than `t_ms` (same clock; the server's
/// RFC 3339 timestamps have a fixed width, so they compare as strings).
fn assert_started_after(job: &Value, t_ms: i64) {
    let started = job["started_at"].as_str().unwrap();
    let t = echopilot_backend::util::rfc3339_ms(t_ms);
    assert!(
        started >= t.as_str(),
        "the job started at {started} while the queue was paused (resumed {t}): {job}"
    );
}

async fn enqueue(c: &common::Client, body: Value) -> String {
    let r = c.post("/api/v1/queue/enqueue", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["state"], "queued");
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_then_success() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let id = enqueue(&c, json!({"kind": "fail", "payload": {"until_attempt": 3}})).await;
        let job = wait_state(&c, &id, "succeeded", 30).await;
        assert_eq!(job["attempts"], 3, "{backend}: {job}");
        assert_eq!(job["max_attempts"], 5);
        assert_eq!(job["result"], json!({"succeeded_on_attempt": 3}));
        assert!(job["error"].is_null(), "{job}");
        for f in ["enqueued_at", "started_at", "finished_at", "worker"] {
            assert!(job[f].is_string(), "{f} missing: {job}");
        }
        // echo returns its payload.
        let id = enqueue(&c, json!({"kind": "echo", "payload": {"hello": [1, 2]}})).await;
        let job = wait_state(&c, &id, "succeeded", 30).await;
        assert_eq!(job["result"], json!({"hello": [1, 2]}));
        assert_eq!(job["attempts"], 1);
        // Worker transitions are logged to queue.ndjson.
        let logs = srv.read_logs();
        assert!(
            logs.lines()
                .any(|l| l.contains("\"area\":\"queue\"") && l.contains("job attempt failed")),
            "{backend}: failed attempts not in queue log"
        );
        let metrics = c.get("/metrics").await.text;
        assert!(metrics.contains("echopilot_queue_jobs_total"), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letter_then_retry_and_purge() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let id = enqueue(
            &c,
            json!({"kind": "fail", "payload": {"until_attempt": 100}, "max_attempts": 2}),
        )
        .await;
        let job = wait_state(&c, &id, "dead", 30).await;
        assert_eq!(job["attempts"], 2, "{backend}: {job}");
        assert!(job["error"]
            .as_str()
            .unwrap()
            .contains("diagnostic failure"));
        let dead = c.get("/api/v1/queue/jobs?state=dead").await;
        assert_eq!(dead.status, 200);
        assert_eq!(dead.body["jobs"].as_array().unwrap().len(), 1);
        let h = c.get("/api/v1/queue/health").await;
        assert_eq!(h.body["depth"]["dead"], 1, "{}", h.text);

        // Only dead jobs can be retried.
        let ok = enqueue(&c, json!({"kind": "echo", "payload": 1})).await;
        wait_state(&c, &ok, "succeeded", 30).await;
        c.post(&format!("/api/v1/queue/jobs/{ok}/retry"), json!({}))
            .await
            .assert_problem(409);
        c.post("/api/v1/queue/jobs/job_nope/retry", json!({}))
            .await
            .assert_problem(404);

        let r = c
            .post(&format!("/api/v1/queue/jobs/{id}/retry"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["state"], "queued");
        let job = wait_state(&c, &id, "dead", 30).await;
        assert_eq!(job["attempts"], 2, "retry resets attempts: {job}");

        let r = c.post("/api/v1/queue/dlq/purge", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["purged"], 1);
        c.get(&format!("/api/v1/queue/jobs/{id}"))
            .await
            .assert_problem(404);

        // Each API mutation is audited.
        let audit = c.get("/api/v1/audit/records?limit=200").await;
        let actions: Vec<String> = audit.body["records"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["action"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        for a in ["queue.enqueue", "queue.retry", "queue.dlq.purge"] {
            assert!(
                actions.iter().any(|x| x == a),
                "{a} not audited: {}",
                audit.text
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_enqueue() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let body = json!({"kind": "echo", "payload": {"n": 1}});
        let send = |key: &'static str| {
            let c = c.clone();
            let body = body.clone();
            async move {
                c.send(
                    c.req(reqwest::Method::POST, "/api/v1/queue/enqueue")
                        .header("Idempotency-Key", key)
                        .json(&body),
                )
                .await
            }
        };
        let a = send("order-42").await;
        let b = send("order-42").await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(b.status, 201, "{}", b.text);
        assert_eq!(a.body["id"], b.body["id"], "{backend}");
        let other = send("order-43").await;
        assert_ne!(other.body["id"], a.body["id"]);
        let all = c.get("/api/v1/queue/jobs?kind=echo").await;
        assert_eq!(
            all.body["jobs"].as_array().unwrap().len(),
            2,
            "{}",
            all.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_expiry_after_kill9() {
    for backend in common::backends() {
        let env = [
            ("ECHOPILOT_QUEUE__LEASE_S", "2"),
            ("ECHOPILOT_QUEUE__RECLAIM_INTERVAL_S", "1"),
        ];
        let mut srv = start(backend, &env).await;
        let c = srv.client();
        let id = enqueue(&c, json!({"kind": "sleep", "payload": {"ms": 3000}})).await;
        let first = wait_state(&c, &id, "running", 30).await;
        let first_worker = first["worker"].as_str().unwrap().to_string();
        srv.kill9();

        let mut extra = fast_env();
        extra.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let srv2 = Server::start_with(Opts {
            database_url: srv.database_url.clone(),
            data_dir: Some(srv.data_dir.clone()),
            key: Some(srv.key.clone()),
            env: extra,
            ..Default::default()
        });
        let c2 = srv2.client();
        let job = wait_state(&c2, &id, "succeeded", 30).await;
        assert_eq!(job["attempts"], 2, "{backend}: {job}");
        assert_ne!(job["worker"].as_str().unwrap(), first_worker);
        assert_eq!(job["result"], json!({"slept_ms": 3000}));
        let logs = srv2.read_logs();
        assert!(
            logs.contains("lease expired; job requeued"),
            "{backend}: reclaim not logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_run_each_job_exactly_once() {
    for backend in common::backends() {
        if backend != "postgres" {
            // Replicas share one database only on PostgreSQL.
            continue;
        }
        let db = common::fresh_database(backend).await;
        let mk = |replica: &str, key: Option<String>| {
            let mut env = fast_env();
            env.push(("ECHOPILOT_REPLICA_ID".into(), replica.into()));
            Server::start_with(Opts {
                database_url: db.clone(),
                env,
                key,
                ..Default::default()
            })
        };
        let a = mk("replica-a", None);
        let b = mk("replica-b", Some(a.key.clone()));
        let (ca, cb) = (a.client(), b.client());
        let mut tasks = Vec::new();
        for i in 0..500 {
            let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            tasks.push(tokio::spawn(async move {
                enqueue(&c, json!({"kind": "echo", "payload": {"i": i}})).await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        common::eventually(Duration::from_secs(60), "500 jobs to succeed", || async {
            let h = ca.get("/api/v1/queue/health").await;
            (h.body["depth"]["succeeded"] == 500).then_some(())
        })
        .await;
        let list = ca
            .get("/api/v1/queue/jobs?state=succeeded&limit=1000")
            .await;
        let jobs = list.body["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 500);
        let mut per_replica: HashMap<String, usize> = HashMap::new();
        for j in jobs {
            assert_eq!(j["attempts"], 1, "ran more than once: {j}");
            let w = j["worker"].as_str().unwrap();
            *per_replica
                .entry(w.split('#').next().unwrap().to_string())
                .or_default() += 1;
        }
        let seen: HashSet<String> = jobs
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
        assert!(
            per_replica.get("replica-a").copied().unwrap_or(0) > 0
                && per_replica.get("replica-b").copied().unwrap_or(0) > 0,
            "both replicas should work: {per_replica:?}"
        );
        // Exactly once in the logs too: every job is named once in the success lines (a
        // line per stored batch) across both replicas.
        let logs = format!("{}{}", a.read_logs(), b.read_logs());
        let mut logged: Vec<String> = Vec::new();
        for line in logs.lines().filter(|l| l.contains("\"jobs succeeded\"")) {
            let v: serde_json::Value = serde_json::from_str(line).expect(line);
            // Only this test's jobs: scheduled jobs (tenant `_system`) log successes too.
            if v["kind"] == "echo" {
                let ids = v["job_ids"].as_str().unwrap().split(',');
                logged.extend(ids.map(str::to_string));
            }
        }
        assert_eq!(logged.len(), 500, "success log entries");
        assert_eq!(logged.into_iter().collect::<HashSet<_>>(), seen);
        let h = ca.get("/api/v1/queue/health").await;
        assert_eq!(h.body["workers"], 8, "two pools of 4: {}", h.text);

        // Pause is fleet-wide: paused through A, B does not run what is enqueued through B.
        let r = ca.post("/api/v1/queue/pause", json!({})).await;
        assert_eq!(r.body["paused"], true, "{}", r.text);
        let held = enqueue(&cb, json!({"kind": "echo", "payload": "held"})).await;
        assert_eq!(
            cb.get(&format!("/api/v1/queue/jobs/{held}")).await.body["state"],
            "queued"
        );
        assert_eq!(cb.get("/api/v1/queue/health").await.body["paused"], true);
        // No fixed wait for "nothing happened": the job must not start before the resume,
        // whatever either replica did meanwhile (started_at is set by the claim itself).
        let resumed_at = echopilot_backend::util::now_ms();
        cb.post("/api/v1/queue/resume", json!({})).await;
        let done = wait_state(&ca, &held, "succeeded", 30).await;
        assert_started_after(&done, resumed_at);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let r = c.post("/api/v1/queue/pause", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"paused": true, "changed": true}));
        let id = enqueue(&c, json!({"kind": "echo", "payload": 7})).await;
        let j = c.get(&format!("/api/v1/queue/jobs/{id}")).await;
        assert_eq!(
            j.body["state"], "queued",
            "{backend}: paused queue ran a job"
        );
        let h = c.get("/api/v1/queue/health").await;
        assert_eq!(h.body["paused"], true);
        assert_eq!(h.body["depth"]["queued"], 1);
        for f in [
            "lag_ms",
            "oldest_ready_age_s",
            "throughput_per_min",
            "workers",
        ] {
            assert!(h.body[f].is_i64(), "{f}: {}", h.text);
        }
        let resumed_at = echopilot_backend::util::now_ms();
        let r = c.post("/api/v1/queue/resume", json!({})).await;
        assert_eq!(r.body, json!({"paused": false, "changed": true}));
        let done = wait_state(&c, &id, "succeeded", 30).await;
        assert_started_after(&done, resumed_at);
        let summary = c.get("/api/v1/status/summary").await;
        assert!(
            summary.body["queue"]["depth"]["succeeded"].is_i64(),
            "{}",
            summary.text
        );
    }
}

/// The batch route: all jobs or none, per-job idempotency keys, one audit record that
/// names every created job, problem+json for every kind of bad batch.
#[tokio::test(flavor = "multi_thread")]
async fn batch_enqueue_is_all_or_nothing() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let jobs: Vec<Value> = (0..50)
            .map(|i| json!({"kind": "echo", "payload": {"i": i}}))
            .collect();
        let r = c
            .post("/api/v1/queue/enqueue/batch", json!({ "jobs": jobs }))
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let ids: Vec<String> = r.body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                assert_eq!(j["state"], "queued");
                j["id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(ids.len(), 50);
        // Request order is kept: job k carries payload k.
        for (k, id) in ids.iter().enumerate().step_by(7) {
            let j = wait_state(&c, id, "succeeded", 30).await;
            assert_eq!(j["result"], json!({"i": k}), "{backend}");
        }
        let audit = c
            .get("/api/v1/audit/records?action=queue.enqueue_batch&limit=5")
            .await;
        let recs = audit.body["records"].as_array().unwrap();
        assert_eq!(recs.len(), 1, "{}", audit.text);
        assert_eq!(recs[0]["detail"]["jobs"], 50);
        assert_eq!(recs[0]["detail"]["kinds"], json!({"echo": 50}));
        assert_eq!(recs[0]["detail"]["job_ids"], json!(ids));

        // One bad job rejects the whole batch, naming it; nothing is enqueued.
        let before = c.get("/api/v1/queue/jobs?limit=1000").await.body["jobs"]
            .as_array()
            .unwrap()
            .len();
        let bad = [
            (
                json!({"jobs": [{"kind": "echo", "payload": 1}, {"kind": "nope", "payload": 1}]}),
                "jobs[1]",
            ),
            (
                json!({"jobs": [{"kind": "echo", "payload": 1, "priority": 5000}]}),
                "jobs[0].priority",
            ),
            (
                json!({"jobs": [{"kind": "echo", "payload": 1}, {"kind": "echo", "payload": 1, "run_at": "soon"}]}),
                "jobs[1].run_at",
            ),
            (
                json!({"jobs": [{"kind": "sleep", "payload": {"ms": "x"}}]}),
                "jobs[0]",
            ),
            (
                json!({"jobs": [{"kind": "echo", "payload": 1, "idempotency_key": ""}]}),
                "jobs[0].idempotency_key",
            ),
            (json!({"jobs": []}), "1 to 1000"),
            (
                json!({"jobs": (0..1001).map(|_| json!({"kind": "echo", "payload": 0})).collect::<Vec<_>>()}),
                "1 to 1000",
            ),
        ];
        for (body, names) in bad {
            let r = c.post("/api/v1/queue/enqueue/batch", body).await;
            r.assert_problem(422);
            assert!(
                r.body["detail"].as_str().unwrap().contains(names),
                "{backend}: {}",
                r.text
            );
        }
        c.post(
            "/api/v1/queue/enqueue/batch",
            json!({"jobs": [{"kind": "echo", "payload": 1, "extra": 1}]}),
        )
        .await
        .assert_problem(400);
        c.post("/api/v1/queue/enqueue/batch", json!({"job": []}))
            .await
            .assert_problem(400);
        let after = c.get("/api/v1/queue/jobs?limit=1000").await.body["jobs"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            before, after,
            "{backend}: a rejected batch enqueued nothing"
        );

        // Per-job idempotency keys: a repeat in a later batch is the same job (payload
        // compared by value: keys in any order).
        let keyed = json!({"jobs": [
            {"kind": "echo", "payload": {"n": 1, "m": 2}, "idempotency_key": "a"},
            {"kind": "echo", "payload": 3, "idempotency_key": "b"},
        ]});
        let r1 = c.post("/api/v1/queue/enqueue/batch", keyed.clone()).await;
        assert_eq!(r1.status, 201, "{}", r1.text);
        assert_ne!(r1.body["jobs"][0]["id"], r1.body["jobs"][1]["id"]);
        let reordered = json!({"jobs": [
            {"kind": "echo", "payload": {"m": 2, "n": 1}, "idempotency_key": "a"},
            {"kind": "echo", "payload": 3, "idempotency_key": "b"},
        ]});
        let r2 = c.post("/api/v1/queue/enqueue/batch", reordered).await;
        assert_eq!(r2.status, 201, "{}", r2.text);
        for k in 0..2 {
            assert_eq!(
                r2.body["jobs"][k]["id"], r1.body["jobs"][k]["id"],
                "{backend}"
            );
        }
        // Two jobs under one key in one batch: 422 naming the second, nothing enqueued.
        let before = c.get("/api/v1/queue/jobs?limit=1000").await.body["jobs"]
            .as_array()
            .unwrap()
            .len();
        let dup = c
            .post(
                "/api/v1/queue/enqueue/batch",
                json!({"jobs": [
                    {"kind": "echo", "payload": 1, "idempotency_key": "c"},
                    {"kind": "echo", "payload": 2, "idempotency_key": "c"},
                ]}),
            )
            .await;
        dup.assert_problem(422);
        assert!(
            dup.body["detail"].as_str().unwrap().contains("jobs[1]")
                && dup.body["detail"].as_str().unwrap().contains("jobs[0]"),
            "{backend}: {}",
            dup.text
        );
        // A key that already names a job of another payload or kind: 422 naming the job
        // and the existing one, nothing enqueued (not that other job returned silently).
        for other in [
            json!({"kind": "echo", "payload": 4, "idempotency_key": "b"}),
            json!({"kind": "sleep", "payload": {"ms": 1}, "idempotency_key": "b"}),
        ] {
            let r = c
                .post(
                    "/api/v1/queue/enqueue/batch",
                    json!({"jobs": [{"kind": "echo", "payload": 9}, other]}),
                )
                .await;
            r.assert_problem(422);
            let d = r.body["detail"].as_str().unwrap();
            let existing = r1.body["jobs"][1]["id"].as_str().unwrap();
            assert!(
                d.contains("jobs[1]") && d.contains(existing),
                "{backend}: {d}"
            );
        }
        let after = c.get("/api/v1/queue/jobs?limit=1000").await.body["jobs"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after, "{backend}: refused batches enqueued nothing");

        // Wrong key, read-only key, foreign tenant.
        let one = json!({"jobs": [{"kind": "echo", "payload": 1}]});
        c.with_key("ep_wrong")
            .post("/api/v1/queue/enqueue/batch", one.clone())
            .await
            .assert_problem(401);
        let ro = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default"}),
            )
            .await;
        c.with_key(ro.body["key"].as_str().unwrap())
            .post("/api/v1/queue/enqueue/batch", one.clone())
            .await
            .assert_problem(403);
        let acme = c
            .post(
                "/api/v1/keys",
                json!({"role": "operator", "tenant": "acme"}),
            )
            .await;
        c.with_key(acme.body["key"].as_str().unwrap())
            .with_tenant("default")
            .post("/api/v1/queue/enqueue/batch", one)
            .await
            .assert_problem(403);
        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.body["ok"], true, "{backend}: {}", v.text);
    }
}

/// Concurrent single enqueues are group-committed: every one still gets its own job and
/// its own audit record naming it, and the audit tree verifies.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_enqueues_each_get_their_own_audit_record() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                enqueue(&c, json!({"kind": "echo", "payload": i})).await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        let mut targets: Vec<String> = Vec::new();
        let a = c
            .get("/api/v1/audit/records?action=queue.enqueue&limit=1000")
            .await;
        for r in a.body["records"].as_array().unwrap() {
            targets.push(r["target"].as_str().unwrap().to_string());
        }
        ids.sort();
        targets.sort();
        assert_eq!(ids.len(), 200);
        ids.dedup();
        assert_eq!(ids.len(), 200, "{backend}: ids are distinct");
        assert_eq!(targets, ids, "{backend}: one audit record per job");
        let v = c.get("/api/v1/audit/verify").await;
        assert_eq!(v.body["ok"], true, "{backend}: {}", v.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_isolation() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let id = enqueue(&c, json!({"kind": "echo", "payload": "mine"})).await;
        let k = c
            .post(
                "/api/v1/keys",
                json!({"role": "operator", "tenant": "acme", "name": "acme-op"}),
            )
            .await;
        assert_eq!(k.status, 201, "{}", k.text);
        let other = c.with_key(k.body["key"].as_str().unwrap());
        other
            .get(&format!("/api/v1/queue/jobs/{id}"))
            .await
            .assert_problem(404);
        other
            .post(&format!("/api/v1/queue/jobs/{id}/retry"), json!({}))
            .await
            .assert_problem(404);
        let list = other.get("/api/v1/queue/jobs").await;
        assert_eq!(list.body["jobs"], json!([]), "{backend}");
        let h = other.get("/api/v1/queue/health").await;
        assert_eq!(
            h.body["depth"]["queued"].as_i64().unwrap()
                + h.body["depth"]["succeeded"].as_i64().unwrap(),
            0
        );
        // A read-only key cannot enqueue.
        let ro = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "acme"}),
            )
            .await;
        c.with_key(ro.body["key"].as_str().unwrap())
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": 1}),
            )
            .await
            .assert_problem(403);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_problem_json() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let c = srv.client();
        let cases = [
            (json!({"kind": "nope", "payload": {}}), 422),
            (
                json!({"kind": "echo", "payload": {}, "priority": 5000}),
                422,
            ),
            (
                json!({"kind": "echo", "payload": {}, "priority": "high"}),
                422,
            ),
            (
                json!({"kind": "echo", "payload": {}, "run_at": "yesterday"}),
                422,
            ),
            (json!({"kind": "echo", "payload": {}, "run_at": 12}), 422),
            (
                json!({"kind": "echo", "payload": {}, "max_attempts": 0}),
                422,
            ),
            (json!({"kind": "sleep", "payload": {"ms": -1}}), 422),
            // The platform's own kinds cannot be enqueued by a tenant.
            (
                json!({"kind": "scheduled:retention", "payload": {"trigger": "manual", "run_id": "run_x"}}),
                422,
            ),
            (
                json!({"kind": "alerts.deliver", "payload": {"alert_id": "a"}}),
                422,
            ),
            (json!({"kind": "fail", "payload": {}}), 422),
            (json!({"kind": "echo", "payload": {}, "extra": 1}), 400),
            (json!({"kind": "echo"}), 400),
            (json!([1, 2]), 400),
        ];
        for (body, status) in cases {
            let r = c.post("/api/v1/queue/enqueue", body.clone()).await;
            assert_eq!(r.status, status, "{backend} {body}: {}", r.text);
            r.assert_problem(status);
        }
        let r = c
            .send(
                c.req(reqwest::Method::POST, "/api/v1/queue/enqueue")
                    .header("content-type", "application/json")
                    .body("{not json"),
            )
            .await;
        r.assert_problem(400);
        c.get("/api/v1/queue/jobs?state=bogus")
            .await
            .assert_problem(422);
        c.get("/api/v1/queue/jobs?limit=0")
            .await
            .assert_problem(422);
        c.get("/api/v1/queue/jobs?limit=abc")
            .await
            .assert_problem(400);
        c.get("/api/v1/queue/jobs/does-not-exist")
            .await
            .assert_problem(404);
        // Nothing was half-written.
        let list = c.get("/api/v1/queue/jobs").await;
        assert_eq!(list.body["jobs"], json!([]), "{backend}: {}", list.text);
    }
}

/// End-to-end HTTP throughput through real `serve` processes: enqueue through the API,
/// workers drain, report jobs/s and enqueue→start latency. Figures are printed, never
/// asserted. Two modes: one job per request (`/queue/enqueue`, group-committed on the
/// server) and BENCH_HTTP_BATCH jobs per request (`/queue/enqueue/batch`).
/// `cargo test --test queue_e2e bench_http -- --ignored --nocapture`.
/// Knobs: BENCH_JOBS (5000; batch mode ×10), BENCH_CLIENTS (64 concurrent HTTP clients),
/// BENCH_CONCURRENCY (64 worker slots per server), BENCH_REPLICAS (PostgreSQL: 2),
/// BENCH_HTTP_BATCH (100; 0 skips batch mode), BENCH_HTTP_SINGLE (1; 0 skips single mode).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run explicitly"]
async fn bench_http() {
    let num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let jobs = num("BENCH_JOBS", 5000);
    let clients = num("BENCH_CLIENTS", 64);
    let conc = num("BENCH_CONCURRENCY", 64);
    let batch = num("BENCH_HTTP_BATCH", 100);
    let mut modes = Vec::new();
    if num("BENCH_HTTP_SINGLE", 1) > 0 {
        modes.push((1, jobs));
    }
    if batch > 0 {
        modes.push((batch, jobs * 10));
    }
    for backend in common::backends() {
        let replicas = if backend == "postgres" {
            num("BENCH_REPLICAS", 2)
        } else {
            1
        };
        for &(per_request, jobs) in &modes {
            bench_http_run(backend, replicas, clients, conc, jobs, per_request).await;
        }
    }
}

async fn bench_http_run(
    backend: &str,
    replicas: usize,
    clients: usize,
    conc: usize,
    jobs: usize,
    per_request: usize,
) {
    let db = common::fresh_database(backend).await;
    let mut servers: Vec<Server> = Vec::new();
    for r in 0..replicas {
        let mut env = fast_env();
        env.push(("ECHOPILOT_QUEUE__CONCURRENCY".into(), conc.to_string()));
        env.push(("ECHOPILOT_QUEUE__POLL_INTERVAL_MS".into(), "50".into()));
        env.push(("ECHOPILOT_REPLICA_ID".into(), format!("bench-{r}")));
        env.push(("ECHOPILOT_LOG_LEVEL".into(), "warn".into()));
        servers.push(Server::start_with(Opts {
            database_url: db.clone(),
            env,
            key: servers.first().map(|s| s.key.clone()),
            ..Default::default()
        }));
    }
    let cs: Vec<common::Client> = servers.iter().map(|s| s.client()).collect();
    let requests = jobs.div_ceil(per_request);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..clients {
        let c = cs[t % cs.len()].clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    return lat;
                }
                let t0 = std::time::Instant::now();
                let r = if per_request == 1 {
                    c.post(
                        "/api/v1/queue/enqueue",
                        json!({"kind": "echo", "payload": {"i": i}}),
                    )
                    .await
                } else {
                    let n = per_request.min(jobs - i * per_request);
                    let batch: Vec<Value> = (0..n)
                        .map(|k| json!({"kind": "echo", "payload": {"i": i * per_request + k}}))
                        .collect();
                    c.post("/api/v1/queue/enqueue/batch", json!({ "jobs": batch }))
                        .await
                };
                assert_eq!(r.status, 201, "{}", r.text);
                lat.push(t0.elapsed().as_micros() as i64);
            }
        }));
    }
    let mut req_lat = Vec::new();
    for t in tasks {
        req_lat.extend(t.await.unwrap());
    }
    let enq = start.elapsed();
    common::eventually(Duration::from_secs(600), "all jobs to succeed", || async {
        let h = cs[0].get("/api/v1/queue/health").await;
        (h.body["depth"]["succeeded"].as_u64() == Some(jobs as u64)).then_some(())
    })
    .await;
    let total = start.elapsed();
    let url = match &servers[0].database_url {
        Some(u) => u.clone(),
        None => echopilot_backend::store::sqlite_url(&servers[0].data_dir.join("echopilot.db")),
    };
    let store = echopilot_backend::Store::connect(&url, 2).await.unwrap();
    let mut start_lat: Vec<i64> =
        sqlx::query_scalar("SELECT started_at - enqueued_at FROM queue_jobs")
            .fetch_all(store.reader())
            .await
            .unwrap();
    start_lat.sort_unstable();
    req_lat.sort_unstable();
    let p = |v: &[i64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let per_worker: Vec<(String, i64)> =
        sqlx::query_as("SELECT worker, COUNT(*) FROM queue_jobs GROUP BY worker ORDER BY worker")
            .fetch_all(store.reader())
            .await
            .unwrap_or_default();
    println!(
        "HTTP {backend} replicas={replicas} clients={clients} worker_slots={conc} jobs={jobs} \
         jobs/request={per_request}: enqueue {:.0} req/s = {:.0} jobs/s (request p50={:.1} ms \
         p99={:.1} ms), end-to-end {:.0} jobs/s ({:.2} s); enqueue→start ms p50={} p95={} p99={}; \
         jobs per worker {per_worker:?}",
        requests as f64 / enq.as_secs_f64(),
        jobs as f64 / enq.as_secs_f64(),
        p(&req_lat, 0.5) as f64 / 1000.0,
        p(&req_lat, 0.99) as f64 / 1000.0,
        jobs as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        p(&start_lat, 0.5),
        p(&start_lat, 0.95),
        p(&start_lat, 0.99),
    );
    if per_request > 1 {
        store.close().await;
        return;
    }
    // Idle latency: one enqueue at a time, as an interactive caller sees it.
    let idle_from: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_jobs")
        .fetch_one(store.reader())
        .await
        .unwrap();
    for i in 0..200 {
        let c = &cs[i % cs.len()];
        let r = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": i}),
            )
            .await;
        assert_eq!(r.status, 201);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    common::eventually(Duration::from_secs(60), "idle jobs to succeed", || async {
        let h = cs[0].get("/api/v1/queue/health").await;
        (h.body["depth"]["succeeded"].as_i64() == Some(idle_from + 200)).then_some(())
    })
    .await;
    let mut idle: Vec<i64> = sqlx::query_scalar(
        "SELECT started_at - enqueued_at FROM queue_jobs ORDER BY enqueued_at DESC LIMIT 200",
    )
    .fetch_all(store.reader())
    .await
    .unwrap();
    idle.sort_unstable();
    println!(
        "HTTP {backend} idle enqueue→start latency ms (200 jobs, one at a time): p50={} p95={} p99={}",
        p(&idle, 0.5),
        p(&idle, 0.95),
        p(&idle, 0.99)
    );
    store.close().await;
}
