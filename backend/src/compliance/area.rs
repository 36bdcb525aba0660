//! The `compliance` module: its config section, routes, summary and GDPR part.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, Compliance, Settings};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Erase, Gdpr, GdprErasure, GdprExport, GdprRequest};
use crate::config::{ConfigError, ConfigMap};

pub struct ComplianceArea;

impl Area for ComplianceArea {
    fn name(&self) -> &'static str {
        "compliance"
    }
    fn about(&self) -> &'static str {
        "compliance: signed webhooks (Standard Webhooks), signed evidence bundles, GDPR export and delete"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["compliance_hooks"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["compliance", "compliance_hooks"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        Settings::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list_hooks))
            .routes(routes!(api::export_evidence))
            .routes(routes!(api::gdpr_export))
            .routes(routes!(api::gdpr_delete))
    }
    fn public_routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(api::webhook))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let settings = Settings::load(&state.cfg.raw)?;
            let c = Compliance::new(state.store.clone(), settings, &state.cfg.data_dir)?;
            tracing::info!(
                target: "compliance",
                webhook_secrets = ?c.settings.secrets.iter().map(|s| format!("{}->{}", s.name, s.tenant)).collect::<Vec<_>>(),
                "compliance webhook secrets loaded"
            );
            state.provide(c);
            Ok(())
        })
    }
    fn start<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let c = state.require::<Compliance>("compliance", "compliance")?;
            let every = std::time::Duration::from_secs(c.settings.rejection_log_interval_secs);
            let shutdown = state.shutdown.clone();
            state.spawn_background(async move {
                crate::api::auth_failures::every_interval(every, shutdown, move || {
                    c.flush_rejection_log()
                })
                .await
            });
            Ok(())
        })
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(ComplianceSummary))
    }
    fn gdpr(&self) -> Option<Arc<dyn Gdpr>> {
        Some(Arc::new(ComplianceGdpr))
    }
}

/// Status-summary section `compliance`.
struct ComplianceSummary;

impl SummaryProvider for ComplianceSummary {
    fn area(&self) -> &'static str {
        "compliance"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let c = state.require::<Compliance>("status", "compliance")?;
            let (hooks, last) = c.count_hooks(tenant).await?;
            let k = &c.counters;
            let secrets = c
                .settings
                .secrets
                .iter()
                .filter(|s| s.tenant == tenant)
                .count();
            Ok(json!({
                "hooks": hooks,
                "last_hook_at": last.map(crate::util::rfc3339_ms),
                "webhook_secrets": secrets,
                "evidence_public_key": c.evidence_public_key(),
                "process": {
                    "webhooks_accepted": k.webhooks_accepted.load(Ordering::Relaxed),
                    "webhooks_rejected": k.webhooks_rejected.load(Ordering::Relaxed),
                    "rejections_unaudited": k.rejections_unaudited.load(Ordering::Relaxed),
                    "evidence_exports": k.evidence_exports.load(Ordering::Relaxed),
                    "gdpr_exports": k.gdpr_exports.load(Ordering::Relaxed),
                    "gdpr_deletes": k.gdpr_deletes.load(Ordering::Relaxed),
                },
            }))
        })
    }
}

/// Webhook events whose payload holds the subject as a JSON string value (an event about
/// a person names them): exported, and deleted on request (database rows; the NDJSON log
/// lines age out with the log files, see COMPLIANCE.md).
struct ComplianceGdpr;

impl Gdpr for ComplianceGdpr {
    fn about(&self) -> &'static str {
        "compliance webhook events whose payload holds the subject as a string value"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let hooks =
                super::webhook::hooks_mentioning(&state.store, &req.tenant, &req.subject).await?;
            Ok(GdprExport {
                records: hooks.len() as u64,
                data: json!({ "hooks": hooks }),
                notes: Vec::new(),
            })
        })
    }
    fn delete<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprErasure>> {
        Box::pin(async move {
            // The statement matches the subject as a JSON string value of the payload.
            let as_json = GdprRequest {
                subject: super::webhook::as_json_string(&req.subject),
                ..req.clone()
            };
            let sql = super::webhook::delete_mentioning_sql(&state.store);
            Ok(as_json
                .erase(
                    &state.store,
                    "compliance",
                    &[("hooks", Erase::Delete, &sql)],
                )
                .await?)
        })
    }
}
