//! The `analytics` module: product analytics. Events come in through
//! `POST /api/v1/analytics/events` (an `integration` key or a publishable `ingest` key,
//! which can do nothing else) or the browser client `GET /js/telemetry.js`; usage
//! (DAU/WAU/MAU, top events and features, funnels) is answered from rollup tables that the
//! roller keeps current from dirty-day marks and the daily `analytics_rollup` job
//! recomputes idempotently. See `docs/ANALYTICS.md`.
//!
//! Files: [`ingest`] (checks, batched inserts), [`rollup`] (per-day recompute, the roller,
//! the job, retention), [`usage`] (the answers), [`funnel`] (definitions and their
//! arithmetic), [`api`] (routes).

pub mod api;
pub mod funnel;
pub mod gdpr;
pub mod ingest;
pub mod rollup;
pub mod usage;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::Area;
use crate::config::{ConfigError, ConfigMap};
use crate::store::Store;

pub const DAY_MS: i64 = 86_400_000;
pub const EVENTS_TOTAL: &str = "echopilot_analytics_events_total";
pub const ROLLUP_LAG: &str = "echopilot_analytics_rollup_lag_seconds";
pub const ROLLUP_DAYS_TOTAL: &str = "echopilot_analytics_rollup_days_total";

/// Days since the Unix epoch (UTC) of a time in ms.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// `[analytics.funnels.<name>]`: a funnel every tenant gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunnelSection {
    pub steps: Vec<String>,
    pub window_secs: u64,
}

/// `[analytics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsSection {
    /// Raw events and rollup rows older than this are pruned by `analytics_rollup`
    /// (1..=3650); events older than this are refused at ingestion.
    pub retention_days: u64,
    /// How often the roller recomputes days that received events (1..=3600 s).
    pub rollup_interval_secs: u64,
    /// Days before today the daily job recomputes even when not marked (0..=365).
    pub rollup_lookback_days: u64,
    /// Funnels every tenant gets (a tenant's own funnel of the same name wins).
    pub funnels: BTreeMap<String, FunnelSection>,
}

impl Default for AnalyticsSection {
    fn default() -> Self {
        AnalyticsSection {
            retention_days: 90,
            rollup_interval_secs: 5,
            rollup_lookback_days: 2,
            funnels: BTreeMap::new(),
        }
    }
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    pub retention_days: i64,
    pub rollup_interval_secs: u64,
    pub rollup_lookback_days: i64,
    pub funnels: Vec<funnel::FunnelDef>,
}

impl AnalyticsConfig {
    pub fn from_config_map(raw: &ConfigMap) -> Result<AnalyticsConfig, ConfigError> {
        let s: AnalyticsSection = raw.section("analytics")?;
        let range = |key: &str, v, lo, hi| raw.check_range(&format!("analytics.{key}"), v, lo, hi);
        let mut funnels = Vec::new();
        for (name, f) in &s.funnels {
            let key = format!("analytics.funnels.{name}");
            let def = funnel::FunnelDef::new(
                name,
                f.steps.clone(),
                i64::try_from(f.window_secs).unwrap_or(i64::MAX),
                "config",
            )
            .map_err(|e| raw.error(&key, e.to_string()))?;
            funnels.push(def);
        }
        if funnels.len() > funnel::MAX_FUNNELS {
            return Err(raw.error(
                "analytics.funnels",
                format!("at most {} funnels", funnel::MAX_FUNNELS),
            ));
        }
        Ok(AnalyticsConfig {
            retention_days: range("retention_days", s.retention_days, 1, 3650)? as i64,
            rollup_interval_secs: range("rollup_interval_secs", s.rollup_interval_secs, 1, 3600)?,
            rollup_lookback_days: range("rollup_lookback_days", s.rollup_lookback_days, 0, 365)?
                as i64,
            funnels,
        })
    }
}

/// Process-lifetime counters (the `/metrics` counters carry the same numbers).
#[derive(Default)]
pub struct Counters {
    pub created: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
}

impl Counters {
    fn record(&self, r: &ingest::IngestResponse) {
        for (result, n, c) in [
            ("created", r.created, &self.created),
            ("duplicate", r.duplicates, &self.duplicates),
            ("rejected", r.rejected, &self.rejected),
        ] {
            if n > 0 {
                c.fetch_add(n as u64, Ordering::Relaxed);
                metrics::counter!(EVENTS_TOTAL, "result" => result).increment(n as u64);
            }
        }
    }
}

/// The analytics service (`State<Analytics>`).
#[derive(Clone)]
pub struct Analytics {
    pub store: Store,
    pub cfg: Arc<AnalyticsConfig>,
    pub counters: Arc<Counters>,
    /// Serialises recomputes within this process (the roller and a job run).
    roll_lock: Arc<tokio::sync::Mutex<()>>,
    /// Group commit of ingestion (see [`ingest::GroupWriter`]).
    writer: ingest::GroupWriter,
    /// Usage answers with the stamp of the rollups they came from.
    usage_cache: Arc<std::sync::Mutex<usage::UsageCache>>,
}

crate::service_from_ref!(Analytics);

impl Analytics {
    pub fn new(store: Store, cfg: AnalyticsConfig) -> Analytics {
        Analytics {
            writer: ingest::GroupWriter::start(store.clone()),
            store,
            cfg: Arc::new(cfg),
            counters: Arc::default(),
            roll_lock: Arc::default(),
            usage_cache: Arc::default(),
        }
    }
}

pub struct AnalyticsArea;

impl Area for AnalyticsArea {
    fn name(&self) -> &'static str {
        "analytics"
    }
    fn about(&self) -> &'static str {
        "analytics: product events, DAU/WAU/MAU, feature usage and funnels from rollups"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "analytics_events",
            "analytics_dirty_days",
            "analytics_daily_users",
            "analytics_daily_counts",
            "analytics_daily_active",
            "analytics_funnels",
            "analytics_funnel_entries",
        ]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["analytics"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        AnalyticsConfig::from_config_map(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::ingest))
            .routes(routes!(api::usage))
            .routes(routes!(api::list_funnels, api::define_funnel))
            .routes(routes!(api::funnel))
            .routes(routes!(api::recompute))
    }
    fn public_routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(api::telemetry_js))
    }
    fn cors_paths(&self) -> &'static [&'static str] {
        &[crate::auth::INGEST_ROUTE, api::TELEMETRY_JS]
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let cfg = AnalyticsConfig::from_config_map(&state.cfg.raw)?;
            let a = Analytics::new(state.store.clone(), cfg);
            a.sync_config_funnels().await?;
            state.provide(a);
            Ok(())
        })
    }
    fn jobs(&self, _state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        rollup::register(reg);
        Ok(())
    }
    fn gdpr(&self) -> Option<Arc<dyn crate::area::Gdpr>> {
        Some(Arc::new(gdpr::AnalyticsGdpr))
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(AnalyticsSummary))
    }
    fn start<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let a = state.require::<Analytics>("analytics", "analytics")?;
            rollup::spawn_roller(state, a);
            Ok(())
        })
    }
}

/// Status-summary section `analytics`.
struct AnalyticsSummary;

impl SummaryProvider for AnalyticsSummary {
    fn area(&self) -> &'static str {
        "analytics"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let a = state.require::<Analytics>("status", "analytics")?;
            let today = day_of(crate::util::now_ms());
            let s = a.tenant_status(tenant, today).await?;
            let c = &a.counters;
            Ok(json!({
                "events_rolled_up": s.events_rolled_up,
                "events_today": s.events_today,
                "dau_today": s.dau_today,
                "pending_days": s.pending_days,
                "rollup_lag_secs": s.lag_secs,
                "funnels": a.funnels(tenant).await?.len(),
                "retention_days": a.cfg.retention_days,
                "process": {
                    "events_created": c.created.load(Ordering::Relaxed),
                    "events_duplicate": c.duplicates.load(Ordering::Relaxed),
                    "events_rejected": c.rejected.load(Ordering::Relaxed),
                },
            }))
        })
    }
}
