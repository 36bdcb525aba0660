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
    /// (area, provider) pairs, in list order.
    pub summaries: std::sync::RwLock<Vec<(&'static str, Arc<dyn SummaryProvider>)>>,
    /// Flips to `true` when the server is shutting down; background loops watch it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    /// Background tasks (workers, scheduler, samplers) awaited on shutdown.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Services the areas built, by type (see [`crate::area::Services`]).
    services: crate::area::Services,
    /// Areas running in this process, in list order.
    areas: std::sync::RwLock<Vec<&'static dyn crate::area::Area>>,
    /// Telemetry probes the areas declared.
    probes: std::sync::RwLock<Vec<Arc<dyn crate::area::Probe>>>,
    /// Ops verb registry; areas declare their verbs (`Area::verbs`).
    pub ops: crate::ops::Registry,
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
            shutdown_tx,
            tasks: std::sync::Mutex::new(Vec::new()),
            services: Default::default(),
            areas: Default::default(),
            probes: Default::default(),
            ops: crate::ops::Registry::new(),
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

    /// Make an area's service available to other areas and to handlers (`State<T>`).
    pub fn provide<T: std::any::Any + Send + Sync + Clone>(&self, service: T) {
        self.services.insert(service);
    }

    /// A service, if its area runs in this process.
    pub fn service<T: std::any::Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.services.get::<T>()
    }

    /// A service another area needs: a clear error naming both when it is missing (the
    /// providing area is turned off, or was listed as a module and disabled).
    pub fn require<T: std::any::Any + Send + Sync + Clone>(
        &self,
        needed_by: &str,
        provider: &str,
    ) -> anyhow::Result<T> {
        self.service::<T>().ok_or_else(|| {
            anyhow::anyhow!(
                "area {needed_by} needs the {provider} area's service, which is not running \
                 (is `[modules] {provider} = false`?)"
            )
        })
    }

    /// The queue service (always on: it is a core area).
    pub fn queue(&self) -> Option<crate::queue::Queue> {
        self.service()
    }

    /// The job engine.
    pub fn jobs(&self) -> Option<crate::jobs::Jobs> {
        self.service()
    }

    /// Areas running in this process, in list order.
    pub fn areas(&self) -> Vec<&'static dyn crate::area::Area> {
        self.areas.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_areas(&self, areas: Vec<&'static dyn crate::area::Area>) {
        *self.areas.write().unwrap_or_else(|e| e.into_inner()) = areas;
    }

    /// Whether an area runs in this process (modules can be off fleet-wide).
    pub fn area_running(&self, name: &str) -> bool {
        self.areas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|a| a.name() == name)
    }

    /// Modules of this build that do not run here (`[modules] <name> = false`).
    pub fn modules_off(&self) -> Vec<&'static str> {
        crate::area::module_names()
            .into_iter()
            .filter(|m| !self.area_running(m))
            .collect()
    }

    pub(crate) fn add_probe(&self, p: Arc<dyn crate::area::Probe>) {
        self.probes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }

    /// Every area's telemetry probe, in list order.
    pub fn probes(&self) -> Vec<Arc<dyn crate::area::Probe>> {
        self.probes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Areas register their status-summary counters at start.
    pub fn add_summary(&self, area: &'static str, p: Arc<dyn SummaryProvider>) {
        self.summaries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((area, p));
    }
}
