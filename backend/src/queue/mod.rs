//! Durable job queue in the database.
//!
//! Jobs are rows of `queue_jobs`. Every `serve` process runs a worker pool
//! ([`worker`]) that claims ready jobs in batches with a lease (`FOR UPDATE SKIP LOCKED`
//! on PostgreSQL; the single writer serializes claims on SQLite), heartbeats the lease
//! while handlers run, and acknowledges results in batched transactions. A job whose
//! lease expires (its process died) is requeued by the reclaim sweep. Failures back off
//! exponentially with jitter and dead-letter after `max_attempts`.
//!
//! State machine: `queued → running → succeeded | failed (waits for a retry) | dead`;
//! a due `failed` job is promoted back to `queued`; `dead → queued` via retry.

pub mod api;
pub mod area;
mod commit;
pub mod kinds;
pub mod worker;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::audit::{self, NewAudit};
use crate::store::{Dialect, Store, Tx};
use crate::util::{now_ms, random_id, rfc3339_ms};
pub use kinds::{JobCtx, Registry};

/// PostgreSQL NOTIFY channel: a job became ready (enqueue, retry) or the pause flag changed.
pub const NOTIFY_CHANNEL: &str = "echopilot_queue";

pub const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "dead"];

/// Queue settings (`[queue]` section; env `ECHOPILOT_QUEUE__<KEY>`).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Handlers running at once in this process.
    pub concurrency: usize,
    /// Most jobs claimed (and acknowledged) per query.
    pub batch_size: usize,
    pub lease_ms: i64,
    /// Fallback polling when no wake-up arrives (NOTIFY on PostgreSQL, in-process otherwise).
    pub poll_interval_ms: u64,
    /// How often expired leases are swept back to `queued`.
    pub reclaim_interval_ms: u64,
    pub backoff_base_ms: i64,
    pub backoff_cap_ms: i64,
    pub default_max_attempts: i64,
    /// A handler running longer than this fails its attempt.
    pub job_timeout_ms: u64,
}

impl QueueConfig {
    /// The `[queue]` section (see [`area::QueueSection`]).
    pub fn from_config(cfg: &crate::Config) -> anyhow::Result<QueueConfig> {
        Ok(area::QueueSection::load(&cfg.raw)?)
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// queued | running | succeeded | failed (waiting for a retry) | dead
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub priority: i64,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    pub error: Option<String>,
    /// `<replica_id>#<process instance>` of the worker that ran (or runs) the last attempt.
    pub worker: Option<String>,
    pub run_at: String,
    pub enqueued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

const JOB_COLUMNS: &str = "id, kind, state, attempts, max_attempts, priority, payload, result, \
                           error, worker, run_at, enqueued_at, started_at, finished_at";

fn job_from_row(r: &crate::store::Row) -> Result<Job, sqlx::Error> {
    let payload: String = r.try_get("payload")?;
    let result: Option<String> = r.try_get("result")?;
    let started: Option<i64> = r.try_get("started_at")?;
    let finished: Option<i64> = r.try_get("finished_at")?;
    Ok(Job {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        priority: r.try_get("priority")?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        result: result.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))),
        error: r.try_get("error")?,
        worker: r.try_get("worker")?,
        run_at: rfc3339_ms(r.try_get("run_at")?),
        enqueued_at: rfc3339_ms(r.try_get("enqueued_at")?),
        started_at: started.map(rfc3339_ms),
        finished_at: finished.map(rfc3339_ms),
    })
}

/// A job to enqueue (already validated by [`Queue::validate`] or trusted in-process code).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub priority: i64,
    /// Unix ms; `None` = now.
    pub run_at: Option<i64>,
    pub max_attempts: Option<i64>,
    pub idempotency_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: &str, payload: Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            max_attempts: None,
            idempotency_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: String,
    pub state: String,
    /// False when an earlier job with the same idempotency key was returned.
    #[serde(skip)]
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Depth {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    pub dead: i64,
    pub succeeded: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub depth: Depth,
    /// How late the oldest ready job is (now − its due time), ms.
    pub lag_ms: i64,
    /// Age of the oldest ready job since it was enqueued, seconds.
    pub oldest_ready_age_s: i64,
    /// Jobs finished (succeeded or dead) in the last 60 s.
    pub throughput_per_min: i64,
    /// Worker slots of live worker pools across all replicas.
    pub workers: i64,
    pub paused: bool,
}

/// Outcome of a retry request.
pub enum RetryOutcome {
    Requeued,
    NotDead(String),
    NotFound,
}

pub struct QueueInner {
    pub store: Store,
    pub cfg: QueueConfig,
    pub registry: Registry,
    /// `<replica_id>#<random>`: names this process's worker in `queue_jobs.worker`.
    pub worker_id: String,
    pub replica_id: String,
    /// Cached pause flag (the database row is the truth; refreshed by the pool).
    paused: AtomicBool,
    /// Wakes the dispatcher: local enqueue, NOTIFY, resume.
    pub(crate) wake: tokio::sync::Notify,
    pool: tokio::sync::Mutex<Option<worker::Pool>>,
    /// Unix ms of the dispatcher's last loop; self-heal restarts a pool that stopped.
    pub(crate) last_tick: AtomicI64,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Listener task (PostgreSQL), started once.
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The group committer every enqueue goes through, started on first use.
    committer: std::sync::OnceLock<tokio::sync::mpsc::Sender<commit::Unit>>,
}

/// The queue service; cheap to clone.
#[derive(Clone)]
pub struct Queue(pub(crate) Arc<QueueInner>);

impl std::ops::Deref for Queue {
    type Target = QueueInner;
    fn deref(&self) -> &QueueInner {
        &self.0
    }
}

/// Exponential backoff with ±20 % jitter: base·2^(attempt−1), capped.
pub fn backoff_ms(cfg: &QueueConfig, attempt: i64) -> i64 {
    use rand::Rng;
    let exp = (attempt - 1).clamp(0, 30) as u32;
    let raw = cfg
        .backoff_base_ms
        .saturating_mul(1i64 << exp)
        .min(cfg.backoff_cap_ms);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    ((raw as f64) * jitter) as i64
}

impl Queue {
    /// A queue over `store` (workers not started; see [`Queue::start_workers`]).
    pub fn new(
        store: Store,
        cfg: QueueConfig,
        replica_id: &str,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Queue {
        let registry = Registry::default();
        kinds::register_builtins(&registry);
        Queue(Arc::new(QueueInner {
            store,
            cfg,
            registry,
            worker_id: format!("{replica_id}#{}", &random_id("", 3)),
            replica_id: replica_id.to_string(),
            paused: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            pool: tokio::sync::Mutex::new(None),
            last_tick: AtomicI64::new(now_ms()),
            shutdown,
            listener: Mutex::new(None),
            committer: std::sync::OnceLock::new(),
        }))
    }

    /// Add a job kind (later areas call this from `start_areas`).
    pub fn register<F, Fut>(&self, kind: &str, validate: Option<kinds::ValidateFn>, f: F)
    where
        F: Fn(JobCtx, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, String>> + Send + 'static,
    {
        self.registry.register(kind, validate, f)
    }

    /// Check a job before enqueueing: known kind, kind-specific payload, ranges.
    pub fn validate(&self, job: &NewJob) -> Result<(), String> {
        let Some(kind) = self.registry.get(&job.kind) else {
            return Err(format!(
                "unknown job kind {:?}; known kinds: {}",
                job.kind,
                self.registry.kinds().join(", ")
            ));
        };
        if let Some(v) = &kind.validate {
            v(&job.payload)?;
        }
        if !(-1000..=1000).contains(&job.priority) {
            return Err("priority must be an integer between -1000 and 1000".into());
        }
        if let Some(m) = job.max_attempts {
            if !(1..=100).contains(&m) {
                return Err("max_attempts must be an integer between 1 and 100".into());
            }
        }
        if let Some(at) = job.run_at {
            if at > now_ms() + 366 * 86_400_000 {
                return Err("run_at must be at most a year ahead".into());
            }
        }
        if let Some(k) = &job.idempotency_key {
            if k.is_empty() || k.len() > 255 {
                return Err("idempotency key must be 1-255 characters".into());
            }
        }
        Ok(())
    }

    /// Enqueue one job for `tenant`. With an idempotency key, a repeat returns the earlier
    /// job (enforced by the unique (tenant_id, idempotency_key) index). `audit` is
    /// appended in the same transaction when a job is created. Concurrent enqueues are
    /// group-committed (see [`commit`]).
    pub async fn enqueue(
        &self,
        tenant: &str,
        job: NewJob,
        audit_rec: Option<NewAudit>,
    ) -> Result<Enqueued, EnqueueError> {
        self.validate(&job).map_err(EnqueueError::Invalid)?;
        let mut out = self.submit(tenant, vec![job], audit_rec).await?;
        out.pop()
            .ok_or_else(|| EnqueueError::Db(sqlx::Error::Protocol("enqueue lost".into())))
    }

    /// Enqueue several jobs for `tenant` all-or-nothing in one transaction, with one
    /// audit record (its detail lists the created job ids). Every job is validated first.
    pub async fn enqueue_batch(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        audit_rec: Option<NewAudit>,
    ) -> Result<Vec<Enqueued>, EnqueueError> {
        for (i, j) in jobs.iter().enumerate() {
            self.validate(j)
                .map_err(|m| EnqueueError::Invalid(format!("jobs[{i}]: {m}")))?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(tenant, jobs, audit_rec).await
    }

    /// Enqueue many jobs without an audit record (trusted in-process producers, benchmarks).
    pub async fn enqueue_many(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError> {
        self.enqueue_batch(tenant, jobs, None).await
    }

    async fn submit(
        &self,
        tenant: &str,
        jobs: Vec<NewJob>,
        audit: Option<NewAudit>,
    ) -> Result<Vec<Enqueued>, EnqueueError> {
        let gone = || EnqueueError::Db(sqlx::Error::PoolClosed);
        let committer = self.0.committer.get_or_init(|| commit::spawn(&self.0));
        let (reply, answer) = tokio::sync::oneshot::channel();
        committer
            .send(commit::Unit {
                tenant: tenant.to_string(),
                jobs,
                audit,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Insert jobs without idempotency keys, many rows per statement. State, attempts and
    /// the timestamps are written into the SQL rather than bound per row (unlike
    /// `store::values_rows`): binding them too halved SQLite enqueue throughput in the
    /// in-process bench (20k → 9k jobs/s).
    async fn insert_plain(
        &self,
        tx: &mut Tx,
        jobs: &[(&str, &NewJob)],
    ) -> Result<Vec<Enqueued>, sqlx::Error> {
        let now = now_ms();
        let mut sql = String::from(
            "INSERT INTO queue_jobs (id, tenant_id, kind, payload, priority, state, attempts, \
             max_attempts, run_at, enqueued_at, updated_at) VALUES ",
        );
        for i in 0..jobs.len() {
            let b = i * 7;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, 'queued', 0, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                jobs.len() * 7 + 1,
                jobs.len() * 7 + 1
            ));
        }
        let mut q = sqlx::query(&sql);
        let mut out = Vec::with_capacity(jobs.len());
        for (tenant, j) in jobs {
            let id = random_id("job_", 10);
            q = q
                .bind(id.clone())
                .bind(tenant.to_string())
                .bind(j.kind.clone())
                .bind(j.payload.to_string())
                .bind(j.priority)
                .bind(j.max_attempts.unwrap_or(self.cfg.default_max_attempts))
                .bind(j.run_at.unwrap_or(now));
            out.push(Enqueued {
                id,
                state: "queued".into(),
                created: true,
            });
        }
        q.bind(now).execute(&mut **tx).await?;
        Ok(out)
    }

    async fn insert_job(
        &self,
        tx: &mut Tx,
        tenant: &str,
        job: &NewJob,
    ) -> Result<Enqueued, sqlx::Error> {
        let now = now_ms();
        let id = random_id("job_", 10);
        let inserted = sqlx::query(
            "INSERT INTO queue_jobs (id, tenant_id, kind, payload, priority, state, attempts, \
             max_attempts, run_at, idempotency_key, enqueued_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(tenant)
        .bind(&job.kind)
        .bind(job.payload.to_string())
        .bind(job.priority)
        .bind(job.max_attempts.unwrap_or(self.cfg.default_max_attempts))
        .bind(job.run_at.unwrap_or(now))
        .bind(job.idempotency_key.as_deref())
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Enqueued {
                id,
                state: "queued".into(),
                created: true,
            });
        }
        // Only the idempotency index can conflict (ids are random).
        let row = sqlx::query(
            "SELECT id, state FROM queue_jobs WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(tenant)
        .bind(job.idempotency_key.as_deref())
        .fetch_one(&mut **tx)
        .await?;
        Ok(Enqueued {
            id: row.try_get("id")?,
            state: row.try_get("state")?,
            created: false,
        })
    }

    /// Queue a NOTIFY (delivered at commit) so idle replicas claim at once.
    async fn notify_tx(&self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        self.notify_payload(tx, "").await
    }

    /// `control` tells listeners to re-read the pause flag.
    async fn notify_payload(&self, tx: &mut Tx, payload: &str) -> Result<(), sqlx::Error> {
        if self.store.dialect() == Dialect::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<Job>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM queue_jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.store.reader())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Newest first, optionally filtered by state and kind.
    pub async fn list(
        &self,
        tenant: &str,
        state: Option<&str>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Job>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM queue_jobs WHERE tenant_id = $1 \
             AND ($2 = '' OR state = $2) AND ($3 = '' OR kind = $3) \
             ORDER BY enqueued_at DESC, id DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(state.unwrap_or(""))
        .bind(kind.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store.reader())
        .await?;
        rows.iter().map(job_from_row).collect()
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
                Some(s) => RetryOutcome::NotDead(s),
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
        let n = sqlx::query("DELETE FROM queue_jobs WHERE tenant_id = $1 AND state = 'dead'")
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
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM queue_jobs WHERE tenant_id = $1 GROUP BY state",
        )
        .bind(tenant)
        .fetch_all(r)
        .await?;
        let mut depth = Depth {
            queued: 0,
            running: 0,
            failed: 0,
            dead: 0,
            succeeded: 0,
        };
        for row in rows {
            let s: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            match s.as_str() {
                "queued" => depth.queued = n,
                "running" => depth.running = n,
                "failed" => depth.failed = n,
                "dead" => depth.dead = n,
                "succeeded" => depth.succeeded = n,
                _ => {}
            }
        }
        // Ready = queued and due, or failed and due for its retry.
        let oldest = sqlx::query(
            "SELECT MIN(run_at) AS due, MIN(enqueued_at) AS enq FROM queue_jobs \
             WHERE tenant_id = $1 AND state IN ('queued', 'failed') AND run_at <= $2",
        )
        .bind(tenant)
        .bind(now)
        .fetch_one(r)
        .await?;
        let due: Option<i64> = oldest.try_get("due")?;
        let enq: Option<i64> = oldest.try_get("enq")?;
        let throughput: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM queue_jobs WHERE tenant_id = $1 AND finished_at >= $2",
        )
        .bind(tenant)
        .bind(now - 60_000)
        .fetch_one(r)
        .await?;
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

    /// Start this process's worker pool (and, on PostgreSQL, the NOTIFY listener).
    pub async fn start_workers(&self) -> anyhow::Result<()> {
        self.is_paused_db().await?;
        if self.store.dialect() == Dialect::Postgres {
            // Every job row is updated a few times within seconds: vacuum and analyze the
            // table eagerly so dead index entries and stale statistics do not slow claims.
            // Set at start rather than in migration 0002 (already applied in the field);
            // only a warning when it cannot be set (not the owner, lock busy).
            if let Err(e) = self.tune_autovacuum().await {
                tracing::warn!(target: "queue", error = %e, "could not tune autovacuum for queue_jobs");
            }
            let mut l = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if l.is_none() {
                *l = Some(tokio::spawn(worker::listen(self.clone())));
            }
        }
        let mut pool = self.pool.lock().await;
        if pool.is_none() {
            *pool = Some(worker::Pool::start(self.clone()).await?);
        }
        Ok(())
    }

    async fn tune_autovacuum(&self) -> Result<(), sqlx::Error> {
        let opts: String = sqlx::query_scalar(
            "SELECT COALESCE(array_to_string(reloptions, ','), '') FROM pg_class \
             WHERE oid = 'queue_jobs'::regclass",
        )
        .fetch_one(self.store.reader())
        .await?;
        if opts.contains("autovacuum_vacuum_scale_factor=0.01") {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        // Never wait behind a running vacuum at start.
        sqlx::query("SET LOCAL lock_timeout = '2s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "ALTER TABLE queue_jobs SET (autovacuum_vacuum_scale_factor = 0.01, \
             autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Stop the worker pool: no new claims, in-flight handlers finish (bounded), results
    /// are acknowledged, unfinished jobs are released back to `queued`.
    pub async fn stop_workers(&self) {
        let pool = self.pool.lock().await.take();
        if let Some(p) = pool {
            p.stop().await;
        }
    }

    /// Stop and start the worker pool (self-heal remediation).
    pub async fn restart_workers(&self) -> anyhow::Result<()> {
        self.stop_workers().await;
        let mut pool = self.pool.lock().await;
        *pool = Some(worker::Pool::start(self.clone()).await?);
        tracing::info!(target: "queue", worker = %self.worker_id, "worker pool restarted");
        Ok(())
    }

    /// Whether the pool is running and its dispatcher looped recently.
    pub async fn pool_healthy(&self) -> bool {
        let pool = self.pool.lock().await;
        match pool.as_ref() {
            Some(p) => {
                let stale = now_ms() - self.last_tick.load(Ordering::Relaxed);
                !p.finished() && stale < (self.cfg.poll_interval_ms as i64 * 4).max(60_000)
            }
            None => false,
        }
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
         WHERE state IN {states} AND finished_at < $1 LIMIT 5000)"
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

/// Status-summary section `queue`.
pub(crate) struct Summary;

impl SummaryProvider for Summary {
    fn area(&self) -> &'static str {
        "queue"
    }

    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let q = state
                .queue()
                .ok_or_else(|| anyhow::anyhow!("queue not started"))?;
            let h = q.health(tenant).await?;
            Ok(serde_json::to_value(h)?)
        })
    }
}

/// Start the queue's workers and metrics sampler (the area's start phase, once every
/// area has registered its job kinds).
pub async fn start(state: &AppState, q: Queue) -> anyhow::Result<()> {
    q.start_workers().await?;
    let sampler = q.clone();
    let mut shutdown = state.shutdown.clone();
    state.spawn_background(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = sampler.sample_metrics().await {
                        tracing::warn!(target: "queue", error = %e, "queue metrics sample failed");
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        // Drain: stop claiming, let in-flight jobs finish, release the rest.
        sampler.stop_workers().await;
        if let Some(h) = sampler
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn queue(store: Store) -> (Queue, tokio::sync::watch::Sender<bool>) {
        let dir = std::env::temp_dir();
        let cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Queue::new(store, cfg, "test", rx), tx)
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let dir = std::env::temp_dir();
        let cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
        for _ in 0..100 {
            let first = backoff_ms(&cfg, 1);
            assert!((1600..=2400).contains(&first), "{first}");
            let third = backoff_ms(&cfg, 3);
            assert!((6400..=9600).contains(&third), "{third}");
            assert!(backoff_ms(&cfg, 40) <= 360_000);
        }
    }

    #[tokio::test]
    async fn idempotency_is_enforced_by_the_database() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store);
            let mut j = NewJob::new("echo", json!({"a": 1}));
            j.idempotency_key = Some("k1".into());
            let a = q.enqueue("default", j.clone(), None).await.unwrap();
            let b2 = q.enqueue("default", j.clone(), None).await.unwrap();
            assert!(a.created && !b2.created, "{b}");
            assert_eq!(a.id, b2.id);
            let other = q.enqueue("acme", j, None).await.unwrap();
            assert!(other.created && other.id != a.id, "keys are per tenant");
            assert!(matches!(
                q.enqueue("default", NewJob::new("nope", Value::Null), None)
                    .await,
                Err(EnqueueError::Invalid(_))
            ));
        }
    }

    #[tokio::test]
    async fn prune_finished_keeps_recent_and_unfinished_jobs() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store.clone());
            let jobs = (0..12).map(|i| NewJob::new("echo", json!(i))).collect();
            let ids: Vec<String> = q
                .enqueue_many("default", jobs)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect();
            let old = now_ms() - 10 * 86_400_000;
            for (i, id) in ids.iter().enumerate() {
                let (state, fin) = match i % 4 {
                    0 => ("succeeded", Some(old)),
                    1 => ("dead", Some(old)),
                    2 => ("succeeded", Some(now_ms())),
                    _ => ("queued", None),
                };
                sqlx::query("UPDATE queue_jobs SET state = $1, finished_at = $2 WHERE id = $3")
                    .bind(state)
                    .bind(fin)
                    .bind(id)
                    .execute(store.writer())
                    .await
                    .unwrap();
            }
            let cutoff = now_ms() - 86_400_000;
            assert_eq!(
                prune_finished(&store, cutoff, false).await.unwrap(),
                3,
                "{b}"
            );
            assert_eq!(
                prune_finished(&store, cutoff, true).await.unwrap(),
                3,
                "{b}"
            );
            let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_jobs")
                .fetch_one(store.reader())
                .await
                .unwrap();
            assert_eq!(left, 6);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_never_share_a_job() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store);
            let jobs = (0..300).map(|i| NewJob::new("echo", json!(i))).collect();
            q.enqueue_many("default", jobs).await.unwrap();
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let q = q.clone();
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = worker::claim(&q, 16).await.unwrap();
                        if got.is_empty() {
                            break;
                        }
                        mine.extend(got.into_iter().map(|c| c.id));
                    }
                    mine
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let unique: std::collections::HashSet<_> = all.iter().collect();
            assert_eq!(all.len(), 300, "{b}");
            assert_eq!(unique.len(), 300, "{b}: a job was claimed twice");
            let h = q.health("default").await.unwrap();
            assert_eq!(h.depth.running, 300);
        }
    }
}
