//! Which backups to keep, as restic's `forget --keep-daily/--keep-weekly/--keep-monthly`
//! decides it: walking from the newest, each rule keeps the newest backup of each of its
//! last N distinct periods (UTC day, ISO week, month) that have a backup. A backup kept by
//! any rule stays. On top of restic: the newest backup is always kept, so a policy of
//! zeros can never delete the last copy.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Utc};

/// `[dr] keep_daily / keep_weekly / keep_monthly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// One backup as retention sees it: its id and creation time (Unix ms).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub created_at_ms: i64,
}

/// The UTC day, ISO week and month of a time, in the order of [`Policy`]'s rules.
fn periods(ms: i64) -> [String; 3] {
    let t: DateTime<Utc> = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let w = t.iso_week();
    [
        t.format("%Y-%m-%d").to_string(),
        format!("{}-W{:02}", w.year(), w.week()),
        t.format("%Y-%m").to_string(),
    ]
}

/// The ids to keep (every other backup may be deleted).
pub fn keep(snapshots: &[Snapshot], policy: Policy) -> BTreeSet<String> {
    let mut sorted: Vec<&Snapshot> = snapshots.iter().collect();
    // Newest first; ties broken by id so the result does not depend on input order.
    sorted.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    let mut kept = BTreeSet::new();
    if let Some(newest) = sorted.first() {
        kept.insert(newest.id.clone());
    }
    for (rule, n) in [policy.daily, policy.weekly, policy.monthly]
        .into_iter()
        .enumerate()
    {
        let mut last: Option<String> = None;
        let mut count = 0;
        for s in &sorted {
            if count >= n {
                break;
            }
            let period = periods(s.created_at_ms)[rule].clone();
            if last.as_ref() != Some(&period) {
                kept.insert(s.id.clone());
                last = Some(period);
                count += 1;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// 2026-01-01T02:30:00Z, a Thursday.
    const T0: i64 = 1_767_234_600_000;

    fn snap(id: &str, ms: i64) -> Snapshot {
        Snapshot {
            id: id.into(),
            created_at_ms: ms,
        }
    }

    fn ids(v: &BTreeSet<String>) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn daily_keeps_the_newest_of_each_of_the_last_n_days() {
        // Two backups a day for five days: d<day>a at 02:30, d<day>b at 14:30.
        let mut s = Vec::new();
        for d in 0..5 {
            s.push(snap(&format!("d{d}a"), T0 + d * DAY));
            s.push(snap(&format!("d{d}b"), T0 + d * DAY + 12 * HOUR));
        }
        let p = Policy {
            daily: 3,
            weekly: 0,
            monthly: 0,
        };
        assert_eq!(ids(&keep(&s, p)), vec!["d2b", "d3b", "d4b"]);
    }

    #[test]
    fn the_default_policy_over_a_year_of_nightly_backups() {
        // One backup a night at 02:30 for 365 nights from 2026-01-01.
        let s: Vec<Snapshot> = (0..365)
            .map(|d| snap(&format!("{d:03}"), T0 + d * DAY))
            .collect();
        let kept = keep(
            &s,
            Policy {
                daily: 7,
                weekly: 4,
                monthly: 6,
            },
        );
        // Day 364 is 2026-12-31 (Thursday). Daily: days 358..=364. Weekly (ISO weeks end
        // on Sunday): the newest of the current week is 364 (already kept), then the
        // Sundays 360, 353, 346. Monthly: 364 (Dec), then the last days of Nov (333),
        // Oct (303), Sep (272), Aug (242), Jul (211).
        let want: BTreeSet<String> = [
            358, 359, 360, 361, 362, 363, 364, 353, 346, 333, 303, 272, 242, 211,
        ]
        .iter()
        .map(|d| format!("{d:03}"))
        .collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn zeros_still_keep_the_newest_and_input_order_does_not_matter() {
        let s = vec![snap("b", T0 + DAY), snap("a", T0), snap("c", T0 + 2 * DAY)];
        assert_eq!(
            ids(&keep(
                &s,
                Policy {
                    daily: 0,
                    weekly: 0,
                    monthly: 0
                }
            )),
            vec!["c"]
        );
        let mut r = s.clone();
        r.reverse();
        let p = Policy {
            daily: 2,
            weekly: 1,
            monthly: 1,
        };
        assert_eq!(keep(&s, p), keep(&r, p));
        assert!(keep(&[], p).is_empty());
    }
}
