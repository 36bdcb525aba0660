//! Queue verbs: `pause_queue`, `resume_queue`, `retry_job`, `purge_dlq`. Each calls the
//! queue service (`state.queue()`), which writes the queue's own audit record in the same
//! transaction as the change; roles match the queue's HTTP routes.

use serde_json::{json, Value};

use crate::app::BoxFuture;
use crate::audit::NewAudit;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};
use crate::queue::{Queue, RetryOutcome};

fn queue(ctx: &Ctx) -> ApiResult<Queue> {
    ctx.state
        .queue()
        .ok_or_else(|| ApiError::Unavailable("the queue is not running".into()))
}

/// The queue's audit record for a change made through an ops verb.
fn audit_rec(ctx: &Ctx, action: &str, target: &str) -> NewAudit {
    NewAudit::new(
        &ctx.tenant,
        &ctx.key_id,
        action,
        target,
        "ok",
        &ctx.request_id,
    )
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

// ------------------------------------------------------------------ pause / resume

pub struct SetPaused {
    spec: VerbSpec,
    paused: bool,
}

impl SetPaused {
    pub fn pause() -> SetPaused {
        SetPaused {
            paused: true,
            spec: VerbSpec {
                name: "pause_queue".into(),
                aliases: vec!["pause".into(), "queue_pause".into()],
                description:
                    "Pause the durable queue on every replica: no new claims; running jobs finish"
                        .into(),
                args: no_args(),
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }

    pub fn resume() -> SetPaused {
        SetPaused {
            paused: false,
            spec: VerbSpec {
                name: "resume_queue".into(),
                aliases: vec!["resume".into(), "queue_resume".into()],
                description: "Resume the durable queue on every replica".into(),
                args: no_args(),
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

impl Verb for SetPaused {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            // Checked when planning; a confirm re-plans, so it is checked again there.
            let action = if self.paused {
                "queue.pause"
            } else {
                "queue.resume"
            };
            ctx.caller()
                .require_system(&ctx.state, ctx.role, action, "the queue's pause flag")
                .await?;
            let q = queue(ctx)?;
            let paused = q.is_paused_db().await?;
            let h = q.health(&ctx.tenant).await?;
            let (summary, steps, effects) = match (self.paused, paused) {
                (true, true) | (false, false) => (
                    format!(
                        "The queue is already {}: nothing would change",
                        if paused { "paused" } else { "running" }
                    ),
                    vec!["Record the request (the pause flag stays as it is)".to_string()],
                    vec!["None".to_string()],
                ),
                (true, false) => (
                    "Pause the queue on every replica (all tenants)".to_string(),
                    vec![
                        "Set the shared pause flag; replicas stop claiming jobs".to_string(),
                        format!(
                            "Let the {} running job(s) of this tenant finish",
                            h.depth.running
                        ),
                    ],
                    vec![format!(
                        "{} queued and {} retry-waiting job(s) of this tenant wait until resume_queue",
                        h.depth.queued, h.depth.failed
                    )],
                ),
                (false, true) => (
                    "Resume the queue on every replica (all tenants)".to_string(),
                    vec!["Clear the shared pause flag and wake the workers".to_string()],
                    vec![format!(
                        "{} queued job(s) of this tenant become claimable (lag now {} ms)",
                        h.depth.queued, h.lag_ms
                    )],
                ),
            };
            Ok(Planned {
                plan: Plan {
                    summary,
                    steps,
                    effects,
                },
                world: json!({"paused": paused}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let q = queue(ctx)?;
            let action = if self.paused {
                "queue.pause"
            } else {
                "queue.resume"
            };
            let changed = q
                .set_paused(
                    self.paused,
                    &ctx.key_id,
                    Some(audit_rec(ctx, action, "queue")),
                )
                .await?;
            Ok(json!({"paused": self.paused, "changed": changed}))
        })
    }
}

// ------------------------------------------------------------------ retry_job

pub struct RetryJob {
    spec: VerbSpec,
}

impl Default for RetryJob {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryJob {
    pub fn new() -> RetryJob {
        RetryJob {
            spec: VerbSpec {
                name: "retry_job".into(),
                aliases: vec!["retry".into(), "requeue".into()],
                description: "Retry a dead queue job: dead → queued with its attempts reset".into(),
                args: json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "minLength": 1, "maxLength": 128,
                               "description": "queue job id (GET /api/v1/queue/jobs?state=dead)"}
                    },
                    "required": ["id"],
                    "additionalProperties": false
                }),
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

fn job_id(args: &Value) -> ApiResult<&str> {
    args["id"]
        .as_str()
        .ok_or_else(|| ApiError::Unprocessable("argument \"id\" is required".into()))
}

impl Verb for RetryJob {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            let id = job_id(args)?;
            let q = queue(ctx)?;
            let Some(job) = q.get(&ctx.tenant, id).await? else {
                return Err(ApiError::NotFound(format!("no job {id:?} in this tenant")));
            };
            if job.state != "dead" {
                return Err(ApiError::Conflict(format!(
                    "job {id} is {}; only dead jobs can be retried",
                    job.state
                )));
            }
            Ok(Planned {
                plan: Plan {
                    summary: format!("Requeue dead job {id} ({})", job.kind),
                    steps: vec![
                        format!(
                            "Move job {id} from dead to queued, attempts {}/{} → 0",
                            job.attempts, job.max_attempts
                        ),
                        "Wake the workers".into(),
                    ],
                    effects: vec![match &job.error {
                        Some(e) => format!(
                            "The job runs again (last error: {})",
                            e.chars().take(200).collect::<String>()
                        ),
                        None => "The job runs again".into(),
                    }],
                },
                world: json!({"id": job.id, "state": job.state, "attempts": job.attempts,
                              "finished_at": job.finished_at}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let id = job_id(args)?;
            let q = queue(ctx)?;
            match q
                .retry(&ctx.tenant, id, Some(audit_rec(ctx, "queue.retry", id)))
                .await?
            {
                RetryOutcome::Requeued => Ok(json!({"id": id, "state": "queued"})),
                RetryOutcome::NotDead(s) => Err(ApiError::Conflict(format!(
                    "job {id} is {s}; only dead jobs can be retried"
                ))),
                RetryOutcome::NotFound => {
                    Err(ApiError::NotFound(format!("no job {id:?} in this tenant")))
                }
            }
        })
    }
}

// ------------------------------------------------------------------ purge_dlq

/// Dead jobs listed in a plan (the fingerprint covers them all; the plan shows a few).
const PURGE_LIST: i64 = 10_000;

pub struct PurgeDlq {
    spec: VerbSpec,
}

impl Default for PurgeDlq {
    fn default() -> Self {
        Self::new()
    }
}

impl PurgeDlq {
    pub fn new() -> PurgeDlq {
        PurgeDlq {
            spec: VerbSpec {
                name: "purge_dlq".into(),
                aliases: vec!["purge_dead".into(), "dlq_purge".into()],
                description: "Delete every dead-lettered queue job of the tenant (irreversible)"
                    .into(),
                args: no_args(),
                risk: Risk::High,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

impl Verb for PurgeDlq {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            let q = queue(ctx)?;
            let dead = q.list(&ctx.tenant, Some("dead"), None, PURGE_LIST).await?;
            let mut ids: Vec<&str> = dead.iter().map(|j| j.id.as_str()).collect();
            ids.sort_unstable();
            let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
            for j in &dead {
                *kinds.entry(j.kind.as_str()).or_default() += 1;
            }
            let by_kind: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            let summary = if dead.is_empty() {
                format!(
                    "The dead-letter queue of tenant {} is empty: nothing to delete",
                    ctx.tenant
                )
            } else {
                format!("Delete {} dead job(s) of tenant {}", dead.len(), ctx.tenant)
            };
            let mut steps = vec![format!(
                "Delete the tenant's jobs in state dead ({})",
                if by_kind.is_empty() {
                    "none".to_string()
                } else {
                    by_kind.join(", ")
                }
            )];
            if !dead.is_empty() {
                let shown: Vec<&str> = dead.iter().take(5).map(|j| j.id.as_str()).collect();
                steps.push(format!(
                    "Including {}{}",
                    shown.join(", "),
                    if dead.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
            Ok(Planned {
                plan: Plan {
                    summary,
                    steps,
                    effects: vec![
                        "The jobs, their payloads, results and errors are gone for good".into(),
                        "Other states (queued, running, failed, succeeded) are untouched".into(),
                    ],
                },
                // A job that died after the plan changes this, so it is never deleted unseen.
                world: json!({"dead_ids": ids}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let q = queue(ctx)?;
            let purged = q
                .purge_dead(&ctx.tenant, Some(audit_rec(ctx, "queue.dlq.purge", "dlq")))
                .await?;
            Ok(json!({"purged": purged}))
        })
    }
}
