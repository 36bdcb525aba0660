//! The audit area's parts of compliance requests: the `audit` evidence section (the
//! tenant's records of a period with a freshly signed tree head, an inclusion proof of
//! each record and a consistency proof from the last head signed before the period) and
//! GDPR (records naming a subject are exported; they are kept on delete, see [`AuditGdpr`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::heads::{self, Heads};
use super::{merkle, row_to_record, with_nodes, RECORD_COLS};
use crate::app::{AppState, BoxFuture};
use crate::area::{
    Evidence, EvidenceRequest, EvidenceSection, EvidenceTooLarge, Gdpr, GdprErasure, GdprExport,
    GdprRequest,
};
use crate::model::{AuditHead, AuditRecord};
use crate::store::Store;
use crate::util::rfc3339_ms;

/// Records of `tenant` stamped within `[from_ms, to_ms]` with `seq < below`, optionally of
/// one action, ascending; at most `limit`. (`ts` is the RFC 3339 text of the leaf, which
/// sorts as time: one format, UTC, milliseconds.)
pub async fn records_between(
    store: &Store,
    tenant: &str,
    from_ms: i64,
    to_ms: i64,
    action: Option<&str>,
    below: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {RECORD_COLS} FROM audit_log WHERE tenant_id = $1 AND ts >= $2 AND ts <= $3 \
         AND seq < $4 AND ($5 = '' OR action = $5) ORDER BY seq LIMIT $6"
    ))
    .bind(tenant)
    .bind(rfc3339_ms(from_ms))
    .bind(rfc3339_ms(to_ms))
    .bind(below)
    .bind(action.unwrap_or(""))
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(row_to_record).collect()
}

/// Inclusion proofs of `seqs` in the tree of `size`, reading the stored nodes once.
pub async fn inclusion_proofs(
    store: &Store,
    seqs: &[i64],
    size: i64,
) -> Result<Vec<Vec<merkle::Hash>>, sqlx::Error> {
    let n = size as u64;
    with_nodes(store, |f| {
        seqs.iter()
            .map(|s| merkle::inclusion_proof(*s as u64, n, f))
            .collect::<Vec<_>>()
    })
    .await
}

/// Records of `tenant` that name `subject`: as actor, as target, or as a string value in
/// `detail` (e.g. a key's label in `keys.create`).
pub async fn records_about(
    store: &Store,
    tenant: &str,
    subject: &str,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {RECORD_COLS} FROM audit_log WHERE tenant_id = $1 \
         AND (actor = $2 OR target = $2 OR {}) ORDER BY seq LIMIT $4",
        store.contains_sql("detail", "$3")
    ))
    .bind(tenant)
    .bind(subject)
    .bind(Value::String(subject.to_string()).to_string())
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(row_to_record).collect()
}

/// The evidence section `audit`.
pub struct AuditEvidence;

impl Evidence for AuditEvidence {
    fn section(&self) -> &'static str {
        "audit"
    }
    fn about(&self) -> &'static str {
        "the tenant's audit records of the period (NDJSON), a tree head signed for this bundle, an RFC 9162 inclusion proof of each record and a consistency proof from the last head signed before the period"
    }
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>> {
        Box::pin(async move {
            let store = &state.store;
            let heads = state.require::<Heads>("compliance", "audit")?;
            // A head of its own, so it covers every record up to the export.
            let head = heads.publish(store).await?;
            let p = req.period;
            let records = records_between(
                store,
                &req.tenant,
                p.from_ms,
                p.to_ms,
                None,
                head.tree_size,
                req.max_records + 1,
            )
            .await?;
            if records.len() as i64 > req.max_records {
                return Err(EvidenceTooLarge(format!(
                    "the period holds more than {} audit records of tenant {} ([compliance] evidence_max_records); export a shorter period",
                    req.max_records, req.tenant
                ))
                .into());
            }
            let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
            let proofs = inclusion_proofs(store, &seqs, head.tree_size).await?;
            let inclusion: serde_json::Map<String, Value> = seqs
                .iter()
                .zip(&proofs)
                .map(|(s, p)| {
                    (
                        s.to_string(),
                        Value::Array(p.iter().map(|h| Value::String(hex::encode(h))).collect()),
                    )
                })
                .collect();
            let base = match heads::latest_at_or_before(store, p.from_ms).await? {
                Some(h) => Some(h),
                None => heads::oldest(store).await?,
            }
            .filter(|b| b.id != head.id);
            let consistency = match &base {
                Some(b) if b.tree_size >= 1 => {
                    let c = super::consistency(store, b.tree_size, head.tree_size)
                        .await
                        .map_err(|e| anyhow::anyhow!("consistency proof: {e}"))?;
                    json!({"from_head": b, "proof": c.proof})
                }
                Some(b) => json!({"from_head": b, "proof": []}),
                None => Value::Null,
            };
            let mut ndjson = Vec::new();
            for r in &records {
                serde_json::to_writer(&mut ndjson, r)?;
                ndjson.push(b'\n');
            }
            let proofs_file = json!({
                "tree_head": head,
                "inclusion": inclusion,
                "consistency": consistency,
                "how_to_verify": "leaf = canonical JSON of the record (docs/AUDIT.md); RFC 9162 2.1.3.2 inclusion of SHA-256(0x00||leaf) at index seq in a tree of tree_head.tree_size against tree_head.root; RFC 9162 2.1.4.2 consistency from consistency.from_head to tree_head",
            });
            let mut by_action: BTreeMap<&str, u64> = BTreeMap::new();
            let mut denied = 0;
            for r in &records {
                *by_action.entry(r.action.as_str()).or_default() += 1;
                if r.outcome == "denied" {
                    denied += 1;
                }
            }
            Ok(EvidenceSection {
                files: vec![
                    ("records.ndjson".into(), ndjson),
                    (
                        "proofs.json".into(),
                        serde_json::to_vec_pretty(&proofs_file)?,
                    ),
                ],
                facts: json!({
                    "records": records.len(),
                    "denied": denied,
                    "by_action": by_action,
                    "tree_head": head,
                    "consistency_from_head": base.as_ref().map(|b: &AuditHead| b.id),
                }),
            })
        })
    }
}

/// GDPR: audit records are exported when they name the subject, and **kept** on delete.
/// The log is append-only by design: each record is a leaf of the RFC 6962 tree, so
/// rewriting one would break every receipt and signed head after it — the tamper evidence
/// the log exists for. Records hold key ids (pseudonymous), actions and request ids; a
/// key's label appears in its `keys.create` record. Keeping them is the legal-obligation
/// and legal-claims exception (GDPR art. 17(3)(b), (e)); COMPLIANCE.md says so.
pub struct AuditGdpr;

pub const KEPT_NOTE: &str = "audit records are kept: the log is append-only (RFC 6962 Merkle tree; rewriting a record would break every proof after it) and serves as security evidence (GDPR art. 17(3)(b), (e)); they hold key ids and actions, and a key's label in its keys.create record";

impl Gdpr for AuditGdpr {
    fn about(&self) -> &'static str {
        "audit records whose actor or target is the subject, or whose detail holds it as a string value"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let records = records_about(&state.store, &req.tenant, &req.subject, 10_000).await?;
            Ok(GdprExport {
                records: records.len() as u64,
                notes: if records.is_empty() {
                    Vec::new()
                } else {
                    vec![KEPT_NOTE.to_string()]
                },
                data: json!({ "records": records }),
            })
        })
    }
    fn delete<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprErasure>> {
        Box::pin(async move {
            let n = records_about(&state.store, &req.tenant, &req.subject, 10_000)
                .await?
                .len();
            let mut e = GdprErasure::default();
            if n > 0 {
                e.kept.push(format!("{n} {KEPT_NOTE}"));
            }
            Ok(e)
        })
    }
}
