//! Health, readiness, metrics and the status summary.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::model::{Health, Role};

/// The status area: the status summary, health, readiness and metrics, and the HTTP
/// layer's own table (idempotency keys).
pub struct StatusArea;

impl crate::area::Area for StatusArea {
    fn name(&self) -> &'static str {
        "status"
    }
    fn about(&self) -> &'static str {
        "status summary, health, readiness, metrics and the OpenAPI document"
    }
    fn source_dirs(&self) -> &'static [&'static str] {
        &[
            "api/status.rs",
            "api/middleware.rs",
            "api/mod.rs",
            "api/extract.rs",
            "api/metrics.rs",
            "api/auth_failures.rs",
        ]
    }
    /// `[server]`: connection limits, shutdown grace, the 401 budget (see `server.rs`).
    fn extra_config_sections(&self) -> &'static [&'static str] {
        &["server"]
    }
    fn check_config(
        &self,
        raw: &crate::config::ConfigMap,
    ) -> Result<(), crate::config::ConfigError> {
        crate::server::ServerSection::load(raw).map(|_| ())
    }
    fn init<'a>(&'a self, state: &'a AppState) -> crate::app::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let s = crate::server::ServerSection::load(&state.cfg.raw)?;
            state.provide(std::sync::Arc::new(
                crate::api::auth_failures::AuthFailures::new(&s),
            ));
            Ok(())
        })
    }
    fn start<'a>(&'a self, state: &'a AppState) -> crate::app::BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let guard = state.require::<std::sync::Arc<crate::api::auth_failures::AuthFailures>>(
                "status", "status",
            )?;
            state.spawn_background(guard.run(state.shutdown.clone()));
            Ok(())
        })
    }
    fn summary(&self) -> Option<std::sync::Arc<dyn crate::app::SummaryProvider>> {
        Some(std::sync::Arc::new(StatusSummary))
    }
    fn tables(&self) -> &'static [&'static str] {
        &["idempotency_keys"]
    }
    fn routes(&self) -> utoipa_axum::router::OpenApiRouter<AppState> {
        utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(summary))
    }
}

/// Status-summary section `status`: this replica's connections and refused logins.
struct StatusSummary;

impl crate::app::SummaryProvider for StatusSummary {
    fn area(&self) -> &'static str {
        "status"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> crate::app::BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let c = crate::server::listener::stats();
            let auth = state.service::<std::sync::Arc<crate::api::auth_failures::AuthFailures>>();
            Ok(json!({
                "connections_open": c.open.load(Relaxed),
                "connections_accepted": c.accepted.load(Relaxed),
                "connections_header_timeout": c.header_timeouts.load(Relaxed),
                "connections_idle_timeout": c.idle_timeouts.load(Relaxed),
                "connections_evicted": c.evicted.load(Relaxed),
                "connections_rejected": c.rejected.load(Relaxed),
                "connections_forced_at_shutdown": c.forced_at_shutdown.load(Relaxed),
                "auth_refused": auth.as_ref().map_or(0, |a| a.refused.load(Relaxed)),
                "auth_throttled": auth.as_ref().map_or(0, |a| a.throttled.load(Relaxed)),
            }))
        })
    }
}

/// The process is up; lists the areas it runs.
#[utoipa::path(get, path = "/healthz", tag = "status", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let areas: Vec<&str> = state.areas().iter().map(|a| a.name()).collect();
    Json(Health {
        status: "ok".into(),
        detail: Some(format!("areas: {}", areas.join(", "))),
    })
}

/// The database answers, every migration is applied, and every area probe that gates
/// readiness (e.g. this replica's queue worker pool) passes.
#[utoipa::path(get, path = "/readyz", tag = "status",
    responses((status = 200, body = Health), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = state.store.ready().await {
        return crate::error::problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {e:#}"),
        );
    }
    let timeout = crate::telemetry::tel(&state).probe_timeout();
    let gating: Vec<_> = state
        .probes()
        .into_iter()
        .filter(|p| p.gates_readiness())
        .collect();
    let checks = gating.iter().map(|p| {
        let state = &state;
        async move {
            let r = tokio::time::timeout(timeout, p.check(state)).await;
            (p.name(), r)
        }
    });
    let mut failed = Vec::new();
    // Few probes gate readiness (the queue's pool); each is bounded, so in turn is fine.
    for check in checks {
        let (name, r) = check.await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failed.push(format!("{name}: {e:#}")),
            Err(_) => failed.push(format!(
                "{name}: timed out after {} ms",
                timeout.as_millis()
            )),
        }
    }
    if !failed.is_empty() {
        return crate::error::problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", failed.join("; ")),
        );
    }
    (
        StatusCode::OK,
        Json(Health {
            status: "ready".into(),
            detail: None,
        }),
    )
        .into_response()
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "status", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Counters per area for the caller's tenant; each area adds its own section.
#[utoipa::path(get, path = "/api/v1/status/summary", tag = "status",
    responses((status = 200, body = Object)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn summary(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller
        .require(&state, Role::Readonly, "status.read")
        .await?;
    let tenant = caller.tenant().to_string();
    let v = state
        .summary_share
        .get(&tenant, || compute_summary(state.clone(), tenant.clone()))
        .await?;
    Ok(Json(v))
}

/// Shares summary computations between concurrent requests of one tenant without ever
/// answering with data older than the request: a request reuses only a computation that
/// *started after it arrived*; otherwise it waits its turn and computes. Under load at
/// most one computation per tenant runs at a time and each serves everyone who arrived
/// before it started — so dashboards polling from many consoles cost a few computations
/// per second however many requests there are, and a client still reads its own writes.
#[derive(Default)]
pub struct SummaryShare {
    ticket: std::sync::atomic::AtomicU64,
    tenants: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<SummarySlot>>>,
}

#[derive(Default)]
struct SummarySlot {
    /// (ticket when the computation started, its result).
    last: tokio::sync::Mutex<Option<(u64, Value)>>,
}

impl SummaryShare {
    pub async fn get<F, Fut>(&self, tenant: &str, compute: F) -> ApiResult<Value>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ApiResult<Value>>,
    {
        use std::sync::atomic::Ordering::SeqCst;
        let arrived = self.ticket.fetch_add(1, SeqCst);
        let slot = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.to_string())
            .or_default()
            .clone();
        let mut last = slot.last.lock().await;
        if let Some((started, v)) = &*last {
            if *started > arrived {
                return Ok(v.clone());
            }
        }
        let started = self.ticket.fetch_add(1, SeqCst);
        let v = compute().await?;
        *last = Some((started, v.clone()));
        Ok(v)
    }
}

/// Every section at once: the area providers run concurrently, so the summary takes as
/// long as its slowest area, not the sum of them.
async fn compute_summary(state: AppState, tenant: String) -> ApiResult<Value> {
    let providers = state
        .summaries
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let disabled = match state.service::<crate::marketplace::Marketplace>() {
        Some(m) => m.disabled_for(&tenant).await?,
        None => Vec::new(),
    };
    let mut areas = tokio::task::JoinSet::new();
    for (i, (area, p)) in providers.into_iter().enumerate() {
        if disabled.iter().any(|d| d == area) {
            continue;
        }
        let (state, tenant) = (state.clone(), tenant.clone());
        areas.spawn(async move {
            let v = match p.summary(&state, &tenant).await {
                Ok(v) => v,
                Err(e) => json!({ "error": format!("{e:#}") }),
            };
            (i, p.area(), v)
        });
    }
    let store = &state.store;
    let mut out = Map::new();
    out.insert(
        "server".into(),
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started_at.elapsed().as_secs(),
            "replica_id": state.cfg.replica_id,
            "database": match store.dialect() { crate::store::Dialect::Sqlite => "sqlite", crate::store::Dialect::Postgres => "postgres" },
            "tenant": tenant,
            "areas": state.areas().iter().map(|a| a.name()).collect::<Vec<_>>(),
        }),
    );
    let mut sections = Vec::new();
    while let Some(r) = areas.join_next().await {
        match r {
            Ok(s) => sections.push(s),
            Err(e) => tracing::error!(target: "server", error = %e, "a summary provider failed"),
        }
    }
    // List order: stable JSON for clients that diff it.
    sections.sort_by_key(|(i, _, _)| *i);
    for (_, area, v) in sections {
        out.insert(area.into(), v);
    }
    // A module that is off says so in its own section rather than vanishing.
    for m in state.modules_off() {
        out.insert(m.into(), json!({"disabled": true, "scope": "fleet"}));
    }
    for m in &disabled {
        if state.area_running(m) {
            out.insert(m.clone(), json!({"disabled": true, "scope": "tenant"}));
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::SummaryShare;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::Semaphore;

    /// A summary computation: reads the "database" at the start, then waits for the test
    /// to open the gate, so the test decides what overlaps what (no sleeps).
    async fn gated_read(
        db: Arc<AtomicI64>,
        runs: Arc<AtomicI64>,
        gate: Arc<Semaphore>,
    ) -> crate::error::ApiResult<Value> {
        // Read first, then count: a test that sees the count knows the value is taken
        // (counting first let a write land between the two, a flake seen in CI load).
        let v = db.load(Ordering::SeqCst);
        runs.fetch_add(1, Ordering::SeqCst);
        gate.acquire().await.unwrap().forget();
        Ok(json!(v))
    }

    /// Wait (bounded) until `cond` holds; the futures under test run on other threads.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_never_gets_a_result_that_started_before_it_arrived() {
        let share = Arc::new(SummaryShare::default());
        let db = Arc::new(AtomicI64::new(1));
        let runs = Arc::new(AtomicI64::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let task = |share: Arc<SummaryShare>| {
            let (db, runs, gate) = (db.clone(), runs.clone(), gate.clone());
            tokio::spawn(
                async move { share.get("t", || gated_read(db, runs, gate)).await.unwrap() },
            )
        };
        let first = task(share.clone());
        // The first computation has read the old value and is in flight.
        until("first computation started", || {
            runs.load(Ordering::SeqCst) == 1
        })
        .await;
        // A write lands; a request arriving after it must see it, not share the
        // computation that read the old value.
        db.store(2, Ordering::SeqCst);
        let second = task(share.clone());
        // Tickets: first arrived (0) and started (1); the second has arrived (2).
        until("second request arrived", || {
            share.ticket.load(Ordering::SeqCst) == 3
        })
        .await;
        gate.add_permits(2);
        assert_eq!(first.await.unwrap(), json!(1));
        assert_eq!(second.await.unwrap(), json!(2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_computations_per_tenant() {
        let share = Arc::new(SummaryShare::default());
        let db = Arc::new(AtomicI64::new(7));
        let runs = Arc::new(AtomicI64::new(0));
        let gate = Arc::new(Semaphore::new(0));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (share, db, runs, gate) = (share.clone(), db.clone(), runs.clone(), gate.clone());
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            tasks.push(tokio::spawn(async move {
                share
                    .get(tenant, || gated_read(db, runs, gate))
                    .await
                    .unwrap()
            }));
        }
        // Hold the first computation of each tenant until all 40 requests have arrived:
        // 40 arrival tickets plus one start ticket per running computation.
        until("all requests arrived", || {
            runs.load(Ordering::SeqCst) == 2 && share.ticket.load(Ordering::SeqCst) == 42
        })
        .await;
        gate.add_permits(1000);
        for t in tasks {
            assert_eq!(t.await.unwrap(), json!(7));
        }
        // Per tenant: the first computes; those that arrived while it ran share the next
        // one, which starts after all of them arrived. One more per tenant at most.
        let n = runs.load(Ordering::SeqCst);
        assert!((2..=4).contains(&n), "{n} computations for 40 requests");
        // Errors are not shared or kept: the next request computes again.
        let err = share
            .get("a", || async {
                Err::<Value, _>(crate::error::ApiError::Unavailable("down".into()))
            })
            .await;
        assert!(err.is_err());
        let after = share
            .get("a", || gated_read(db.clone(), runs.clone(), gate.clone()))
            .await
            .unwrap();
        assert_eq!(after, json!(7));
    }
}
