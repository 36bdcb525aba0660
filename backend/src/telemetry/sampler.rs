//! The background sampler: host readings (sysinfo), API window stats and queue depth,
//! one sample per interval, an hour kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;
use crate::app::AppState;
use crate::util::{now_ms, rfc3339_ms};

pub(super) async fn sampler(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    if *shutdown.borrow() {
        return;
    }
    let interval = tel(&state).settings().interval;
    let data_dir = state.cfg.data_dir.clone();
    let sys = Arc::new(Mutex::new(sysinfo::System::new()));
    {
        // CPU usage is a difference between two refreshes: prime the first one.
        let sys = sys.clone();
        let _ = tokio::task::spawn_blocking(move || {
            sys.lock()
                .unwrap_or_else(|e| e.into_inner())
                .refresh_cpu_usage();
        })
        .await;
    }
    let mut next = tokio::time::Instant::now() + sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
        next = tokio::time::Instant::now() + interval;
        let reading = {
            let sys = sys.clone();
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || read_system(&sys, &dir))
                .await
                .ok()
        };
        let queue_depth = queue_depth(&state).await;
        let api = window::stats(interval.as_millis().max(1000) as i64);
        let at = now_ms();
        let sample = Sample {
            ts: rfc3339_ms(at),
            at_ms: at,
            cpu_pct: reading.as_ref().map(|r| r.cpu_pct),
            mem_pct: reading.as_ref().map(|r| r.mem_pct),
            disk_pct: reading.as_ref().and_then(|r| r.disk_pct),
            queue_depth,
            api_p95_ms: api.p95_ms,
            error_rate: api.error_rate,
        };
        metrics::gauge!("echopilot_system_cpu_percent").set(sample.cpu_pct.unwrap_or(0.0));
        metrics::gauge!("echopilot_system_memory_percent").set(sample.mem_pct.unwrap_or(0.0));
        if let Some(d) = sample.disk_pct {
            metrics::gauge!("echopilot_system_disk_percent").set(d);
        }
        if let Some(r) = reading {
            *tel(&state).system.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        }
        tracing::debug!(target: "telemetry", cpu_pct = ?sample.cpu_pct, mem_pct = ?sample.mem_pct, disk_pct = ?sample.disk_pct, api_p95_ms = ?sample.api_p95_ms, "telemetry sample");
        tel(&state).push(sample);
    }
}

pub(super) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn read_system(sys: &Mutex<sysinfo::System>, data_dir: &Path) -> SystemReading {
    let mut s = sys.lock().unwrap_or_else(|e| e.into_inner());
    s.refresh_cpu_usage();
    s.refresh_memory();
    let total = s.total_memory();
    let used = total.saturating_sub(s.available_memory());
    let disks = sysinfo::Disks::new_with_refreshed_list();
    // The disk holding the data dir: the longest mount point that prefixes its path.
    let dir: PathBuf = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let disk = disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len());
    let (disk_pct, free, dtotal, mount) = match disk {
        Some(d) if d.total_space() > 0 => {
            let t = d.total_space();
            let f = d.available_space();
            (
                Some(round1((t - f.min(t)) as f64 * 100.0 / t as f64)),
                Some(f),
                Some(t),
                Some(d.mount_point().display().to_string()),
            )
        }
        _ => (None, None, None, None),
    };
    SystemReading {
        sampled_at: rfc3339_ms(now_ms()),
        cpu_pct: round1(f64::from(s.global_cpu_usage())),
        cpus: s.cpus().len(),
        mem_pct: if total > 0 {
            round1(used as f64 * 100.0 / total as f64)
        } else {
            0.0
        },
        mem_used_bytes: used,
        mem_total_bytes: total,
        disk_pct,
        disk_free_bytes: free,
        disk_total_bytes: dtotal,
        disk_mount: mount,
    }
}

/// Jobs in state `queued` across all tenants (the sampler is fleet-level, not per
/// tenant); `None` when the queue is not running or the read fails. Asked of the queue,
/// which owns `queue_jobs`.
async fn queue_depth(state: &AppState) -> Option<i64> {
    let queue = state.queue()?;
    let timeout = tel(state).probe_timeout();
    match tokio::time::timeout(timeout, queue.queued_count()).await {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            tracing::warn!(target: "telemetry", error = %e, "queue depth sample failed");
            None
        }
        Err(_) => {
            tracing::warn!(target: "telemetry", "queue depth sample timed out");
            None
        }
    }
}
