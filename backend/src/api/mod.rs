//! The HTTP API: router, middleware stack and the generated OpenAPI document.
//!
//! Routes come from the areas ([`crate::areas::ALL`], `Area::routes`); every route goes
//! through utoipa-axum's `routes!`, so the OpenAPI document is generated from the handlers
//! and cannot miss one. A module's routes are wrapped in [`crate::marketplace::gate`].

pub mod audit;
pub mod auth_failures;
pub mod contract;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod middleware;
pub mod status;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "EchoPilot OS API", description = "Operations platform API. Authenticate with the X-Dash-Key header; select a tenant with X-Tenant-Id. Errors are RFC 9457 problem+json."),
    modifiers(&SecurityAddon, &AreaTags)
)]
struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "dash_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Dash-Key"))),
        );
    }
}

/// One OpenAPI tag per area, described by the area.
struct AreaTags;

impl Modify for AreaTags {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let tags = crate::areas::ALL
            .iter()
            .map(|a| {
                let mut t = utoipa::openapi::tag::Tag::new(a.name());
                let kind = if a.is_module() { "module" } else { "core" };
                t.description = Some(format!("{} ({kind})", a.about()));
                t
            })
            .collect();
        openapi.tags = Some(tags);
    }
}

/// Routes that need an API key: every area's, a module's behind its gate (`public`:
/// the areas' routes served without a key instead).
fn area_routes(state: Option<&AppState>, public: bool) -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new();
    for a in crate::areas::ALL {
        let routes = if public {
            a.public_routes()
        } else {
            a.routes()
        };
        // A layer on a router without routes panics in utoipa-axum.
        let has_routes = !routes.get_openapi().paths.paths.is_empty();
        let routes = match (state, a.is_module() && has_routes) {
            (Some(st), true) => routes.route_layer(axum::middleware::from_fn_with_state(
                (st.clone(), a.name()),
                crate::marketplace::gate,
            )),
            _ => routes,
        };
        router = router.merge(routes);
    }
    router
}

/// The OpenAPI document of every route, with the contract applied ([`contract::finish`]).
pub fn openapi() -> serde_json::Value {
    build(None).1
}

/// Routes that need no key: health, readiness, metrics.
#[cfg(test)]
pub(crate) fn public_routes() -> OpenApiRouter<AppState> {
    public_routes_for(None)
}

/// The public routes, the areas' included (behind their module gate when serving).
fn public_routes_for(state: Option<&AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(status::metrics))
        .merge(area_routes(state, true))
}

/// The full application: public routes, authenticated routes, middleware.
pub fn router(state: AppState) -> Router {
    build(Some(state)).0
}

fn build(state: Option<AppState>) -> (Router, serde_json::Value) {
    let (protected, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(area_routes(state.as_ref(), false))
        .split_for_parts();
    let (public, public_doc) = public_routes_for(state.as_ref()).split_for_parts();
    doc.merge(public_doc);
    doc.paths.paths.insert(
        "/api/v1/openapi.json".into(),
        utoipa::openapi::path::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This OpenAPI document"))
                .tag("status")
                .response("200", utoipa::openapi::Response::new("OpenAPI 3.1 JSON")),
        ),
    );
    let doc =
        contract::finish(serde_json::to_value(&doc).expect("the OpenAPI document serializes"));
    let Some(state) = state else {
        return (Router::new(), doc);
    };
    // Every protected operation declares x-min-role (a unit test holds every area to it);
    // an operation without one gets no idempotency replay rather than a guessed role.
    let access = std::sync::Arc::new(contract::access_table(&doc).unwrap_or_else(|e| {
        tracing::error!(target: "server", error = %e, "OpenAPI contract incomplete");
        Default::default()
    }));
    let spec = doc.clone();
    let protected = protected
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), access),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    let timeout = Duration::from_secs(state.cfg.request_timeout_secs);
    let app = Router::new()
        .merge(public)
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(spec) }),
        )
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.cfg.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn(middleware::cors))
        .layer(axum::middleware::from_fn(middleware::reject_unstorable_url))
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state);
    (app, doc)
}

async fn not_found() -> impl IntoResponse {
    ApiError::NotFound("no such route; see /api/v1/openapi.json".into())
}

async fn method_not_allowed() -> impl IntoResponse {
    crate::error::problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route".into(),
    )
}
