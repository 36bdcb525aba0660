//! Git history of a target: the lines each commit added (`git log -p -U0`, newest
//! commits first, bounded by `[security] git_max_commits` and `git_max_bytes`), searched
//! with the same detector and allowlist as the working tree. A secret still in the
//! working tree is reported there, not again from history: history findings are the
//! secrets that are (only) in the past. Each carries its commit, its path and its line in
//! that commit's version of the file; its fingerprint is `<commit>:<path>:<rule>:<line>`
//! (as gitleaks').
//!
//! The `git` binary is run through [`std::process::Command`] (no shell, no pager, no
//! external diff or textconv drivers); a missing binary or a repository git refuses
//! (`safe.directory`) is an error of the scan (and its ledger), not a failure.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How history is scanned (`[security] git_history`, `git_max_commits`, `git_max_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitOptions {
    pub enabled: bool,
    /// Newest commits searched, at most (of all refs).
    pub max_commits: u64,
    /// Patch text read, at most (the rest of the history is not searched).
    pub max_bytes: u64,
}

impl Default for GitOptions {
    fn default() -> Self {
        GitOptions {
            enabled: false,
            max_commits: 1000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What was searched in one target's history (in the report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryScan {
    /// The target (a configured path).
    pub target: String,
    /// Commits whose added lines were searched.
    pub commits: u64,
    /// Bytes of added lines searched.
    pub bytes: u64,
    /// True when `git_max_commits` or `git_max_bytes` stopped it before the oldest commit.
    pub truncated: bool,
    /// Why the history was not (fully) searched: not a git repository, a limit, an error.
    pub note: Option<String>,
}

/// Lines one commit added to one file, contiguous in the new version of the file.
pub struct Added<'a> {
    pub commit: &'a str,
    /// Path relative to the target.
    pub path: &'a str,
    /// 1-based line of `text`'s first line in the commit's version of the file.
    pub first_line: u64,
    /// The added lines, each ending in `\n`.
    pub text: &'a [u8],
}

/// Why history could not be read: `stage` `git`, for the report's errors and the ledger.
#[derive(Debug)]
pub struct GitError(pub String);

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--no-pager")
        .args(["-c", "core.quotePath=false", "-c", "diff.noprefix=false"])
        .arg("-C")
        .arg(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    c
}

fn spawn_error(e: std::io::Error) -> GitError {
    if e.kind() == std::io::ErrorKind::NotFound {
        GitError(
            "the git binary was not found on PATH: the history was not scanned (install git, or set [security] git_history = false)".into(),
        )
    } else {
        GitError(format!("cannot run git: {e}"))
    }
}

/// Whether `dir` is inside a git work tree (`Ok(false)`: not a repository).
pub fn is_repo(dir: &Path) -> Result<bool, GitError> {
    let out = git(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .stderr(Stdio::piped())
        .output()
        .map_err(spawn_error)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim() == "true");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("not a git repository") {
        return Ok(false);
    }
    // `dubious ownership` and the like: git's own words (they name no secret).
    Err(GitError(format!(
        "git refused the repository: {}",
        crate::util::truncate_chars(err.trim(), 500)
    )))
}

/// A path of a `+++ b/…` line: C-quoted when it holds special characters.
fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_string();
    };
    let mut out = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                d @ b'0'..=b'7' if i + 2 < b.len() => {
                    let oct = std::str::from_utf8(&b[i..i + 3]).unwrap_or("0");
                    out.push(u8::from_str_radix(oct, 8).unwrap_or(d));
                    i += 2;
                }
                c => out.push(c),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `@@ -a,b +c,d @@` → c.
fn hunk_start(line: &str) -> Option<u64> {
    let plus = line.split(' ').find(|t| t.starts_with('+'))?;
    plus[1..].split(',').next()?.parse().ok()
}

/// Read the added lines of the newest `max_commits` commits of every ref, limited to the
/// directory `dir` (paths relative to it), and hand each hunk to `each`. Returns what was
/// searched.
pub fn scan(
    dir: &Path,
    opts: &GitOptions,
    mut each: impl FnMut(Added<'_>),
) -> Result<HistoryScan, GitError> {
    let mut child = git(dir)
        .args([
            "log",
            "--all",
            "--relative",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--diff-filter=AM",
            "--format=%x01%H",
        ])
        // One more than searched: its header says the history goes on.
        .arg(format!(
            "--max-count={}",
            opts.max_commits.max(1).saturating_add(1)
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Drained beside stdout so a chatty git cannot block on a full pipe.
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut out = HistoryScan::default();
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut line = Vec::new();
    let mut commit = String::new();
    let mut commits = HashSet::new();
    let mut path: Option<String> = None;
    let mut first = 0u64;
    let mut next_line = 0u64;
    let mut hunk: Vec<u8> = Vec::new();
    let mut read = 0u64;
    let max_commits = opts.max_commits.max(1);
    loop {
        line.clear();
        let n = match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(GitError(format!("reading git log: {e}")));
            }
        };
        read += n as u64;
        if read > opts.max_bytes {
            out.truncated = true;
            out.note = Some(format!(
                "stopped at git_max_bytes ({} bytes of patches) after {} commit(s)",
                opts.max_bytes,
                commits.len()
            ));
            break;
        }
        if line.first() == Some(&b'\x01') {
            flush(&mut hunk, &path, &commit, first, &mut out, &mut each);
            if commits.len() as u64 >= max_commits {
                out.truncated = true;
                out.note = Some(format!(
                    "the newest {max_commits} commit(s) (git_max_commits); older ones were not searched"
                ));
                break;
            }
            commit = String::from_utf8_lossy(&line[1..]).trim().to_string();
            commits.insert(commit.clone());
            path = None;
            continue;
        }
        if line.starts_with(b"diff --git ") {
            flush(&mut hunk, &path, &commit, first, &mut out, &mut each);
            path = None;
            continue;
        }
        if let Some(p) = line.strip_prefix(b"+++ ") {
            flush(&mut hunk, &path, &commit, first, &mut out, &mut each);
            let p = String::from_utf8_lossy(p);
            let p = unquote(p.trim_end_matches(['\n', '\r']));
            path = p.strip_prefix("b/").map(String::from);
            continue;
        }
        if line.starts_with(b"@@ ") {
            flush(&mut hunk, &path, &commit, first, &mut out, &mut each);
            let l = String::from_utf8_lossy(&line);
            first = hunk_start(&l).unwrap_or(1);
            next_line = first;
            continue;
        }
        if let Some(added) = line.strip_prefix(b"+") {
            if path.is_some() {
                if hunk.is_empty() {
                    first = next_line;
                }
                hunk.extend_from_slice(added);
                if !hunk.ends_with(b"\n") {
                    hunk.push(b'\n');
                }
                next_line += 1;
            }
        }
        // Everything else: `-` lines, `\ No newline`, index/mode lines, `Binary files`.
    }
    flush(&mut hunk, &path, &commit, first, &mut out, &mut each);
    out.commits = commits.len() as u64;
    if out.truncated {
        let _ = child.kill();
        let _ = child.wait();
        let _ = err_reader.join();
        return Ok(out);
    }
    let status = child
        .wait()
        .map_err(|e| GitError(format!("waiting for git: {e}")))?;
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let err = err.trim();
        // An empty repository (no commit yet) has no history to search.
        if err.contains("does not have any commits") {
            out.note = Some("no commits yet".into());
            return Ok(out);
        }
        return Err(GitError(format!(
            "git log failed ({status}): {}",
            crate::util::truncate_chars(err, 500)
        )));
    }
    Ok(out)
}

/// Hand the hunk gathered so far to `each` (when it has lines of a known path).
fn flush(
    hunk: &mut Vec<u8>,
    path: &Option<String>,
    commit: &str,
    first: u64,
    out: &mut HistoryScan,
    each: &mut impl FnMut(Added<'_>),
) {
    if let (false, Some(p)) = (hunk.is_empty(), path) {
        out.bytes += hunk.len() as u64;
        each(Added {
            commit,
            path: p,
            first_line: first,
            text: hunk,
        });
    }
    hunk.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_paths_and_hunk_headers_parse() {
        assert_eq!(unquote("b/plain.txt"), "b/plain.txt");
        assert_eq!(unquote("\"b/with\\ttab\""), "b/with\ttab");
        assert_eq!(unquote("\"b/caf\\303\\251\""), "b/café");
        assert_eq!(hunk_start("@@ -0,0 +1,3 @@"), Some(1));
        assert_eq!(hunk_start("@@ -4 +7 @@ fn x()"), Some(7));
    }
}
