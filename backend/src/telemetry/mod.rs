//! Telemetry: component status (`GET /api/v1/ops/telemetry`), a background sampler that
//! keeps an hour of samples (`/ops/telemetry/history`), and `GET /api/v1/system-health`
//! with a timeout on every probe.
//!
//! Every number comes from a real source: sysinfo for CPU/memory/disk, a rolling window
//! of finished requests for API latency and errors, the database and the audit log.
//! Areas that are not part of this build are reported as `absent`, never estimated.

pub mod api;
pub mod area;
mod health;
mod report;
mod sampler;
pub mod window;

pub use health::{system_health, Probe, SystemHealth};
use report::probe;
pub use report::{report, Component, TelemetryReport};
use sampler::{round1, sampler};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::util::now_ms;

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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::health::to_probe;
    use super::*;
    use crate::util::rfc3339_ms;

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
