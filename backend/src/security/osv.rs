//! Offline OSV matching. The database is a directory holding OSV JSON files and/or the
//! per-ecosystem `all.zip` archives OSV publishes (`echopilot security import-osv`
//! copies them there). Ranges are evaluated per ecosystem as the OSV schema says
//! (events sorted, `introduced` / `fixed` / `last_affected` / `limit`): SemVer for
//! crates.io, npm and Go, PEP 440 for PyPI; a range of another type (GIT) is skipped and
//! the explicit `versions` list still applies.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use super::lockfiles::pep503;
use super::model::{Package, Severity, Vulnerability};

/// The parts of an OSV record matching needs.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRecord {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub details: String,
    #[serde(default)]
    pub severity: Vec<OsvSeverity>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub database_specific: Option<Value>,
    #[serde(default)]
    pub withdrawn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OsvSeverity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<AffectedPackage>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub severity: Vec<OsvSeverity>,
    #[serde(default)]
    pub database_specific: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AffectedPackage {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

/// Advisories by (ecosystem, normalised package name).
#[derive(Default)]
pub struct OsvDb {
    by_package: HashMap<(String, String), Vec<std::sync::Arc<OsvRecord>>>,
    pub records: u64,
    /// Files or archive entries that did not parse (name and error).
    pub errors: Vec<(String, String)>,
}

/// Lookup key of a package name in an ecosystem (PyPI names are PEP 503 normalised).
fn key(ecosystem: &str, name: &str) -> (String, String) {
    let eco = ecosystem.split(':').next().unwrap_or(ecosystem).to_string();
    let n = if eco == "PyPI" {
        pep503(name)
    } else {
        name.to_string()
    };
    (eco, n)
}

impl OsvDb {
    /// Load every `*.json` and `*.zip` under `dir` (missing dir: an empty database).
    /// With `wanted`, only advisories of those (ecosystem, name) pairs are kept.
    pub fn load_dir(dir: &Path, wanted: Option<&HashSet<(String, String)>>) -> OsvDb {
        let mut db = OsvDb::default();
        if !dir.exists() {
            return db;
        }
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    db.errors.push((dir.display().to_string(), e.to_string()));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let p = entry.path();
            match p.extension().and_then(|e| e.to_str()) {
                Some("json") => match std::fs::read(p) {
                    Ok(b) => db.add_bytes(&p.display().to_string(), &b, wanted),
                    Err(e) => db.errors.push((p.display().to_string(), e.to_string())),
                },
                Some("zip") => {
                    if let Err(e) = db.add_zip(p, wanted) {
                        db.errors.push((p.display().to_string(), e));
                    }
                }
                _ => {}
            }
        }
        db
    }

    fn add_zip(
        &mut self,
        path: &Path,
        wanted: Option<&HashSet<(String, String)>>,
    ) -> Result<(), String> {
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut z = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        for i in 0..z.len() {
            let mut e = z.by_index(i).map_err(|e| e.to_string())?;
            let entry_name = e.name().map(|n| n.into_owned()).unwrap_or_default();
            if !e.is_file() || !entry_name.ends_with(".json") {
                continue;
            }
            let name = format!("{}!{entry_name}", path.display());
            buf.clear();
            if let Err(err) = e.read_to_end(&mut buf) {
                self.errors.push((name, err.to_string()));
                continue;
            }
            self.add_bytes(&name, &buf, wanted);
        }
        Ok(())
    }

    fn add_bytes(&mut self, name: &str, bytes: &[u8], wanted: Option<&HashSet<(String, String)>>) {
        match serde_json::from_slice::<OsvRecord>(bytes) {
            Ok(r) => self.add(r, wanted),
            Err(e) => self.errors.push((name.to_string(), e.to_string())),
        }
    }

    pub fn add(&mut self, r: OsvRecord, wanted: Option<&HashSet<(String, String)>>) {
        if r.withdrawn.is_some() {
            return;
        }
        self.records += 1;
        let r = std::sync::Arc::new(r);
        let mut seen = HashSet::new();
        for a in &r.affected {
            let Some(p) = &a.package else { continue };
            let k = key(&p.ecosystem, &p.name);
            if wanted.is_some_and(|w| !w.contains(&k)) || !seen.insert(k.clone()) {
                continue;
            }
            self.by_package.entry(k).or_default().push(r.clone());
        }
    }

    /// The advisories affecting `p`, one per (advisory, package).
    pub fn matches(&self, p: &Package) -> Vec<Vulnerability> {
        let k = key(&p.ecosystem, &p.name);
        let Some(records) = self.by_package.get(&k) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in records {
            let mut fixed = Vec::new();
            let mut hit: Option<&Affected> = None;
            for a in &r.affected {
                let Some(ap) = &a.package else { continue };
                if key(&ap.ecosystem, &ap.name) != k {
                    continue;
                }
                for range in &a.ranges {
                    for e in &range.events {
                        if let Some(f) = &e.fixed {
                            if !fixed.contains(f) {
                                fixed.push(f.clone());
                            }
                        }
                    }
                }
                if hit.is_none() && affects(&k.0, a, &p.version) {
                    hit = Some(a);
                }
            }
            let Some(a) = hit else { continue };
            let (severity, cvss_score) = severity(r, a);
            out.push(Vulnerability {
                id: r.id.clone(),
                aliases: r.aliases.clone(),
                summary: if r.summary.is_empty() {
                    crate::util::truncate_chars(r.details.lines().next().unwrap_or(""), 200)
                } else {
                    r.summary.clone()
                },
                severity,
                cvss_score,
                ecosystem: p.ecosystem.clone(),
                package: p.name.clone(),
                version: p.version.clone(),
                purl: p.purl.clone(),
                fixed,
                source: p.source.clone(),
            });
        }
        out
    }
}

/// A version in one ecosystem's order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ver {
    Semver(semver::Version),
    Pep440(pep440_rs::Version),
}

impl PartialOrd for Ver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Ver::Semver(a), Ver::Semver(b)) => Some(a.cmp(b)),
            (Ver::Pep440(a), Ver::Pep440(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

fn parse_version(ecosystem: &str, v: &str) -> Option<Ver> {
    match ecosystem {
        "PyPI" => pep440_rs::Version::from_str(v).ok().map(Ver::Pep440),
        "Go" => semver::Version::parse(v.strip_prefix('v').unwrap_or(v))
            .ok()
            .map(Ver::Semver),
        // crates.io and npm versions are SemVer (npm allows a leading `v` and `=`).
        _ => semver::Version::parse(v.trim_start_matches(['v', '=']))
            .ok()
            .map(Ver::Semver),
    }
}

/// Whether `version` is affected by `a` (OSV's evaluation of sorted events).
pub fn affects(ecosystem: &str, a: &Affected, version: &str) -> bool {
    let norm = |s: &str| s.trim_start_matches('v').to_string();
    if a.versions
        .iter()
        .any(|v| v == version || norm(v) == norm(version))
    {
        return true;
    }
    let Some(v) = parse_version(ecosystem, version) else {
        return false;
    };
    for range in &a.ranges {
        if !matches!(range.kind.as_str(), "SEMVER" | "ECOSYSTEM") {
            continue;
        }
        // (order key, kind, version): `introduced: "0"` sorts before everything.
        let mut events: Vec<(Option<Ver>, u8)> = Vec::new();
        let mut bad = false;
        for e in &range.events {
            let (s, kind) = if let Some(s) = &e.introduced {
                (s, 0)
            } else if let Some(s) = &e.fixed {
                (s, 1)
            } else if let Some(s) = &e.last_affected {
                (s, 2)
            } else if let Some(s) = &e.limit {
                (s, 3)
            } else {
                continue;
            };
            if kind == 0 && s == "0" {
                events.push((None, 0));
                continue;
            }
            match parse_version(ecosystem, s) {
                Some(x) => events.push((Some(x), kind)),
                None => bad = true,
            }
        }
        if bad {
            continue;
        }
        events.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => Ordering::Equal,
            (None, _) => Ordering::Less,
            (_, None) => Ordering::Greater,
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        });
        let mut affected = false;
        for (ev, kind) in &events {
            let ge = |x: &Option<Ver>| match x {
                None => true,
                Some(x) => v.partial_cmp(x).is_some_and(|o| o != Ordering::Less),
            };
            match kind {
                0 if ge(ev) => affected = true,
                1 | 3 if ev.is_some() && ge(ev) => affected = false,
                2 => {
                    if let Some(x) = ev {
                        if v.partial_cmp(x) == Some(Ordering::Greater) {
                            affected = false;
                        }
                    }
                }
                _ => {}
            }
        }
        if affected {
            return true;
        }
    }
    false
}

fn severity_word(v: Option<&Value>) -> Option<Severity> {
    let s = v?.get("severity")?.as_str()?.to_ascii_uppercase();
    Some(match s.as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MODERATE" | "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => return None,
    })
}

/// CVSS base score of a vector (v3.x or v4.0).
pub fn cvss_score(vector: &str) -> Option<f64> {
    if vector.starts_with("CVSS:3.") {
        return cvss::v3::Vector::from_str(vector)
            .ok()
            .map(|b| b.score().value());
    }
    if vector.starts_with("CVSS:4.") {
        return cvss::v4::Vector::from_str(vector)
            .ok()
            .map(|b| b.score().value());
    }
    None
}

fn from_score(s: f64) -> Severity {
    if s >= 9.0 {
        Severity::Critical
    } else if s >= 7.0 {
        Severity::High
    } else if s >= 4.0 {
        Severity::Medium
    } else if s > 0.0 {
        Severity::Low
    } else {
        Severity::Unknown
    }
}

/// Severity from the advisory: a CVSS vector's base score first, then the database's
/// word (GitHub's `database_specific.severity`), else unknown.
fn severity(r: &OsvRecord, a: &Affected) -> (Severity, Option<f64>) {
    let score = a
        .severity
        .iter()
        .chain(r.severity.iter())
        .filter(|s| s.kind.starts_with("CVSS"))
        .find_map(|s| cvss_score(&s.score));
    if let Some(s) = score {
        return (from_score(s), Some((s * 10.0).round() / 10.0));
    }
    let word = severity_word(a.database_specific.as_ref())
        .or_else(|| severity_word(r.database_specific.as_ref()));
    (word.unwrap_or(Severity::Unknown), None)
}

/// What `import-osv` did with one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub file: String,
    pub stored_as: String,
    pub advisories: u64,
    pub errors: u64,
}

/// Copy OSV files into `osv_dir`: an `all.zip` (stored as `<ecosystem>.zip`), a JSON
/// record, or a directory of them. Every file is parsed first; one that is not OSV is
/// refused and nothing of it is stored.
pub fn import(osv_dir: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<Imported>> {
    std::fs::create_dir_all(osv_dir)?;
    let mut out = Vec::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        if meta.is_dir() {
            let mut db = OsvDb::load_dir(f, None);
            let dest = osv_dir.join("json");
            std::fs::create_dir_all(&dest)?;
            let mut n = 0;
            for e in walkdir::WalkDir::new(f).into_iter().flatten() {
                if e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json") {
                    let b = std::fs::read(e.path())?;
                    if let Ok(r) = serde_json::from_slice::<OsvRecord>(&b) {
                        std::fs::write(dest.join(format!("{}.json", safe_name(&r.id))), &b)?;
                        n += 1;
                    }
                }
            }
            out.push(Imported {
                file: f.display().to_string(),
                stored_as: dest.display().to_string(),
                advisories: n,
                errors: std::mem::take(&mut db.errors).len() as u64,
            });
            continue;
        }
        let is_zip = f.extension().is_some_and(|x| x == "zip");
        if is_zip {
            let mut db = OsvDb::default();
            db.add_zip(f, None)
                .map_err(|e| anyhow::anyhow!("{}: not a zip archive: {e}", f.display()))?;
            if db.records == 0 {
                anyhow::bail!("{}: no OSV records in the archive", f.display());
            }
            let eco = db
                .by_package
                .keys()
                .next()
                .map(|k| k.0.clone())
                .unwrap_or_else(|| "osv".into());
            let dest = osv_dir.join(format!("{}.zip", safe_name(&eco)));
            let tmp = dest.with_extension("zip.tmp");
            std::fs::copy(f, &tmp)?;
            std::fs::rename(&tmp, &dest)?;
            out.push(Imported {
                file: f.display().to_string(),
                stored_as: dest.display().to_string(),
                advisories: db.records,
                errors: db.errors.len() as u64,
            });
        } else {
            let b = std::fs::read(f)?;
            let r: OsvRecord = serde_json::from_slice(&b)
                .map_err(|e| anyhow::anyhow!("{}: not an OSV record: {e}", f.display()))?;
            let dest = osv_dir.join("json");
            std::fs::create_dir_all(&dest)?;
            let d = dest.join(format!("{}.json", safe_name(&r.id)));
            std::fs::write(&d, &b)?;
            out.push(Imported {
                file: f.display().to_string(),
                stored_as: d.display().to_string(),
                advisories: 1,
                errors: 0,
            });
        }
    }
    Ok(out)
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> OsvRecord {
        serde_json::from_value(v).unwrap()
    }

    fn affected(eco: &str, events: Value) -> Affected {
        serde_json::from_value(json!({"package": {"ecosystem": eco, "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": events}]})).unwrap()
    }

    #[test]
    fn ranges_follow_the_osv_evaluation() {
        let a = affected(
            "crates.io",
            json!([{"introduced": "0"}, {"fixed": "1.2.3"}]),
        );
        assert!(affects("crates.io", &a, "1.2.2"));
        assert!(affects("crates.io", &a, "0.1.0"));
        assert!(!affects("crates.io", &a, "1.2.3"));
        assert!(!affects("crates.io", &a, "2.0.0"));
        // Two ranges in one: [1.0, 1.5) and [2.0, 2.1).
        let a = affected(
            "npm",
            json!([{"introduced": "2.0.0"}, {"fixed": "2.1.0"}, {"introduced": "1.0.0"}, {"fixed": "1.5.0"}]),
        );
        assert!(affects("npm", &a, "1.4.9"));
        assert!(!affects("npm", &a, "1.5.0"));
        assert!(affects("npm", &a, "2.0.5"));
        assert!(!affects("npm", &a, "0.9.0"));
        // Pre-releases order below their release in SemVer.
        assert!(affects("npm", &a, "2.1.0-rc.1"));
        let a = affected(
            "PyPI",
            json!([{"introduced": "1.0"}, {"last_affected": "1.4.post1"}]),
        );
        assert!(affects("PyPI", &a, "1.4"));
        assert!(affects("PyPI", &a, "1.4.post1"));
        assert!(!affects("PyPI", &a, "1.4.1"));
        assert!(!affects("PyPI", &a, "1.4.post2"));
        // PEP 440: 1.0rc1 < 1.0, 2.0.dev1 < 2.0a1.
        let a = affected("PyPI", json!([{"introduced": "0"}, {"fixed": "2.0a1"}]));
        assert!(affects("PyPI", &a, "2.0.dev1"));
        assert!(!affects("PyPI", &a, "2.0"));
        let a = affected("Go", json!([{"introduced": "0"}, {"fixed": "0.3.8"}]));
        assert!(affects("Go", &a, "v0.3.7"));
        assert!(!affects("Go", &a, "v0.3.8"));
    }

    #[test]
    fn matching_reports_ids_severity_and_fixes() {
        let mut db = OsvDb::default();
        db.add(
            rec(json!({"id": "GHSA-1", "aliases": ["CVE-2020-1"], "summary": "bad",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "Django"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.2.5"}]}]}]})),
            None,
        );
        db.add(
            rec(json!({"id": "GHSA-2", "database_specific": {"severity": "MODERATE"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "django"}, "versions": ["3.2.0"]}]})),
            None,
        );
        let p = Package {
            ecosystem: "PyPI".into(),
            name: "django".into(),
            version: "3.2.0".into(),
            purl: "pkg:pypi/django@3.2.0".into(),
            source: "requirements.txt".into(),
        };
        let m = db.matches(&p);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id, "GHSA-1");
        assert_eq!(m[0].severity, Severity::Critical);
        assert_eq!(m[0].cvss_score, Some(9.8));
        assert_eq!(m[0].fixed, ["3.2.5"]);
        assert_eq!(m[1].severity, Severity::Medium);
    }
}
