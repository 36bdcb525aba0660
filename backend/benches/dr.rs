//! DR throughput: sealing (AES-256-GCM + SHA-256 of the stored bytes, what a backup does to
//! each file) and opening (hash check + decryption, what a rehearsal and a restore do),
//! side by side with `sha256sum` on the same file in the same run; prints MB/s and the
//! ratio to sha256sum (goal ≥ 0.8). Best of `DR_BENCH_RUNS` (3) each, so page-cache state
//! and the shared CPU disturb it less. Asserts nothing about time.
//!
//!   DR_BENCH_MB=512 cargo bench -p echopilot-backend --bench dr

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use echopilot_backend::dr::crypt::{self, DrKey};

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
}
