//! The `security` module: its config section, job, verb, summary and telemetry probe.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::history::GitOptions;
use super::scan::{AllowlistSpec, ScanOptions};
use super::{api, Security};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Light, Probe};
use crate::config::{Config, ConfigError, ConfigMap};

/// A list given as a TOML array or, from the environment, one string separated by commas.
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        One(String),
        Many(Vec<String>),
    }
    Ok(match L::deserialize(d)? {
        L::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        L::Many(v) => v,
    })
}

/// `[security]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySection {
    /// Files and directories to scan (`ECHOPILOT_SECURITY__PATHS=a,b`).
    #[serde(deserialize_with = "list")]
    pub paths: Vec<String>,
    /// Directory names never entered.
    #[serde(deserialize_with = "list")]
    pub exclude_dirs: Vec<String>,
    /// Larger files are not searched for secrets (lockfiles are always read).
    pub max_file_bytes: u64,
    /// The OSV database (JSON files and per-ecosystem `all.zip`); empty: `<data-dir>/osv`.
    pub osv_dir: String,
    /// Allowlist: regexes over paths relative to a target.
    #[serde(deserialize_with = "list")]
    pub allow_paths: Vec<String>,
    /// Allowlist: regexes over a secret or its line.
    #[serde(deserialize_with = "list")]
    pub allow_regexes: Vec<String>,
    /// Allowlist: finding fingerprints accepted as they are.
    #[serde(deserialize_with = "list")]
    pub allow_fingerprints: Vec<String>,
    /// Scan threads (0: one per core).
    pub threads: u64,
    /// A last scan older than this is yellow, twice as old red.
    pub stale_days: u64,
    /// Reports kept per tenant (history).
    pub keep_reports: u64,
    /// Also search the git history of directory targets that are repositories: the lines
    /// each commit added (see `security::history`).
    pub git_history: bool,
    /// Newest commits searched per repository, at most.
    pub git_max_commits: u64,
    /// Patch bytes read per repository, at most.
    pub git_max_bytes: u64,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            paths: Vec::new(),
            exclude_dirs: [".git", "target", "node_modules", ".venv", "__pycache__"]
                .map(String::from)
                .to_vec(),
            max_file_bytes: 10 * 1024 * 1024,
            osv_dir: String::new(),
            allow_paths: Vec::new(),
            allow_regexes: Vec::new(),
            allow_fingerprints: Vec::new(),
            threads: 0,
            // The job is weekly: a week and a day of slack.
            stale_days: 8,
            keep_reports: 100,
            git_history: false,
            git_max_commits: GitOptions::default().max_commits,
            git_max_bytes: GitOptions::default().max_bytes,
        }
    }
}

impl SecuritySection {
    pub fn load(raw: &ConfigMap) -> Result<SecuritySection, ConfigError> {
        let s: SecuritySection = raw.section("security")?;
        raw.check_range("security.max_file_bytes", s.max_file_bytes, 1, 1 << 34)?;
        raw.check_range("security.threads", s.threads, 0, 64)?;
        raw.check_range("security.stale_days", s.stale_days, 1, 3650)?;
        raw.check_range("security.keep_reports", s.keep_reports, 1, 100_000)?;
        raw.check_range("security.git_max_commits", s.git_max_commits, 1, 10_000_000)?;
        raw.check_range("security.git_max_bytes", s.git_max_bytes, 1, 1 << 40)?;
        super::scan::Allowlist::compile(&s.allowlist())
            .map_err(|m| raw.error("security.allow_regexes", m))?;
        Ok(s)
    }

    pub fn allowlist(&self) -> AllowlistSpec {
        AllowlistSpec {
            paths: self.allow_paths.clone(),
            regexes: self.allow_regexes.clone(),
            fingerprints: self.allow_fingerprints.clone(),
        }
    }

    pub fn osv_dir(&self, cfg: &Config) -> PathBuf {
        if self.osv_dir.trim().is_empty() {
            cfg.data_dir.join("osv")
        } else {
            PathBuf::from(self.osv_dir.trim())
        }
    }

    pub fn options(&self, cfg: &Config, trigger: &str, run_id: &str) -> ScanOptions {
        ScanOptions {
            targets: self.paths.iter().map(PathBuf::from).collect(),
            exclude_dirs: self.exclude_dirs.clone(),
            max_file_bytes: self.max_file_bytes,
            allowlist: self.allowlist(),
            osv_dir: self.osv_dir(cfg),
            threads: self.threads as usize,
            git: GitOptions {
                enabled: self.git_history,
                max_commits: self.git_max_commits,
                max_bytes: self.git_max_bytes,
            },
            trigger: trigger.into(),
            run_id: run_id.into(),
        }
    }
}

pub struct SecurityArea;

impl Area for SecurityArea {
    fn name(&self) -> &'static str {
        "security"
    }
    fn about(&self) -> &'static str {
        "security scanner: secrets, lockfile packages against an offline OSV database, CycloneDX SBOM"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["security_reports"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        // Shared with the keys area's security events (one file for the security log).
        &["security"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        SecuritySection::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::start_scan))
            .routes(routes!(api::list_reports))
            .routes(routes!(api::latest_report))
            .routes(routes!(api::get_report))
            .routes(routes!(api::get_sbom))
            .routes(routes!(api::status))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let s = Security::new(state.store.clone(), state.cfg.clone())?;
            s.refresh_gauges().await;
            state.provide(s);
            Ok(())
        })
    }
    fn jobs(&self, _state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        reg.register(
            super::JOB,
            "0 20 1 * * Mon",
            crate::jobs::handler(|ctx| async move { run_job(ctx).await }),
        )
        .timeout(std::time::Duration::from_secs(3600))
        .max_attempts(2)
        .describe("weekly: scan [security] paths for secrets and vulnerable packages (offline OSV), write the report and SBOM; findings alert");
        Ok(())
    }
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        vec![Arc::new(super::verb::RunScan::new())]
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(SecuritySummary))
    }
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![Arc::new(SecurityProbe)]
    }
    fn evidence(&self) -> Vec<Arc<dyn crate::area::Evidence>> {
        vec![Arc::new(super::evidence::SecurityEvidence)]
    }
}

/// The `security_scan` job: unreadable files are errors in the run's ledger (the run
/// still succeeds and its report lists them).
/// A run asked for with arguments (`POST /api/v1/security/scan` with a body) scans those
/// (checked again: the configuration may have changed since).
async fn run_job(ctx: crate::jobs::JobContext) -> anyhow::Result<Value> {
    let sec = ctx.state.require::<Security>("jobs", "security")?;
    let req: super::api::ScanRequest = if ctx.args.is_null() {
        Default::default()
    } else {
        serde_json::from_value(ctx.args.clone())
            .map_err(|e| anyhow::anyhow!("the run's arguments: {e}"))?
    };
    let req = req
        .check(&sec.section().paths)
        .map_err(anyhow::Error::msg)?;
    let r = sec
        .scan_and_store(
            &ctx.state,
            ctx.trigger.as_str(),
            &ctx.run_id,
            Some(&ctx.ledger),
            &req,
        )
        .await?;
    Ok(super::job_result(&r))
}

/// Status-summary section `security`.
struct SecuritySummary;

impl SummaryProvider for SecuritySummary {
    fn area(&self) -> &'static str {
        "security"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let s = state.require::<Security>("status", "security")?;
            Ok(serde_json::to_value(s.status_for(tenant).await?)?)
        })
    }
}

/// Telemetry component `security` (see [`Security::status`] for the light).
struct SecurityProbe;

impl Probe for SecurityProbe {
    fn name(&self) -> &'static str {
        "security"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>> {
        Box::pin(async move {
            let s = state.require::<Security>("telemetry", "security")?;
            let st = s.status_for(tenant).await?;
            let light = match st.light.as_str() {
                "green" => Light::Green,
                "yellow" => Light::Yellow,
                _ => Light::Red,
            };
            Ok((light, json!(st)))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let s = state.require::<Security>("telemetry", "security")?;
            let st = s.status(crate::auth::DEFAULT_TENANT).await?;
            match st.light.as_str() {
                "green" => Ok(st.reason),
                _ => Ok(format!("degraded: {}", st.reason)),
            }
        })
    }
}
