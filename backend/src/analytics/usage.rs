//! Usage answers, read from the rollup tables only (never `analytics_events`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::funnel::{summarise, FunnelDef, FunnelResult};
use super::rollup::date_of;
use super::{Analytics, DAY_MS};
use crate::error::ApiError;

/// Longest range one answer covers.
pub const MAX_RANGE_DAYS: i64 = 366;

crate::text_enum! {
    /// Bucket size of the series: one point per day, ISO week (Monday first) or month.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Interval {
        Day = "day",
        Week = "week",
        Month = "month",
    }
}

/// One point of the series: DAU/WAU/MAU as of the bucket's last day, events summed over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsagePoint {
    /// First day of the bucket (`YYYY-MM-DD`).
    pub date: String,
    /// Last day of the bucket (the day DAU/WAU/MAU are of).
    pub end: String,
    /// Distinct users on `end`.
    pub dau: i64,
    /// Distinct users over the 7 days ending `end`.
    pub wau: i64,
    /// Distinct users over the 28 days ending `end`.
    pub mau: i64,
    /// Events in the bucket.
    pub events: i64,
}

/// An event name or feature with its events and distinct users over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Top {
    pub name: String,
    pub events: i64,
    pub users: i64,
}

/// How current the rollups of the range are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RollupState {
    /// Days of the range with events not rolled up yet.
    pub pending_days: i64,
    /// Seconds since the oldest pending mark of the tenant (none pending: null).
    pub lag_secs: Option<f64>,
    /// No pending day in the range: the answer counts every stored event.
    pub complete: bool,
}

/// `GET /api/v1/analytics/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub interval: Interval,
    pub series: Vec<UsagePoint>,
    pub top_events: Vec<Top>,
    /// Top values of `properties.feature`.
    pub top_features: Vec<Top>,
    pub funnels: Vec<FunnelResult>,
    pub rollup: RollupState,
}

/// A funnel's answer with the range and rollup state (`GET /api/v1/analytics/funnels/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunnelAnswer {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub steps: Vec<String>,
    pub funnel: FunnelResult,
    pub rollup: RollupState,
}

/// A day given as `YYYY-MM-DD` or an RFC 3339 time (its UTC day).
pub fn parse_day(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let ms = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0);
        return Ok(super::day_of(ms));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| super::day_of(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::Unprocessable(format!(
                "{name} must be a date (YYYY-MM-DD) or an RFC 3339 time, got {v:?}"
            ))
        })
}

/// `from`/`to` with defaults (the 28 days ending today), checked.
pub fn range(from: Option<&str>, to: Option<&str>, today: i64) -> Result<(i64, i64), ApiError> {
    // `?from=` (empty) means "not given", as for every other optional query parameter.
    let (from, to) = (from.filter(|v| !v.is_empty()), to.filter(|v| !v.is_empty()));
    let to = match to {
        Some(v) => parse_day("to", v)?,
        None => today,
    };
    let from = match from {
        Some(v) => parse_day("from", v)?,
        None => to - 27,
    };
    if from > to {
        return Err(ApiError::Unprocessable(format!(
            "from ({}) is after to ({})",
            date_of(from),
            date_of(to)
        )));
    }
    if to - from + 1 > MAX_RANGE_DAYS {
        return Err(ApiError::Unprocessable(format!(
            "the range covers {} days; at most {MAX_RANGE_DAYS}",
            to - from + 1
        )));
    }
    Ok((from, to))
}

/// Buckets `(first day, last day)` of `[from, to]`.
fn buckets(from: i64, to: i64, interval: Interval) -> Vec<(i64, i64)> {
    use chrono::Datelike;
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let date = chrono::DateTime::from_timestamp_millis(start * DAY_MS)
            .map(|t| t.date_naive())
            .unwrap_or_default();
        let len = match interval {
            Interval::Day => 1,
            Interval::Week => 7 - i64::from(date.weekday().num_days_from_monday()),
            Interval::Month => {
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                let next = chrono::NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(date);
                (next - date).num_days().max(1)
            }
        };
        let end = (start + len - 1).min(to);
        out.push((start, end));
        start = end + 1;
    }
    out
}

#[derive(sqlx::FromRow)]
struct ActiveRow {
    day: i64,
    dau: i64,
    wau: i64,
    mau: i64,
    events: i64,
}

/// What a usage answer is computed from, cheaply read: a cached answer whose stamp equals
/// the tenant's current one was computed from the same rollup rows. Every change to a
/// tenant's rollups moves it — a recomputed day rewrites `computed_at` of its DAU/WAU/MAU
/// rows, a pass removes or bumps dirty marks, pruning drops rows, a funnel definition
/// changes its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    active: (i64, i64, i64),
    dirty: (i64, i64, i64),
    funnels: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UsageKey {
    tenant: String,
    from: i64,
    to: i64,
    interval: Interval,
    limit: i64,
}

/// Answers most recently computed, per tenant and query (at most [`CACHE_ENTRIES`]), with
/// when each was last asked for.
#[derive(Default)]
pub struct UsageCache {
    entries: std::collections::HashMap<UsageKey, (Stamp, Usage, std::time::Instant)>,
    order: std::collections::VecDeque<UsageKey>,
}

/// Usage answers kept per process.
pub const CACHE_ENTRIES: usize = 64;
/// The roller refreshes a kept answer only if it was asked for this recently (an answer
/// nobody reads costs nothing to keep current).
pub const REFRESH_IF_USED_WITHIN: std::time::Duration = std::time::Duration::from_secs(600);

impl UsageCache {
    fn get(&mut self, k: &UsageKey, stamp: &Stamp) -> Option<Usage> {
        let (s, u, used) = self.entries.get_mut(k)?;
        *used = std::time::Instant::now();
        (s == stamp).then(|| u.clone())
    }

    /// Kept queries asked for recently, with the stamp of their answer.
    fn recent(&self) -> Vec<(UsageKey, Stamp)> {
        self.entries
            .iter()
            .filter(|(_, (_, _, used))| used.elapsed() < REFRESH_IF_USED_WITHIN)
            .map(|(k, (s, _, _))| (k.clone(), s.clone()))
            .collect()
    }

    fn put(&mut self, k: UsageKey, stamp: Stamp, u: Usage) {
        let used = self
            .entries
            .get(&k)
            .map_or_else(std::time::Instant::now, |e| e.2);
        if self.entries.insert(k.clone(), (stamp, u, used)).is_none() {
            self.order.push_back(k);
            while self.order.len() > CACHE_ENTRIES {
                if let Some(old) = self.order.pop_front() {
                    self.entries.remove(&old);
                }
            }
        }
    }
}

impl Analytics {
    /// `GET /api/v1/analytics/usage`. The answer is computed from the rollup tables and
    /// kept with the tenant's [`Stamp`]; while the stamp stays the same (no rollup of the
    /// tenant changed) the same query is answered from memory, with the rollup state read
    /// fresh. The roller refreshes kept answers after each pass ([`Self::refresh_usage`]),
    /// so the console's query is usually answered without recomputing.
    pub async fn usage(
        &self,
        tenant: &str,
        (from, to): (i64, i64),
        interval: Interval,
        limit: i64,
    ) -> Result<Usage, sqlx::Error> {
        let funnels = self.funnels(tenant).await?;
        // Stamp first: rows that change while the answer is computed move the stamp, so
        // the next request recomputes instead of trusting a mixed answer.
        let stamp = self.stamp(tenant, &funnels).await?;
        let key = UsageKey {
            tenant: tenant.to_string(),
            from,
            to,
            interval,
            limit,
        };
        let cached = self
            .usage_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key, &stamp);
        if let Some(mut u) = cached {
            u.rollup = self.rollup_state(tenant, from, to).await?;
            return Ok(u);
        }
        let u = self
            .compute_usage(tenant, (from, to), interval, limit, funnels)
            .await?;
        self.usage_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, stamp, u.clone());
        Ok(u)
    }

    /// The tenant's [`Stamp`].
    pub async fn stamp(&self, tenant: &str, funnels: &[FunnelDef]) -> Result<Stamp, sqlx::Error> {
        // One round trip: the DAU/WAU/MAU rows and the dirty marks of the tenant.
        let (a0, a1, a2, d0, d1, d2): (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT a.n, a.s, a.m, d.n, d.g, d.t FROM \
             (SELECT COUNT(*) AS n, CAST(COALESCE(SUM(computed_at), 0) AS BIGINT) AS s, \
              CAST(COALESCE(MIN(day), 0) AS BIGINT) AS m \
              FROM analytics_daily_active WHERE tenant_id = $1) a, \
             (SELECT COUNT(*) AS n, CAST(COALESCE(SUM(generation), 0) AS BIGINT) AS g, \
              CAST(COALESCE(SUM(marked_at), 0) AS BIGINT) AS t \
              FROM analytics_dirty_days WHERE tenant_id = $1) d",
        )
        .bind(tenant)
        .fetch_one(self.store.reader())
        .await?;
        Ok(Stamp {
            active: (a0, a1, a2),
            dirty: (d0, d1, d2),
            funnels: funnels
                .iter()
                .map(|f| (f.name.clone(), f.fingerprint()))
                .collect(),
        })
    }

    /// Recompute the kept answers whose tenant's rollups changed and that were asked for in
    /// the last [`REFRESH_IF_USED_WITHIN`] (the roller calls this after each pass, so the
    /// next request finds a current answer).
    pub async fn refresh_usage(&self) -> Result<usize, sqlx::Error> {
        let kept = self
            .usage_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent();
        let mut n = 0;
        for (k, old) in kept {
            let funnels = self.funnels(&k.tenant).await?;
            let stamp = self.stamp(&k.tenant, &funnels).await?;
            if stamp == old {
                continue;
            }
            let u = self
                .compute_usage(&k.tenant, (k.from, k.to), k.interval, k.limit, funnels)
                .await?;
            self.usage_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(k, stamp, u);
            n += 1;
        }
        Ok(n)
    }

    /// The answer, computed from the rollup tables.
    async fn compute_usage(
        &self,
        tenant: &str,
        (from, to): (i64, i64),
        interval: Interval,
        limit: i64,
        funnel_defs: Vec<FunnelDef>,
    ) -> Result<Usage, sqlx::Error> {
        // Read first: marks are removed only after a day's rollups are all written, so "no
        // mark now" means every row read below is complete as of this moment.
        let rollup = self.rollup_state(tenant, from, to).await?;
        let rows = sqlx::query_as::<_, ActiveRow>(
            "SELECT day, dau, wau, mau, events FROM analytics_daily_active \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(self.store.reader())
        .await?;
        let by_day: std::collections::HashMap<i64, &ActiveRow> =
            rows.iter().map(|r| (r.day, r)).collect();
        let series = buckets(from, to, interval)
            .into_iter()
            .map(|(start, end)| {
                let last = by_day.get(&end);
                UsagePoint {
                    date: date_of(start),
                    end: date_of(end),
                    dau: last.map_or(0, |r| r.dau),
                    wau: last.map_or(0, |r| r.wau),
                    mau: last.map_or(0, |r| r.mau),
                    events: (start..=end)
                        .filter_map(|d| by_day.get(&d))
                        .map(|r| r.events)
                        .sum(),
                }
            })
            .collect();
        let top_events = self.top(tenant, "event", from, to, limit).await?;
        let top_features = self.top(tenant, "feature", from, to, limit).await?;
        let mut funnels = Vec::new();
        for f in &funnel_defs {
            funnels.push(self.funnel_result(tenant, f, from, to).await?);
        }
        Ok(Usage {
            tenant: tenant.to_string(),
            from: date_of(from),
            to: date_of(to),
            interval,
            series,
            top_events,
            top_features,
            funnels,
            rollup,
        })
    }

    /// Top names of a kind by events, with exact distinct users over the range.
    async fn top(
        &self,
        tenant: &str,
        kind: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<Top>, sqlx::Error> {
        let tops: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, CAST(SUM(events) AS BIGINT) AS n FROM analytics_daily_counts \
             WHERE tenant_id = $1 AND kind = $2 AND day >= $3 AND day <= $4 \
             GROUP BY name ORDER BY n DESC, name LIMIT $5",
        )
        .bind(tenant)
        .bind(kind)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(self.store.reader())
        .await?;
        let mut out = Vec::with_capacity(tops.len());
        for (name, events) in tops {
            // One day: the day's distinct users are stored; longer: distinct over the days.
            let users: i64 = if from == to {
                sqlx::query_scalar(
                    "SELECT users FROM analytics_daily_counts WHERE tenant_id = $1 AND day = $2 \
                     AND kind = $3 AND name = $4",
                )
                .bind(tenant)
                .bind(from)
                .bind(kind)
                .bind(&name)
                .fetch_one(self.store.reader())
                .await?
            } else {
                sqlx::query_scalar(
                    "SELECT COUNT(DISTINCT distinct_id) FROM analytics_daily_users \
                     WHERE tenant_id = $1 AND kind = $2 AND name = $3 AND day >= $4 AND day <= $5",
                )
                .bind(tenant)
                .bind(kind)
                .bind(&name)
                .bind(from)
                .bind(to)
                .fetch_one(self.store.reader())
                .await?
            };
            out.push(Top {
                name,
                events,
                users,
            });
        }
        Ok(out)
    }

    pub async fn funnel_result(
        &self,
        tenant: &str,
        f: &FunnelDef,
        from: i64,
        to: i64,
    ) -> Result<FunnelResult, sqlx::Error> {
        let rows: Vec<(String, i64, crate::store::Json<Vec<i64>>)> = sqlx::query_as(
            "SELECT distinct_id, day, step_ts FROM analytics_funnel_entries WHERE tenant_id = $1 \
             AND funnel = $2 AND fingerprint = $3 AND day >= $4 AND day <= $5",
        )
        .bind(tenant)
        .bind(&f.name)
        .bind(f.fingerprint())
        .bind(from)
        .bind(to)
        .fetch_all(self.store.reader())
        .await
        .map_err(crate::store::in_table("analytics_funnel_entries", None))?;
        Ok(summarise(
            f,
            rows.into_iter().map(|(u, d, t)| (u, d, t.0)).collect(),
        ))
    }

    /// Pending days in the range and the tenant's lag.
    pub async fn rollup_state(
        &self,
        tenant: &str,
        from: i64,
        to: i64,
    ) -> Result<RollupState, sqlx::Error> {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM analytics_dirty_days WHERE tenant_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_one(self.store.reader())
        .await?;
        Ok(RollupState {
            pending_days: pending,
            lag_secs: self.lag_secs(Some(tenant)).await?,
            complete: pending == 0,
        })
    }

    /// Figures of the status summary.
    pub async fn tenant_status(
        &self,
        tenant: &str,
        today: i64,
    ) -> Result<TenantStatus, sqlx::Error> {
        let (events, today_events, dau): (i64, i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN day = $2 THEN events ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(MAX(CASE WHEN day = $2 THEN dau ELSE 0 END), 0) AS BIGINT) \
             FROM analytics_daily_active WHERE tenant_id = $1",
        )
        .bind(tenant)
        .bind(today)
        .fetch_one(self.store.reader())
        .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM analytics_dirty_days WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(self.store.reader())
                .await?;
        Ok(TenantStatus {
            events_rolled_up: events,
            events_today: today_events,
            dau_today: dau,
            pending_days: pending,
            lag_secs: self.lag_secs(Some(tenant)).await?,
        })
    }
}

pub struct TenantStatus {
    pub events_rolled_up: i64,
    pub events_today: i64,
    pub dau_today: i64,
    pub pending_days: i64,
    pub lag_secs: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_range() {
        // 2026-11-30 is a Monday (day 20422).
        let mon = parse_day("d", "2026-11-30").unwrap();
        let b = buckets(mon - 2, mon + 8, Interval::Week);
        assert_eq!(
            b,
            vec![(mon - 2, mon - 1), (mon, mon + 6), (mon + 7, mon + 8)]
        );
        let b = buckets(mon, mon + 2, Interval::Day);
        assert_eq!(b.len(), 3);
        let nov1 = parse_day("d", "2026-11-01").unwrap();
        let b = buckets(nov1 + 5, nov1 + 40, Interval::Month);
        assert_eq!(b, vec![(nov1 + 5, nov1 + 29), (nov1 + 30, nov1 + 40)]);
        assert!(range(Some("2026-12-02"), Some("2026-12-01"), 0).is_err());
        assert!(range(Some("2025-01-01"), Some("2026-12-01"), 0).is_err());
        assert!(range(Some("nope"), None, 0).is_err());
        assert_eq!(range(None, None, 100).unwrap(), (73, 100));
    }

    #[test]
    fn the_cache_answers_only_the_same_stamp_and_keeps_the_newest_entries() {
        let stamp = |n| Stamp {
            active: (n, n, 0),
            dirty: (0, 0, 0),
            funnels: Vec::new(),
        };
        let key = |t: i64| UsageKey {
            tenant: "t".into(),
            from: t,
            to: t,
            interval: Interval::Day,
            limit: 10,
        };
        let answer = Usage {
            tenant: "t".into(),
            from: String::new(),
            to: String::new(),
            interval: Interval::Day,
            series: Vec::new(),
            top_events: Vec::new(),
            top_features: Vec::new(),
            funnels: Vec::new(),
            rollup: RollupState {
                pending_days: 0,
                lag_secs: None,
                complete: true,
            },
        };
        let mut c = UsageCache::default();
        c.put(key(0), stamp(1), answer.clone());
        assert!(c.get(&key(0), &stamp(1)).is_some());
        assert_eq!(
            c.recent().len(),
            1,
            "asked for just now: refreshed by the roller"
        );
        assert!(c.get(&key(0), &stamp(2)).is_none(), "rollups changed");
        assert!(c.get(&key(1), &stamp(1)).is_none(), "another query");
        for t in 1..=CACHE_ENTRIES as i64 {
            c.put(key(t), stamp(1), answer.clone());
        }
        assert_eq!(c.entries.len(), CACHE_ENTRIES);
        assert!(c.get(&key(0), &stamp(1)).is_none(), "the oldest went");
        assert!(c.get(&key(CACHE_ENTRIES as i64), &stamp(1)).is_some());
    }
}
