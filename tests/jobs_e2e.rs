//! Scheduler end-to-end: run-now, unknown job, automations stop/start, retention counts,
//! config errors, and leader failover between two real `serve` processes on PostgreSQL.

mod common;

use std::time::Duration;

use common::{eventually, Opts, Server};
use serde_json::{json, Value};

async fn start(backend: &str, env: Vec<(String, String)>) -> Server {
    let database_url = common::fresh_database(backend).await;
    Server::start_with(Opts {
        database_url,
        env,
        ..Default::default()
    })
}

async fn wait_run(c: &common::Client, job: &str, run_id: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("run {run_id} of {job} finishes"),
        || async {
            let r = c
                .get(&format!("/api/v1/jobs/runs?job={job}&limit=50"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == run_id && x["outcome"] != "running")
                .cloned()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_records_a_completed_run_and_is_audited() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();
        let r = c.post("/api/v1/jobs/scheduler_tick/run", json!({})).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let run_id = r.body["run_id"].as_str().expect("run_id").to_string();
        let run = wait_run(&c, "scheduler_tick", &run_id).await;
        assert_eq!(run["outcome"], "succeeded", "{backend}: {run}");
        assert_eq!(run["job"], "scheduler_tick");
        assert_eq!(run["trigger"], "manual");
        assert!(run["error"].is_null());
        assert!(run["duration_ms"].as_i64().unwrap() >= 0);
        assert!(run["replica"].as_str().is_some_and(|s| !s.is_empty()));
        for f in ["started_at", "finished_at"] {
            let ts = run[f].as_str().unwrap();
            assert!(
                ts.ends_with('Z') && ts.contains('T'),
                "{f} is RFC 3339: {ts}"
            );
        }
        let audit = c.get("/api/v1/audit/records?action=jobs.run").await;
        let recs = audit.body["records"].as_array().expect("records");
        assert!(
            recs.iter()
                .any(|r| r["target"] == "scheduler_tick" && r["detail"]["run_id"] == run_id),
            "{backend}: run-now audited: {}",
            audit.text
        );
        // Both the start and the finish of the run are in scheduler.ndjson with its id.
        let run_id2 = run_id.clone();
        eventually(Duration::from_secs(10), "scheduler log lines", || {
            let logs = srv.read_logs();
            let id = run_id2.clone();
            async move {
                let lines: Vec<Value> = logs
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|l| l["area"] == "scheduler" && l["job_run_id"] == id.as_str())
                    .collect();
                let msgs: Vec<&str> = lines.iter().filter_map(|l| l["msg"].as_str()).collect();
                (msgs.contains(&"run started") && msgs.contains(&"run finished")).then_some(())
            }
        })
        .await;
        // The daily health probe reports each probe.
        let r = c.post("/api/v1/jobs/health_probe/run", json!({})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let run = wait_run(&c, "health_probe", r.body["run_id"].as_str().unwrap()).await;
        assert_eq!(run["outcome"], "succeeded", "{backend}: {run}");
        let res = &run["result"];
        assert_eq!(res["database"]["ok"], true, "{res}");
        assert_eq!(res["audit"]["ok"], true, "{res}");
        assert!(res["audit"]["size"].as_i64().unwrap() >= 1, "{res}");
        assert!(res["disk"]["used_pct"].is_number(), "{res}");
        // Metrics and summary counters.
        let m = c.get("/metrics").await;
        assert!(
            m.text.contains("echopilot_job_runs_total"),
            "{backend}: metrics"
        );
        assert!(
            m.text.contains("echopilot_job_duration_seconds"),
            "{backend}: histogram"
        );
        let s = c.get("/api/v1/status/summary").await;
        assert!(
            s.body["jobs"]["registered"].as_i64().unwrap() >= 3,
            "{}",
            s.text
        );
        assert!(
            s.body["jobs"]["runs_24h"]["succeeded"].as_i64().unwrap() >= 1,
            "{}",
            s.text
        );
        assert!(s.body["jobs"]["last_tick_age_s"].is_i64(), "{}", s.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_job_is_404_and_readonly_cannot_run() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();
        c.post("/api/v1/jobs/no_such_job/run", json!({}))
            .await
            .assert_problem(404);
        let bad = c.get("/api/v1/jobs/runs?limit=0").await;
        bad.assert_problem(422);
        let k = c
            .post(
                "/api/v1/keys",
                json!({"role": "readonly", "tenant": "default"}),
            )
            .await;
        assert_eq!(k.status, 201, "{}", k.text);
        let ro = c.with_key(k.body["key"].as_str().unwrap());
        ro.post("/api/v1/jobs/scheduler_tick/run", json!({}))
            .await
            .assert_problem(403);
        ro.post("/api/v1/automations/stop", json!({}))
            .await
            .assert_problem(403);
        let runs = ro.get("/api/v1/jobs/runs").await;
        assert_eq!(runs.status, 200, "readonly reads runs: {}", runs.text);
        assert!(runs.body["runs"].is_array());
        // Another tenant's operator cannot pause the fleet's scheduler.
        let k = c
            .post(
                "/api/v1/keys",
                json!({"role": "operator", "tenant": "acme"}),
            )
            .await;
        assert_eq!(k.status, 201, "{}", k.text);
        let op = c.with_key(k.body["key"].as_str().unwrap());
        op.post("/api/v1/automations/stop", json!({}))
            .await
            .assert_problem(403);
        assert_eq!(
            c.get("/api/v1/automations/status").await.body["running"],
            true,
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn automations_stop_and_start_flip_running_and_are_audited() {
    for backend in common::backends() {
        let srv = start(backend, vec![]).await;
        let c = srv.client();
        let s = c.get("/api/v1/automations/status").await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["running"], true, "{backend}: {}", s.text);
        assert_eq!(
            s.body["leader"], true,
            "{backend}: single replica leads: {}",
            s.text
        );
        assert!(s.body["replica_id"].is_string());
        let names: Vec<&str> = s.body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap())
            .collect();
        for n in ["scheduler_tick", "retention", "health_probe"] {
            assert!(names.contains(&n), "{backend}: {n} registered: {names:?}");
        }
        let tick = s.body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "scheduler_tick")
            .unwrap();
        assert_eq!(tick["schedule"], "0 * * * * *");
        assert_eq!(tick["enabled"], true);
        assert!(
            tick["next_run"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{tick}"
        );
        // The startup retention run is enqueued at start and shows up as the last run.
        let retention = eventually(
            Duration::from_secs(20),
            "the startup retention run",
            || async {
                let s = c.get("/api/v1/automations/status").await;
                let r = s.body["jobs"]
                    .as_array()?
                    .iter()
                    .find(|j| j["name"] == "retention")?
                    .clone();
                r["last_run"].is_object().then_some(r)
            },
        )
        .await;
        assert_eq!(retention["last_run"]["trigger"], "startup", "{retention}");

        let r = c.post("/api/v1/automations/stop", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["running"], false);
        let s = c.get("/api/v1/automations/status").await;
        assert_eq!(s.body["running"], false, "{backend}: {}", s.text);
        assert!(
            s.body["jobs"][0]["next_run"].is_null(),
            "stopped: no next run"
        );
        // Run-now still works while scheduled runs are stopped.
        let r = c.post("/api/v1/jobs/scheduler_tick/run", json!({})).await;
        assert_eq!(r.status, 202, "{}", r.text);

        let r = c.post("/api/v1/automations/start", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            c.get("/api/v1/automations/status").await.body["running"],
            true
        );

        for action in ["automations.stop", "automations.start"] {
            let a = c
                .get(&format!("/api/v1/audit/records?action={action}"))
                .await;
            let recs = a.body["records"].as_array().expect("records");
            assert_eq!(
                recs.len(),
                1,
                "{backend}: {action} audited once: {}",
                a.text
            );
            assert_eq!(recs[0]["target"], "scheduler");
        }
    }
}

fn count_prefix(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_keeps_the_newest_30_files_per_pattern_and_counts_deletions() {
    for backend in common::backends() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let backups = tmp.path().join("backups");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::create_dir_all(&backups).unwrap();
        let day0 = chrono_like_day(2025, 1, 1);
        for i in 0..40 {
            std::fs::write(logs.join(format!("drill.{}.ndjson", day0(i))), "{}\n").unwrap();
        }
        for i in 0..35 {
            std::fs::write(
                backups.join(format!("db-{}.tar.gz", day0(i).replace('-', ""))),
                "x",
            )
            .unwrap();
        }
        std::fs::write(backups.join("notes.txt"), "undated: never pruned").unwrap();
        let database_url = common::fresh_database(backend).await;
        let srv = Server::start_with(Opts {
            database_url,
            data_dir: Some(tmp.path().to_path_buf()),
            ..Default::default()
        });
        let c = srv.client();
        // The startup run did the pruning.
        let run = eventually(Duration::from_secs(30), "startup retention run", || async {
            let r = c.get("/api/v1/jobs/runs?job=retention").await;
            r.body["runs"].as_array().and_then(|a| {
                a.iter()
                    .find(|x| x["trigger"] == "startup" && x["outcome"] != "running")
                    .cloned()
            })
        })
        .await;
        assert_eq!(run["outcome"], "succeeded", "{backend}: {run}");
        let res = &run["result"];
        assert_eq!(
            res["files"]["deleted"], 15,
            "{backend}: 10 logs + 5 backups: {res}"
        );
        assert_eq!(res["errors"], json!([]));
        // Its ledger: in the database (the API) and as a file, the same document.
        let id = run["id"].as_str().unwrap();
        let l = c.get(&format!("/api/v1/jobs/runs/{id}/ledger")).await;
        assert_eq!(l.status, 200, "{backend}: {}", l.text);
        assert_eq!(l.body["outcome"], "succeeded");
        assert_eq!(l.body["errors_count"], 0);
        assert_eq!(l.body["errors"], json!([]));
        // 10 + 5 deleted and 30 + 30 kept dated files (+ the two table prunes).
        assert!(
            l.body["artifacts_total"].as_u64().unwrap() >= 77,
            "{}",
            l.body
        );
        assert_eq!(
            l.body["artifacts_total"], l.body["artifacts_processed"],
            "{}",
            l.body
        );
        let file = tmp.path().join(format!("artifacts/error-ledger-{id}.json"));
        let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk, l.body, "{}", file.display());
        // Unknown run: 404 problem.
        let r = c.get("/api/v1/jobs/runs/run_nosuchrun0/ledger").await;
        r.assert_problem(404);
        let dirs = res["files"]["dirs"].as_array().unwrap();
        assert_eq!(
            dirs[0]["patterns"]["drill.*.ndjson"],
            json!({"kept": 30, "deleted": 10}),
            "{res}"
        );
        assert_eq!(
            dirs[1]["patterns"]["db-*.tar.gz"],
            json!({"kept": 30, "deleted": 5}),
            "{res}"
        );
        assert!(res["deleted_total"].as_u64().unwrap() >= 15);
        assert!(res["queue_jobs"].is_object());
        let kept = count_prefix(&logs, "drill.");
        assert_eq!(kept.len(), 30, "{backend}");
        assert_eq!(
            kept[0],
            format!("drill.{}.ndjson", day0(10)),
            "the oldest 10 went"
        );
        assert_eq!(count_prefix(&backups, "db-").len(), 30);
        assert!(backups.join("notes.txt").exists());

        // Age a finished queue job and a job run past the 14-day default, straight in the
        // database; the next pass deletes exactly those (and no files: none are left over).
        let q = c
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {"n": 1}}),
            )
            .await;
        assert_eq!(q.status, 201, "{}", q.text);
        let qid = q.body["id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(30), "echo job succeeds", || async {
            let r = c.get(&format!("/api/v1/queue/jobs/{qid}")).await;
            (r.body["state"] == "succeeded").then_some(())
        })
        .await;
        sqlx::any::install_default_drivers();
        let url = srv
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", tmp.path().join("echopilot.db").display()));
        let db = sqlx::AnyPool::connect(&url).await.unwrap();
        let month_ago = chrono_now_ms() - 30 * 86_400_000;
        sqlx::query("UPDATE queue_jobs SET finished_at = $1 WHERE id = $2")
            .bind(month_ago)
            .bind(&qid)
            .execute(&db)
            .await
            .unwrap();
        sqlx::query("UPDATE job_runs SET started_at = $1 WHERE id = $2")
            .bind(month_ago)
            .bind(run["id"].as_str().unwrap())
            .execute(&db)
            .await
            .unwrap();
        db.close().await;
        let r = c.post("/api/v1/jobs/retention/run", json!({})).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let run = wait_run(&c, "retention", r.body["run_id"].as_str().unwrap()).await;
        assert_eq!(run["outcome"], "succeeded", "{run}");
        let res = &run["result"];
        assert_eq!(res["files"]["deleted"], 0, "{res}");
        assert_eq!(res["job_runs"]["deleted"], 1, "{backend}: {res}");
        assert_eq!(res["queue_jobs"]["deleted"], 1, "{backend}: {res}");
        assert_eq!(res["deleted_total"], 2, "{res}");
        c.get(&format!("/api/v1/queue/jobs/{qid}"))
            .await
            .assert_problem(404);
        drop(srv);
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `day(i)` = the date `i` days after y-m-d as `YYYY-MM-DD` (test data only; no leap-day care
/// needed for 2025's first 40 days).
fn chrono_like_day(y: i32, m: u32, d: u32) -> impl Fn(u32) -> String {
    move |i| {
        let days_in = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let (mut mm, mut dd) = (m, d + i);
        while dd > days_in[(mm - 1) as usize] {
            dd -= days_in[(mm - 1) as usize];
            mm += 1;
        }
        format!("{y:04}-{mm:02}-{dd:02}")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_schedule_is_a_config_error_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_echopilot"))
        .arg("serve")
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(tmp.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .env_remove("ECHOPILOT_DATABASE_URL")
        .env("ECHOPILOT_JOBS__RETENTION__SCHEDULE", "every day")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jobs.retention.schedule"), "{err}");
    assert!(err.contains("ECHOPILOT_JOBS__RETENTION__SCHEDULE"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_job_has_no_next_run() {
    let srv = start(
        "sqlite",
        vec![(
            "ECHOPILOT_JOBS__HEALTH_PROBE__ENABLED".into(),
            "false".into(),
        )],
    )
    .await;
    let s = srv.client().get("/api/v1/automations/status").await;
    let hp = s.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "health_probe")
        .unwrap()
        .clone();
    assert_eq!(hp["enabled"], false, "{hp}");
    assert!(hp["next_run"].is_null(), "{hp}");
}

async fn advisory_lock_holders(url: &str) -> i64 {
    let store = echopilot_backend::Store::connect(url, 1).await.unwrap();
    let key = echopilot_backend::jobs::leader::PG_LEADER_LOCK;
    // A bigint advisory key is stored as (classid = high 32 bits, objid = low 32 bits);
    // other tests' databases on the same server hold the same key in theirs.
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid::bigint = $1 AND objid::bigint = $2",
    )
    .bind(key >> 32)
    .bind(key & 0xffff_ffff)
    .fetch_one(store.reader())
    .await
    .unwrap();
    store.close().await;
    n
}

async fn leader_of(c: &common::Client) -> Option<bool> {
    let r = c.get("/api/v1/automations/status").await;
    (r.status == 200).then(|| r.body["leader"].as_bool().unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_fails_over_when_the_leader_is_killed() {
    if !common::backends().contains(&"postgres") {
        return;
    }
    let url = common::fresh_database("postgres").await;
    // One database, one bootstrap key: the second replica finds the key already installed.
    let opts = Opts {
        database_url: url.clone(),
        key: Some(common::random_key()),
        ..Default::default()
    };
    let a = Server::start_with(opts.clone());
    let b = Server::start_with(opts);
    let (ca, cb) = (a.client(), b.client());
    // Exactly one leader, and it stays that way across several looks.
    let first = eventually(Duration::from_secs(15), "one replica leads", || async {
        match (leader_of(&ca).await, leader_of(&cb).await) {
            (Some(x), Some(y)) if x != y => Some(if x { 'a' } else { 'b' }),
            _ => None,
        }
    })
    .await;
    // The mechanism, not a sample over time: PostgreSQL grants the leader lock to one
    // session, and the replica without it says it does not lead.
    let holders = advisory_lock_holders(url.as_deref().expect("a PostgreSQL URL")).await;
    assert_eq!(holders, 1, "one session holds the scheduler lock");
    let (x, y) = (leader_of(&ca).await.unwrap(), leader_of(&cb).await.unwrap());
    assert!(x ^ y, "exactly one leader: a={x} b={y}");
    let (mut dead, alive) = if first == 'a' { (a, b) } else { (b, a) };
    dead.kill9();
    let c = alive.client();
    eventually(
        Duration::from_secs(15),
        "the surviving replica takes over",
        || async { leader_of(&c).await.filter(|l| *l) },
    )
    .await;
    // The new leader runs the scheduled heartbeat (fires at second 0 of each minute).
    eventually(
        Duration::from_secs(75),
        "scheduled tick on the new leader",
        || async {
            let r = c.get("/api/v1/jobs/runs?job=scheduler_tick").await;
            let me = c.get("/api/v1/automations/status").await.body["replica_id"].clone();
            r.body["runs"].as_array().and_then(|a| {
                a.iter()
                    .find(|x| {
                        x["trigger"] == "schedule"
                            && x["replica"] == me
                            && x["outcome"] == "succeeded"
                    })
                    .cloned()
            })
        },
    )
    .await;
}

/// Drill env: test jobs on, fast queue retries and lease sweeps.
fn drill_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("ECHOPILOT_TEST_JOBS", "1"),
        ("ECHOPILOT_QUEUE__BACKOFF_BASE_MS", "100"),
        ("ECHOPILOT_QUEUE__BACKOFF_CAP_MS", "400"),
        ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
        // Only the jobs a drill looks at fire.
        ("ECHOPILOT_JOBS__ALERT_RULES__ENABLED", "false"),
        ("ECHOPILOT_JOBS__SELF_HEAL__ENABLED", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn runs_of(c: &common::Client, job: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/api/v1/jobs/runs?job={job}&limit=500"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["runs"].as_array().unwrap().clone()
}

/// Drill (a): a scheduled run that hangs is cancelled at the job's timeout and recorded
/// `timed_out` (not left running); the queue retries that firing and the next firing runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_scheduled_run_is_timed_out_and_the_next_firing_runs() {
    for backend in common::backends() {
        let srv = start(
            backend,
            drill_env(&[
                ("ECHOPILOT_JOBS__TEST_HANG_ONCE__SCHEDULE", "*/2 * * * * *"),
                ("ECHOPILOT_JOBS__TEST_HANG_ONCE__TIMEOUT_SECS", "1"),
            ]),
        )
        .await;
        let c = srv.client();
        let (timed_out, later) = eventually(
            Duration::from_secs(30),
            "a timed-out run, then a succeeded run of a later firing",
            || async {
                let runs = runs_of(&c, "test_hang_once").await;
                let t = runs.iter().find(|r| r["outcome"] == "timed_out")?.clone();
                let ok = runs
                    .iter()
                    .find(|r| {
                        r["outcome"] == "succeeded"
                            && r["trigger"] == "schedule"
                            && r["fire_at"].as_str() > t["fire_at"].as_str()
                    })?
                    .clone();
                Some((t, ok))
            },
        )
        .await;
        assert!(
            timed_out["error"]
                .as_str()
                .unwrap()
                .starts_with("timed_out:"),
            "{backend}: {timed_out}"
        );
        assert!(timed_out["finished_at"].is_string(), "{timed_out}");
        assert!(timed_out["duration_ms"].as_i64().unwrap() >= 1000);
        assert_eq!(timed_out["attempt"], 1);
        // The cancelled run's ledger was still written, with what it recorded.
        let tid = timed_out["id"].as_str().unwrap();
        let ledger = eventually(
            Duration::from_secs(10),
            "the timed-out run's ledger",
            || async {
                let r = c.get(&format!("/api/v1/jobs/runs/{tid}/ledger")).await;
                (r.status == 200).then_some(r.body)
            },
        )
        .await;
        assert_eq!(ledger["outcome"], "timed_out", "{backend}: {ledger}");
        assert_eq!(ledger["artifacts_total"], 2, "{ledger}");
        assert_eq!(ledger["artifacts_processed"], 1, "{ledger}");
        assert_eq!(ledger["errors_count"], 1, "{ledger}");
        assert_eq!(
            ledger["errors"][0]["artifact_id"], "drill-item-2",
            "{ledger}"
        );
        assert_eq!(ledger["errors"][0]["stage"], "hang", "{ledger}");
        assert_eq!(ledger["errors"][0]["blocking"], false, "{ledger}");
        // The queue job of the hung firing failed its attempt as timed out and retried.
        let qid = timed_out["queue_job_id"].as_str().unwrap();
        let job = c
            .with_tenant("_system")
            .get(&format!("/api/v1/queue/jobs/{qid}"))
            .await;
        assert_eq!(job.status, 200, "{}", job.text);
        assert_eq!(job.body["kind"], "scheduled:test_hang_once");
        assert!(job.body["attempts"].as_i64().unwrap() >= 2, "{}", job.text);
        let retried = eventually(Duration::from_secs(10), "the firing's retry", || async {
            runs_of(&c, "test_hang_once").await.into_iter().find(|r| {
                r["queue_job_id"] == qid && r["attempt"] == 2 && r["outcome"] != "running"
            })
        })
        .await;
        assert_eq!(retried["outcome"], "succeeded", "{backend}: {retried}");
        assert_eq!(retried["fire_at"], timed_out["fire_at"]);
        assert!(later["duration_ms"].as_i64().unwrap() < 1000, "{later}");
        let s = c.get("/api/v1/status/summary").await;
        assert!(
            s.body["jobs"]["runs_24h"]["timed_out"].as_i64() >= Some(1),
            "{}",
            s.text
        );
    }
}

/// Drill (b): two replicas on one PostgreSQL database that both believe they lead (test
/// hook): each firing of an every-second job runs exactly once across both.
#[tokio::test(flavor = "multi_thread")]
async fn each_firing_runs_once_across_two_leaders() {
    if !common::backends().contains(&"postgres") {
        return;
    }
    let url = common::fresh_database("postgres").await;
    let key = common::random_key();
    let mk = |replica: &str| {
        Server::start_with(Opts {
            database_url: url.clone(),
            key: Some(key.clone()),
            env: drill_env(&[
                ("ECHOPILOT_REPLICA_ID", replica),
                ("ECHOPILOT_TEST_ALWAYS_LEADER", "1"),
                ("ECHOPILOT_JOBS__SCHEDULER_TICK__SCHEDULE", "* * * * * *"),
            ]),
            ..Default::default()
        })
    };
    let a = mk("replica-a");
    let b = mk("replica-b");
    let (ca, cb) = (a.client(), b.client());
    for c in [&ca, &cb] {
        assert_eq!(leader_of(c).await, Some(true), "both think they lead");
    }
    let runs = eventually(
        Duration::from_secs(40),
        "10 distinct fire times while both replicas run",
        || async {
            let runs: Vec<Value> = runs_of(&ca, "scheduler_tick")
                .await
                .into_iter()
                .filter(|r| r["trigger"] == "schedule" && r["outcome"] != "running")
                .collect();
            let fires: std::collections::HashSet<String> = runs
                .iter()
                .map(|r| r["fire_at"].as_str().unwrap().to_string())
                .collect();
            (fires.len() >= 10).then_some(runs)
        },
    )
    .await;
    let mut per_fire: std::collections::HashMap<String, Vec<&Value>> = Default::default();
    for r in &runs {
        per_fire
            .entry(r["fire_at"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    for (fire, rs) in &per_fire {
        assert_eq!(rs.len(), 1, "firing {fire} ran {} times: {rs:?}", rs.len());
        assert_eq!(rs[0]["outcome"], "succeeded", "{:?}", rs[0]);
        assert_eq!(rs[0]["attempt"], 1);
    }
    // Both replicas enqueued every firing; the idempotency key kept one job each.
    let logs = format!("{}{}", a.read_logs(), b.read_logs());
    assert!(
        logs.contains("firing already enqueued") || logs.contains("\"run enqueued\""),
        "enqueue logged"
    );
    let jobs = ca
        .with_tenant("_system")
        .get("/api/v1/queue/jobs?kind=scheduled:scheduler_tick&limit=1000")
        .await;
    let jobs = jobs.body["jobs"].as_array().unwrap().clone();
    let keys: std::collections::HashSet<String> = jobs
        .iter()
        .map(|j| j["payload"]["fire_at"].to_string())
        .collect();
    assert_eq!(keys.len(), jobs.len(), "one queue job per fire time");
}

/// Drill (c): the replica running a job dies (kill -9); its lease expires and the other
/// replica runs the job again: the run is retried elsewhere, not lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_replica_dies_is_retried_on_another_replica() {
    if !common::backends().contains(&"postgres") {
        return;
    }
    let url = common::fresh_database("postgres").await;
    let key = common::random_key();
    let mk = |replica: &str| {
        Server::start_with(Opts {
            database_url: url.clone(),
            key: Some(key.clone()),
            env: drill_env(&[
                ("ECHOPILOT_REPLICA_ID", replica),
                ("ECHOPILOT_TEST_SLEEP_MS", "4000"),
                ("ECHOPILOT_QUEUE__LEASE_S", "2"),
                ("ECHOPILOT_QUEUE__RECLAIM_INTERVAL_S", "1"),
            ]),
            ..Default::default()
        })
    };
    let mut servers = [mk("replica-a"), mk("replica-b")];
    let c = servers[0].client();
    let r = c.post("/api/v1/jobs/test_sleep/run", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let run_id = r.body["run_id"].as_str().unwrap().to_string();
    let first = eventually(Duration::from_secs(20), "the run starts", || async {
        runs_of(&c, "test_sleep")
            .await
            .into_iter()
            .find(|r| r["id"] == run_id && r["outcome"] == "running")
    })
    .await;
    let victim = first["replica"].as_str().unwrap().to_string();
    let (dead, alive) = if victim == "replica-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    servers[dead].kill9();
    let c = servers[alive].client();
    let qid = first["queue_job_id"].as_str().unwrap().to_string();
    let retried = eventually(
        Duration::from_secs(40),
        "the retry on the survivor",
        || async {
            runs_of(&c, "test_sleep")
                .await
                .into_iter()
                .find(|r| r["queue_job_id"] == qid && r["outcome"] == "succeeded")
        },
    )
    .await;
    assert_ne!(retried["replica"], victim, "{retried}");
    assert_eq!(retried["attempt"], 2, "{retried}");
    let old = runs_of(&c, "test_sleep")
        .await
        .into_iter()
        .find(|r| r["id"] == run_id)
        .unwrap();
    assert_eq!(old["outcome"], "failed", "{old}");
    assert!(
        old["error"].as_str().unwrap().starts_with("abandoned"),
        "{old}"
    );
    let job = c
        .with_tenant("_system")
        .get(&format!("/api/v1/queue/jobs/{qid}"))
        .await;
    assert_eq!(job.body["state"], "succeeded", "{}", job.text);
}

/// restart_scheduler re-reads the config file on every replica: a changed schedule and a
/// disabled job take effect, the plan shows both, and the restart is audited.
#[tokio::test(flavor = "multi_thread")]
async fn restart_scheduler_applies_the_changed_config_on_every_replica() {
    for backend in common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("echopilot.toml");
        std::fs::write(&file, "[jobs.health_probe]\nschedule = \"0 55 7 * * *\"\n").unwrap();
        let url = common::fresh_database(backend).await;
        let key = common::random_key();
        let env = vec![("ECHOPILOT_CONFIG".to_string(), file.display().to_string())];
        let a = Server::start_with(Opts {
            database_url: url.clone(),
            key: Some(key.clone()),
            env: env.clone(),
            ..Default::default()
        });
        // A second replica shares the database on PostgreSQL.
        let b = (backend == "postgres").then(|| {
            Server::start_with(Opts {
                database_url: url.clone(),
                key: Some(key.clone()),
                env: env.clone(),
                ..Default::default()
            })
        });
        let c = a.client();
        std::fs::write(
            &file,
            "[jobs.health_probe]\nschedule = \"0 0 6 * * *\"\n[jobs.retention]\nenabled = false\n",
        )
        .unwrap();
        let cmd = "/api/v1/ops/command";
        let plan = c
            .post(
                cmd,
                json!({"verb": "restart_scheduler", "args": {}, "confirm": false}),
            )
            .await;
        assert_eq!(plan.status, 200, "{backend}: {}", plan.text);
        let effects = plan.body["plan"]["effects"].to_string();
        assert!(
            effects.contains("health_probe: schedule 0 55 7 * * * → 0 0 6 * * *"),
            "{effects}"
        );
        assert!(effects.contains("retention: disabled"), "{effects}");
        let r = c
            .post(
                cmd,
                json!({"verb": "restart_scheduler", "args": {}, "confirm": true,
                       "plan_id": plan.body["plan_id"], "reason": "new schedule"}),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["result"]["generation"], 1, "{}", r.text);
        let applied = |c: common::Client| async move {
            let s = c.get("/api/v1/automations/status").await;
            let jobs = s.body["jobs"].as_array().unwrap().clone();
            let hp = jobs.iter().find(|j| j["name"] == "health_probe").unwrap();
            let rt = jobs.iter().find(|j| j["name"] == "retention").unwrap();
            (s.body["generation"] == 1
                && hp["schedule"] == "0 0 6 * * *"
                && rt["enabled"] == false
                && rt["next_run"].is_null())
            .then_some(())
        };
        assert!(
            applied(c.clone()).await.is_some(),
            "{backend}: applied at once where asked"
        );
        if let Some(b) = &b {
            let cb = b.client();
            eventually(
                Duration::from_secs(15),
                "the other replica rebuilds",
                || applied(cb.clone()),
            )
            .await;
        }
        let audit = c
            .get("/api/v1/audit/records?action=automations.restart")
            .await;
        let recs = audit.body["records"].as_array().unwrap();
        assert_eq!(recs.len(), 1, "{}", audit.text);
        assert!(recs[0]["detail"]["changes"]
            .to_string()
            .contains("retention: disabled"));
        // A broken config is refused at the plan, naming the key; nothing changes.
        std::fs::write(&file, "[jobs.health_probe]\nschedule = \"nope\"\n").unwrap();
        let bad = c
            .post(
                cmd,
                json!({"verb": "restart_scheduler", "args": {}, "confirm": false}),
            )
            .await;
        bad.assert_problem(422);
        assert!(
            bad.text.contains("jobs.health_probe.schedule"),
            "{}",
            bad.text
        );
    }
}
