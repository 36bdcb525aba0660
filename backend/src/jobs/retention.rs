//! The `retention` job: keep the newest N files per pattern under `<data-dir>/logs/` and
//! `<data-dir>/backups/`, prune old job runs, (through the queue's API) finished queue
//! jobs and (through the ai module's, when it runs) AI events past `[ai] retention_days`.
//! Every deletion is
//! counted; a failure is recorded for its item and the batch carries on.
//!
//! A file's pattern is its name with the date part replaced by `*` (`queue.2026-11-22.ndjson`
//! → `queue.*.ndjson`); files without a date are not part of a rotated series and are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::JobContext;
use crate::config::Config;
use crate::util::now_ms;

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub keep_files: usize,
    pub job_runs_days: u64,
    pub queue_days: u64,
    pub dirs: Vec<PathBuf>,
    /// Where the runs' error-ledger files live; pruned with the runs they belong to.
    pub artifacts_dir: Option<PathBuf>,
}

/// `[retention]`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Newest files kept per rotated log/backup pattern (1..=100000).
    pub keep_files: u64,
    /// Job runs older than this many days are pruned (1..=3650).
    pub job_runs_days: u64,
    /// Finished queue jobs older than this many days are pruned (1..=3650).
    pub queue_days: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            keep_files: 30,
            job_runs_days: 14,
            queue_days: 14,
        }
    }
}

impl RetentionConfig {
    pub fn from_config(cfg: &Config) -> Result<Self, crate::config::ConfigError> {
        let mut c = Self::from_config_map(&cfg.raw)?;
        c.dirs = vec![cfg.logs_dir(), cfg.data_dir.join("backups")];
        c.artifacts_dir = Some(cfg.data_dir.join("artifacts"));
        Ok(c)
    }

    /// The section alone (no directories), for the config check at load time.
    pub fn from_config_map(
        raw: &crate::config::ConfigMap,
    ) -> Result<Self, crate::config::ConfigError> {
        let s: RetentionSection = raw.section("retention")?;
        let range = |key: &str, v, lo, hi| raw.check_range(&format!("retention.{key}"), v, lo, hi);
        Ok(RetentionConfig {
            keep_files: range("keep_files", s.keep_files, 1, 100_000)? as usize,
            job_runs_days: range("job_runs_days", s.job_runs_days, 1, 3650)?,
            queue_days: range("queue_days", s.queue_days, 1, 3650)?,
            dirs: Vec::new(),
            artifacts_dir: None,
        })
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn run(ctx: JobContext, cfg: RetentionConfig) -> anyhow::Result<Value> {
    let mut errors: Vec<Value> = Vec::new();
    let mut dirs = Vec::new();
    let mut files_deleted = 0u64;
    for dir in &cfg.dirs {
        let d = prune_dir(dir, cfg.keep_files, &mut errors, &ctx.ledger).await;
        files_deleted += d["deleted"].as_u64().unwrap_or(0);
        dirs.push(d);
    }
    let now = now_ms();
    // The two table prunes are artifacts too.
    ctx.ledger.add_total(2);
    let runs_cutoff = now - cfg.job_runs_days as i64 * DAY_MS;
    let job_runs = match super::runs::prune_runs(&ctx.state.store, runs_cutoff).await {
        Ok(n) => {
            ctx.ledger.add_processed(1);
            json!({"deleted": n, "older_than_days": cfg.job_runs_days})
        }
        Err(e) => {
            errors.push(json!({"item": "job_runs", "error": format!("{e:#}")}));
            json!({"deleted": 0, "older_than_days": cfg.job_runs_days, "error": format!("{e:#}")})
        }
    };
    let ledgers = match &cfg.artifacts_dir {
        Some(dir) => prune_ledger_files(dir, runs_cutoff, &mut errors, &ctx.ledger).await,
        None => 0,
    };
    let queue_cutoff = now - cfg.queue_days as i64 * DAY_MS;
    // Through the queue's own batched pruning: the queue owns `queue_jobs`.
    let pruned = match ctx.state.queue() {
        Some(q) => crate::queue::prune_finished(&q.store, queue_cutoff, true)
            .await
            .map(Some),
        None => Ok(None),
    };
    let queue = match pruned {
        Ok(Some(n)) => {
            ctx.ledger.add_processed(1);
            json!({"deleted": n, "older_than_days": cfg.queue_days})
        }
        Ok(None) => {
            ctx.ledger.add_processed(1);
            json!({"deleted": 0, "skipped": "the queue is not running"})
        }
        Err(e) => {
            errors.push(json!({"item": "queue_jobs", "error": format!("{e:#}")}));
            json!({"deleted": 0, "older_than_days": cfg.queue_days, "error": format!("{e:#}")})
        }
    };
    // Through the ai module's own pruning (it owns `ai_events`, per `[ai] retention_days`);
    // nothing to do when the module is off for the fleet.
    ctx.ledger.add_total(1);
    let ai_events = match ctx.state.service::<crate::ai::Ai>() {
        Some(ai) => match ai.prune(now).await {
            Ok(n) => {
                ctx.ledger.add_processed(1);
                json!({"deleted": n, "older_than_days": ai.settings().retention_days})
            }
            Err(e) => {
                errors.push(
                    json!({"item": "ai_events", "stage": "prune", "error": format!("{e:#}")}),
                );
                json!({"deleted": 0, "older_than_days": ai.settings().retention_days, "error": format!("{e:#}")})
            }
        },
        None => {
            ctx.ledger.add_processed(1);
            json!({"deleted": 0, "skipped": "the ai module is off"})
        }
    };
    let total = files_deleted
        + ledgers
        + job_runs["deleted"].as_u64().unwrap_or(0)
        + queue["deleted"].as_u64().unwrap_or(0)
        + ai_events["deleted"].as_u64().unwrap_or(0);
    tracing::info!(target: "scheduler", job_run_id = %ctx.run_id, files_deleted, deleted_total = total, errors = errors.len(), "retention pass done");
    Ok(json!({
        "keep_files": cfg.keep_files,
        "files": {"deleted": files_deleted, "dirs": dirs},
        "job_runs": job_runs,
        "ledger_files": {"deleted": ledgers, "older_than_days": cfg.job_runs_days},
        "queue_jobs": queue,
        "ai_events": ai_events,
        "deleted_total": total,
        "errors": errors,
    }))
}

struct Candidate {
    path: PathBuf,
    date: String,
    mtime: std::time::SystemTime,
    name: String,
}

async fn prune_dir(
    dir: &Path,
    keep: usize,
    errors: &mut Vec<Value>,
    ledger: &super::Ledger,
) -> Value {
    let shown = dir.display().to_string();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return json!({"dir": shown, "exists": false, "deleted": 0, "kept": 0, "patterns": {}});
        }
        Err(e) => {
            errors.push(json!({"item": shown, "error": e.to_string()}));
            return json!({"dir": shown, "deleted": 0, "kept": 0, "error": e.to_string()});
        }
    };
    let mut groups: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    loop {
        let entry = match rd.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                errors.push(json!({"item": shown, "error": e.to_string()}));
                break;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = match entry.metadata().await {
            Ok(m) => m,
            Err(e) => {
                errors.push(
                    json!({"item": entry.path().display().to_string(), "error": e.to_string()}),
                );
                continue;
            }
        };
        if !meta.is_file() {
            continue;
        }
        let Some((pattern, date)) = split_date(&name) else {
            continue;
        };
        groups.entry(pattern).or_default().push(Candidate {
            path: entry.path(),
            date,
            mtime: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
            name,
        });
    }
    let mut deleted = 0u64;
    let mut kept = 0u64;
    let mut patterns = serde_json::Map::new();
    for (pattern, mut files) in groups {
        // Newest first: the date in the name, then modification time, then name.
        files.sort_by(|a, b| {
            b.date
                .cmp(&a.date)
                .then(b.mtime.cmp(&a.mtime))
                .then(b.name.cmp(&a.name))
        });
        let mut p_deleted = 0u64;
        let p_kept = files.len().min(keep) as u64;
        // Every dated file is an artifact of the ledger; a kept one is processed at once.
        ledger.add_total(files.len() as u64);
        ledger.add_processed(p_kept);
        for f in files.iter().skip(keep) {
            match tokio::fs::remove_file(&f.path).await {
                Ok(()) => {
                    p_deleted += 1;
                    ledger.add_processed(1);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ledger.add_processed(1),
                Err(e) => errors
                    .push(json!({"item": f.path.display().to_string(), "error": e.to_string()})),
            }
        }
        deleted += p_deleted;
        kept += p_kept;
        patterns.insert(pattern, json!({"kept": p_kept, "deleted": p_deleted}));
    }
    json!({"dir": shown, "exists": true, "deleted": deleted, "kept": kept, "patterns": patterns})
}

/// Delete `error-ledger-*.json` files last written before `cutoff_ms` (their runs are
/// pruned at the same age); returns how many went.
async fn prune_ledger_files(
    dir: &Path,
    cutoff_ms: i64,
    errors: &mut Vec<Value>,
    ledger: &super::Ledger,
) -> u64 {
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            errors.push(json!({"item": dir.display().to_string(), "error": e.to_string()}));
            return 0;
        }
    };
    let cutoff = std::time::UNIX_EPOCH + std::time::Duration::from_millis(cutoff_ms.max(0) as u64);
    let mut deleted = 0;
    while let Ok(Some(entry)) = rd.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("error-ledger-") && name.ends_with(".json")) {
            continue;
        }
        let old = match entry.metadata().await.and_then(|m| m.modified()) {
            Ok(t) => t < cutoff,
            Err(e) => {
                errors.push(
                    json!({"item": entry.path().display().to_string(), "error": e.to_string()}),
                );
                continue;
            }
        };
        if !old {
            continue;
        }
        ledger.add_total(1);
        match tokio::fs::remove_file(entry.path()).await {
            Ok(()) => {
                deleted += 1;
                ledger.add_processed(1);
            }
            Err(e) => errors
                .push(json!({"item": entry.path().display().to_string(), "error": e.to_string()})),
        }
    }
    deleted
}

/// Split a file name into (pattern with the date replaced by `*`, sortable date text).
/// Dates: `YYYY-MM-DD` or `YYYYMMDD`, optionally followed by a time
/// (`[T_-]HH[-:]MM([-:]SS)?Z?`).
pub fn split_date(name: &str) -> Option<(String, String)> {
    let b = name.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let digits = |from: usize, n: usize| (from..from + n).all(digit);
    for start in 0..b.len() {
        if start > 0 && digit(start - 1) {
            continue;
        }
        let (mut end, date) = if digits(start, 4)
            && b.get(start + 4) == Some(&b'-')
            && digits(start + 5, 2)
            && b.get(start + 7) == Some(&b'-')
            && digits(start + 8, 2)
            && !digit(start + 10)
        {
            (
                start + 10,
                format!(
                    "{}{}{}",
                    &name[start..start + 4],
                    &name[start + 5..start + 7],
                    &name[start + 8..start + 10]
                ),
            )
        } else if digits(start, 8) && !digit(start + 8) {
            (start + 8, name[start..start + 8].to_string())
        } else {
            continue;
        };
        let month: u32 = date[4..6].parse().ok()?;
        let day: u32 = date[6..8].parse().ok()?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            continue;
        }
        let mut key = date;
        // Optional time part.
        let t = end;
        if matches!(b.get(t), Some(b'T' | b'_' | b'-')) && digits(t + 1, 2) {
            let mut p = t + 3;
            let sep = |p: usize| matches!(b.get(p), Some(b'-' | b':'));
            let mut time = name[t + 1..t + 3].to_string();
            let mut ok = false;
            if sep(p) && digits(p + 1, 2) {
                time.push_str(&name[p + 1..p + 3]);
                p += 3;
                ok = true;
            } else if digits(p, 2) {
                time.push_str(&name[p..p + 2]);
                p += 2;
                ok = true;
            }
            if ok {
                if sep(p) && digits(p + 1, 2) && !digit(p + 3) {
                    time.push_str(&name[p + 1..p + 3]);
                    p += 3;
                } else if digits(p, 2) && !digit(p + 2) {
                    time.push_str(&name[p..p + 2]);
                    p += 2;
                }
                if !digit(p) {
                    if b.get(p) == Some(&b'Z') {
                        p += 1;
                    }
                    end = p;
                    key.push_str(&time);
                }
            }
        }
        let pattern = format!("{}*{}", &name[..start], &name[end..]);
        return Some((pattern, key));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::split_date;

    #[test]
    fn date_part_becomes_a_star() {
        let p = |n: &str| split_date(n).map(|(p, _)| p);
        assert_eq!(
            p("queue.2026-11-22.ndjson").as_deref(),
            Some("queue.*.ndjson")
        );
        assert_eq!(
            p("backup-20261122T023000Z.tar.gz").as_deref(),
            Some("backup-*.tar.gz")
        );
        assert_eq!(
            p("db-2026-11-22T02-30-00Z.sqlite").as_deref(),
            Some("db-*.sqlite")
        );
        assert_eq!(
            p("db-2026-11-22_0230.sqlite").as_deref(),
            Some("db-*.sqlite")
        );
        assert_eq!(p("echopilot.db"), None);
        assert_eq!(p("build-123456789.log"), None, "9 digits are not a date");
        assert_eq!(p("x-20261399.log"), None, "month 13 is not a date");
        let (_, a) = split_date("q.2026-11-22.ndjson").unwrap();
        let (_, b) = split_date("q.2026-11-03.ndjson").unwrap();
        assert!(a > b);
    }
}
