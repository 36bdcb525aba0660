//! In-process queue benchmark: producers enqueue echo jobs in batches while worker pools
//! drain them; prints end-to-end jobs/s and enqueue→start latency percentiles.
//! Figures are reported, never asserted.
//!
//!   cargo bench -p echopilot-backend --features test-util --bench queue
//!   ECHOPILOT_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench … (adds PostgreSQL)
//!
//! Knobs: BENCH_JOBS (20000), BENCH_CONCURRENCY (64 per pool), BENCH_BATCH (256),
//! BENCH_POOLS (PostgreSQL only: pools on separate connection pools, as replicas; 2).

use std::time::{Duration, Instant};

use echopilot_backend::queue::{NewJob, Queue, QueueConfig};
use echopilot_backend::store::testing;
use echopilot_backend::Store;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(concurrency: usize, batch: usize) -> QueueConfig {
    let dir = std::env::temp_dir();
    let mut cfg =
        QueueConfig::from_config(&echopilot_backend::Config::for_data_dir(&dir)).expect("defaults");
    cfg.concurrency = concurrency;
    cfg.batch_size = batch;
    cfg.poll_interval_ms = 50;
    cfg
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn latencies(store: &Store) -> Vec<i64> {
    let mut v: Vec<i64> = sqlx::query_scalar(
        "SELECT started_at - enqueued_at FROM queue_jobs WHERE state = 'succeeded'",
    )
    .fetch_all(store.reader())
    .await
    .expect("latencies");
    v.sort_unstable();
    v
}

async fn wait_done(store: &Store, n: i64) {
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM queue_jobs WHERE state = 'succeeded'")
                .fetch_one(store.reader())
                .await
                .expect("count");
        if done >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn throughput(backend: &str, pools: usize) {
    let jobs = env_usize("BENCH_JOBS", 20_000);
    let conc = env_usize("BENCH_CONCURRENCY", 64);
    let batch = env_usize("BENCH_BATCH", 256);
    let (store, db) = testing::fresh(backend).await;
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let mut queues = Vec::new();
    for i in 0..pools {
        // Each pool gets its own connection pool, like a separate replica would.
        let s = if i == 0 {
            store.clone()
        } else {
            Store::connect(&db.url, 10).await.expect("connect")
        };
        let q = Queue::new(s, config(conc, batch), &format!("bench-{i}"), rx.clone());
        q.start_workers().await.expect("workers");
        queues.push(q);
    }
    let producer = queues[0].clone();
    let start = Instant::now();
    let mut left = jobs;
    let mut i = 0usize;
    while left > 0 {
        let n = left.min(500);
        let batch: Vec<NewJob> = (0..n)
            .map(|k| NewJob::new("echo", json!({ "i": i + k })))
            .collect();
        producer
            .enqueue_many("default", batch)
            .await
            .expect("enqueue");
        i += n;
        left -= n;
    }
    let enq = start.elapsed();
    wait_done(&store, jobs as i64).await;
    let total = start.elapsed();
    let lat = latencies(&store).await;
    println!(
        "{backend:8} pools={pools} concurrency={conc} batch={batch} jobs={jobs}: enqueue {:.0} jobs/s, \
         end-to-end {:.0} jobs/s ({:.2}s); enqueue→start ms under load p50={} p95={} p99={}",
        jobs as f64 / enq.as_secs_f64(),
        jobs as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
    );
    for q in queues {
        q.stop_workers().await;
    }
}

/// Idle-queue latency: one job at a time, as an interactive caller would see it.
async fn latency(backend: &str) {
    let (store, _db) = testing::fresh(backend).await;
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let q = Queue::new(store.clone(), config(4, 16), "bench-lat", rx);
    q.start_workers().await.expect("workers");
    let n = 300;
    for i in 0..n {
        q.enqueue("default", NewJob::new("echo", json!(i)), None)
            .await
            .expect("enqueue");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_done(&store, n).await;
    let lat = latencies(&store).await;
    println!(
        "{backend:8} idle enqueue→start latency ms ({n} jobs, 1 at a time): p50={} p95={} p99={} max={}",
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    q.stop_workers().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for backend in testing::backends() {
            throughput(backend, 1).await;
            if backend == "postgres" {
                throughput(backend, env_usize("BENCH_POOLS", 2)).await;
            }
            latency(backend).await;
        }
    });
}
