//! Alert rules. Each rule looks at stored facts and either reports what it saw or fires an
//! alert; the `alert_rules` job evaluates them all and records the outcome of each.

use std::sync::Arc;

use serde_json::{json, Value};

use super::NewAlert;
use crate::app::{AppState, BoxFuture};
use crate::jobs::JobContext;
use crate::util::now_ms;

/// What a rule saw.
pub enum Verdict {
    /// Within limits; the observation is reported in the run result.
    Ok(Value),
    /// Over the limit: send this alert.
    Fire(NewAlert, Value),
    /// Nothing to judge (no data source, no samples yet); the reason is reported.
    NoData(String),
}

pub type RuleEval =
    Arc<dyn Fn(AppState) -> BoxFuture<'static, anyhow::Result<Verdict>> + Send + Sync>;

/// A named rule.
#[derive(Clone)]
pub struct Rule {
    pub name: String,
    pub eval: RuleEval,
}

impl Rule {
    pub fn new<F, Fut>(name: &str, f: F) -> Rule
    where
        F: Fn(AppState) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Verdict>> + Send + 'static,
    {
        Rule {
            name: name.to_string(),
            eval: Arc::new(move |s| Box::pin(f(s))),
        }
    }
}

pub fn builtin() -> Vec<Rule> {
    vec![
        Rule::new("scheduler_tick_gap", tick_gap),
        Rule::new("disk_usage", disk_usage),
        Rule::new("selfheal_requeues", selfheal_requeues),
    ]
}

/// The `alert_rules` job: evaluate every rule; a rule that errors is an item error, the
/// others still run.
pub async fn evaluate_all(ctx: JobContext) -> anyhow::Result<Value> {
    let alerts = super::area::service(&ctx.state)
        .ok_or_else(|| anyhow::anyhow!("the alert service is not started"))?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for rule in alerts.rules() {
        match (rule.eval)(ctx.state.clone()).await {
            Ok(Verdict::Ok(observed)) => {
                results.push(json!({"rule": rule.name, "status": "ok", "observed": observed}))
            }
            Ok(Verdict::NoData(reason)) => {
                results.push(json!({"rule": rule.name, "status": "no_data", "reason": reason}))
            }
            Ok(Verdict::Fire(alert, observed)) => match alerts.raise(&ctx.state.store, alert).await
            {
                // Delivery is a queue job (the outbox): `delivery_job_id` follows it.
                Ok(rec) => results.push(json!({
                    "rule": rule.name, "status": "firing", "observed": observed,
                    "alert_id": rec.id, "suppressed": rec.suppressed,
                    "delivery_job_id": rec.delivery_job_id, "error": rec.error,
                })),
                Err(e) => {
                    errors.push(json!({"rule": rule.name, "error": format!("could not raise the alert: {e:#}")}));
                }
            },
            Err(e) => errors.push(json!({"rule": rule.name, "error": format!("{e:#}")})),
        }
    }
    Ok(json!({ "rules": results, "errors": errors }))
}

/// `n` consecutive gaps over the threshold between scheduled heartbeats, newest first. The
/// gap still open (now − last tick) counts as floor(open / threshold) gaps, so a scheduler
/// that stopped ticking altogether is caught as well as one that ticks late.
async fn tick_gap(state: AppState) -> anyhow::Result<Verdict> {
    let Some(alerts) = super::area::service(&state) else {
        return Ok(Verdict::NoData("alert service not started".into()));
    };
    let t = alerts.thresholds.clone();
    if !crate::jobs::desired_running(&state.store).await? {
        return Ok(Verdict::NoData(
            "the scheduler is stopped by an operator".into(),
        ));
    }
    // Through the jobs area, which owns `job_runs` and `scheduler_state`.
    let ticks = crate::jobs::runs::succeeded_starts(
        &state.store,
        "scheduler_tick",
        Some(crate::jobs::Trigger::Schedule),
        t.tick_gap_count as i64 + 1,
    )
    .await?;
    let Some(last) = ticks.first().copied() else {
        return Ok(Verdict::NoData(
            "no scheduled heartbeat recorded yet".into(),
        ));
    };
    let limit_ms = t.tick_gap_secs as i64 * 1000;
    // The open gap starts at the last tick, or later if the scheduler was resumed or this
    // process started since: downtime that operators chose or already know about is not a
    // late heartbeat.
    let resumed_at = crate::jobs::control::changed_at(&state.store).await?;
    let now = now_ms();
    let process_start = now - state.started_at.elapsed().as_millis() as i64;
    let open = (now - last.max(resumed_at).max(process_start)).max(0);
    let mut gaps_s: Vec<i64> = vec![open / 1000];
    gaps_s.extend(ticks.windows(2).map(|w| (w[0] - w[1]) / 1000));
    let streak = gap_streak(open, &ticks, limit_ms);
    let observed = json!({
        "last_tick_age_s": open / 1000, "recent_gaps_s": gaps_s,
        "consecutive_gaps_over_limit": streak, "limit_s": t.tick_gap_secs, "count": t.tick_gap_count,
    });
    if streak >= t.tick_gap_count {
        let alert = NewAlert {
            key: "scheduler_tick_gap".into(),
            severity: super::Severity::Critical,
            title: "Scheduler heartbeat is late".into(),
            message: format!(
                "{streak} consecutive scheduler_tick gaps over {} s (last tick {} s ago). Scheduled jobs may not be running: check GET /api/v1/automations/status (running, leader).",
                t.tick_gap_secs,
                open / 1000
            ),
        };
        return Ok(Verdict::Fire(alert, observed));
    }
    Ok(Verdict::Ok(observed))
}

/// Consecutive gaps over `limit_ms`, newest first. `ticks` are start times, newest first;
/// `open` is the time since the newest. A gap still open and under the limit has not broken
/// the streak yet; one over it counts once per whole limit it spans.
pub fn gap_streak(open: i64, ticks: &[i64], limit_ms: i64) -> u64 {
    let closed_run = ticks
        .windows(2)
        .take_while(|w| w[0] - w[1] > limit_ms)
        .count() as u64;
    if open > limit_ms {
        (open / limit_ms) as u64 + closed_run
    } else {
        closed_run
    }
}

async fn disk_usage(state: AppState) -> anyhow::Result<Verdict> {
    let Some(alerts) = super::area::service(&state) else {
        return Ok(Verdict::NoData("alert service not started".into()));
    };
    let limit = alerts.thresholds.disk_pct;
    let d = crate::jobs::builtin::disk_usage(&state.cfg.data_dir).await?;
    let observed = json!({"mount_point": d.mount_point, "used_pct": d.used_pct, "available_bytes": d.available_bytes, "limit_pct": limit});
    if d.used_pct > limit {
        let alert = NewAlert {
            key: "disk_usage".into(),
            severity: if d.used_pct >= 95.0 { super::Severity::Critical } else { super::Severity::Warning },
            title: "Disk usage high".into(),
            message: format!(
                "The filesystem of the data dir ({}) is {:.1}% used (limit {limit}%), {} MiB free on replica {}.",
                d.mount_point,
                d.used_pct,
                d.available_bytes / (1024 * 1024),
                state.cfg.replica_id
            ),
        };
        return Ok(Verdict::Fire(alert, observed));
    }
    Ok(Verdict::Ok(observed))
}

async fn selfheal_requeues(state: AppState) -> anyhow::Result<Verdict> {
    let Some(alerts) = super::area::service(&state) else {
        return Ok(Verdict::NoData("alert service not started".into()));
    };
    let Some(source) = alerts.selfheal_requeue_source().cloned() else {
        return Ok(Verdict::NoData(
            "self-heal is not installed in this build: no requeue count to judge".into(),
        ));
    };
    let max = alerts.thresholds.selfheal_requeue_max;
    let n = source(state.store.clone()).await?;
    let observed = json!({"requeued_24h": n, "limit": max});
    if n > max {
        let alert = NewAlert {
            key: "selfheal_requeues".into(),
            severity: super::Severity::Warning,
            title: "Self-heal keeps requeueing jobs".into(),
            message: format!(
                "Self-heal requeued {n} jobs in the last 24 h (limit {max}). Workers may be crashing: check GET /api/v1/queue/health and the self_heal log."
            ),
        };
        return Ok(Verdict::Fire(alert, observed));
    }
    Ok(Verdict::Ok(observed))
}

#[cfg(test)]
mod tests {
    use super::gap_streak;

    #[test]
    fn tick_gaps() {
        let s = 1000;
        // Ticking every 60 s: no gaps over 70 s.
        assert_eq!(
            gap_streak(10 * s, &[600 * s, 540 * s, 480 * s, 420 * s], 70 * s),
            0
        );
        // Three late ticks in a row (80 s apart), the current gap still short.
        assert_eq!(
            gap_streak(10 * s, &[600 * s, 520 * s, 440 * s, 360 * s], 70 * s),
            3
        );
        // A late tick, then a normal one: the streak is broken by the normal gap.
        assert_eq!(
            gap_streak(10 * s, &[600 * s, 540 * s, 460 * s, 380 * s], 70 * s),
            0
        );
        // Ticks stopped 215 s ago: three missed beats.
        assert_eq!(gap_streak(215 * s, &[600 * s, 540 * s], 70 * s), 3);
        // Stopped 100 s ago after two late ticks.
        assert_eq!(gap_streak(100 * s, &[600 * s, 520 * s, 440 * s], 70 * s), 3);
    }
}
