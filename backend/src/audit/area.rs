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
    fn log_files(&self) -> &'static [&'static str] {
        &["audit", "audit_heads"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["audit_log", "audit_nodes", "audit_heads"]
    }
    fn check_config(
        &self,
        raw: &crate::config::ConfigMap,
    ) -> Result<(), crate::config::ConfigError> {
        super::heads::AuditSection::load(raw).map(|_| ())
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let s = super::heads::AuditSection::load(&state.cfg.raw)?;
            state.provide(super::heads::Heads::new(&s, &state.cfg.data_dir)?);
            Ok(())
        })
    }
    fn jobs(&self, state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        let heads = state.require::<super::heads::Heads>("audit", "audit")?;
        reg.register(
            "audit_head",
            "0 */10 * * * *",
            crate::jobs::handler(move |ctx| {
                let heads = heads.clone();
                async move {
                    let h = heads.publish(&ctx.state.store).await?;
                    Ok(serde_json::json!({ "head_id": h.id, "tree_size": h.tree_size, "root": h.root }))
                }
            }),
        )
        .timeout(std::time::Duration::from_secs(120))
        .describe("every 10 min: publishes a signed audit tree head (and sends it to the witness)");
        Ok(())
    }
    fn summary(&self) -> Option<std::sync::Arc<dyn SummaryProvider>> {
        Some(std::sync::Arc::new(AuditSummary))
    }
    fn probes(&self) -> Vec<std::sync::Arc<dyn crate::area::Probe>> {
        vec![std::sync::Arc::new(AuditProbe)]
    }
    fn evidence(&self) -> Vec<std::sync::Arc<dyn crate::area::Evidence>> {
        vec![std::sync::Arc::new(super::compliance::AuditEvidence)]
    }
    fn gdpr(&self) -> Option<std::sync::Arc<dyn crate::area::Gdpr>> {
        Some(std::sync::Arc::new(super::compliance::AuditGdpr))
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(audit::chain))
            .routes(routes!(audit::records))
            .routes(routes!(audit::receipt))
            .routes(routes!(audit::consistency))
            .routes(routes!(audit::verify))
            .routes(routes!(audit::list_heads, audit::publish_head))
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
            use std::sync::atomic::Ordering::Relaxed;
            let n = super::size(&state.store).await?;
            let last = super::heads::latest(&state.store).await?;
            let heads = state.service::<super::heads::Heads>();
            Ok(serde_json::json!({
                "records": n,
                "heads_published": heads.as_ref().map_or(0, |h| h.stats.published.load(Relaxed)),
                "witness_failures": heads.as_ref().map_or(0, |h| h.stats.witness_failures.load(Relaxed)),
                "last_head_id": last.as_ref().map(|h| h.id),
                "last_head_tree_size": last.as_ref().map(|h| h.tree_size),
                "last_head_age_secs": last.as_ref().map(|h| (crate::util::now_ms() - h.ts_ms).max(0) / 1000),
            }))
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
