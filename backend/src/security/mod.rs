//! The security scanner: secrets (gitleaks-breadth rules, keyword prefilter, entropy,
//! allowlist), packages from lockfiles, offline OSV matching, a CycloneDX SBOM. See
//! `docs/SECURITY.md`.
//!
//! - [`rules`]: the rule set and the detector; [`samples`]: fake secrets built at run
//!   time for tests and the benchmark.
//! - [`scan`]: one scan over the targets (blocking; threads per core).
//! - [`lockfiles`], [`osv`], [`sbom`]: packages, advisories, the BOM.
//! - The weekly `security_scan` job (and `POST /api/v1/security/scan`, the `run_scan`
//!   verb) runs a scan of `[security] paths`; unreadable files are errors in the run's
//!   ledger. The report is stored in `security_reports` (history) and written to
//!   `<data-dir>/backups/security/security_report.json`; findings raise an alert through
//!   the alert outbox (Telegram and the other channels).
//!
//! Scans are fleet-level (they read the server's own files): started by operators of the
//! system tenant `default`, and their reports belong to that tenant.

pub mod api;
pub mod area;
pub mod evidence;
pub mod history;
pub mod lockfiles;
pub mod model;
pub mod osv;
pub mod rules;
pub mod samples;
pub mod sbom;
pub mod scan;
pub mod verb;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use sqlx::Row as _;

use crate::app::AppState;
use crate::config::Config;
use crate::jobs::Ledger;
use crate::store::{in_table, Json, Store};
use crate::util::{now_ms, rfc3339_ms};
pub use area::SecuritySection;
pub use model::{Counts, Report, ReportInfo, SecurityStatus, Severity};

pub const JOB: &str = "security_scan";
pub const SCANS_TOTAL: &str = "echopilot_security_scans_total";
pub const FINDINGS: &str = "echopilot_security_findings";
pub const LAST_SCAN_TS: &str = "echopilot_security_last_scan_timestamp_seconds";
pub const SCAN_DURATION: &str = "echopilot_security_scan_duration_seconds";
pub const BYTES_SCANNED: &str = "echopilot_security_bytes_scanned_total";

/// The report file beside the backups.
pub fn report_file(cfg: &Config) -> PathBuf {
    cfg.data_dir
        .join("backups")
        .join("security")
        .join("security_report.json")
}

/// The report id of a job run (so `POST /scan` can name it before it exists).
pub fn report_id_for_run(run_id: &str) -> String {
    format!("scan_{}", run_id.trim_start_matches("run_"))
}

/// The security service.
#[derive(Clone)]
pub struct Security {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cfg: Config,
    section: SecuritySection,
}

crate::service_from_ref!(Security);

impl Security {
    pub fn new(store: Store, cfg: Config) -> anyhow::Result<Security> {
        let section = SecuritySection::load(&cfg.raw).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Security {
            inner: Arc::new(Inner {
                store,
                cfg,
                section,
            }),
        })
    }

    pub fn section(&self) -> &SecuritySection {
        &self.inner.section
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The scan options of `[security]`.
    pub fn options(&self, trigger: &str, run_id: &str) -> scan::ScanOptions {
        self.inner.section.options(&self.inner.cfg, trigger, run_id)
    }

    /// Run a scan of the configured targets (or those `req` picks), store and publish its
    /// report (job handler).
    pub async fn scan_and_store(
        &self,
        state: &AppState,
        trigger: &str,
        run_id: &str,
        ledger: Option<&Ledger>,
        req: &api::ScanRequest,
    ) -> anyhow::Result<Report> {
        let mut opts = self.options(trigger, run_id);
        if let Some(paths) = &req.paths {
            opts.targets = paths.iter().map(PathBuf::from).collect();
        }
        if let Some(h) = req.git_history {
            opts.git.enabled = h;
        }
        let ledger_c = ledger.cloned();
        let started = std::time::Instant::now();
        let res = tokio::task::spawn_blocking(move || scan::run(&opts, ledger_c.as_ref())).await?;
        let mut report = match res {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!(SCANS_TOTAL, "outcome" => "failed").increment(1);
                return Err(e);
            }
        };
        if !run_id.is_empty() {
            report.id = report_id_for_run(run_id);
        }
        self.insert(crate::auth::DEFAULT_TENANT, &report).await?;
        if let Err(e) = self.write_file(&report) {
            tracing::error!(target: "security", report_id = %report.id, error = %format!("{e:#}"), "could not write the report file");
        }
        metrics::counter!(SCANS_TOTAL, "outcome" => "ok").increment(1);
        metrics::histogram!(SCAN_DURATION).record(started.elapsed().as_secs_f64());
        metrics::counter!(BYTES_SCANNED).increment(report.counts.bytes_scanned);
        self.set_gauges(&report.counts, report.created_at_ms);
        let c = &report.counts;
        tracing::info!(target: "security", report_id = %report.id, job_run_id = %run_id, trigger, duration_ms = report.duration_ms,
            files = c.files_scanned, bytes = c.bytes_scanned, secrets = c.secrets, vulnerabilities = c.vulnerabilities,
            packages = c.packages, errors = c.errors, critical = c.critical, high = c.high, "scan finished");
        if c.issues() > 0 {
            self.alert(state, &report).await;
        }
        self.prune().await;
        Ok(report)
    }

    fn set_gauges(&self, c: &Counts, at_ms: i64) {
        for (sev, n) in [
            ("critical", c.critical),
            ("high", c.high),
            ("medium", c.medium),
            ("low", c.low),
            ("unknown", c.unknown),
        ] {
            metrics::gauge!(FINDINGS, "severity" => sev).set(n as f64);
        }
        metrics::gauge!(FINDINGS, "severity" => "secrets").set(c.secrets as f64);
        metrics::gauge!(FINDINGS, "severity" => "vulnerabilities").set(c.vulnerabilities as f64);
        metrics::gauge!(LAST_SCAN_TS).set(at_ms as f64 / 1000.0);
    }

    /// Gauges from the newest stored report (start-up).
    pub async fn refresh_gauges(&self) {
        if let Ok(Some(r)) = self.latest_info(crate::auth::DEFAULT_TENANT).await {
            self.set_gauges(&r.counts, r.created_at_ms);
        }
    }

    fn write_file(&self, r: &Report) -> anyhow::Result<()> {
        let path = report_file(&self.inner.cfg);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(r)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    async fn alert(&self, state: &AppState, r: &Report) {
        let Some(alerts) = crate::alerts::area::service(state) else {
            tracing::warn!(target: "security", report_id = %r.id, "alerts module is off: findings not alerted");
            return;
        };
        let c = &r.counts;
        let mut lines = vec![format!(
            "Security scan {}: {} secret(s), {} vulnerable package version(s) in {} package(s); critical {}, high {}, medium {}, low {}, unknown {}; {} unreadable file(s).",
            r.id, c.secrets, c.vulnerabilities, c.packages, c.critical, c.high, c.medium, c.low, c.unknown, c.errors
        )];
        for s in r.secrets.iter().take(5) {
            lines.push(format!(
                "secret {} {} {}:{} {}",
                s.severity, s.rule, s.file, s.line, s.redacted
            ));
        }
        for v in r.vulnerabilities.iter().take(5) {
            lines.push(format!(
                "vuln {} {} {}@{} fixed in {}",
                v.severity,
                v.id,
                v.package,
                v.version,
                if v.fixed.is_empty() {
                    "-".into()
                } else {
                    v.fixed.join(", ")
                }
            ));
        }
        lines.push(
            "GET /api/v1/security/reports/latest or the console's Security tab has the rest."
                .into(),
        );
        let severe = c.critical + c.high > 0 || c.secrets > 0;
        let alert = crate::alerts::NewAlert {
            key: "security.findings".into(),
            severity: if severe {
                crate::alerts::Severity::Critical
            } else {
                crate::alerts::Severity::Warning
            },
            title: format!("Security scan: {} issue(s)", c.issues()),
            message: lines.join("\n"),
        };
        if let Err(e) = alerts.raise(self.store(), alert).await {
            tracing::error!(target: "security", report_id = %r.id, error = %format!("{e:#}"), "could not raise the findings alert");
        }
    }

    async fn insert(&self, tenant: &str, r: &Report) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO security_reports (id, tenant_id, run_id, created_at, duration_ms, trigger, counts, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.id)
        .bind(tenant)
        .bind(&r.run_id)
        .bind(r.created_at_ms)
        .bind(r.duration_ms)
        .bind(&r.trigger)
        .bind(Json(&r.counts))
        .bind(Json(r))
        .execute(self.store().writer())
        .await?;
        Ok(())
    }

    /// Keep the newest `[security] keep_reports` reports of each tenant.
    async fn prune(&self) {
        let keep = self.inner.section.keep_reports as i64;
        let r = sqlx::query(
            "DELETE FROM security_reports WHERE id IN (SELECT id FROM security_reports r WHERE (SELECT COUNT(*) FROM security_reports n WHERE n.tenant_id = r.tenant_id AND n.created_at > r.created_at) >= $1)",
        )
        .bind(keep)
        .execute(self.store().writer())
        .await;
        if let Err(e) = r {
            tracing::warn!(target: "security", error = %e, "could not prune old reports");
        }
    }

    /// A stored report of `tenant`.
    pub async fn get(&self, tenant: &str, id: &str) -> anyhow::Result<Option<Report>> {
        let row: Option<(Json<Report>,)> =
            sqlx::query_as("SELECT report FROM security_reports WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(self.store().reader())
                .await
                .map_err(in_table("security_reports", Some(&id)))?;
        Ok(row.map(|r| r.0 .0))
    }

    /// Reports of `tenant` created in `[from_ms, to_ms]`, oldest first (evidence bundles).
    pub async fn between(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<Vec<Report>> {
        let rows: Vec<(String, Json<Report>)> = sqlx::query_as(
            "SELECT id, report FROM security_reports WHERE tenant_id = $1 AND created_at >= $2 AND created_at <= $3 ORDER BY created_at, id",
        )
        .bind(tenant)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.store().reader())
        .await
        .map_err(in_table("security_reports", None))?;
        Ok(rows.into_iter().map(|r| r.1 .0).collect())
    }

    /// The newest report of `tenant`.
    pub async fn latest(&self, tenant: &str) -> anyhow::Result<Option<Report>> {
        let row: Option<(String, Json<Report>)> = sqlx::query_as(
            "SELECT id, report FROM security_reports WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(self.store().reader())
        .await
        .map_err(in_table("security_reports", None))?;
        Ok(row.map(|r| r.1 .0))
    }

    /// Reports of `tenant`, newest first, without their findings.
    pub async fn list(&self, tenant: &str, limit: i64) -> anyhow::Result<Vec<ReportInfo>> {
        let rows = sqlx::query(
            "SELECT id, run_id, created_at, duration_ms, trigger, counts FROM security_reports WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(self.store().reader())
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let counts: Json<Counts> = row
                .try_get("counts")
                .map_err(in_table("security_reports", Some(&id)))?;
            out.push(ReportInfo {
                run_id: row.try_get("run_id")?,
                created_at: rfc3339_ms(row.try_get("created_at")?),
                duration_ms: row.try_get("duration_ms")?,
                trigger: row.try_get("trigger")?,
                counts: counts.0,
                id,
            });
        }
        Ok(out)
    }

    async fn latest_info(&self, tenant: &str) -> anyhow::Result<Option<LatestInfo>> {
        let row = sqlx::query(
            "SELECT id, created_at, duration_ms, counts FROM security_reports WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(self.store().reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let counts: Json<Counts> = row
            .try_get("counts")
            .map_err(in_table("security_reports", Some(&id)))?;
        Ok(Some(LatestInfo {
            created_at_ms: row.try_get("created_at")?,
            duration_ms: row.try_get("duration_ms")?,
            counts: counts.0,
            id,
        }))
    }

    async fn count(&self, tenant: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM security_reports WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(self.store().reader())
                .await?,
        )
    }

    /// The status a tenant sees: the system tenant its own (the fleet's scans); another
    /// tenant the fleet's light and reason only (no ids, paths or counts of the server's
    /// files), so its telemetry is not yellow for want of scans of its own.
    pub async fn status_for(&self, tenant: &str) -> anyhow::Result<SecurityStatus> {
        let mut s = self.status(crate::auth::DEFAULT_TENANT).await?;
        if tenant != crate::auth::DEFAULT_TENANT {
            s.last_report_id = None;
            s.counts = None;
            s.targets = Vec::new();
            s.reports = self.count(tenant).await?;
            s.reason = format!("fleet scan: {}", s.reason);
        }
        Ok(s)
    }

    /// The light: red for any secret or critical/high vulnerability or a scan older than
    /// twice `stale_days`; yellow for medium/low/unknown ones, unreadable files, no scan
    /// yet or a scan older than `stale_days`; else green.
    pub async fn status(&self, tenant: &str) -> anyhow::Result<SecurityStatus> {
        let s = &self.inner.section;
        let latest = self.latest_info(tenant).await?;
        let reports = self.count(tenant).await?;
        let stale_ms = s.stale_days as i64 * 86_400_000;
        let (light, reason) = match &latest {
            None => (
                "yellow",
                "no scan yet: run_scan, or wait for the weekly security_scan job".to_string(),
            ),
            Some(l) => {
                let age = now_ms() - l.created_at_ms;
                let c = &l.counts;
                if c.secrets > 0 {
                    (
                        "red",
                        format!("{} secret(s) found in the last scan", c.secrets),
                    )
                } else if c.critical + c.high > 0 {
                    (
                        "red",
                        format!(
                            "{} critical and {} high vulnerabilities",
                            c.critical, c.high
                        ),
                    )
                } else if age > 2 * stale_ms {
                    (
                        "red",
                        format!("the last scan is {} days old", age / 86_400_000),
                    )
                } else if c.medium + c.low + c.unknown > 0 {
                    (
                        "yellow",
                        format!(
                            "{} medium, {} low, {} unrated vulnerabilities",
                            c.medium, c.low, c.unknown
                        ),
                    )
                } else if c.errors > 0 {
                    (
                        "yellow",
                        format!(
                            "{} file(s) could not be read (see the run's ledger)",
                            c.errors
                        ),
                    )
                } else if age > stale_ms {
                    (
                        "yellow",
                        format!("the last scan is {} days old", age / 86_400_000),
                    )
                } else {
                    (
                        "green",
                        format!(
                            "no findings in {} package(s) and {} file(s)",
                            c.packages, c.files_scanned
                        ),
                    )
                }
            }
        };
        Ok(SecurityStatus {
            light: light.into(),
            reason,
            last_report_id: latest.as_ref().map(|l| l.id.clone()),
            last_scan_at: latest.as_ref().map(|l| rfc3339_ms(l.created_at_ms)),
            last_scan_age_s: latest
                .as_ref()
                .map(|l| (now_ms() - l.created_at_ms).max(0) / 1000),
            last_duration_ms: latest.as_ref().map(|l| l.duration_ms),
            counts: latest.map(|l| l.counts),
            reports,
            targets: s.paths.clone(),
        })
    }
}

struct LatestInfo {
    id: String,
    created_at_ms: i64,
    duration_ms: i64,
    counts: Counts,
}

/// A report as the job's result (counts and ids; the findings are in the report).
pub fn job_result(r: &Report) -> Value {
    serde_json::json!({
        "report_id": r.id,
        "duration_ms": r.duration_ms,
        "counts": r.counts,
        "file": "backups/security/security_report.json",
    })
}
