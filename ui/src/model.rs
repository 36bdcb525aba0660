//! The console's data types are the backend's own serde types (`echopilot_backend::model`
//! and the area types); this module only adds console-side views computed once when an
//! answer arrives (flattened component details, sparkline series) and small helpers.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use echopilot_backend::ai::analytics::{
    AiAnalytics, FailedCall as AiFailedCall, ModelStats as AiModelStats,
};
pub use echopilot_backend::analytics::api::FunnelList;
pub use echopilot_backend::analytics::funnel::FunnelResult;
pub use echopilot_backend::analytics::usage::{Usage, UsagePoint};
pub use echopilot_backend::compliance::webhook::{HookEvent, HookList};
pub use echopilot_backend::dr::{BackupList as DrBackups, LatestVerify as DrVerify};
pub use echopilot_backend::jobs::{AutomationsStatus, JobRun, JobRuns, JobStatus};
pub use echopilot_backend::model::{AuditChain, TenantList};
pub use echopilot_backend::ops::api::{LogLine, LogView, VerbList};
pub use echopilot_backend::ops::command::DryRunResponse;
pub use echopilot_backend::ops::{Risk, VerbSpec as Verb};
pub use echopilot_backend::queue::api::JobList;
pub use echopilot_backend::queue::{Health as QueueHealth, Job as QueueJob};
pub use echopilot_backend::security::api::LatestReport as SecurityLatest;
pub use echopilot_backend::security::SecurityStatus;
pub use echopilot_backend::telemetry::api::History;
pub use echopilot_backend::telemetry::TelemetryReport;

crate::serde_view!(
    AutomationsStatus,
    LogView,
    JobRuns,
    AuditChain,
    TenantList,
    VerbList,
    JobList,
    QueueHealth,
    DrBackups,
    DrVerify,
    Usage,
    FunnelList,
    AiAnalytics,
    SecurityStatus,
    SecurityLatest,
    HookList
);

/// Parses an RFC 3339 timestamp; anything else is `None`.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Renders a scalar JSON value compactly (strings without quotes).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // Up to three decimals, no trailing zeros: 18.2, 0.002.
                let s = format!("{f:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// An array as a reader wants it: `none`, a few scalars joined (`sqlite, postgres`), or
/// its length when it holds objects or many values.
pub fn list_text(items: &[Value]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    if items.len() <= 5 && items.iter().all(|v| !v.is_object() && !v.is_array()) {
        return items.iter().map(scalar_text).collect::<Vec<_>>().join(", ");
    }
    format!("{} items", items.len())
}

/// Flattens nested objects into `a.b.c` → scalar pairs (arrays are summarised by
/// [`list_text`]).
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => out.push((prefix.to_string(), Value::from(list_text(items)))),
        other => out.push((prefix.to_string(), other.clone())),
    }
}

// ---------------------------------------------------------------- telemetry

/// One component of the telemetry report, details flattened for display.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub status: String,
    /// Scalar details, flattened (`cpu_pct = 23.1`).
    pub details: Vec<(String, String)>,
}

/// `GET /api/v1/ops/telemetry`: the backend's report plus its components ready to draw.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub report: TelemetryReport,
    pub components: Vec<Component>,
}

impl crate::cache::View for Telemetry {
    fn from_json(v: Value) -> Result<Self, String> {
        let report: TelemetryReport = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let components = report
            .components
            .iter()
            .map(|(name, c)| {
                let mut flat = Vec::new();
                flatten("", &c.details, &mut flat);
                Component {
                    name: name.clone(),
                    status: c.status.clone(),
                    details: flat
                        .into_iter()
                        .map(|(k, v)| (k, scalar_text(&v)))
                        .collect(),
                }
            })
            .collect();
        Ok(Telemetry { report, components })
    }
}

/// Which metric a sparkline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    QueueDepth,
    ApiP95,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::QueueDepth,
        Metric::ApiP95,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU",
            Metric::Memory => "Memory",
            Metric::QueueDepth => "Queue depth",
            Metric::ApiP95 => "API p95",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Cpu | Metric::Memory => "%",
            Metric::QueueDepth => "",
            Metric::ApiP95 => " ms",
        }
    }

    fn value(self, s: &echopilot_backend::telemetry::Sample) -> Option<f64> {
        match self {
            Metric::Cpu => s.cpu_pct,
            Metric::Memory => s.mem_pct,
            Metric::QueueDepth => s.queue_depth.map(|d| d as f64),
            Metric::ApiP95 => s.api_p95_ms,
        }
    }
}

/// `GET /api/v1/ops/telemetry/history`: one series per [`Metric::ALL`] entry, oldest first.
/// A sample whose source had no data (`null`) is skipped, never drawn as zero.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryView {
    pub series: [Vec<f64>; 4],
    /// When each value of `series` was sampled (ms since the epoch), same order.
    pub stamps: [Vec<i64>; 4],
    pub samples: usize,
}

impl crate::cache::View for HistoryView {
    fn from_json(v: Value) -> Result<Self, String> {
        let h: History = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let mut series: [Vec<f64>; 4] = Default::default();
        let mut stamps: [Vec<i64>; 4] = Default::default();
        for s in &h.samples {
            let at = parse_ts(&s.ts).map(|t| t.timestamp_millis()).unwrap_or(0);
            for (i, m) in Metric::ALL.iter().enumerate() {
                if let Some(val) = m.value(s) {
                    series[i].push(val);
                    stamps[i].push(at);
                }
            }
        }
        Ok(HistoryView {
            series,
            stamps,
            samples: h.samples.len(),
        })
    }
}

// ---------------------------------------------------------------- verbs / ops

/// Console-side helpers on the backend's verb declaration.
pub trait VerbExt {
    fn is_high_risk(&self) -> bool;
    /// `(name, type, required)` for each property of the args schema.
    fn arg_props(&self) -> Vec<(String, String, bool)>;
    fn default_for(&self, prop: &str) -> Option<&Value>;
}

impl VerbExt for Verb {
    fn is_high_risk(&self) -> bool {
        self.risk != Risk::Low
    }

    fn arg_props(&self) -> Vec<(String, String, bool)> {
        let required: Vec<&str> = self
            .args
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.args
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, p)| {
                        let ty = p
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .to_string();
                        (k.clone(), ty, required.contains(&k.as_str()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn default_for(&self, prop: &str) -> Option<&Value> {
        self.args.get("properties")?.get(prop)?.get("default")
    }
}

/// What the plan dialog shows: a dry-run answer, or a local description of a plain call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub plan_id: String,
    pub summary: String,
    pub steps: Vec<String>,
    pub effects: Vec<String>,
    pub risk: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Plan {
    pub fn from_dry_run(d: DryRunResponse) -> Plan {
        Plan {
            plan_id: d.plan_id,
            summary: d.plan.summary,
            steps: d.plan.steps,
            effects: d.plan.effects,
            risk: d.risk.as_str().to_string(),
            expires_at: parse_ts(&d.expires_at),
        }
    }
}

/// The audit sequence number of a command result (`audit_seq` of the confirm answer).
pub fn audit_seq(v: &Value) -> Option<u64> {
    v.get("audit_seq").and_then(Value::as_u64)
}

// ---------------------------------------------------------------- summary / areas

/// One top-level section of `GET /api/v1/status/summary`.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    /// Counters, flattened (`records 12`).
    Fields(Vec<(String, String)>),
    /// `{"disabled": true, "scope": ...}`: the area's module is off for this tenant/fleet.
    Disabled { fleet: bool },
}

/// `GET /api/v1/status/summary` (free-form by design: each area adds its own section).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub sections: Vec<(String, Section)>,
}

impl crate::cache::View for Summary {
    fn from_json(v: Value) -> Result<Self, String> {
        let Value::Object(map) = v else {
            return Err("the status summary is not a JSON object".into());
        };
        let sections = map
            .into_iter()
            .map(|(name, v)| {
                let section = if v.get("disabled") == Some(&Value::Bool(true)) {
                    Section::Disabled {
                        fleet: v.get("scope").and_then(Value::as_str) == Some("fleet"),
                    }
                } else {
                    let mut flat = Vec::new();
                    flatten("", &v, &mut flat);
                    Section::Fields(
                        flat.into_iter()
                            .map(|(k, v)| (k, scalar_text(&v)))
                            .collect(),
                    )
                };
                (name, section)
            })
            .collect();
        Ok(Summary { sections })
    }
}

/// What an optional area route answered with (shown verbatim, flattened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AreaData {
    pub fields: Vec<(String, String)>,
}

impl crate::cache::View for AreaData {
    fn from_json(v: Value) -> Result<Self, String> {
        let mut flat = Vec::new();
        flatten("", &v, &mut flat);
        Ok(AreaData {
            fields: flat
                .into_iter()
                .map(|(k, v)| {
                    (
                        if k.is_empty() { "value".into() } else { k },
                        scalar_text(&v),
                    )
                })
                .collect(),
        })
    }
}
