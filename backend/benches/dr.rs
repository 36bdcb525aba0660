//! DR throughput: sealing (AES-256-GCM + SHA-256 of the stored bytes, what a backup does to
//! each file) and opening (hash check + decryption, what a rehearsal and a restore do),
//! side by side with `sha256sum` on the same file in the same run; prints MB/s and the
//! ratio to sha256sum (goal ≥ 0.8). Best of `DR_BENCH_RUNS` (3) each, so page-cache state
//! and the shared CPU disturb it less. Asserts nothing about time.
//!
//! Then the RTO: a fresh EchoPilot database filled with `DR_BENCH_RTO_MB` (1024) MiB of
//! real audit records, a backup of it, the rehearsal, and `echopilot restore`'s restore
//! (decrypt, load, every check) into a new data dir; on PostgreSQL too
//! (`DR_BENCH_PG_MB`, 256) when `ECHOPILOT_TEST_PG_URL` is set.
//!
//!   DR_BENCH_MB=512 cargo bench -p echopilot-backend --features test-util --bench dr

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use echopilot_backend::dr::crypt::{self, DrKey};
use echopilot_backend::store::{testing, Store};

fn best<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn make_file(path: &Path, mb: usize) {
    // Incompressible-looking bytes (a cheap xorshift stream), like a database page mix.
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

fn main() {
    let mb: usize = std::env::var("DR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let runs: usize = std::env::var("DR_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.bin");
    let sealed = dir.path().join("sealed.enc");
    make_file(&plain, mb);
    let key = DrKey::parse(&"ab".repeat(32)).unwrap();
    let size = mb as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("== DR throughput, {mb} MiB file, best of {runs}, {cores} cores (shared)");

    let sha256sum = best(runs, || {
        let out = std::process::Command::new("sha256sum")
            .arg(&plain)
            .output()
            .expect("sha256sum");
        assert!(out.status.success());
    });
    let hash = best(runs, || {
        crypt::hash_file(&plain).unwrap();
    });
    let seal = best(runs, || {
        let out = std::fs::File::create(&sealed).unwrap();
        crypt::seal(&key, "f", std::fs::File::open(&plain).unwrap(), &out).unwrap();
    });
    let stored = std::fs::metadata(&sealed).unwrap().len();
    let open = best(runs, || {
        let f = std::fs::File::open(&sealed).unwrap();
        crypt::open(&key, "f", f, stored, std::io::sink()).unwrap();
    });
    let row = |name: &str, secs: f64| {
        println!(
            "{name:<34} {:>8.1} MB/s   {:>5.2}x sha256sum",
            size / secs,
            sha256sum / secs
        );
    };
    row("sha256sum (coreutils, peer)", sha256sum);
    row("hash_file (manifest check)", hash);
    row("seal: encrypt+hash+write (backup)", seal);
    row("open: hash+decrypt (verify)", open);
    drop(dir);

    let env_mb = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("== RTO (backup, rehearsal, echopilot restore)");
    rt.block_on(rto("sqlite", env_mb("DR_BENCH_RTO_MB", 1024)));
    if std::env::var("ECHOPILOT_TEST_PG_URL").is_ok() {
        rt.block_on(rto("postgres", env_mb("DR_BENCH_PG_MB", 256)));
    }
}

// ------------------------------------------------------------------ RTO

/// Fill a fresh EchoPilot database with about `mb` MiB of real audit records (4 KiB of
/// pseudo-random detail each, so PostgreSQL's dump compression cannot shrink it away).
async fn fill(store: &Store, mb: usize) -> u64 {
    use echopilot_backend::audit::{self, NewAudit};
    let per = 4096usize;
    let n = (mb << 20) / per;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut done = 0u64;
    let t = Instant::now();
    while (done as usize) < n {
        let batch = 500.min(n - done as usize);
        let mut recs = Vec::with_capacity(batch);
        for i in 0..batch {
            let mut s = String::with_capacity(per);
            while s.len() < per {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(&format!("{x:016x}"));
            }
            recs.push(
                NewAudit::new(
                    "bench",
                    "key_bench",
                    "bench.fill",
                    &format!("t{}", done + i as u64),
                    "ok",
                    "bench",
                )
                .detail(serde_json::json!({ "blob": s })),
            );
        }
        let mut tx = store.begin_write().await.unwrap();
        audit::append_many(store, &mut tx, recs).await.unwrap();
        tx.commit().await.unwrap();
        done += batch as u64;
    }
    eprintln!(
        "  filled {done} audit records in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    done
}

async fn rto(engine: &str, mb: usize) {
    use echopilot_backend::config::Source;
    use echopilot_backend::dr::restore::{run_restore, RestoreRequest};
    use echopilot_backend::dr::Dr;
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = match engine {
        "postgres" => {
            let url = testing::create_pg_database().await;
            (Store::connect(&url, 4).await.unwrap(), Some(url))
        }
        _ => {
            let url = echopilot_backend::store::sqlite_url(&dir.path().join("echopilot.db"));
            (Store::connect(&url, 4).await.unwrap(), None)
        }
    };
    store.migrate().await.unwrap();
    fill(&store, mb).await;
    let mut cfg = echopilot_backend::Config::for_data_dir(dir.path());
    cfg.database_url = url.clone();
    cfg.raw.set_str("dr.key", &"cd".repeat(32), Source::Flag);
    let dr = Dr::new(store.clone(), cfg.clone()).unwrap();
    let t = Instant::now();
    let m = dr.backup("bench").await.unwrap();
    let backup_s = t.elapsed().as_secs_f64();
    let db = m.files.iter().find(|f| f.kind == "database").unwrap();
    let plain_mb = db.plain_size as f64 / 1048576.0;
    let state = echopilot_backend::AppState::new(cfg.clone(), store.clone());
    let r = dr.rehearse(&state, "bench").await.unwrap();
    assert_eq!(r.result.as_str(), "PASS", "{:?}", r.failures);
    // The real restore (what `echopilot restore` runs), into a new data dir / database.
    let target = tempfile::tempdir().unwrap();
    let target_db = match engine {
        "postgres" => Some(testing::create_pg_database().await),
        _ => None,
    };
    let t = Instant::now();
    let s = run_restore(
        &RestoreRequest {
            from: dir.path().join("backups").join(&m.id),
            data_dir: target.path().join("new"),
            database_url: target_db,
            force: false,
        },
        dr.section(),
    )
    .await
    .unwrap();
    let restore_s = t.elapsed().as_secs_f64();
    let checks_ms: i64 = s.checks.iter().map(|c| c.duration_ms).sum();
    println!(
        "{engine:<8} db {plain_mb:>7.0} MiB (stored {:>7.0} MiB)  backup {backup_s:>6.1}s ({:>6.1} MB/s)  \
         rehearsal {:>6.1}s (restore {:>6.1}s = {:>6.1} MB/s)  echopilot restore (RTO) {restore_s:>6.1}s \
         (decrypt+load {:>6.1}s, checks {:>5.1}s)",
        db.size as f64 / 1048576.0,
        plain_mb / backup_s,
        r.duration_ms as f64 / 1000.0,
        r.restore_ms as f64 / 1000.0,
        plain_mb / (r.restore_ms as f64 / 1000.0),
        s.restore_ms as f64 / 1000.0,
        checks_ms as f64 / 1000.0,
    );
    store.close().await;
}
