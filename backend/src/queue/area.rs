//! The `queue` area: the durable job queue, its workers, routes, verbs and probe.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, kinds, Queue, QueueConfig};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Light, Probe};
use crate::config::{ConfigError, ConfigMap};

crate::service_from_ref!(Queue);

/// `[queue]`: every key the queue reads, with its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSection {
    pub concurrency: u64,
    pub batch_size: u64,
    pub lease_s: u64,
    pub poll_interval_ms: u64,
    pub reclaim_interval_s: u64,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub max_attempts: u64,
    pub job_timeout_s: u64,
    pub tenant_max_share_pct: u64,
    pub max_sleep_ms: u64,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            concurrency: 4,
            batch_size: 256,
            lease_s: 20,
            poll_interval_ms: 500,
            reclaim_interval_s: 5,
            backoff_base_ms: 2000,
            backoff_cap_ms: 300_000,
            max_attempts: 5,
            job_timeout_s: 900,
            tenant_max_share_pct: 75,
            max_sleep_ms: 60_000,
        }
    }
}

impl QueueSection {
    /// The section, range-checked, as the queue's settings.
    pub fn load(raw: &ConfigMap) -> Result<QueueConfig, ConfigError> {
        let s: QueueSection = raw.section("queue")?;
        let range = |key: &str, v, lo, hi| raw.check_range(&format!("queue.{key}"), v, lo, hi);
        Ok(QueueConfig {
            concurrency: range("concurrency", s.concurrency, 1, 1024)? as usize,
            batch_size: range("batch_size", s.batch_size, 1, 1000)? as usize,
            lease_ms: (range("lease_s", s.lease_s, 1, 3600)? * 1000) as i64,
            poll_interval_ms: range("poll_interval_ms", s.poll_interval_ms, 10, 60_000)?,
            reclaim_interval_ms: range("reclaim_interval_s", s.reclaim_interval_s, 1, 86_400)?
                * 1000,
            backoff_base_ms: range("backoff_base_ms", s.backoff_base_ms, 1, 3_600_000)? as i64,
            backoff_cap_ms: range("backoff_cap_ms", s.backoff_cap_ms, 1, 86_400_000)? as i64,
            default_max_attempts: range("max_attempts", s.max_attempts, 1, 100)? as i64,
            job_timeout_ms: range("job_timeout_s", s.job_timeout_s, 1, 86_400)? * 1000,
            tenant_max_share_pct: range("tenant_max_share_pct", s.tenant_max_share_pct, 1, 100)?,
            max_sleep_ms: range("max_sleep_ms", s.max_sleep_ms, 0, kinds::MAX_SLEEP_MS)?,
        })
    }
}

pub struct QueueArea;

impl Area for QueueArea {
    fn name(&self) -> &'static str {
        "queue"
    }
    fn about(&self) -> &'static str {
        "durable job queue: leases, retries with backoff, dead-letter, fleet-wide pause"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["queue_jobs", "queue_control", "queue_workers"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["queue"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        QueueSection::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::enqueue))
            .routes(routes!(api::enqueue_batch))
            .routes(routes!(api::list_jobs))
            .routes(routes!(api::get_job))
            .routes(routes!(api::retry_job))
            .routes(routes!(api::purge_dlq))
            .routes(routes!(api::health))
            .routes(routes!(api::pause))
            .routes(routes!(api::resume))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let cfg = QueueSection::load(&state.cfg.raw)?;
            let q = Queue::new(
                state.store.clone(),
                cfg,
                &state.cfg.replica_id,
                state.shutdown.clone(),
            );
            state.provide(q);
            Ok(())
        })
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        use crate::ops::verbs::queue::{PurgeDlq, RetryJob, SetPaused};
        vec![
            Arc::new(SetPaused::pause()),
            Arc::new(SetPaused::resume()),
            Arc::new(RetryJob::new()),
            Arc::new(PurgeDlq::new()),
        ]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(super::Summary))
    }
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![Arc::new(QueueProbe)]
    }
    fn start<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let q = state.require::<Queue>("queue", "queue")?;
            super::start(state, q).await
        })
    }
}

/// Lag beyond which the queue is reported yellow.
const QUEUE_LAG_YELLOW_MS: i64 = 60_000;

struct QueueProbe;

impl Probe for QueueProbe {
    fn name(&self) -> &'static str {
        "queue"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>> {
        Box::pin(async move {
            let q = state.require::<Queue>("telemetry", "queue")?;
            let h = q.health(tenant).await?;
            let pool_ok = q.pool_healthy().await;
            let ready = h.depth.queued + h.depth.failed;
            let light = if !pool_ok || (h.workers == 0 && ready > 0 && !h.paused) {
                Light::Red
            } else if h.paused || h.lag_ms >= QUEUE_LAG_YELLOW_MS || h.depth.dead > 0 {
                Light::Yellow
            } else {
                Light::Green
            };
            let mut details = serde_json::to_value(&h)?;
            details["tenant"] = Value::String(tenant.to_string());
            details["local_pool_healthy"] = Value::Bool(pool_ok);
            Ok((light, details))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let q = state.require::<Queue>("telemetry", "queue")?;
            if !q.pool_healthy().await {
                anyhow::bail!("this replica's worker pool is stopped or stalled");
            }
            let workers = q.live_workers().await?;
            if q.is_paused_db().await? {
                // A deliberate operator action, not a fault: telemetry shows it yellow.
                return Ok(format!(
                    "paused by an operator ({workers} live worker slots)"
                ));
            }
            Ok(format!("worker pool running ({workers} live worker slots)"))
        })
    }
}

/// Build and start the queue alone on `state` (tests and benchmarks that need a queue
/// without the rest of the server).
pub async fn start_standalone(state: &AppState) -> anyhow::Result<Queue> {
    QueueArea.init(state).await?;
    let q = state.require::<Queue>("test", "queue")?;
    super::start(state, q.clone()).await?;
    Ok(q)
}
