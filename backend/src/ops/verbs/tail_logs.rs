//! `tail_logs {"area", "lines"}`: the newest lines of `<data-dir>/logs/<area>.*.ndjson`,
//! with secrets redacted. Logs are shared by all tenants, so a key that is not superadmin
//! sees only lines stamped with its own tenant.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::app::BoxFuture;
use crate::error::{ApiError, ApiResult};
use crate::logging::{areas, redact_secrets};
use crate::model::Role;
use crate::ops::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};

const CHUNK: u64 = 64 * 1024;
/// Bound on bytes read per call, so a filter that matches nothing cannot scan forever.
const SCAN_BUDGET: u64 = 32 * 1024 * 1024;

pub struct TailLogs {
    spec: VerbSpec,
}

impl Default for TailLogs {
    fn default() -> Self {
        Self::new()
    }
}

impl TailLogs {
    pub fn new() -> TailLogs {
        TailLogs {
            spec: VerbSpec {
                name: "tail_logs".into(),
                aliases: vec!["logs".into(), "tail".into()],
                description: "Show the newest lines of an area's NDJSON log, secrets redacted"
                    .into(),
                args: json!({
                    "type": "object",
                    "properties": {
                        "area": {"type": "string", "enum": areas(), "default": "server",
                                 "description": "log area (file <data-dir>/logs/<area>.<date>.ndjson)"},
                        "lines": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100,
                                  "description": "how many of the newest lines"}
                    },
                    "required": [],
                    "additionalProperties": false
                }),
                risk: Risk::Low,
                min_role: Role::Readonly,
                mutating: false,
            },
        }
    }
}

struct Args {
    area: String,
    lines: usize,
}

fn parse(args: &Value) -> ApiResult<Args> {
    let area = args["area"].as_str().unwrap_or("server").to_string();
    if !areas().contains(&area.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "unknown log area {area:?}"
        )));
    }
    let lines = args["lines"].as_u64().unwrap_or(100).clamp(1, 1000) as usize;
    Ok(Args { area, lines })
}

/// The area's log files, newest first (names carry the date, so name order is age order).
fn files_of(dir: &Path, area: &str) -> Vec<PathBuf> {
    let prefix = format!("{area}.");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".ndjson"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.reverse();
    files
}

fn file_names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect()
}

/// Collect up to `want` complete lines from the end of `path` into `out` (newest first),
/// reading backwards in chunks. A trailing line without its newline is still being
/// written and is skipped.
fn tail_file(
    path: &Path,
    want: usize,
    budget: &mut u64,
    keep: &dyn Fn(&str) -> bool,
    out: &mut Vec<String>,
) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut pos = f.metadata()?.len();
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 && out.len() < want && *budget > 0 {
        let n = CHUNK.min(pos);
        pos -= n;
        let mut buf = vec![0u8; n as usize];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf)?;
        *budget = budget.saturating_sub(n);
        buf.extend_from_slice(&carry);
        // Bytes before the first newline belong to a line that starts in an earlier chunk.
        let start = if pos == 0 {
            0
        } else {
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => {
                    carry = buf;
                    continue;
                }
            }
        };
        let mut lines: Vec<&[u8]> = buf[start..].split(|b| *b == b'\n').collect();
        // The last piece is empty (text ends with '\n') or a partial line being written.
        lines.pop();
        for l in lines.iter().rev() {
            if out.len() >= want {
                break;
            }
            if l.is_empty() {
                continue;
            }
            let s = String::from_utf8_lossy(l);
            if keep(&s) {
                out.push(redact_secrets(&s));
            }
        }
        carry = buf[..start].to_vec();
    }
    Ok(())
}

/// The newest `want` lines of an area's log files (oldest first), redacted: the file
/// names read, the lines, and whether the scan budget ran out.
fn tail_area(
    dir: &Path,
    area: &str,
    want: usize,
    keep: &dyn Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>, bool) {
    let files = files_of(dir, area);
    let mut out = Vec::new();
    let mut budget = SCAN_BUDGET;
    for f in &files {
        if out.len() >= want || budget == 0 {
            break;
        }
        // A file rotated away between listing and reading is simply skipped.
        let _ = tail_file(f, want, &mut budget, keep, &mut out);
    }
    out.reverse();
    (file_names(&files), out, budget == 0)
}

/// Which lines the logs view keeps: the caller's tenant (unless superadmin), at least a
/// level, containing a text.
pub struct LogFilter {
    pub tenant: Option<String>,
    pub min_level: Option<LogLevel>,
    /// Lower-case text the raw line must contain.
    pub contains: Option<String>,
}

crate::text_enum! {
    /// A log level, least to most severe.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum LogLevel {
        Trace = "trace",
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

impl LogFilter {
    fn keeps(&self, line: &str) -> bool {
        if let Some(c) = &self.contains {
            if !line.to_lowercase().contains(c.as_str()) {
                return false;
            }
        }
        if self.tenant.is_none() && self.min_level.is_none() {
            return true;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return false;
        };
        if let Some(t) = &self.tenant {
            if v.get("tenant_id").and_then(Value::as_str) != Some(t.as_str()) {
                return false;
            }
        }
        if let Some(min) = self.min_level {
            let level = v
                .get("level")
                .and_then(Value::as_str)
                .and_then(|l| l.to_ascii_lowercase().parse::<LogLevel>().ok());
            if level.is_none_or(|l| l < min) {
                return false;
            }
        }
        true
    }
}

/// The newest `want` lines of an area's log that pass `filter`, oldest first, redacted:
/// the file names read, the lines, and whether the scan budget ran out. Blocking.
pub fn filtered_lines(
    logs_dir: &Path,
    area: &str,
    want: usize,
    filter: &LogFilter,
) -> (Vec<String>, Vec<String>, bool) {
    tail_area(logs_dir, area, want, &|l: &str| filter.keeps(l))
}

/// The newest `want` lines of `<logs_dir>/<area>.*.ndjson`, oldest first, secrets
/// redacted (e.g. for an alert that carries the log of what failed). Blocking.
pub fn newest_lines(logs_dir: &Path, area: &str, want: usize) -> Vec<String> {
    tail_area(logs_dir, area, want, &|_| true).1
}

impl Verb for TailLogs {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }

    fn plan<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            let a = parse(args)?;
            let dir = ctx.state.cfg.logs_dir();
            let names = file_names(&files_of(&dir, &a.area));
            let scope = if ctx.role == Role::Superadmin {
                "all tenants".to_string()
            } else {
                format!("lines of tenant {}", ctx.tenant)
            };
            let summary = format!(
                "Read the newest {} lines of the {} log ({scope}), secrets redacted",
                a.lines, a.area
            );
            let steps = if names.is_empty() {
                vec![format!(
                    "No {}.*.ndjson file exists in {}: the result will be empty",
                    a.area,
                    dir.display()
                )]
            } else {
                vec![
                    format!(
                        "Read backwards from {} (then older files as needed)",
                        names[0]
                    ),
                    "Redact API keys and bot tokens in every line".into(),
                ]
            };
            Ok(Planned {
                plan: Plan {
                    summary,
                    steps,
                    effects: vec!["None: reads log files only".into()],
                },
                world: json!({"files": names}),
            })
        })
    }

    fn execute<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            let a = parse(args)?;
            let dir = ctx.state.cfg.logs_dir();
            // Which lines the caller may see: everything for a superadmin, else its tenant's.
            let filter = LogFilter {
                tenant: (ctx.role != Role::Superadmin).then(|| ctx.tenant.clone()),
                min_level: None,
                contains: None,
            };
            let area = a.area.clone();
            let (names, lines, exhausted) =
                tokio::task::spawn_blocking(move || filtered_lines(&dir, &area, a.lines, &filter))
                    .await
                    .map_err(ApiError::internal)?;
            Ok(json!({
                "area": a.area,
                "files": names,
                "count": lines.len(),
                "lines": lines,
                "scan_limit_reached": exhausted,
                "tenant_filter": (ctx.role != Role::Superadmin).then(|| ctx.tenant.clone()),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tails_across_chunks_and_skips_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.2026-01-01.ndjson");
        let mut f = File::create(&p).unwrap();
        let long = "x".repeat(70_000);
        for i in 0..50 {
            writeln!(
                f,
                "{{\"i\":{i},\"tenant_id\":\"t{}\",\"pad\":\"{}\"}}",
                i % 2,
                if i == 48 { &long } else { "" }
            )
            .unwrap();
        }
        write!(f, "{{\"partial\":").unwrap();
        drop(f);
        let mut out = Vec::new();
        let mut budget = SCAN_BUDGET;
        tail_file(&p, 5, &mut budget, &|_| true, &mut out).unwrap();
        let idx: Vec<i64> = out
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(idx, vec![49, 48, 47, 46, 45]);
        let mut out = Vec::new();
        let t1 = LogFilter {
            tenant: Some("t1".into()),
            min_level: None,
            contains: None,
        };
        tail_file(&p, 100, &mut budget, &|l| t1.keeps(l), &mut out).unwrap();
        assert_eq!(out.len(), 25);
        assert!(out.iter().all(|l| l.contains("\"t1\"")));
        let key = format!("ep_{}", "ab".repeat(32));
        let p2 = dir.path().join("server.2026-01-02.ndjson");
        std::fs::write(&p2, format!("{{\"msg\":\"{key}\"}}\n")).unwrap();
        let files = files_of(dir.path(), "server");
        assert_eq!(file_names(&files)[0], "server.2026-01-02.ndjson");
        let mut out = Vec::new();
        tail_file(&files[0], 1, &mut budget, &|_| true, &mut out).unwrap();
        assert!(!out[0].contains(&key) && out[0].contains("ep_[REDACTED]"));
    }
}
