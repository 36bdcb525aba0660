//! Starting and stopping the backend: open the store, bootstrap the admin key, bind,
//! serve until shutdown; in-flight requests finish before the process exits, within the
//! `[server]` grace period (see [`listener`] for the connection-level defences).

pub mod listener;

use std::net::SocketAddr;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower::Layer;

use crate::app::AppState;
use crate::auth::{self, Bootstrap};
use crate::config::Config;
use crate::store::Store;

/// `[server]`: connection-level limits and the shutdown grace period.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Time a client has to send a whole request head once its first byte arrived (100..=600000).
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with nothing in flight and no traffic is closed after this (1..=3600).
    pub idle_timeout_secs: u64,
    /// Open connections at most; at the cap the longest-idle one is evicted (1..=1000000).
    pub max_connections: u64,
    /// Shutdown closes whatever connections are left after this (1..=3600).
    pub shutdown_grace_secs: u64,
    /// Failed authentications (401) allowed per client address per minute (1..=1000000).
    pub auth_failures_per_minute: u64,
    /// Failed authentications an address may make in a burst before 429 (1..=1000000).
    pub auth_failures_burst: u64,
    /// One summary line of refused authentications per this many seconds (1..=86400).
    pub auth_failure_log_interval_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            header_read_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            max_connections: 512,
            shutdown_grace_secs: 20,
            auth_failures_per_minute: 600,
            auth_failures_burst: 100,
            auth_failure_log_interval_secs: 60,
        }
    }
}

impl ServerSection {
    pub fn load(raw: &crate::config::ConfigMap) -> Result<Self, crate::config::ConfigError> {
        let s: ServerSection = raw.section("server")?;
        raw.check_range(
            "server.header_read_timeout_ms",
            s.header_read_timeout_ms,
            100,
            600_000,
        )?;
        raw.check_range("server.idle_timeout_secs", s.idle_timeout_secs, 1, 3600)?;
        raw.check_range("server.max_connections", s.max_connections, 1, 1_000_000)?;
        raw.check_range("server.shutdown_grace_secs", s.shutdown_grace_secs, 1, 3600)?;
        raw.check_range(
            "server.auth_failures_per_minute",
            s.auth_failures_per_minute,
            1,
            1_000_000,
        )?;
        raw.check_range(
            "server.auth_failures_burst",
            s.auth_failures_burst,
            1,
            1_000_000,
        )?;
        raw.check_range(
            "server.auth_failure_log_interval_secs",
            s.auth_failure_log_interval_secs,
            1,
            86_400,
        )?;
        Ok(s)
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub bootstrap: Bootstrap,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, let in-flight requests finish, close the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let res = self.task.await;
        // HTTP is drained; now stop workers and the scheduler, then close the store.
        self.state
            .stop_background(std::time::Duration::from_secs(30))
            .await;
        self.state.store.close().await;
        res.context("server task panicked")?
            .context("server error")?;
        Ok(())
    }

    /// A sender that, given `true`, stops the HTTP listener (as [`Running::shutdown`] does).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Open the store (applying migrations), bootstrap, bind and serve in the background.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let store = Store::open(&cfg).await?;
    let bootstrap = auth::bootstrap(&store, &cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.addr))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(cfg, store);
    // Areas start their background work here (workers, scheduler, samplers).
    start_areas(&state).await?;
    let router = crate::api::router(state.clone());
    // The legacy-path rewrite must run before routing, so it wraps the router.
    let app = axum::middleware::from_fn(crate::api::middleware::legacy_alias).layer(router);
    let limits = ServerSection::load(&state.cfg.raw)?;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(listener::serve(listener, app, limits, rx));
    tracing::info!(target: "server", %addr, replica = %state.cfg.replica_id, "listening");
    Ok(Running {
        addr,
        state,
        bootstrap,
        shutdown: tx,
        task,
    })
}

/// Wait for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Start every area of [`crate::areas::ALL`] that runs in this process, in phases (see
/// [`crate::area`]): services, then declarations, then background work, then the schedule.
async fn start_areas(state: &AppState) -> anyhow::Result<()> {
    let areas = crate::area::enabled(&state.cfg.raw);
    state.set_areas(areas.clone());
    for a in &areas {
        a.init(state)
            .await
            .with_context(|| format!("starting area {}", a.name()))?;
    }
    let queue = state.require::<crate::queue::Queue>("server", "queue")?;
    let mut registry = crate::jobs::JobRegistry::new();
    let mut catalog = JobCatalog::default();
    for a in &areas {
        let before = registry.names().len();
        a.jobs(state, &mut registry)
            .with_context(|| format!("area {}: scheduled jobs", a.name()))?;
        for name in registry.names().into_iter().skip(before) {
            catalog.jobs.push((name, a.name()));
        }
        a.kinds(state, &queue)
            .with_context(|| format!("area {}: queue job kinds", a.name()))?;
    }
    state.provide(catalog);
    for a in &areas {
        for v in a.verbs(state) {
            state
                .ops
                .register(v)
                .with_context(|| format!("area {}: ops verbs", a.name()))?;
        }
        if let Some(s) = a.summary() {
            state.add_summary(a.name(), s);
        }
        for p in a.probes() {
            state.add_probe(p);
        }
    }
    for a in &areas {
        a.start(state)
            .await
            .with_context(|| format!("starting area {}", a.name()))?;
    }
    // The job engine starts last: every area's jobs and queue kinds are known by now.
    let jobs = crate::jobs::start(state, registry).await?;
    state.provide(jobs);
    Ok(())
}

/// Every scheduled job and the area that declared it (for `run_job`'s arguments and the
/// marketplace's `toggle_module` plan).
#[derive(Clone, Default, Debug)]
pub struct JobCatalog {
    pub jobs: Vec<(String, &'static str)>,
}

impl JobCatalog {
    pub fn names(&self) -> Vec<String> {
        self.jobs.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn of_area(&self, area: &str) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|(_, a)| *a == area)
            .map(|(n, _)| n.clone())
            .collect()
    }
}
