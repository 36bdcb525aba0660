//! Shared application state handed to every handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::LastUsed;
use crate::config::Config;
use crate::store::Store;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An area's contribution to `GET /api/v1/status/summary`.
pub trait SummaryProvider: Send + Sync {
    fn area(&self) -> &'static str;
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>>;
}

pub struct Inner {
    pub cfg: Config,
    pub store: Store,
    pub started_at: Instant,
    pub limiter: DefaultKeyedRateLimiter<String>,
    pub last_used: Arc<LastUsed>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub summaries: std::sync::RwLock<Vec<Arc<dyn SummaryProvider>>>,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(cfg: Config, store: Store) -> AppState {
        let per_sec = std::num::NonZeroU32::new(cfg.rate_limit_per_sec.max(1)).expect("nonzero");
        let burst = std::num::NonZeroU32::new(cfg.rate_limit_burst.max(1)).expect("nonzero");
        let limiter = governor::RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst));
        AppState(Arc::new(Inner {
            cfg,
            store,
            started_at: Instant::now(),
            limiter,
            last_used: Arc::new(LastUsed::default()),
            metrics: crate::api::metrics::handle(),
            summaries: std::sync::RwLock::new(Vec::new()),
        }))
    }

    /// Areas register their status-summary counters at start.
    pub fn add_summary(&self, p: Arc<dyn SummaryProvider>) {
        self.summaries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }
}
