//! The no-skip error ledger: every run of every job gets one, supplied by the engine.
//!
//! A handler counts what it works on (`add_total`, `add_processed`) and records each
//! artifact it could not handle (`error`); the engine also folds a result's `"errors"`
//! array in, so a job that never touches `ctx.ledger` still has an honest ledger. The
//! engine writes the ledger when the run ends — succeeded, failed, panicked or cancelled
//! at its timeout — to `job_runs.ledger` and to
//! `<data-dir>/artifacts/error-ledger-<run-id>.json`. Read it with
//! `GET /api/v1/jobs/runs/{id}/ledger`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::Store;
use crate::util::{now_ms, rfc3339_ms};

/// Errors kept per ledger; `errors_count` keeps counting past it (`errors_truncated`).
pub const MAX_ERRORS: usize = 10_000;
const EXCEPTION_MAX_CHARS: usize = 2_000;

/// One artifact a run could not handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LedgerError {
    /// What failed: a file path, a table, a day, a rule name.
    pub artifact_id: String,
    /// The step that failed (`read`, `prune`, `hash`, …).
    pub stage: String,
    /// The error text (secrets redacted).
    pub exception: String,
    /// What an operator can do about it, when the job knows.
    pub suggested_fix: Option<String>,
    /// A blocking error fails the run; a non-blocking one is recorded and the run carries on.
    pub blocking: bool,
}

impl LedgerError {
    pub fn new(
        artifact_id: impl Into<String>,
        stage: impl Into<String>,
        exception: impl std::fmt::Display,
    ) -> Self {
        LedgerError {
            artifact_id: artifact_id.into(),
            stage: stage.into(),
            exception: exception.to_string(),
            suggested_fix: None,
            blocking: false,
        }
    }

    pub fn fix(mut self, suggested_fix: impl Into<String>) -> Self {
        self.suggested_fix = Some(suggested_fix.into());
        self
    }

    /// This error fails the run (its result is still kept; the run is not retried).
    pub fn blocking(mut self) -> Self {
        self.blocking = true;
        self
    }
}

/// The counts and errors of one run, as a handler builds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LedgerCounts {
    pub artifacts_total: u64,
    pub artifacts_processed: u64,
    pub errors_count: u64,
    /// True when more than 10,000 errors were recorded: the rest are only counted.
    pub errors_truncated: bool,
    pub errors: Vec<LedgerError>,
}

/// A run's ledger handle (cheap to clone; handed to the job in `JobContext::ledger`).
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<LedgerCounts>>);

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerCounts> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `n` more artifacts this run will look at.
    pub fn add_total(&self, n: u64) {
        self.lock().artifacts_total += n;
    }

    /// `n` more artifacts handled successfully.
    pub fn add_processed(&self, n: u64) {
        self.lock().artifacts_processed += n;
    }

    /// Record an artifact that could not be handled.
    pub fn error(&self, mut e: LedgerError) {
        e.exception = crate::util::truncate_chars(
            &crate::logging::redact_secrets(&e.exception),
            EXCEPTION_MAX_CHARS,
        );
        let mut l = self.lock();
        l.errors_count += 1;
        if l.errors.len() < MAX_ERRORS {
            l.errors.push(e);
        } else {
            l.errors_truncated = true;
        }
    }

    /// Whether any recorded error is blocking.
    pub fn has_blocking(&self) -> bool {
        self.lock().errors.iter().any(|e| e.blocking)
    }

    pub fn snapshot(&self) -> LedgerCounts {
        self.lock().clone()
    }

    /// Fold a result's `"errors"` array in (the older convention: each item failed the run).
    pub(super) fn absorb_result_errors(&self, job: &str, result: &Value) {
        let Some(items) = result.get("errors").and_then(Value::as_array) else {
            return;
        };
        for item in items {
            let name = ["artifact_id", "item", "probe", "rule"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str))
                .unwrap_or(job);
            let stage = item.get("stage").and_then(Value::as_str).unwrap_or(job);
            let exception = match item.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => item.to_string(),
            };
            self.error(LedgerError::new(name, stage, exception).blocking());
        }
    }
}

/// The ledger document of a finished run (the file and the API answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunLedger {
    pub run_id: String,
    pub job: String,
    /// The run's outcome when the ledger was written.
    pub outcome: String,
    /// When the ledger was written (RFC 3339, UTC).
    pub written_at: String,
    #[serde(flatten)]
    pub counts: LedgerCounts,
}

/// `<data-dir>/artifacts/error-ledger-<run-id>.json`.
pub fn file_path(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir
        .join("artifacts")
        .join(format!("error-ledger-{run_id}.json"))
}

/// Write the ledger of `run_id` to the database and its file. Both are attempted even if
/// one fails; the first failure is returned.
pub async fn persist(
    store: &Store,
    data_dir: &Path,
    run_id: &str,
    job: &str,
    outcome: &str,
    ledger: &Ledger,
) -> anyhow::Result<RunLedger> {
    let doc = RunLedger {
        run_id: run_id.to_string(),
        job: job.to_string(),
        outcome: outcome.to_string(),
        written_at: rfc3339_ms(now_ms()),
        counts: ledger.snapshot(),
    };
    let text = serde_json::to_string_pretty(&doc)?;
    let db = sqlx::query("UPDATE job_runs SET ledger = $1 WHERE id = $2")
        .bind(&text)
        .bind(run_id)
        .execute(store.writer())
        .await;
    let file = write_file(&file_path(data_dir, run_id), text.as_bytes()).await;
    db.map_err(anyhow::Error::from)
        .and(file)
        .map(|_| doc)
        .map_err(|e| e.context(format!("writing the error ledger of run {run_id}")))
}

/// Write via a temporary name and rename, so a reader never sees half a ledger.
async fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await?;
    Ok(())
}

/// The stored ledger of `run_id`: `Ok(None)` when the run has none (skipped, still
/// running, or recorded before ledgers existed).
pub async fn get(store: &Store, run_id: &str) -> anyhow::Result<Option<RunLedger>> {
    let text: Option<Option<String>> =
        sqlx::query_scalar("SELECT ledger FROM job_runs WHERE id = $1")
            .bind(run_id)
            .fetch_optional(store.reader())
            .await?;
    match text.flatten() {
        Some(t) => Ok(Some(serde_json::from_str(&t).map_err(|e| {
            anyhow::anyhow!("the stored ledger of run {run_id} is not valid JSON: {e}")
        })?)),
        None => Ok(None),
    }
}

/// Writes the ledger if the run's task is dropped before it finished (the queue cancels an
/// attempt at its timeout by dropping it): the ledger is kept even then.
pub(super) struct FlushOnDrop {
    pub store: Store,
    pub data_dir: PathBuf,
    pub run_id: String,
    pub job: String,
    pub ledger: Ledger,
    pub done: bool,
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (store, dir, run_id, job, ledger) = (
            self.store.clone(),
            self.data_dir.clone(),
            self.run_id.clone(),
            self.job.clone(),
            self.ledger.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = persist(&store, &dir, &run_id, &job, "timed_out", &ledger).await {
                    tracing::error!(target: "scheduler", job = %job, job_run_id = %run_id, error = %format!("{e:#}"), "could not write the error ledger");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_errors_and_caps_the_list() {
        let l = Ledger::default();
        l.add_total(3);
        l.add_processed(2);
        l.error(LedgerError::new("a.txt", "read", "permission denied").fix("chmod +r a.txt"));
        assert!(!l.has_blocking());
        l.error(LedgerError::new("b.txt", "read", "gone").blocking());
        assert!(l.has_blocking());
        let s = l.snapshot();
        assert_eq!((s.artifacts_total, s.artifacts_processed), (3, 2));
        assert_eq!(s.errors_count, 2);
        assert_eq!(s.errors[0].suggested_fix.as_deref(), Some("chmod +r a.txt"));
        for i in 0..MAX_ERRORS + 5 {
            l.error(LedgerError::new(format!("f{i}"), "read", "x"));
        }
        let s = l.snapshot();
        assert_eq!(s.errors.len(), MAX_ERRORS);
        assert_eq!(s.errors_count, MAX_ERRORS as u64 + 7);
        assert!(s.errors_truncated);
    }

    #[test]
    fn result_errors_become_blocking_ledger_errors() {
        let l = Ledger::default();
        l.absorb_result_errors(
            "retention",
            &json!({"errors": [
                {"item": "/data/logs", "error": "permission denied"},
                {"probe": "disk", "error": "statvfs failed"},
                {"something": 1}
            ]}),
        );
        let s = l.snapshot();
        assert_eq!(s.errors_count, 3);
        assert_eq!(s.errors[0].artifact_id, "/data/logs");
        assert_eq!(s.errors[1].artifact_id, "disk");
        assert_eq!(s.errors[2].artifact_id, "retention");
        assert!(s.errors.iter().all(|e| e.blocking));
    }

    #[test]
    fn secrets_in_exceptions_are_redacted() {
        let l = Ledger::default();
        let key = "ep_0123456789abcdef0123456789abcdef01234567";
        l.error(LedgerError::new(
            "x",
            "call",
            format!("401 with token {key}"),
        ));
        let text = serde_json::to_string(&l.snapshot()).unwrap();
        assert!(!text.contains(key), "{text}");
    }
}
