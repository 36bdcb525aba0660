//! The worker pool of one process: a dispatcher that claims ready jobs in batches, a
//! handler task per claimed job (bounded by `queue.concurrency`), one acker that writes
//! results in batched transactions, and a heartbeat that extends leases.
//!
//! Why batches: on SQLite every write goes through one connection, and on PostgreSQL
//! each statement is a round trip; claiming N jobs per query and acknowledging N results
//! per transaction is what keeps throughput in the thousands of jobs per second.

use std::collections::HashMap;
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

/// How long a saturated dispatcher lets finished jobs free their slots before it claims
/// again (see `dispatch`).
const CLAIM_COALESCE: Duration = Duration::from_millis(1);

/// An attempt that fails faster than this counts towards poison detection.
const FAST_FAILURE_MS: u128 = 1000;

pub(crate) struct Claimed {
    pub(crate) id: String,
    pub(crate) tenant_id: String,
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
    /// For the log line written once the result is stored.
    tenant_id: String,
    kind: String,
    duration_ms: u64,
    attempt: i64,
    state: &'static str,
    result: Option<String>,
    error: Option<String>,
    run_at: Option<i64>,
    finished_at: Option<i64>,
    fast_failures: i64,
}

/// Jobs this process runs per tenant, for the per-tenant cap. In memory and per process:
/// every replica caps a tenant at its share of its own slots, so fleet-wide a tenant holds
/// at most that share of all slots, and no claim has to serialize on a shared counter.
pub(crate) struct TenantSlots {
    cap: usize,
    running: std::sync::Mutex<HashMap<String, usize>>,
}

impl TenantSlots {
    pub(crate) fn new(cap: usize) -> Arc<TenantSlots> {
        Arc::new(TenantSlots {
            cap,
            running: std::sync::Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many more jobs of `tenant` this process may start now.
    fn allowance(&self, tenant: &str) -> usize {
        self.cap
            .saturating_sub(self.lock().get(tenant).copied().unwrap_or(0))
    }

    /// Count a started job of `tenant` until the returned guard drops.
    pub(crate) fn hold(self: &Arc<Self>, q: &Queue, tenant: &str) -> TenantSlot {
        *self.lock().entry(tenant.to_string()).or_insert(0) += 1;
        TenantSlot {
            slots: self.clone(),
            q: q.clone(),
            tenant: tenant.to_string(),
        }
    }
}

/// One running job's place in its tenant's count.
pub(crate) struct TenantSlot {
    slots: Arc<TenantSlots>,
    q: Queue,
    tenant: String,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut running = self.slots.lock();
        let was = running.get(&self.tenant).copied().unwrap_or(0);
        if was <= 1 {
            running.remove(&self.tenant);
        } else {
            running.insert(self.tenant.clone(), was - 1);
        }
        drop(running);
        // The tenant was held back by its cap: let the dispatcher claim its next job now
        // rather than at the next poll.
        if was >= self.slots.cap {
            self.q.wake.notify_one();
        }
    }
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
    let slots = TenantSlots::new(q.cfg.tenant_cap());
    let mut turn = Turn::default();
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
        let jobs = match claim(&q, want, &slots, &mut turn).await {
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
            let held = slots.hold(&q, &job.tenant_id);
            tokio::spawn(run_job(q.clone(), job, (permit, held), ack_tx.clone()));
        }
        drop(permits);
        // Sleep only when the ready jobs ran out. A claim cut short by a tenant's cap
        // (one tenant's backlog, at its share of the slots) goes straight on: its next
        // claim takes what the cap allows by then, and a tenant at its cap wakes the
        // dispatcher when one of its jobs finishes.
        if got < turn.could_take || got == 0 {
            wait(&q, &mut stop, poll).await;
        } else if got < q.cfg.batch_size {
            // Saturated: a backlog is waiting and the claim took all the free slots (or the
            // tenant's allowance) but less than a batch. Claiming again at once would take
            // the one or two slots freed meanwhile, a statement per job or two; a
            // millisecond lets finished jobs free their slots, so the next claim is a batch
            // again. (At every slot free for a tenant, claims of 1–10 jobs made a drain
            // take 1.6× as long.) Waiting jobs start at most that much later.
            tokio::time::sleep(CLAIM_COALESCE).await;
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

/// PostgreSQL: ANALYZE `queue_jobs` once its size has moved far from what the planner
/// last saw. Prepared statements keep the generic plan made from the statistics of their
/// time; a plan made while the table was nearly empty (a new database) kept scanning the
/// whole table after it grew — measured under HTTP load, that scan took ~40 % of the
/// machine and let the backlog grow to seconds — until autovacuum's next analyze, up to
/// minutes later. A fresh ANALYZE invalidates those plans within seconds. Churn at a
/// steady size (a backlog draining into finished jobs) does not change the plans'
/// shape, and analyzing for it cost ~7 % of the database's time during a drain.
async fn refresh_planner_stats(q: &Queue) -> Result<(), sqlx::Error> {
    if q.store.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT s.n_live_tup AS live, CAST(c.reltuples AS BIGINT) AS tuples \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.relid = 'queue_jobs'::regclass",
    )
    .fetch_optional(q.store.reader())
    .await?;
    let Some(row) = row else { return Ok(()) };
    let live: i64 = row.try_get("live")?;
    // -1: never analyzed.
    let tuples: i64 = row.try_get("tuples")?;
    let stale = if tuples < 0 {
        live >= 1000
    } else {
        live.abs_diff(tuples) >= 1000 && (live > 2 * tuples || 2 * live < tuples)
    };
    if stale {
        sqlx::query("ANALYZE queue_jobs")
            .execute(q.store.writer())
            .await?;
        tracing::debug!(target: "queue", live, tuples, "queue_jobs statistics refreshed");
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

/// Where the round-robin over tenants stands between claims.
#[derive(Default)]
pub(crate) struct Turn {
    /// Set when more tenants had ready jobs than one claim looks at: the next claim
    /// starts after this tenant, so every tenant comes round.
    after: Option<String>,
    /// Rotates which tenants get the odd jobs when a claim cannot serve all equally.
    n: usize,
    /// How many jobs the last claim could take under the tenants' allowances (at most
    /// what it was asked for). Fewer claimed than this means the ready jobs ran out; a
    /// claim held short by a tenant's cap is not a sign to sleep.
    pub(crate) could_take: usize,
}

/// Most tenants one claim looks at (a claim of n jobs serves at most n tenants anyway).
const TENANTS_PER_CLAIM: usize = 64;

/// Tenants with queued jobs, in tenant order after `after`, at most `limit`: a loose index
/// scan over `queue_jobs_claim` (one probe per tenant, however long each backlog is).
async fn ready_tenants(
    q: &Queue,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE t(tenant_id, n) AS ( \
           SELECT (SELECT tenant_id FROM queue_jobs WHERE state = 'queued' AND tenant_id > $1 \
                   ORDER BY tenant_id LIMIT 1), 1 \
           UNION ALL \
           SELECT (SELECT j.tenant_id FROM queue_jobs j WHERE j.state = 'queued' \
                   AND j.tenant_id > t.tenant_id ORDER BY j.tenant_id LIMIT 1), t.n + 1 \
           FROM t WHERE t.tenant_id IS NOT NULL AND t.n < $2) \
         SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL",
    )
    .bind(after.unwrap_or(""))
    .bind(limit as i64)
    .fetch_all(q.store.reader())
    .await
}

/// Claim up to `n` ready jobs, fairly across tenants: each tenant with ready jobs gets
/// its turn (round-robin by rank: every tenant's first job, then every tenant's second,
/// …; `_system` first among equals, so the platform's scheduled jobs never wait behind a
/// tenant's backlog), and no tenant more than its allowance under the per-tenant cap.
/// Within a tenant: highest `priority` first, then earliest `run_at`.
///
/// The pause flag is checked inside the claim itself, so a pause is exact across replicas
/// even before the cached flag (NOTIFY / heartbeat) catches up.
pub(crate) async fn claim(
    q: &Queue,
    n: usize,
    slots: &TenantSlots,
    turn: &mut Turn,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let limit = n.min(TENANTS_PER_CLAIM);
    let listed = ready_tenants(q, turn.after.as_deref(), limit).await?;
    turn.after = (listed.len() == limit)
        .then(|| listed.last().cloned())
        .flatten();
    let mut tenants: Vec<(String, usize)> = listed
        .into_iter()
        .map(|t| {
            let allowed = slots.allowance(&t).min(n);
            (t, allowed)
        })
        .filter(|(_, allowed)| *allowed > 0)
        .collect();
    turn.could_take = tenants.iter().map(|(_, a)| a).sum::<usize>().min(n);
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    turn.n = turn.n.wrapping_add(1);
    let k = tenants.len();
    tenants.rotate_left(turn.n % k);
    if let Some(i) = tenants.iter().position(|(t, _)| t == super::SYSTEM_TENANT) {
        let system = tenants.remove(i);
        tenants.insert(0, system);
    }
    let pg = q.store.dialect() == Dialect::Postgres;
    // SKIP LOCKED: concurrent replicas take disjoint batches without waiting.
    // `run_at + 0` keeps the due check out of the index condition, so the planner walks
    // queue_jobs_claim in order and stops at the limit (an ordered index scan also
    // marks dead entries of finished jobs, which a bitmap scan would revisit).
    let (due, lock) = if pg {
        ("run_at + 0", " FOR UPDATE SKIP LOCKED")
    } else {
        ("run_at", "")
    };
    // $4 is the claim's limit; tenant i is ${5+2i} with its allowance in ${6+2i}. One
    // tenant (the common case) needs no ranking: its allowance is the limit.
    let branch = |cols: &str, tenant: usize, limit: usize| {
        format!(
            "SELECT {cols} FROM queue_jobs WHERE state = 'queued' \
             AND tenant_id = ${tenant} AND {due} <= $3 \
             AND (SELECT paused FROM queue_control WHERE id = 1) = 0 \
             ORDER BY priority DESC, run_at LIMIT ${limit}{lock}"
        )
    };
    // PostgreSQL updates the locked rows by their tuple ids (a TID scan): looking 128 ids
    // up again in the primary key, through the dead index entries of their earlier
    // versions, was half of the claim's time. The rows stay locked by this statement in
    // between, so their tuple ids cannot move.
    let key = if pg { "ctid" } else { "id" };
    let keys = if k == 1 {
        branch(key, 5, 4)
    } else {
        let union: Vec<String> = (0..k)
            .map(|i| {
                let b = branch(
                    &format!("{key} AS k, priority, run_at"),
                    5 + 2 * i,
                    6 + 2 * i,
                );
                format!("SELECT k, priority, run_at, {i} AS b FROM ({b}) s{i}")
            })
            .collect();
        format!(
            "SELECT k FROM (SELECT k, b, row_number() OVER (PARTITION BY b \
             ORDER BY priority DESC, run_at) AS rn FROM ({}) u) r ORDER BY rn, b LIMIT $4",
            union.join(" UNION ALL ")
        )
    };
    let select = if pg {
        format!("ctid = ANY(ARRAY({keys}))")
    } else {
        format!("id IN ({keys})")
    };
    let now = now_ms();
    let sql = format!(
        "UPDATE queue_jobs SET state = 'running', attempts = attempts + 1, worker = $1, \
         lease_until = $2, started_at = $3, finished_at = NULL, updated_at = $3 WHERE {select} \
         RETURNING id, tenant_id, kind, payload, priority, attempts, max_attempts, fast_failures, \
         run_at, enqueued_at"
    );
    let mut query = sqlx::query_as::<_, ClaimRow>(&sql)
        .bind(&q.worker_id)
        .bind(now + q.cfg.lease_ms)
        .bind(now);
    if let [(tenant, allowed)] = tenants.as_slice() {
        query = query.bind(*allowed as i64).bind(tenant);
    } else {
        query = query.bind(n as i64);
        for (tenant, allowed) in &tenants {
            query = query.bind(tenant).bind(*allowed as i64);
        }
    }
    let rows: Vec<ClaimRow> = query.fetch_all(q.store.writer()).await?;
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

async fn run_job(
    q: Queue,
    job: Claimed,
    permit: (OwnedSemaphorePermit, TenantSlot),
    ack_tx: mpsc::Sender<Ack>,
) {
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
            tenant_id: job.tenant_id.clone(),
            kind: job.kind.clone(),
            duration_ms: elapsed.as_millis() as u64,
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
                tenant_id: job.tenant_id.clone(),
                kind: job.kind.clone(),
                duration_ms: elapsed.as_millis() as u64,
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
        // Successes are logged by the acknowledger once stored, a line per batch.
        "succeeded" => tracing::debug!(target: "queue", job_id = %job.id, kind = %job.kind,
            tenant_id = %job.tenant_id, attempt = job.attempts, worker = %q.worker_id,
            duration_ms = elapsed.as_millis() as u64, "job handler returned"),
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
                Ok(()) => {
                    log_successes(&q, &batch);
                    break;
                }
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

/// One `jobs succeeded` line per tenant and kind of a stored batch, naming every job: a
/// line per job cost two writes (file and stderr) and their formatting for each job, a
/// visible share of a busy worker's time. Failures stay one line each (`job attempt
/// failed`), and each job's own line is at debug level.
fn log_successes(q: &Queue, batch: &[Ack]) {
    let mut groups: Vec<(&str, &str, Vec<&str>, u64)> = Vec::new();
    for a in batch.iter().filter(|a| a.state == "succeeded") {
        match groups
            .iter_mut()
            .find(|g| g.0 == a.tenant_id && g.1 == a.kind)
        {
            Some(g) => {
                g.2.push(&a.id);
                g.3 = g.3.max(a.duration_ms);
            }
            None => groups.push((&a.tenant_id, &a.kind, vec![&a.id], a.duration_ms)),
        }
    }
    for (tenant_id, kind, ids, max_ms) in groups {
        tracing::info!(target: "queue", tenant_id, kind, count = ids.len(),
            job_ids = %ids.join(","), max_duration_ms = max_ms, worker = %q.worker_id,
            state = "succeeded", "jobs succeeded");
    }
}

/// One statement for the whole batch; fenced on (worker, attempt, holding a lease) so a
/// job that was reclaimed and re-run elsewhere is never overwritten by a stale result.
/// Only running jobs hold a lease; the fence avoids `state` on purpose so PostgreSQL
/// joins on the primary key instead of scanning the (churning) state index.
async fn write_acks(q: &Queue, batch: &[Ack]) -> Result<(), sqlx::Error> {
    let done = if q.store.dialect() == Dialect::Postgres {
        write_acks_pg(q, batch).await?
    } else {
        write_acks_values(q, batch).await?
    };
    if (done as usize) < batch.len() {
        tracing::warn!(target: "queue", stale = batch.len() - done as usize,
            "results dropped: their jobs were reclaimed by another worker after the lease expired");
    }
    Ok(())
}

const ACK_SET: &str = "state = v.state, result = v.result, error = v.error, \
     run_at = COALESCE(v.run_at, queue_jobs.run_at), finished_at = v.finished_at, \
     fast_failures = v.fast_failures, lease_until = NULL";
const ACK_FENCE: &str = "queue_jobs.id = v.id AND queue_jobs.attempts = v.attempt \
     AND queue_jobs.lease_until IS NOT NULL";

/// PostgreSQL: the batch travels as one JSON parameter, so every batch size shares one
/// prepared statement and its plan (a VALUES list of 8 parameters a job was parsed and
/// planned afresh for each new batch size; the `Any` driver cannot bind arrays).
async fn write_acks_pg(q: &Queue, batch: &[Ack]) -> Result<u64, sqlx::Error> {
    let rows: Vec<Value> = batch
        .iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id, "attempt": a.attempt, "state": a.state, "result": a.result,
                "error": a.error, "run_at": a.run_at, "finished_at": a.finished_at,
                "fast_failures": a.fast_failures,
            })
        })
        .collect();
    let sql = format!(
        "UPDATE queue_jobs SET {ACK_SET}, updated_at = $2 \
         FROM json_to_recordset(CAST($1 AS json)) AS v(id text, attempt bigint, state text, \
              result text, error text, run_at bigint, finished_at bigint, fast_failures bigint) \
         WHERE {ACK_FENCE} AND queue_jobs.worker = $3"
    );
    Ok(sqlx::query(&sql)
        .bind(Value::Array(rows).to_string())
        .bind(now_ms())
        .bind(&q.worker_id)
        .execute(q.store.writer())
        .await?
        .rows_affected())
}

/// SQLite: a VALUES list (one statement per batch size, cached by the connection).
async fn write_acks_values(q: &Queue, batch: &[Ack]) -> Result<u64, sqlx::Error> {
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
         UPDATE queue_jobs SET {ACK_SET}, updated_at = ${} \
         FROM v WHERE {ACK_FENCE} AND queue_jobs.worker = ${}",
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
    Ok(query
        .bind(now_ms())
        .bind(&q.worker_id)
        .execute(q.store.writer())
        .await?
        .rows_affected())
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
