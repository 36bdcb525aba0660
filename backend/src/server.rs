//! Starting and stopping the backend: open the store, bootstrap the admin key, bind,
//! serve until shutdown; in-flight requests finish before the process exits.

use std::net::SocketAddr;

use anyhow::Context;
use axum::ServiceExt;
use tokio::sync::watch;
use tower::Layer;

use crate::app::AppState;
use crate::auth::{self, Bootstrap};
use crate::config::Config;
use crate::store::Store;

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
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
    });
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
