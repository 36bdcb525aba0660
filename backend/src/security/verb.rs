//! `run_scan`: the same run as `POST /api/v1/security/scan`, through the ops protocol
//! (operator of the system tenant).

use serde_json::{json, Value};

use super::Security;
use crate::app::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};

pub struct RunScan {
    spec: VerbSpec,
}

impl RunScan {
    pub fn new() -> RunScan {
        RunScan {
            spec: VerbSpec {
                name: "run_scan".into(),
                aliases: vec!["security_scan".into(), "scan_now".into()],
                description: "Scan [security] paths now for secrets and vulnerable packages; writes a report and its SBOM".into(),
                args: json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
                // Reads files and adds a report.
                risk: Risk::Low,
                min_role: Role::Operator,
                mutating: true,
            },
        }
    }
}

impl Default for RunScan {
    fn default() -> Self {
        Self::new()
    }
}

fn service(ctx: &Ctx) -> ApiResult<Security> {
    ctx.state
        .service::<Security>()
        .ok_or_else(|| ApiError::Unavailable("the security module is not running".into()))
}

impl Verb for RunScan {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            ctx.caller()
                .require_system(
                    &ctx.state,
                    Role::Operator,
                    "security.scan",
                    "the security scanner",
                )
                .await?;
            let sec = service(ctx)?;
            let s = sec.section();
            let opts = sec.options("ops", "");
            let targets = if s.paths.is_empty() {
                "no targets: [security] paths is empty, the report will be empty".to_string()
            } else {
                s.paths.join(", ")
            };
            Ok(Planned {
                plan: Plan {
                    summary: format!("Scan {targets}"),
                    steps: vec![
                        format!("Enqueue a run of job {} (any replica's workers may run it)", super::JOB),
                        format!(
                            "Walk the targets (skipping {}), search every file under {} bytes with {} secret rules; read the lockfiles",
                            s.exclude_dirs.join(", "),
                            s.max_file_bytes,
                            super::rules::RULES.len()
                        ),
                        if s.git_history {
                            format!(
                                "Search the git history of targets that are repositories: the lines each of the newest {} commits added (at most {} bytes of patches)",
                                s.git_max_commits, s.git_max_bytes
                            )
                        } else {
                            "Git history not searched ([security] git_history = false)".to_string()
                        },
                        format!("Match the packages against the OSV files in {}", opts.osv_dir.display()),
                    ],
                    effects: vec![
                        "A report in the history (GET /api/v1/security/reports/latest) and backups/security/security_report.json; unreadable files in the run's error ledger".into(),
                        "An alert through the alert channels when anything is found".into(),
                    ],
                },
                world: json!({"job": super::JOB, "targets": s.paths}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            service(ctx)?;
            let (run_id, already_running) = super::api::enqueue(
                &ctx.state,
                &ctx.key_id,
                &ctx.request_id,
                "ops",
                &super::api::ScanRequest::default(),
            )
            .await?;
            Ok(json!({
                "job": super::JOB,
                "run_id": run_id,
                "report_id": super::report_id_for_run(&run_id),
                "already_running": already_running,
                "follow": "GET /api/v1/security/reports/latest; the Security tab shows the result",
            }))
        })
    }
}
