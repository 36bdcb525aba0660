//! Audit log benchmark: append rate and receipt / root latency at 100k and 1M records.
//!
//!   cargo bench -p echopilot-backend --bench audit            # SQLite, 100k and 1M
//!   AUDIT_BENCH_SIZES=100000 ECHOPILOT_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p echopilot-backend --bench audit          # also PostgreSQL
//!
//! Appends are measured one record per transaction (what a mutation costs) and also in
//! batches of 500 per transaction (how the log is filled to the next size quickly).
//! Prints figures; asserts nothing about time.

use std::time::{Duration, Instant};

use echopilot_backend::audit::{self, NewAudit};
use echopilot_backend::store::{testing, Store};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rec(i: u64) -> NewAudit {
    NewAudit::new(
        "bench",
        "key_bench",
        "bench.append",
        &format!("target-{i}"),
        "ok",
        "bench",
    )
    .detail(serde_json::json!({"i": i}))
}

async fn fill_to(store: &Store, target: u64) {
    let mut size = audit::size(store).await.unwrap() as u64;
    let start = Instant::now();
    let from = size;
    while size < target {
        let mut tx = store.begin_write().await.unwrap();
        let n = (target - size).min(500);
        for i in 0..n {
            audit::append(store, &mut tx, rec(size + i)).await.unwrap();
        }
        tx.commit().await.unwrap();
        size += n;
        if size.is_multiple_of(100_000) {
            eprintln!("  … {size} records");
        }
    }
    let el = start.elapsed().as_secs_f64();
    if target > from {
        println!(
            "  batched fill {from}→{target}: {:.0} records/s (500 per transaction)",
            (target - from) as f64 / el
        );
    }
}

async fn single_appends(store: &Store, n: u64) {
    let base = audit::size(store).await.unwrap() as u64;
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        audit::record(store, rec(base + i)).await.unwrap();
        lat.push(t.elapsed());
    }
    let el = start.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "  single-record appends: {:.0} records/s, p50 {:?}, p99 {:?}",
        n as f64 / el,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

async fn proofs(store: &Store, samples: usize) {
    let size = audit::size(store).await.unwrap();
    let mut receipt = Vec::with_capacity(samples);
    let mut root = Vec::with_capacity(samples);
    let mut cons = Vec::with_capacity(samples);
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seq = (x % size as u64) as i64;
        let t = Instant::now();
        audit::receipt(store, seq, Some(size)).await.unwrap();
        receipt.push(t.elapsed());
        let t = Instant::now();
        audit::chain(store).await.unwrap();
        root.push(t.elapsed());
        let t = Instant::now();
        audit::consistency(store, seq.max(1), size).await.unwrap();
        cons.push(t.elapsed());
    }
    for (name, v) in [
        ("receipt", &mut receipt),
        ("chain (root+head)", &mut root),
        ("consistency", &mut cons),
    ] {
        v.sort();
        println!(
            "  {name} at {size}: p50 {:?}, p99 {:?}",
            pct(v, 0.5),
            pct(v, 0.99)
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sizes: Vec<u64> = std::env::var("AUDIT_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    rt.block_on(async {
        for backend in testing::backends() {
            println!("== audit bench on {backend}");
            let (store, _db) = testing::fresh(backend).await;
            single_appends(&store, 2000).await;
            for &n in &sizes {
                fill_to(&store, n).await;
                single_appends(&store, 1000).await;
                proofs(&store, 300).await;
                let t = Instant::now();
                let v = audit::verify(&store).await.unwrap();
                println!(
                    "  full verify of {} records: {:?} (ok={})",
                    v.size,
                    t.elapsed(),
                    v.ok
                );
            }
        }
    });
}
