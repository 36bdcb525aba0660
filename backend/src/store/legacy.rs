//! Upgrade of databases migrated before the timestamped migration names.
//!
//! Until 2026-12 the migrations were `0001_core.sql` … `0005_queue_partial_indexes.sql`,
//! several areas' tables to a file. They were split, one area's tables per file, under
//! timestamp versions (`20260101000100_…`) that cannot collide as areas add their own. The
//! SQL is the same statements, so a database that applied old versions already holds
//! exactly what the corresponding new files create; only `_sqlx_migrations` has to be
//! told. [`upgrade`] rewrites its rows before sqlx's migrator runs, and only when every
//! applied old version is one this module knows (same version, same checksum) and maps to
//! whole new files; anything else is reported, never guessed at.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use sqlx::migrate::Migrator;
use sqlx::Row;

use super::{Dialect, Store};

/// One released old migration: its version, the SHA-384 sqlx recorded for it (per
/// dialect: the SQLite and PostgreSQL files differ in comments and BLOB/BYTEA), and the
/// new versions that now hold its statements.
struct OldMigration {
    version: i64,
    sqlite_checksum: &'static str,
    postgres_checksum: &'static str,
    new_versions: &'static [i64],
}

const OLD: &[OldMigration] = &[
    OldMigration {
        version: 1, // 0001_core: tenants, api_keys, audit_log, audit_nodes, idempotency_keys
        sqlite_checksum: "201e1062d7136e859005e86aeeb925e21addc6b1db851a264b07973efe3249b7278fb36bb16a44f4a3c1e84c0e4882ce",
        postgres_checksum: "a9da0e6ab8355553ddb38f58cdb1f5430813d75926bde8136d92b820750778e9c058628f07c12890f592cb5e81f1ca43",
        new_versions: &[20260101000100, 20260101000200, 20260101000300],
    },
    OldMigration {
        version: 2, // 0002_queue: queue_*, selfheal_actions, signing_keys
        sqlite_checksum: "6dd57b4df696d5719697a420d620eee8826218b77a66d49ba7d050b4850520f6fccdbebcf3d5aed5765a67f9cd50e660",
        postgres_checksum: "75aaa12f92ab4fdbed2782ec36e078769566283e81e9ddbfd1e01f5ea9bead6838b1f9ecfd10ca8f0d6af9842a6e4ef0",
        new_versions: &[20260101000400, 20260101000500, 20260101000600],
    },
    OldMigration {
        version: 3, // 0003_jobs: job_runs, scheduler_state, alerts, alert_cooldowns
        sqlite_checksum: "e534948a21bfb5e535c38e87bc48fd1029a79fa6ef1586d95d62f10f77937831516f5e681c809bb59392615b2f03c642",
        postgres_checksum: "5f901592e6faff56d1ac56c1e119137767187618619abc5cd87b73d4e17867d94da9c027bc6b92cd3c8d253a56fb9c1f",
        new_versions: &[20260101000700, 20260101000800],
    },
    OldMigration {
        version: 4, // 0004_ops: ops_plans
        sqlite_checksum: "c5d2ef8ec0550df904dd97b72ab8a4da016e6ddbe97e879dbefeed810454914e83bd2dedbd0ee51274ece12316b7ea9c",
        postgres_checksum: "c5d2ef8ec0550df904dd97b72ab8a4da016e6ddbe97e879dbefeed810454914e83bd2dedbd0ee51274ece12316b7ea9c",
        new_versions: &[20260101000900],
    },
    OldMigration {
        version: 5, // 0005_queue_partial_indexes
        sqlite_checksum: "b6578ee8113226000619068325c37b251af9240e94452d1e30196f30626583029ddf3196247204ca3f036d686e80ce7c",
        postgres_checksum: "b6578ee8113226000619068325c37b251af9240e94452d1e30196f30626583029ddf3196247204ca3f036d686e80ce7c",
        new_versions: &[20260101001000],
    },
];

/// Largest old version: every new version is a timestamp, far above it.
const MAX_OLD_VERSION: i64 = 5;

/// Arbitrary key of the PostgreSQL advisory lock that serialises concurrent upgrades
/// (replicas starting together); distinct from the one sqlx's migrator takes.
const UPGRADE_LOCK_KEY: i64 = 0x6570_6d69_6772_0001;

/// What [`upgrade`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// No `_sqlx_migrations` table or no old versions in it: nothing to do.
    NotNeeded,
    /// The old versions (listed) were rewritten to the new versions (count).
    Rewritten { old: Vec<i64>, new: usize },
}

/// Rewrite old migration versions to the new ones, in one transaction. Errors (and
/// changes nothing) when the recorded state is not exactly a prefix of the released old
/// set with matching checksums, or mixes old and new versions.
pub async fn upgrade(store: &Store) -> anyhow::Result<Upgrade> {
    let migrator = store.migrator();
    if !migrations_table_exists(store).await? {
        return Ok(Upgrade::NotNeeded);
    }
    let mut tx = store.begin_write().await?;
    if store.dialect() == Dialect::Postgres {
        // Released at commit/rollback; a second replica waits, then sees the new rows.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(UPGRADE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
    }
    // Any cannot decode SQLite's BOOLEAN: read it as a BIGINT.
    let rows = sqlx::query(
        "SELECT version, checksum, \
         CASE WHEN success THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS ok \
         FROM _sqlx_migrations",
    )
    .fetch_all(&mut *tx)
    .await
    .context("reading _sqlx_migrations")?;
    let mut applied = BTreeMap::new();
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        let success = row.try_get::<i64, _>("ok")? == 1;
        applied.insert(version, (hex::encode(checksum), success));
    }
    let old: Vec<i64> = applied
        .keys()
        .copied()
        .filter(|v| *v <= MAX_OLD_VERSION)
        .collect();
    if old.is_empty() {
        return Ok(Upgrade::NotNeeded);
    }
    let plan = plan(store.dialect(), &applied, migrator)?;
    let mut new = 0;
    for (old_version, new_versions) in &plan {
        for v in *new_versions {
            let m = migrator
                .iter()
                .find(|m| m.version == *v)
                .expect("plan only names versions of this build");
            // installed_on is kept from the old row: it says when the SQL really ran.
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, installed_on, success, checksum, execution_time) \
                 SELECT $1, $2, installed_on, success, $3, 0 FROM _sqlx_migrations WHERE version = $4",
            )
            .bind(m.version)
            .bind(m.description.to_string())
            .bind(m.checksum.to_vec())
            .bind(*old_version)
            .execute(&mut *tx)
            .await
            .context("recording new migration version")?;
            new += 1;
        }
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(*old_version)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Upgrade::Rewritten { old, new })
}

/// Check the recorded state and pair each applied old version with its new versions.
fn plan(
    dialect: Dialect,
    applied: &BTreeMap<i64, (String, bool)>,
    migrator: &Migrator,
) -> anyhow::Result<Vec<(i64, &'static [i64])>> {
    const HINT: &str = "restore the database from a backup taken by the build that \
                        migrated it, or migrate it with that build first";
    if let Some(v) = applied.keys().find(|v| **v > MAX_OLD_VERSION) {
        bail!(
            "_sqlx_migrations mixes pre-2026-12 versions (1..{MAX_OLD_VERSION}) with new \
             version {v}; this state was not produced by any release: {HINT}"
        );
    }
    let mut plan = Vec::new();
    for (i, (version, (checksum, success))) in applied.iter().enumerate() {
        let Some(known) = OLD.get(i).filter(|o| o.version == *version) else {
            bail!(
                "_sqlx_migrations records old migration versions {:?}, which are not a \
                 prefix of the released 1..{MAX_OLD_VERSION}: {HINT}",
                applied.keys().collect::<Vec<_>>()
            );
        };
        if !success {
            bail!("old migration {version} is recorded as failed (partially applied): {HINT}");
        }
        let expected = match dialect {
            Dialect::Sqlite => known.sqlite_checksum,
            Dialect::Postgres => known.postgres_checksum,
        };
        if checksum != expected {
            bail!(
                "old migration {version} was applied from SQL that differs from the \
                 released file (checksum {checksum}); cannot map it to the new migrations: {HINT}"
            );
        }
        for v in known.new_versions {
            if !migrator.iter().any(|m| m.version == *v) {
                bail!("this build lacks migration {v}, which replaces old version {version}");
            }
        }
        plan.push((*version, known.new_versions));
    }
    Ok(plan)
}

async fn migrations_table_exists(store: &Store) -> anyhow::Result<bool> {
    let sql = match store.dialect() {
        Dialect::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        // sqlx creates it unqualified, i.e. in the first schema of the search path.
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(store.writer())
        .await
        .context("looking for _sqlx_migrations")?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_version_of_the_old_set_is_in_this_build_once() {
        for migrator in [
            &super::super::SQLITE_MIGRATIONS,
            &super::super::POSTGRES_MIGRATIONS,
        ] {
            let mut seen = Vec::new();
            for o in OLD {
                for v in o.new_versions {
                    assert!(migrator.iter().any(|m| m.version == *v), "{v} missing");
                    assert!(!seen.contains(v), "{v} mapped twice");
                    seen.push(*v);
                }
            }
            // The old set covers exactly the first migrations of this build, in order, so
            // files added later (newer timestamps) apply after them.
            let first: Vec<i64> = migrator
                .iter()
                .take(seen.len())
                .map(|m| m.version)
                .collect();
            assert_eq!(first, seen);
        }
    }
}
