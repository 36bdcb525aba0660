//! Migrations: a fresh database and one migrated with the pre-timestamp files (versions
//! 1..5, kept under tests/fixtures/old_migrations for this test only) end with the same
//! schema, on SQLite and on PostgreSQL; unknown recorded states are refused.

use std::path::PathBuf;

use echopilot_backend::store::testing;
use echopilot_backend::store::{Dialect, Store};
use sqlx::migrate::Migrator;
use sqlx::Row;

fn old_dir(store: &Store) -> PathBuf {
    let d = match store.dialect() {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/old_migrations/{d}"))
}

/// A database with nothing applied but the first `count` old migrations, as the
/// build of that time left it.
async fn old_database(backend: &str, count: usize) -> (Store, testing::TestDb) {
    let (store, db) = testing::empty(backend).await;
    let mut old = Migrator::new(old_dir(&store)).await.unwrap();
    assert_eq!(old.iter().count(), 5, "fixtures hold the five old files");
    old.migrations = old.migrations[..count].to_vec().into();
    old.run(store.writer()).await.unwrap();
    (store, db)
}

/// Everything the migrations produce, as sorted text: tables, columns, indexes,
/// constraints and the seed rows. `_sqlx_migrations` is excluded (its rows differ by
/// design: installed_on, execution_time).
async fn schema(store: &Store) -> Vec<String> {
    let queries: &[&str] = match store.dialect() {
        Dialect::Sqlite => &[
            "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || COALESCE(sql, '') FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        ],
        Dialect::Postgres => &[
            "SELECT CAST(table_name AS TEXT) || '.' || CAST(column_name AS TEXT) || ' #' \
             || CAST(ordinal_position AS TEXT) || ' ' || CAST(data_type AS TEXT) || ' ' \
             || CAST(is_nullable AS TEXT) || ' ' || COALESCE(CAST(column_default AS TEXT), '-') \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name <> '_sqlx_migrations'",
            "SELECT CAST(tablename AS TEXT) || ' ' || CAST(indexname AS TEXT) || ' ' || indexdef \
             FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations'",
            "SELECT CAST(conrelid::regclass AS TEXT) || ' ' || CAST(conname AS TEXT) || ' ' \
             || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = current_schema()::regnamespace \
             AND conrelid <> '_sqlx_migrations'::regclass",
        ],
    };
    let mut out = Vec::new();
    for q in queries {
        out.extend(
            sqlx::query_scalar::<_, String>(q)
                .fetch_all(store.reader())
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}")),
        );
    }
    for q in [
        "SELECT 'queue_control ' || CAST(id AS TEXT) || ' ' || CAST(paused AS TEXT) FROM queue_control",
        "SELECT 'scheduler_state ' || CAST(id AS TEXT) || ' ' || CAST(running AS TEXT) || ' ' || updated_by FROM scheduler_state",
    ] {
        out.extend(
            sqlx::query_scalar::<_, String>(q)
                .fetch_all(store.reader())
                .await
                .unwrap(),
        );
    }
    out.sort();
    out
}

async fn versions(store: &Store) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.reader())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn old_databases_upgrade_to_the_fresh_schema() {
    for backend in testing::backends() {
        let (fresh, _fresh_db) = testing::fresh(backend).await;
        fresh.ready().await.unwrap();
        let want = schema(&fresh).await;
        assert!(want.len() > 30, "schema query found too little: {want:?}");
        let want_versions = versions(&fresh).await;
        assert!(want_versions.iter().all(|v| *v > 20_000_000_000_000));

        // Every old prefix a release could have left (1, 1..2, …, 1..5) upgrades.
        for count in 1..=5 {
            let (old, db) = old_database(backend, count).await;
            let err = old.ready().await.unwrap_err().to_string();
            assert!(err.contains("migrations applied"), "{err}");
            old.migrate().await.unwrap();
            assert_eq!(
                schema(&old).await,
                want,
                "{backend}, {count} old migrations"
            );
            assert_eq!(versions(&old).await, want_versions, "{backend}, {count}");
            old.ready().await.unwrap();
            // A second replica (or restart) migrates nothing more and is ready.
            let again = Store::connect(&db.url, 2).await.unwrap();
            again.migrate().await.unwrap();
            again.ready().await.unwrap();
            assert_eq!(versions(&again).await, want_versions);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_old_states_are_refused_with_a_clear_error() {
    for backend in testing::backends() {
        // A gap: version 2 missing.
        let (store, _db) = old_database(backend, 5).await;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 2")
            .execute(store.writer())
            .await
            .unwrap();
        let err = format!("{:#}", store.migrate().await.unwrap_err());
        assert!(err.contains("not a prefix"), "{backend}: {err}");

        // An old file that differs from the released one.
        let (store, _db) = old_database(backend, 3).await;
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 3")
            .bind(vec![0u8; 48])
            .execute(store.writer())
            .await
            .unwrap();
        let err = format!("{:#}", store.migrate().await.unwrap_err());
        assert!(
            err.contains("old migration 3") && err.contains("differs"),
            "{err}"
        );

        // A failed (partially applied) old migration.
        let (store, _db) = old_database(backend, 2).await;
        sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = 2")
            .execute(store.writer())
            .await
            .unwrap();
        let err = format!("{:#}", store.migrate().await.unwrap_err());
        assert!(err.contains("failed"), "{err}");

        // Old and new versions side by side.
        let (store, _db) = old_database(backend, 1).await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (20260101000400, 'queue jobs', true, $1, 0)",
        )
        .bind(vec![1u8; 48])
        .execute(store.writer())
        .await
        .unwrap();
        let err = format!("{:#}", store.migrate().await.unwrap_err());
        assert!(err.contains("mixes"), "{err}");
        // Nothing was changed by the refused attempts.
        assert_eq!(versions(&store).await, vec![1, 20260101000400]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_upgrading_at_once_agree() {
    use echopilot_backend::store::legacy::{upgrade, Upgrade};
    for backend in testing::backends() {
        let (store, db) = old_database(backend, 5).await;
        let other = Store::connect(&db.url, 2).await.unwrap();
        // The re-recording is serialised (write lock / advisory lock): one does it, the
        // other then finds nothing to do.
        let (a, b) = tokio::join!(upgrade(&store), upgrade(&other));
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|u| matches!(u, Upgrade::NotNeeded));
        assert!(
            matches!(&got[0], Upgrade::Rewritten { old, new: 10 } if old.len() == 5),
            "{backend}: {got:?}"
        );
        assert_eq!(got[1], Upgrade::NotNeeded, "{backend}");
        match store.dialect() {
            // sqlx's migrator locks on PostgreSQL only: replicas may migrate at once.
            Dialect::Postgres => {
                let (a, b) = tokio::join!(store.migrate(), other.migrate());
                a.unwrap();
                b.unwrap();
            }
            // On SQLite it takes no lock (one process per database file): in turn.
            Dialect::Sqlite => {
                store.migrate().await.unwrap();
                other.migrate().await.unwrap();
            }
        }
        store.ready().await.unwrap();
        other.ready().await.unwrap();
        let (fresh, _f) = testing::fresh(backend).await;
        assert_eq!(versions(&store).await, versions(&fresh).await);
        let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE version <= 5")
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>("n"), 0);
    }
}
