//! One owner per table (issue 8, item 2): only the owning area's source names its tables
//! in SQL; other areas call the owner's functions. Owners and sources come from the area
//! list (`Area::tables`, `Area::source_dirs`). This test scans every Rust file under
//! backend/src for SQL that names a table (`FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`
//! followed by the name, keywords in upper case as all our SQL is) and fails naming file,
//! line, table and owner for each table used outside its owner's module. Prose (comments,
//! lower-case "from alerts") is not SQL and is ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Table owners, from the area list: (area, its source paths under backend/src — a
/// directory or a single file —, the tables it owns).
fn owners() -> Vec<(&'static str, Vec<&'static str>, &'static [&'static str])> {
    echopilot_backend::areas::ALL
        .iter()
        .map(|a| {
            (
                a.name(),
                echopilot_backend::area::source_dirs(*a),
                a.tables(),
            )
        })
        .collect()
}

/// The area whose source holds `rel` (a path under backend/src): the longest matching
/// source path, so `api/keys.rs` (keys) wins over a hypothetical `api` (status). Files
/// of no area (store/, server.rs, app.rs, …) own nothing.
fn area_of<'a>(
    owners: &'a [(&'static str, Vec<&'static str>, &'static [&'static str])],
    rel: &str,
) -> Option<&'a str> {
    owners
        .iter()
        .flat_map(|(name, dirs, _)| dirs.iter().map(move |d| (*name, *d)))
        .filter(|(_, d)| rel == *d || rel.starts_with(&format!("{d}/")))
        .max_by_key(|(_, d)| d.len())
        .map(|(name, _)| name)
}

/// Violations that exist today and are being removed by their areas' owners (the job
/// engine rework moves these onto the owners' service functions). Each entry is
/// (file under backend/src, table). The lead empties this list after merging; an entry
/// that no longer occurs fails the test, so the list cannot go stale.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

const KEYWORDS: &[&str] = &["FROM", "JOIN", "INTO", "UPDATE", "TABLE"];
/// Words that may sit between a keyword and the table name.
const SKIP: &[&str] = &["IF", "NOT", "EXISTS", "ONLY"];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    file: String,
    line: usize,
    table: String,
}

/// Every SQL use of a known table in one file's source.
fn sql_uses(file: &str, source: &str, tables: &BTreeSet<&str>) -> Vec<Use> {
    let mut words: Vec<(usize, &str)> = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue; // comments and doc comments are prose
        }
        for w in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !w.is_empty() {
                words.push((n + 1, w));
            }
        }
    }
    let mut out = Vec::new();
    for (i, (_, w)) in words.iter().enumerate() {
        if !KEYWORDS.contains(w) {
            continue;
        }
        let next = words[i + 1..].iter().find(|(_, w)| !SKIP.contains(w));
        if let Some((line, name)) = next {
            if tables.contains(name) {
                out.push(Use {
                    file: file.to_string(),
                    line: *line,
                    table: name.to_string(),
                });
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_owner_names_its_tables_in_sql() {
    let owners = owners();
    let owner_of = |table: &str| {
        owners
            .iter()
            .find(|(_, _, ts)| ts.contains(&table))
            .map(|(name, _, _)| *name)
    };
    let tables: BTreeSet<&str> = owners
        .iter()
        .flat_map(|(_, _, ts)| ts.iter().copied())
        .collect();
    assert!(
        tables.contains("audit_log") && tables.len() > 10,
        "{tables:?}"
    );
    assert_eq!(area_of(&owners, "api/keys.rs"), Some("keys"));
    assert_eq!(area_of(&owners, "api/middleware.rs"), Some("status"));
    assert_eq!(area_of(&owners, "queue/worker.rs"), Some("queue"));
    assert_eq!(area_of(&owners, "store/mod.rs"), None);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found too few sources under {}",
        src.display()
    );

    let mut violations = Vec::new();
    let mut excepted_seen = BTreeSet::new();
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(path).unwrap();
        for u in sql_uses(&rel, &source, &tables) {
            let owner = owner_of(&u.table).unwrap();
            if area_of(&owners, &rel) == Some(owner) {
                continue;
            }
            if KNOWN_EXCEPTIONS.contains(&(rel.as_str(), u.table.as_str())) {
                excepted_seen.insert((rel.clone(), u.table.clone()));
                continue;
            }
            violations.push(format!(
                "backend/src/{}:{}: SQL names table `{}`, owned by area `{owner}`; call the owner's function instead",
                u.file, u.line, u.table
            ));
        }
    }
    let stale: Vec<_> = KNOWN_EXCEPTIONS
        .iter()
        .filter(|(f, t)| !excepted_seen.contains(&(f.to_string(), t.to_string())))
        .collect();
    assert!(
        violations.is_empty() && stale.is_empty(),
        "table ownership:\n{}\n{}",
        violations.join("\n"),
        stale
            .iter()
            .map(|(f, t)| format!("KNOWN_EXCEPTIONS entry ({f}, {t}) no longer occurs: remove it"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_scanner_finds_sql_and_ignores_prose() {
    let tables: BTreeSet<&str> = ["alerts", "queue_jobs", "api_keys"].into_iter().collect();
    let src = r#"
        // Alerts FROM alerts are prose in a comment.
        let s = "the alerts were sent"; // prose in a string
        sqlx::query("SELECT COUNT(*) FROM alerts WHERE ts > $1");
        sqlx::query("DELETE FROM
            queue_jobs WHERE id = $1");
        sqlx::query("CREATE TABLE IF NOT EXISTS api_keys (id TEXT)");
        sqlx::query("SELECT a.x FROM t JOIN alerts a ON a.id = t.id");
        let from = alerts; // lower-case word, not SQL
    "#;
    let uses = sql_uses("x.rs", src, &tables);
    let got: Vec<(usize, &str)> = uses.iter().map(|u| (u.line, u.table.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (4, "alerts"),
            (6, "queue_jobs"),
            (7, "api_keys"),
            (8, "alerts")
        ]
    );
}
