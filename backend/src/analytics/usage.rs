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
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
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

impl Analytics {
    pub async fn usage(
        &self,
        tenant: &str,
        (from, to): (i64, i64),
        interval: Interval,
        limit: i64,
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
        for f in self.funnels(tenant).await? {
            funnels.push(self.funnel_result(tenant, &f, from, to).await?);
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
}
