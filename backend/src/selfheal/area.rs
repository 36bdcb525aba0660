//! The `selfheal` module: safe remediations run hourly and on demand, with history.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api;
use crate::app::{AppState, SummaryProvider};
use crate::area::Area;
use crate::config::{ConfigError, ConfigMap};

/// `[selfheal]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfHealSection {
    /// Consecutive fast failures after which a job is quarantined as poison (2..=100).
    pub poison_threshold: u64,
    /// Retired signing keys kept for verification (1..=100).
    pub signing_keys_keep: u64,
}

impl Default for SelfHealSection {
    fn default() -> Self {
        SelfHealSection {
            poison_threshold: 3,
            signing_keys_keep: 3,
        }
    }
}

impl SelfHealSection {
    pub fn load(raw: &ConfigMap) -> Result<SelfHealSection, ConfigError> {
        let s: SelfHealSection = raw.section("selfheal")?;
        raw.check_range("selfheal.poison_threshold", s.poison_threshold, 2, 100)?;
        raw.check_range("selfheal.signing_keys_keep", s.signing_keys_keep, 1, 100)?;
        Ok(s)
    }
}

pub struct SelfHealArea;

impl Area for SelfHealArea {
    fn name(&self) -> &'static str {
        "selfheal"
    }
    fn about(&self) -> &'static str {
        "self-heal: reclaims expired leases, restarts a stalled worker pool, quarantines poison jobs, rotates signing keys"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["selfheal_actions", "signing_keys"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["self_heal"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        SelfHealSection::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::remediations))
            .routes(routes!(api::history))
            .routes(routes!(api::run))
    }
    fn jobs(&self, _state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        reg.register(
            "self_heal",
            "0 10 * * * *",
            crate::jobs::handler(
                |ctx| async move { super::run_safe(&ctx.state, "schedule").await },
            ),
        )
        .timeout(std::time::Duration::from_secs(600))
        .describe("hourly: runs the safe self-heal remediations");
        Ok(())
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        vec![Arc::new(crate::ops::verbs::selfheal::SelfHealRun::new())]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(super::Summary))
    }
}
