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
//! a due `failed` job is promoted back to `queued`; `dead → queued` via retry. A kind may
//! register a timeout ([`kinds::KindSpec`]): an attempt past it is cancelled (its handler
//! task aborted) and fails with an error starting `timed_out:`, then retries or goes dead
//! like any failure.
//!
//! Files: [`config`] (settings, backoff), [`model`] (rows and API types), [`enqueue`],
//! [`admin`] (reads, retry, purge, pause, reclaim, pruning), [`kinds`] (handler
//! registry), [`worker`] (claim, run, acknowledge, heartbeat), `commit` (group commit),
//! [`api`] (routes).

pub mod admin;
pub mod api;
pub mod area;
mod commit;
pub mod config;
pub mod enqueue;
pub mod kinds;
pub mod model;
pub mod worker;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::store::{Dialect, Store};
use crate::util::{now_ms, random_id};
pub use admin::prune_finished;
pub use config::{backoff_ms, QueueConfig};
pub use kinds::{JobCtx, KindSpec, Registry};
pub use model::{
    Depth, EnqueueError, Enqueued, Health, Job, JobState, JsonText, NewJob, RetryOutcome,
};

/// Tenant of the platform's own jobs (scheduled jobs `scheduled:<name>`, alert delivery
/// `alerts.deliver`), so they never show in a customer tenant's queue, depth or lag. A
/// superadmin sees them with `X-Tenant-Id: _system`. Reserved: no key may use it.
pub const SYSTEM_TENANT: &str = "_system";

/// PostgreSQL NOTIFY channel: a job became ready (enqueue, retry) or the pause flag changed.
pub const NOTIFY_CHANNEL: &str = "echopilot_queue";

pub const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "dead"];

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

impl Queue {
    /// A queue over `store` (workers not started; see [`Queue::start_workers`]).
    pub fn new(
        store: Store,
        cfg: QueueConfig,
        replica_id: &str,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Queue {
        let registry = Registry::default();
        kinds::register_builtins(&registry, cfg.max_sleep_ms);
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

    /// Add a job kind with a timeout (and a hook for timed-out attempts).
    pub fn register_kind<F, Fut>(&self, kind: &str, spec: KindSpec, f: F)
    where
        F: Fn(JobCtx, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, String>> + Send + 'static,
    {
        self.registry.register_spec(kind, spec, f)
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
    use serde_json::json;

    fn queue(store: Store) -> (Queue, tokio::sync::watch::Sender<bool>) {
        let dir = std::env::temp_dir();
        let cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Queue::new(store, cfg, "test", rx), tx)
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

    /// `n` echo jobs of tenant `default`; their ids.
    async fn echo_jobs(q: &Queue, n: i64) -> Vec<String> {
        let jobs = (0..n).map(|i| NewJob::new("echo", json!(i))).collect();
        let created = q.enqueue_many("default", jobs).await.unwrap();
        created.into_iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn prune_finished_keeps_recent_and_unfinished_jobs() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store.clone());
            let ids = echo_jobs(&q, 12).await;
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
                    let all_slots = worker::TenantSlots::new(usize::MAX);
                    let mut turn = worker::Turn::default();
                    loop {
                        let got = worker::claim(&q, 16, &all_slots, &mut turn).await.unwrap();
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

    #[tokio::test]
    async fn health_counts_depth_lag_and_throughput_in_one_pass() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store.clone());
            let ids = echo_jobs(&q, 6).await;
            q.enqueue_many("other", vec![NewJob::new("echo", json!(0))])
                .await
                .unwrap();
            let now = now_ms();
            // (state, run_at, enqueued_at, finished_at)
            let rows = [
                ("queued", now - 5_000, now - 9_000, None),
                ("queued", now + 60_000, now - 20_000, None),
                ("failed", now - 7_000, now - 8_000, None),
                ("running", now - 30_000, now - 30_000, None),
                ("succeeded", now - 1_000, now - 1_000, Some(now - 500)),
                ("dead", now - 99_000, now - 99_000, Some(now - 90_000)),
            ];
            for (id, (state, run_at, enq, fin)) in ids.iter().zip(rows) {
                sqlx::query(
                    "UPDATE queue_jobs SET state = $1, run_at = $2, enqueued_at = $3, \
                     finished_at = $4 WHERE id = $5",
                )
                .bind(state)
                .bind(run_at)
                .bind(enq)
                .bind(fin)
                .bind(id)
                .execute(store.writer())
                .await
                .unwrap();
            }
            let h = q.health("default").await.unwrap();
            let d = &h.depth;
            assert_eq!(
                (d.queued, d.running, d.failed, d.dead, d.succeeded),
                (2, 1, 1, 1, 1),
                "{b}"
            );
            // Ready: the due queued job and the failed one due for its retry (not the
            // future one, not the running one).
            assert!((7_000..8_000).contains(&h.lag_ms), "{b}: lag {}", h.lag_ms);
            assert_eq!(h.oldest_ready_age_s, 9, "{b}");
            assert_eq!(
                h.throughput_per_min, 1,
                "{b}: only the recent finish counts"
            );
            let other = q.health("other").await.unwrap();
            assert_eq!(
                (other.depth.queued, other.throughput_per_min),
                (1, 0),
                "{b}"
            );
        }
    }

    #[tokio::test]
    async fn claims_take_tenants_in_turn_within_each_tenants_cap() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store);
            let flood = (0..50).map(|i| NewJob::new("echo", json!(i))).collect();
            q.enqueue_many("flood", flood).await.unwrap();
            let few = (0..2).map(|i| NewJob::new("echo", json!(i))).collect();
            q.enqueue_many("quiet", few).await.unwrap();
            q.enqueue_many(SYSTEM_TENANT, vec![NewJob::new("echo", json!("tick"))])
                .await
                .unwrap();
            let tenants = |got: &[worker::Claimed]| {
                let mut t: Vec<String> = got.iter().map(|c| c.tenant_id.clone()).collect();
                t.sort();
                t
            };
            let slots = worker::TenantSlots::new(3);
            let mut turn = worker::Turn::default();
            // Three tenants, four slots: one each, and the odd one to a tenant that still
            // has a second job; the platform's job is never behind the flood.
            let first = worker::claim(&q, 4, &slots, &mut turn).await.unwrap();
            let t = tenants(&first);
            assert_eq!(t.len(), 4, "{b}: {t:?}");
            for who in ["_system", "flood", "quiet"] {
                assert!(t.iter().any(|x| x == who), "{b}: {who} got nothing: {t:?}");
            }
            // The flood is at its cap of three in this process: the next claim serves the
            // others only, however many slots are free.
            let held: Vec<_> = first.iter().map(|c| slots.hold(&q, &c.tenant_id)).collect();
            let flood_held = first.iter().filter(|c| c.tenant_id == "flood").count();
            let more: Vec<_> = (flood_held..3).map(|_| slots.hold(&q, "flood")).collect();
            let second = worker::claim(&q, 100, &slots, &mut turn).await.unwrap();
            let t = tenants(&second);
            assert!(
                t.iter().all(|x| x == "quiet"),
                "{b}: the flood went past its cap: {t:?}"
            );
            // Once the flood's jobs finish it gets its cap again, and no more.
            drop(more);
            drop(held);
            let third = worker::claim(&q, 100, &slots, &mut turn).await.unwrap();
            assert_eq!(tenants(&third), vec!["flood"; 3], "{b}");
        }
    }

    async fn wait_for_state(q: &Queue, id: &str, want: JobState) -> Job {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let j = q.get("default", id).await.unwrap().unwrap();
            if j.state == want {
                return j;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} never reached {want}: {j:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_past_its_kinds_timeout_is_cancelled_retried_then_dead() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let dir = std::env::temp_dir();
            let mut cfg = QueueConfig::from_config(&crate::Config::for_data_dir(&dir)).unwrap();
            cfg.backoff_base_ms = 10;
            cfg.backoff_cap_ms = 20;
            cfg.poll_interval_ms = 20;
            let (_stop, rx) = tokio::sync::watch::channel(false);
            let q = Queue::new(store, cfg, "test", rx);
            // Each running handler holds a guard that counts itself out when dropped: the
            // count returning to 0 proves cancellation really dropped the handler future.
            struct Live(Arc<std::sync::atomic::AtomicI64>);
            impl Drop for Live {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let live = Arc::new(std::sync::atomic::AtomicI64::new(0));
            let started = Arc::new(std::sync::atomic::AtomicI64::new(0));
            let (hook_tx, mut hook_rx) = tokio::sync::mpsc::unbounded_channel::<(i64, String)>();
            let hook: kinds::TimeoutHook = Arc::new(move |ctx, err| {
                let tx = hook_tx.clone();
                Box::pin(async move {
                    let _ = tx.send((ctx.attempt, err));
                })
            });
            q.register_kind(
                "hang",
                KindSpec {
                    timeout: Some(Duration::from_millis(150)),
                    on_timeout: Some(hook),
                    ..KindSpec::default()
                },
                {
                    let (live, started) = (live.clone(), started.clone());
                    move |_ctx, _p| {
                        live.fetch_add(1, Ordering::SeqCst);
                        started.fetch_add(1, Ordering::SeqCst);
                        let guard = Live(live.clone());
                        async move {
                            let _guard = guard;
                            std::future::pending::<()>().await;
                            Ok(Value::Null)
                        }
                    }
                },
            );
            let mut job = NewJob::new("hang", Value::Null);
            job.max_attempts = Some(2);
            let id = q.enqueue("default", job, None).await.unwrap().id;
            q.start_workers().await.unwrap();
            let dead = wait_for_state(&q, &id, JobState::Dead).await;
            assert_eq!(dead.attempts, 2, "{b}");
            let err = dead.error.unwrap();
            assert!(err.starts_with("timed_out:"), "{b}: {err}");
            for attempt in 1..=2 {
                let (a, e) = hook_rx.recv().await.unwrap();
                assert_eq!(a, attempt);
                assert!(e.starts_with("timed_out:"));
            }
            q.stop_workers().await;
            assert_eq!(started.load(Ordering::SeqCst), 2, "{b}");
            assert_eq!(
                live.load(Ordering::SeqCst),
                0,
                "{b}: a cancelled handler lived on"
            );
        }
    }

    #[tokio::test]
    async fn enqueue_in_tx_commits_or_rolls_back_with_the_callers_rows() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store.clone());
            let mut tx = store.begin_write().await.unwrap();
            let gone = q
                .enqueue_in_tx(&mut tx, "default", NewJob::new("echo", json!(1)))
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            assert!(q.get("default", &gone.id).await.unwrap().is_none(), "{b}");
            let mut tx = store.begin_write().await.unwrap();
            let kept = q
                .enqueue_in_tx(&mut tx, "default", NewJob::new("echo", json!(2)))
                .await
                .unwrap();
            assert!(matches!(
                q.enqueue_in_tx(&mut tx, "default", NewJob::new("nope", json!(0)))
                    .await,
                Err(EnqueueError::Invalid(_))
            ));
            q.register_kind(
                "internal_x",
                KindSpec {
                    internal: true,
                    ..KindSpec::default()
                },
                |_c, _p| async { Ok(Value::Null) },
            );
            let err = q
                .enqueue_in_tx(&mut tx, "default", NewJob::new("internal_x", json!(0)))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("unknown job kind") && !err.contains("internal_x,"),
                "{err}"
            );
            q.enqueue_in_tx(&mut tx, SYSTEM_TENANT, NewJob::new("internal_x", json!(0)))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let j = q.get("default", &kept.id).await.unwrap().unwrap();
            assert_eq!(j.state, JobState::Queued);
            assert_eq!(j.payload, json!(2));
        }
    }

    #[tokio::test]
    async fn corrupt_json_or_an_unknown_state_is_a_visible_error() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let (q, _stop) = queue(store.clone());
            let id = q
                .enqueue("default", NewJob::new("echo", json!({"a": 1})), None)
                .await
                .unwrap()
                .id;
            sqlx::query("UPDATE queue_jobs SET payload = '{oops' WHERE id = $1")
                .bind(&id)
                .execute(store.writer())
                .await
                .unwrap();
            let err = q.get("default", &id).await.unwrap_err().to_string();
            assert!(
                err.contains("payload") && err.contains("stored JSON is invalid"),
                "{b}: {err}"
            );
            sqlx::query("UPDATE queue_jobs SET payload = '{}', state = 'lost' WHERE id = $1")
                .bind(&id)
                .execute(store.writer())
                .await
                .unwrap();
            // Lists read jobs through their state's index, so a row in no known state is
            // not listed; reading it is the visible error.
            let err = q.get("default", &id).await.unwrap_err().to_string();
            assert!(err.contains("unknown JobState"), "{b}: {err}");
        }
    }
}
