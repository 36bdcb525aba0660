//! Restoring a backup into a target — a scratch directory or database (the rehearsal) or
//! a new data dir / database (`echopilot restore`) — and the checks that prove it.
//!
//! Every file is decrypted under a temporary name while its stored bytes are hashed, in
//! one pass; only a file whose hash matches the manifest and whose every chunk
//! authenticates is moved into place. The database goes last-but-checked: SQLite gets
//! `integrity_check` + `foreign_key_check`; PostgreSQL `pg_restore --exit-on-error` then
//! sanity queries. Then row counts against the manifest, the audit log verified
//! (`audit::verify`) and its root recomputed from the restored records against the
//! manifest's head.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::Context as _;

use super::backup::{owner_only, pg_command};
use super::crypt::{self, DrKey};
use super::verify::check_target_dir;
use super::{Check, FileCheck, FileEntry, Manifest};
use crate::store::Store;

/// Where a restore goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// SQLite: `<dir>/echopilot.db`, key files and the redacted config beside it.
    Sqlite { dir: PathBuf },
    /// PostgreSQL: the dump into `url` (an empty database); files into `dir`.
    Postgres { url: String, dir: PathBuf },
}

impl Target {
    fn dir(&self) -> &Path {
        match self {
            Target::Sqlite { dir } | Target::Postgres { dir, .. } => dir,
        }
    }

    /// The database URL of the restored data.
    pub fn database_url(&self) -> String {
        match self {
            Target::Sqlite { dir } => crate::store::sqlite_url(&dir.join("echopilot.db")),
            Target::Postgres { url, .. } => url.clone(),
        }
    }
}

/// Programs for PostgreSQL restores.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_restore: String,
}

/// What a restore did, file by file.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub files: Vec<FileCheck>,
    pub restore_ms: i64,
    /// Files written to the target dir (names relative to it).
    pub written: Vec<String>,
}

impl Restored {
    pub fn ok(&self) -> bool {
        self.files.iter().all(|f| f.ok)
    }
}

/// The key must be the one the backup was sealed with.
pub fn check_key(m: &Manifest, key: &DrKey) -> Result<(), String> {
    if m.key_id == key.id() {
        Ok(())
    } else {
        Err(format!(
            "backup {} was encrypted with key id {}, but the configured key has id {}: use the key that was configured when the backup was taken",
            m.id,
            m.key_id,
            key.id()
        ))
    }
}

fn compare(f: &FileEntry, got: &crypt::Opened) -> Result<(), String> {
    if got.size != f.size {
        return Err(format!(
            "{}: {} bytes stored, the manifest says {}",
            f.name, got.size, f.size
        ));
    }
    if got.sha256 != f.sha256 {
        return Err(format!(
            "{}: SHA-256 {} does not match the manifest's {}",
            f.name, got.sha256, f.sha256
        ));
    }
    Ok(())
}

/// Decrypt `<from>/<f.name>` into `dst`, hash-checked. Blocking.
fn open_into(
    key: &DrKey,
    from: &Path,
    f: &FileEntry,
    dst: impl std::io::Write,
) -> Result<crypt::Opened, String> {
    let path = from.join(&f.name);
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{}: file is missing", f.name),
        _ => format!("{}: {e}", f.name),
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let opened = crypt::open(
        key,
        &f.name,
        std::io::BufReader::with_capacity(crypt::CHUNK, file),
        len,
        dst,
    );
    match opened {
        Ok(o) => {
            compare(f, &o)?;
            Ok(o)
        }
        // A changed byte fails authentication; say which file, and whether its hash moved.
        Err(e) => {
            let hash = crypt::hash_file(&path).ok();
            let moved = match hash {
                Some((size, sha)) if size != f.size || sha != f.sha256 => {
                    "; its SHA-256 no longer matches the manifest"
                }
                _ => "",
            };
            Err(format!("{}: {e}{moved}", f.name))
        }
    }
}

/// Decrypt one file to `dst_path` through a temporary name.
fn open_to_file(key: &DrKey, from: &Path, f: &FileEntry, dst_path: &Path) -> Result<(), String> {
    let tmp = dst_path.with_extension("restoring");
    let out =
        std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    owner_only(&tmp, false);
    let res = open_into(
        key,
        from,
        f,
        std::io::BufWriter::with_capacity(crypt::CHUNK, &out),
    )
    .and_then(|_| out.sync_all().map_err(|e| e.to_string()));
    match res {
        Ok(()) => {
            std::fs::rename(&tmp, dst_path).map_err(|e| format!("{}: {e}", dst_path.display()))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Restore every file of the manifest from `from` into `target`.
pub async fn restore(
    from: &Path,
    m: &Manifest,
    key: &DrKey,
    target: &Target,
    tools: &Tools,
) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let dir = target.dir().to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Restored::default();
    for f in &m.files {
        let (from, f, key, dir, target, tools) = (
            from.to_path_buf(),
            f.clone(),
            key.clone(),
            dir.clone(),
            target.clone(),
            tools.clone(),
        );
        let name = f.name.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<Option<String>, String> {
            match (f.kind.as_str(), &target) {
                ("database", Target::Sqlite { .. }) => {
                    if f.restores_to != "sqlite" {
                        return Err(format!(
                            "{}: a {} dump cannot restore into SQLite",
                            f.name, f.restores_to
                        ));
                    }
                    open_to_file(&key, &from, &f, &dir.join("echopilot.db"))?;
                    Ok(Some("echopilot.db".into()))
                }
                ("database", Target::Postgres { url, .. }) => {
                    if f.restores_to != "pg_dump_custom" {
                        return Err(format!(
                            "{}: a {} backup cannot restore into PostgreSQL",
                            f.name, f.restores_to
                        ));
                    }
                    pg_restore(&key, &from, &f, url, &tools)?;
                    Ok(None)
                }
                ("config", _) => {
                    open_to_file(&key, &from, &f, &dir.join(&f.restores_to))?;
                    Ok(Some(f.restores_to.clone()))
                }
                ("secret", _) => {
                    // A key file name only: never a path out of the target dir.
                    let safe = Path::new(&f.restores_to)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .filter(|n| n == &f.restores_to)
                        .ok_or_else(|| {
                            format!("{}: bad target name {:?}", f.name, f.restores_to)
                        })?;
                    open_to_file(&key, &from, &f, &dir.join(&safe))?;
                    Ok(Some(safe))
                }
                (other, _) => Err(format!("{}: unknown file kind {other:?}", f.name)),
            }
        })
        .await?;
        match res {
            Ok(written) => {
                out.files.push(FileCheck {
                    name,
                    ok: true,
                    detail: "SHA-256 matches; decrypted".into(),
                });
                out.written.extend(written);
            }
            Err(detail) => out.files.push(FileCheck {
                name,
                ok: false,
                detail,
            }),
        }
    }
    out.restore_ms = started.elapsed().as_millis() as i64;
    Ok(out)
}

/// Decrypt the dump straight into `pg_restore --exit-on-error` (no clear copy on disk).
fn pg_restore(
    key: &DrKey,
    from: &Path,
    f: &FileEntry,
    url: &str,
    tools: &Tools,
) -> Result<(), String> {
    let (mut cmd, bare) =
        pg_command(&tools.pg_restore, "pg_restore", url).map_err(|e| e.to_string())?;
    cmd.arg("--exit-on-error")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--no-password")
        .arg(format!("--dbname={bare}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", tools.pg_restore))?;
    let stdin = child.stdin.take().ok_or("pg_restore stdin")?;
    let mut stderr = child.stderr.take().ok_or("pg_restore stderr")?;
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let fed = open_into(
        key,
        from,
        f,
        std::io::BufWriter::with_capacity(crypt::CHUNK, stdin),
    );
    if fed.is_err() {
        // Whatever pg_restore got so far is discarded with the scratch database.
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = err_reader.join().unwrap_or_default();
    fed?;
    if !status.success() {
        return Err(format!(
            "pg_restore failed ({status}): {}",
            crate::logging::redact_secrets(errors.trim())
        ));
    }
    Ok(())
}

async fn timed<F, T>(checks: &mut Vec<Check>, name: &str, f: F) -> Option<T>
where
    F: std::future::Future<Output = Result<(T, String), String>>,
{
    let t = Instant::now();
    let r = f.await;
    let duration_ms = t.elapsed().as_millis() as i64;
    match r {
        Ok((v, detail)) => {
            checks.push(Check {
                name: name.into(),
                ok: true,
                duration_ms,
                detail,
            });
            Some(v)
        }
        Err(detail) => {
            checks.push(Check {
                name: name.into(),
                ok: false,
                duration_ms,
                detail,
            });
            None
        }
    }
}

fn db_err(e: impl std::fmt::Display) -> String {
    crate::logging::redact_secrets(&e.to_string())
}

/// The checks on restored data: integrity, row counts, audit tree. Opens its own store on
/// `url` (no migrations run: the restored schema is what is checked) and closes it. The
/// integrity checks and the audit checks each read the whole database, so they run side by
/// side on two connections; the audit log is read once, for `audit_verify` and
/// `audit_root` both.
pub async fn check_restored(url: &str, m: &Manifest) -> Vec<Check> {
    let store = match Store::connect(url, 2).await {
        Ok(s) => s,
        Err(e) => {
            return vec![Check {
                name: "open".into(),
                ok: false,
                duration_ms: 0,
                detail: db_err(format!("{e:#}")),
            }];
        }
    };
    let mut checks = Vec::new();
    timed(&mut checks, "schema_version", async {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = true")
                .fetch_one(store.reader())
                .await
                .map_err(db_err)?;
        match v {
            Some(v) if v == m.schema_version => Ok(((), format!("{v}"))),
            other => Err(format!(
                "restored schema version {other:?}, the manifest says {}",
                m.schema_version
            )),
        }
    })
    .await;
    timed(&mut checks, "row_counts", async {
        let mut conn = store.reader().acquire().await.map_err(db_err)?;
        let (_, counts, _) = super::facts(&mut conn).await.map_err(db_err)?;
        let diffs: Vec<String> = m
            .row_counts
            .iter()
            .filter_map(|(t, want)| {
                let got = counts.get(t).copied().unwrap_or(-1);
                (got != *want).then(|| format!("{t}: {got} rows, manifest {want}"))
            })
            .collect();
        if diffs.is_empty() {
            let total: i64 = counts.values().sum();
            Ok((
                (),
                format!(
                    "{} tables, {total} rows, all as in the manifest",
                    counts.len()
                ),
            ))
        } else {
            Err(diffs.join("; "))
        }
    })
    .await;
    let (integrity, audit) = tokio::join!(integrity_checks(&store), audit_checks(&store, m));
    store.close().await;
    integrity.into_iter().chain(checks).chain(audit).collect()
}

/// SQLite: `integrity_check` and `foreign_key_check`; PostgreSQL: sanity queries (the
/// restore itself ran with `--exit-on-error`).
async fn integrity_checks(store: &Store) -> Vec<Check> {
    let mut checks = Vec::new();
    if store.dialect() == crate::store::Dialect::Sqlite {
        timed(&mut checks, "integrity_check", async {
            let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_all(store.reader())
                .await
                .map_err(db_err)?;
            if rows == ["ok"] {
                Ok(((), "ok".to_string()))
            } else {
                Err(rows.into_iter().take(10).collect::<Vec<_>>().join("; "))
            }
        })
        .await;
        timed(&mut checks, "foreign_key_check", async {
            let rows = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(store.reader())
                .await
                .map_err(db_err)?;
            if rows.is_empty() {
                Ok(((), "no violations".to_string()))
            } else {
                Err(format!("{} foreign key violation(s)", rows.len()))
            }
        })
        .await;
    } else {
        timed(&mut checks, "sanity_queries", async {
            let one: i32 = sqlx::query_scalar("SELECT 1")
                .fetch_one(store.reader())
                .await
                .map_err(db_err)?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(store.reader())
            .await
            .map_err(db_err)?;
            if one != 1 {
                return Err("SELECT 1 did not answer 1".into());
            }
            Ok((
                (),
                format!("database answers; {tables} tables in schema public"),
            ))
        })
        .await;
    }
    checks
}

/// `audit_verify` (every leaf and stored node recomputed, the size = the manifest head's)
/// and `audit_root` (the root recomputed from the restored records = the manifest head's),
/// from one read of the log. When the log does not verify, the root is recomputed on its
/// own so the report still says whether the records match the head.
async fn audit_checks(store: &Store, m: &Manifest) -> Vec<Check> {
    let mut checks = Vec::new();
    let root = timed(&mut checks, "audit_verify", async {
        let (v, root) = crate::audit::verify_and_root(store, Some(m.audit.size))
            .await
            .map_err(db_err)?;
        if !v.ok {
            return Err(v
                .reason
                .unwrap_or_else(|| "audit log does not verify".into()));
        }
        if v.size != m.audit.size {
            return Err(format!(
                "restored tree has {} records, the manifest's head {}",
                v.size, m.audit.size
            ));
        }
        Ok((
            root,
            format!("{} records verify against their stored tree", v.size),
        ))
    })
    .await
    .flatten();
    timed(&mut checks, "audit_root", async {
        let root = match root {
            Some(r) => r,
            None => crate::audit::recompute_root(store, m.audit.size)
                .await
                .map_err(db_err)?,
        };
        let root = hex::encode(root);
        if root == m.audit.root {
            Ok((
                (),
                format!(
                    "root {root} recomputed from {} restored records matches the manifest",
                    m.audit.size
                ),
            ))
        } else {
            Err(format!(
                "recomputed root {root} differs from the manifest's {}",
                m.audit.root
            ))
        }
    })
    .await;
    checks
}

/// `echopilot restore`: what to restore and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup directory (holding `manifest.json`).
    pub from: PathBuf,
    /// The new data dir.
    pub data_dir: PathBuf,
    /// Restore the database into this PostgreSQL database (a PostgreSQL backup needs it).
    pub database_url: Option<String>,
    pub force: bool,
}

/// What `echopilot restore` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreSummary {
    pub backup_id: String,
    pub created_at: String,
    pub engine: String,
    pub data_dir: PathBuf,
    /// The database restored into (password removed).
    pub database: String,
    pub files: Vec<FileCheck>,
    pub written: Vec<String>,
    pub checks: Vec<Check>,
    /// Decrypt + load.
    pub restore_ms: i64,
    /// The whole restore: key and target checks, decrypt + load, every check, moving the
    /// files into place (the RTO, without starting the server).
    pub total_ms: i64,
    pub audit: super::TreeHead,
    pub rows: i64,
}

fn failures(files: &[FileCheck], checks: &[Check]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.detail.clone())
        .chain(
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail)),
        )
        .collect()
}

/// Restore a backup for real: verify first (key, every file's hash while decrypting into a
/// staging area, the data checks), and only then put it in place. SQLite: the data dir
/// must be empty (or `force`). PostgreSQL: the target database must have no tables (or
/// `force`, which drops and recreates its `public` schema).
pub async fn run_restore(
    req: &RestoreRequest,
    section: &super::DrSection,
) -> anyhow::Result<RestoreSummary> {
    let started = Instant::now();
    let m = super::read_manifest(&req.from)?;
    let key = section.key()?;
    check_key(&m, &key).map_err(anyhow::Error::msg)?;
    check_target_dir(&req.data_dir, req.force).map_err(anyhow::Error::msg)?;
    let tools = Tools {
        pg_restore: section.pg_restore.clone(),
    };
    std::fs::create_dir_all(&req.data_dir)?;
    owner_only(&req.data_dir, true);
    let staging = req
        .data_dir
        .join(format!(".restore-{}", crate::util::random_id("", 4)));
    let result = match (m.engine.as_str(), &req.database_url) {
        ("sqlite", None) => {
            let target = Target::Sqlite { dir: staging.clone() };
            let restored = restore(&req.from, &m, &key, &target, &tools).await?;
            let checks = if restored.ok() {
                check_restored(&target.database_url(), &m).await
            } else {
                Vec::new()
            };
            let failed = failures(&restored.files, &checks);
            if !failed.is_empty() {
                let _ = std::fs::remove_dir_all(&staging);
                anyhow::bail!("backup {} did not verify; nothing was restored:\n  {}", m.id, failed.join("\n  "));
            }
            for stale in ["echopilot.db", "echopilot.db-wal", "echopilot.db-shm"] {
                let _ = std::fs::remove_file(req.data_dir.join(stale));
            }
            for name in &restored.written {
                std::fs::rename(staging.join(name), req.data_dir.join(name))
                    .with_context(|| format!("moving {name} into {}", req.data_dir.display()))?;
            }
            let database = req.data_dir.join("echopilot.db").display().to_string();
            (restored, checks, database)
        }
        ("postgres", Some(url)) => {
            prepare_pg_target(url, req.force).await?;
            let target = Target::Postgres { url: url.clone(), dir: staging.clone() };
            let restored = restore(&req.from, &m, &key, &target, &tools).await?;
            let checks = if restored.ok() {
                check_restored(url, &m).await
            } else {
                Vec::new()
            };
            let failed = failures(&restored.files, &checks);
            if !failed.is_empty() {
                let _ = std::fs::remove_dir_all(&staging);
                anyhow::bail!(
                    "backup {} did not verify; the data dir was not written, and database {} may hold a partial restore (drop it):\n  {}",
                    m.id,
                    crate::config::redact_url(url),
                    failed.join("\n  ")
                );
            }
            for name in &restored.written {
                std::fs::rename(staging.join(name), req.data_dir.join(name))
                    .with_context(|| format!("moving {name} into {}", req.data_dir.display()))?;
            }
            (restored, checks, crate::config::redact_url(url))
        }
        ("postgres", None) => anyhow::bail!(
            "backup {} is a PostgreSQL dump: pass --database-url postgres://… of an empty database to restore it into",
            m.id
        ),
        ("sqlite", Some(_)) => anyhow::bail!(
            "backup {} is a SQLite database: restore it without --database-url (into the data dir)",
            m.id
        ),
        (other, _) => anyhow::bail!("backup {} has an unknown engine {other:?}", m.id),
    };
    let _ = std::fs::remove_dir_all(&staging);
    let (restored, checks, database) = result;
    tracing::info!(target: "dr", backup_id = %m.id, data_dir = %req.data_dir.display(), database = %database,
        restore_ms = restored.restore_ms, "backup restored");
    Ok(RestoreSummary {
        backup_id: m.id.clone(),
        created_at: m.created_at.clone(),
        engine: m.engine.clone(),
        data_dir: req.data_dir.clone(),
        database,
        files: restored.files,
        written: restored.written,
        checks,
        restore_ms: restored.restore_ms,
        total_ms: started.elapsed().as_millis() as i64,
        audit: m.audit.clone(),
        rows: m.row_counts.values().sum(),
    })
}

/// The target database must be empty; `force` empties its `public` schema first.
async fn prepare_pg_target(url: &str, force: bool) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    // The error's own text once (its source chain repeats it), and what to do.
    let mut conn = sqlx::AnyConnection::connect(url).await.map_err(|e| {
        let hint = match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => {
                "; create it first (createdb, or CREATE DATABASE) and restore into it empty"
            }
            _ => "",
        };
        anyhow::anyhow!(
            "cannot connect to {}: {}{hint}",
            crate::config::redact_url(url),
            db_err(&e)
        )
    })?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await?;
    if tables > 0 {
        if !force {
            anyhow::bail!(
                "database {} already has {tables} tables; restore into an empty database, or pass --force to drop its public schema first",
                crate::config::redact_url(url)
            );
        }
        sqlx::query("DROP SCHEMA public CASCADE")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE SCHEMA public")
            .execute(&mut conn)
            .await?;
    }
    let _ = conn.close().await;
    Ok(())
}
