//! The `ops` area: the verb registry and the dry-run → confirm protocol. Verbs are
//! declared by the areas whose services they drive (`Area::verbs`); ops itself offers
//! `tail_logs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api;
use crate::app::AppState;
use crate::area::Area;
use crate::config::{ConfigError, ConfigMap};

/// `[ops]`: no settings yet; the section exists so a stray key is an error, not ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSection {}

pub struct OpsArea;

impl Area for OpsArea {
    fn name(&self) -> &'static str {
        "ops"
    }
    fn about(&self) -> &'static str {
        "ops commands: allow-listed verbs, dry-run plans, confirmed and audited execution"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["ops_plans"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["ops_console"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        raw.section::<OpsSection>("ops").map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list_verbs))
            .routes(routes!(api::command))
            .routes(routes!(api::logs))
    }
    fn evidence(&self) -> Vec<Arc<dyn crate::area::Evidence>> {
        vec![Arc::new(super::compliance::ChangeLog)]
    }
    fn gdpr(&self) -> Option<Arc<dyn crate::area::Gdpr>> {
        Some(Arc::new(super::compliance::OpsGdpr))
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn super::Verb>> {
        vec![Arc::new(super::verbs::tail_logs::TailLogs::new())]
    }
}
