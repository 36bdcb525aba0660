//! `toggle_module`: turn a module on or off for the tenant through the ops protocol. The
//! dry-run lists exactly which routes start or stop answering and which scheduled jobs
//! start or stop working for that tenant.

use serde_json::{json, Value};

use super::{check_module, module_routes, Marketplace};
use crate::app::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};

pub struct ToggleModule {
    spec: VerbSpec,
}

impl ToggleModule {
    pub fn new() -> ToggleModule {
        ToggleModule {
            spec: VerbSpec {
                name: "toggle_module".into(),
                aliases: vec!["module_toggle".into(), "enable_module".into()],
                description: "Turn a marketplace module on or off for this tenant".into(),
                args: json!({
                    "type": "object",
                    "properties": {
                        "module": {"type": "string", "enum": crate::area::module_names(),
                                   "description": "module name (GET /api/v1/marketplace/list)"},
                        "enabled": {"type": "boolean", "description": "true to turn it on, false to turn it off"}
                    },
                    "required": ["module", "enabled"],
                    "additionalProperties": false
                }),
                // Turning a tenant's module off takes features away: the reason is kept.
                risk: Risk::High,
                min_role: Role::Admin,
                mutating: true,
            },
        }
    }
}

impl Default for ToggleModule {
    fn default() -> Self {
        Self::new()
    }
}

fn service(ctx: &Ctx) -> ApiResult<Marketplace> {
    ctx.state
        .service::<Marketplace>()
        .ok_or_else(|| ApiError::Unavailable("the marketplace is not running".into()))
}

fn args_of(args: &Value) -> ApiResult<(&str, bool)> {
    let module = args["module"].as_str().unwrap_or_default();
    let enabled = args["enabled"].as_bool().unwrap_or(true);
    check_module(module)?;
    Ok((module, enabled))
}

impl Verb for ToggleModule {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            let (module, enabled) = args_of(args)?;
            let m = service(ctx)?;
            let now = m.enabled(&ctx.tenant, module).await?;
            let fleet = ctx.state.area_running(module);
            let routes = module_routes(module);
            let jobs = ctx
                .state
                .service::<crate::server::JobCatalog>()
                .map(|c| c.of_area(module))
                .unwrap_or_default();
            let tenant = &ctx.tenant;
            let mut steps = vec![format!(
                "Record module {module} as {} for tenant {tenant} (audited; license event in marketplace.ndjson)",
                if enabled { "on" } else { "off" }
            )];
            let mut effects = Vec::new();
            if now == enabled {
                effects.push(format!(
                    "None: {module} already is {} for tenant {tenant}",
                    if enabled { "on" } else { "off" }
                ));
            } else if enabled {
                for r in &routes {
                    effects.push(format!("{r} serves tenant {tenant} again"));
                }
                for j in &jobs {
                    effects.push(format!("scheduled job {j} includes tenant {tenant} again"));
                }
            } else {
                for r in &routes {
                    effects.push(format!(
                        "{r} answers 404 (module disabled) for tenant {tenant}"
                    ));
                }
                for j in &jobs {
                    effects.push(format!("scheduled job {j} skips tenant {tenant}"));
                }
            }
            effects.push("Other tenants are not affected".into());
            if !fleet {
                steps.push(format!(
                    "Note: {module} is turned off fleet-wide ([modules] {module} = false); the tenant's choice takes effect when the fleet turns it back on"
                ));
            }
            Ok(Planned {
                plan: Plan {
                    summary: format!(
                        "Turn module {module} {} for tenant {tenant}",
                        if enabled { "on" } else { "off" }
                    ),
                    steps,
                    effects,
                },
                world: json!({"module": module, "enabled_now": now, "fleet": fleet}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let (module, enabled) = args_of(args)?;
            let m = service(ctx)?;
            let reason = ctx.reason.clone().unwrap_or_default();
            let reason = super::api::check_reason(&reason)?;
            let t = m
                .set(super::Change {
                    tenant: &ctx.tenant,
                    module,
                    enabled,
                    actor: &ctx.key_id,
                    reason,
                    request_id: &ctx.request_id,
                    via: "ops",
                })
                .await?;
            Ok(serde_json::to_value(t).unwrap_or(Value::Null))
        })
    }
}
