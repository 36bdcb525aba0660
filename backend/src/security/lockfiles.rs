//! Packages from lockfiles: `Cargo.lock`, `package-lock.json`, `yarn.lock`,
//! `requirements*.txt`, `poetry.lock`, `go.sum`. Each package gets its OSV ecosystem
//! name and a package URL (purl).

use serde_json::Value;

use super::model::Package;

/// Which parser reads a file, by its name; `None`: not a lockfile.
pub fn kind(file_name: &str) -> Option<&'static str> {
    match file_name {
        "Cargo.lock" => Some("cargo"),
        "package-lock.json" | "npm-shrinkwrap.json" => Some("npm"),
        "yarn.lock" => Some("yarn"),
        "poetry.lock" => Some("poetry"),
        "go.sum" => Some("gosum"),
        n if n.starts_with("requirements") && n.ends_with(".txt") => Some("requirements"),
        _ => None,
    }
}

/// Parse a lockfile of `kind` (from [`kind`]); `source` is its path for the report.
pub fn parse(kind: &str, text: &str, source: &str) -> Result<Vec<Package>, String> {
    let mut out = match kind {
        "cargo" => cargo(text),
        "npm" => npm(text),
        "yarn" => Ok(yarn(text)),
        "poetry" => poetry(text),
        "gosum" => Ok(gosum(text)),
        "requirements" => Ok(requirements(text)),
        other => Err(format!("no parser for {other}")),
    }?;
    for p in &mut out {
        p.source = source.to_string();
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn pkg(ecosystem: &str, name: &str, version: &str, purl: String) -> Package {
    Package {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        purl,
        source: String::new(),
    }
}

/// Percent-encode a purl segment (RFC 3986 unreserved kept; `@` becomes `%40`).
fn purl_enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PURL_SET).to_string()
}

const PURL_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn cargo_purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{}@{}", purl_enc(name), purl_enc(version))
}

pub fn npm_purl(name: &str, version: &str) -> String {
    match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, n)) => format!(
            "pkg:npm/%40{}/{}@{}",
            purl_enc(scope),
            purl_enc(n),
            purl_enc(version)
        ),
        None => format!("pkg:npm/{}@{}", purl_enc(name), purl_enc(version)),
    }
}

pub fn pypi_purl(name: &str, version: &str) -> String {
    format!("pkg:pypi/{}@{}", purl_enc(name), purl_enc(version))
}

pub fn golang_purl(module: &str, version: &str) -> String {
    let path: Vec<String> = module.split('/').map(purl_enc).collect();
    format!("pkg:golang/{}@{}", path.join("/"), purl_enc(version))
}

/// PEP 503 normalised name: lower case, runs of `-_.` as one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `[[package]]` tables of a TOML lockfile (Cargo.lock, poetry.lock) with a name and a
/// version.
fn toml_packages(text: &str) -> Result<Vec<(String, String, toml::Table)>, String> {
    let v: toml::Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let mut out = Vec::new();
    for p in v
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_table())
    {
        if let (Some(name), Some(version)) = (
            p.get("name").and_then(|x| x.as_str()),
            p.get("version").and_then(|x| x.as_str()),
        ) {
            out.push((name.to_string(), version.to_string(), p.clone()));
        }
    }
    Ok(out)
}

fn cargo(text: &str) -> Result<Vec<Package>, String> {
    Ok(toml_packages(text)?
        .into_iter()
        // Path packages (the workspace's own crates) have no source: not dependencies.
        .filter(|(_, _, t)| t.contains_key("source"))
        .map(|(name, version, _)| pkg("crates.io", &name, &version, cargo_purl(&name, &version)))
        .collect())
}

fn npm(text: &str) -> Result<Vec<Package>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    if let Some(pkgs) = v.get("packages").and_then(Value::as_object) {
        // lockfileVersion 2 and 3: "node_modules/a/node_modules/@s/b": {version}.
        for (path, p) in pkgs {
            let Some(idx) = path.rfind("node_modules/") else {
                continue; // "" is the project itself
            };
            if p.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&path[idx + "node_modules/".len()..]);
            if let Some(version) = p.get("version").and_then(Value::as_str) {
                out.push(pkg("npm", name, version, npm_purl(name, version)));
            }
        }
    } else if let Some(deps) = v.get("dependencies").and_then(Value::as_object) {
        // lockfileVersion 1: nested "dependencies".
        fn walk(deps: &serde_json::Map<String, Value>, out: &mut Vec<Package>) {
            for (name, d) in deps {
                if let Some(version) = d.get("version").and_then(Value::as_str) {
                    if !version.starts_with("file:") && !version.starts_with("link:") {
                        out.push(pkg("npm", name, version, npm_purl(name, version)));
                    }
                }
                if let Some(sub) = d.get("dependencies").and_then(Value::as_object) {
                    walk(sub, out);
                }
            }
        }
        walk(deps, &mut out);
    }
    Ok(out)
}

/// yarn v1 (`"a@^1", a@^1.2:` / `  version "1.2.3"`) and berry (`"a@npm:^1":` /
/// `  version: 1.2.3`).
fn yarn(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            current = None;
            let header = line.trim_end().trim_end_matches(':');
            let first = header
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if first == "__metadata" || first.contains("@workspace:") || first.contains("@patch:") {
                continue;
            }
            // The name ends at the last `@` that is not the scope's leading one.
            if let Some(at) = first[1.min(first.len())..].find('@').map(|i| i + 1) {
                current = Some(first[..at].to_string());
            }
            continue;
        }
        let t = line.trim();
        if let (Some(name), Some(rest)) = (&current, t.strip_prefix("version")) {
            let version = rest.trim_start_matches(':').trim().trim_matches('"');
            if !version.is_empty() && !version.starts_with("0.0.0-use.local") {
                out.push(pkg("npm", name, version, npm_purl(name, version)));
            }
            current = None;
        }
    }
    out
}

fn poetry(text: &str) -> Result<Vec<Package>, String> {
    Ok(toml_packages(text)?
        .into_iter()
        .map(|(name, version, _)| {
            let n = pep503(&name);
            pkg("PyPI", &n, &version, pypi_purl(&n, &version))
        })
        .collect())
}

fn gosum(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(module), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        let version = version.trim_end_matches("/go.mod");
        out.push(pkg("Go", module, version, golang_purl(module, version)));
    }
    out
}

/// Pinned requirements (`name==1.2.3`, extras and markers allowed); ranges and options
/// are not a resolved version and are left out.
fn requirements(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let spec = line.split(';').next().unwrap_or("").trim();
        let Some((name, version)) = spec.split_once("===").or_else(|| spec.split_once("==")) else {
            continue;
        };
        let name = name.split('[').next().unwrap_or("").trim();
        let version = version
            .split(|c: char| c.is_whitespace() || c == ',' || c == '\\')
            .next()
            .unwrap_or("")
            .trim();
        if name.is_empty() || version.is_empty() || version.contains('*') {
            continue;
        }
        let n = pep503(name);
        out.push(pkg("PyPI", &n, version, pypi_purl(&n, version)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Package]) -> Vec<String> {
        v.iter()
            .map(|p| format!("{}|{}|{}", p.name, p.version, p.purl))
            .collect()
    }

    #[test]
    fn reads_each_lockfile_kind() {
        let c = parse(
            "cargo",
            "version = 3\n[[package]]\nname = \"me\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
            "Cargo.lock",
        )
        .unwrap();
        assert_eq!(names(&c), ["serde|1.0.1|pkg:cargo/serde@1.0.1"]);

        let n = parse("npm", r#"{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"4.17.20"},"node_modules/a/node_modules/@babel/core":{"version":"7.0.0"},"node_modules/l":{"link":true}}}"#, "package-lock.json").unwrap();
        assert_eq!(
            names(&n),
            [
                "@babel/core|7.0.0|pkg:npm/%40babel/core@7.0.0",
                "lodash|4.17.20|pkg:npm/lodash@4.17.20"
            ]
        );
        let n1 = parse(
            "npm",
            r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(n1.len(), 2);

        let y = parse("yarn", "# yarn lockfile v1\n\n\"@scope/x@^1.0.0\", \"@scope/x@^1.1.0\":\n  version \"1.2.0\"\n  resolved \"…\"\n\nminimist@^1.2.0:\n  version \"1.2.5\"\n", "yarn.lock").unwrap();
        assert_eq!(
            names(&y),
            [
                "@scope/x|1.2.0|pkg:npm/%40scope/x@1.2.0",
                "minimist|1.2.5|pkg:npm/minimist@1.2.5"
            ]
        );
        let yb = parse("yarn", "__metadata:\n  version: 6\n\n\"left-pad@npm:^1.3.0\":\n  version: 1.3.0\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n", "yarn.lock").unwrap();
        assert_eq!(names(&yb), ["left-pad|1.3.0|pkg:npm/left-pad@1.3.0"]);

        let r = parse("requirements", "# pins\nDjango==3.2.0 --hash=sha256:abc\nrequests[socks]==2.19.0 ; python_version > '3'\nflask>=2\n-r other.txt\nZope.Interface===5.0\n", "requirements.txt").unwrap();
        assert_eq!(
            names(&r),
            [
                "django|3.2.0|pkg:pypi/django@3.2.0",
                "requests|2.19.0|pkg:pypi/requests@2.19.0",
                "zope-interface|5.0|pkg:pypi/zope-interface@5.0"
            ]
        );
        let p = parse(
            "poetry",
            "[[package]]\nname = \"PyYAML\"\nversion = \"5.3\"\n",
            "poetry.lock",
        )
        .unwrap();
        assert_eq!(names(&p), ["pyyaml|5.3|pkg:pypi/pyyaml@5.3"]);
        let g = parse(
            "gosum",
            "golang.org/x/text v0.3.7 h1:abc=\ngolang.org/x/text v0.3.7/go.mod h1:def=\n",
            "go.sum",
        )
        .unwrap();
        assert_eq!(
            names(&g),
            ["golang.org/x/text|v0.3.7|pkg:golang/golang.org/x/text@v0.3.7"]
        );
        assert!(parse("cargo", "not [toml", "Cargo.lock").is_err());
        assert_eq!(kind("requirements-dev.txt"), Some("requirements"));
        assert_eq!(kind("README.md"), None);
    }
}
