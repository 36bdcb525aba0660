//! `scheduler_state` (one row, owned by the jobs area): the fleet-wide desired state
//! (running or stopped) and the schedule generation that `restart_scheduler` bumps.

use crate::audit::{self, NewAudit};
use crate::store::Store;
use crate::util::now_ms;

/// The fleet-wide desired scheduler state (`scheduler_state.running`).
pub async fn desired_running(store: &Store) -> Result<bool, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT running FROM scheduler_state WHERE id = 1")
        .fetch_optional(store.reader())
        .await?;
    Ok(v.unwrap_or(1) != 0)
}

/// The schedule generation every replica should run.
pub async fn generation(store: &Store) -> Result<i64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT generation FROM scheduler_state WHERE id = 1")
        .fetch_optional(store.reader())
        .await?;
    Ok(v.unwrap_or(0))
}

/// When the desired state last changed (Unix ms; 0 if never).
pub async fn changed_at(store: &Store) -> Result<i64, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT updated_at FROM scheduler_state WHERE id = 1")
        .fetch_optional(store.reader())
        .await?;
    Ok(v.unwrap_or(0))
}

/// Set the desired state; `audit_rec` commits with it (its detail gains `changed`).
/// Returns whether it changed.
pub async fn set_running(
    store: &Store,
    running: bool,
    by: &str,
    audit_rec: NewAudit,
) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let before: Option<i64> =
        sqlx::query_scalar("SELECT running FROM scheduler_state WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "UPDATE scheduler_state SET running = $1, updated_at = $2, updated_by = $3 WHERE id = 1",
    )
    .bind(running as i64)
    .bind(now_ms())
    .bind(by)
    .execute(&mut *tx)
    .await?;
    let changed = before.map(|b| (b != 0) != running).unwrap_or(true);
    let mut rec = audit_rec;
    rec.detail["changed"] = serde_json::Value::Bool(changed);
    audit::append(store, &mut tx, rec).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Restart: bump the generation (every replica rebuilds its schedule) and set the state
/// to running, audited in the same transaction. Returns the new generation.
pub async fn bump_generation(
    store: &Store,
    by: &str,
    audit_rec: NewAudit,
) -> Result<i64, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "UPDATE scheduler_state SET generation = generation + 1, running = 1, updated_at = $1, \
         updated_by = $2 WHERE id = 1",
    )
    .bind(now_ms())
    .bind(by)
    .execute(&mut *tx)
    .await?;
    let g: i64 = sqlx::query_scalar("SELECT generation FROM scheduler_state WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let mut rec = audit_rec;
    rec.detail["generation"] = serde_json::json!(g);
    audit::append(store, &mut tx, rec).await?;
    tx.commit().await?;
    Ok(g)
}
