//! The `telemetry` module: component status, an hour of samples, system health.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, Telemetry};
use crate::app::{AppState, BoxFuture};
use crate::area::Area;
use crate::config::{ConfigError, ConfigMap};

crate::service_from_ref!(Arc<Telemetry>);

/// `[telemetry]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// Seconds between samples (1..=300).
    pub sample_interval_secs: u64,
    /// Longest any probe may take, in ms (100..=30000).
    pub probe_timeout_ms: u64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            sample_interval_secs: 10,
            probe_timeout_ms: 2000,
        }
    }
}

impl TelemetrySection {
    pub fn load(raw: &ConfigMap) -> Result<TelemetrySection, ConfigError> {
        let s: TelemetrySection = raw.section("telemetry")?;
        raw.check_range(
            "telemetry.sample_interval_secs",
            s.sample_interval_secs,
            1,
            300,
        )?;
        raw.check_range(
            "telemetry.probe_timeout_ms",
            s.probe_timeout_ms,
            100,
            30_000,
        )?;
        Ok(s)
    }
}

pub struct TelemetryArea;

impl Area for TelemetryArea {
    fn name(&self) -> &'static str {
        "telemetry"
    }
    fn about(&self) -> &'static str {
        "telemetry: component status, one hour of samples, system health probes"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["telemetry"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        TelemetrySection::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::telemetry))
            .routes(routes!(api::history))
            .routes(routes!(api::system_health))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let t = super::build(&state.cfg.raw)?;
            state.provide(Arc::new(t));
            Ok(())
        })
    }
    fn start<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            super::start(state);
            Ok(())
        })
    }
}
