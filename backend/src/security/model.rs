//! The report types (the API's, the file's and the console's).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

crate::text_enum! {
    /// How bad a finding is (most severe first when sorted).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
    // Its own name in the OpenAPI document: `Severity` is the alerts area's.
    #[schema(as = FindingSeverity)]
    #[serde(rename_all = "lowercase")]
    pub enum Severity {
        Critical = "critical",
        High = "high",
        Medium = "medium",
        Low = "low",
        Unknown = "unknown",
    }
}

/// A secret found in a file. The secret itself is never stored: `redacted` keeps a short
/// prefix and the length, `fingerprint` identifies it for the allowlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretFinding {
    /// Rule id (`github-pat`, `private-key`, …).
    pub rule: String,
    pub description: String,
    pub severity: Severity,
    /// Path relative to its target.
    pub file: String,
    /// The target (a configured path) the file was found under.
    pub target: String,
    /// For a secret found in the git history (and no longer in the working tree): the
    /// commit that added it; `file` and `line` are then the path and line in that
    /// commit's version of the file. Absent for the working tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "4b825dc642cb6eb9a060e54bf8d69288fbee4904")]
    pub commit: Option<String>,
    /// 1-based line of the secret's first byte.
    pub line: u64,
    /// Working tree: `<rule>:<file>:<hash>`, stable across line moves. History:
    /// `<commit>:<file>:<rule>:<line>` (as gitleaks'). Put it in
    /// `[security] allow_fingerprints` to accept a finding.
    pub fingerprint: String,
    pub redacted: String,
    /// Shannon entropy of the secret (bits per byte).
    pub entropy: f64,
}

/// A package read from a lockfile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Package {
    /// OSV ecosystem name: `crates.io`, `npm`, `PyPI`, `Go`.
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    /// Package URL (`pkg:cargo/serde@1.0.0`).
    pub purl: String,
    /// Lockfile it came from (relative to its target).
    pub source: String,
}

/// A package version an OSV advisory affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Vulnerability {
    /// OSV id (`RUSTSEC-2024-0001`, `GHSA-…`, `PYSEC-…`).
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Severity,
    /// CVSS base score when the advisory has a vector.
    pub cvss_score: Option<f64>,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub purl: String,
    /// Versions that fix it (from the advisory's ranges).
    pub fixed: Vec<String>,
    pub source: String,
}

/// Findings by severity (vulnerabilities and secrets together).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub unknown: u64,
    pub secrets: u64,
    pub vulnerabilities: u64,
    pub packages: u64,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    /// Files that could not be read (they are in the run's error ledger).
    pub errors: u64,
    /// Findings left out by the allowlist.
    pub allowlisted: u64,
    /// OSV advisories loaded for matching (of the packages present).
    pub advisories: u64,
}

impl Counts {
    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Unknown => self.unknown += 1,
        }
    }

    /// Secrets plus vulnerabilities.
    pub fn issues(&self) -> u64 {
        self.secrets + self.vulnerabilities
    }
}

/// A file the scan could not read (also in the job run's error ledger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScanError {
    pub file: String,
    pub stage: String,
    pub error: String,
}

/// One scan's report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub id: String,
    /// The job run that produced it (empty for CLI scans).
    pub run_id: String,
    /// RFC 3339 start.
    pub created_at: String,
    pub created_at_ms: i64,
    pub duration_ms: i64,
    /// `schedule`, `manual`, `startup`, `ops` or `cli`.
    pub trigger: String,
    pub targets: Vec<String>,
    pub counts: Counts,
    /// Most severe first.
    pub vulnerabilities: Vec<Vulnerability>,
    pub secrets: Vec<SecretFinding>,
    pub packages: Vec<Package>,
    pub errors: Vec<ScanError>,
    /// The git history searched, per directory target (empty when `git_history` is off).
    #[serde(default)]
    pub history: Vec<super::history::HistoryScan>,
    /// CycloneDX 1.5 JSON of the packages.
    #[schema(value_type = Object)]
    pub sbom: Value,
}

/// A report as listed (no findings).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportInfo {
    pub id: String,
    pub run_id: String,
    pub created_at: String,
    pub duration_ms: i64,
    pub trigger: String,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReportList {
    pub reports: Vec<ReportInfo>,
}

/// The security area's status (summary section, telemetry component, console header).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecurityStatus {
    /// `green`, `yellow` or `red`.
    pub light: String,
    pub reason: String,
    pub last_report_id: Option<String>,
    pub last_scan_at: Option<String>,
    pub last_scan_age_s: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub counts: Option<Counts>,
    pub reports: i64,
    /// `[security] paths`.
    pub targets: Vec<String>,
}
