//! Disaster recovery: consistent encrypted backups taken while the server serves, a restore
//! rehearsal that restores the newest backup for real and proves every hash, and the
//! pieces `echopilot restore` uses on the bad day. See `docs/DR.md`.
//!
//! - [`backup`]: SQLite `VACUUM INTO` / PostgreSQL `pg_dump -Fc` under an exported snapshot,
//!   the redacted config and the data dir's key files, each sealed with AES-256-GCM
//!   ([`crypt`]); `manifest.json` holds sizes, hashes, schema version, row counts and the
//!   audit tree head of exactly the rows backed up. Retention as restic `forget`
//!   ([`retention`]), optional offsite copy.
//! - [`restore`]: decrypt + hash-check every file into a target (a scratch directory or
//!   database for the rehearsal, a new data dir for the CLI), then the checks (integrity,
//!   row counts, audit tree recomputed from the restored rows).
//! - [`verify`]: the rehearsal job; a FAIL raises an alert with the last 50 log lines.
//!
//! Store: `dr_backups` (one row per backup, its manifest) and `dr_verifications` (one row
//! per rehearsal, its report). DR is fleet-level: admins of the `default` tenant (or a
//! superadmin) trigger and read it.

pub mod api;
pub mod area;
pub mod backup;
pub mod compliance;
pub mod crypt;
pub mod restore;
pub mod retention;
pub mod verb;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::config::{Config, ConfigError, ConfigMap};
use crate::store::{in_table, Json, Store};
use crate::util::{now_ms, rfc3339_ms};
pub use area::DrSection;
pub use crypt::DrKey;

pub const BACKUPS_TOTAL: &str = "echopilot_dr_backups_total";
pub const VERIFICATIONS_TOTAL: &str = "echopilot_dr_verifications_total";
pub const LAST_BACKUP_AGE: &str = "echopilot_dr_last_backup_age_seconds";
pub const LAST_VERIFY_PASS: &str = "echopilot_dr_last_verify_pass";
pub const BACKUPS_KEPT: &str = "echopilot_dr_backups";
/// Creation time (Unix seconds) of the newest backup: alert on `time() - this`, which
/// stays right between refreshes (the age gauges move only when the status is computed).
pub const LAST_BACKUP_TS: &str = "echopilot_dr_last_backup_timestamp_seconds";
/// Creation time (Unix seconds) of the newest backup whose rehearsal passed (the RPO).
pub const LAST_VERIFIED_TS: &str = "echopilot_dr_last_verified_backup_timestamp_seconds";

/// Manifest format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// One stored file of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// File name inside the backup directory.
    pub name: String,
    /// `database`, `config` or `secret`.
    pub kind: String,
    /// For `secret` files: the file's name in the data dir. For the database: the format
    /// (`sqlite` or `pg_dump_custom`).
    pub restores_to: String,
    /// Stored (encrypted) bytes.
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Bytes once decrypted.
    pub plain_size: u64,
}

/// The audit tree head at backup time (RFC 6962 size and hex root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    pub size: i64,
    pub root: String,
}

/// `manifest.json` of a backup (stored in clear beside the encrypted files: it holds
/// sizes, hashes and counts, no tenant data and no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// RFC 3339 start of the backup.
    pub created_at: String,
    pub created_at_ms: i64,
    pub duration_ms: i64,
    /// `sqlite` or `postgres`.
    pub engine: String,
    /// Latest applied migration version.
    pub schema_version: i64,
    pub echopilot_version: String,
    /// `AES-256-GCM` (chunked; see docs/DR.md).
    pub cipher: String,
    /// Fingerprint of the key the files are sealed with (not the key).
    pub key_id: String,
    pub files: Vec<FileEntry>,
    /// Rows per table (every area's tables) in the snapshot.
    pub row_counts: BTreeMap<String, i64>,
    pub audit: TreeHead,
    /// What started it: `schedule`, `manual`, `startup` or `ops`.
    pub trigger: String,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A backup as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupInfo {
    pub id: String,
    pub created_at: String,
    pub age_secs: i64,
    pub bytes: u64,
    pub files: usize,
    /// Whether its directory is on this replica's disk (or in `[dr] offsite_dir`).
    pub present: bool,
    /// Result of the newest rehearsal of this backup (`pass`/`fail`), if any.
    pub verified: Option<String>,
    pub verified_at: Option<String>,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupList {
    /// `[dr] rpo_minutes`: the newest verified backup older than this is a red status.
    pub rpo_minutes: u64,
    /// Age of the newest backup whose rehearsal passed (the measured RPO), if any.
    pub measured_rpo_secs: Option<i64>,
    pub backups: Vec<BackupInfo>,
}

/// One check of a rehearsal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub duration_ms: i64,
    pub detail: String,
}

/// One file of a rehearsal: whether its stored bytes match the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

crate::text_enum! {
    /// Result of a rehearsal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "UPPERCASE")]
    pub enum Verdict {
        Pass = "PASS",
        Fail = "FAIL",
    }
}

/// A rehearsal's result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyReport {
    pub id: String,
    pub result: Verdict,
    pub backup_id: Option<String>,
    pub started_at: String,
    pub duration_ms: i64,
    /// Time to decrypt and load the backup into the scratch target. The measured RTO is
    /// `duration_ms` (load plus the checks, which `echopilot restore` runs too before it
    /// puts anything in place), plus starting the server.
    pub restore_ms: i64,
    pub file_count: usize,
    pub hashes_matching: usize,
    pub files: Vec<FileCheck>,
    pub checks: Vec<Check>,
    /// What failed, one line each (empty on PASS).
    pub failures: Vec<String>,
    pub trigger: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LatestVerify {
    pub rpo_minutes: u64,
    pub latest: Option<VerifyReport>,
}

/// The DR proofs for the evidence bundle: the newest backup whose rehearsal passed, with
/// that rehearsal, and the newest rehearsal whatever its result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Proofs {
    pub latest_verified_backup: Option<Manifest>,
    pub latest_passing_rehearsal: Option<VerifyReport>,
    pub latest_rehearsal: Option<VerifyReport>,
}

/// The DR service (`State<Dr>`).
#[derive(Clone)]
pub struct Dr {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cfg: Config,
    section: DrSection,
    /// One backup or rehearsal at a time in this process (the job engine already keeps
    /// each job from overlapping itself; this also orders a backup against a rehearsal).
    busy: tokio::sync::Mutex<()>,
}

crate::service_from_ref!(Dr);

/// A `dr_verifications` row.
#[derive(sqlx::FromRow)]
struct VerificationRow {
    report: Json<VerifyReport>,
}

impl Dr {
    pub fn new(store: Store, cfg: Config) -> Result<Dr, ConfigError> {
        let section = DrSection::load(&cfg.raw)?;
        Ok(Dr {
            inner: Arc::new(Inner {
                store,
                cfg,
                section,
                busy: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn section(&self) -> &DrSection {
        &self.inner.section
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// `<data-dir>/backups`.
    pub fn backups_dir(&self) -> PathBuf {
        backups_dir(&self.inner.cfg)
    }

    /// The key, or an error naming where it is looked for.
    pub fn key(&self) -> anyhow::Result<DrKey> {
        self.inner.section.key()
    }

    /// Remove what an interrupted backup or rehearsal left in this replica's backups dir
    /// (the process was killed, or the job timed out and its future was dropped):
    /// `.bk_*.partial` and `.rehearsal-*` directories, which can hold a clear copy of the
    /// database. Runs at start-up and under the busy lock before each backup and
    /// rehearsal, so no run of this process is writing them. Returns the names removed.
    pub fn sweep_interrupted(&self) -> Vec<String> {
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.backups_dir()) else {
            return removed;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let scratch = (name.starts_with(".bk_") && name.ends_with(".partial"))
                || name.starts_with(".rehearsal-");
            if !scratch {
                continue;
            }
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => {
                    tracing::warn!(target: "dr", path = %e.path().display(), "removed what an interrupted backup or rehearsal left");
                    removed.push(name);
                }
                Err(err) => {
                    tracing::error!(target: "dr", path = %e.path().display(), error = %err, "could not remove what an interrupted backup or rehearsal left")
                }
            }
        }
        removed
    }

    /// Where a backup's files are: this replica's backups dir, else the offsite copy.
    pub fn locate(&self, id: &str) -> Option<PathBuf> {
        let local = self.backups_dir().join(id);
        if local.join("manifest.json").is_file() {
            return Some(local);
        }
        let off = self.inner.section.offsite_dir.trim();
        if !off.is_empty() {
            let p = Path::new(off).join(id);
            if p.join("manifest.json").is_file() {
                return Some(p);
            }
        }
        None
    }

    /// Backups not pruned, newest first.
    pub async fn manifests(&self) -> Result<Vec<Manifest>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, manifest FROM dr_backups WHERE pruned_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(self.store().reader())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                r.try_get::<Json<Manifest>, _>("manifest")
                    .map(|m| m.0)
                    .map_err(in_table("dr_backups", Some(&id)))
            })
            .collect()
    }

    async fn record_backup(&self, m: &Manifest) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO dr_backups (id, created_at, duration_ms, engine, bytes, files, manifest, trigger) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&m.id)
        .bind(m.created_at_ms)
        .bind(m.duration_ms)
        .bind(&m.engine)
        .bind(m.bytes() as i64)
        .bind(m.files.len() as i64)
        .bind(Json(m.clone()))
        .bind(&m.trigger)
        .execute(self.store().writer())
        .await?;
        Ok(())
    }

    async fn mark_pruned(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE dr_backups SET pruned_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.store().writer())
            .await?;
        Ok(())
    }

    async fn record_verification(
        &self,
        r: &VerifyReport,
        started_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO dr_verifications (id, backup_id, started_at, duration_ms, restore_ms, result, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(r.backup_id.clone().unwrap_or_default())
        .bind(started_ms)
        .bind(r.duration_ms)
        .bind(r.restore_ms)
        .bind(r.result)
        .bind(Json(r.clone()))
        .execute(self.store().writer())
        .await?;
        Ok(())
    }

    /// The newest rehearsal (any result), or the newest with `result`.
    pub async fn latest_verification(
        &self,
        result: Option<Verdict>,
    ) -> Result<Option<VerifyReport>, sqlx::Error> {
        let row = sqlx::query_as::<_, VerificationRow>(
            "SELECT report FROM dr_verifications WHERE ($1 = '' OR result = $1) \
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(result.map_or("", |r| r.as_str()))
        .fetch_optional(self.store().reader())
        .await
        .map_err(in_table("dr_verifications", None))?;
        Ok(row.map(|r| r.report.0))
    }

    /// Newest rehearsal result per backup id.
    async fn verdicts(&self) -> Result<BTreeMap<String, (Verdict, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT backup_id, result, started_at FROM dr_verifications ORDER BY started_at ASC",
        )
        .fetch_all(self.store().reader())
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let id: String = r.try_get("backup_id")?;
            let v: Verdict = r.try_get("result")?;
            let at: i64 = r.try_get("started_at")?;
            out.insert(id, (v, at));
        }
        Ok(out)
    }

    /// `GET /api/v1/dr/backups`.
    pub async fn list(&self) -> Result<BackupList, sqlx::Error> {
        let verdicts = self.verdicts().await?;
        let now = now_ms();
        let backups: Vec<BackupInfo> = self
            .manifests()
            .await?
            .into_iter()
            .map(|m| {
                let v = verdicts.get(&m.id);
                BackupInfo {
                    id: m.id.clone(),
                    created_at: m.created_at.clone(),
                    age_secs: (now - m.created_at_ms).max(0) / 1000,
                    bytes: m.bytes(),
                    files: m.files.len(),
                    present: self.locate(&m.id).is_some(),
                    verified: v.map(|(v, _)| v.as_str().to_ascii_lowercase()),
                    verified_at: v.map(|(_, at)| rfc3339_ms(*at)),
                    manifest: m,
                }
            })
            .collect();
        let measured_rpo_secs = backups
            .iter()
            .find(|b| b.verified.as_deref() == Some("pass"))
            .map(|b| b.age_secs);
        Ok(BackupList {
            rpo_minutes: self.inner.section.rpo_minutes,
            measured_rpo_secs,
            backups,
        })
    }

    /// The DR proofs for the evidence bundle (security & compliance issue).
    pub async fn proofs(&self) -> Result<Proofs, sqlx::Error> {
        let passing = self.latest_verification(Some(Verdict::Pass)).await?;
        let manifest = match passing.as_ref().and_then(|r| r.backup_id.clone()) {
            Some(id) => {
                let row = sqlx::query("SELECT manifest FROM dr_backups WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(self.store().reader())
                    .await?;
                match row {
                    Some(r) => Some(
                        r.try_get::<Json<Manifest>, _>("manifest")
                            .map_err(in_table("dr_backups", Some(&id)))?
                            .0,
                    ),
                    None => None,
                }
            }
            None => None,
        };
        Ok(Proofs {
            latest_verified_backup: manifest,
            latest_passing_rehearsal: passing,
            latest_rehearsal: self.latest_verification(None).await?,
        })
    }

    /// The facts the DR tab, the summary and the telemetry light share; refreshes the
    /// gauges on `/metrics` from them.
    pub async fn status(&self) -> Result<Status, sqlx::Error> {
        let list = self.list().await?;
        let latest = self.latest_verification(None).await?;
        let s = Status::from_parts(&list, latest.as_ref());
        set_gauges(&list, &s);
        Ok(s)
    }

    /// Refresh the gauges (start-up, after each backup and rehearsal); a failure is logged.
    pub async fn refresh_gauges(&self) {
        if let Err(e) = self.status().await {
            tracing::warn!(target: "dr", error = %e, "could not refresh the DR gauges");
        }
    }
}

/// DR health: backups, the newest verified one against the RPO, the last rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub backups: usize,
    pub last_backup_age_secs: Option<i64>,
    pub measured_rpo_secs: Option<i64>,
    pub rpo_minutes: u64,
    pub last_verify: Option<String>,
    pub last_verify_at: Option<String>,
    /// Decrypt+load time of the newest rehearsal (its whole duration, with the checks, is
    /// the measured RTO: `GET /api/v1/dr/verify`).
    pub last_restore_ms: Option<i64>,
    pub light: &'static str,
    pub reason: String,
}

impl Status {
    pub fn from_parts(list: &BackupList, latest: Option<&VerifyReport>) -> Status {
        let (light, reason) = judge(
            list.rpo_minutes,
            list.measured_rpo_secs,
            !list.backups.is_empty(),
            latest.map(|r| r.result),
        );
        Status {
            backups: list.backups.len(),
            last_backup_age_secs: list.backups.first().map(|b| b.age_secs),
            measured_rpo_secs: list.measured_rpo_secs,
            rpo_minutes: list.rpo_minutes,
            last_verify: latest.map(|r| r.result.as_str().to_string()),
            last_verify_at: latest.map(|r| r.started_at.clone()),
            last_restore_ms: latest.map(|r| r.restore_ms),
            light,
            reason,
        }
    }
}

/// The gauges on `/metrics`: backups kept, the newest backup's and the newest verified
/// backup's creation times and ages, the newest rehearsal's result.
fn set_gauges(list: &BackupList, s: &Status) {
    metrics::gauge!(BACKUPS_KEPT).set(s.backups as f64);
    if let Some(b) = list.backups.first() {
        metrics::gauge!(LAST_BACKUP_TS).set(b.manifest.created_at_ms as f64 / 1000.0);
    }
    if let Some(b) = list
        .backups
        .iter()
        .find(|b| b.verified.as_deref() == Some("pass"))
    {
        metrics::gauge!(LAST_VERIFIED_TS).set(b.manifest.created_at_ms as f64 / 1000.0);
    }
    if let Some(age) = s.last_backup_age_secs {
        metrics::gauge!(LAST_BACKUP_AGE).set(age as f64);
    }
    if let Some(v) = &s.last_verify {
        metrics::gauge!(LAST_VERIFY_PASS).set(if v == "PASS" { 1.0 } else { 0.0 });
    }
}

/// The DR light and why: red when the newest rehearsal failed, when no backup passed one,
/// or when the newest verified backup is older than the RPO; yellow past half the RPO.
/// (The console computes the same from its own clock.)
pub fn judge(
    rpo_minutes: u64,
    measured_rpo_secs: Option<i64>,
    any_backup: bool,
    latest: Option<Verdict>,
) -> (&'static str, String) {
    let rpo_secs = rpo_minutes as i64 * 60;
    match (measured_rpo_secs, latest) {
        (_, Some(Verdict::Fail)) => ("red", "the newest rehearsal failed".to_string()),
        (None, _) if !any_backup => ("red", "no backup yet".to_string()),
        (None, _) => ("red", "no backup has passed a rehearsal yet".to_string()),
        (Some(age), _) if age > rpo_secs => (
            "red",
            format!(
                "the newest verified backup is {} min old, older than the RPO of {rpo_minutes} min",
                age / 60
            ),
        ),
        (Some(age), _) => (
            if age > rpo_secs / 2 {
                "yellow"
            } else {
                "green"
            },
            format!(
                "the newest verified backup is {} min old (RPO {rpo_minutes} min)",
                age / 60
            ),
        ),
    }
}

/// `<data-dir>/backups`.
pub fn backups_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("backups")
}

/// Read `<dir>/manifest.json`.
pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("{}", not_a_backup_dir(dir))
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a valid manifest: {e}", path.display()))
}

/// Why `dir` is not a backup directory, naming the backups inside it when it is a
/// `backups` directory (or a data dir) — the usual slip is to pass the parent.
fn not_a_backup_dir(dir: &Path) -> String {
    let ids = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("manifest.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut found = ids(dir);
    let mut base = dir.to_path_buf();
    if found.is_empty() {
        base = dir.join("backups");
        found = ids(&base);
    }
    let head = format!(
        "{} is not a backup directory (it has no manifest.json)",
        dir.display()
    );
    match found.last() {
        None if !dir.exists() => format!("{} does not exist", dir.display()),
        None => format!(
            "{head}; pass --from <data-dir>/backups/bk_… (a directory holding manifest.json)"
        ),
        Some(newest) => format!(
            "{head}; it holds {} backup(s), the newest is {} — pass --from {}",
            found.len(),
            newest,
            base.join(newest).display()
        ),
    }
}

/// Every table of every area, in list order (row counts, restore checks).
pub fn all_tables() -> Vec<&'static str> {
    crate::areas::ALL
        .iter()
        .flat_map(|a| a.tables().iter().copied())
        .collect()
}

/// Row counts of `tables` plus the schema version and audit head, all on one connection
/// (inside a snapshot transaction for PostgreSQL, on the snapshot file for SQLite).
pub async fn facts(
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<(i64, BTreeMap<String, i64>, TreeHead)> {
    let schema: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = true")
            .fetch_one(&mut *conn)
            .await?;
    let mut counts = BTreeMap::new();
    for t in all_tables() {
        // Table names come from the area list (compile-time constants), never from input:
        // counting every area's table is what a backup's manifest is for.
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| anyhow::anyhow!("counting rows of {t}: {e}"))?;
        counts.insert(t.to_string(), n);
    }
    let (size, root) = crate::audit::head_on(conn).await?;
    Ok((
        schema.unwrap_or(0),
        counts,
        TreeHead {
            size,
            root: hex::encode(root),
        },
    ))
}

/// Config entries with every secret removed: values of keys named like a key, token,
/// secret or password, and every URL but the database URL (webhook URLs carry their secret
/// in the path) become `[REDACTED]`; the database URL loses its password.
pub fn redacted_config(raw: &ConfigMap) -> String {
    let mut table = toml::Table::new();
    for key in raw.keys_with_prefix("") {
        let Some(v) = raw.value(key) else { continue };
        let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
        let secret = crate::logging::is_secret_name(&last)
            || last.ends_with("key")
            || last.ends_with("token")
            || last.ends_with("secret")
            || last.ends_with("password")
            || (last.ends_with("_url") && last != "database_url");
        let value = match v {
            _ if secret => toml::Value::String("[REDACTED]".into()),
            toml::Value::String(s) if last == "database_url" => {
                toml::Value::String(crate::config::redact_url(s))
            }
            toml::Value::String(s) => toml::Value::String(crate::logging::redact_secrets(s)),
            other => other.clone(),
        };
        insert_dotted(&mut table, key, value);
    }
    format!(
        "# EchoPilot config at backup time, secrets removed ([REDACTED]): re-enter them from\n# your secret store before using this file. data_dir and database_url are the backed-up\n# server's: point them at the restored data dir / database.\n{}",
        toml::to_string(&table).unwrap_or_default()
    )
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut t = table;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            t.insert(p.to_string(), value);
            return;
        }
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(inner) => t = inner,
            _ => return,
        }
    }
}

/// A JSON value for logs and job results.
pub fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    #[test]
    fn the_config_export_has_no_secret() {
        let mut raw = ConfigMap::default();
        raw.set_str(
            "bootstrap_key",
            "ep_0123456789abcdef0123456789abcdef",
            Source::Flag,
        );
        raw.set_str("database_url", "postgres://u:hunter2@db/x", Source::Flag);
        raw.set_str("alerts.telegram_bot_token", "123:abc", Source::Flag);
        raw.set_str(
            "alerts.slack_webhook_url",
            "https://hooks/T/B/xyz",
            Source::Flag,
        );
        raw.set_str("dr.key", "00ff", Source::Flag);
        raw.set_str("dr.key_file", "/etc/echopilot/dr.key", Source::Flag);
        raw.set("queue.concurrency", toml::Value::Integer(4), Source::Flag);
        let text = redacted_config(&raw);
        for secret in ["0123456789abcdef", "hunter2", "123:abc", "xyz", "00ff"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(back["queue"]["concurrency"].as_integer(), Some(4));
        assert_eq!(back["database_url"].as_str(), Some("postgres://u:***@db/x"));
    }
}
