//! The `keys` area: API keys, roles and tenants (`/api/v1/keys`, `/api/v1/tenants`).

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::keys;
use crate::app::AppState;
use crate::app::{BoxFuture, SummaryProvider};
use crate::area::Area;

pub struct KeysArea;

impl Area for KeysArea {
    fn name(&self) -> &'static str {
        "keys"
    }
    fn about(&self) -> &'static str {
        "API keys (hashed at rest), roles and tenants"
    }
    fn source_dirs(&self) -> &'static [&'static str] {
        &["auth", "api/keys.rs"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["tenants", "api_keys"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["security"]
    }
    fn summary(&self) -> Option<std::sync::Arc<dyn SummaryProvider>> {
        Some(std::sync::Arc::new(KeysSummary))
    }
    fn evidence(&self) -> Vec<std::sync::Arc<dyn crate::area::Evidence>> {
        vec![std::sync::Arc::new(super::compliance::AccessReview)]
    }
    fn gdpr(&self) -> Option<std::sync::Arc<dyn crate::area::Gdpr>> {
        Some(std::sync::Arc::new(super::compliance::KeysGdpr))
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(keys::create_key, keys::list_keys))
            .routes(routes!(keys::revoke_key))
            .routes(routes!(keys::list_tenants))
    }
}

/// Status-summary section `keys`: active keys of the tenant.
struct KeysSummary;

impl SummaryProvider for KeysSummary {
    fn area(&self) -> &'static str {
        "keys"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let active = super::count_active_keys(&state.store, tenant).await?;
            Ok(serde_json::json!({ "active": active }))
        })
    }
}
