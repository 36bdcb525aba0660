//! The one registry of named jobs, their config keys (`jobs.<name>.schedule`, `.enabled`,
//! `.timeout_secs`) and cron parsing (six fields with seconds, UTC).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use super::JobHandler;
use crate::config::{ConfigError, ConfigMap};

/// Timeout of a job that does not set one (`JobDef::timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Queue attempts of one firing (a failed or timed-out run is retried with backoff).
pub const DEFAULT_ATTEMPTS: i64 = 3;

/// A registered job before config is applied.
pub struct JobDef {
    pub(crate) name: String,
    pub(crate) default_schedule: String,
    pub(crate) handler: JobHandler,
    pub(crate) run_at_start: bool,
    pub(crate) description: String,
    pub(crate) default_timeout: Duration,
    pub(crate) max_attempts: i64,
    pub(crate) run_role: crate::model::Role,
}

impl JobDef {
    /// The role `POST /api/v1/jobs/{name}/run` needs for this job (default operator): a
    /// job an area lets only admins start through its own route (a DR backup copies every
    /// tenant's data) must not be startable by an operator here.
    pub fn run_role(&mut self, role: crate::model::Role) -> &mut Self {
        self.run_role = role;
        self
    }

    /// Also run once when the server starts (unless disabled or the fleet is paused).
    pub fn run_at_start(&mut self) -> &mut Self {
        self.run_at_start = true;
        self
    }

    /// One line shown in the status listing and docs.
    pub fn describe(&mut self, text: &str) -> &mut Self {
        self.description = text.to_string();
        self
    }

    /// Default for `jobs.<name>.timeout_secs`: a run past it is cancelled (`timed_out`).
    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.default_timeout = t;
        self
    }

    /// Queue attempts per firing (default 3).
    pub fn max_attempts(&mut self, n: i64) -> &mut Self {
        self.max_attempts = n.clamp(1, 100);
        self
    }
}

/// The one registry of named jobs. Areas call [`JobRegistry::register`] in
/// `server::start_areas`; [`super::start`] then applies config and schedules them.
#[derive(Default)]
pub struct JobRegistry {
    pub(crate) defs: Vec<JobDef>,
}

impl JobRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `name` with a six-field UTC cron schedule (`sec min hour dom mon dow`).
    pub fn register(
        &mut self,
        name: &str,
        default_schedule: &str,
        handler: JobHandler,
    ) -> &mut JobDef {
        self.defs.push(JobDef {
            name: name.to_string(),
            default_schedule: default_schedule.to_string(),
            handler,
            run_at_start: false,
            description: String::new(),
            default_timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_ATTEMPTS,
            run_role: crate::model::Role::Operator,
        });
        self.defs.last_mut().expect("just pushed")
    }

    pub fn names(&self) -> Vec<String> {
        self.defs.iter().map(|d| d.name.clone()).collect()
    }
}

/// A job's defaults, kept to re-resolve config on a scheduler restart.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub schedule: String,
    pub timeout: Duration,
}

/// A job's effective settings after config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub schedule: String,
    pub enabled: bool,
    pub timeout_secs: u64,
}

/// Resolve every job's settings from `raw`; unknown job names or keys are errors (a typo
/// would otherwise silently leave the real job on its default).
pub fn resolve(
    raw: &ConfigMap,
    defaults: &BTreeMap<String, Defaults>,
) -> Result<BTreeMap<String, Settings>, ConfigError> {
    // `[jobs.<name>]` tables; unknown keys and wrong types are refused by the struct.
    let overrides: super::area::JobsSection = raw.section("jobs")?;
    if let Some(name) = overrides.keys().find(|n| !defaults.contains_key(*n)) {
        let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
        let key = raw
            .keys_with_prefix(&format!("jobs.{name}."))
            .next()
            .unwrap_or("jobs")
            .to_string();
        return Err(raw.error(
            &key,
            format!("no job named {name:?}; jobs: {}", known.join(", ")),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, d) in defaults {
        let o = overrides.get(name).cloned().unwrap_or_default();
        let key = format!("jobs.{name}.schedule");
        let schedule = o.schedule.unwrap_or_else(|| d.schedule.clone());
        if let Err(msg) = validate_cron(&schedule) {
            return Err(raw.error(&key, msg));
        }
        let timeout_secs = raw.check_range(
            &format!("jobs.{name}.timeout_secs"),
            o.timeout_secs.unwrap_or(d.timeout.as_secs().max(1)),
            1,
            7 * 86_400,
        )?;
        out.insert(
            name.clone(),
            Settings {
                schedule,
                enabled: o.enabled.unwrap_or(true),
                timeout_secs,
            },
        );
    }
    Ok(out)
}

/// What a scheduler restart changes, one line per job that changes.
pub fn diff(old: &BTreeMap<String, Settings>, new: &BTreeMap<String, Settings>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, n) in new {
        let Some(o) = old.get(name) else {
            out.push(format!("{name}: added ({})", n.schedule));
            continue;
        };
        if o.enabled != n.enabled {
            out.push(format!(
                "{name}: {}",
                if n.enabled { "enabled" } else { "disabled" }
            ));
        }
        if o.schedule != n.schedule {
            out.push(format!("{name}: schedule {} → {}", o.schedule, n.schedule));
        }
        if o.timeout_secs != n.timeout_secs {
            out.push(format!(
                "{name}: timeout {} s → {} s",
                o.timeout_secs, n.timeout_secs
            ));
        }
    }
    for name in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(format!("{name}: removed"));
    }
    out
}

/// Parse a six-field cron expression (UTC) the way the scheduler fires it.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "expected a cron expression with 6 fields (sec min hour day-of-month month day-of-week, UTC), got {expr:?} with {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|_| format!("not a valid cron expression: {expr:?} (6 fields: sec min hour day-of-month month day-of-week, UTC)"))
}

/// Check a six-field cron expression.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    parse_cron(expr).map(|_| ())
}

/// The first fire strictly after `after_ms` (Unix ms), or `None` if the schedule never
/// fires again.
pub fn next_fire(cron: &Cron, after_ms: i64) -> Option<i64> {
    // Whole seconds: croner keeps the start's sub-second part in what it returns.
    let t = DateTime::<Utc>::from_timestamp_millis(after_ms.div_euclid(1000) * 1000)?;
    cron.find_next_occurrence(&t, false)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_validation_names_the_problem() {
        assert!(validate_cron("0 * * * * *").is_ok());
        assert!(validate_cron("0 55 7 * * *").is_ok());
        assert!(validate_cron("* * * * *").unwrap_err().contains("6 fields"));
        assert!(validate_cron("0 99 * * * *").is_err());
    }

    #[test]
    fn next_fire_is_on_the_schedule_and_strictly_later() {
        let every_min = parse_cron("0 * * * * *").unwrap();
        // 2026-12-01T10:00:00Z
        let t0 = 1_796_119_200_000;
        assert_eq!(next_fire(&every_min, t0), Some(t0 + 60_000));
        assert_eq!(next_fire(&every_min, t0 - 1), Some(t0));
        let every_sec = parse_cron("* * * * * *").unwrap();
        assert_eq!(next_fire(&every_sec, t0 + 400), Some(t0 + 1000));
    }

    #[test]
    fn diff_lists_what_changes() {
        let s = |sch: &str, en: bool, t: u64| Settings {
            schedule: sch.into(),
            enabled: en,
            timeout_secs: t,
        };
        let old = BTreeMap::from([
            ("a".to_string(), s("0 * * * * *", true, 60)),
            ("b".to_string(), s("0 0 * * * *", true, 60)),
        ]);
        let new = BTreeMap::from([
            ("a".to_string(), s("*/5 * * * * *", true, 30)),
            ("b".to_string(), s("0 0 * * * *", false, 60)),
        ]);
        assert_eq!(
            diff(&old, &new),
            vec![
                "a: schedule 0 * * * * * → */5 * * * * *".to_string(),
                "a: timeout 60 s → 30 s".to_string(),
                "b: disabled".to_string(),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
