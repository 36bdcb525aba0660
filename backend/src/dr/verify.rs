//! The restore rehearsal (`dr_verify`, 02:45 UTC; `POST /api/v1/dr/verify`; `verify_dr`):
//! restore the newest backup for real into a scratch directory (SQLite) or a scratch
//! PostgreSQL database (created, restored, checked, dropped), check every hash and the
//! restored data ([`super::restore`]), store the report, and on FAIL raise an alert with
//! the last 50 lines of `dr.ndjson` through the alert outbox.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::restore::{self, Target, Tools};
use super::{Check, Dr, FileCheck, Manifest, Verdict, VerifyReport};
use crate::app::AppState;
use crate::store::Dialect;
use crate::util::{now_ms, random_id, rfc3339_ms};

pub const JOB: &str = "dr_verify";
/// Log lines an alert of a failed rehearsal carries.
const ALERT_LOG_LINES: usize = 50;

/// The `dr_verify` job. Every file and every check is an artifact of the run's error
/// ledger; each failure is a blocking ledger error, so a FAIL is a failed run (not
/// retried: the rehearsal itself worked and found a problem), with the report as result.
pub async fn run_job(ctx: crate::jobs::JobContext) -> anyhow::Result<Value> {
    let dr = ctx.state.require::<Dr>("jobs", "dr")?;
    let report = dr.rehearse(&ctx.state, ctx.trigger.as_str()).await?;
    ledger(&ctx.ledger, &report);
    Ok(super::to_json(&report))
}

/// Record a rehearsal in a run's error ledger.
pub fn ledger(l: &crate::jobs::Ledger, r: &VerifyReport) {
    use crate::jobs::LedgerError;
    l.add_total((r.files.len() + r.checks.len()) as u64);
    for f in &r.files {
        if f.ok {
            l.add_processed(1);
        } else {
            l.error(
                LedgerError::new(&f.name, "hash+decrypt", &f.detail)
                    .fix("the stored file changed or is gone: check the disk and the offsite copy; take a new backup (run_backup) and rehearse it")
                    .blocking(),
            );
        }
    }
    for c in &r.checks {
        if c.ok {
            l.add_processed(1);
        } else {
            l.error(
                LedgerError::new(format!("check:{}", c.name), "check", &c.detail)
                    .fix(match c.name.as_str() {
                        "key" => "configure the key the backup was taken with (ECHOPILOT_DR__KEY or [dr] key_file)",
                        "backup" => "take a backup first (run_backup), or set [dr] offsite_dir where this replica can read the backups",
                        "scratch_database" => "grant the server's PostgreSQL role CREATEDB",
                        _ => "the restored data does not match the manifest: keep this backup for analysis and take a new one",
                    })
                    .blocking(),
            );
        }
    }
}

struct Run {
    checks: Vec<Check>,
    files: Vec<FileCheck>,
    restore_ms: i64,
}

impl Dr {
    /// Rehearse a restore of the newest backup; the report is stored and returned.
    pub async fn rehearse(&self, state: &AppState, trigger: &str) -> anyhow::Result<VerifyReport> {
        let _busy = self.inner.busy.lock().await;
        self.sweep_interrupted();
        let started_ms = now_ms();
        let started = Instant::now();
        let id = random_id("drv_", 8);
        let newest = self.manifests().await?.into_iter().next();
        tracing::info!(target: "dr", verify_id = %id, backup_id = newest.as_ref().map(|m| m.id.as_str()).unwrap_or(""), trigger, "rehearsal started");
        let run = match &newest {
            None => Run {
                checks: vec![Check {
                    name: "backup".into(),
                    ok: false,
                    duration_ms: 0,
                    detail: "there is no backup to rehearse: run run_backup (or POST /api/v1/dr/backups) first".into(),
                }],
                files: Vec::new(),
                restore_ms: 0,
            },
            Some(m) => self.rehearse_one(m, &id).await,
        };
        let mut failures: Vec<String> = run
            .files
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.detail.clone())
            .collect();
        failures.extend(
            run.checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail)),
        );
        let report = VerifyReport {
            id: id.clone(),
            result: if failures.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            backup_id: newest.as_ref().map(|m| m.id.clone()),
            started_at: rfc3339_ms(started_ms),
            duration_ms: started.elapsed().as_millis() as i64,
            restore_ms: run.restore_ms,
            file_count: newest.as_ref().map_or(0, |m| m.files.len()),
            hashes_matching: run.files.iter().filter(|f| f.ok).count(),
            files: run.files,
            checks: run.checks,
            failures,
            trigger: trigger.into(),
        };
        self.record_verification(&report, started_ms).await?;
        metrics::counter!(super::VERIFICATIONS_TOTAL, "result" => report.result.as_str())
            .increment(1);
        self.refresh_gauges().await;
        match report.result {
            Verdict::Pass => {
                tracing::info!(target: "dr", verify_id = %id, backup_id = report.backup_id.as_deref().unwrap_or(""),
                result = "PASS", files = report.file_count, restore_ms = report.restore_ms, duration_ms = report.duration_ms, "rehearsal passed")
            }
            Verdict::Fail => {
                for f in &report.failures {
                    tracing::error!(target: "dr", verify_id = %id, failure = %f, "rehearsal check failed");
                }
                tracing::error!(target: "dr", verify_id = %id, backup_id = report.backup_id.as_deref().unwrap_or(""),
                    result = "FAIL", failures = report.failures.len(), "rehearsal failed");
                self.alert(state, &report).await;
            }
        }
        Ok(report)
    }

    async fn rehearse_one(&self, m: &Manifest, id: &str) -> Run {
        let mut checks = Vec::new();
        let fail = |checks: &mut Vec<Check>, name: &str, detail: String| {
            checks.push(Check {
                name: name.into(),
                ok: false,
                duration_ms: 0,
                detail,
            });
        };
        let Some(from) = self.locate(&m.id) else {
            fail(
                &mut checks,
                "backup",
                format!(
                    "backup {} is not on this replica ({}) nor in [dr] offsite_dir",
                    m.id,
                    self.backups_dir().join(&m.id).display()
                ),
            );
            return Run {
                checks,
                files: Vec::new(),
                restore_ms: 0,
            };
        };
        // The manifest on disk must be the one recorded at backup time.
        match super::read_manifest(&from) {
            Ok(disk) if &disk == m => {}
            Ok(_) => fail(
                &mut checks,
                "manifest",
                "manifest.json differs from the manifest recorded at backup time".into(),
            ),
            Err(e) => fail(&mut checks, "manifest", format!("{e:#}")),
        }
        let key = match self.key() {
            Ok(k) => k,
            Err(e) => {
                fail(&mut checks, "key", format!("{e:#}"));
                return Run {
                    checks,
                    files: Vec::new(),
                    restore_ms: 0,
                };
            }
        };
        if let Err(e) = restore::check_key(m, &key) {
            fail(&mut checks, "key", e);
            return Run {
                checks,
                files: Vec::new(),
                restore_ms: 0,
            };
        }
        let scratch_dir = self.backups_dir().join(format!(".rehearsal-{id}"));
        let mut scratch_db: Option<(String, String)> = None;
        let target = match self.store().dialect() {
            Dialect::Sqlite => Target::Sqlite {
                dir: scratch_dir.clone(),
            },
            Dialect::Postgres => {
                let name = format!("ep_drverify_{}", random_id("", 6));
                if let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(self.store().writer())
                    .await
                {
                    fail(&mut checks, "scratch_database", format!(
                        "cannot create scratch database {name} (the server's role needs CREATEDB): {e}"
                    ));
                    return Run {
                        checks,
                        files: Vec::new(),
                        restore_ms: 0,
                    };
                }
                let url = crate::store::with_database(self.store().url(), &name);
                scratch_db = Some((name, url.clone()));
                Target::Postgres {
                    url,
                    dir: scratch_dir.clone(),
                }
            }
        };
        let tools = Tools {
            pg_restore: self.section().pg_restore.clone(),
        };
        let (files, restore_ms) = match restore::restore(&from, m, &key, &target, &tools).await {
            Ok(r) => (r.files, r.restore_ms),
            Err(e) => {
                fail(&mut checks, "restore", format!("{e:#}"));
                (Vec::new(), 0)
            }
        };
        let db_ok = files.iter().any(|f| {
            f.ok && m
                .files
                .iter()
                .any(|e| e.name == f.name && e.kind == "database")
        });
        if db_ok {
            checks.extend(restore::check_restored(&target.database_url(), m).await);
        } else {
            fail(
                &mut checks,
                "database",
                "the database file did not restore; no data checks ran".into(),
            );
        }
        // Scratch data goes, whatever the result.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        if let Some((name, _)) = scratch_db {
            if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(self.store().writer())
                .await
            {
                tracing::error!(target: "dr", database = %name, error = %e, "could not drop the scratch database");
            }
        }
        Run {
            checks,
            files,
            restore_ms,
        }
    }

    /// Raise the FAIL alert (alerts module on), carrying the newest lines of `dr.ndjson`.
    async fn alert(&self, state: &AppState, r: &VerifyReport) {
        let Some(alerts) = crate::alerts::area::service(state) else {
            tracing::warn!(target: "dr", verify_id = %r.id, "alerts module is off: rehearsal FAIL not alerted");
            return;
        };
        // Give the non-blocking log writer a moment to put this run's lines on disk.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let lines = crate::ops::verbs::tail_logs::newest_lines(
            &self.config().logs_dir(),
            "dr",
            ALERT_LOG_LINES,
        );
        let message = format!(
            "Restore rehearsal {} of backup {} FAILED:\n{}\n\nLast {} lines of dr.ndjson:\n{}",
            r.id,
            r.backup_id.as_deref().unwrap_or("(none)"),
            r.failures.join("\n"),
            lines.len(),
            lines.join("\n")
        );
        let alert = crate::alerts::NewAlert {
            key: format!(
                "dr.verify_failed:{}",
                r.backup_id.as_deref().unwrap_or("none")
            ),
            severity: crate::alerts::Severity::Critical,
            title: "DR restore rehearsal FAILED".into(),
            message,
        };
        if let Err(e) = alerts.raise(self.store(), alert).await {
            tracing::error!(target: "dr", verify_id = %r.id, error = %format!("{e:#}"), "could not raise the rehearsal alert");
        }
    }
}

/// Where a CLI restore may write: refuses a non-empty dir, or one a server seems to be
/// using, unless `force`.
pub fn check_target_dir(dir: &Path, force: bool) -> Result<(), String> {
    let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    if force || entries.is_empty() {
        return Ok(());
    }
    let in_use = ["echopilot.db-wal", "echopilot.db-shm"]
        .iter()
        .any(|n| dir.join(n).exists());
    if in_use {
        return Err(format!(
            "{} looks in use (echopilot.db-wal/-shm present: a server may be running on it); stop it and choose an empty directory, or pass --force to overwrite",
            dir.display()
        ));
    }
    Err(format!(
        "{} is not empty ({} entries); restore into a new directory, or pass --force to overwrite",
        dir.display(),
        entries.len()
    ))
}
