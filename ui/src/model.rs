//! Tolerant view types for the backend's JSON.
//!
//! The console does not link the backend crate, so these mirror the documented shapes loosely:
//! unknown fields are ignored, missing optional fields default, ids may be numbers or strings.
//! Parsing happens once when a response arrives, never in the draw path.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Accepts a string, a number or a bool and keeps its text form; null/absent → empty.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = lenient_string(d)?;
    Ok((!s.is_empty()).then_some(s))
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

fn yes() -> bool {
    true
}

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

/// Flattens nested objects into `a.b.c` → scalar pairs (arrays are summarised by length).
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
        Value::Array(items) => out.push((
            prefix.to_string(),
            Value::from(format!("[{} items]", items.len())),
        )),
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Unwraps `{"<key>": [..]}` or a bare array into its items.
pub fn list_items<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    if let Value::Array(items) = v {
        return items;
    }
    for k in keys {
        if let Some(Value::Array(items)) = v.get(*k) {
            return items;
        }
    }
    &[]
}

// ---------------------------------------------------------------- telemetry

/// One component of `GET /api/v1/ops/telemetry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub status: String,
    /// Scalar details, flattened (`cpu_pct = 23.1`).
    pub details: Vec<(String, String)>,
}

/// `GET /api/v1/ops/telemetry` → `{"overall", "components": {name: {status, ...}}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    pub overall: Option<String>,
    pub components: Vec<Component>,
}

impl Telemetry {
    pub fn from_json(v: &Value) -> Telemetry {
        let overall = v.get("overall").map(scalar_text);
        let mut components = Vec::new();
        let mut push = |name: String, c: &Value| {
            let status = c
                .get("status")
                .map(scalar_text)
                .unwrap_or_else(|| "unknown".into());
            let mut flat = Vec::new();
            flatten("", c, &mut flat);
            let details = flat
                .into_iter()
                .filter(|(k, _)| k != "status" && k != "name")
                .map(|(k, v)| {
                    let k = k.strip_prefix("details.").unwrap_or(&k).to_string();
                    (k, scalar_text(&v))
                })
                .collect();
            components.push(Component {
                name,
                status,
                details,
            });
        };
        match v.get("components") {
            Some(Value::Object(map)) => {
                for (name, c) in map {
                    push(name.clone(), c);
                }
            }
            Some(Value::Array(items)) => {
                for c in items {
                    let name = c.get("name").map(scalar_text).unwrap_or_default();
                    push(name, c);
                }
            }
            _ => {}
        }
        Telemetry {
            overall,
            components,
        }
    }
}

/// Which metric a sparkline shows, and the sample keys that may carry it (first match wins;
/// a key matches a flattened path exactly or as its last dotted segments).
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

    fn keys(self) -> &'static [&'static str] {
        match self {
            Metric::Cpu => &["cpu_pct", "cpu_percent", "cpu_usage_pct", "cpu"],
            Metric::Memory => &[
                "mem_pct",
                "memory_pct",
                "mem_percent",
                "memory_percent",
                "memory_used_pct",
                "mem",
                "memory",
            ],
            Metric::QueueDepth => &[
                "queue_depth",
                "queue.depth",
                "depth.queued",
                "queued",
                "depth",
            ],
            Metric::ApiP95 => &[
                "api_p95_ms",
                "p95_ms",
                "latency_p95_ms",
                "api.p95_ms",
                "p95",
            ],
        }
    }
}

/// `GET /api/v1/ops/telemetry/history?minutes=60` → `{"samples": [{"ts", ...metrics}]}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// One series per [`Metric::ALL`] entry, oldest first; empty when the metric is absent.
    pub series: [Vec<f64>; 4],
    pub samples: usize,
}

impl History {
    pub fn from_json(v: &Value) -> History {
        let samples = list_items(v, &["samples", "points", "history", "items"]);
        let mut series: [Vec<f64>; 4] = Default::default();
        let mut flat = Vec::new();
        for s in samples {
            flat.clear();
            flatten("", s, &mut flat);
            for (i, m) in Metric::ALL.iter().enumerate() {
                if let Some(val) = pick_metric(&flat, m.keys()) {
                    series[i].push(val);
                }
            }
        }
        History {
            series,
            samples: samples.len(),
        }
    }
}

fn pick_metric(flat: &[(String, Value)], keys: &[&str]) -> Option<f64> {
    for key in keys {
        for (path, v) in flat {
            let hit = path == key || path.ends_with(&format!(".{key}"));
            if hit {
                if let Some(f) = v.as_f64() {
                    return Some(f);
                }
            }
        }
    }
    None
}

// ---------------------------------------------------------------- verbs / ops

/// One entry of `GET /api/v1/ops/verbs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Verb {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default, deserialize_with = "lenient_string")]
    pub risk: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub min_role: Option<String>,
    /// Missing means "assume it changes something" so `--readonly` errs on the safe side.
    #[serde(default = "yes")]
    pub mutating: bool,
}

impl Verb {
    pub fn is_high_risk(&self) -> bool {
        !self.risk.eq_ignore_ascii_case("low")
    }

    /// `(name, type, required)` for each property of the args schema.
    pub fn arg_props(&self) -> Vec<(String, String, bool)> {
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

    pub fn default_for(&self, prop: &str) -> Option<&Value> {
        self.args.get("properties")?.get(prop)?.get("default")
    }
}

pub fn parse_verbs(v: &Value) -> Vec<Verb> {
    list_items(v, &["verbs"])
        .iter()
        .filter_map(|item| serde_json::from_value(item.clone()).ok())
        .collect()
}

/// `POST /api/v1/ops/command` dry-run answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub plan_id: String,
    pub summary: String,
    pub steps: Vec<String>,
    pub effects: Vec<String>,
    pub risk: String,
    pub expires_at: Option<DateTime<Utc>>,
}

fn text_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Object(o) => o
                    .get("description")
                    .or_else(|| o.get("summary"))
                    .or_else(|| o.get("text"))
                    .map(scalar_text)
                    .unwrap_or_else(|| i.to_string()),
                other => scalar_text(other),
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![scalar_text(other)],
    }
}

impl Plan {
    pub fn from_json(v: &Value) -> Plan {
        let plan = v.get("plan").unwrap_or(&Value::Null);
        Plan {
            plan_id: v.get("plan_id").map(scalar_text).unwrap_or_default(),
            summary: plan.get("summary").map(scalar_text).unwrap_or_default(),
            steps: text_list(plan.get("steps")),
            effects: text_list(plan.get("effects")),
            risk: v
                .get("risk")
                .or_else(|| plan.get("risk"))
                .map(scalar_text)
                .unwrap_or_default(),
            expires_at: v
                .get("expires_at")
                .and_then(Value::as_str)
                .and_then(parse_ts),
        }
    }
}

/// Finds the audit sequence number in a command result, wherever the backend put it.
pub fn audit_seq(v: &Value) -> Option<u64> {
    let candidates = [
        v.get("audit_seq"),
        v.get("audit").and_then(|a| a.get("seq")),
        v.get("seq"),
        v.get("result").and_then(|r| r.get("audit_seq")),
    ];
    candidates.into_iter().flatten().find_map(|x| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    })
}

// ---------------------------------------------------------------- jobs

/// A scheduled job from `GET /api/v1/automations/status`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct SchedJob {
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub schedule: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub next_run: Option<String>,
    /// A timestamp or an object (`{"started_at", "outcome", ...}`).
    #[serde(default)]
    pub last_run: Value,
}

impl SchedJob {
    pub fn last_run_at(&self) -> Option<DateTime<Utc>> {
        match &self.last_run {
            Value::String(s) => parse_ts(s),
            Value::Object(o) => o
                .get("started_at")
                .or_else(|| o.get("finished_at"))
                .and_then(Value::as_str)
                .and_then(parse_ts),
            _ => None,
        }
    }

    pub fn last_outcome(&self) -> Option<String> {
        self.last_run.get("outcome").map(scalar_text)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Automations {
    #[serde(default)]
    pub running: Option<bool>,
    #[serde(default)]
    pub leader: Option<bool>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub replica_id: Option<String>,
    #[serde(default)]
    pub jobs: Vec<SchedJob>,
}

/// One record of `GET /api/v1/jobs/runs`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct JobRun {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub job: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub finished_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub outcome: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub duration_ms: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub replica: Option<String>,
}

pub fn parse_runs(v: &Value) -> Vec<JobRun> {
    list_items(v, &["runs", "items"])
        .iter()
        .filter_map(|i| serde_json::from_value(i.clone()).ok())
        .collect()
}

// ---------------------------------------------------------------- queue

/// `GET /api/v1/queue/health`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueHealth {
    /// Depth by state in the documented order, then any extra states the backend reports.
    pub depth: Vec<(String, u64)>,
    pub lag_ms: Option<f64>,
    pub oldest_ready_age_s: Option<f64>,
    pub throughput_per_min: Option<f64>,
    pub workers: Option<String>,
}

pub const QUEUE_STATES: [&str; 5] = ["queued", "running", "failed", "dead", "succeeded"];

impl QueueHealth {
    pub fn from_json(v: &Value) -> QueueHealth {
        let mut depth = Vec::new();
        if let Some(Value::Object(map)) = v.get("depth") {
            let mut m: BTreeMap<&str, u64> = map
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.as_str(), n)))
                .collect();
            for s in QUEUE_STATES {
                if let Some(n) = m.remove(s) {
                    depth.push((s.to_string(), n));
                }
            }
            depth.extend(m.into_iter().map(|(k, n)| (k.to_string(), n)));
        }
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let workers = match v.get("workers") {
            Some(Value::Array(a)) => Some(a.len().to_string()),
            Some(Value::Null) | None => None,
            Some(Value::Object(o)) => o
                .get("count")
                .or_else(|| o.get("active"))
                .map(scalar_text)
                .or_else(|| Some(format!("{} fields", o.len()))),
            Some(other) => Some(scalar_text(other)),
        };
        QueueHealth {
            depth,
            lag_ms: num("lag_ms"),
            oldest_ready_age_s: num("oldest_ready_age_s"),
            throughput_per_min: num("throughput_per_min"),
            workers,
        }
    }
}

/// One job of `GET /api/v1/queue/jobs`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct QueueJob {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub state: String,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub attempts: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub max_attempts: Option<f64>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub worker: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub enqueued_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub finished_at: Option<String>,
}

pub fn parse_queue_jobs(v: &Value) -> Vec<QueueJob> {
    list_items(v, &["jobs", "items"])
        .iter()
        .filter_map(|i| serde_json::from_value(i.clone()).ok())
        .collect()
}

// ---------------------------------------------------------------- audit / summary

/// `GET /api/v1/audit/chain` → `{"size", "root", "head"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditChain {
    pub size: u64,
    pub root: String,
    pub head_action: Option<String>,
    pub head_ts: Option<String>,
}

impl AuditChain {
    pub fn from_json(v: &Value) -> AuditChain {
        let head = v.get("head").unwrap_or(&Value::Null);
        AuditChain {
            size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
            root: v.get("root").map(scalar_text).unwrap_or_default(),
            head_action: head.get("action").map(scalar_text),
            head_ts: head.get("ts").map(scalar_text),
        }
    }
}

/// `GET /api/v1/status/summary`: shown as flattened counters; tenants feed the palette.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub fields: Vec<(String, String)>,
    pub tenants: Vec<String>,
}

impl Summary {
    pub fn from_json(v: &Value) -> Summary {
        let mut flat = Vec::new();
        flatten("", v, &mut flat);
        let fields = flat
            .into_iter()
            .map(|(k, v)| (k, scalar_text(&v)))
            .collect();
        let tenants = list_items(v.get("tenants").unwrap_or(&Value::Null), &["items"])
            .iter()
            .filter_map(|t| match t {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("id").or_else(|| o.get("name")).map(scalar_text),
                _ => None,
            })
            .collect();
        Summary { fields, tenants }
    }
}

/// What an optional area route answered with (shown verbatim, flattened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AreaData {
    pub fields: Vec<(String, String)>,
}

impl AreaData {
    pub fn from_json(v: &Value) -> AreaData {
        let mut flat = Vec::new();
        flatten("", v, &mut flat);
        AreaData {
            fields: flat
                .into_iter()
                .map(|(k, v)| {
                    (
                        if k.is_empty() { "value".into() } else { k },
                        scalar_text(&v),
                    )
                })
                .collect(),
        }
    }
}
