//! The `dr` module: its config section, jobs, verbs, summary and telemetry probe.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, Dr, DrKey};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Light, Probe};
use crate::config::{ConfigError, ConfigMap};

/// `[dr]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrSection {
    /// The backup key itself (64 hex digits or base64 of 32 bytes); normally from the
    /// environment (`ECHOPILOT_DR__KEY`). Secret: never logged, never in a backup.
    pub key: String,
    /// A file holding the key (used when `key` is empty).
    pub key_file: String,
    /// `pg_dump` to run (at least the server's major version).
    pub pg_dump: String,
    /// `pg_dump --compress` level, 0..9. 1 (default): measured 2.6x faster than pg_dump's
    /// own default (6) for a 2.6% larger dump (docs/DR.md, benchmarks); 0: no compression.
    pub pg_dump_compress: u64,
    /// `pg_restore` to run (rehearsals and `echopilot restore --database-url`).
    pub pg_restore: String,
    /// Also copy each backup here (another disk, a mounted bucket); empty: no copy.
    pub offsite_dir: String,
    /// Retention (restic `forget`): newest backup of each of the last N days/weeks/months.
    pub keep_daily: u64,
    pub keep_weekly: u64,
    pub keep_monthly: u64,
    /// Recovery point objective: the newest verified backup older than this is red. Keep
    /// it above the `backup` job's interval (`[jobs.backup] schedule`).
    pub rpo_minutes: u64,
}

impl std::fmt::Debug for DrSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrSection")
            .field(
                "key",
                &if self.key.is_empty() {
                    ""
                } else {
                    "[REDACTED]"
                },
            )
            .field("key_file", &self.key_file)
            .field("offsite_dir", &self.offsite_dir)
            .finish_non_exhaustive()
    }
}

impl Default for DrSection {
    fn default() -> Self {
        DrSection {
            key: String::new(),
            key_file: String::new(),
            pg_dump: "pg_dump".into(),
            pg_dump_compress: 1,
            pg_restore: "pg_restore".into(),
            offsite_dir: String::new(),
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            // Nightly backups plus the rehearsal an hour later and some slack.
            rpo_minutes: 26 * 60,
        }
    }
}

impl DrSection {
    pub fn load(raw: &ConfigMap) -> Result<DrSection, ConfigError> {
        let s: DrSection = raw.section("dr")?;
        raw.check_range("dr.keep_daily", s.keep_daily, 0, 1000)?;
        raw.check_range("dr.keep_weekly", s.keep_weekly, 0, 1000)?;
        raw.check_range("dr.keep_monthly", s.keep_monthly, 0, 1000)?;
        raw.check_range("dr.pg_dump_compress", s.pg_dump_compress, 0, 9)?;
        raw.check_range("dr.rpo_minutes", s.rpo_minutes, 1, 366 * 24 * 60)?;
        if !s.key.trim().is_empty() {
            // The message never echoes the value.
            DrKey::parse(&s.key).map_err(|m| raw.error("dr.key", m))?;
        }
        for (k, v) in [("dr.pg_dump", &s.pg_dump), ("dr.pg_restore", &s.pg_restore)] {
            if v.trim().is_empty() {
                return Err(raw.error(k, "must name a program (a path or a name on PATH)"));
            }
        }
        Ok(s)
    }

    /// The key from `[dr] key` / `ECHOPILOT_DR__KEY`, else `[dr] key_file`.
    pub fn key(&self) -> anyhow::Result<DrKey> {
        if !self.key.trim().is_empty() {
            return DrKey::parse(&self.key).map_err(|m| anyhow::anyhow!("dr.key: {m}"));
        }
        if self.key_file.trim().is_empty() {
            anyhow::bail!(
                "no backup key: set ECHOPILOT_DR__KEY (32 bytes as 64 hex digits or base64, e.g. `openssl rand -hex 32`) or [dr] key_file; keep it outside the data dir, it is never put in a backup"
            );
        }
        let text = std::fs::read_to_string(self.key_file.trim()).map_err(|e| {
            anyhow::anyhow!("dr.key_file: cannot read {}: {e}", self.key_file.trim())
        })?;
        DrKey::parse(&text)
            .map_err(|m| anyhow::anyhow!("dr.key_file {}: {m}", self.key_file.trim()))
    }

    pub fn policy(&self) -> super::retention::Policy {
        super::retention::Policy {
            daily: self.keep_daily as u32,
            weekly: self.keep_weekly as u32,
            monthly: self.keep_monthly as u32,
        }
    }
}

pub struct DrArea;

impl Area for DrArea {
    fn name(&self) -> &'static str {
        "dr"
    }
    fn about(&self) -> &'static str {
        "disaster recovery: encrypted consistent backups, nightly restore rehearsals, measured RPO/RTO"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["dr_backups", "dr_verifications"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["dr"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        DrSection::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list_backups, api::start_backup))
            .routes(routes!(api::latest_verify, api::start_verify))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let dr = Dr::new(state.store.clone(), state.cfg.clone())?;
            dr.sweep_interrupted();
            dr.refresh_gauges().await;
            state.provide(dr);
            Ok(())
        })
    }
    fn jobs(&self, _state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        reg.register(
            super::backup::JOB,
            "0 30 2 * * *",
            crate::jobs::handler(|ctx| async move { super::backup::run_job(ctx).await }),
        )
        .timeout(std::time::Duration::from_secs(6 * 3600))
        .max_attempts(2)
        .run_role(crate::model::Role::Admin)
        .describe("nightly: consistent encrypted backup (VACUUM INTO / pg_dump) with its manifest, then retention");
        reg.register(
            super::verify::JOB,
            "0 45 2 * * *",
            crate::jobs::handler(|ctx| async move { super::verify::run_job(ctx).await }),
        )
        .timeout(std::time::Duration::from_secs(6 * 3600))
        .max_attempts(1)
        .run_role(crate::model::Role::Admin)
        .describe("nightly: restore rehearsal of the newest backup (hashes, integrity, row counts, audit tree); FAIL alerts");
        Ok(())
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        vec![
            Arc::new(super::verb::run_backup()),
            Arc::new(super::verb::verify_dr()),
        ]
    }
    fn evidence(&self) -> Vec<Arc<dyn crate::area::Evidence>> {
        vec![Arc::new(super::compliance::DrEvidence)]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(DrSummary))
    }
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![Arc::new(DrProbe)]
    }
}

/// Status-summary section `dr`: backups, last backup age, last rehearsal, RPO.
struct DrSummary;

impl SummaryProvider for DrSummary {
    fn area(&self) -> &'static str {
        "dr"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let dr = state.require::<Dr>("status", "dr")?;
            let s = dr.status().await?;
            Ok(serde_json::to_value(&s)?)
        })
    }
}

/// Telemetry component `dr`: red when the newest verified backup is older than the RPO
/// or the newest rehearsal failed, yellow past half the RPO.
struct DrProbe;

impl Probe for DrProbe {
    fn name(&self) -> &'static str {
        "dr"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>> {
        Box::pin(async move {
            let dr = state.require::<Dr>("telemetry", "dr")?;
            let s = dr.status().await?;
            let light = match s.light {
                "green" => Light::Green,
                "yellow" => Light::Yellow,
                _ => Light::Red,
            };
            Ok((light, json!(s)))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let dr = state.require::<Dr>("telemetry", "dr")?;
            let s = dr.status().await?;
            match s.light {
                "green" => Ok(s.reason),
                _ => Ok(format!("degraded: {}", s.reason)),
            }
        })
    }
}
