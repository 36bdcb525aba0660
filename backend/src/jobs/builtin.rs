//! The jobs this area implements: `scheduler_tick`, `retention`, `health_probe`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::{handler, JobContext, JobRegistry};
use crate::util::now_ms;

/// Register the scheduler's own jobs. Retention reads its config here so a bad value
/// stops the server at start, naming the key.
pub fn register(reg: &mut JobRegistry, cfg: &crate::config::Config) -> anyhow::Result<()> {
    let retention_cfg = super::retention::RetentionConfig::from_config(cfg)?;
    reg.register("scheduler_tick", "0 * * * * *", handler(tick))
        .timeout(Duration::from_secs(30))
        .describe("heartbeat every 60 s; tick gaps raise an alert");
    reg.register(
        "retention",
        "0 40 3 * * *",
        handler(move |ctx| super::retention::run(ctx, retention_cfg.clone())),
    )
    .run_at_start()
    .timeout(Duration::from_secs(30 * 60))
    .describe("keeps the newest files per log/backup pattern; prunes old job runs, finished queue jobs and AI events");
    reg.register("health_probe", "0 55 7 * * *", handler(health_probe))
        .timeout(Duration::from_secs(120))
        .describe("daily probe: database readiness, disk space, audit chain verification");
    #[cfg(feature = "test-util")]
    register_test_jobs(reg);
    Ok(())
}

/// Drill jobs for the end-to-end tests, only in test builds and only when
/// `ECHOPILOT_TEST_JOBS=1`: `test_sleep` sleeps `ECHOPILOT_TEST_SLEEP_MS` (default
/// 3000); `test_hang_once` never finishes its first run in a process (after writing
/// to its ledger), later runs succeed. Their default schedule fires once a year; tests set `jobs.<name>.schedule`.
#[cfg(feature = "test-util")]
fn register_test_jobs(reg: &mut JobRegistry) {
    if std::env::var("ECHOPILOT_TEST_JOBS").as_deref() != Ok("1") {
        return;
    }
    let ms: u64 = std::env::var("ECHOPILOT_TEST_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    reg.register(
        "test_sleep",
        "0 0 0 1 1 *",
        handler(move |ctx| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms, "replica": ctx.state.cfg.replica_id}))
        }),
    )
    .describe("test build only: sleeps");
    let hung = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    reg.register(
        "test_hang_once",
        "0 0 0 1 1 *",
        handler(move |ctx| {
            let first = !hung.swap(true, std::sync::atomic::Ordering::SeqCst);
            async move {
                if first {
                    // What a run recorded before it was cancelled is kept in its ledger.
                    ctx.ledger.add_total(2);
                    ctx.ledger.add_processed(1);
                    ctx.ledger.error(
                        crate::jobs::LedgerError::new("drill-item-2", "hang", "stuck on purpose")
                            .fix("nothing: a drill"),
                    );
                    std::future::pending::<()>().await;
                }
                Ok(json!({"hung": false}))
            }
        }),
    )
    .describe("test build only: hangs on its first run");
}

async fn tick(ctx: JobContext) -> anyhow::Result<Value> {
    Ok(json!({ "tick_at_ms": now_ms(), "replica": ctx.state.cfg.replica_id }))
}

/// Usage of the filesystem holding a path.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    pub mount_point: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_pct: f64,
}

/// The filesystem of `path` (the disk with the longest mount point that is a prefix of it).
pub async fn disk_usage(path: &Path) -> anyhow::Result<DiskUsage> {
    let path: PathBuf = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let disks = sysinfo::Disks::new_with_refreshed_list();
        let disk = disks
            .list()
            .iter()
            .filter(|d| path.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .ok_or_else(|| anyhow::anyhow!("no mounted filesystem found for {}", path.display()))?;
        let total = disk.total_space();
        let avail = disk.available_space();
        let used_pct = if total == 0 {
            0.0
        } else {
            (total.saturating_sub(avail)) as f64 * 100.0 / total as f64
        };
        Ok(DiskUsage {
            mount_point: disk.mount_point().display().to_string(),
            total_bytes: total,
            available_bytes: avail,
            used_pct: (used_pct * 100.0).round() / 100.0,
        })
    })
    .await?
}

/// Probe the things an operator checks first in the morning; each failed probe is an item
/// error (the run is `failed`, the other probes still run and are reported).
async fn health_probe(ctx: JobContext) -> anyhow::Result<Value> {
    let state = &ctx.state;
    let mut errors = Vec::new();
    let db = match state.store.ready().await {
        Ok(()) => json!({"ok": true}),
        Err(e) => {
            errors.push(json!({"probe": "database", "error": format!("{e:#}")}));
            json!({"ok": false, "error": format!("{e:#}")})
        }
    };
    let disk = match disk_usage(&state.cfg.data_dir).await {
        Ok(d) => json!({"ok": true, "mount_point": d.mount_point, "used_pct": d.used_pct,
                        "available_bytes": d.available_bytes, "total_bytes": d.total_bytes}),
        Err(e) => {
            errors.push(json!({"probe": "disk", "error": format!("{e:#}")}));
            json!({"ok": false, "error": format!("{e:#}")})
        }
    };
    // A record appended while verify pages through the log can look uncommitted for a
    // moment (verify does not read one snapshot); a real break is still there on a re-check.
    let mut verified = crate::audit::verify(&state.store).await;
    if matches!(&verified, Ok(v) if !v.ok) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        verified = crate::audit::verify(&state.store).await;
    }
    let audit = match verified {
        Ok(v) => {
            if !v.ok {
                errors
                    .push(json!({"probe": "audit", "error": v.reason.clone().unwrap_or_default()}));
            }
            json!({"ok": v.ok, "size": v.size, "first_bad_seq": v.first_bad_seq, "reason": v.reason})
        }
        Err(e) => {
            errors.push(json!({"probe": "audit", "error": e.to_string()}));
            json!({"ok": false, "error": e.to_string()})
        }
    };
    Ok(json!({ "database": db, "disk": disk, "audit": audit, "errors": errors }))
}
