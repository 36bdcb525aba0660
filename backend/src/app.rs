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
    /// Flips to `true` when the server is shutting down; background loops watch it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The durable queue service, set by `server::start_areas`.
    pub queue: std::sync::OnceLock<crate::queue::Queue>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    /// Background tasks (workers, scheduler, samplers) awaited on shutdown.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The scheduler (job registry, runs, leader election); set in `server::start_areas`.
    pub jobs: std::sync::OnceLock<crate::jobs::Jobs>,
    /// Alert dispatcher and rules; set in `server::start_areas`.
    pub alerts: std::sync::OnceLock<crate::alerts::Alerts>,
    /// Ops verb registry; areas register their verbs at start.
    pub ops: crate::ops::Registry,
    /// Telemetry samples and latest host reading.
    pub telemetry: crate::telemetry::Telemetry,
    /// Shares status-summary computations between concurrent requests.
    pub summary_share: crate::api::status::SummaryShare,
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
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        AppState(Arc::new(Inner {
            cfg,
            store,
            started_at: Instant::now(),
            limiter,
            last_used: Arc::new(LastUsed::default()),
            metrics: crate::api::metrics::handle(),
            summaries: std::sync::RwLock::new(Vec::new()),
            shutdown,
            queue: std::sync::OnceLock::new(),
            shutdown_tx,
            tasks: std::sync::Mutex::new(Vec::new()),
            jobs: std::sync::OnceLock::new(),
            alerts: std::sync::OnceLock::new(),
            ops: crate::ops::Registry::new(),
            telemetry: crate::telemetry::Telemetry::new(),
            summary_share: Default::default(),
        }))
    }

    /// Run a background task for the life of the server. It should return soon after
    /// `state.shutdown` flips to true; shutdown waits for it.
    pub fn spawn_background<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(fut);
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// Signal background tasks to stop and wait for them (bounded by `timeout`).
    pub async fn stop_background(&self, timeout: std::time::Duration) {
        let _ = self.shutdown_tx.send(true);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!(target: "server", "background tasks did not stop within {timeout:?}");
        }
    }

    /// Areas register their status-summary counters at start.
    pub fn add_summary(&self, p: Arc<dyn SummaryProvider>) {
        self.summaries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }
}
