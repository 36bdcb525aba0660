//! Self-heal 2.0: a library of remediations, each tagged safe or unsafe.
//!
//! [`run_safe`] runs every safe remediation (the hourly `self_heal` job and
//! `POST /api/v1/selfheal/run`); unsafe ones run only when named explicitly
//! ([`run_one`], e.g. from an ops verb). Every action — including "nothing to do" — is
//! stored in `selfheal_actions`, audited in the same transaction, and logged to
//! `self_heal.ndjson`. History holds counts only: job ids (which belong to tenants) go
//! to the server-side log, never to the shared history.

pub mod api;
pub mod area;

use rand::RngCore;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{FromRow as _, Row as _};
use utoipa::ToSchema;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::audit::{self, NewAudit};
use crate::store::{in_table, Json, Store};
use crate::util::{now_ms, random_id, rfc3339_ms};

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Remediation {
    pub name: &'static str,
    pub description: &'static str,
    /// Safe remediations run unattended (hourly job, `/selfheal/run`).
    pub safe: bool,
}

pub const REQUEUE_EXPIRED_LEASES: &str = "requeue_expired_leases";
pub const RESTART_WORKER_POOL: &str = "restart_worker_pool";
pub const QUARANTINE_POISON_JOBS: &str = "quarantine_poison_jobs";
pub const ROTATE_SIGNING_KEYS: &str = "rotate_signing_keys";

pub const REMEDIATIONS: &[Remediation] = &[
    Remediation {
        name: REQUEUE_EXPIRED_LEASES,
        description: "Requeue running jobs whose lease expired (their worker died); jobs on their last attempt go to dead.",
        safe: true,
    },
    Remediation {
        name: RESTART_WORKER_POOL,
        description: "Restart this process's worker pool when its dispatcher stopped or stalled; in-flight jobs finish first.",
        safe: true,
    },
    Remediation {
        name: QUARANTINE_POISON_JOBS,
        description: "Move jobs that failed at once on several consecutive attempts to dead instead of retrying them again.",
        safe: true,
    },
    Remediation {
        name: ROTATE_SIGNING_KEYS,
        description: "Create a new active signing key; the previous one is retired but kept for verification, the oldest retired keys are deleted.",
        safe: false,
    },
];

/// Who asked for a run; recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: String,
    pub id: String,
    pub request_id: String,
}

impl Actor {
    /// Scheduled and internal runs.
    pub fn system(trigger: &str) -> Actor {
        Actor {
            tenant: crate::auth::DEFAULT_TENANT.into(),
            id: "system:self_heal".into(),
            request_id: trigger.into(),
        }
    }
}

crate::text_enum! {
    /// How a remediation ended (`selfheal_actions.outcome`, also the audit outcome).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum ActionOutcome {
        Applied = "applied",
        Noop = "noop",
        Error = "error",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Action {
    pub id: String,
    /// RFC 3339.
    pub ts: String,
    pub remediation: String,
    pub outcome: ActionOutcome,
    pub affected: i64,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub trigger: String,
}

/// A `selfheal_actions` row.
#[derive(sqlx::FromRow)]
struct ActionRow {
    id: String,
    ts: i64,
    remediation: String,
    outcome: ActionOutcome,
    affected: i64,
    detail: Json<Value>,
    trigger: String,
}

impl From<ActionRow> for Action {
    fn from(r: ActionRow) -> Self {
        Action {
            id: r.id,
            ts: rfc3339_ms(r.ts),
            remediation: r.remediation,
            outcome: r.outcome,
            affected: r.affected,
            detail: r.detail.0,
            trigger: r.trigger,
        }
    }
}

struct Outcome {
    outcome: ActionOutcome,
    affected: i64,
    detail: Value,
}

/// Serializes runs in this process (remediations are idempotent across replicas).
static RUN_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Run every safe remediation. The report lists each action.
pub async fn run_safe(state: &AppState, trigger: &str) -> anyhow::Result<Value> {
    run_as(state, trigger, &Actor::system(trigger)).await
}

/// [`run_safe`] on behalf of a caller (API).
pub async fn run_as(state: &AppState, trigger: &str, actor: &Actor) -> anyhow::Result<Value> {
    let names: Vec<&str> = REMEDIATIONS
        .iter()
        .filter(|r| r.safe)
        .map(|r| r.name)
        .collect();
    run_set(state, &names, trigger, actor).await
}

/// Run one named remediation, safe or not (ops verbs such as `rotate_signing_key`).
/// Unknown names are an error.
pub async fn run_one(
    state: &AppState,
    name: &str,
    trigger: &str,
    actor: &Actor,
) -> anyhow::Result<Value> {
    let Some(r) = REMEDIATIONS.iter().find(|r| r.name == name) else {
        anyhow::bail!("unknown remediation {name:?}");
    };
    run_set(state, &[r.name], trigger, actor).await
}

async fn run_set(
    state: &AppState,
    names: &[&str],
    trigger: &str,
    actor: &Actor,
) -> anyhow::Result<Value> {
    let _guard = RUN_LOCK.lock().await;
    let started = now_ms();
    let mut actions = Vec::new();
    for name in names {
        let out = match execute(state, name).await {
            Ok(o) => o,
            Err(e) => Outcome {
                outcome: ActionOutcome::Error,
                affected: 0,
                detail: json!({ "error": format!("{e:#}") }),
            },
        };
        let action = record(&state.store, name, &out, trigger, actor).await?;
        actions.push(action);
    }
    Ok(json!({
        "trigger": trigger,
        "started_at": rfc3339_ms(started),
        "finished_at": rfc3339_ms(now_ms()),
        "actions": actions,
    }))
}

async fn execute(state: &AppState, name: &str) -> anyhow::Result<Outcome> {
    let q = state.queue();
    match name {
        REQUEUE_EXPIRED_LEASES => {
            let q = q.ok_or_else(|| anyhow::anyhow!("queue not running"))?;
            let (requeued, dead) = q.reclaim_expired().await?;
            for id in &requeued {
                tracing::warn!(target: "self_heal", job_id = %id, "requeued job with expired lease");
            }
            for id in &dead {
                tracing::warn!(target: "self_heal", job_id = %id, "dead-lettered job with expired lease on its last attempt");
            }
            Ok(Outcome {
                outcome: if requeued.is_empty() && dead.is_empty() {
                    ActionOutcome::Noop
                } else {
                    ActionOutcome::Applied
                },
                affected: requeued.len() as i64,
                detail: json!({ "requeued": requeued.len(), "dead_lettered": dead.len() }),
            })
        }
        RESTART_WORKER_POOL => {
            let q = q.ok_or_else(|| anyhow::anyhow!("queue not running"))?;
            if q.pool_healthy().await {
                return Ok(Outcome {
                    outcome: ActionOutcome::Noop,
                    affected: 0,
                    detail: json!({ "reason": "worker pool healthy", "worker": q.worker_id }),
                });
            }
            q.restart_workers().await?;
            tracing::warn!(target: "self_heal", worker = %q.worker_id, "worker pool restarted");
            Ok(Outcome {
                outcome: ActionOutcome::Applied,
                affected: 1,
                detail: json!({ "worker": q.worker_id }),
            })
        }
        QUARANTINE_POISON_JOBS => {
            let q = q.ok_or_else(|| anyhow::anyhow!("queue not running"))?;
            let threshold = area::SelfHealSection::load(&state.cfg.raw)?.poison_threshold as i64;
            let ids = q.quarantine_poison(threshold).await?;
            for id in &ids {
                tracing::warn!(target: "self_heal", job_id = %id, "poison job moved to dead");
            }
            Ok(Outcome {
                outcome: if ids.is_empty() {
                    ActionOutcome::Noop
                } else {
                    ActionOutcome::Applied
                },
                affected: ids.len() as i64,
                detail: json!({ "threshold": threshold }),
            })
        }
        ROTATE_SIGNING_KEYS => {
            let keep = area::SelfHealSection::load(&state.cfg.raw)?.signing_keys_keep as i64;
            let r = rotate_signing_keys(&state.store, keep).await?;
            Ok(Outcome {
                outcome: ActionOutcome::Applied,
                affected: 1,
                detail: r,
            })
        }
        other => anyhow::bail!("unknown remediation {other:?}"),
    }
}

/// Store the action and its audit record in one transaction, then log it.
async fn record(
    store: &Store,
    name: &str,
    out: &Outcome,
    trigger: &str,
    actor: &Actor,
) -> anyhow::Result<Action> {
    let now = now_ms();
    let id = random_id("sh_", 8);
    let detail = out.detail.to_string();
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO selfheal_actions (id, ts, remediation, outcome, affected, detail, trigger) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(now)
    .bind(name)
    .bind(out.outcome)
    .bind(out.affected)
    .bind(&detail)
    .bind(trigger)
    .execute(&mut *tx)
    .await?;
    audit::append(
        store,
        &mut tx,
        NewAudit::new(
            &actor.tenant,
            &actor.id,
            &format!("selfheal.{name}"),
            name,
            out.outcome.as_str(),
            &actor.request_id,
        )
        .detail(json!({ "action_id": id, "affected": out.affected, "trigger": trigger, "detail": out.detail })),
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("echopilot_selfheal_actions_total", "remediation" => name.to_string(), "outcome" => out.outcome.as_str())
        .increment(1);
    if out.outcome == ActionOutcome::Error {
        tracing::error!(target: "self_heal", action_id = %id, remediation = name, outcome = out.outcome.as_str(),
            affected = out.affected, trigger, detail = %detail, "remediation failed");
    } else {
        tracing::info!(target: "self_heal", action_id = %id, remediation = name, outcome = out.outcome.as_str(),
            affected = out.affected, trigger, detail = %detail, "remediation ran");
    }
    Ok(Action {
        id,
        ts: rfc3339_ms(now),
        remediation: name.into(),
        outcome: out.outcome,
        affected: out.affected,
        detail: out.detail.clone(),
        trigger: trigger.into(),
    })
}

/// Newest first, optionally one remediation.
pub async fn history(
    store: &Store,
    remediation: Option<&str>,
    limit: i64,
) -> Result<Vec<Action>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, ts, remediation, outcome, affected, detail, trigger FROM selfheal_actions \
         WHERE ($1 = '' OR remediation = $1) ORDER BY ts DESC, id DESC LIMIT $2",
    )
    .bind(remediation.unwrap_or(""))
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            ActionRow::from_row(r).map(Action::from).map_err(|e| {
                let id = r.try_get::<String, _>("id").unwrap_or_default();
                let e = in_table("selfheal_actions", Some(&id))(e);
                e
            })
        })
        .collect()
}

/// Jobs requeued by self-heal in the last 24 h (alert rule: more than 3).
pub async fn requeue_count_24h(store: &Store) -> i64 {
    requeue_count_since(store, now_ms() - 86_400_000)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(target: "self_heal", error = %e, "could not count self-heal requeues");
            0
        })
}

async fn requeue_count_since(store: &Store, since: i64) -> Result<i64, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(affected) AS BIGINT) FROM selfheal_actions WHERE remediation = $1 AND ts >= $2",
    )
    .bind(REQUEUE_EXPIRED_LEASES)
    .bind(since)
    .fetch_one(store.reader())
    .await?;
    Ok(n.unwrap_or(0))
}

/// New active key; previous active → retired; keep only the newest `keep` retired keys.
/// Returns ids and counts only — never key material.
pub async fn rotate_signing_keys(store: &Store, keep: i64) -> anyhow::Result<Value> {
    let now = now_ms();
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let id = random_id("sk_", 8);
    let mut tx = store.begin_write().await?;
    let retired = sqlx::query(
        "UPDATE signing_keys SET state = 'retired', retired_at = $1 WHERE state = 'active'",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "INSERT INTO signing_keys (id, secret, state, created_at) VALUES ($1, $2, 'active', $3)",
    )
    .bind(&id)
    .bind(secret)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query(
        "DELETE FROM signing_keys WHERE state = 'retired' AND id NOT IN \
         (SELECT id FROM signing_keys WHERE state = 'retired' ORDER BY retired_at DESC, created_at DESC LIMIT $1)",
    )
    .bind(keep)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(json!({ "active_key_id": id, "retired": retired, "deleted": deleted, "kept_retired": keep }))
}

/// Keys for signing (first = active) and verifying (all), for signed URLs.
pub async fn signing_keys(store: &Store) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, secret FROM signing_keys ORDER BY CASE WHEN state = 'active' THEN 0 ELSE 1 END, created_at DESC",
    )
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("secret")?)))
        .collect()
}

pub(crate) struct Summary;

impl SummaryProvider for Summary {
    fn area(&self) -> &'static str {
        "self_heal"
    }

    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let store = &state.store;
            let since = now_ms() - 86_400_000;
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(ts) FROM selfheal_actions")
                .fetch_one(store.reader())
                .await?;
            let applied: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM selfheal_actions WHERE ts >= $1 AND outcome = $2",
            )
            .bind(since)
            .bind(ActionOutcome::Applied)
            .fetch_one(store.reader())
            .await?;
            let errors: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM selfheal_actions WHERE ts >= $1 AND outcome = $2",
            )
            .bind(since)
            .bind(ActionOutcome::Error)
            .fetch_one(store.reader())
            .await?;
            Ok(json!({
                "last_run": last.map(rfc3339_ms),
                "applied_24h": applied,
                "errors_24h": errors,
                "requeued_24h": requeue_count_since(store, since).await?,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn rotation_keeps_one_active_and_bounded_retired_keys() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            for _ in 0..5 {
                let r = rotate_signing_keys(&store, 2).await.unwrap();
                let text = r.to_string();
                assert!(!text.contains("secret"), "{text}");
            }
            let keys = signing_keys(&store).await.unwrap();
            assert_eq!(keys.len(), 3, "{b}: active + 2 retired");
            let active: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE state = 'active'")
                    .fetch_one(store.reader())
                    .await
                    .unwrap();
            assert_eq!(active, 1);
            assert!(keys.iter().all(|(_, s)| s.len() == 32));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_safe_restarts_a_stopped_pool_and_records_every_action() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let dir = tempfile::tempdir().unwrap();
            let state = AppState::new(crate::Config::for_data_dir(dir.path()), store.clone());
            let q = crate::queue::area::start_standalone(&state).await.unwrap();
            q.stop_workers().await;
            assert!(!q.pool_healthy().await);

            let report = run_safe(&state, "test").await.unwrap();
            let actions = report["actions"].as_array().unwrap();
            assert_eq!(actions.len(), 3, "{report}");
            let restart = actions
                .iter()
                .find(|a| a["remediation"] == RESTART_WORKER_POOL)
                .unwrap();
            assert_eq!(restart["outcome"], "applied", "{b}: {report}");
            assert!(q.pool_healthy().await);

            // The restarted pool works.
            let e = q
                .enqueue("default", crate::queue::NewJob::new("echo", json!(1)), None)
                .await
                .unwrap();
            let mut state_now = String::new();
            for _ in 0..100 {
                state_now = q
                    .get("default", &e.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .state
                    .to_string();
                if state_now == "succeeded" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(state_now, "succeeded", "{b}");

            // Healthy now: a second run changes nothing; history has both runs.
            let again = run_safe(&state, "test").await.unwrap();
            assert!(
                again["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["outcome"] == "noop"),
                "{again}"
            );
            assert_eq!(history(&store, None, 100).await.unwrap().len(), 6);
            assert_eq!(requeue_count_24h(&store).await, 0);
            state
                .stop_background(std::time::Duration::from_secs(5))
                .await;
        }
    }
}
