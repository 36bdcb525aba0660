//! The marketplace: per-tenant modules. Every optional area ([`crate::area::Area::is_module`])
//! is a module; a tenant admin turns one off or on for their tenant (audited, and logged to
//! `marketplace.ndjson` as a license event). A module off for a tenant answers its routes
//! with 404 problem+json naming the module — for that tenant only — its scheduled work
//! skips the tenant ([`Marketplace::enabled`]), and the console tab says it is disabled.
//! Fleet-wide, `[modules] <name> = false` turns a module off for everyone (the rollback
//! every area documents).
//!
//! Store: `tenant_modules` holds only deviations from the default (on); no row = on.

pub mod api;
pub mod verb;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::Area;
use crate::audit::{self, NewAudit};
use crate::config::{ConfigError, ConfigMap};
use crate::error::ApiError;
use crate::store::Store;
use crate::util::{now_ms, rfc3339_ms};

pub const TOGGLES_TOTAL: &str = "echopilot_marketplace_toggles_total";

/// The marketplace service (`State<Marketplace>`).
#[derive(Clone)]
pub struct Marketplace {
    store: Store,
}

crate::service_from_ref!(Marketplace);

/// One module as a tenant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModuleState {
    pub name: String,
    pub description: String,
    /// On for this tenant: the tenant has not turned it off, and the fleet runs it.
    pub enabled: bool,
    /// The tenant's own choice (`true` unless the tenant turned it off).
    pub tenant_enabled: bool,
    /// `false` when `[modules] <name> = false` turns it off for every tenant.
    pub fleet_enabled: bool,
    /// Key id of whoever last changed it for this tenant (none: never changed).
    pub changed_by: Option<String>,
    pub changed_at: Option<String>,
    pub reason: Option<String>,
    /// Routes the module serves (`METHOD /path`).
    pub routes: Vec<String>,
    /// Scheduled jobs the module declares.
    pub jobs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModuleList {
    pub tenant: String,
    pub modules: Vec<ModuleState>,
}

/// A tenant's stored choice for one module.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Choice {
    module: String,
    enabled: i64,
    changed_by: String,
    changed_at: i64,
    reason: String,
}

/// One toggle: who turns which module on or off for which tenant, and why.
pub struct Change<'a> {
    pub tenant: &'a str,
    pub module: &'a str,
    pub enabled: bool,
    /// Key id of the caller.
    pub actor: &'a str,
    pub reason: &'a str,
    pub request_id: &'a str,
    /// `api` or `ops` (which door the change came through).
    pub via: &'a str,
}

/// Result of a toggle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Toggled {
    pub tenant: String,
    pub module: String,
    pub enabled: bool,
    /// False when the module already was in the requested state (recorded anyway).
    pub changed: bool,
    /// Sequence number of the audit record.
    pub audit_seq: i64,
}

impl Marketplace {
    pub fn new(store: Store) -> Marketplace {
        Marketplace { store }
    }

    /// Whether `module` is on for `tenant` by the tenant's own choice (the fleet switch
    /// is separate: a module off fleet-wide does not run at all). Core areas are always on.
    pub async fn enabled(&self, tenant: &str, module: &str) -> Result<bool, sqlx::Error> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT enabled FROM tenant_modules WHERE tenant_id = $1 AND module = $2",
        )
        .bind(tenant)
        .bind(module)
        .fetch_optional(self.store.reader())
        .await?;
        Ok(v.is_none_or(|e| e != 0))
    }

    /// Modules the tenant turned off.
    pub async fn disabled_for(&self, tenant: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT module FROM tenant_modules WHERE tenant_id = $1 AND enabled = 0 ORDER BY module",
        )
        .bind(tenant)
        .fetch_all(self.store.reader())
        .await
    }

    /// Tenants that turned `module` off (scheduled work of the module skips them).
    pub async fn tenants_without(&self, module: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT tenant_id FROM tenant_modules WHERE module = $1 AND enabled = 0 ORDER BY tenant_id",
        )
        .bind(module)
        .fetch_all(self.store.reader())
        .await
    }

    async fn choices(&self, tenant: &str) -> Result<Vec<Choice>, sqlx::Error> {
        sqlx::query_as::<_, Choice>(
            "SELECT module, enabled, changed_by, changed_at, reason FROM tenant_modules \
             WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_all(self.store.reader())
        .await
    }

    /// Every module with this tenant's state.
    pub async fn list(&self, state: &AppState, tenant: &str) -> Result<ModuleList, sqlx::Error> {
        let choices = self.choices(tenant).await?;
        let catalog = state
            .service::<crate::server::JobCatalog>()
            .unwrap_or_default();
        let modules = crate::areas::ALL
            .iter()
            .filter(|a| a.is_module())
            .map(|a| {
                let c = choices.iter().find(|c| c.module == a.name());
                let tenant_enabled = c.is_none_or(|c| c.enabled != 0);
                let fleet_enabled = state.area_running(a.name());
                ModuleState {
                    name: a.name().to_string(),
                    description: a.about().to_string(),
                    enabled: tenant_enabled && fleet_enabled,
                    tenant_enabled,
                    fleet_enabled,
                    changed_by: c.map(|c| c.changed_by.clone()),
                    changed_at: c.map(|c| rfc3339_ms(c.changed_at)),
                    reason: c.map(|c| c.reason.clone()),
                    routes: module_routes(a.name()),
                    jobs: catalog.of_area(a.name()),
                }
            })
            .collect();
        Ok(ModuleList {
            tenant: tenant.to_string(),
            modules,
        })
    }

    /// Turn `module` on or off for `tenant`: the row and its audit record in one
    /// transaction, then the license event in `marketplace.ndjson`.
    pub async fn set(&self, c: Change<'_>) -> Result<Toggled, ApiError> {
        let Change {
            tenant,
            module,
            enabled,
            actor,
            reason,
            request_id,
            via,
        } = c;
        check_module(module)?;
        let before = self.enabled(tenant, module).await?;
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        // Portable upsert: both engines accept ON CONFLICT … DO UPDATE.
        sqlx::query(
            "INSERT INTO tenant_modules (tenant_id, module, enabled, changed_by, changed_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, module) DO UPDATE SET enabled = $3, changed_by = $4, \
             changed_at = $5, reason = $6",
        )
        .bind(tenant)
        .bind(module)
        .bind(i64::from(enabled))
        .bind(actor)
        .bind(now)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let rec = audit::append(
            &self.store,
            &mut tx,
            NewAudit::new(
                tenant,
                actor,
                "marketplace.toggle",
                module,
                "ok",
                request_id,
            )
            .detail(serde_json::json!({
                "module": module, "enabled": enabled, "was_enabled": before,
                "reason": reason, "via": via,
            })),
        )
        .await?;
        tx.commit().await?;
        metrics::counter!(TOGGLES_TOTAL, "module" => module.to_string(), "enabled" => enabled.to_string())
            .increment(1);
        tracing::info!(
            target: "marketplace",
            event = "license",
            tenant_id = tenant,
            module,
            enabled,
            was_enabled = before,
            actor,
            reason,
            via,
            audit_seq = rec.seq,
            "module {} for tenant",
            if enabled { "enabled" } else { "disabled" }
        );
        Ok(Toggled {
            tenant: tenant.to_string(),
            module: module.to_string(),
            enabled,
            changed: before != enabled,
            audit_seq: rec.seq,
        })
    }
}

/// A name that is a module (422 naming the modules otherwise).
pub fn check_module(module: &str) -> Result<(), ApiError> {
    let modules = crate::area::module_names();
    if modules.contains(&module) {
        return Ok(());
    }
    if crate::area::find(module).is_some() {
        return Err(ApiError::Unprocessable(format!(
            "{module} is a core area and cannot be turned off; modules: {}",
            modules.join(", ")
        )));
    }
    Err(ApiError::Unprocessable(format!(
        "no module named {module:?}; modules: {}",
        modules.join(", ")
    )))
}

/// `METHOD /path` of every route a module serves (from its OpenAPI description). The
/// routes are fixed per build, so they are worked out once, not per listing or plan.
pub fn module_routes(module: &str) -> Vec<String> {
    static ROUTES: std::sync::OnceLock<std::collections::HashMap<&'static str, Vec<String>>> =
        std::sync::OnceLock::new();
    ROUTES
        .get_or_init(|| {
            crate::areas::ALL
                .iter()
                .filter(|a| a.is_module())
                .map(|a| (a.name(), routes_of(*a)))
                .collect()
        })
        .get(module)
        .cloned()
        .unwrap_or_default()
}

fn routes_of(area: &dyn Area) -> Vec<String> {
    let (_, doc) = area.routes().split_for_parts();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if op.is_some() {
                out.push(format!("{method} {path}"));
            }
        }
    }
    out.sort();
    out
}

/// Layer on a module's routes: 404 problem+json naming the module when it is off for
/// the whole fleet or for the caller's tenant. Runs after authentication.
pub async fn gate(
    State((state, module)): State<(AppState, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    if !state.area_running(module) {
        return ApiError::ModuleDisabled {
            module: module.to_string(),
            scope: "fleet",
            detail: format!(
                "module {module:?} is turned off for the whole fleet (`[modules] {module} = false` in the server config)"
            ),
        }
        .into_response();
    }
    let Some(tenant) = req
        .extensions()
        .get::<crate::auth::Caller>()
        .map(|c| c.tenant().to_string())
    else {
        return next.run(req).await;
    };
    let on = match state.service::<Marketplace>() {
        Some(m) => m.enabled(&tenant, module).await,
        None => Ok(true),
    };
    match on {
        Ok(true) => next.run(req).await,
        Ok(false) => ApiError::ModuleDisabled {
            module: module.to_string(),
            scope: "tenant",
            detail: format!(
                "module {module:?} is disabled for tenant {tenant:?}; an admin can enable it with POST /api/v1/marketplace/toggle or the toggle_module verb"
            ),
        }
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `[marketplace]`: no settings yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketplaceSection {}

pub struct MarketplaceArea;

impl Area for MarketplaceArea {
    fn name(&self) -> &'static str {
        "marketplace"
    }
    fn about(&self) -> &'static str {
        "marketplace: per-tenant modules, audited as license events"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["tenant_modules"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["marketplace"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        raw.section::<MarketplaceSection>("marketplace").map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list))
            .routes(routes!(api::toggle))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            state.provide(Marketplace::new(state.store.clone()));
            Ok(())
        })
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        vec![Arc::new(verb::ToggleModule::new())]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(MarketplaceSummary))
    }
}

/// Status-summary section `marketplace`: the tenant's modules, on and off.
struct MarketplaceSummary;

impl SummaryProvider for MarketplaceSummary {
    fn area(&self) -> &'static str {
        "marketplace"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let m = state.require::<Marketplace>("status", "marketplace")?;
            let off = m.disabled_for(tenant).await?;
            let modules = crate::area::module_names();
            let fleet_off = state.modules_off();
            metrics::gauge!("echopilot_marketplace_modules", "state" => "fleet_off")
                .set(fleet_off.len() as f64);
            Ok(serde_json::json!({
                "modules": modules.len(),
                "disabled_for_tenant": off.len(),
                "disabled": off,
                "fleet_off": fleet_off,
            }))
        })
    }
}
