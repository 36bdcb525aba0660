//! Scheduler verbs: `run_job` and `restart_scheduler`, through the jobs service
//! (`state.jobs()`). Scheduled jobs are system-wide, so like the jobs HTTP routes they need
//! an operator key of the `default` tenant (or a superadmin).

use serde_json::{json, Value};

use crate::app::BoxFuture;
use crate::audit::{self, NewAudit};
use crate::auth::DEFAULT_TENANT;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Begin, Jobs, Trigger};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};

fn jobs(ctx: &Ctx) -> ApiResult<Jobs> {
    ctx.state
        .jobs()
        .ok_or_else(|| ApiError::Unavailable("the scheduler is not started".into()))
}

/// Same rule as the jobs routes; a refusal is audited like theirs.
async fn require_system(ctx: &Ctx, action: &str) -> ApiResult<()> {
    ctx.caller()
        .require_system(&ctx.state, ctx.role, action, "the scheduler")
        .await
}

/// Whether a run of `job` is in progress anywhere in the fleet (its newest run is `running`).
async fn in_progress(ctx: &Ctx, job: &str) -> ApiResult<Option<crate::jobs::JobRun>> {
    let last = crate::jobs::list_runs(&ctx.state.store, Some(job), 1)
        .await?
        .into_iter()
        .next();
    Ok(last)
}

// ------------------------------------------------------------------ run_job

pub struct RunJob {
    spec: VerbSpec,
}

impl RunJob {
    pub fn new(names: Vec<String>) -> RunJob {
        RunJob {
            spec: VerbSpec {
                name: "run_job".into(),
                aliases: vec!["run_now".into(), "job_run".into()],
                description:
                    "Run a scheduled job now (enqueued on the queue; recorded as a manual run)"
                        .into(),
                args: json!({
                    "type": "object",
                    "properties": {
                        "job": {"type": "string", "enum": names,
                                "description": "registered job name (GET /api/v1/automations/status)"}
                    },
                    "required": ["job"],
                    "additionalProperties": false
                }),
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

fn job_arg(args: &Value) -> ApiResult<&str> {
    args["job"]
        .as_str()
        .ok_or_else(|| ApiError::Unprocessable("argument \"job\" is required".into()))
}

impl Verb for RunJob {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            require_system(ctx, "jobs.run").await?;
            let name = job_arg(args)?;
            let j = jobs(ctx)?;
            if !j.contains(name) {
                return Err(ApiError::NotFound(format!(
                    "no job named {name:?}; jobs: {}",
                    j.names().join(", ")
                )));
            }
            j.require_run_role(&ctx.state, &ctx.caller(), name).await?;
            let last = in_progress(ctx, name).await?;
            if let Some(r) = last.as_ref().filter(|r| r.outcome == "running") {
                return Err(ApiError::Conflict(format!(
                    "job {name:?} is already running (run {} started {} on {}); a second run would be skipped",
                    r.id, r.started_at, r.replica
                )));
            }
            let last_line = match &last {
                Some(r) => format!(
                    "Last run: {} at {} ({})",
                    r.outcome, r.started_at, r.trigger
                ),
                None => "The job has never run".into(),
            };
            Ok(Planned {
                plan: Plan {
                    summary: format!("Run job {name} now (requested on replica {})", ctx.state.cfg.replica_id),
                    steps: vec![
                        format!("Enqueue a queue job of kind scheduled:{name} (any replica's workers may run it)"),
                        "The run claims the job's single running slot (fleet-wide no-overlap); its result lands in /api/v1/jobs/runs".into(),
                        last_line,
                    ],
                    effects: vec![format!(
                        "Whatever job {name} does (see GET /api/v1/automations/status for its description)"
                    )],
                },
                world: json!({"job": name, "running": false}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let name = job_arg(args)?;
            let j = jobs(ctx)?;
            j.require_run_role(&ctx.state, &ctx.caller(), name).await?;
            let begin = j.run(&ctx.state, name, Trigger::Manual).await?;
            let (outcome, run_id) = match &begin {
                Begin::Started(id) => ("ok", id.clone()),
                Begin::Overlap { skipped_id } => ("conflict", skipped_id.clone()),
            };
            // The same record the run-now route writes.
            let rec = NewAudit::new(
                DEFAULT_TENANT,
                &ctx.key_id,
                "jobs.run",
                name,
                outcome,
                &ctx.request_id,
            )
            .detail(json!({"run_id": run_id, "replica": ctx.state.cfg.replica_id, "via": "ops"}));
            audit::record(&ctx.state.store, rec).await?;
            match begin {
                Begin::Started(run_id) => {
                    tracing::info!(target: "scheduler", job = %name, job_run_id = %run_id, key_id = %ctx.key_id, "run requested via ops");
                    Ok(json!({"job": name, "run_id": run_id, "replica": ctx.state.cfg.replica_id}))
                }
                Begin::Overlap { skipped_id } => Err(ApiError::Conflict(format!(
                    "job {name:?} is already running; this request was recorded as skipped run {skipped_id}"
                ))),
            }
        })
    }
}

// ------------------------------------------------------------------ restart_scheduler

pub struct RestartScheduler {
    spec: VerbSpec,
}

impl Default for RestartScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl RestartScheduler {
    pub fn new() -> RestartScheduler {
        RestartScheduler {
            spec: VerbSpec {
                name: "restart_scheduler".into(),
                aliases: vec!["scheduler_restart".into(), "restart_sched".into()],
                description: "Restart the scheduler fleet-wide: every replica re-reads its config and rebuilds its schedule (changed schedules, enablement and timeouts take effect); a stopped scheduler is started".into(),
                args: json!({"type": "object", "properties": {}, "additionalProperties": false}),
                risk: Risk::High,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

/// The restart's changes: current settings against the re-read config (a config error is
/// a 422 naming the key).
fn planned_changes(ctx: &Ctx, j: &Jobs) -> ApiResult<Vec<String>> {
    let new = j
        .settings_from_config(&ctx.state)
        .map_err(|e| ApiError::Unprocessable(format!("the config does not load: {e}")))?;
    Ok(crate::jobs::registry::diff(&j.all_settings(), &new))
}

impl Verb for RestartScheduler {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            require_system(ctx, "automations.restart").await?;
            let j = jobs(ctx)?;
            let running = crate::jobs::desired_running(&ctx.state.store).await?;
            let generation = crate::jobs::control::generation(&ctx.state.store).await?;
            let changes = planned_changes(ctx, &j)?;
            let in_flight: Vec<String> = {
                let mut v = Vec::new();
                for name in j.names() {
                    if crate::jobs::runs::running_run(&ctx.state.store, &name)
                        .await?
                        .is_some()
                    {
                        v.push(name);
                    }
                }
                v
            };
            let enabled = j.all_settings().values().filter(|s| s.enabled).count();
            let mut steps = vec![format!(
                "Bump the schedule generation {generation} → {} in scheduler_state (audited automations.restart)",
                generation + 1
            )];
            if !running {
                steps.push("Set the fleet-wide scheduler state to running (it is stopped)".into());
            }
            steps.push("Every replica sees the new generation within ~2 s, re-reads its config file and rebuilds its schedule".into());
            let mut effects = if changes.is_empty() {
                vec![format!(
                    "No schedule changes: the {enabled} enabled jobs keep their schedules"
                )]
            } else {
                changes.clone()
            };
            effects.push(if in_flight.is_empty() {
                "No run is in progress".to_string()
            } else {
                format!(
                    "Runs in progress finish undisturbed: {}",
                    in_flight.join(", ")
                )
            });
            Ok(Planned {
                plan: Plan {
                    summary: format!(
                        "Restart the {}scheduler fleet-wide ({} schedule change{})",
                        if running { "" } else { "stopped " },
                        changes.len(),
                        if changes.len() == 1 { "" } else { "s" }
                    ),
                    steps,
                    effects,
                },
                world: json!({"running": running, "generation": generation, "changes": changes}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let j = jobs(ctx)?;
            let was = crate::jobs::desired_running(&ctx.state.store).await?;
            let changes = planned_changes(ctx, &j)?;
            let rec = NewAudit::new(
                DEFAULT_TENANT,
                &ctx.key_id,
                "automations.restart",
                "scheduler",
                "ok",
                &ctx.request_id,
            )
            .detail(json!({"changes": changes, "was_running": was, "replica": ctx.state.cfg.replica_id, "via": "ops"}));
            let generation =
                crate::jobs::control::bump_generation(&ctx.state.store, &ctx.key_id, rec).await?;
            // This replica at once; the others on their next poll of scheduler_state.
            let rebuilt = j.rebuild(&ctx.state, generation).map_err(|e| {
                ApiError::Unprocessable(format!("the schedule could not be rebuilt: {e:#}"))
            })?;
            tracing::info!(target: "scheduler", key_id = %ctx.key_id, was_running = was, generation, changes = %rebuilt.changes.join("; "), "scheduler restarted via ops");
            let running = crate::jobs::desired_running(&ctx.state.store).await?;
            Ok(json!({
                "running": running,
                "was_running": was,
                "generation": generation,
                "changes": rebuilt.changes,
                "replica_id": ctx.state.cfg.replica_id,
                "jobs": j.job_statuses(&ctx.state.store, running).await.map_err(ApiError::from)?,
            }))
        })
    }
}
