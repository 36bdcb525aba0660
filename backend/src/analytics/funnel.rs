//! Funnels: an ordered list of event names and a conversion window. A user enters a funnel
//! on a day with their first event of step 1 that day; step k counts when the user does
//! step k's event after step k-1 and no later than the window after the entry. Over a
//! range of days a user counts once, from their earliest entry in the range.
//!
//! [`progress`] is the one definition of "how far did this entry get"; the rollup stores
//! its answer per (funnel, day, user) and [`summarise`] turns stored entries into the
//! answer of a range (counts, conversion, median time between steps, drop-off).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ApiError;

pub const MIN_STEPS: usize = 2;
pub const MAX_STEPS: usize = 10;
pub const MAX_WINDOW_SECS: i64 = 90 * 86_400;
/// Most funnels per tenant (API plus config), so a usage answer stays bounded.
pub const MAX_FUNNELS: usize = 50;

/// A funnel definition (`POST /api/v1/analytics/funnels`, `[analytics.funnels.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunnelDef {
    /// 1-64 characters of `[a-z0-9_-]`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Event names in order, 2 to 10.
    #[schema(min_items = 2, max_items = 10)]
    pub steps: Vec<String>,
    /// How long after entering a user may take to finish (1 s to 90 days).
    #[schema(minimum = 1, maximum = 7776000)]
    pub window_secs: i64,
    /// `api` (this tenant's) or `config` (every tenant's, from the server config).
    pub source: String,
}

impl FunnelDef {
    /// Checked definition, or 422 naming what is wrong.
    pub fn new(
        name: &str,
        steps: Vec<String>,
        window_secs: i64,
        source: &str,
    ) -> Result<FunnelDef, ApiError> {
        if !crate::auth::valid_tenant_id(name) {
            return Err(ApiError::Unprocessable(
                "name must be 1-64 characters of a-z, 0-9, '-' or '_'".into(),
            ));
        }
        if !(MIN_STEPS..=MAX_STEPS).contains(&steps.len()) {
            return Err(ApiError::Unprocessable(format!(
                "steps must list {MIN_STEPS} to {MAX_STEPS} event names, got {}",
                steps.len()
            )));
        }
        for (i, s) in steps.iter().enumerate() {
            if let Err(e) = super::ingest::check_name(s) {
                return Err(ApiError::Unprocessable(format!("steps[{i}]: {e}")));
            }
        }
        if !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
            return Err(ApiError::Unprocessable(format!(
                "window_secs must be between 1 and {MAX_WINDOW_SECS}, got {window_secs}"
            )));
        }
        Ok(FunnelDef {
            name: name.to_string(),
            steps,
            window_secs,
            source: source.to_string(),
        })
    }

    /// Identifies steps and window: stored entries of another definition are ignored.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for s in &self.steps {
            h.update(s.as_bytes());
            h.update([0]);
        }
        h.update(self.window_secs.to_le_bytes());
        hex::encode(&h.finalize()[..12])
    }

    pub fn window_ms(&self) -> i64 {
        self.window_secs * 1000
    }

    /// Whole days after an entry day whose events can still change that entry.
    pub fn window_days(&self) -> i64 {
        (self.window_ms() + super::DAY_MS - 1) / super::DAY_MS
    }
}

/// How far one entry got: the time of each step reached (`[0]` is the entry).
/// `events` are the user's events of the funnel's steps, sorted by time, starting with
/// the entry event itself.
pub fn progress(def: &FunnelDef, entry_ts: i64, events: &[(i64, &str)]) -> Vec<i64> {
    let mut times = vec![entry_ts];
    let deadline = entry_ts + def.window_ms();
    let mut seen_entry = false;
    for &(ts, name) in events {
        if times.len() == def.steps.len() {
            break;
        }
        if ts < entry_ts {
            continue;
        }
        if !seen_entry && ts == entry_ts && name == def.steps[0] {
            // The entry event itself is not a later step.
            seen_entry = true;
            continue;
        }
        if ts > deadline {
            break;
        }
        if name == def.steps[times.len()] {
            times.push(ts);
        }
    }
    times
}

/// One step of a funnel answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepResult {
    pub event: String,
    /// Users who reached this step.
    pub users: i64,
    /// `users` / users of step 1 (0 when nobody entered).
    pub conversion: f64,
    /// `users` / users of the previous step (1 for step 1).
    pub step_conversion: f64,
    /// Users of the previous step who did not reach this one (0 for step 1).
    pub drop_off: i64,
    /// Median seconds from the previous step to this one, over users who reached it.
    pub median_secs_from_previous: Option<f64>,
}

/// A funnel's answer over a range of days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunnelResult {
    pub name: String,
    pub window_secs: i64,
    pub source: String,
    pub steps: Vec<StepResult>,
    /// Users who entered (step 1).
    pub entered: i64,
    /// Users who reached the last step.
    pub completed: i64,
    /// `completed` / `entered`.
    pub conversion: f64,
}

/// The answer from stored entries `(distinct_id, day, step times)`: each user counts once,
/// from their earliest entry.
pub fn summarise(def: &FunnelDef, entries: Vec<(String, i64, Vec<i64>)>) -> FunnelResult {
    let mut first: HashMap<String, (i64, Vec<i64>)> = HashMap::new();
    for (user, day, times) in entries {
        match first.get(&user) {
            Some((d, _)) if *d <= day => {}
            _ => {
                first.insert(user, (day, times));
            }
        }
    }
    let n = def.steps.len();
    let mut reached = vec![0i64; n];
    let mut gaps: Vec<Vec<i64>> = vec![Vec::new(); n];
    for (_, times) in first.values() {
        for k in 0..times.len().min(n) {
            reached[k] += 1;
            if k > 0 {
                gaps[k].push(times[k] - times[k - 1]);
            }
        }
    }
    let entered = reached[0];
    let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let steps = (0..n)
        .map(|k| StepResult {
            event: def.steps[k].clone(),
            users: reached[k],
            conversion: ratio(reached[k], entered),
            step_conversion: if k == 0 {
                1.0
            } else {
                ratio(reached[k], reached[k - 1])
            },
            drop_off: if k == 0 {
                0
            } else {
                reached[k - 1] - reached[k]
            },
            median_secs_from_previous: median_ms(&mut gaps[k]).map(|ms| ms / 1000.0),
        })
        .collect();
    FunnelResult {
        name: def.name.clone(),
        window_secs: def.window_secs,
        source: def.source.clone(),
        steps,
        entered,
        completed: reached[n - 1],
        conversion: ratio(reached[n - 1], entered),
    }
}

fn median_ms(v: &mut [i64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m] as f64
    } else {
        (v[m - 1] as f64 + v[m] as f64) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(steps: &[&str], window_secs: i64) -> FunnelDef {
        FunnelDef::new(
            "f",
            steps.iter().map(|s| s.to_string()).collect(),
            window_secs,
            "api",
        )
        .unwrap()
    }

    #[test]
    fn progress_follows_order_and_window() {
        let d = def(&["a", "b", "c"], 100);
        // b before the entry does not count; c before b does not count.
        let ev = [(10, "a"), (20, "c"), (30, "b"), (40, "c")];
        assert_eq!(progress(&d, 10, &ev), vec![10, 30, 40]);
        // c past the window (entry + 100 s).
        let ev = [(0, "a"), (1000, "b"), (100_001, "c")];
        assert_eq!(progress(&d, 0, &ev), vec![0, 1000]);
        // Repeated first step: the second a is not a later step of its own.
        let d2 = def(&["a", "a"], 10);
        assert_eq!(progress(&d2, 5, &[(5, "a"), (7, "a")]), vec![5, 7]);
        assert_eq!(progress(&d2, 5, &[(5, "a")]), vec![5]);
    }

    #[test]
    fn summary_counts_each_user_once_with_medians() {
        let d = def(&["a", "b"], 3600);
        let s = summarise(
            &d,
            vec![
                ("u1".into(), 2, vec![0, 10_000]),
                ("u1".into(), 1, vec![0]),
                ("u2".into(), 1, vec![0, 20_000]),
                ("u3".into(), 1, vec![0, 40_000]),
            ],
        );
        assert_eq!(s.entered, 3);
        assert_eq!(s.steps[1].users, 2);
        assert_eq!(s.steps[1].drop_off, 1);
        assert_eq!(s.steps[1].median_secs_from_previous, Some(30.0));
        assert!((s.conversion - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(FunnelDef::new("x", vec!["a".into()], 10, "api").is_err());
        assert!(FunnelDef::new("X", vec!["a".into(), "b".into()], 10, "api").is_err());
        assert!(FunnelDef::new("x", vec!["a".into(), "b".into()], 0, "api").is_err());
        assert!(FunnelDef::new("x", vec!["a".into(), "".into()], 10, "api").is_err());
    }
}
