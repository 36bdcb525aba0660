//! Leader election: one replica enqueues the scheduled firings (any replica's workers
//! run them).
//!
//! On PostgreSQL the leader is the replica holding a session-level `pg_advisory_lock` on a
//! dedicated connection (outside the pool, so the pool never recycles it). Every replica
//! tries the lock every few seconds; the leader checks its connection on the same beat and
//! steps down if it fails. When a leader dies its session ends, PostgreSQL releases the lock
//! and the next try on another replica wins. On SQLite there is one process: always leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use crate::app::AppState;
use crate::store::Dialect;

/// Arbitrary constant advisory-lock key of the scheduler leader ("jobs").
pub const PG_LEADER_LOCK: i64 = 0x6a6f_6273;
/// How often followers try the lock and the leader checks its session.
const BEAT: Duration = Duration::from_secs(2);
const DB_TIMEOUT: Duration = Duration::from_secs(5);
/// 1 while this replica leads.
pub const LEADER_GAUGE: &str = "echopilot_scheduler_leader";

pub async fn start(state: &AppState, flag: Arc<AtomicBool>) -> anyhow::Result<()> {
    metrics::gauge!(LEADER_GAUGE).set(0.0);
    if state.store.dialect() == Dialect::Sqlite {
        flag.store(true, Ordering::SeqCst);
        metrics::gauge!(LEADER_GAUGE).set(1.0);
        return Ok(());
    }
    // Drill hook (test builds only): every replica believes it leads, to prove that a
    // firing still runs once (its idempotency key), not once per leader.
    #[cfg(feature = "test-util")]
    if std::env::var("ECHOPILOT_TEST_ALWAYS_LEADER").as_deref() == Ok("1") {
        flag.store(true, Ordering::SeqCst);
        metrics::gauge!(LEADER_GAUGE).set(1.0);
        return Ok(());
    }
    let url = state.store.url().to_string();
    let replica = state.cfg.replica_id.clone();
    let mut shutdown = state.shutdown.clone();
    state.spawn_background(async move {
        let mut conn: Option<PgConnection> = None;
        loop {
            beat(&url, &replica, &mut conn, &flag).await;
            tokio::select! {
                _ = tokio::time::sleep(BEAT) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        // Hand over at once on a clean stop instead of waiting for the session to end.
        flag.store(false, Ordering::SeqCst);
        metrics::gauge!(LEADER_GAUGE).set(0.0);
        if let Some(mut c) = conn {
            let _ = tokio::time::timeout(
                DB_TIMEOUT,
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LEADER_LOCK)
                    .execute(&mut c),
            )
            .await;
            let _ = c.close().await;
            tracing::info!(target: "scheduler", replica = %replica, "leadership released (shutdown)");
        }
    });
    Ok(())
}

async fn beat(url: &str, replica: &str, conn: &mut Option<PgConnection>, flag: &AtomicBool) {
    if conn.is_none() {
        match tokio::time::timeout(DB_TIMEOUT, PgConnection::connect(url)).await {
            Ok(Ok(c)) => *conn = Some(c),
            Ok(Err(e)) => {
                tracing::warn!(target: "scheduler", error = %e, "leader election: cannot connect");
                return;
            }
            Err(_) => {
                tracing::warn!(target: "scheduler", "leader election: connect timed out");
                return;
            }
        }
    }
    let Some(c) = conn.as_mut() else { return };
    let leading = flag.load(Ordering::SeqCst);
    let res = if leading {
        tokio::time::timeout(
            DB_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut *c),
        )
        .await
        .map(|r| r.map(|_| true))
    } else {
        tokio::time::timeout(
            DB_TIMEOUT,
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(PG_LEADER_LOCK)
                .fetch_one(&mut *c),
        )
        .await
    };
    match res {
        Ok(Ok(true)) => {
            if !leading {
                flag.store(true, Ordering::SeqCst);
                metrics::gauge!(LEADER_GAUGE).set(1.0);
                tracing::info!(target: "scheduler", replica, "became scheduler leader");
            }
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            lose(conn, flag, leading, replica);
            tracing::warn!(target: "scheduler", error = %e, "leader election: session failed");
        }
        Err(_) => {
            lose(conn, flag, leading, replica);
            tracing::warn!(target: "scheduler", "leader election: session check timed out");
        }
    }
}

/// The session is gone or unusable: whatever lock it held is gone with it.
fn lose(conn: &mut Option<PgConnection>, flag: &AtomicBool, leading: bool, replica: &str) {
    *conn = None;
    flag.store(false, Ordering::SeqCst);
    metrics::gauge!(LEADER_GAUGE).set(0.0);
    if leading {
        tracing::warn!(target: "scheduler", replica, "lost scheduler leadership");
    }
}
