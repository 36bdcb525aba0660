//! Telemetry: component status (`GET /api/v1/ops/telemetry`), a background sampler that
//! keeps an hour of samples (`/ops/telemetry/history`), and `GET /api/v1/system-health`
//! with a timeout on every probe.
//!
//! Every number comes from a real source: sysinfo for CPU/memory/disk, a rolling window
//! of finished requests for API latency and errors, the database and the audit log.
//! Areas that are not part of this build are reported as `absent`, never estimated.

pub mod api;
pub mod area;
pub mod window;

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::util::{now_ms, rfc3339_ms};

/// Samples are kept this long.
const HISTORY_MS: i64 = 3600 * 1000;
/// Window of the telemetry `api` component; a history sample covers its own interval.
const API_WINDOW_MS: i64 = 5 * 60 * 1000;

// Thresholds: yellow warns, red means act now.
const CPU_YELLOW: f64 = 90.0;
const MEM_YELLOW: f64 = 90.0;
const MEM_RED: f64 = 97.0;
const DISK_YELLOW: f64 = 90.0;
const DISK_RED: f64 = 97.0;
const ERR_YELLOW: f64 = 0.05;
const ERR_RED: f64 = 0.20;
const P95_YELLOW_MS: f64 = 1000.0;
const DB_YELLOW_MS: f64 = 500.0;

/// One history sample. Fields are `null` when their source is absent or had no data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    pub ts: String,
    #[serde(skip)]
    pub at_ms: i64,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub disk_pct: Option<f64>,
    pub queue_depth: Option<i64>,
    pub api_p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
}

/// Latest reading of the host, from sysinfo.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReading {
    pub sampled_at: String,
    pub cpu_pct: f64,
    pub cpus: usize,
    pub mem_pct: f64,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub disk_pct: Option<f64>,
    pub disk_free_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub disk_mount: Option<String>,
}

/// Telemetry state: the telemetry module's service (`State<Arc<Telemetry>>`).
#[derive(Default)]
pub struct Telemetry {
    history: Mutex<VecDeque<Sample>>,
    system: Mutex<Option<SystemReading>>,
    settings: std::sync::OnceLock<Settings>,
}

/// The telemetry service of this process (defaults when the module is off, so the
/// platform's own probes still have a timeout).
pub fn tel(state: &AppState) -> Arc<Telemetry> {
    state
        .service::<Arc<Telemetry>>()
        .unwrap_or_else(|| Arc::new(Telemetry::new()))
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    interval: Duration,
    probe_timeout: Duration,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        Telemetry::default()
    }

    fn settings(&self) -> Settings {
        self.settings.get().copied().unwrap_or(Settings {
            interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(2),
        })
    }

    /// Sampling interval in seconds.
    pub fn interval_secs(&self) -> u64 {
        self.settings().interval.as_secs()
    }

    pub fn probe_timeout(&self) -> Duration {
        self.settings().probe_timeout
    }

    /// Samples newer than `minutes` ago, oldest first.
    pub fn history(&self, minutes: i64) -> Vec<Sample> {
        let since = now_ms() - minutes * 60_000;
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.at_ms >= since)
            .cloned()
            .collect()
    }

    pub fn latest_system(&self) -> Option<SystemReading> {
        self.system
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Age of the newest sample.
    fn last_sample_age_ms(&self) -> Option<i64> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .back()
            .map(|s| now_ms() - s.at_ms)
    }

    fn push(&self, s: Sample) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = s.at_ms - HISTORY_MS;
        while h.front().is_some_and(|x| x.at_ms < cutoff) {
            h.pop_front();
        }
        h.push_back(s);
    }
}

/// Build the telemetry service from `[telemetry]` (see [`area::TelemetrySection`]).
pub fn build(raw: &crate::config::ConfigMap) -> Result<Telemetry, crate::config::ConfigError> {
    let sec = area::TelemetrySection::load(raw)?;
    let t = Telemetry::new();
    let _ = t.settings.set(Settings {
        interval: Duration::from_secs(sec.sample_interval_secs),
        probe_timeout: Duration::from_millis(sec.probe_timeout_ms),
    });
    Ok(t)
}

/// Start the sampler (the module's start phase).
pub fn start(state: &AppState) {
    let st = state.clone();
    state.spawn_background(sampler(st));
}

async fn sampler(state: AppState) {
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

fn round1(x: f64) -> f64 {
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

// ------------------------------------------------------------------ components

/// One component of the telemetry report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Component {
    /// `green`, `yellow`, `red`, or `absent` (the area is not part of this build).
    pub status: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl Component {
    fn new(status: &str, details: Value) -> Component {
        Component {
            status: status.into(),
            details,
        }
    }

    /// A module turned off fleet-wide (`[modules] <name> = false`).
    fn off(module: &str) -> Component {
        Component::new(
            "absent",
            json!({"reason": format!("module {module} is turned off fleet-wide ([modules] {module} = false)")}),
        )
    }
}

/// `GET /api/v1/ops/telemetry`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TelemetryReport {
    /// Worst status of the present components: `green`, `yellow` or `red`.
    pub overall: String,
    pub components: std::collections::BTreeMap<String, Component>,
    pub generated_at: String,
    pub sample_interval_s: u64,
}

fn rank(status: &str) -> u8 {
    match status {
        "red" => 2,
        "yellow" => 1,
        _ => 0,
    }
}

/// Run a probe with the configured timeout; a timeout is a result, not a hang.
async fn probe<T>(
    timeout: Duration,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> (Result<T, String>, f64) {
    let start = Instant::now();
    let r = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    };
    (r, window::round2(start.elapsed().as_secs_f64() * 1000.0))
}

async fn database_component(state: &AppState) -> Component {
    let timeout = tel(state).probe_timeout();
    let store = &state.store;
    let (r, ms) = probe(timeout, async {
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(store.reader())
            .await?;
        Ok(one)
    })
    .await;
    let dialect = match store.dialect() {
        crate::store::Dialect::Sqlite => "sqlite",
        crate::store::Dialect::Postgres => "postgres",
    };
    let pool = store.reader();
    let mut details = json!({
        "dialect": dialect,
        "latency_ms": ms,
        "pool_size": pool.size(),
        "pool_idle": pool.num_idle(),
    });
    let status = match r {
        Ok(_) if ms > DB_YELLOW_MS => "yellow",
        Ok(_) => "green",
        Err(e) => {
            details["error"] = Value::String(e);
            "red"
        }
    };
    Component::new(status, details)
}

fn system_component(state: &AppState) -> Component {
    let Some(r) = tel(state).latest_system() else {
        return Component::new(
            "yellow",
            json!({"reason": "the first system sample has not been taken yet"}),
        );
    };
    let disk = r.disk_pct.unwrap_or(0.0);
    let status = if r.mem_pct >= MEM_RED || disk >= DISK_RED {
        "red"
    } else if r.cpu_pct >= CPU_YELLOW || r.mem_pct >= MEM_YELLOW || disk >= DISK_YELLOW {
        "yellow"
    } else {
        "green"
    };
    Component::new(status, serde_json::to_value(&r).unwrap_or(Value::Null))
}

fn api_component() -> Component {
    let s = window::stats(API_WINDOW_MS);
    let err = s.error_rate.unwrap_or(0.0);
    let status = if err >= ERR_RED {
        "red"
    } else if err >= ERR_YELLOW || s.p95_ms.unwrap_or(0.0) >= P95_YELLOW_MS {
        "yellow"
    } else {
        "green"
    };
    Component::new(status, serde_json::to_value(&s).unwrap_or(Value::Null))
}

/// Build the telemetry report now: the platform's own components (database, host, API)
/// and every area's probe, each under the probe timeout. Area figures are the tenant's
/// where the area is tenant-scoped; the rest is fleet-wide.
pub async fn report(state: &AppState, tenant: &str) -> TelemetryReport {
    let timeout = tel(state).probe_timeout();
    let probes = state.probes();
    let areas = probes.iter().map(|p| async move {
        let (r, ms) = probe(timeout, p.component(state, tenant)).await;
        let c = match r {
            Ok((light, mut details)) => {
                if let Some(m) = details.as_object_mut() {
                    m.insert("latency_ms".into(), json!(ms));
                }
                Component::new(light.as_str(), details)
            }
            Err(e) => Component::new("red", json!({"error": e, "latency_ms": ms})),
        };
        (p.name(), c)
    });
    let (database, areas) = tokio::join!(
        database_component(state),
        futures_util::future::join_all(areas)
    );
    let mut components = std::collections::BTreeMap::new();
    components.insert("database".to_string(), database);
    components.insert("system".to_string(), system_component(state));
    components.insert("api".to_string(), api_component());
    for (name, c) in areas {
        components.insert(name.to_string(), c);
    }
    // A module that is off fleet-wide is shown as such, not silently missing.
    for m in crate::area::module_names() {
        if !state.area_running(m) {
            components.insert(m.to_string(), Component::off(m));
        }
    }
    let worst = components
        .values()
        .map(|c| rank(&c.status))
        .max()
        .unwrap_or(0);
    TelemetryReport {
        overall: ["green", "yellow", "red"][worst as usize].to_string(),
        components,
        generated_at: rfc3339_ms(now_ms()),
        sample_interval_s: tel(state).interval_secs(),
    }
}

// ------------------------------------------------------------------ system health

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

fn to_probe(r: (Result<String, String>, f64), timeout: Duration) -> Probe {
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
    for m in crate::area::module_names() {
        if !state.area_running(m) {
            components.insert(
                m.to_string(),
                Probe {
                    status: "absent".into(),
                    latency_ms: None,
                    detail: format!("module {m} is turned off fleet-wide ([modules] {m} = false)"),
                },
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_probe_is_reported_as_timeout_not_awaited() {
        let t = Duration::from_millis(50);
        let started = Instant::now();
        let r = probe(t, async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok("never".to_string())
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        let p = to_probe(r, t);
        assert_eq!(p.status, "timeout");
        assert!(p.detail.contains("timed out after 50 ms"));
        let failed = to_probe((Err("boom".into()), 1.0), t);
        assert_eq!(failed.status, "failed");
        let degraded = to_probe((Ok("degraded: disk 91%".into()), 1.0), t);
        assert_eq!(
            (degraded.status.as_str(), degraded.detail.as_str()),
            ("degraded", "disk 91%")
        );
    }

    #[test]
    fn history_keeps_one_hour() {
        let t = Telemetry::new();
        let now = now_ms();
        for age_min in [90, 61, 59, 30, 1] {
            let at = now - age_min * 60_000;
            t.push(Sample {
                ts: rfc3339_ms(at),
                at_ms: at,
                cpu_pct: Some(1.0),
                mem_pct: None,
                disk_pct: None,
                queue_depth: None,
                api_p95_ms: None,
                error_rate: None,
            });
        }
        assert_eq!(t.history(60).len(), 3);
        assert_eq!(t.history(5).len(), 1);
    }
}
