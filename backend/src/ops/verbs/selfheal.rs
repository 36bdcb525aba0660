//! `self_heal_run`: run every safe self-heal remediation now (the same run as the hourly
//! job and `POST /api/v1/selfheal/run`); each action is stored and audited by self-heal.

use serde_json::{json, Value};

use crate::app::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};
use crate::selfheal::{self, Actor, REMEDIATIONS};

pub struct SelfHealRun {
    spec: VerbSpec,
}

impl Default for SelfHealRun {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfHealRun {
    pub fn new() -> SelfHealRun {
        SelfHealRun {
            spec: VerbSpec {
                name: "self_heal_run".into(),
                aliases: vec!["self_heal".into(), "heal".into()],
                description: "Run every safe self-heal remediation now (requeue expired leases, restart a stalled worker pool, quarantine poison jobs)".into(),
                args: json!({"type": "object", "properties": {}, "additionalProperties": false}),
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

impl Verb for SelfHealRun {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            // Checked when planning; a confirm re-plans, so it is checked again there.
            ctx.caller()
                .require_system(&ctx.state, ctx.role, "selfheal.run", "self-heal")
                .await?;
            let safe: Vec<_> = REMEDIATIONS.iter().filter(|r| r.safe).collect();
            Ok(Planned {
                plan: Plan {
                    summary: format!("Run {} safe self-heal remediation(s) now", safe.len()),
                    steps: safe
                        .iter()
                        .map(|r| format!("{}: {}", r.name, r.description))
                        .collect(),
                    effects: vec![
                        "Each remediation acts only if needed (otherwise it records noop); every action is stored in the self-heal history and audited".into(),
                        "Remediations act across tenants (they repair shared machinery)".into(),
                    ],
                },
                world: json!({"remediations": safe.iter().map(|r| r.name).collect::<Vec<_>>()}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let actor = Actor {
                tenant: ctx.tenant.clone(),
                id: ctx.key_id.clone(),
                request_id: ctx.request_id.clone(),
            };
            selfheal::run_as(&ctx.state, "ops", &actor)
                .await
                .map_err(ApiError::from)
        })
    }
}
