//! `GET /api/v1/system-health`: every probe under a timeout, one line per problem.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::app::AppState;
use crate::util::{now_ms, rfc3339_ms};

/// One probe of `GET /api/v1/system-health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Probe {
    /// `ok`, `degraded`, `failed`, `timeout`, or `absent` (area not part of this build).
    pub status: String,
    pub latency_ms: Option<f64>,
    pub detail: String,
}

/// `GET /api/v1/system-health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemHealth {
    /// True when no probe failed, timed out or is degraded.
    pub ok: bool,
    pub components: std::collections::BTreeMap<String, Probe>,
    /// One line per problem, naming the component.
    pub issues: Vec<String>,
    pub checked_at: String,
}

pub(super) fn to_probe(r: (Result<String, String>, f64), timeout: Duration) -> Probe {
    match r {
        (Ok(detail), ms) => Probe {
            status: if detail.starts_with("degraded: ") {
                "degraded".into()
            } else {
                "ok".into()
            },
            latency_ms: Some(ms),
            detail: detail.trim_start_matches("degraded: ").to_string(),
        },
        (Err(e), ms) => Probe {
            status: if e.starts_with("timed out") && ms >= timeout.as_millis() as f64 {
                "timeout".into()
            } else {
                "failed".into()
            },
            latency_ms: Some(ms),
            detail: e,
        },
    }
}

/// Run every probe concurrently, each bounded by the probe timeout.
pub async fn system_health(state: &AppState) -> SystemHealth {
    let t = tel(state).probe_timeout();
    let store = &state.store;
    let db = probe(t, async {
        let _: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(store.reader())
            .await?;
        Ok("database answers".to_string())
    });
    let migrations = probe(t, async {
        store.ready().await?;
        Ok("all migrations applied".to_string())
    });
    let db_write = probe(t, async {
        // A write transaction proves the writer is not wedged (e.g. a stuck lock).
        let tx = store.begin_write().await?;
        tx.rollback().await?;
        Ok("write transaction can start".to_string())
    });
    let logs_dir = state.cfg.logs_dir();
    let data_dir = state.cfg.data_dir.clone();
    let disk = probe(t, async move {
        let r = tokio::task::spawn_blocking(move || disk_free(&data_dir)).await??;
        Ok(r)
    });
    let logs = probe(t, async move {
        let r = tokio::task::spawn_blocking(move || logs_writable(&logs_dir)).await??;
        Ok(r)
    });
    let interval = tel(state).settings().interval;
    let sampler = probe(t, async {
        match tel(state).last_sample_age_ms() {
            Some(age) if age <= 3 * interval.as_millis() as i64 => {
                Ok(format!("last sample {} s ago", age / 1000))
            }
            Some(age) => Ok(format!(
                "degraded: last sample {} s ago (interval {} s)",
                age / 1000,
                interval.as_secs()
            )),
            None if state.started_at.elapsed() < 3 * interval => {
                Ok("first sample pending".to_string())
            }
            None => anyhow::bail!("no sample since start"),
        }
    });
    let probes = state.probes();
    let areas = probes
        .iter()
        .map(|p| async move { (p.name(), probe(t, p.check(state)).await) });
    let (db, migrations, db_write, disk, logs, sampler, areas) = tokio::join!(
        db,
        migrations,
        db_write,
        disk,
        logs,
        sampler,
        futures_util::future::join_all(areas)
    );
    let mut components = std::collections::BTreeMap::new();
    for (name, r) in [
        ("database", db),
        ("migrations", migrations),
        ("database_write", db_write),
        ("disk", disk),
        ("logs", logs),
        ("telemetry_sampler", sampler),
    ] {
        components.insert(name.to_string(), to_probe(r, t));
    }
    for (name, r) in areas {
        components.insert(name.to_string(), to_probe(r, t));
    }
    for m in state.modules_off() {
        components.insert(
            m.to_string(),
            Probe {
                status: "absent".into(),
                latency_ms: None,
                detail: format!("module {m} is turned off fleet-wide ([modules] {m} = false)"),
            },
        );
    }
    let issues: Vec<String> = components
        .iter()
        .filter(|(_, p)| matches!(p.status.as_str(), "failed" | "timeout" | "degraded"))
        .map(|(n, p)| format!("{n}: {} ({})", p.status, p.detail))
        .collect();
    SystemHealth {
        ok: issues.is_empty(),
        components,
        issues,
        checked_at: rfc3339_ms(now_ms()),
    }
}

fn disk_free(data_dir: &Path) -> anyhow::Result<String> {
    let dir = std::fs::canonicalize(data_dir)?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let Some(d) = disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
    else {
        anyhow::bail!("no mounted disk found for {}", dir.display());
    };
    let (total, free) = (d.total_space(), d.available_space());
    let used_pct = if total > 0 {
        round1((total - free.min(total)) as f64 * 100.0 / total as f64)
    } else {
        0.0
    };
    let msg = format!(
        "{used_pct}% used, {} MiB free on {}",
        free / (1024 * 1024),
        d.mount_point().display()
    );
    if used_pct >= DISK_RED {
        anyhow::bail!("{msg}");
    }
    Ok(if used_pct >= DISK_YELLOW {
        format!("degraded: {msg}")
    } else {
        msg
    })
}

fn logs_writable(dir: &Path) -> anyhow::Result<String> {
    let md = std::fs::metadata(dir)?;
    if !md.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    if md.permissions().readonly() {
        anyhow::bail!("{} is read-only", dir.display());
    }
    Ok(format!("{} is writable", dir.display()))
}
