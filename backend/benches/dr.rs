//! DR throughput: sealing (AES-256-GCM + SHA-256 of the stored bytes, what a backup does to
//! each file) and opening (hash check + decryption, what a rehearsal and a restore do),
//! side by side with `sha256sum` on the same file in the same run; prints MB/s and the
//! ratio to sha256sum (goal ≥ 0.8). `openssl dgst -sha256` is printed beside it as a
//! reference (coreutils' sha256sum has no SHA-NI path; OpenSSL and the `sha2` crate use it).
//! Best of `DR_BENCH_RUNS` (3) each, so page-cache state and the shared CPU disturb it
//! less. Asserts nothing about time.
//!
//! Then end to end and the RTO: a fresh EchoPilot database filled with `DR_BENCH_RTO_MB`
//! (1024) MiB of real audit records; `DR_BENCH_RUNS` backups of it (snapshot + facts +
//! seal in place + fsync + retention: against sha256sum of the database file), rehearsals (against sha256sum of the
//! stored files they hash and decrypt), and `echopilot restore`'s restore (decrypt, load,
//! every check) into a new data dir (the RTO). On PostgreSQL too (`DR_BENCH_PG_MB`, 256)
//! when `ECHOPILOT_TEST_PG_URL` is set. The load average is printed at start and end.
//!
//!   ECHOPILOT_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p echopilot-backend --features test-util --bench dr

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use echopilot_backend::dr::crypt::{self, DrKey};
use echopilot_backend::store::{testing, Store};

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Seconds `program args… path` takes (best of `runs`), None when it is not installed.
fn peer(runs: usize, program: &str, args: &[&str], path: &Path) -> Option<f64> {
    let ok = std::process::Command::new(program)
        .args(args)
        .arg(path)
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| {
        best(runs, || {
            let out = std::process::Command::new(program)
                .args(args)
                .arg(path)
                .output()
                .expect("peer");
            assert!(out.status.success());
        })
    })
}

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
    println!(
        "== DR throughput, {mb} MiB file, best of {runs}, {cores} cores (shared), load average {}",
        loadavg()
    );

    let sha256sum = peer(runs, "sha256sum", &[], &plain).expect("sha256sum (coreutils)");
    let openssl = peer(runs, "openssl", &["dgst", "-sha256"], &plain);
    // Sealing writes the file again: `cp` of the same file is the floor of that (I/O).
    let copy = dir.path().join("copy.bin");
    let cp = best(runs, || {
        let _ = std::fs::remove_file(&copy);
        let st = std::process::Command::new("cp")
            .arg(&plain)
            .arg(&copy)
            .status()
            .expect("cp");
        assert!(st.success());
    });
    let _ = std::fs::remove_file(&copy);
    let hash = best(runs, || {
        crypt::hash_file(&plain).unwrap();
    });
    let seal = best(runs, || {
        let _ = std::fs::remove_file(&sealed);
        let out = std::fs::File::create(&sealed).unwrap();
        crypt::seal(&key, "f", std::fs::File::open(&plain).unwrap(), &out).unwrap();
    });
    let stored = std::fs::metadata(&sealed).unwrap().len();
    let open = best(runs, || {
        let f = std::fs::File::open(&sealed).unwrap();
        crypt::open(&key, "f", f, stored, std::io::sink()).unwrap();
    });
    // What a backup does to its clear database copy: seal it over itself (the copy is made
    // outside the timing, as `VACUUM INTO` makes it outside the sealing).
    let in_place = (0..runs)
        .map(|_| {
            std::fs::copy(&plain, &sealed).unwrap();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&sealed)
                .unwrap();
            let t = Instant::now();
            crypt::seal_in_place(&key, "f", &f).unwrap();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let row = |name: &str, secs: f64| {
        println!(
            "{name:<34} {:>8.1} MB/s   {:>5.2}x sha256sum",
            size / secs,
            sha256sum / secs
        );
    };
    row("sha256sum (coreutils, peer)", sha256sum);
    if let Some(o) = openssl {
        row("openssl dgst -sha256 (reference)", o);
    }
    row("cp (read+write, reference)", cp);
    row("hash_file (manifest check)", hash);
    row("seal: encrypt+hash+write (backup)", seal);
    row("seal in place (backup's database)", in_place);
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
    println!("== end to end and RTO (backup, rehearsal, echopilot restore), {runs} runs each");
    rt.block_on(rto("sqlite", env_mb("DR_BENCH_RTO_MB", 1024), runs));
    if std::env::var("ECHOPILOT_TEST_PG_URL").is_ok() {
        rt.block_on(rto("postgres", env_mb("DR_BENCH_PG_MB", 256), runs));
    }
    println!("load average at the end: {}", loadavg());
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

fn secs(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{s:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

async fn rto(engine: &str, mb: usize, runs: usize) {
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
    let state = echopilot_backend::AppState::new(cfg.clone(), store.clone());
    println!("{engine}: load average {}", loadavg());

    // Backups: end to end (snapshot, facts, seal every file, fsync, manifest, retention).
    if engine == "sqlite" {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(store.writer())
            .await
            .unwrap();
    }
    let mut backup_s = Vec::new();
    let mut m = None;
    for _ in 0..runs {
        let t = Instant::now();
        m = Some(dr.backup("bench").await.unwrap());
        backup_s.push(t.elapsed().as_secs_f64());
    }
    let m = m.unwrap();
    let from = dir.path().join("backups").join(&m.id);
    let db = m.files.iter().find(|f| f.kind == "database").unwrap();
    let stored: u64 = m.files.iter().map(|f| f.size).sum();
    let mib = |b: u64| b as f64 / 1048576.0;
    // The peer on the same bytes: the database file itself (SQLite; PostgreSQL has no file,
    // so the stored dump) for the backup, the stored files for the rehearsal.
    let source = match engine {
        "sqlite" => dir.path().join("echopilot.db"),
        _ => from.join(&db.name),
    };
    let source_len = std::fs::metadata(&source).unwrap().len();
    let sum_source = peer(runs, "sha256sum", &[], &source).unwrap();
    let sum_stored: f64 = m
        .files
        .iter()
        .map(|f| peer(runs, "sha256sum", &[], &from.join(&f.name)).unwrap())
        .sum();
    println!(
        "  database {:.0} MiB on disk ({} of {mb} MiB of audit records), stored {:.0} MiB in {} files",
        mib(source_len),
        if engine == "sqlite" { "echopilot.db" } else { "dump" },
        mib(stored),
        m.files.len(),
    );
    println!(
        "  backup      {:>6.1} MB/s  {:>5.2}x sha256sum of {} ({:.1}s)   runs {} s",
        mib(source_len) / min(&backup_s),
        sum_source / min(&backup_s),
        if engine == "sqlite" {
            "echopilot.db"
        } else {
            "the stored dump"
        },
        sum_source,
        secs(&backup_s)
    );

    // PostgreSQL: the floor is pg_dump / pg_restore themselves; time them alone on the same
    // database and the same dump (decrypted to a file) to show what sealing adds.
    let pg_alone = match &url {
        Some(u) => Some(pg_alone(u, &from, db, dr.section(), runs).await),
        None => None,
    };
    if let Some((dump_s, _)) = &pg_alone {
        println!(
            "    pg_dump alone (--format=custom --compress={} to a file): best {:.1}s; backup = {:.2}x its time",
            dr.section().pg_dump_compress,
            min(dump_s),
            min(&backup_s) / min(dump_s),
        );
    }

    // Rehearsals: restore for real into a scratch dir / database, every check.
    let mut restore_s = Vec::new();
    let mut rehearsal_s = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let r = dr.rehearse(&state, "bench").await.unwrap();
        assert_eq!(r.result.as_str(), "PASS", "{:?}", r.failures);
        restore_s.push(r.restore_ms as f64 / 1000.0);
        rehearsal_s.push(r.duration_ms as f64 / 1000.0);
        last = Some(r);
    }
    println!(
        "  rehearsal restore (hash+decrypt+load) {:>6.1} MB/s  {:>5.2}x sha256sum of the stored files ({:.1}s)   runs {} s; whole rehearsal runs {} s",
        mib(stored) / min(&restore_s),
        sum_stored / min(&restore_s),
        sum_stored,
        secs(&restore_s),
        secs(&rehearsal_s),
    );
    if let Some((_, restore_alone)) = &pg_alone {
        println!(
            "    pg_restore alone (the clear dump from a file into an empty database): best {:.1}s; rehearsal restore = {:.2}x its time",
            min(restore_alone),
            min(&restore_s) / min(restore_alone),
        );
    }
    let checks = |c: &[echopilot_backend::dr::Check]| {
        c.iter()
            .map(|c| format!("{} {:.1}s", c.name, c.duration_ms as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "    checks of the last rehearsal: {}",
        checks(&last.unwrap().checks)
    );

    // The real restore (what `echopilot restore` runs), into a new data dir / database.
    let mut rto_s = Vec::new();
    let mut load_s = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let target = tempfile::tempdir().unwrap();
        let target_db = match engine {
            "postgres" => Some(testing::create_pg_database().await),
            _ => None,
        };
        let t = Instant::now();
        let s = run_restore(
            &RestoreRequest {
                from: from.clone(),
                data_dir: target.path().join("new"),
                database_url: target_db.clone(),
                force: false,
            },
            dr.section(),
        )
        .await
        .unwrap();
        rto_s.push(t.elapsed().as_secs_f64());
        load_s.push(s.restore_ms as f64 / 1000.0);
        last = Some(s);
        if let Some(u) = target_db {
            drop_pg_database(&u).await;
        }
    }
    println!(
        "  echopilot restore (RTO) best {:.1}s   runs {} s (decrypt+load runs {} s)",
        min(&rto_s),
        secs(&rto_s),
        secs(&load_s),
    );
    println!(
        "    checks of the last restore: {}",
        checks(&last.unwrap().checks)
    );
    store.close().await;
    if let Some(u) = url {
        drop_pg_database(&u).await;
    }
}

/// Drop a database this bench created (`create_pg_database` leaves them to a sweep hours
/// later; these are large).
async fn drop_pg_database(url: &str) {
    use sqlx::Connection as _;
    let admin = std::env::var("ECHOPILOT_TEST_PG_URL").unwrap();
    let name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
}

/// `pg_dump` alone (to a file) and `pg_restore` alone (from the clear dump, into a fresh
/// database) on the bench's database: seconds of each run.
async fn pg_alone(
    url: &str,
    from: &Path,
    db: &echopilot_backend::dr::FileEntry,
    sec: &echopilot_backend::dr::DrSection,
    runs: usize,
) -> (Vec<f64>, Vec<f64>) {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("alone.pgdump");
    let mut dump_s = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let st = std::process::Command::new(&sec.pg_dump)
            .arg("--format=custom")
            .arg(format!("--compress={}", sec.pg_dump_compress))
            .arg("--no-password")
            .arg(format!("--dbname={url}"))
            .arg(format!("--file={}", dump.display()))
            .status()
            .unwrap();
        assert!(st.success());
        dump_s.push(t.elapsed().as_secs_f64());
    }
    // The backup's own dump, decrypted, is what pg_restore gets in a rehearsal.
    let key = sec.key().unwrap();
    let stored = std::fs::File::open(from.join(&db.name)).unwrap();
    let len = stored.metadata().unwrap().len();
    let clear = std::fs::File::create(&dump).unwrap();
    crypt::open(&key, &db.name, stored, len, std::io::BufWriter::new(clear)).unwrap();
    let mut restore_s = Vec::new();
    for _ in 0..runs {
        let target = testing::create_pg_database().await;
        let t = Instant::now();
        let st = std::process::Command::new(&sec.pg_restore)
            .args([
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                "--no-password",
            ])
            .arg(format!("--dbname={target}"))
            .arg(&dump)
            .status()
            .unwrap();
        assert!(st.success());
        restore_s.push(t.elapsed().as_secs_f64());
        drop_pg_database(&target).await;
    }
    (dump_s, restore_s)
}
