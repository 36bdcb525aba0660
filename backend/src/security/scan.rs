//! One scan: walk the targets, find secrets in every readable file, read the lockfiles,
//! match their packages against the OSV database, build the report and its SBOM. A file
//! that cannot be read is a [`ScanError`] (and an error in the job run's ledger); the
//! scan carries on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::history::{self, GitOptions, HistoryScan};
use super::lockfiles;
use super::model::{Counts, Package, Report, ScanError, SecretFinding, Vulnerability};
use super::osv::OsvDb;
use super::rules::{self, Detector};
use crate::jobs::{Ledger, LedgerError};
use crate::util::{now_ms, random_id, rfc3339_ms};

/// A file in a target holding allowlist entries for that target (same keys as the config).
pub const ALLOWLIST_FILE: &str = ".echopilot-allowlist.toml";
/// A line holding this marker is never reported (for test fixtures and docs).
pub const INLINE_ALLOW: &str = "echopilot:allow-secret";

/// Allowlist entries as written (config section or allowlist file).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowlistSpec {
    /// Regexes over the path relative to the target (`^tests/fixtures/`).
    pub paths: Vec<String>,
    /// Regexes over the secret and over its line.
    pub regexes: Vec<String>,
    /// Finding fingerprints (`<rule>:<file>:<hash>`) accepted as they are.
    pub fingerprints: Vec<String>,
}

/// The compiled allowlist.
#[derive(Default)]
pub struct Allowlist {
    paths: Vec<Regex>,
    regexes: Vec<Regex>,
    fingerprints: HashSet<String>,
}

impl Allowlist {
    pub fn compile(spec: &AllowlistSpec) -> Result<Allowlist, String> {
        let re = |s: &String| {
            regex::bytes::RegexBuilder::new(s)
                .unicode(false)
                .build()
                .map_err(|e| format!("allowlist regex {s:?}: {e}"))
        };
        Ok(Allowlist {
            paths: spec.paths.iter().map(re).collect::<Result<_, _>>()?,
            regexes: spec.regexes.iter().map(re).collect::<Result<_, _>>()?,
            fingerprints: spec.fingerprints.iter().cloned().collect(),
        })
    }

    fn merge(&mut self, other: Allowlist) {
        self.paths.extend(other.paths);
        self.regexes.extend(other.regexes);
        self.fingerprints.extend(other.fingerprints);
    }

    fn path_allowed(&self, rel: &str) -> bool {
        self.paths.iter().any(|r| r.is_match(rel.as_bytes()))
    }
}

/// What to scan and how.
#[derive(Clone)]
pub struct ScanOptions {
    pub targets: Vec<PathBuf>,
    /// Directory names never entered (`.git`, `target`, `node_modules`, …).
    pub exclude_dirs: Vec<String>,
    /// Larger files are not searched for secrets (lockfiles are always read).
    pub max_file_bytes: u64,
    pub allowlist: AllowlistSpec,
    pub osv_dir: PathBuf,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// The git history of targets that are repositories.
    pub git: GitOptions,
    pub trigger: String,
    pub run_id: String,
}

/// One file to look at.
struct Item {
    target: usize,
    path: PathBuf,
    rel: String,
}

#[derive(Default)]
struct Found {
    secrets: Vec<SecretFinding>,
    packages: Vec<Package>,
    errors: Vec<ScanError>,
    files: u64,
    bytes: u64,
    allowlisted: u64,
}

impl Found {
    fn absorb(&mut self, mut other: Found) {
        self.secrets.append(&mut other.secrets);
        self.packages.append(&mut other.packages);
        self.errors.append(&mut other.errors);
        self.files += other.files;
        self.bytes += other.bytes;
        self.allowlisted += other.allowlisted;
    }
}

fn rel_path(root: &Path, p: &Path) -> String {
    let r = p.strip_prefix(root).unwrap_or(p);
    let s = r.to_string_lossy().replace('\\', "/");
    if s.is_empty() {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        s
    }
}

/// The fingerprint of a secret at a path: stable when lines move, never the secret.
pub fn fingerprint(rule: &str, rel: &str, secret: &[u8]) -> String {
    let h = Sha256::digest(secret);
    format!("{rule}:{rel}:{}", &hex::encode(h)[..12])
}

/// The fingerprint of a secret found in history (as gitleaks'): the commit, the path,
/// the rule and the line in that commit's version of the file.
pub fn history_fingerprint(commit: &str, rel: &str, rule: &str, line: u64) -> String {
    format!("{commit}:{rel}:{rule}:{line}")
}

/// A working-tree fingerprint without its path: the same secret of the same rule
/// wherever it is (`<rule>:<hash>`).
fn secret_key(fp: &str) -> String {
    let rule = fp.split(':').next().unwrap_or_default();
    let hash = fp.rsplit(':').next().unwrap_or_default();
    format!("{rule}:{hash}")
}

/// Where a chunk of text searched for secrets comes from.
struct Place<'a> {
    target: &'a str,
    rel: &'a str,
    /// A commit's added lines (history), or the working tree's file (`None`).
    commit: Option<&'a str>,
    /// The line of the text's first byte.
    first_line: u64,
}

/// Run a scan (blocking: call it from `spawn_blocking`). Unreadable files go to `ledger`
/// too when one is given.
pub fn run(opts: &ScanOptions, ledger: Option<&Ledger>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let created_at_ms = now_ms();
    let detector = Detector::new()?;
    let mut allow = Allowlist::compile(&opts.allowlist).map_err(anyhow::Error::msg)?;
    let mut found = Found::default();
    let mut items: Vec<Item> = Vec::new();
    let excluded: HashSet<&str> = opts.exclude_dirs.iter().map(String::as_str).collect();
    for (ti, root) in opts.targets.iter().enumerate() {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                found.errors.push(ScanError {
                    file: root.display().to_string(),
                    stage: "target".into(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let af = root.join(ALLOWLIST_FILE);
        if meta.is_dir() && af.is_file() {
            let spec = std::fs::read_to_string(&af)
                .map_err(|e| e.to_string())
                .and_then(|t| toml::from_str::<AllowlistSpec>(&t).map_err(|e| e.to_string()))
                .and_then(|s| Allowlist::compile(&s));
            match spec {
                Ok(a) => allow.merge(a),
                Err(e) => found.errors.push(ScanError {
                    file: af.display().to_string(),
                    stage: "allowlist".into(),
                    error: e,
                }),
            }
        }
        if meta.is_file() {
            items.push(Item {
                target: ti,
                rel: rel_path(root, root),
                path: root.clone(),
            });
            continue;
        }
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0
                    || !(e.file_type().is_dir()
                        && e.file_name().to_str().is_some_and(|n| excluded.contains(n)))
            });
        for entry in walk {
            match entry {
                Ok(e) => {
                    let ft = e.file_type();
                    // A symlink is read through (a broken or looping one is an error);
                    // directories behind links are not entered (no cycles).
                    if ft.is_file() || (ft.is_symlink() && !e.path().is_dir()) {
                        items.push(Item {
                            target: ti,
                            rel: rel_path(root, e.path()),
                            path: e.into_path(),
                        });
                    }
                }
                Err(e) => {
                    let p = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    found.errors.push(ScanError {
                        file: p.display().to_string(),
                        stage: "walk".into(),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    if let Some(l) = ledger {
        l.add_total(items.len() as u64);
    }

    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, 64);
    let next = AtomicUsize::new(0);
    let shared = Mutex::new(Found::default());
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len().max(1)) {
            s.spawn(|| {
                let mut local = Found::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    scan_file(opts, &detector, &allow, item, &mut local, ledger);
                }
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .absorb(local);
            });
        }
    });
    found.absorb(shared.into_inner().unwrap_or_else(|e| e.into_inner()));

    let mut histories = Vec::new();
    if opts.git.enabled {
        histories = scan_histories(opts, &detector, &allow, &mut found, ledger);
    }

    found.packages.sort();
    found.packages.dedup();
    found.secrets.sort_by(|a, b| {
        (a.severity, &a.target, &a.commit, &a.file, a.line, &a.rule)
            .cmp(&(b.severity, &b.target, &b.commit, &b.file, b.line, &b.rule))
    });
    found.errors.sort_by(|a, b| a.file.cmp(&b.file));

    // Only advisories of packages present are kept in memory.
    let wanted: HashSet<(String, String)> = found
        .packages
        .iter()
        .map(|p| {
            let n = if p.ecosystem == "PyPI" {
                lockfiles::pep503(&p.name)
            } else {
                p.name.clone()
            };
            (p.ecosystem.clone(), n)
        })
        .collect();
    let db = OsvDb::load_dir(&opts.osv_dir, Some(&wanted));
    for (name, e) in &db.errors {
        found.errors.push(ScanError {
            file: name.clone(),
            stage: "osv".into(),
            error: e.clone(),
        });
    }
    let mut vulns: Vec<Vulnerability> = found.packages.iter().flat_map(|p| db.matches(p)).collect();
    vulns.sort_by(|a, b| {
        (a.severity, &a.id, &a.package, &a.version, &a.source)
            .cmp(&(b.severity, &b.id, &b.package, &b.version, &b.source))
    });

    let mut counts = Counts {
        secrets: found.secrets.len() as u64,
        vulnerabilities: vulns.len() as u64,
        packages: found.packages.len() as u64,
        files_scanned: found.files,
        bytes_scanned: found.bytes,
        errors: found.errors.len() as u64,
        allowlisted: found.allowlisted,
        advisories: db.records,
        ..Default::default()
    };
    for v in &vulns {
        counts.add(v.severity);
    }
    for s in &found.secrets {
        counts.add(s.severity);
    }
    if let Some(l) = ledger {
        // Errors found outside the per-file loop (targets, walk, allowlist, OSV files).
        for e in &found.errors {
            if e.stage != "read" {
                l.error(LedgerError::new(&e.file, &e.stage, &e.error).fix(fix_for(&e.stage)));
            }
        }
    }
    let created_at = rfc3339_ms(created_at_ms);
    let targets: Vec<String> = opts
        .targets
        .iter()
        .map(|t| t.display().to_string())
        .collect();
    let subject = opts
        .targets
        .first()
        .and_then(|t| std::fs::canonicalize(t).ok())
        // A lockfile given alone is named after its directory (the project).
        .map(|t| {
            if t.is_file() {
                t.parent().map(Path::to_path_buf).unwrap_or(t)
            } else {
                t
            }
        })
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "echopilot-scan".into());
    let sbom = super::sbom::build(&subject, &created_at, &found.packages, &vulns);
    Ok(Report {
        id: random_id("scan_", 10),
        run_id: opts.run_id.clone(),
        created_at,
        created_at_ms,
        duration_ms: started.elapsed().as_millis() as i64,
        trigger: opts.trigger.clone(),
        targets,
        counts,
        vulnerabilities: vulns,
        secrets: found.secrets,
        packages: found.packages,
        errors: found.errors,
        history: histories,
        sbom,
    })
}

/// Search the history of every directory target that is a git repository (see
/// [`history`]). A secret still in the working tree (same rule, path and secret) is not
/// reported again from history.
fn scan_histories(
    opts: &ScanOptions,
    detector: &Detector,
    allow: &Allowlist,
    found: &mut Found,
    ledger: Option<&Ledger>,
) -> Vec<HistoryScan> {
    let excluded: HashSet<&str> = opts.exclude_dirs.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for root in &opts.targets {
        if !root.is_dir() {
            continue;
        }
        let target = root.display().to_string();
        if let Some(l) = ledger {
            l.add_total(1);
        }
        let mut h = HistoryScan {
            target: target.clone(),
            ..Default::default()
        };
        let res = history::is_repo(root).and_then(|repo| {
            if !repo {
                h.note = Some("not a git repository".into());
                return Ok(None);
            }
            let in_tree: HashSet<String> = found
                .secrets
                .iter()
                .filter(|s| s.target == target && s.commit.is_none())
                .map(|s| secret_key(&s.fingerprint))
                .collect();
            let mut local = Found::default();
            let scanned = history::scan(root, &opts.git, |a| {
                let skip = a.text.len() as u64 > opts.max_file_bytes
                    || allow.path_allowed(a.path)
                    || a.path
                        .split('/')
                        .rev()
                        .skip(1)
                        .any(|d| excluded.contains(d))
                    || is_binary(a.text);
                if skip {
                    return;
                }
                let place = Place {
                    target: &target,
                    rel: a.path,
                    commit: Some(a.commit),
                    first_line: a.first_line,
                };
                find_secrets(detector, allow, a.text, &place, Some(&in_tree), &mut local);
            })?;
            Ok(Some((scanned, local)))
        });
        match res {
            Ok(Some((scanned, local))) => {
                h = HistoryScan {
                    target: target.clone(),
                    ..scanned
                };
                found.bytes += h.bytes;
                found.allowlisted += local.allowlisted;
                found.secrets.extend(local.secrets);
            }
            Ok(None) => {}
            Err(history::GitError(e)) => {
                h.note = Some("not scanned: see errors".into());
                found.errors.push(ScanError {
                    file: target.clone(),
                    stage: "git".into(),
                    error: e,
                });
            }
        }
        if let Some(l) = ledger {
            l.add_processed(1);
        }
        out.push(h);
    }
    out
}

fn fix_for(stage: &str) -> &'static str {
    match stage {
        "read" => "make the file readable by the server's user, or exclude it ([security] allow_paths / exclude_dirs)",
        "target" => "fix [security] paths: the target does not exist or cannot be read",
        "allowlist" => "fix the allowlist file: keys paths, regexes, fingerprints; valid regexes",
        "osv" => "re-import the OSV file (echopilot security import-osv FILE)",
        "lockfile" => "the lockfile does not parse: regenerate it with its package manager",
        "git" => "install git on the server's PATH and make the repository readable by the server's user (git safe.directory), or set [security] git_history = false",
        _ => "check the file's permissions",
    }
}

fn scan_file(
    opts: &ScanOptions,
    detector: &Detector,
    allow: &Allowlist,
    item: &Item,
    out: &mut Found,
    ledger: Option<&Ledger>,
) {
    let target = opts.targets[item.target].display().to_string();
    let name = item
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock = lockfiles::kind(&name);
    let too_big = std::fs::metadata(&item.path).is_ok_and(|m| m.len() > opts.max_file_bytes);
    if too_big && lock.is_none() {
        if let Some(l) = ledger {
            l.add_processed(1);
        }
        return;
    }
    let bytes = match std::fs::read(&item.path) {
        Ok(b) => b,
        Err(e) => {
            let err = ScanError {
                file: item.path.display().to_string(),
                stage: "read".into(),
                error: e.to_string(),
            };
            if let Some(l) = ledger {
                l.error(LedgerError::new(&err.file, "read", &err.error).fix(fix_for("read")));
            }
            out.errors.push(err);
            return;
        }
    };
    out.files += 1;
    out.bytes += bytes.len() as u64;
    if let Some(kind) = lock {
        let source = if opts.targets.len() > 1 {
            format!("{target}:{}", item.rel)
        } else {
            item.rel.clone()
        };
        match std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| lockfiles::parse(kind, t, &source))
        {
            Ok(mut p) => out.packages.append(&mut p),
            Err(e) => {
                let file = item.path.display().to_string();
                if let Some(l) = ledger {
                    l.error(LedgerError::new(&file, "lockfile", &e).fix(fix_for("lockfile")));
                }
                out.errors.push(ScanError {
                    file,
                    stage: "lockfile".into(),
                    error: e,
                });
            }
        }
    }
    if !too_big && !allow.path_allowed(&item.rel) && !is_binary(&bytes) {
        let place = Place {
            target: &target,
            rel: &item.rel,
            commit: None,
            first_line: 1,
        };
        find_secrets(detector, allow, &bytes, &place, None, out);
    }
    if let Some(l) = ledger {
        l.add_processed(1);
    }
}

fn is_binary(b: &[u8]) -> bool {
    memchr::memchr(0, &b[..b.len().min(8192)]).is_some()
}

/// The line (1-based) and the line's bytes around `pos`.
fn line_of(text: &[u8], pos: usize, cursor: &mut (usize, u64)) -> (u64, std::ops::Range<usize>) {
    // Matches come sorted by start, so counting resumes where the last one stopped.
    let (from, line) = *cursor;
    let (from, line) = if pos >= from { (from, line) } else { (0, 1) };
    let n = memchr::memchr_iter(b'\n', &text[from..pos]).count() as u64;
    let line = line + n;
    *cursor = (pos, line);
    let start = memchr::memrchr(b'\n', &text[..pos]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
    (line, start..end)
}

/// Search `text` and add what is not allowlisted to `out`. From history (`place.commit`),
/// a secret in `in_tree` (see [`secret_key`]: the same secret is in the working tree) is
/// left to the working tree's finding, and either fingerprint in the allowlist accepts it.
fn find_secrets(
    detector: &Detector,
    allow: &Allowlist,
    text: &[u8],
    place: &Place<'_>,
    in_tree: Option<&HashSet<String>>,
    out: &mut Found,
) {
    let rel = place.rel;
    let mut cursor = (0usize, 1u64);
    for m in detector.find(text) {
        let rule = detector.rule(m.rule);
        let secret = &text[m.start..m.end];
        let (line, span) = line_of(text, m.start, &mut cursor);
        let line = line + place.first_line - 1;
        let line_text = &text[span];
        let content_fp = fingerprint(rule.id, rel, secret);
        if in_tree.is_some_and(|t| t.contains(&secret_key(&content_fp))) {
            continue;
        }
        let fp = match place.commit {
            Some(c) => history_fingerprint(c, rel, rule.id, line),
            None => content_fp.clone(),
        };
        let inline = memchr::memmem::find(line_text, INLINE_ALLOW.as_bytes()).is_some();
        if inline
            || allow.fingerprints.contains(&fp)
            || allow.fingerprints.contains(&content_fp)
            || allow
                .regexes
                .iter()
                .any(|r| r.is_match(secret) || r.is_match(line_text))
        {
            out.allowlisted += 1;
            continue;
        }
        out.secrets.push(SecretFinding {
            rule: rule.id.to_string(),
            description: rule.description.to_string(),
            severity: rule.severity,
            file: rel.to_string(),
            target: place.target.to_string(),
            commit: place.commit.map(String::from),
            line,
            fingerprint: fp,
            redacted: rules::redact(secret),
            entropy: (rules::entropy(secret) * 100.0).round() / 100.0,
        });
    }
}
