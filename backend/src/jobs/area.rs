//! The `jobs` area: the scheduler (named jobs on cron schedules), its run history, the
//! automations switch, and the leader election that decides who fires.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, Jobs};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Light, Probe};
use crate::config::{ConfigError, ConfigMap};

crate::service_from_ref!(Jobs);

/// `[jobs.<name>]`: per-job overrides. Job names are checked against the registry when
/// the scheduler starts (areas declare their jobs then).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobOverride {
    /// Six-field UTC cron expression replacing the job's default.
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    /// Longest a run may take before it is cancelled and recorded as timed out.
    pub timeout_secs: Option<u64>,
}

/// `[jobs]`: one table per job name.
pub type JobsSection = BTreeMap<String, JobOverride>;

pub struct JobsArea;

impl Area for JobsArea {
    fn name(&self) -> &'static str {
        "jobs"
    }
    fn about(&self) -> &'static str {
        "scheduler: cron jobs run once fleet-wide, run history, automations switch"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["job_runs", "scheduler_state"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["scheduler"]
    }
    fn extra_config_sections(&self) -> &'static [&'static str] {
        &["retention"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        let jobs: JobsSection = raw.section("jobs")?;
        for (name, o) in &jobs {
            if let Some(s) = &o.schedule {
                super::validate_cron(s)
                    .map_err(|m| raw.error(&format!("jobs.{name}.schedule"), m))?;
            }
        }
        super::retention::RetentionConfig::from_config_map(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list_runs))
            .routes(routes!(api::run_ledger))
            .routes(routes!(api::run_now))
            .routes(routes!(api::automations_status))
            .routes(routes!(api::automations_stop))
            .routes(routes!(api::automations_start))
    }
    fn jobs(&self, state: &AppState, reg: &mut super::JobRegistry) -> anyhow::Result<()> {
        super::builtin::register(reg, &state.cfg)
    }
    fn verbs(&self, state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        use crate::ops::verbs::jobs::{RestartScheduler, RunJob};
        let names = state
            .service::<crate::server::JobCatalog>()
            .map(|c| c.names())
            .unwrap_or_default();
        vec![
            Arc::new(RunJob::new(names)),
            Arc::new(RestartScheduler::new()),
        ]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(super::JobsSummary))
    }
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![Arc::new(SchedulerProbe)]
    }
}

struct SchedulerProbe;

impl Probe for SchedulerProbe {
    fn name(&self) -> &'static str {
        "scheduler"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>> {
        Box::pin(async move {
            let j = state.require::<Jobs>("telemetry", "jobs")?;
            let store = &state.store;
            let running = super::desired_running(store).await?;
            let statuses = j.job_statuses(store, running).await?;
            let failed: Vec<&str> = statuses
                .iter()
                .filter(|s| s.last_run.as_ref().is_some_and(|r| r.outcome == "failed"))
                .map(|s| s.name.as_str())
                .collect();
            let in_progress = statuses
                .iter()
                .filter(|s| s.last_run.as_ref().is_some_and(|r| r.outcome == "running"))
                .count();
            let next_run = statuses.iter().filter_map(|s| s.next_run.clone()).min();
            // Stopped is an operator decision, failures need a look: both yellow.
            let light = if !running || !failed.is_empty() {
                Light::Yellow
            } else {
                Light::Green
            };
            Ok((
                light,
                json!({
                    "running": running,
                    "leader": j.is_leader(),
                    "replica_id": state.cfg.replica_id,
                    "jobs": statuses.len(),
                    "enabled": statuses.iter().filter(|s| s.enabled).count(),
                    "in_progress": in_progress,
                    "last_run_failed": failed,
                    "next_run": next_run,
                }),
            ))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let j = state.require::<Jobs>("telemetry", "jobs")?;
            let running = super::desired_running(&state.store).await?;
            let role = if j.is_leader() { "leader" } else { "follower" };
            Ok(if running {
                format!("running; this replica is {role}")
            } else {
                format!("stopped by an operator; this replica is {role}")
            })
        })
    }
}
