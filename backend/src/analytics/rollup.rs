//! Rollups. Ingestion marks each (tenant, day) that got new events dirty; the roller
//! (every `rollup_interval_secs`, on the leader) and the daily `analytics_rollup` job
//! recompute marked days from the raw events:
//!
//! - `analytics_daily_users`: distinct users of the day (all events, per event, per
//!   feature), replaced as a whole for the day;
//! - `analytics_daily_counts`: events and distinct users per event / feature and day;
//! - `analytics_daily_active`: exact DAU / WAU / MAU — distinct users over the 1 / 7 / 28
//!   days ending that day — for the recomputed day and the 27 days after it;
//! - `analytics_funnel_entries`: each funnel's entries of the day and of the days before
//!   it whose window reaches into it.
//!
//! Every recompute replaces rows (delete + insert in one transaction), so recomputing a
//! day any number of times gives the same rows. A mark is removed only if no event
//! arrived for that day during the recompute (its `generation` is unchanged).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::funnel::{progress, FunnelDef};
use super::{day_of, Analytics, DAY_MS, ROLLUP_DAYS_TOTAL, ROLLUP_LAG};
use crate::app::AppState;
use crate::store::{values_rows, Tx};
use crate::util::now_ms;

/// Most dirty days taken in one pass.
const PASS_DAYS: i64 = 400;
/// Days after a day whose MAU includes it.
const MAU_DAYS: i64 = 28;
const WAU_DAYS: i64 = 7;
/// The kinds of `analytics_daily_users` rows: (kind, the name column, the GROUP BY column
/// — none for the constant name of `all`, which PostgreSQL refuses to group by — and an
/// extra filter).
const DAILY_USER_KINDS: [(&str, &str, &str, &str); 3] = [
    ("all", "''", "", ""),
    ("event", "event", "event, ", ""),
    (
        "feature",
        "feature",
        "feature, ",
        " AND feature IS NOT NULL",
    ),
];
/// Tenant id under which the config funnels' fingerprints are kept.
pub const CONFIG_TENANT: &str = "_config";

/// Mark days of a tenant dirty (inside the ingesting transaction).
pub async fn mark_dirty(
    tx: &mut Tx,
    tenant: &str,
    days: &BTreeSet<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    if days.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO analytics_dirty_days (tenant_id, day, marked_at, generation) VALUES {} \
         ON CONFLICT (tenant_id, day) DO UPDATE SET generation = analytics_dirty_days.generation + 1",
        values_rows(days.len(), 4)
    );
    let mut q = sqlx::query(&sql);
    for d in days {
        q = q.bind(tenant).bind(*d).bind(now).bind(1i64);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// One day that could not be recomputed (it stays marked and is retried).
#[derive(Debug, Clone, Serialize)]
pub struct DayError {
    pub tenant: String,
    pub day: String,
    pub stage: &'static str,
    pub error: String,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PassReport {
    pub tenants: usize,
    pub days: usize,
    pub active_days: usize,
    pub funnel_days: usize,
    pub errors: Vec<DayError>,
    /// (tenant, day) of each day recomputed, in order.
    #[serde(skip)]
    pub recomputed: Vec<(String, i64)>,
}

#[derive(sqlx::FromRow)]
struct Mark {
    tenant_id: String,
    day: i64,
    generation: i64,
}

pub fn date_of(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

impl Analytics {
    /// Keep the config funnels' fingerprints; a changed or new config funnel marks every
    /// day with events dirty, so its entries are backfilled.
    pub async fn sync_config_funnels(&self) -> Result<(), sqlx::Error> {
        let mut changed = false;
        for f in &self.cfg.funnels {
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT fingerprint FROM analytics_funnels WHERE tenant_id = $1 AND name = $2",
            )
            .bind(CONFIG_TENANT)
            .bind(&f.name)
            .fetch_optional(self.store.reader())
            .await?;
            if stored.as_deref() != Some(f.fingerprint().as_str()) {
                self.save_funnel(CONFIG_TENANT, f, "config").await?;
                changed = true;
            }
        }
        if changed {
            let tenants: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT tenant_id FROM analytics_daily_active")
                    .fetch_all(self.store.reader())
                    .await?;
            for t in tenants {
                self.mark_all_days(&t).await?;
            }
        }
        Ok(())
    }

    /// Store a funnel definition (upsert).
    pub async fn save_funnel(
        &self,
        tenant: &str,
        f: &FunnelDef,
        actor: &str,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO analytics_funnels (tenant_id, name, steps, window_secs, fingerprint, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET steps = $3, window_secs = $4, \
             fingerprint = $5, created_by = $6, updated_at = $7",
        )
        .bind(tenant)
        .bind(&f.name)
        .bind(serde_json::to_string(&f.steps).unwrap_or_default())
        .bind(f.window_secs)
        .bind(f.fingerprint())
        .bind(actor)
        .bind(now)
        .execute(self.store.writer())
        .await?;
        Ok(())
    }

    /// Mark every day of the tenant that has rolled-up events (the backfill after a funnel
    /// definition changes). Returns how many.
    pub async fn mark_all_days(&self, tenant: &str) -> Result<usize, sqlx::Error> {
        let days: Vec<i64> = sqlx::query_scalar(
            "SELECT day FROM analytics_daily_active WHERE tenant_id = $1 AND dau > 0",
        )
        .bind(tenant)
        .fetch_all(self.store.reader())
        .await?;
        self.mark_days(tenant, days.into_iter().collect()).await
    }

    /// Mark these days of the tenant dirty.
    pub async fn mark_days(&self, tenant: &str, days: BTreeSet<i64>) -> Result<usize, sqlx::Error> {
        let n = days.len();
        let all: Vec<i64> = days.into_iter().collect();
        for chunk in all.chunks(500) {
            let mut tx = self.store.begin_write().await?;
            mark_dirty(&mut tx, tenant, &chunk.iter().copied().collect(), now_ms()).await?;
            tx.commit().await?;
        }
        Ok(n)
    }

    /// The funnels of a tenant: config funnels, replaced by the tenant's own of the same name.
    pub async fn funnels(&self, tenant: &str) -> Result<Vec<FunnelDef>, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            name: String,
            steps: crate::store::Json<Vec<String>>,
            window_secs: i64,
        }
        let rows = sqlx::query_as::<_, Row>(
            "SELECT name, steps, window_secs FROM analytics_funnels WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(self.store.reader())
        .await
        .map_err(crate::store::in_table("analytics_funnels", None))?;
        let mut out: BTreeMap<String, FunnelDef> = self
            .cfg
            .funnels
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        for r in rows {
            out.insert(
                r.name.clone(),
                FunnelDef {
                    name: r.name,
                    steps: r.steps.0,
                    window_secs: r.window_secs,
                    source: "api".into(),
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// One pass over the dirty marks (skipping `skip` tenants: module off for them).
    pub async fn roll_pending(&self, skip: &[String]) -> Result<PassReport, sqlx::Error> {
        let _guard = self.roll_lock.lock().await;
        let marks = sqlx::query_as::<_, Mark>(
            "SELECT tenant_id, day, generation FROM analytics_dirty_days \
             ORDER BY tenant_id, day LIMIT $1",
        )
        .bind(PASS_DAYS)
        .fetch_all(self.store.reader())
        .await?;
        let mut by_tenant: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for m in marks {
            if !skip.contains(&m.tenant_id) {
                by_tenant
                    .entry(m.tenant_id)
                    .or_default()
                    .push((m.day, m.generation));
            }
        }
        let mut report = PassReport::default();
        let today = day_of(now_ms());
        for (tenant, days) in &by_tenant {
            report.tenants += 1;
            self.roll_tenant(tenant, days, today, &mut report).await;
        }
        // Days whose WAU/MAU change only because time passed (no new events).
        let tenants: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, MAX(day), CAST(MAX(CASE WHEN dau > 0 THEN day ELSE 0 END) AS BIGINT) \
             FROM analytics_daily_active GROUP BY tenant_id",
        )
        .fetch_all(self.store.reader())
        .await?;
        for (tenant, last_row, last_data) in tenants {
            if skip.contains(&tenant) || last_row >= today || last_data + MAU_DAYS <= last_row {
                continue;
            }
            let upto = today.min(last_data + MAU_DAYS - 1);
            for day in (last_row + 1)..=upto {
                match self.recompute_active(&tenant, day).await {
                    Ok(()) => report.active_days += 1,
                    Err(e) => report.errors.push(DayError {
                        tenant: tenant.clone(),
                        day: date_of(day),
                        stage: "active",
                        error: e.to_string(),
                    }),
                }
            }
        }
        metrics::counter!(ROLLUP_DAYS_TOTAL).increment(report.days as u64);
        if let Ok(lag) = self.lag_secs(None).await {
            metrics::gauge!(ROLLUP_LAG).set(lag.unwrap_or(0.0));
        }
        Ok(report)
    }

    async fn roll_tenant(
        &self,
        tenant: &str,
        days: &[(i64, i64)],
        today: i64,
        report: &mut PassReport,
    ) {
        let funnels = match self.funnels(tenant).await {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(DayError {
                    tenant: tenant.into(),
                    day: String::new(),
                    stage: "funnels",
                    error: e.to_string(),
                });
                Vec::new()
            }
        };
        let mut done: Vec<(i64, i64)> = Vec::new();
        let mut active: BTreeSet<i64> = BTreeSet::new();
        let mut funnel_days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        let horizon = today.max(days.last().map(|d| d.0).unwrap_or(today));
        for &(day, generation) in days {
            match self.recompute_day(tenant, day).await {
                Ok(()) => {
                    report.days += 1;
                    report.recomputed.push((tenant.to_string(), day));
                    done.push((day, generation));
                    active.extend(day..=(day + MAU_DAYS - 1).min(horizon));
                    for f in &funnels {
                        funnel_days
                            .entry(f.name.clone())
                            .or_default()
                            .extend((day - f.window_days())..=day);
                    }
                }
                Err(e) => report.errors.push(DayError {
                    tenant: tenant.into(),
                    day: date_of(day),
                    stage: "day",
                    error: e.to_string(),
                }),
            }
        }
        for day in active {
            match self.recompute_active(tenant, day).await {
                Ok(()) => report.active_days += 1,
                Err(e) => report.errors.push(DayError {
                    tenant: tenant.into(),
                    day: date_of(day),
                    stage: "active",
                    error: e.to_string(),
                }),
            }
        }
        for f in &funnels {
            for &day in funnel_days.get(&f.name).into_iter().flatten() {
                match self.recompute_funnel_day(tenant, f, day).await {
                    Ok(()) => report.funnel_days += 1,
                    Err(e) => report.errors.push(DayError {
                        tenant: tenant.into(),
                        day: date_of(day),
                        stage: "funnel",
                        error: format!("funnel {}: {e}", f.name),
                    }),
                }
            }
        }
        for (day, generation) in done {
            let r = sqlx::query(
                "DELETE FROM analytics_dirty_days WHERE tenant_id = $1 AND day = $2 AND generation = $3",
            )
            .bind(tenant)
            .bind(day)
            .bind(generation)
            .execute(self.store.writer())
            .await;
            if let Err(e) = r {
                report.errors.push(DayError {
                    tenant: tenant.into(),
                    day: date_of(day),
                    stage: "unmark",
                    error: e.to_string(),
                });
            }
        }
    }

    /// Replace the day's per-user and per-name rows from the raw events.
    pub async fn recompute_day(&self, tenant: &str, day: i64) -> Result<(), sqlx::Error> {
        let (start, end) = (day * DAY_MS, (day + 1) * DAY_MS);
        let mut tx = self.store.begin_write().await?;
        for sql in [
            "DELETE FROM analytics_daily_users WHERE tenant_id = $1 AND day = $2",
            "DELETE FROM analytics_daily_counts WHERE tenant_id = $1 AND day = $2",
        ] {
            sqlx::query(sql)
                .bind(tenant)
                .bind(day)
                .execute(&mut *tx)
                .await?;
        }
        // One INSERT … SELECT per kind: every user of the day, per event, per feature.
        for (kind, name, group, only) in DAILY_USER_KINDS {
            let sql = format!(
                "INSERT INTO analytics_daily_users (tenant_id, kind, name, day, distinct_id, events) \
                 SELECT tenant_id, '{kind}', {name}, CAST($2 AS BIGINT), distinct_id, COUNT(*) \
                 FROM analytics_events WHERE tenant_id = $1 AND ts >= $3 AND ts < $4{only} \
                 GROUP BY tenant_id, {group}distinct_id"
            );
            sqlx::query(&sql)
                .bind(tenant)
                .bind(day)
                .bind(start)
                .bind(end)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO analytics_daily_counts (tenant_id, day, kind, name, events, users) \
             SELECT tenant_id, day, kind, name, CAST(SUM(events) AS BIGINT), COUNT(*) \
             FROM analytics_daily_users WHERE tenant_id = $1 AND day = $2 \
             GROUP BY tenant_id, day, kind, name",
        )
        .bind(tenant)
        .bind(day)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// DAU / WAU / MAU of one day from `analytics_daily_users`.
    pub async fn recompute_active(&self, tenant: &str, day: i64) -> Result<(), sqlx::Error> {
        let (dau, events, wau, mau): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM analytics_daily_users WHERE tenant_id = $1 AND kind = 'all' AND name = '' AND day = $2), \
             (SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM analytics_daily_users WHERE tenant_id = $1 AND kind = 'all' AND name = '' AND day = $2), \
             (SELECT COUNT(DISTINCT distinct_id) FROM analytics_daily_users WHERE tenant_id = $1 AND kind = 'all' AND name = '' AND day >= $3 AND day <= $2), \
             (SELECT COUNT(DISTINCT distinct_id) FROM analytics_daily_users WHERE tenant_id = $1 AND kind = 'all' AND name = '' AND day >= $4 AND day <= $2)",
        )
        .bind(tenant)
        .bind(day)
        .bind(day - WAU_DAYS + 1)
        .bind(day - MAU_DAYS + 1)
        .fetch_one(self.store.reader())
        .await?;
        sqlx::query(
            "INSERT INTO analytics_daily_active (tenant_id, day, dau, wau, mau, events, computed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, day) DO UPDATE SET \
             dau = $3, wau = $4, mau = $5, events = $6, computed_at = $7",
        )
        .bind(tenant)
        .bind(day)
        .bind(dau)
        .bind(wau)
        .bind(mau)
        .bind(events)
        .bind(now_ms())
        .execute(self.store.writer())
        .await?;
        Ok(())
    }

    /// Replace one funnel's entries of one day.
    pub async fn recompute_funnel_day(
        &self,
        tenant: &str,
        f: &FunnelDef,
        day: i64,
    ) -> Result<(), sqlx::Error> {
        let (start, end) = (day * DAY_MS, (day + 1) * DAY_MS);
        let entries: Vec<(String, i64)> = sqlx::query_as(
            "SELECT distinct_id, MIN(ts) FROM analytics_events WHERE tenant_id = $1 AND event = $2 \
             AND ts >= $3 AND ts < $4 GROUP BY distinct_id",
        )
        .bind(tenant)
        .bind(&f.steps[0])
        .bind(start)
        .bind(end)
        .fetch_all(self.store.reader())
        .await?;
        let mut rows: Vec<(String, Vec<i64>)> = Vec::with_capacity(entries.len());
        if !entries.is_empty() {
            let mut by_user: HashMap<String, Vec<(i64, String, String)>> = entries
                .iter()
                .map(|(u, _)| (u.clone(), Vec::new()))
                .collect();
            let names: BTreeSet<&str> = f.steps.iter().map(String::as_str).collect();
            let list = (0..names.len())
                .map(|i| format!("${}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT distinct_id, event, ts, uuid FROM analytics_events WHERE tenant_id = $1 \
                 AND ts >= $2 AND ts <= $3 AND event IN ({list})"
            );
            let mut q = sqlx::query_as::<_, (String, String, i64, String)>(&sql)
                .bind(tenant)
                .bind(start)
                .bind(end - 1 + f.window_ms());
            for n in &names {
                q = q.bind(*n);
            }
            for (user, event, ts, uuid) in q.fetch_all(self.store.reader()).await? {
                if let Some(v) = by_user.get_mut(&user) {
                    v.push((ts, uuid, event));
                }
            }
            for (user, entry_ts) in entries {
                let mut evs = by_user.remove(&user).unwrap_or_default();
                evs.sort();
                let evs: Vec<(i64, &str)> =
                    evs.iter().map(|(ts, _, e)| (*ts, e.as_str())).collect();
                rows.push((user, progress(f, entry_ts, &evs)));
            }
        }
        let fp = f.fingerprint();
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "DELETE FROM analytics_funnel_entries WHERE tenant_id = $1 AND funnel = $2 AND day = $3",
        )
        .bind(tenant)
        .bind(&f.name)
        .bind(day)
        .execute(&mut *tx)
        .await?;
        for chunk in rows.chunks(500) {
            let sql = format!(
                "INSERT INTO analytics_funnel_entries (tenant_id, funnel, fingerprint, day, \
                 distinct_id, reached, step_ts) VALUES {}",
                values_rows(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for (user, times) in chunk {
                q = q
                    .bind(tenant)
                    .bind(&f.name)
                    .bind(&fp)
                    .bind(day)
                    .bind(user)
                    .bind(times.len() as i64)
                    .bind(serde_json::to_string(times).unwrap_or_default());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Seconds since the oldest pending mark (of `tenant`, or of every tenant).
    pub async fn lag_secs(&self, tenant: Option<&str>) -> Result<Option<f64>, sqlx::Error> {
        let oldest: Option<i64> = match tenant {
            Some(t) => {
                sqlx::query_scalar(
                    "SELECT MIN(marked_at) FROM analytics_dirty_days WHERE tenant_id = $1",
                )
                .bind(t)
                .fetch_one(self.store.reader())
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT MIN(marked_at) FROM analytics_dirty_days")
                    .fetch_one(self.store.reader())
                    .await?
            }
        };
        Ok(oldest.map(|t| ((now_ms() - t).max(0)) as f64 / 1000.0))
    }

    /// Delete raw events and rollup rows older than the retention period, in batches.
    /// Returns rows deleted per table.
    pub async fn prune(&self, now: i64) -> Result<Vec<(&'static str, u64)>, sqlx::Error> {
        let cutoff_ms = now - self.cfg.retention_days * DAY_MS;
        let cutoff_day = day_of(cutoff_ms);
        let mut out = Vec::new();
        let mut n = 0u64;
        let tenants: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM analytics_daily_active")
                .fetch_all(self.store.reader())
                .await?;
        for t in tenants {
            loop {
                // Batches keep each write transaction short (SQLite has one writer).
                let r = sqlx::query(
                    "DELETE FROM analytics_events WHERE tenant_id = $1 AND uuid IN \
                     (SELECT uuid FROM analytics_events WHERE tenant_id = $1 AND ts < $2 LIMIT 5000)",
                )
                .bind(&t)
                .bind(cutoff_ms)
                .execute(self.store.writer())
                .await?
                .rows_affected();
                n += r;
                if r < 5000 {
                    break;
                }
            }
        }
        out.push(("analytics_events", n));
        for (table, sql) in [
            (
                "analytics_daily_users",
                "DELETE FROM analytics_daily_users WHERE day < $1",
            ),
            (
                "analytics_daily_counts",
                "DELETE FROM analytics_daily_counts WHERE day < $1",
            ),
            (
                "analytics_daily_active",
                "DELETE FROM analytics_daily_active WHERE day < $1",
            ),
            (
                "analytics_funnel_entries",
                "DELETE FROM analytics_funnel_entries WHERE day < $1",
            ),
            (
                "analytics_dirty_days",
                "DELETE FROM analytics_dirty_days WHERE day < $1",
            ),
        ] {
            let r = sqlx::query(sql)
                .bind(cutoff_day)
                .execute(self.store.writer())
                .await?
                .rows_affected();
            out.push((table, r));
        }
        Ok(out)
    }
}

/// Tenants that turned the module off (their days wait until it is back on).
async fn skipped_tenants(state: &AppState) -> Vec<String> {
    match state.service::<crate::marketplace::Marketplace>() {
        Some(m) => m.tenants_without("analytics").await.unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The roller: a pass every `rollup_interval_secs`, on the leader only (one roller per
/// fleet; on SQLite the single process leads).
pub fn spawn_roller(state: &AppState, a: Analytics) {
    let st = state.clone();
    let mut shutdown = state.shutdown.clone();
    let every = Duration::from_secs(a.cfg.rollup_interval_secs);
    state.spawn_background(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            if !st.jobs().is_some_and(|j| j.is_leader()) {
                continue;
            }
            let skip = skipped_tenants(&st).await;
            match a.roll_pending(&skip).await {
                Ok(r) if !r.errors.is_empty() => {
                    tracing::warn!(target: "analytics", days = r.days, errors = r.errors.len(),
                        first_error = %r.errors[0].error, "rollup pass had errors");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(target: "analytics", error = %e, "rollup pass failed"),
            }
            // Answers kept for the usage route whose rollups changed are recomputed now,
            // not on the next request.
            if let Err(e) = a.refresh_usage().await {
                tracing::warn!(target: "analytics", error = %e, "refreshing kept usage answers failed");
            }
        }
    });
}

/// Register `analytics_rollup`: daily at 03:15 UTC.
pub fn register(reg: &mut crate::jobs::JobRegistry) {
    reg.register(
        "analytics_rollup",
        "0 15 3 * * *",
        crate::jobs::handler(run_job),
    )
    .timeout(Duration::from_secs(3600))
    .describe("recomputes analytics rollups of marked days and the last days, prunes old events");
}

/// The daily job: mark the lookback days of every tenant with events, recompute every
/// marked day, prune past retention; one summary line in `analytics.ndjson`. Each
/// (tenant, day) recomputed is an artifact of the run's error ledger: a day that fails
/// stays marked (the roller retries it) and is recorded; a failed prune is blocking.
async fn run_job(ctx: crate::jobs::JobContext) -> anyhow::Result<Value> {
    use crate::jobs::LedgerError;
    let a = ctx
        .state
        .require::<Analytics>("analytics_rollup", "analytics")?;
    let now = now_ms();
    let today = day_of(now);
    let skip = skipped_tenants(&ctx.state).await;
    let tenants: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM analytics_daily_active")
            .fetch_all(a.store.reader())
            .await?;
    let lookback: BTreeSet<i64> = ((today - a.cfg.rollup_lookback_days)..=today).collect();
    for t in tenants.iter().filter(|t| !skip.contains(t)) {
        if let Err(e) = a.mark_days(t, lookback.clone()).await {
            ctx.ledger.error(
                LedgerError::new(format!("{t}/lookback"), "mark", e)
                    .fix("check the database; the next run marks these days again"),
            );
        }
    }
    let mut total = PassReport::default();
    loop {
        let r = a.roll_pending(&skip).await?;
        let failed_days = r.errors.iter().filter(|e| e.stage == "day").count();
        ctx.ledger.add_total((r.days + failed_days) as u64);
        ctx.ledger.add_processed(r.days as u64);
        let progressed = r.days > 0;
        total.tenants = total.tenants.max(r.tenants);
        total.days += r.days;
        total.active_days += r.active_days;
        total.funnel_days += r.funnel_days;
        total.errors.extend(r.errors);
        total.recomputed.extend(r.recomputed);
        // Stop when nothing is left or only failing days remain.
        if !progressed {
            break;
        }
    }
    for e in &total.errors {
        ctx.ledger.error(
            LedgerError::new(format!("{}/{}", e.tenant, e.day), e.stage, &e.error).fix(
                "the day stays marked and the roller retries it; POST /api/v1/analytics/rollup \
                 marks a range again once the cause is fixed",
            ),
        );
    }
    ctx.ledger.add_total(1);
    let pruned = match a.prune(now).await {
        Ok(p) => {
            ctx.ledger.add_processed(1);
            p.into_iter()
                .map(|(t, n)| (t.to_string(), json!(n)))
                .collect()
        }
        Err(e) => {
            ctx.ledger.error(
                LedgerError::new("retention", "prune", e)
                    .fix("check the database; rows past [analytics] retention_days stay until the next run")
                    .blocking(),
            );
            serde_json::Map::new()
        }
    };
    let lag = a.lag_secs(None).await.ok().flatten();
    let pruned_events = pruned
        .get("analytics_events")
        .and_then(|v: &Value| v.as_u64())
        .unwrap_or(0);
    tracing::info!(target: "analytics", event = "rollup", job_run_id = %ctx.run_id,
        days = total.days, active_days = total.active_days, funnel_days = total.funnel_days,
        errors = total.errors.len(), lag_secs = lag.unwrap_or(0.0), pruned_events,
        "analytics rollup done");
    Ok(json!({
        "days": total.days,
        "active_days": total.active_days,
        "funnel_days": total.funnel_days,
        "recomputed": total.recomputed.iter().map(|(t, d)| format!("{t}/{}", date_of(*d))).collect::<Vec<_>>(),
        "day_errors": total.errors.len(),
        "pruned": pruned,
        "retention_days": a.cfg.retention_days,
        "lag_secs": lag,
    }))
}
