//! Evidence bundles: a zip of the sections the running areas provide
//! ([`crate::area::Evidence`]) and `evidence.json`, which lists every section (a section
//! whose area is not installed says so), the SHA-256 of every file, the period and the
//! audit tree head, signed with the compliance area's Ed25519 key.
//!
//! [`verify_bundle`] checks a bundle offline (`echopilot evidence verify FILE.zip`): the
//! signature, every file's hash, no file left out or added, and the audit section's proofs
//! (each record's inclusion in the signed tree head, the head's consistency with an earlier
//! signed head, both heads' signatures).

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{Compliance, Counters, EVIDENCE_EXPORTS_TOTAL};
use crate::app::AppState;
use crate::area::{EvidencePeriod, EvidenceRequest, EvidenceTooLarge};
use crate::audit::merkle::{self, Hash};
use crate::error::ApiError;
use crate::model::{AuditHead, AuditRecord};
use crate::util::{now_ms, rfc3339_ms};

/// `format` of `evidence.json`.
pub const FORMAT: &str = "echopilot-evidence/v1";
/// Prefix of the signed message: the tag, a newline, then the canonical JSON of
/// `evidence.json` without its `signature` member.
pub const SIGNATURE_TAG: &str = "echopilot-evidence:v1";
pub const MANIFEST: &str = "evidence.json";

/// The sections auditors expect, and the area that provides each. Others that areas
/// provide are included too.
pub const EXPECTED: &[(&str, &str)] = &[
    ("audit", "audit"),
    ("access_review", "keys"),
    ("change_log", "ops"),
    ("security", "security"),
    ("dr", "dr"),
    ("slo", "slo"),
];

/// A built bundle.
pub struct Bundle {
    pub zip: Vec<u8>,
    pub manifest: Value,
    pub file_name: String,
}

/// The bytes the signature covers.
pub fn signed_message(manifest: &Value) -> String {
    let mut m = manifest.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("signature");
    }
    format!("{SIGNATURE_TAG}\n{}", crate::audit::canonical_json(&m))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Why a section is missing, for `evidence.json`.
async fn not_installed(state: &AppState, area: &str, tenant: &str) -> (String, String) {
    match crate::area::find(area) {
        None => (
            "not_installed".into(),
            format!("the {area} area is not part of this build"),
        ),
        Some(_) if !state.area_running(area) => (
            "not_installed".into(),
            format!("the {area} module is turned off for the fleet (`[modules] {area} = false`)"),
        ),
        Some(_) => {
            let off = match state.service::<crate::marketplace::Marketplace>() {
                Some(m) => !m.enabled(tenant, area).await.unwrap_or(true),
                None => false,
            };
            if off {
                (
                    "disabled".into(),
                    format!("the {area} module is disabled for tenant {tenant:?}"),
                )
            } else {
                (
                    "not_provided".into(),
                    format!("the {area} area runs but provides no evidence section"),
                )
            }
        }
    }
}

impl Compliance {
    /// Build the bundle for the caller's tenant and period; audited as
    /// `compliance.evidence.export` with the manifest's hash.
    pub async fn export_evidence(
        &self,
        state: &AppState,
        req: &EvidenceRequest,
    ) -> Result<Bundle, ApiError> {
        let tenant = req.tenant.as_str();
        // Which module areas are off for this tenant: their sections say so.
        let mut providers = Vec::new();
        for a in state.areas() {
            let disabled = if a.is_module() {
                match state.service::<crate::marketplace::Marketplace>() {
                    Some(m) => !m.enabled(tenant, a.name()).await?,
                    None => false,
                }
            } else {
                false
            };
            for e in a.evidence() {
                providers.push((a.name(), disabled, e));
            }
        }
        let mut sections = Map::new();
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut tree_head = Value::Null;
        for (area, disabled, p) in &providers {
            let name = p.section();
            if *disabled {
                sections.insert(
                    name.into(),
                    json!({"status": "disabled", "area": area, "about": p.about(),
                           "reason": format!("the {area} module is disabled for tenant {tenant:?}")}),
                );
                continue;
            }
            match p.collect(state, req).await {
                Ok(s) => {
                    let mut names = Vec::new();
                    for (f, bytes) in s.files {
                        let path = format!("{name}/{f}");
                        names.push(path.clone());
                        files.insert(path, bytes);
                    }
                    if name == "audit" {
                        tree_head = s.facts.get("tree_head").cloned().unwrap_or(Value::Null);
                    }
                    sections.insert(
                        name.into(),
                        json!({"status": "included", "area": area, "about": p.about(),
                               "files": names, "facts": s.facts}),
                    );
                }
                Err(e) => {
                    if let Some(big) = e.downcast_ref::<EvidenceTooLarge>() {
                        return Err(ApiError::Unprocessable(big.0.clone()));
                    }
                    tracing::error!(target: "compliance", section = name, area, error = %format!("{e:#}"), request_id = %req.request_id, "evidence section failed");
                    sections.insert(
                        name.into(),
                        json!({"status": "error", "area": area, "about": p.about(),
                               "reason": "collecting this section failed; see the server log for this request id"}),
                    );
                }
            }
        }
        for (name, area) in EXPECTED {
            if !sections.contains_key(*name) {
                let (status, reason) = not_installed(state, area, tenant).await;
                sections.insert(
                    (*name).into(),
                    json!({"status": status, "area": area, "reason": reason}),
                );
            }
        }
        let now = now_ms();
        let file_list: Map<String, Value> = files
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({"sha256": sha256_hex(v), "bytes": v.len()}),
                )
            })
            .collect();
        let mut manifest = json!({
            "format": FORMAT,
            "tenant": tenant,
            "period": {
                "from": rfc3339_ms(req.period.from_ms),
                "to": rfc3339_ms(req.period.to_ms),
                "from_ms": req.period.from_ms,
                "to_ms": req.period.to_ms,
            },
            "generated_at": rfc3339_ms(now),
            "generated_by": req.actor,
            "request_id": req.request_id,
            "echopilot_version": env!("CARGO_PKG_VERSION"),
            "tree_head": tree_head,
            "sections": sections,
            "files": file_list,
            "public_key": self.evidence_public_key(),
        });
        let sig = self.evidence_key.sign(signed_message(&manifest).as_bytes());
        manifest["signature"] = Value::String(hex::encode(sig.to_bytes()));
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(ApiError::internal)?;
        let zip = write_zip(&files, &manifest_bytes).map_err(ApiError::internal)?;
        let day = |ms: i64| rfc3339_ms(ms)[..10].replace('-', "");
        let file_name = format!(
            "evidence-{tenant}-{}-{}.zip",
            day(req.period.from_ms),
            day(req.period.to_ms)
        );
        let rec = crate::audit::NewAudit::new(
            tenant,
            &req.actor,
            "compliance.evidence.export",
            &file_name,
            "ok",
            &req.request_id,
        )
        .detail(json!({
            "from": rfc3339_ms(req.period.from_ms),
            "to": rfc3339_ms(req.period.to_ms),
            "evidence_sha256": sha256_hex(&manifest_bytes),
            "zip_sha256": sha256_hex(&zip),
            "files": files.len(),
        }));
        crate::audit::record(&self.store, rec).await?;
        Counters::bump(&self.counters.evidence_exports);
        metrics::counter!(EVIDENCE_EXPORTS_TOTAL).increment(1);
        tracing::info!(target: "compliance", tenant_id = tenant, key_id = %req.actor, file = %file_name, files = files.len(), bytes = zip.len(), "evidence bundle exported");
        Ok(Bundle {
            zip,
            manifest,
            file_name,
        })
    }
}

fn write_zip(
    files: &BTreeMap<String, Vec<u8>>,
    manifest: &[u8],
) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (name, bytes) in files {
        w.start_file(name.as_str(), opts)?;
        w.write_all(bytes)?;
    }
    w.start_file(MANIFEST, opts)?;
    w.write_all(manifest)?;
    Ok(w.finish()?.into_inner())
}

/// What [`verify_bundle`] found.
#[derive(Debug, Default)]
pub struct Verified {
    /// One line per check that passed.
    pub checks: Vec<String>,
    pub manifest: Value,
}

fn hash_of(hex_str: &str, what: &str) -> Result<Hash, String> {
    hex::decode(hex_str)
        .ok()
        .and_then(|b| Hash::try_from(b.as_slice()).ok())
        .ok_or_else(|| format!("{what} is not 64 hex characters"))
}

fn head_of(v: &Value, what: &str) -> Result<AuditHead, String> {
    let h: AuditHead =
        serde_json::from_value(v.clone()).map_err(|e| format!("{what} is malformed: {e}"))?;
    if !crate::audit::heads::signature_ok(&h) {
        return Err(format!(
            "{what} (size {}, signed {}) does not carry a valid signature",
            h.tree_size, h.timestamp
        ));
    }
    Ok(h)
}

/// Check a bundle offline. `pinned_key`: the evidence public key (hex) the bundle must be
/// signed with; `pinned_audit_key`: the audit head key its tree head must be signed with.
/// Without them the keys inside the bundle are used (say so to the reader).
pub fn verify_bundle(
    zip_bytes: &[u8],
    pinned_key: Option<&str>,
    pinned_audit_key: Option<&str>,
) -> Result<Verified, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive
            .by_index(i)
            .map_err(|e| format!("zip entry {i} is unreadable: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let name = f
            .name()
            .map_err(|e| format!("zip entry {i} has an unreadable name: {e}"))?
            .to_string();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| format!("{name}: cannot read (corrupt or changed): {e}"))?;
        if entries.insert(name.clone(), buf).is_some() {
            return Err(format!("{name} appears twice in the zip"));
        }
    }
    let mut out = Verified::default();
    let manifest_bytes = entries
        .remove(MANIFEST)
        .ok_or_else(|| format!("no {MANIFEST} in the zip"))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("{MANIFEST} is not JSON: {e}"))?;
    if manifest["format"] != FORMAT {
        return Err(format!("{MANIFEST}: format is not {FORMAT}"));
    }
    // Signature.
    let pk_hex = manifest["public_key"]
        .as_str()
        .ok_or_else(|| format!("{MANIFEST} has no public_key"))?;
    if let Some(p) = pinned_key {
        if !p.trim().eq_ignore_ascii_case(pk_hex) {
            return Err(format!(
                "{MANIFEST} is signed by key {pk_hex}, not by the pinned key {}",
                p.trim()
            ));
        }
    }
    let pk = hex::decode(pk_hex)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| format!("{MANIFEST}: public_key is not an Ed25519 key"))?;
    let sig = manifest["signature"]
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| format!("{MANIFEST} has no well-formed signature"))?;
    pk.verify_strict(signed_message(&manifest).as_bytes(), &sig)
        .map_err(|_| format!("{MANIFEST}: the signature does not match its contents"))?;
    out.checks.push(format!(
        "{MANIFEST} signature valid (Ed25519, key {pk_hex}{})",
        if pinned_key.is_some() {
            ", pinned"
        } else {
            ", from the bundle: pin it with --public-key"
        }
    ));
    // Files: exactly the listed ones, each with its hash.
    let listed = manifest["files"]
        .as_object()
        .ok_or_else(|| format!("{MANIFEST} has no files"))?;
    for (name, meta) in listed {
        let bytes = entries
            .get(name)
            .ok_or_else(|| format!("{name} is listed in {MANIFEST} but missing from the zip"))?;
        let want = meta["sha256"].as_str().unwrap_or_default();
        let got = sha256_hex(bytes);
        if got != want {
            return Err(format!(
                "{name}: SHA-256 {got} does not match {want} in {MANIFEST} (changed)"
            ));
        }
    }
    if let Some(extra) = entries.keys().find(|k| !listed.contains_key(*k)) {
        return Err(format!(
            "{extra} is in the zip but not listed in {MANIFEST}"
        ));
    }
    out.checks.push(format!(
        "{} files match their SHA-256 in {MANIFEST}; no file missing or added",
        listed.len()
    ));
    // Sections name only listed files.
    let sections = manifest["sections"]
        .as_object()
        .ok_or_else(|| format!("{MANIFEST} has no sections"))?;
    for (name, s) in sections {
        for f in s["files"].as_array().into_iter().flatten() {
            let f = f.as_str().unwrap_or_default();
            if !listed.contains_key(f) {
                return Err(format!(
                    "section {name} names {f}, which is not in the bundle"
                ));
            }
        }
        let status = s["status"].as_str().unwrap_or("?");
        let line = match status {
            "included" => format!(
                "section {name}: included ({} files)",
                s["files"].as_array().map_or(0, |a| a.len())
            ),
            other => format!(
                "section {name}: {other} — {}",
                s["reason"].as_str().unwrap_or("")
            ),
        };
        out.checks.push(line);
    }
    if sections
        .get("audit")
        .is_some_and(|s| s["status"] == "included")
    {
        verify_audit(&manifest, &entries, pinned_audit_key, &mut out.checks)?;
    }
    out.manifest = manifest;
    Ok(out)
}

/// The audit section: records inside the period and tenant, each included in the signed
/// head; the head consistent with the earlier signed head.
fn verify_audit(
    manifest: &Value,
    entries: &BTreeMap<String, Vec<u8>>,
    pinned_audit_key: Option<&str>,
    checks: &mut Vec<String>,
) -> Result<(), String> {
    let proofs: Value = serde_json::from_slice(
        entries
            .get("audit/proofs.json")
            .ok_or("the audit section has no audit/proofs.json")?,
    )
    .map_err(|e| format!("audit/proofs.json is not JSON: {e}"))?;
    let head = head_of(&proofs["tree_head"], "the tree head")?;
    if let Some(p) = pinned_audit_key {
        if !p.trim().eq_ignore_ascii_case(&head.public_key) {
            return Err(format!(
                "the tree head is signed by {}, not by the pinned audit key {}",
                head.public_key,
                p.trim()
            ));
        }
    }
    if manifest["tree_head"] != proofs["tree_head"] {
        return Err(format!(
            "the tree head in {MANIFEST} differs from the one in audit/proofs.json"
        ));
    }
    let root = hash_of(&head.root, "the tree head's root")?;
    checks.push(format!(
        "tree head signature valid (size {}, signed {}, key {})",
        head.tree_size, head.timestamp, head.public_key
    ));
    let tenant = manifest["tenant"].as_str().unwrap_or_default();
    let period = EvidencePeriod {
        from_ms: manifest["period"]["from_ms"].as_i64().unwrap_or(i64::MAX),
        to_ms: manifest["period"]["to_ms"].as_i64().unwrap_or(i64::MIN),
    };
    let inclusion: BTreeMap<i64, Vec<String>> = proofs["inclusion"]
        .as_object()
        .ok_or("audit/proofs.json has no inclusion proofs")?
        .iter()
        .map(|(k, v)| {
            let seq = k
                .parse::<i64>()
                .map_err(|_| format!("inclusion proof key {k:?} is not a seq"))?;
            let p: Vec<String> = serde_json::from_value(v.clone())
                .map_err(|_| format!("inclusion proof of {seq} is malformed"))?;
            Ok((seq, p))
        })
        .collect::<Result<_, String>>()?;
    let records = entries
        .get("audit/records.ndjson")
        .ok_or("the audit section has no audit/records.ndjson")?;
    let text = std::str::from_utf8(records).map_err(|_| "audit/records.ndjson is not UTF-8")?;
    let mut n = 0usize;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: AuditRecord = serde_json::from_str(line)
            .map_err(|e| format!("audit/records.ndjson line {}: {e}", i + 1))?;
        if r.tenant_id != tenant {
            return Err(format!(
                "audit record {} belongs to tenant {:?}",
                r.seq, r.tenant_id
            ));
        }
        let ts = chrono::DateTime::parse_from_rfc3339(&r.ts)
            .map(|t| t.timestamp_millis())
            .map_err(|_| format!("audit record {}: ts {:?} is not RFC 3339", r.seq, r.ts))?;
        if !period.contains(ts) {
            return Err(format!(
                "audit record {} ({}) is outside the period",
                r.seq, r.ts
            ));
        }
        let proof = inclusion
            .get(&r.seq)
            .ok_or_else(|| format!("audit record {} has no inclusion proof", r.seq))?
            .iter()
            .map(|h| hash_of(h, "an inclusion proof node"))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = merkle::leaf_hash(crate::audit::leaf_string(&r).as_bytes());
        if r.seq < 0
            || !merkle::verify_inclusion(&leaf, r.seq as u64, head.tree_size as u64, &proof, &root)
        {
            return Err(format!(
                "audit record {} is not included in the signed tree head (changed?)",
                r.seq
            ));
        }
        n += 1;
    }
    if n != inclusion.len() {
        return Err(format!(
            "audit/proofs.json has {} inclusion proofs for {n} records",
            inclusion.len()
        ));
    }
    let expected = manifest["sections"]["audit"]["facts"]["records"].as_u64();
    if expected != Some(n as u64) {
        return Err(format!(
            "{MANIFEST} says {expected:?} audit records, audit/records.ndjson has {n}"
        ));
    }
    checks.push(format!(
        "{n} audit records of tenant {tenant} in the period, each included in the tree head (RFC 9162 inclusion proofs)"
    ));
    match &proofs["consistency"] {
        Value::Null => checks
            .push("no earlier signed head to prove consistency from (the log's first head)".into()),
        c => {
            let base = head_of(&c["from_head"], "the earlier tree head")?;
            let proof: Vec<Hash> = c["proof"]
                .as_array()
                .ok_or("the consistency proof is malformed")?
                .iter()
                .map(|h| hash_of(h.as_str().unwrap_or_default(), "a consistency proof node"))
                .collect::<Result<_, _>>()?;
            let base_root = hash_of(&base.root, "the earlier head's root")?;
            let (m, n) = (base.tree_size as u64, head.tree_size as u64);
            let ok = if m == 0 {
                base_root == merkle::empty_root()
            } else {
                m <= n && merkle::verify_consistency(m, n, &proof, &base_root, &root)
            };
            if !ok {
                return Err(format!(
                    "the tree head (size {n}) is not consistent with the earlier head #{} (size {m})",
                    base.id
                ));
            }
            checks.push(format!(
                "tree head consistent with the earlier signed head #{} (size {m}, signed {}): the log only appended",
                base.id, base.timestamp
            ));
        }
    }
    Ok(())
}
