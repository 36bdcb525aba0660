//! `run_backup` and `verify_dr`: the same runs as `POST /api/v1/dr/backups` and
//! `POST /api/v1/dr/verify`, through the ops protocol (admin of the system tenant).

use serde_json::{json, Value};

use super::Dr;
use crate::app::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};

fn service(ctx: &Ctx) -> ApiResult<Dr> {
    ctx.state
        .service::<Dr>()
        .ok_or_else(|| ApiError::Unavailable("the dr module is not running".into()))
}

fn spec(name: &str, aliases: &[&str], description: &str) -> VerbSpec {
    VerbSpec {
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        description: description.into(),
        args: json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
        // Both only add: a backup directory, a rehearsal report.
        risk: Risk::Low,
        min_role: Role::Admin,
        mutating: true,
    }
}

/// A DR verb: which job it runs and how its plan reads.
pub struct DrVerb {
    spec: VerbSpec,
    job: &'static str,
}

/// `run_backup`.
pub fn run_backup() -> DrVerb {
    DrVerb {
        spec: spec(
            "run_backup",
            &["backup_now", "dr_backup"],
            "Take an encrypted, consistent backup now (then retention runs)",
        ),
        job: super::backup::JOB,
    }
}

/// `verify_dr`.
pub fn verify_dr() -> DrVerb {
    DrVerb {
            spec: spec(
                "verify_dr",
                &["dr_verify", "restore_rehearsal"],
                "Rehearse a restore of the newest backup now (hashes, integrity, row counts, audit tree)",
            ),
            job: super::verify::JOB,
        }
}

impl Verb for DrVerb {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            ctx.caller()
                .require_system(
                    &ctx.state,
                    Role::Admin,
                    &format!("dr.{}", self.job),
                    "disaster recovery",
                )
                .await?;
            let dr = service(ctx)?;
            let key = dr.key().map_err(|e| ApiError::Conflict(format!("{e:#}")))?;
            let newest = dr.manifests().await?.into_iter().next();
            let engine = match ctx.state.store.dialect() {
                crate::store::Dialect::Sqlite => "SQLite VACUUM INTO a temporary file",
                crate::store::Dialect::Postgres => "pg_dump -Fc under an exported snapshot",
            };
            let (summary, steps, effects) = if self.job == super::backup::JOB {
                (
                    "Take a backup now".to_string(),
                    vec![
                        format!("Enqueue a run of job {} (any replica's workers may run it)", self.job),
                        format!("Snapshot the database while serving ({engine}); seal it, the redacted config and the data dir's key files with AES-256-GCM (key id {})", key.id()),
                        format!("Write manifest.json under {}/<id>/; then apply retention (keep daily {}, weekly {}, monthly {})",
                            dr.backups_dir().display(), dr.section().keep_daily, dr.section().keep_weekly, dr.section().keep_monthly),
                    ],
                    vec!["A new backup directory; backups outside the retention policy are deleted".to_string()],
                )
            } else {
                let target = newest.as_ref().map_or(
                    "(no backup yet: the rehearsal will FAIL)".to_string(),
                    |m| format!("backup {} of {}", m.id, m.created_at),
                );
                (
                    format!("Rehearse a restore of {target}"),
                    vec![
                        format!("Enqueue a run of job {}", self.job),
                        "Restore it into a scratch directory / database, checking every file's SHA-256 and decrypting it".into(),
                        "Run integrity checks, compare row counts, recompute the audit tree and match the manifest's head; then drop the scratch copy".into(),
                    ],
                    vec!["A rehearsal report (GET /api/v1/dr/verify); a FAIL raises a critical alert".to_string()],
                )
            };
            Ok(Planned {
                plan: Plan {
                    summary,
                    steps,
                    effects,
                },
                // A rehearsal is of the newest backup: a backup landing in between changes it.
                world: if self.job == super::backup::JOB {
                    json!({"job": self.job})
                } else {
                    json!({"job": self.job, "newest_backup": newest.map(|m| m.id)})
                },
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, _args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let dr = service(ctx)?;
            let (run_id, already_running) = super::api::enqueue(
                &ctx.state,
                &dr,
                self.job,
                &ctx.key_id,
                &ctx.request_id,
                "ops",
            )
            .await?;
            Ok(json!({
                "job": self.job,
                "run_id": run_id,
                "already_running": already_running,
                "follow": format!("GET /api/v1/jobs/runs?job={}; the DR tab shows the result", self.job),
            }))
        })
    }
}
