//! The store: one interface over SQLite (default, embedded) and PostgreSQL (scale-out).
//!
//! Both dialects go through sqlx's `Any` driver with a deliberately small type vocabulary
//! (BIGINT, TEXT, BLOB/BYTEA) and `$n` placeholders, which both engines accept, so most
//! SQL is shared. Where the dialects differ (locking, upserts, SKIP LOCKED) code branches
//! on [`Dialect`] explicitly. Each backend has its own migration set.
//!
//! SQLite allows one writer at a time: writes go through a single-connection pool so
//! concurrent requests queue in-process instead of failing with SQLITE_BUSY, and
//! write transactions start with `BEGIN IMMEDIATE`. Reads use a separate pool (WAL).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Transaction};

use crate::config::{redact_url, Config};

pub type Tx = Transaction<'static, Any>;
pub type Row = AnyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    dialect: Dialect,
    read: AnyPool,
    write: AnyPool,
    url: String,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connect per the config (SQLite file in the data dir unless a database URL is set)
    /// and apply migrations.
    pub async fn open(cfg: &Config) -> anyhow::Result<Store> {
        let url = match &cfg.database_url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(&cfg.data_dir).with_context(|| {
                    format!("cannot create data dir {}", cfg.data_dir.display())
                })?;
                sqlite_url(&cfg.data_dir.join("echopilot.db"))
            }
        };
        let store = Store::connect(&url, cfg.db_max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres") {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .with_context(|| format!("cannot connect to {}", redact_url(url)))?;
            Ok(Store {
                dialect: Dialect::Postgres,
                read: pool.clone(),
                write: pool,
                url: url.to_string(),
            })
        } else {
            // `cache`: the page cache of each connection (KiB). The one writer gets a large
            // one: with SQLite's default (2 MiB) every index page of a bulk insert was
            // read back from the OS with pread (half of ingestion's kernel time); readers
            // keep a modest one each. `mmap_size` lets every connection read pages
            // through a shared mapping instead of copying them (address space, not RAM).
            let opts = |cache_kib: i64| {
                AnyPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(move |conn, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; NORMAL sync is
                            // durable across process crashes (fsync at checkpoints).
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = NORMAL",
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA mmap_size = 1073741824",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            sqlx::query(&format!("PRAGMA cache_size = -{cache_kib}"))
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
            };
            let write = opts(65_536)
                .max_connections(1)
                .connect(url)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?;
            let read = opts(16_384)
                .max_connections(max_connections.max(2))
                .connect(url)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?;
            Ok(Store {
                dialect: Dialect::Sqlite,
                read,
                write,
                url: url.to_string(),
            })
        }
    }

    /// Apply this dialect's migrations; idempotent (sqlx records applied versions and,
    /// on PostgreSQL, takes an advisory lock so concurrent replicas do not race). A
    /// database migrated with the pre-timestamp names (versions 1..5) is first re-recorded
    /// under the new versions (see [`legacy`]); an unknown recorded state is an error.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        if let legacy::Upgrade::Rewritten { old, new } = legacy::upgrade(self).await? {
            tracing::info!(target: "server", ?old, new, "re-recorded old migration versions under their new names");
        }
        self.migrator()
            .run(&self.write)
            .await
            .context("applying database migrations")
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// SQL that is true when text column `col` contains the bound text `param` (e.g.
    /// `$2`), byte for byte and case-sensitive on both engines (`LIKE` is neither: SQLite
    /// folds ASCII case, and `%`/`_` in the needle would need escaping).
    pub fn contains_sql(&self, col: &str, param: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("instr({col}, {param}) > 0"),
            Dialect::Postgres => format!("strpos({col}, {param}) > 0"),
        }
    }

    /// The connection URL (may contain a password: never log it unredacted).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for single-statement writes.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Start a write transaction (`BEGIN IMMEDIATE` on SQLite, so the write lock is taken
    /// up front and the transaction never fails half-way on lock upgrade).
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.write.begin().await,
        }
    }

    /// `/readyz`: the database answers and every migration of this build is applied.
    /// Counts by version, so rows of other builds (older names, newer areas) neither
    /// make a database ready nor unready.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = true")
                .fetch_all(&self.read)
                .await
                .context("database not reachable")?;
        let expected = self.migrator().iter().count();
        let present = self
            .migrator()
            .iter()
            .filter(|m| applied.contains(&m.version))
            .count();
        if present < expected {
            anyhow::bail!("{present} of {expected} migrations applied");
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// `($1, $2, …), (…)`: placeholders for a multi-row `VALUES` of `rows` rows of `cols`
/// bound columns each (both dialects take `$n`).
pub fn values_rows(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// The same PostgreSQL server URL with another database name (scratch and test databases),
/// keeping credentials and options.
pub fn with_database(url: &str, name: &str) -> String {
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

pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

pub mod legacy;
mod types;
pub use types::{
    convert, decode_json, in_table, is_corrupt_row, CorruptJson, Json, UnknownVariant,
};
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

#[cfg(test)]
mod tests {
    #[test]
    fn with_database_keeps_host_credentials_and_options() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/app?sslmode=disable", "ep_x"),
            "postgres://u:p@h:5432/ep_x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn values_rows_numbers_placeholders_row_by_row() {
        assert_eq!(super::values_rows(1, 1), "($1)");
        assert_eq!(super::values_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
