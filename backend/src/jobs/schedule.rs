//! The firing loop and schedule rebuilds.
//!
//! Every replica runs the loop: it computes each enabled job's next fire time from its
//! cron expression and, at that time, if it leads and the fleet is not stopped, enqueues
//! the firing ([`super::exec::enqueue`], unique per job and fire time). Missed fires (the
//! process was stopped, the scheduler paused) are not replayed.
//!
//! The loop also polls `scheduler_state.generation` (every [`POLL`]); when
//! `restart_scheduler` bumped it, this replica re-reads its config file and rebuilds the
//! schedule: changed schedules, enablement and timeouts take effect at once.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use croner::Cron;

use super::registry::{self, Settings};
use super::{control, exec, Jobs, Trigger};
use crate::app::AppState;
use crate::util::now_ms;

/// How often the loop looks at `scheduler_state` for a new generation.
pub const POLL: Duration = Duration::from_secs(2);

/// Settings with their parsed schedules.
pub struct Built {
    pub settings: BTreeMap<String, Settings>,
    crons: BTreeMap<String, Cron>,
}

impl Built {
    pub fn new(settings: BTreeMap<String, Settings>) -> Result<Built, String> {
        let mut crons = BTreeMap::new();
        for (name, s) in &settings {
            crons.insert(
                name.clone(),
                registry::parse_cron(&s.schedule).map_err(|e| format!("job {name}: {e}"))?,
            );
        }
        Ok(Built { settings, crons })
    }

    /// Next fire of `name` strictly after `after_ms` (ignores enablement).
    pub fn next_fire(&self, name: &str, after_ms: i64) -> Option<i64> {
        registry::next_fire(self.crons.get(name)?, after_ms)
    }
}

/// What a rebuild changed.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub generation: i64,
    pub changes: Vec<String>,
}

impl Jobs {
    /// Settings the current config would give (re-reads the config file and env): for the
    /// restart plan and the rebuild.
    pub fn settings_from_config(
        &self,
        state: &AppState,
    ) -> Result<BTreeMap<String, Settings>, crate::config::ConfigError> {
        let cfg = state.cfg.reload()?;
        registry::resolve(&cfg.raw, &self.inner.defaults)
    }

    /// Rebuild this replica's schedule from its re-read config, for `generation`.
    pub fn rebuild(&self, state: &AppState, generation: i64) -> anyhow::Result<Rebuilt> {
        let settings = self.settings_from_config(state)?;
        let built = Built::new(settings).map_err(anyhow::Error::msg)?;
        let changes = {
            let mut cur = self
                .inner
                .current
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let changes = registry::diff(&cur.settings, &built.settings);
            *cur = built;
            changes
        };
        for (name, s) in self.all_settings() {
            self.inner.queue.registry.set_timeout(
                &exec::kind(&name),
                Some(Duration::from_secs(s.timeout_secs)),
            );
        }
        self.inner.generation.store(generation, Ordering::SeqCst);
        self.inner.rebuilt.notify_one();
        tracing::info!(target: "scheduler", generation, changes = %changes.join("; "), replica = %state.cfg.replica_id, "schedule rebuilt from config");
        Ok(Rebuilt {
            generation,
            changes,
        })
    }

    /// Rebuild if the database holds a newer generation than this replica runs.
    pub async fn sync_generation(&self, state: &AppState) -> anyhow::Result<Option<Rebuilt>> {
        let g = control::generation(&state.store).await?;
        if g == self.generation() {
            return Ok(None);
        }
        match self.rebuild(state, g) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                // Keep the old schedule, and do not retry a broken config every beat; the
                // next restart tries again.
                self.inner.generation.store(g, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

/// Start the loop (stops at shutdown).
pub fn spawn(state: &AppState, jobs: Jobs) {
    let st = state.clone();
    let mut shutdown = state.shutdown.clone();
    state.spawn_background(async move {
        // name → next fire time (Unix ms).
        let mut next: BTreeMap<String, i64> = BTreeMap::new();
        plan(&jobs, &mut next, now_ms());
        loop {
            let now = now_ms();
            let due_in = next
                .values()
                .min()
                .map(|t| Duration::from_millis((t - now).max(0) as u64))
                .unwrap_or(POLL);
            tokio::select! {
                _ = tokio::time::sleep(due_in.min(POLL)) => {}
                _ = jobs.inner.rebuilt.notified() => {
                    next.clear();
                    plan(&jobs, &mut next, now_ms());
                    continue;
                }
                _ = shutdown.wait_for(|s| *s) => break,
            }
            match jobs.sync_generation(&st).await {
                Ok(Some(_)) => {
                    next.clear();
                    plan(&jobs, &mut next, now_ms());
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(target: "scheduler", error = %format!("{e:#}"), "schedule rebuild failed; keeping the previous schedule")
                }
            }
            let now = now_ms();
            let due: Vec<(String, i64)> = next
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(n, t)| (n.clone(), *t))
                .collect();
            for (name, fire_at) in due {
                fire(&st, &jobs, &name, fire_at).await;
                // The next fire after now, not after the one just due: a stall does not
                // replay a backlog of fires.
                let after = fire_at.max(now);
                match jobs.read().next_fire(&name, after) {
                    Some(t) => next.insert(name, t),
                    None => next.remove(&name),
                };
            }
        }
        jobs.inner.closing.store(true, Ordering::SeqCst);
        tracing::info!(target: "scheduler", "scheduler stopped");
    });
}

fn plan(jobs: &Jobs, next: &mut BTreeMap<String, i64>, now: i64) {
    let built = jobs.read();
    for (name, s) in &built.settings {
        if !s.enabled {
            continue;
        }
        if let Some(t) = built.next_fire(name, now) {
            next.insert(name.clone(), t);
        }
    }
}

/// A cron fire: enqueue it if this replica leads and the fleet is not stopped.
async fn fire(state: &AppState, jobs: &Jobs, name: &str, fire_at: i64) {
    if jobs.inner.closing.load(Ordering::SeqCst) || !jobs.is_leader() {
        return;
    }
    match control::desired_running(&state.store).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(target: "scheduler", job = name, "scheduler stopped: firing not enqueued");
            return;
        }
        Err(e) => {
            tracing::error!(target: "scheduler", job = name, error = %e, "cannot read scheduler state; firing not enqueued");
            return;
        }
    }
    if let Err(e) = exec::enqueue(jobs, name, Trigger::Schedule, Some(fire_at), None).await {
        tracing::error!(target: "scheduler", job = name, fire_at, error = %format!("{e:#}"), "scheduled firing could not be enqueued");
    }
}
