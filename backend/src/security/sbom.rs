//! CycloneDX 1.5 JSON: the packages as components (purl as bom-ref) and the matched
//! advisories as vulnerabilities. Checked against the official 1.5 schema in
//! `tests/security_e2e.rs` (the schema ships in `cyclonedx-python-lib`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::model::{Package, Severity, Vulnerability};

pub const SPEC_VERSION: &str = "1.5";
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json; version=1.5";

/// The BOM of `packages` and `vulns`, for a subject called `name`.
pub fn build(name: &str, created_at: &str, packages: &[Package], vulns: &[Vulnerability]) -> Value {
    let mut components: BTreeMap<&str, Value> = BTreeMap::new();
    for p in packages {
        components.entry(p.purl.as_str()).or_insert_with(|| {
            json!({
                "type": "library",
                "bom-ref": p.purl,
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "properties": [{"name": "echopilot:lockfile", "value": p.source}],
            })
        });
    }
    let mut by_id: BTreeMap<&str, (&Vulnerability, Vec<&str>)> = BTreeMap::new();
    for v in vulns {
        let e = by_id.entry(v.id.as_str()).or_insert((v, Vec::new()));
        if !e.1.contains(&v.purl.as_str()) {
            e.1.push(v.purl.as_str());
        }
    }
    let vulnerabilities: Vec<Value> = by_id
        .values()
        .map(|(v, refs)| {
            let mut rating = json!({"severity": severity(v.severity)});
            if let Some(s) = v.cvss_score {
                rating["score"] = json!(s);
            }
            let mut out = json!({
                "bom-ref": format!("vuln:{}", v.id),
                "id": v.id,
                "source": {"name": "OSV", "url": format!("https://osv.dev/vulnerability/{}", v.id)},
                "ratings": [rating],
                "affects": refs.iter().map(|r| json!({"ref": r})).collect::<Vec<_>>(),
            });
            if !v.summary.is_empty() {
                out["description"] = json!(v.summary);
            }
            if !v.fixed.is_empty() {
                out["recommendation"] = json!(format!("upgrade to {}", v.fixed.join(" or ")));
            }
            let refs: Vec<Value> = v
                .aliases
                .iter()
                .map(|a| json!({"id": a, "source": {"name": if a.starts_with("CVE-") {"NVD"} else {"OSV"}}}))
                .collect();
            if !refs.is_empty() {
                out["references"] = json!(refs);
            }
            out
        })
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": {
            "timestamp": created_at,
            "tools": {"components": [{
                "type": "application",
                "name": "echopilot",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {"type": "application", "bom-ref": "subject", "name": name},
        },
        "components": components.into_values().collect::<Vec<_>>(),
        "vulnerabilities": vulnerabilities,
    })
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Unknown => "unknown",
    }
}
