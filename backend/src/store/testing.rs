//! Test databases: every test gets its own fresh database, SQLite always and PostgreSQL
//! when `ECHOPILOT_TEST_PG_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).

use super::Store;

/// Which backends to run a store test on.
pub fn backends() -> Vec<&'static str> {
    let mut v = vec!["sqlite"];
    if std::env::var("ECHOPILOT_TEST_PG_URL").is_ok() {
        v.push("postgres");
    } else {
        eprintln!("note: ECHOPILOT_TEST_PG_URL not set: PostgreSQL variant of this test skipped");
    }
    v
}

/// A fresh database: a temp SQLite file, or a new PostgreSQL database created from the
/// admin URL. Returns the store plus a guard that keeps the temp dir alive.
pub async fn fresh(backend: &str) -> (Store, TestDb) {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = super::sqlite_url(&dir.path().join("test.db"));
            let store = Store::connect(&url, 4).await.expect("connect sqlite");
            store.migrate().await.expect("migrate");
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
            store.migrate().await.expect("migrate");
            (store, TestDb { _dir: None, url })
        }
        other => panic!("unknown backend {other}"),
    }
}

pub struct TestDb {
    _dir: Option<tempfile::TempDir>,
    pub url: String,
}

/// Create a uniquely named database on the test server and return its URL.
pub async fn create_pg_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("ECHOPILOT_TEST_PG_URL").expect("ECHOPILOT_TEST_PG_URL");
    sqlx::any::install_default_drivers();
    let name = crate::util::random_id("ep_test_", 8);
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to ECHOPILOT_TEST_PG_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    replace_db_name(&admin, &name)
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
