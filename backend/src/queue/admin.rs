//! Reading and administering jobs: get, list, retry, purge, health, pause, lease
//! reclaim, poison quarantine, metrics and pruning. Other areas use these functions
//! instead of naming `queue_jobs` in their own SQL.

use std::sync::atomic::Ordering;

use serde_json::json;
use sqlx::Row as _;

use super::model::{Depth, Health, Job, JobRow, JobState, RetryOutcome, JOB_COLUMNS};
use super::{Queue, STATES};
use crate::audit::{self, NewAudit};
use crate::store::Store;
use crate::util::now_ms;

/// Jobs in flight, spelled as an OR so the planner can combine the three partial indexes.
const ACTIVE: &str = "(state = 'queued' OR state = 'running' OR state = 'failed')";
/// Finished jobs (succeeded, dead): the rows of `queue_jobs_done`.
const FINISHED: &str = "finished_at IS NOT NULL";

impl Queue {
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<Job>, sqlx::Error> {
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM queue_jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.store.reader())
        .await?;
        Ok(row.map(Job::from))
    }

    /// Newest first, optionally filtered by state and kind.
    ///
    /// No index covers all of a tenant's jobs (each job version sits only in its state's
    /// partial index, which keeps claims and acknowledgements cheap), so the query names
    /// the states it reads: finished jobs come newest first from `queue_jobs_done`, and
    /// jobs still in flight (the backlog) from the ready, running and retry indexes.
    pub async fn list(
        &self,
        tenant: &str,
        state: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Job>, sqlx::Error> {
        let part = |which: &str| {
            format!(
                "SELECT {JOB_COLUMNS} FROM queue_jobs WHERE tenant_id = $1 AND {which} \
                 AND ($2 = '' OR state = $2) AND ($3 = '' OR kind = $3) \
                 ORDER BY enqueued_at DESC, id DESC LIMIT $4"
            )
        };
        let sql = match state {
            Some("succeeded" | "dead") => part(FINISHED),
            Some(_) => part(ACTIVE),
            None => format!(
                "SELECT * FROM ({}) a UNION ALL SELECT * FROM ({}) f \
                 ORDER BY enqueued_at DESC, id DESC LIMIT $4",
                part(ACTIVE),
                part(FINISHED)
            ),
        };
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(state.unwrap_or(""))
            .bind(kind.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.store.reader())
            .await?;
        Ok(rows.into_iter().map(Job::from).collect())
    }

    /// Dead → queued (attempts reset). Audited in the same transaction.
    pub async fn retry(
        &self,
        tenant: &str,
        id: &str,
        audit_rec: Option<NewAudit>,
    ) -> Result<RetryOutcome, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        let n = sqlx::query(
            "UPDATE queue_jobs SET state = 'queued', attempts = 0, fast_failures = 0, run_at = $1, \
             lease_until = NULL, finished_at = NULL, updated_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND state = 'dead'",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM queue_jobs WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            tx.rollback().await?;
            return Ok(match state {
                Some(s) => RetryOutcome::NotDead(
                    JobState::try_from(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                ),
                None => RetryOutcome::NotFound,
            });
        }
        if let Some(rec) = audit_rec {
            audit::append(&self.store, &mut tx, rec).await?;
        }
        self.notify_tx(&mut tx).await?;
        tx.commit().await?;
        tracing::info!(target: "queue", job_id = %id, tenant, "dead job requeued by retry");
        self.wake.notify_one();
        Ok(RetryOutcome::Requeued)
    }

    /// Delete the tenant's dead jobs; returns how many.
    pub async fn purge_dead(
        &self,
        tenant: &str,
        audit_rec: Option<NewAudit>,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.store.begin_write().await?;
        let n = sqlx::query("DELETE FROM queue_jobs WHERE tenant_id = $1 AND state = 'dead' AND finished_at IS NOT NULL")
            .bind(tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(rec) = audit_rec {
            audit::append(&self.store, &mut tx, rec.detail(json!({ "purged": n }))).await?;
        }
        tx.commit().await?;
        tracing::info!(target: "queue", tenant, purged = n, "dead-letter queue purged");
        Ok(n)
    }

    /// Depth, lag and throughput of `tenant`'s jobs, plus fleet-wide workers and pause.
    pub async fn health(&self, tenant: &str) -> Result<Health, sqlx::Error> {
        let now = now_ms();
        let r = self.store.reader();
        // One pass over the tenant's rows for depth, lag and throughput: dashboards (and the
        // drain benchmark) poll this while the queue is busy, and each pass over a large
        // backlog costs milliseconds of database time. In flight and finished are read
        // apart, each through its partial indexes (no index covers every state), as
        // filtered aggregates: grouping by state through a UNION cost twice as much per row.
        let row = sqlx::query(&format!(
            "SELECT a.queued, a.running, a.failed, a.due, a.enq, f.succeeded, f.dead, f.recent FROM \
             (SELECT COUNT(*) FILTER (WHERE state = 'queued') AS queued, \
                     COUNT(*) FILTER (WHERE state = 'running') AS running, \
                     COUNT(*) FILTER (WHERE state = 'failed') AS failed, \
                     MIN(run_at) FILTER (WHERE state <> 'running' AND run_at <= $2) AS due, \
                     MIN(enqueued_at) FILTER (WHERE state <> 'running' AND run_at <= $2) AS enq \
              FROM queue_jobs WHERE tenant_id = $1 AND {ACTIVE}) a, \
             (SELECT COUNT(*) FILTER (WHERE state = 'succeeded') AS succeeded, \
                     COUNT(*) FILTER (WHERE state = 'dead') AS dead, \
                     COUNT(*) FILTER (WHERE finished_at >= $3) AS recent \
              FROM queue_jobs WHERE tenant_id = $1 AND {FINISHED}) f"
        ))
        .bind(tenant)
        .bind(now)
        .bind(now - 60_000)
        .fetch_one(r)
        .await?;
        let depth = Depth {
            queued: row.try_get("queued")?,
            running: row.try_get("running")?,
            failed: row.try_get("failed")?,
            dead: row.try_get("dead")?,
            succeeded: row.try_get("succeeded")?,
        };
        // Ready = queued and due, or failed and due for its retry.
        let due: Option<i64> = row.try_get("due")?;
        let enq: Option<i64> = row.try_get("enq")?;
        let throughput: i64 = row.try_get("recent")?;
        Ok(Health {
            depth,
            lag_ms: due.map(|d| (now - d).max(0)).unwrap_or(0),
            oldest_ready_age_s: enq.map(|e| (now - e).max(0) / 1000).unwrap_or(0),
            throughput_per_min: throughput,
            workers: self.live_workers().await?,
            paused: self.is_paused_db().await?,
        })
    }

    /// Worker slots of pools whose heartbeat is recent, across replicas.
    pub async fn live_workers(&self) -> Result<i64, sqlx::Error> {
        let since = now_ms() - 3 * self.heartbeat_ms() as i64;
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(concurrency) AS BIGINT) FROM queue_workers WHERE last_seen >= $1",
        )
        .bind(since)
        .fetch_one(self.store.reader())
        .await?;
        Ok(n.unwrap_or(0))
    }

    pub(crate) fn heartbeat_ms(&self) -> u64 {
        (self.cfg.lease_ms as u64 / 4).clamp(100, 5000)
    }

    /// Whether workers are paused (cached; refreshed from the database by the pool).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The pause flag as stored (shared by every replica).
    pub async fn is_paused_db(&self) -> Result<bool, sqlx::Error> {
        let p: i64 = sqlx::query_scalar("SELECT paused FROM queue_control WHERE id = 1")
            .fetch_one(self.store.reader())
            .await?;
        self.paused.store(p != 0, Ordering::Relaxed);
        Ok(p != 0)
    }

    /// Stop claiming on every replica; in-flight jobs finish.
    pub async fn pause(&self) -> Result<bool, sqlx::Error> {
        self.set_paused(true, "system", None).await
    }

    /// Resume claiming on every replica.
    pub async fn resume(&self) -> Result<bool, sqlx::Error> {
        self.set_paused(false, "system", None).await
    }

    /// Set the shared pause flag; `audit_rec` commits with it. Returns whether it changed.
    pub async fn set_paused(
        &self,
        paused: bool,
        by: &str,
        audit_rec: Option<NewAudit>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.store.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE queue_control SET paused = $1, updated_at = $2, updated_by = $3 \
             WHERE id = 1 AND paused <> $1",
        )
        .bind(paused as i64)
        .bind(now_ms())
        .bind(by)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if let Some(rec) = audit_rec {
            audit::append(
                &self.store,
                &mut tx,
                rec.detail(json!({ "paused": paused, "changed": changed })),
            )
            .await?;
        }
        self.notify_payload(&mut tx, "control").await?;
        tx.commit().await?;
        self.paused.store(paused, Ordering::Relaxed);
        metrics::gauge!("echopilot_queue_paused").set(paused as i64 as f64);
        tracing::info!(target: "queue", paused, changed, by, "queue pause flag set");
        self.wake.notify_waiters();
        self.wake.notify_one();
        Ok(changed)
    }

    /// Jobs in state `queued` across all tenants (fleet-level telemetry).
    pub async fn queued_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM queue_jobs WHERE state = 'queued'")
            .fetch_one(self.store.reader())
            .await
    }

    /// Requeue jobs whose lease expired (their worker died). Jobs out of attempts go dead.
    /// Returns the ids requeued and dead-lettered.
    pub async fn reclaim_expired(&self) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        let requeued: Vec<String> = sqlx::query_scalar(
            "UPDATE queue_jobs SET state = 'queued', run_at = $1, lease_until = NULL, \
             error = 'lease expired: worker ' || COALESCE(worker, '?') || ' stopped heartbeating', \
             updated_at = $1 \
             WHERE state = 'running' AND lease_until < $1 AND attempts < max_attempts RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let dead: Vec<String> = sqlx::query_scalar(
            "UPDATE queue_jobs SET state = 'dead', finished_at = $1, lease_until = NULL, \
             error = 'lease expired on the last attempt: worker ' || COALESCE(worker, '?') || ' stopped heartbeating', \
             updated_at = $1 \
             WHERE state = 'running' AND lease_until < $1 RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if !requeued.is_empty() {
            self.notify_tx(&mut tx).await?;
        }
        tx.commit().await?;
        for id in &requeued {
            tracing::warn!(target: "queue", job_id = %id, "lease expired; job requeued");
        }
        for id in &dead {
            tracing::warn!(target: "queue", job_id = %id, "lease expired on the last attempt; job dead-lettered");
        }
        if !requeued.is_empty() {
            metrics::counter!("echopilot_queue_reclaimed_total").increment(requeued.len() as u64);
            self.wake.notify_one();
        }
        if !dead.is_empty() {
            metrics::counter!("echopilot_queue_jobs_total", "kind" => "any", "outcome" => "dead")
                .increment(dead.len() as u64);
        }
        Ok((requeued, dead))
    }

    /// Jobs that failed almost at once on `threshold` consecutive attempts and are waiting
    /// for another retry (failed, or already promoted to queued) → dead (they would only burn workers). Returns their ids.
    pub async fn quarantine_poison(&self, threshold: i64) -> Result<Vec<String>, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE queue_jobs SET state = 'dead', finished_at = $1, updated_at = $1, \
             error = 'quarantined by self-heal as poison (failed at once ' || fast_failures || ' times in a row); last error: ' || COALESCE(error, '') \
             WHERE state IN ('failed', 'queued') AND fast_failures >= $2 RETURNING id",
        )
        .bind(now)
        .bind(threshold)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for id in &ids {
            tracing::warn!(target: "queue", job_id = %id, "poison job moved to dead");
        }
        Ok(ids)
    }

    /// Global depth by state and lag, for `/metrics`.
    pub async fn sample_metrics(&self) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM queue_jobs GROUP BY state")
            .fetch_all(self.store.reader())
            .await?;
        let mut seen = std::collections::HashMap::new();
        for row in rows {
            let s: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            seen.insert(s, n);
        }
        for s in STATES {
            let n = seen.get(s).copied().unwrap_or(0);
            metrics::gauge!("echopilot_queue_depth", "state" => s).set(n as f64);
        }
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_at) FROM queue_jobs WHERE state = 'queued' AND run_at <= $1",
        )
        .bind(now)
        .fetch_one(self.store.reader())
        .await?;
        metrics::gauge!("echopilot_queue_lag_ms")
            .set(due.map(|d| (now - d).max(0)).unwrap_or(0) as f64);
        metrics::gauge!("echopilot_queue_paused").set(self.is_paused_db().await? as i64 as f64);
        Ok(())
    }
}

/// Delete finished jobs (succeeded, and dead too when `include_dead`) that finished before
/// `before_ms`, in chunks so no single statement holds the writer for long. For the
/// retention job; returns how many were deleted.
pub async fn prune_finished(
    store: &Store,
    before_ms: i64,
    include_dead: bool,
) -> Result<u64, sqlx::Error> {
    let states = if include_dead {
        "('succeeded', 'dead')"
    } else {
        "('succeeded')"
    };
    let sql = format!(
        "DELETE FROM queue_jobs WHERE id IN (SELECT id FROM queue_jobs \
         WHERE finished_at < $1 AND state IN {states} LIMIT 5000)"
    );
    let mut total = 0;
    loop {
        let n = sqlx::query(&sql)
            .bind(before_ms)
            .execute(store.writer())
            .await?
            .rows_affected();
        total += n;
        if n < 5000 {
            break;
        }
    }
    if total > 0 {
        tracing::info!(target: "queue", deleted = total, include_dead, "finished jobs pruned");
    }
    Ok(total)
}
