//! Scheduled jobs on the queue: one registry of named jobs with cron schedules (UTC, six
//! fields with seconds), each overridable, disableable and given a timeout in config, and
//! every run executed as an ordinary queue job (as River and Oban do periodic jobs).
//!
//! - Areas register their jobs in `server::start_areas` through [`JobRegistry::register`]
//!   before [`start`] is called; `jobs.<name>.schedule`, `.enabled` and `.timeout_secs`
//!   override the defaults.
//! - Every job is a queue kind `scheduled:<name>` ([`exec`]) with the job's timeout. The
//!   leader (PostgreSQL advisory lock, [`leader`]; on SQLite the single process) turns
//!   each cron firing into a queue job whose idempotency key is `scheduled:<name>:<fire
//!   time ms>`, so a firing runs once fleet-wide even if two replicas think they lead.
//!   Runs get the queue's leases, heartbeats, reclaim, retries with backoff, dead-letter
//!   and per-kind timeout (a run past it is cancelled and recorded `timed_out`).
//! - Run-now (`POST /api/v1/jobs/{name}/run`) and startup runs enqueue the same kind.
//! - Each attempt writes one row of `job_runs` (the run history, [`runs`]); a job never
//!   overlaps itself (one `running` row per job), a start that would is `skipped`.
//! - `restart_scheduler` bumps `scheduler_state.generation`; every replica polls it and
//!   rebuilds its schedule from its re-read config ([`schedule`]).
//!
//! Files: [`registry`] (defs, config keys, cron), [`schedule`] (the firing loop and
//! rebuild), [`exec`] (the queue handler), [`runs`] (history), [`control`]
//! (`scheduler_state`), [`api`], [`builtin`], [`leader`], [`retention`].

pub mod api;
pub mod area;
pub mod builtin;
pub mod control;
pub mod exec;
pub mod leader;
pub mod ledger;
pub mod registry;
pub mod retention;
pub mod runs;
pub mod schedule;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::app::{AppState, BoxFuture};
use crate::queue::Queue;
use crate::store::Store;
use crate::util::{now_ms, rfc3339_ms};

pub use control::desired_running;
pub use ledger::{Ledger, LedgerError, RunLedger};
pub use registry::{validate_cron, JobDef, JobRegistry, Settings};
pub use runs::{begin_run, finish_run, get_run, list_runs, Begin, JobRun, Outcome};

/// A job's work: gets the run context, returns a JSON result stored with the run. A
/// blocking error in `ctx.ledger`, or a result object with a non-empty `"errors"` array
/// (folded into the ledger), marks the run `failed` while keeping the result (batch jobs
/// that record per-item errors and carry on); such a run is not retried. An `Err` fails
/// the queue attempt, which is retried with backoff.
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

crate::text_enum! {
    /// What started a run.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Trigger {
        Schedule = "schedule",
        Manual = "manual",
        Startup = "startup",
    }
}

/// Handed to a job handler for one run.
#[derive(Clone)]
pub struct JobContext {
    pub state: AppState,
    pub job: String,
    pub run_id: String,
    pub trigger: Trigger,
    /// This run's error ledger: count what you work on, record what you could not handle.
    /// The engine writes it when the run ends, whatever the outcome.
    pub ledger: Ledger,
    /// What the caller of [`Jobs::run_with`] asked this run to do (`Null` for scheduled
    /// and startup runs, and run-now without arguments). The job checks it.
    pub args: Value,
}

/// A registered job: its code and defaults (config is applied in [`Jobs::settings`]).
struct Def {
    handler: JobHandler,
    run_at_start: bool,
    description: String,
    max_attempts: i64,
    run_role: crate::model::Role,
}

/// The scheduler service, kept in `AppState::jobs`.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<JobsInner>,
}

struct JobsInner {
    defs: BTreeMap<String, Def>,
    defaults: BTreeMap<String, registry::Defaults>,
    /// Effective settings and parsed schedules; replaced on a rebuild.
    current: RwLock<schedule::Built>,
    /// The `scheduler_state.generation` the current schedule was built for.
    generation: AtomicI64,
    leader: Arc<AtomicBool>,
    /// Set when this process is shutting down: no new firings are enqueued.
    closing: AtomicBool,
    queue: Queue,
    /// Wakes the firing loop after a local rebuild.
    rebuilt: tokio::sync::Notify,
}

pub const RUNS_TOTAL: &str = "echopilot_job_runs_total";
pub const RUN_DURATION: &str = "echopilot_job_duration_seconds";

/// Resolve config, register each job's queue kind, start leader election, the firing
/// loop and the startup runs.
pub async fn start(state: &AppState, registry: JobRegistry) -> anyhow::Result<Jobs> {
    let queue = state.require::<Queue>("jobs", "queue")?;
    let mut defs = BTreeMap::new();
    let mut defaults = BTreeMap::new();
    for d in registry.defs {
        if defs.contains_key(&d.name) {
            anyhow::bail!("job {:?} is registered twice", d.name);
        }
        defaults.insert(
            d.name.clone(),
            registry::Defaults {
                schedule: d.default_schedule,
                timeout: d.default_timeout,
            },
        );
        defs.insert(
            d.name,
            Def {
                handler: d.handler,
                run_at_start: d.run_at_start,
                description: d.description,
                max_attempts: d.max_attempts,
                run_role: d.run_role,
            },
        );
    }
    let settings = registry::resolve(&state.cfg.raw, &defaults)?;
    let built = schedule::Built::new(settings).map_err(anyhow::Error::msg)?;
    let generation = control::generation(&state.store).await?;
    let svc = Jobs {
        inner: Arc::new(JobsInner {
            defs,
            defaults,
            current: RwLock::new(built),
            generation: AtomicI64::new(generation),
            leader: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
            queue,
            rebuilt: tokio::sync::Notify::new(),
        }),
    };
    exec::register_kinds(state, &svc);
    leader::start(state, svc.inner.leader.clone()).await?;
    schedule::spawn(state, svc.clone());
    tracing::info!(target: "scheduler", jobs = svc.inner.defs.len(), generation, replica = %state.cfg.replica_id, "scheduler started");

    let paused = !desired_running(&state.store).await.unwrap_or(true);
    let startup: Vec<String> = svc
        .inner
        .defs
        .iter()
        .filter(|(name, d)| d.run_at_start && svc.settings(name).is_some_and(|s| s.enabled))
        .map(|(name, _)| name.clone())
        .collect();
    for name in startup {
        if paused {
            tracing::info!(target: "scheduler", job = %name, "scheduler paused: startup run skipped");
            continue;
        }
        if let Err(e) = svc.run(state, &name, Trigger::Startup).await {
            tracing::error!(target: "scheduler", job = %name, error = %format!("{e:#}"), "startup run could not be enqueued");
        }
    }
    Ok(svc)
}

impl Jobs {
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::SeqCst)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.inner.defs.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.inner.defs.keys().cloned().collect()
    }

    /// Refuse `caller` (403, audited) when starting `name` by hand needs more than an
    /// operator ([`registry::JobDef::run_role`]): the run-now route and the `run_job` verb
    /// must not open a door the job's own area keeps shut.
    pub async fn require_run_role(
        &self,
        state: &AppState,
        caller: &crate::auth::Caller,
        name: &str,
    ) -> crate::error::ApiResult<()> {
        match self.inner.defs.get(name).map(|d| d.run_role) {
            Some(role) if role > crate::model::Role::Operator => {
                caller
                    .require_system(state, role, "jobs.run", "the scheduler")
                    .await
            }
            _ => Ok(()),
        }
    }

    /// The effective settings of `name` right now.
    pub fn settings(&self, name: &str) -> Option<Settings> {
        self.read().settings.get(name).cloned()
    }

    /// Every job's effective settings right now.
    pub fn all_settings(&self) -> BTreeMap<String, Settings> {
        self.read().settings.clone()
    }

    /// The schedule generation this replica runs.
    pub fn generation(&self) -> i64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, schedule::Built> {
        self.inner.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Enqueue a run of `name` now (run-now, startup). Returns the id the run will be
    /// recorded under, or `Overlap` when a run of the job is in progress somewhere in the
    /// fleet (the request is recorded as `skipped`).
    pub async fn run(
        &self,
        state: &AppState,
        name: &str,
        trigger: Trigger,
    ) -> anyhow::Result<Begin> {
        self.run_with(state, name, trigger, None).await
    }

    /// [`Jobs::run`] with arguments for this run (in the queue job's payload; the handler
    /// reads them as [`JobContext::args`]).
    pub async fn run_with(
        &self,
        state: &AppState,
        name: &str,
        trigger: Trigger,
        args: Option<Value>,
    ) -> anyhow::Result<Begin> {
        if !self.contains(name) {
            anyhow::bail!("no job named {name:?}");
        }
        if runs::running_run(&state.store, name).await?.is_some() {
            let id = crate::util::random_id("run_", 10);
            let skipped_id = runs::record_skipped(
                &state.store,
                name,
                trigger,
                &state.cfg.replica_id,
                None,
                &id,
            )
            .await?;
            return Ok(Begin::Overlap { skipped_id });
        }
        let run_id = exec::enqueue(self, name, trigger, None, args).await?;
        Ok(Begin::Started(run_id))
    }

    /// Per-job status rows for `GET /api/v1/automations/status`.
    pub async fn job_statuses(
        &self,
        store: &Store,
        running: bool,
    ) -> anyhow::Result<Vec<JobStatus>> {
        let now = now_ms();
        let rows: Vec<(String, Settings, Option<i64>)> = {
            let built = self.read();
            built
                .settings
                .iter()
                .map(|(name, s)| {
                    let next = (s.enabled && running)
                        .then(|| built.next_fire(name, now))
                        .flatten();
                    (name.clone(), s.clone(), next)
                })
                .collect()
        };
        let mut out = Vec::new();
        for (name, s, next) in rows {
            let def = &self.inner.defs[&name];
            let last_run = list_runs(store, Some(&name), 1).await?.into_iter().next();
            out.push(JobStatus {
                name,
                schedule: s.schedule,
                enabled: s.enabled,
                timeout_secs: s.timeout_secs,
                description: def.description.clone(),
                run_at_start: def.run_at_start,
                next_run: next.map(rfc3339_ms),
                last_run,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRuns {
    pub runs: Vec<JobRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobStatus {
    pub name: String,
    /// Effective six-field cron schedule (UTC).
    pub schedule: String,
    pub enabled: bool,
    /// A run past this is cancelled and recorded `timed_out`.
    pub timeout_secs: u64,
    pub description: String,
    pub run_at_start: bool,
    /// Next scheduled fire (RFC 3339, UTC); null when disabled or the scheduler is stopped.
    pub next_run: Option<String>,
    pub last_run: Option<JobRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutomationsStatus {
    /// Fleet-wide desired state: scheduled jobs run only while true.
    pub running: bool,
    /// Whether this replica enqueues the scheduled firings (always true on SQLite).
    pub leader: bool,
    pub replica_id: String,
    /// Schedule generation this replica runs (bumped by restart_scheduler).
    pub generation: i64,
    pub jobs: Vec<JobStatus>,
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
            let mut by_outcome = serde_json::Map::new();
            for (o, n) in runs::outcome_counts(store, since).await? {
                by_outcome.insert(o.as_str().into(), json!(n));
            }
            let last_tick = runs::succeeded_starts(store, "scheduler_tick", None, 1)
                .await?
                .first()
                .copied();
            let jobs = state.jobs();
            let jobs = jobs.as_ref();
            let settings = jobs.map(Jobs::all_settings).unwrap_or_default();
            Ok(json!({
                "registered": settings.len(),
                "enabled": settings.values().filter(|s| s.enabled).count(),
                "running": desired_running(store).await?,
                "leader": jobs.is_some_and(Jobs::is_leader),
                "generation": jobs.map_or(0, Jobs::generation),
                "runs_24h": by_outcome,
                "last_tick_age_s": last_tick.map(|t| (now_ms() - t).max(0) / 1000),
            }))
        })
    }
}
