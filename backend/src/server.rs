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

/// Start each area's background work and register its status-summary provider.
async fn start_areas(state: &AppState) -> anyhow::Result<()> {
    let queue = crate::queue::start(state).await?;
    let _ = state.queue.set(queue);
    crate::selfheal::start(state);
    // Scheduled jobs: every area registers its jobs here; the scheduler starts after.
    let mut registry = crate::jobs::JobRegistry::new();
    crate::jobs::builtin::register(&mut registry, &state.cfg)?;
    registry
        .register(
            "self_heal",
            "0 10 * * * *",
            crate::jobs::handler(|ctx| async move {
                crate::selfheal::run_safe(&ctx.state, "schedule").await
            }),
        )
        .timeout(std::time::Duration::from_secs(600))
        .describe("hourly: runs the safe self-heal remediations");
    // Alerts: the service must exist before the scheduler starts (rules run as a job).
    let alerts = crate::alerts::Alerts::from_config(&state.cfg)?;
    alerts.set_selfheal_requeue_source(std::sync::Arc::new(|store| {
        Box::pin(async move { Ok(crate::selfheal::requeue_count_24h(&store).await) })
    }));
    if let Some(q) = state.queue.get() {
        alerts.attach_queue(q.clone());
        crate::alerts::deliver::register(q, state);
    }
    let _ = state.alerts.set(alerts);
    crate::alerts::register(&mut registry);
    state.add_summary(std::sync::Arc::new(crate::alerts::AlertsSummary));
    // Other areas register their scheduled jobs above this line, before the scheduler starts.
    let jobs = crate::jobs::start(state, registry).await?;
    let _ = state.jobs.set(jobs);
    state.add_summary(std::sync::Arc::new(crate::jobs::JobsSummary));
    crate::telemetry::start(state)?;
    crate::ops::start(state)?;
    Ok(())
}
