//! The `audit` area: the RFC 6962 Merkle audit log and its proofs (`/api/v1/audit/*`).

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::audit;
use crate::app::AppState;
use crate::app::{BoxFuture, SummaryProvider};
use crate::area::Area;

pub struct AuditArea;

impl Area for AuditArea {
    fn name(&self) -> &'static str {
        "audit"
    }
    fn about(&self) -> &'static str {
        "tamper-evident audit log with inclusion and consistency proofs"
    }
    fn source_dirs(&self) -> &'static [&'static str] {
        &["audit", "api/audit.rs"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["audit_log", "audit_nodes"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["audit"]
    }
    fn summary(&self) -> Option<std::sync::Arc<dyn SummaryProvider>> {
        Some(std::sync::Arc::new(AuditSummary))
    }
    fn probes(&self) -> Vec<std::sync::Arc<dyn crate::area::Probe>> {
        vec![std::sync::Arc::new(AuditProbe)]
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(audit::chain))
            .routes(routes!(audit::records))
            .routes(routes!(audit::receipt))
            .routes(routes!(audit::consistency))
            .routes(routes!(audit::verify))
    }
}

/// Status-summary section `audit`: records in the log (fleet-wide: the tree is one).
struct AuditSummary;

impl SummaryProvider for AuditSummary {
    fn area(&self) -> &'static str {
        "audit"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let n = super::size(&state.store).await?;
            Ok(serde_json::json!({ "records": n }))
        })
    }
}

/// Telemetry component `audit`: size, root and the newest record.
struct AuditProbe;

impl crate::area::Probe for AuditProbe {
    fn name(&self) -> &'static str {
        "audit"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(crate::area::Light, serde_json::Value)>> {
        Box::pin(async move {
            let c = super::chain(&state.store).await?;
            Ok((
                crate::area::Light::Green,
                serde_json::json!({
                    "records": c.size,
                    "root": c.root,
                    "last_record_at": c.head.map(|h| h.ts),
                }),
            ))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let n = super::size(&state.store).await?;
            Ok(format!("{n} records"))
        })
    }
}
