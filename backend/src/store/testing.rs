//! Test databases: every test gets its own fresh database, SQLite always and PostgreSQL
//! when `ECHOPILOT_TEST_PG_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).

use super::Store;

/// Which backends to run a store test on. Without `ECHOPILOT_TEST_PG_URL` only SQLite,
/// and the skip is announced once per test binary on the real stderr (libtest captures
/// `eprintln!` of passing tests, which would hide it). With
/// `ECHOPILOT_TEST_PG_REQUIRED=1` (CI) a missing URL fails the test instead.
pub fn backends() -> Vec<&'static str> {
    static NOTE: std::sync::Once = std::sync::Once::new();
    let mut v = vec!["sqlite"];
    if std::env::var("ECHOPILOT_TEST_PG_URL").is_ok() {
        v.push("postgres");
    } else if std::env::var("ECHOPILOT_TEST_PG_REQUIRED").is_ok_and(|r| r == "1") {
        panic!("ECHOPILOT_TEST_PG_REQUIRED=1 but ECHOPILOT_TEST_PG_URL is not set");
    } else {
        NOTE.call_once(|| {
            use std::io::Write;
            let exe = std::env::current_exe().ok();
            let bin = exe
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // `store-1a2b3c…` → `store`: the test target's name.
            let bin = bin.rsplit_once('-').map_or(bin.as_str(), |(n, _)| n);
            let _ = writeln!(
                std::io::stderr().lock(),
                "note: ECHOPILOT_TEST_PG_URL not set: PostgreSQL variants of the store tests \
                 in {bin} are SKIPPED (set it, e.g. postgres://postgres@127.0.0.1:5432/postgres)"
            );
        });
    }
    v
}

/// A fresh database: a temp SQLite file, or a new PostgreSQL database created from the
/// admin URL, with this build's migrations applied. Returns the store plus a guard that
/// keeps the temp dir alive.
pub async fn fresh(backend: &str) -> (Store, TestDb) {
    let (store, db) = empty(backend).await;
    store.migrate().await.expect("migrate");
    (store, db)
}

/// Like [`fresh`] but with no migrations applied (for migration tests).
pub async fn empty(backend: &str) -> (Store, TestDb) {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = super::sqlite_url(&dir.path().join("test.db"));
            let store = Store::connect(&url, 4).await.expect("connect sqlite");
            (
                store,
                TestDb {
                    _dir: Some(dir),
                    url,
                },
            )
        }
        "postgres" => {
            let url = create_pg_database().await;
            let store = Store::connect(&url, 8).await.expect("connect postgres");
            (store, TestDb { _dir: None, url })
        }
        other => panic!("unknown backend {other}"),
    }
}

pub struct TestDb {
    _dir: Option<tempfile::TempDir>,
    pub url: String,
}

/// Prefix of test database names: `ep_t<unix seconds>_<random>`.
const PG_TEST_PREFIX: &str = "ep_t";
/// Test databases older than this are dropped by the next test run that starts.
const PG_TEST_MAX_AGE_S: i64 = 3 * 3600;

/// Create a uniquely named database on the test server and return its URL. The first
/// call in a process also drops test databases left by runs hours ago (tests cannot drop
/// their own: servers under test may still hold connections when a test ends), so a CI
/// machine does not collect thousands of them.
pub async fn create_pg_database() -> String {
    use sqlx::Connection;
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let admin = std::env::var("ECHOPILOT_TEST_PG_URL").expect("ECHOPILOT_TEST_PG_URL");
    sqlx::any::install_default_drivers();
    let now_s = crate::util::now_ms() / 1000;
    let name = format!("{PG_TEST_PREFIX}{now_s}_{}", crate::util::random_id("", 6));
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to ECHOPILOT_TEST_PG_URL");
    SWEPT
        .get_or_init(|| async {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(datname AS TEXT) FROM pg_database WHERE datname LIKE 'ep\\_t%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
            for old in names.iter().filter(|n| is_stale_test_db(n, now_s)) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        })
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    super::with_database(&admin, &name)
}

/// `ep_t<secs>_…` older than the limit, or the earlier naming `ep_test_<hex>`.
fn is_stale_test_db(name: &str, now_s: i64) -> bool {
    if name.starts_with("ep_test_") {
        return true;
    }
    name.strip_prefix(PG_TEST_PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(secs, _)| secs.parse::<i64>().ok())
        .is_some_and(|t| now_s - t > PG_TEST_MAX_AGE_S)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_old_test_databases_are_stale() {
        let now = 1_800_000_000;
        assert!(super::is_stale_test_db("ep_t1799980000_abcdef", now));
        assert!(!super::is_stale_test_db("ep_t1799999000_abcdef", now));
        assert!(super::is_stale_test_db("ep_test_0a1b2c3d4e5f6a7b", now));
        assert!(!super::is_stale_test_db("ep_tx_abc", now));
        assert!(!super::is_stale_test_db("echopilot", now));
    }
}
