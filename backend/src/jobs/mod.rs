//! The scheduler: one registry of named jobs, cron schedules in UTC (tokio-cron-scheduler,
//! six fields with seconds), each overridable or disabled in config, every run recorded in
//! `job_runs`.
//!
//! - Areas register their jobs in `server::start_areas` through [`JobRegistry::register`]
//!   before [`start`] is called; the config keys `jobs.<name>.schedule` / `jobs.<name>.enabled`
//!   override the default schedule.
//! - A job never overlaps itself, fleet-wide: a partial unique index allows one `running`
//!   row per job, so a second start loses the insert and is recorded as `skipped`.
//! - Scheduled runs happen only on the leader (PostgreSQL advisory lock, see [`leader`]) and
//!   only while the fleet-wide desired state in `scheduler_state` says running. Run-now
//!   (`POST /api/v1/jobs/{name}/run`) runs on the replica that received it.

pub mod api;
pub mod area;
pub mod builtin;
pub mod leader;
pub mod retention;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row as _;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use tracing::Instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::{AppState, BoxFuture};
use crate::config::ConfigError;
use crate::store::Store;
use crate::util::{now_ms, random_id, rfc3339_ms};

/// A job's work: gets the run context, returns a JSON result stored with the run. A result
/// object with a non-empty `"errors"` array marks the run `failed` while keeping the
/// result (batch jobs that record per-item errors and carry on).
pub type JobHandler =
    Arc<dyn Fn(JobContext) -> BoxFuture<'static, anyhow::Result<Value>> + Send + Sync>;

/// Wrap an async closure as a [`JobHandler`].
pub fn handler<F, Fut>(f: F) -> JobHandler
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Value>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
    Startup,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Startup => "startup",
        }
    }
}

/// Handed to a job handler for one run.
#[derive(Clone)]
pub struct JobContext {
    pub state: AppState,
    pub job: String,
    pub run_id: String,
    pub trigger: Trigger,
}

/// A registered job before config is applied.
pub struct JobDef {
    name: String,
    default_schedule: String,
    handler: JobHandler,
    run_at_start: bool,
    description: String,
}

impl JobDef {
    /// Also run once when the server starts (unless disabled or the fleet is paused).
    pub fn run_at_start(&mut self) -> &mut Self {
        self.run_at_start = true;
        self
    }

    /// One line shown in the status listing and docs.
    pub fn describe(&mut self, text: &str) -> &mut Self {
        self.description = text.to_string();
        self
    }
}

/// The one registry of named jobs. Areas call [`JobRegistry::register`] in
/// `server::start_areas`; [`start`] then applies config and schedules them.
#[derive(Default)]
pub struct JobRegistry {
    defs: Vec<JobDef>,
}

impl JobRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `name` with a six-field UTC cron schedule (`sec min hour dom mon dow`).
    pub fn register(
        &mut self,
        name: &str,
        default_schedule: &str,
        handler: JobHandler,
    ) -> &mut JobDef {
        self.defs.push(JobDef {
            name: name.to_string(),
            default_schedule: default_schedule.to_string(),
            handler,
            run_at_start: false,
            description: String::new(),
        });
        self.defs.last_mut().expect("just pushed")
    }

    pub fn names(&self) -> Vec<String> {
        self.defs.iter().map(|d| d.name.clone()).collect()
    }
}

/// A job after config: its effective schedule and whether it is enabled.
struct Registered {
    name: String,
    schedule: String,
    enabled: bool,
    handler: JobHandler,
    run_at_start: bool,
    description: String,
    cron_id: Option<Uuid>,
}

/// The running scheduler service, kept in `AppState::jobs`.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<JobsInner>,
}

struct JobsInner {
    jobs: BTreeMap<String, Registered>,
    sched: JobScheduler,
    leader: Arc<AtomicBool>,
    /// Runs executing in this process; shutdown waits for them to finish.
    inflight: tokio::sync::watch::Sender<usize>,
    /// Set when this process is shutting down: no new scheduled runs start.
    closing: AtomicBool,
}

/// Runs whose heartbeat is older than this belong to a replica that died mid-run.
const STALE_MS: i64 = 60_000;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const ERROR_MAX_CHARS: usize = 2000;

pub const RUNS_TOTAL: &str = "echopilot_job_runs_total";
pub const RUN_DURATION: &str = "echopilot_job_duration_seconds";

/// Outcome of asking to start a run.
pub enum Begin {
    Started(String),
    /// Another run of the job is in progress; the attempt was recorded as `skipped`.
    Overlap {
        skipped_id: String,
    },
}

/// Resolve config, schedule every enabled job, start leader election and the startup runs.
pub async fn start(state: &AppState, registry: JobRegistry) -> anyhow::Result<Jobs> {
    let raw = &state.cfg.raw;
    let mut jobs = BTreeMap::new();
    for def in registry.defs {
        if jobs.contains_key(&def.name) {
            anyhow::bail!("job {:?} is registered twice", def.name);
        }
        let key = format!("jobs.{}.schedule", def.name);
        let schedule = raw.get_string(&key)?.unwrap_or(def.default_schedule);
        let enabled = raw
            .get_bool(&format!("jobs.{}.enabled", def.name))?
            .unwrap_or(true);
        if let Err(msg) = validate_cron(&schedule) {
            return Err(config_error(raw, &key, msg).into());
        }
        jobs.insert(
            def.name.clone(),
            Registered {
                name: def.name,
                schedule,
                enabled,
                handler: def.handler,
                run_at_start: def.run_at_start,
                description: def.description,
                cron_id: None,
            },
        );
    }
    // A typo in a job name would otherwise silently leave the real job on its default.
    for key in raw.keys_with_prefix("jobs.") {
        let mut parts = key.splitn(3, '.');
        let (_, name, field) = (parts.next(), parts.next().unwrap_or(""), parts.next());
        if !jobs.contains_key(name) {
            let known: Vec<&str> = jobs.keys().map(String::as_str).collect();
            return Err(config_error(
                raw,
                key,
                format!("no job named {name:?}; jobs: {}", known.join(", ")),
            )
            .into());
        }
        if !matches!(field, Some("schedule") | Some("enabled")) {
            return Err(config_error(
                raw,
                key,
                "unknown key; a job takes `schedule` and `enabled`".to_string(),
            )
            .into());
        }
    }

    let sched = JobScheduler::new()
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the job scheduler: {e:?}"))?;
    for job in jobs.values_mut().filter(|j| j.enabled) {
        let name = job.name.clone();
        let st = state.clone();
        let cron = CronJob::new_async(job.schedule.as_str(), move |_id, _lock| {
            let st = st.clone();
            let name = name.clone();
            Box::pin(async move { fire(&st, &name).await })
        })
        .map_err(|e| anyhow::anyhow!("cannot schedule job {}: {e:?}", job.name))?;
        job.cron_id = Some(
            sched
                .add(cron)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add job {}: {e:?}", job.name))?,
        );
    }
    let (inflight, _) = tokio::sync::watch::channel(0usize);
    let svc = Jobs {
        inner: Arc::new(JobsInner {
            jobs,
            sched: sched.clone(),
            leader: Arc::new(AtomicBool::new(false)),
            inflight,
            closing: AtomicBool::new(false),
        }),
    };
    leader::start(state, svc.inner.leader.clone()).await?;
    sched
        .start()
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the job scheduler: {e:?}"))?;
    tracing::info!(target: "scheduler", jobs = svc.inner.jobs.len(), replica = %state.cfg.replica_id, "scheduler started");

    // Graceful stop: no new runs, let running ones finish, then stop the cron loop.
    let st = state.clone();
    let s2 = svc.clone();
    state.spawn_background(async move {
        let mut rx = st.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        s2.inner.closing.store(true, Ordering::SeqCst);
        let mut sched = s2.inner.sched.clone();
        if let Err(e) = sched.shutdown().await {
            tracing::warn!(target: "scheduler", error = ?e, "cron loop did not shut down cleanly");
        }
        let mut watch = s2.inner.inflight.subscribe();
        let drained = tokio::time::timeout(Duration::from_secs(25), watch.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok());
        if !drained {
            let n = mark_interrupted(&st.store, &st.cfg.replica_id).await;
            tracing::warn!(target: "scheduler", interrupted = n, "runs still going at shutdown were marked failed");
        }
        tracing::info!(target: "scheduler", "scheduler stopped");
    });

    let paused = !desired_running(&state.store).await.unwrap_or(true);
    for job in svc
        .inner
        .jobs
        .values()
        .filter(|j| j.enabled && j.run_at_start)
    {
        if paused {
            tracing::info!(target: "scheduler", job = %job.name, "scheduler paused: startup run skipped");
            continue;
        }
        if let Err(e) = svc.run(state, &job.name, Trigger::Startup).await {
            tracing::error!(target: "scheduler", job = %job.name, error = %format!("{e:#}"), "startup run could not start");
        }
    }
    Ok(svc)
}

fn config_error(raw: &crate::config::ConfigMap, key: &str, message: String) -> ConfigError {
    raw.error(key, message)
}

/// Check a six-field cron expression the way the scheduler will parse it.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "expected a cron expression with 6 fields (sec min hour day-of-month month day-of-week, UTC), got {expr:?} with {fields}"
        ));
    }
    CronJob::new_async(expr, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|_| format!("not a valid cron expression: {expr:?} (6 fields: sec min hour day-of-month month day-of-week, UTC)"))
}

/// A cron fire: run if this replica leads and the fleet is not paused.
async fn fire(state: &AppState, name: &str) {
    let Some(jobs) = state.jobs() else { return };
    if jobs.inner.closing.load(Ordering::SeqCst) || !jobs.is_leader() {
        return;
    }
    match desired_running(&state.store).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(target: "scheduler", job = name, "scheduler paused: scheduled run not started");
            return;
        }
        Err(e) => {
            tracing::error!(target: "scheduler", job = name, error = %e, "cannot read scheduler state; run not started");
            return;
        }
    }
    if let Err(e) = jobs.run(state, name, Trigger::Schedule).await {
        tracing::error!(target: "scheduler", job = name, error = %format!("{e:#}"), "scheduled run could not start");
    }
}

impl Jobs {
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::SeqCst)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.inner.jobs.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.jobs.keys().cloned().collect()
    }

    /// Start a run of `name` now in the background. Returns the run id, or `Overlap` when
    /// the job is already running somewhere in the fleet (recorded as `skipped`).
    pub async fn run(
        &self,
        state: &AppState,
        name: &str,
        trigger: Trigger,
    ) -> anyhow::Result<Begin> {
        let job = self
            .inner
            .jobs
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no job named {name:?}"))?;
        let begin = begin_run(&state.store, name, trigger, &state.cfg.replica_id).await?;
        if let Begin::Started(run_id) = &begin {
            let ctx = JobContext {
                state: state.clone(),
                job: name.to_string(),
                run_id: run_id.clone(),
                trigger,
            };
            let handler = job.handler.clone();
            let inflight = self.inner.inflight.clone();
            inflight.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                execute(ctx, handler).await;
                inflight.send_modify(|n| *n -= 1);
            });
        }
        Ok(begin)
    }

    /// Per-job status rows for `GET /api/v1/automations/status`.
    pub async fn job_statuses(
        &self,
        store: &Store,
        running: bool,
    ) -> anyhow::Result<Vec<JobStatus>> {
        let mut out = Vec::new();
        for job in self.inner.jobs.values() {
            let next_run = match (job.enabled && running, job.cron_id) {
                (true, Some(id)) => {
                    let mut s = self.inner.sched.clone();
                    s.next_tick_for_job(id)
                        .await
                        .ok()
                        .flatten()
                        .map(|t| rfc3339_ms(t.timestamp_millis()))
                }
                _ => None,
            };
            let last_run = list_runs(store, Some(&job.name), 1)
                .await?
                .into_iter()
                .next();
            out.push(JobStatus {
                name: job.name.clone(),
                schedule: job.schedule.clone(),
                enabled: job.enabled,
                description: job.description.clone(),
                run_at_start: job.run_at_start,
                next_run,
                last_run,
            });
        }
        Ok(out)
    }
}

/// Close out runs abandoned by a dead replica, then claim the job's single `running` slot.
pub async fn begin_run(
    store: &Store,
    name: &str,
    trigger: Trigger,
    replica: &str,
) -> anyhow::Result<Begin> {
    let now = now_ms();
    sqlx::query(
        "UPDATE job_runs SET outcome = 'failed', finished_at = heartbeat_at, \
         duration_ms = heartbeat_at - started_at, \
         error = 'abandoned: the replica running it stopped sending heartbeats' \
         WHERE job = $1 AND outcome = 'running' AND heartbeat_at < $2",
    )
    .bind(name)
    .bind(now - STALE_MS)
    .execute(store.writer())
    .await?;
    let id = random_id("run_", 10);
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, trigger_kind, started_at, outcome, replica, heartbeat_at) \
         VALUES ($1, $2, $3, $4, 'running', $5, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(name)
    .bind(trigger.as_str())
    .bind(now)
    .bind(replica)
    .execute(store.writer())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Begin::Started(id));
    }
    let running: Option<String> =
        sqlx::query_scalar("SELECT id FROM job_runs WHERE job = $1 AND outcome = 'running'")
            .bind(name)
            .fetch_optional(store.reader())
            .await?;
    let error = match &running {
        Some(r) => format!("previous run {r} still running"),
        None => "previous run still running".to_string(),
    };
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger_kind, started_at, finished_at, outcome, error, duration_ms, replica, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $4, 'skipped', $5, 0, $6, $4)",
    )
    .bind(&id)
    .bind(name)
    .bind(trigger.as_str())
    .bind(now)
    .bind(&error)
    .bind(replica)
    .execute(store.writer())
    .await?;
    metrics::counter!(RUNS_TOTAL, "job" => name.to_string(), "outcome" => "skipped").increment(1);
    tracing::info!(target: "scheduler", job = name, job_run_id = %id, trigger = trigger.as_str(), outcome = "skipped", reason = %error, "run skipped: would overlap");
    Ok(Begin::Overlap { skipped_id: id })
}

async fn execute(ctx: JobContext, handler: JobHandler) {
    let span = tracing::info_span!("job_run", job_run_id = %ctx.run_id, job = %ctx.job);
    let store = ctx.state.store.clone();
    let (job, run_id, trigger) = (ctx.job.clone(), ctx.run_id.clone(), ctx.trigger);
    async move {
        tracing::info!(target: "scheduler", job = %job, job_run_id = %run_id, trigger = trigger.as_str(), "run started");
        let started = Instant::now();
        // Heartbeats tell other replicas this run is alive (see STALE_MS).
        let hb_store = store.clone();
        let hb_id = run_id.clone();
        let heartbeat = tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let _ = sqlx::query("UPDATE job_runs SET heartbeat_at = $1 WHERE id = $2 AND outcome = 'running'")
                    .bind(now_ms())
                    .bind(&hb_id)
                    .execute(hb_store.writer())
                    .await;
            }
        });
        // Its own task, so a panic in a job is a failed run, not a dead scheduler.
        let res = tokio::spawn((handler)(ctx).in_current_span()).await;
        heartbeat.abort();
        let (outcome, error, result) = match res {
            Ok(Ok(v)) => match item_errors(&v) {
                0 => ("succeeded", None, Some(v)),
                n => ("failed", Some(format!("{n} item(s) failed; see the run result")), Some(v)),
            },
            Ok(Err(e)) => ("failed", Some(format!("{e:#}")), None),
            Err(e) if e.is_panic() => ("failed", Some("the job panicked".to_string()), None),
            Err(_) => ("failed", Some("the job was cancelled".to_string()), None),
        };
        let error = error.map(|e| truncate(&crate::logging::redact_secrets(&e), ERROR_MAX_CHARS));
        let elapsed = started.elapsed();
        let duration_ms = elapsed.as_millis() as i64;
        let finished = finish_run(&store, &run_id, outcome, error.as_deref(), result.as_ref(), duration_ms).await;
        if let Err(e) = finished {
            tracing::error!(target: "scheduler", job = %job, job_run_id = %run_id, error = %e, "could not record the run's end");
        }
        metrics::counter!(RUNS_TOTAL, "job" => job.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!(RUN_DURATION, "job" => job.clone()).record(elapsed.as_secs_f64());
        match &error {
            None => tracing::info!(target: "scheduler", job = %job, job_run_id = %run_id, outcome, duration_ms, "run finished"),
            Some(err) => tracing::warn!(target: "scheduler", job = %job, job_run_id = %run_id, outcome, duration_ms, error = %err, "run finished"),
        }
    }
    .instrument(span)
    .await
}

/// Record the end of a run started with [`begin_run`].
pub async fn finish_run(
    store: &Store,
    run_id: &str,
    outcome: &str,
    error: Option<&str>,
    result: Option<&Value>,
    duration_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE job_runs SET outcome = $1, error = $2, finished_at = $3, duration_ms = $4, result = $5 WHERE id = $6",
    )
    .bind(outcome)
    .bind(error)
    .bind(now_ms())
    .bind(duration_ms)
    .bind(result.map(|v| v.to_string()))
    .bind(run_id)
    .execute(store.writer())
    .await?;
    Ok(())
}

fn item_errors(v: &Value) -> usize {
    v.get("errors")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Mark this replica's unfinished runs failed (shutdown did not wait for them).
async fn mark_interrupted(store: &Store, replica: &str) -> u64 {
    let now = now_ms();
    sqlx::query(
        "UPDATE job_runs SET outcome = 'failed', finished_at = $1, duration_ms = $1 - started_at, \
         error = 'interrupted: the server shut down before the run finished' \
         WHERE replica = $2 AND outcome = 'running'",
    )
    .bind(now)
    .bind(replica)
    .execute(store.writer())
    .await
    .map(|r| r.rows_affected())
    .unwrap_or(0)
}

/// The fleet-wide desired scheduler state (`scheduler_state.running`).
pub async fn desired_running(store: &Store) -> Result<bool, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT running FROM scheduler_state WHERE id = 1")
        .fetch_optional(store.reader())
        .await?;
    Ok(v.unwrap_or(1) != 0)
}

/// One recorded run, as returned by the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// schedule, manual or startup.
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// running, succeeded, failed or skipped.
    pub outcome: String,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub replica: String,
    /// What the job returned (counts, per-item errors).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRuns {
    pub runs: Vec<JobRun>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStatus {
    pub name: String,
    /// Effective six-field cron schedule (UTC).
    pub schedule: String,
    pub enabled: bool,
    pub description: String,
    pub run_at_start: bool,
    /// Next scheduled fire (RFC 3339, UTC); null when disabled or the scheduler is stopped.
    pub next_run: Option<String>,
    pub last_run: Option<JobRun>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AutomationsStatus {
    /// Fleet-wide desired state: scheduled jobs run only while true.
    pub running: bool,
    /// Whether this replica runs the scheduled jobs (always true on SQLite).
    pub leader: bool,
    pub replica_id: String,
    pub jobs: Vec<JobStatus>,
}

const RUN_COLS: &str =
    "id, job, trigger_kind, started_at, finished_at, outcome, error, duration_ms, replica, result";

fn row_to_run(r: &crate::store::Row) -> Result<JobRun, sqlx::Error> {
    let result: Option<String> = r.try_get("result")?;
    Ok(JobRun {
        id: r.try_get("id")?,
        job: r.try_get("job")?,
        trigger: r.try_get("trigger_kind")?,
        started_at: rfc3339_ms(r.try_get("started_at")?),
        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(rfc3339_ms),
        outcome: r.try_get("outcome")?,
        error: r.try_get("error")?,
        duration_ms: r.try_get("duration_ms")?,
        replica: r.try_get("replica")?,
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

/// Newest runs first, optionally of one job.
pub async fn list_runs(
    store: &Store,
    job: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRun>, sqlx::Error> {
    let rows = match job {
        Some(j) => {
            sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
            ))
            .bind(j)
            .bind(limit)
            .fetch_all(store.reader())
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM job_runs ORDER BY started_at DESC, id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(store.reader())
            .await?
        }
    };
    rows.iter().map(row_to_run).collect()
}

pub async fn get_run(store: &Store, id: &str) -> Result<Option<JobRun>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM job_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.reader())
        .await?;
    row.as_ref().map(row_to_run).transpose()
}

/// Status-summary section `jobs`.
pub struct JobsSummary;

impl crate::app::SummaryProvider for JobsSummary {
    fn area(&self) -> &'static str {
        "jobs"
    }

    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let store = &state.store;
            let since = now_ms() - 24 * 3600 * 1000;
            let rows = sqlx::query(
                "SELECT outcome, COUNT(*) AS n FROM job_runs WHERE started_at >= $1 GROUP BY outcome",
            )
            .bind(since)
            .fetch_all(store.reader())
            .await?;
            let mut by_outcome = serde_json::Map::new();
            for o in ["running", "succeeded", "failed", "skipped"] {
                by_outcome.insert(o.into(), json!(0));
            }
            for r in &rows {
                let o: String = r.try_get("outcome")?;
                let n: i64 = r.try_get("n")?;
                by_outcome.insert(o, json!(n));
            }
            let last_tick: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(started_at) FROM job_runs WHERE job = 'scheduler_tick' AND outcome = 'succeeded'",
            )
            .fetch_one(store.reader())
            .await?;
            let jobs = state.jobs();
            let jobs = jobs.as_ref();
            Ok(json!({
                "registered": jobs.map_or(0, |j| j.inner.jobs.len()),
                "enabled": jobs.map_or(0, |j| j.inner.jobs.values().filter(|x| x.enabled).count()),
                "running": desired_running(store).await?,
                "leader": jobs.is_some_and(Jobs::is_leader),
                "runs_24h": by_outcome,
                "last_tick_age_s": last_tick.map(|t| (now_ms() - t).max(0) / 1000),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_second_start_while_running_is_recorded_as_skipped() {
        for backend in testing::backends() {
            let (store, _db) = testing::fresh(backend).await;
            let Begin::Started(first) = begin_run(&store, "j", Trigger::Schedule, "r1")
                .await
                .unwrap()
            else {
                panic!("{backend}: first start must win");
            };
            // Another replica tries while the first run is alive.
            let Begin::Overlap { skipped_id } =
                begin_run(&store, "j", Trigger::Manual, "r2").await.unwrap()
            else {
                panic!("{backend}: overlap must be detected");
            };
            let skipped = get_run(&store, &skipped_id).await.unwrap().unwrap();
            assert_eq!(skipped.outcome, "skipped");
            assert!(
                skipped.error.unwrap().contains(&first),
                "names the running run"
            );
            // Other jobs are independent.
            assert!(matches!(
                begin_run(&store, "k", Trigger::Manual, "r1").await.unwrap(),
                Begin::Started(_)
            ));
            // A run whose replica stopped heartbeating is closed out, and the job can run again.
            sqlx::query("UPDATE job_runs SET heartbeat_at = heartbeat_at - 120000 WHERE id = $1")
                .bind(&first)
                .execute(store.writer())
                .await
                .unwrap();
            assert!(matches!(
                begin_run(&store, "j", Trigger::Schedule, "r2")
                    .await
                    .unwrap(),
                Begin::Started(_)
            ));
            let old = get_run(&store, &first).await.unwrap().unwrap();
            assert_eq!(old.outcome, "failed");
            assert!(old.error.unwrap().starts_with("abandoned"));
        }
    }

    #[test]
    fn cron_validation_names_the_problem() {
        assert!(validate_cron("0 * * * * *").is_ok());
        assert!(validate_cron("0 55 7 * * *").is_ok());
        assert!(validate_cron("* * * * *").unwrap_err().contains("6 fields"));
        assert!(validate_cron("0 99 * * * *").is_err());
    }
}
