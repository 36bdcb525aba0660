//! The worker pool of one process: a dispatcher that claims ready jobs in batches, a
//! handler task per claimed job (bounded by `queue.concurrency`), one acker that writes
//! results in batched transactions, and a heartbeat that extends leases.
//!
//! Why batches: on SQLite every write goes through one connection, and on PostgreSQL
//! each statement is a round trip; claiming N jobs per query and acknowledging N results
//! per transaction is what keeps throughput in the thousands of jobs per second.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Row as _;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::{backoff_ms, JobCtx, Queue, NOTIFY_CHANNEL};
use crate::store::Dialect;
use crate::util::now_ms;

/// An attempt that fails faster than this counts towards poison detection.
const FAST_FAILURE_MS: u128 = 1000;

pub(crate) struct Claimed {
    pub(crate) id: String,
    tenant_id: String,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
    fast_failures: i64,
    due: i64,
}

/// What a claim returns per job. `payload` stays TEXT here: a payload that is not JSON
/// fails that job's attempt (visibly) instead of failing the whole claimed batch.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    tenant_id: String,
    kind: String,
    payload: String,
    priority: i64,
    attempts: i64,
    max_attempts: i64,
    fast_failures: i64,
    run_at: i64,
    enqueued_at: i64,
}

/// The result of one attempt, waiting to be written.
struct Ack {
    id: String,
    attempt: i64,
    state: &'static str,
    result: Option<String>,
    error: Option<String>,
    run_at: Option<i64>,
    finished_at: Option<i64>,
    fast_failures: i64,
}

pub struct Pool {
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    acker: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
    sem: Arc<Semaphore>,
    q: Queue,
}

impl Pool {
    pub async fn start(q: Queue) -> anyhow::Result<Pool> {
        let (stop, stop_rx) = watch::channel(false);
        let sem = Arc::new(Semaphore::new(q.cfg.concurrency));
        // Bounded: when the database is slow to take acks, handlers wait instead of piling up.
        let (ack_tx, ack_rx) = mpsc::channel::<Ack>(q.cfg.batch_size * 4);
        register_worker(&q).await?;
        q.last_tick.store(now_ms(), Ordering::Relaxed);
        let acker = tokio::spawn(acker(q.clone(), ack_rx));
        let heartbeat = tokio::spawn(heartbeat(q.clone(), stop_rx.clone()));
        let dispatcher = tokio::spawn(dispatch(q.clone(), stop_rx, ack_tx, sem.clone()));
        metrics::gauge!("echopilot_queue_workers").set(q.cfg.concurrency as f64);
        tracing::info!(target: "queue", worker = %q.worker_id, concurrency = q.cfg.concurrency,
            batch_size = q.cfg.batch_size, lease_ms = q.cfg.lease_ms, "worker pool started");
        Ok(Pool {
            stop,
            dispatcher,
            acker,
            heartbeat,
            sem,
            q,
        })
    }

    pub fn finished(&self) -> bool {
        self.dispatcher.is_finished() || self.acker.is_finished() || self.heartbeat.is_finished()
    }

    pub async fn stop(self) {
        let q = self.q.clone();
        let _ = self.stop.send(true);
        q.wake.notify_waiters();
        let _ = self.dispatcher.await;
        // In-flight handlers finish (bounded) while the heartbeat keeps their leases.
        let all = self.sem.acquire_many(q.cfg.concurrency as u32);
        let drained = tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .is_ok();
        self.heartbeat.abort();
        let acker = self.acker;
        if tokio::time::timeout(Duration::from_secs(5), acker)
            .await
            .is_err()
        {
            tracing::warn!(target: "queue", "acknowledger did not finish in time");
        }
        // Anything still marked running by this worker goes back to the queue without
        // spending an attempt (it was interrupted, not failed).
        let now = now_ms();
        let released = sqlx::query(
            "UPDATE queue_jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, \
             run_at = $1, updated_at = $1 WHERE state = 'running' AND worker = $2",
        )
        .bind(now)
        .bind(&q.worker_id)
        .execute(q.store.writer())
        .await
        .map(|r| r.rows_affected())
        .unwrap_or_else(|e| {
            tracing::error!(target: "queue", error = %e, "could not release in-flight jobs");
            0
        });
        let _ = sqlx::query("DELETE FROM queue_workers WHERE id = $1")
            .bind(&q.worker_id)
            .execute(q.store.writer())
            .await;
        metrics::gauge!("echopilot_queue_workers").set(0.0);
        tracing::info!(target: "queue", worker = %q.worker_id, drained, released, "worker pool stopped");
    }
}

async fn register_worker(q: &Queue) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO queue_workers (id, replica, concurrency, started_at, last_seen) \
         VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency, last_seen = excluded.last_seen",
    )
    .bind(&q.worker_id)
    .bind(&q.replica_id)
    .bind(q.cfg.concurrency as i64)
    .bind(now)
    .execute(q.store.writer())
    .await?;
    Ok(())
}

async fn dispatch(
    q: Queue,
    mut stop: watch::Receiver<bool>,
    ack_tx: mpsc::Sender<Ack>,
    sem: Arc<Semaphore>,
) {
    let poll = Duration::from_millis(q.cfg.poll_interval_ms);
    let promote_every = poll.min(Duration::from_millis(200));
    let reclaim_every = Duration::from_millis(q.cfg.reclaim_interval_ms);
    let mut last_promote = Instant::now() - promote_every;
    // First sweep right at start: a restart after a crash finds the dead worker's jobs.
    let mut last_reclaim = Instant::now() - reclaim_every;
    loop {
        q.last_tick.store(now_ms(), Ordering::Relaxed);
        if *stop.borrow() {
            break;
        }
        if last_reclaim.elapsed() >= reclaim_every {
            last_reclaim = Instant::now();
            if let Err(e) = q.reclaim_expired().await {
                tracing::warn!(target: "queue", error = %e, "lease reclaim failed");
            }
            if let Err(e) = refresh_planner_stats(&q).await {
                tracing::warn!(target: "queue", error = %e, "refreshing planner statistics failed");
            }
        }
        if last_promote.elapsed() >= promote_every {
            last_promote = Instant::now();
            if let Err(e) = promote_due(&q).await {
                tracing::warn!(target: "queue", error = %e, "retry promotion failed");
            }
        }
        if q.is_paused() {
            wait(&q, &mut stop, poll).await;
            continue;
        }
        // All slots busy (long jobs) is healthy: keep the tick fresh while waiting, so
        // self-heal does not mistake a full pool for a stalled one.
        let acquired = loop {
            tokio::select! {
                p = sem.clone().acquire_owned() => break p.ok(),
                _ = tokio::time::sleep(poll) => q.last_tick.store(now_ms(), Ordering::Relaxed),
                _ = stop.changed() => break None,
            }
        };
        let Some(first) = acquired else { break };
        let mut permits: Vec<OwnedSemaphorePermit> = vec![first];
        while permits.len() < q.cfg.batch_size {
            match sem.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let want = permits.len();
        let jobs = match claim(&q, want).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(target: "queue", error = %e, "claim failed; retrying");
                drop(permits);
                wait(&q, &mut stop, poll).await;
                continue;
            }
        };
        let got = jobs.len();
        for job in jobs {
            let Some(permit) = permits.pop() else { break };
            tokio::spawn(run_job(q.clone(), job, permit, ack_tx.clone()));
        }
        drop(permits);
        if got < want {
            wait(&q, &mut stop, poll).await;
        }
    }
}

/// Sleep until a wake-up, the poll interval, or stop.
async fn wait(q: &Queue, stop: &mut watch::Receiver<bool>, poll: Duration) {
    tokio::select! {
        _ = q.wake.notified() => {}
        _ = tokio::time::sleep(poll) => {}
        _ = stop.changed() => {}
    }
}

/// PostgreSQL: ANALYZE `queue_jobs` once it has changed a lot since the last analyze.
/// Prepared statements keep the generic plan made from the statistics of their time; a
/// plan made while the table was nearly empty (a new database) keeps scanning the whole
/// table for the claimed ids after it grows — measured under HTTP load, that scan took
/// ~40 % of the machine and let the backlog grow to seconds — until autovacuum's next
/// analyze, up to minutes later. A fresh ANALYZE invalidates those plans within seconds.
async fn refresh_planner_stats(q: &Queue) -> Result<(), sqlx::Error> {
    if q.store.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT s.n_mod_since_analyze AS changed, CAST(GREATEST(c.reltuples, 0) AS BIGINT) AS tuples \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.relid = 'queue_jobs'::regclass",
    )
    .fetch_optional(q.store.reader())
    .await?;
    let Some(row) = row else { return Ok(()) };
    let changed: i64 = row.try_get("changed")?;
    let tuples: i64 = row.try_get("tuples")?;
    if changed >= 1000 && changed >= tuples / 5 {
        sqlx::query("ANALYZE queue_jobs")
            .execute(q.store.writer())
            .await?;
        tracing::debug!(target: "queue", changed, tuples, "queue_jobs statistics refreshed");
    }
    Ok(())
}

/// `failed` jobs whose retry time has come become `queued` again.
async fn promote_due(q: &Queue) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE queue_jobs SET state = 'queued', updated_at = $1 WHERE state = 'failed' AND run_at <= $1",
    )
    .bind(now)
    .execute(q.store.writer())
    .await?
    .rows_affected();
    if n > 0 {
        tracing::debug!(target: "queue", promoted = n, "failed jobs due for retry requeued");
    }
    Ok(())
}

/// The pause flag is checked inside the claim itself, so a pause is exact across replicas
/// even before the cached flag (NOTIFY / heartbeat) catches up.
pub(crate) async fn claim(q: &Queue, n: usize) -> Result<Vec<Claimed>, sqlx::Error> {
    let now = now_ms();
    let select = match q.store.dialect() {
        Dialect::Sqlite => {
            "id IN (SELECT id FROM queue_jobs WHERE state = 'queued' AND run_at <= $3 \
             AND (SELECT paused FROM queue_control WHERE id = 1) = 0 \
             ORDER BY priority DESC, run_at LIMIT $4)"
        }
        // SKIP LOCKED: concurrent replicas take disjoint batches without waiting.
        // `run_at + 0` keeps the due check out of the index condition, so the planner walks
        // queue_jobs_claim in order and stops at the limit (an ordered index scan also
        // marks dead entries of finished jobs, which a bitmap scan would revisit).
        Dialect::Postgres => {
            "id = ANY(ARRAY(SELECT id FROM queue_jobs WHERE state = 'queued' AND run_at + 0 <= $3 \
             AND (SELECT paused FROM queue_control WHERE id = 1) = 0 \
             ORDER BY priority DESC, run_at LIMIT $4 FOR UPDATE SKIP LOCKED))"
        }
    };
    let rows: Vec<ClaimRow> = sqlx::query_as(&format!(
        "UPDATE queue_jobs SET state = 'running', attempts = attempts + 1, worker = $1, \
         lease_until = $2, started_at = $3, finished_at = NULL, updated_at = $3 WHERE {select} \
         RETURNING id, tenant_id, kind, payload, priority, attempts, max_attempts, fast_failures, \
         run_at, enqueued_at"
    ))
    .bind(&q.worker_id)
    .bind(now + q.cfg.lease_ms)
    .bind(now)
    .bind(n as i64)
    .fetch_all(q.store.writer())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut with_prio = Vec::with_capacity(rows.len());
    for r in rows {
        let c = Claimed {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            payload: r.payload,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            fast_failures: r.fast_failures,
            due: r.run_at.max(r.enqueued_at),
        };
        tracing::debug!(target: "queue", job_id = %c.id, kind = %c.kind, attempt = c.attempts,
            worker = %q.worker_id, "job claimed");
        metrics::histogram!("echopilot_queue_start_latency_seconds")
            .record((now - c.due).max(0) as f64 / 1000.0);
        with_prio.push((r.priority, r.run_at, c));
    }
    // RETURNING order is unspecified: start the most urgent first.
    with_prio.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // Permits are popped from the back, so push in reverse urgency.
    for (_, _, c) in with_prio.into_iter().rev() {
        out.push(c);
    }
    Ok(out)
}

async fn run_job(q: Queue, job: Claimed, permit: OwnedSemaphorePermit, ack_tx: mpsc::Sender<Ack>) {
    let started = Instant::now();
    let mut timed_out = false;
    let outcome: Result<Value, String> = match q.registry.get(&job.kind) {
        None => Err(format!(
            "no handler for kind {:?} in this process",
            job.kind
        )),
        Some(kind) => {
            let ctx = JobCtx {
                id: job.id.clone(),
                tenant_id: job.tenant_id.clone(),
                kind: job.kind.clone(),
                attempt: job.attempts,
                max_attempts: job.max_attempts,
                store: q.store.clone(),
            };
            // A payload that is not JSON fails the attempt visibly instead of running the
            // handler on a null.
            match serde_json::from_str::<Value>(&job.payload) {
                Err(e) => Err(format!("corrupt payload (not JSON: {e})")),
                Ok(payload) => {
                    let timeout_ms = q.cfg.timeout_ms(&kind);
                    // A task of its own, so a panicking handler fails its attempt instead
                    // of leaving the job leased forever.
                    let mut handle = tokio::spawn((kind.handler)(ctx.clone(), payload));
                    match tokio::time::timeout(Duration::from_millis(timeout_ms), &mut handle).await
                    {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) if e.is_panic() => Err("handler panicked".into()),
                        Ok(Err(e)) => Err(format!("handler task failed: {e}")),
                        Err(_) => {
                            // Cancel the run: the handler future is dropped at its next
                            // await point; wait for that so nothing of it outlives the
                            // attempt.
                            handle.abort();
                            let _ = handle.await;
                            timed_out = true;
                            let err = format!(
                                "timed_out: cancelled after {timeout_ms} ms (the {} kind's timeout)",
                                job.kind
                            );
                            if let Some(hook) = &kind.on_timeout {
                                if tokio::time::timeout(
                                    Duration::from_secs(5),
                                    hook(ctx, err.clone()),
                                )
                                .await
                                .is_err()
                                {
                                    tracing::warn!(target: "queue", job_id = %job.id, kind = %job.kind, "timeout hook did not finish in 5 s");
                                }
                            }
                            Err(err)
                        }
                    }
                }
            }
        }
    };
    let elapsed = started.elapsed();
    let now = now_ms();
    let ack = match outcome {
        Ok(v) => Ack {
            id: job.id.clone(),
            attempt: job.attempts,
            state: "succeeded",
            result: Some(v.to_string()),
            error: None,
            run_at: None,
            finished_at: Some(now),
            fast_failures: 0,
        },
        Err(e) => {
            let fast = if elapsed.as_millis() < FAST_FAILURE_MS {
                job.fast_failures + 1
            } else {
                0
            };
            let dead = job.attempts >= job.max_attempts;
            Ack {
                id: job.id.clone(),
                attempt: job.attempts,
                state: if dead { "dead" } else { "failed" },
                result: None,
                error: Some(truncate(&e, 2000)),
                run_at: (!dead).then(|| now + backoff_ms(&q.cfg, job.attempts)),
                finished_at: dead.then_some(now),
                fast_failures: fast,
            }
        }
    };
    metrics::histogram!("echopilot_queue_job_duration_seconds", "kind" => job.kind.clone())
        .record(elapsed.as_secs_f64());
    let outcome_label = if timed_out { "timed_out" } else { ack.state };
    metrics::counter!("echopilot_queue_jobs_total", "kind" => job.kind.clone(), "outcome" => outcome_label)
        .increment(1);
    match ack.state {
        "succeeded" => tracing::info!(target: "queue", job_id = %job.id, kind = %job.kind,
            tenant_id = %job.tenant_id, attempt = job.attempts, worker = %q.worker_id,
            duration_ms = elapsed.as_millis() as u64, state = "succeeded", "job succeeded"),
        state => tracing::warn!(target: "queue", job_id = %job.id, kind = %job.kind,
            tenant_id = %job.tenant_id, attempt = job.attempts, max_attempts = job.max_attempts,
            worker = %q.worker_id, duration_ms = elapsed.as_millis() as u64, state, timed_out,
            retry_at = ack.run_at.map(crate::util::rfc3339_ms), error = ack.error.as_deref().unwrap_or(""),
            "job attempt failed"),
    }
    drop(permit);
    let _ = ack_tx.send(ack).await;
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

async fn acker(q: Queue, mut rx: mpsc::Receiver<Ack>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < q.cfg.batch_size {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        batch.sort_by(|a, b| a.id.cmp(&b.id));
        let mut tries = 0;
        loop {
            match write_acks(&q, &batch).await {
                Ok(()) => break,
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::warn!(target: "queue", error = %e, tries, "writing job results failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                Err(e) => {
                    // The leases will expire and the jobs run again: at-least-once.
                    tracing::error!(target: "queue", error = %e, jobs = batch.len(), "giving up writing job results");
                    break;
                }
            }
        }
        if batch.iter().any(|a| a.state == "failed") {
            q.wake.notify_one();
        }
    }
}

/// One statement for the whole batch; fenced on (worker, attempt, holding a lease) so a
/// job that was reclaimed and re-run elsewhere is never overwritten by a stale result.
/// Only running jobs hold a lease; the fence avoids `state` on purpose so PostgreSQL
/// joins on the primary key instead of scanning the (churning) state index.
async fn write_acks(q: &Queue, batch: &[Ack]) -> Result<(), sqlx::Error> {
    let mut values = String::new();
    for i in 0..batch.len() {
        let b = i * 8;
        if i > 0 {
            values.push_str(", ");
        }
        values.push_str(&format!(
            "(${}, CAST(${} AS BIGINT), ${}, ${}, ${}, CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8
        ));
    }
    let n = batch.len() * 8;
    let sql = format!(
        "WITH v(id, attempt, state, result, error, run_at, finished_at, fast_failures) AS (VALUES {values}) \
         UPDATE queue_jobs SET state = v.state, result = v.result, error = v.error, \
         run_at = COALESCE(v.run_at, queue_jobs.run_at), finished_at = v.finished_at, \
         fast_failures = v.fast_failures, lease_until = NULL, updated_at = ${} \
         FROM v WHERE queue_jobs.id = v.id AND queue_jobs.attempts = v.attempt \
         AND queue_jobs.lease_until IS NOT NULL AND queue_jobs.worker = ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(&sql);
    for a in batch {
        query = query
            .bind(&a.id)
            .bind(a.attempt)
            .bind(a.state)
            .bind(a.result.as_deref())
            .bind(a.error.as_deref())
            .bind(a.run_at)
            .bind(a.finished_at)
            .bind(a.fast_failures);
    }
    let done = query
        .bind(now_ms())
        .bind(&q.worker_id)
        .execute(q.store.writer())
        .await?
        .rows_affected();
    if (done as usize) < batch.len() {
        tracing::warn!(target: "queue", stale = batch.len() - done as usize,
            "results dropped: their jobs were reclaimed by another worker after the lease expired");
    }
    Ok(())
}

async fn heartbeat(q: Queue, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(q.heartbeat_ms());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            // Keep beating after stop until aborted: in-flight jobs still need their leases.
            _ = stop.changed() => {}
        }
        let now = now_ms();
        if let Err(e) = sqlx::query(
            "UPDATE queue_jobs SET lease_until = $1 WHERE state = 'running' AND worker = $2",
        )
        .bind(now + q.cfg.lease_ms)
        .bind(&q.worker_id)
        .execute(q.store.writer())
        .await
        {
            tracing::warn!(target: "queue", error = %e, "lease heartbeat failed");
        }
        if let Err(e) = register_worker(&q).await {
            tracing::warn!(target: "queue", error = %e, "worker heartbeat failed");
        }
        let _ = sqlx::query("DELETE FROM queue_workers WHERE last_seen < $1")
            .bind(now - 3_600_000)
            .execute(q.store.writer())
            .await;
        // Fallback for the pause flag when NOTIFY is unavailable (or on SQLite).
        let was = q.is_paused();
        if let Ok(p) = q.is_paused_db().await {
            if was && !p {
                q.wake.notify_one();
            }
        }
        if *stop.borrow() {
            tokio::time::sleep(every).await;
        }
    }
}

/// PostgreSQL LISTEN: wake the dispatcher when any replica enqueues; reconnect on error.
pub async fn listen(q: Queue) {
    let mut shutdown = q.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut listener = match sqlx::postgres::PgListener::connect(q.store.url()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(target: "queue", error = %e, "LISTEN connection failed; polling until it is back");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(target: "queue", error = %e, "LISTEN failed; polling");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => {
                        if n.payload() == "control" {
                            let _ = q.is_paused_db().await;
                        }
                        q.wake.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(target: "queue", error = %e, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
