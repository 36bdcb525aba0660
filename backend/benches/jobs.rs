//! Scheduler bookkeeping benchmark: what recording a run costs (claim the no-overlap slot,
//! record the end), an overlapping start (recorded as skipped), and listing runs with
//! 10k runs stored.
//!
//!   cargo bench -p echopilot-backend --bench jobs
//!   ECHOPILOT_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p echopilot-backend --bench jobs          # also PostgreSQL
//!
//! Prints figures; asserts nothing about time.

use std::time::{Duration, Instant};

use echopilot_backend::jobs::{self, Begin, Trigger};
use echopilot_backend::store::testing;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    println!(
        "  {what}: {:.0}/s, p50 {:?}, p99 {:?}",
        lat.len() as f64 / total.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

#[tokio::main]
async fn main() {
    const N: usize = 2000;
    for backend in testing::backends() {
        println!("{backend}:");
        let (store, _db) = testing::fresh(backend).await;
        let result = serde_json::json!({"tick_at_ms": 0});
        let mut lat = Vec::with_capacity(N);
        let start = Instant::now();
        for i in 0..N {
            let t = Instant::now();
            let job = format!("bench_{}", i % 20);
            let Begin::Started(id) =
                jobs::begin_run(&store, &job, Trigger::Schedule, "bench", None, None)
                    .await
                    .unwrap()
            else {
                panic!("no overlap expected");
            };
            jobs::finish_run(
                &store,
                &id,
                jobs::Outcome::Succeeded,
                None,
                Some(&result),
                1,
            )
            .await
            .unwrap();
            lat.push(t.elapsed());
        }
        report("run recorded (begin + finish)", lat, start.elapsed());

        let Begin::Started(held) =
            jobs::begin_run(&store, "held", Trigger::Schedule, "bench", None, None)
                .await
                .unwrap()
        else {
            panic!("first start wins");
        };
        let mut lat = Vec::with_capacity(500);
        let start = Instant::now();
        for _ in 0..500 {
            let t = Instant::now();
            assert!(matches!(
                jobs::begin_run(&store, "held", Trigger::Schedule, "bench", None, None)
                    .await
                    .unwrap(),
                Begin::Overlap { .. }
            ));
            lat.push(t.elapsed());
        }
        report("overlapping start (recorded skipped)", lat, start.elapsed());
        jobs::finish_run(&store, &held, jobs::Outcome::Succeeded, None, None, 1)
            .await
            .unwrap();

        let filler = 10_000 - N - 501;
        for i in 0..filler {
            let Begin::Started(id) = jobs::begin_run(
                &store,
                &format!("fill_{}", i % 50),
                Trigger::Schedule,
                "bench",
                None,
                None,
            )
            .await
            .unwrap() else {
                panic!();
            };
            jobs::finish_run(&store, &id, jobs::Outcome::Succeeded, None, None, 1)
                .await
                .unwrap();
        }
        for (what, job) in [
            ("list 50 runs of all jobs (10k stored)", None),
            ("list 50 runs of one job (10k stored)", Some("bench_3")),
        ] {
            let mut lat = Vec::with_capacity(200);
            let start = Instant::now();
            for _ in 0..200 {
                let t = Instant::now();
                let runs = jobs::list_runs(&store, job, 50).await.unwrap();
                assert!(!runs.is_empty());
                lat.push(t.elapsed());
            }
            report(what, lat, start.elapsed());
        }
    }
}
