//! The keys area's parts of compliance requests: the `access_review` evidence section
//! (every key of the tenant that existed in the period: role, label, created, last used,
//! revoked; and the revocations of the period) and GDPR (a key's label is the one personal
//! field: keys labelled with the subject are exported, and their label cleared on delete —
//! the key itself stays, so access reviews and audit records keep pointing at it).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::app::{AppState, BoxFuture};
use crate::area::{
    Erase, Evidence, EvidenceRequest, EvidenceSection, Gdpr, GdprErasure, GdprExport, GdprRequest,
};
use crate::model::KeyInfo;

fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .unwrap_or(i64::MAX)
}

pub struct AccessReview;

impl Evidence for AccessReview {
    fn section(&self) -> &'static str {
        "access_review"
    }
    fn about(&self) -> &'static str {
        "the tenant's API keys that existed in the period (role, label, created, last used, revoked) and the revocations of the period"
    }
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>> {
        Box::pin(async move {
            let p = req.period;
            let mut keys: Vec<KeyInfo> = super::list_keys(&state.store, Some(&req.tenant))
                .await?
                .into_iter()
                // Created by the end of the period and not revoked before it began.
                .filter(|k| ms(&k.created_at) <= p.to_ms)
                .filter(|k| k.revoked_at.as_deref().is_none_or(|r| ms(r) >= p.from_ms))
                .collect();
            keys.sort_by(|a, b| a.id.cmp(&b.id));
            let mut by_role: BTreeMap<String, u64> = BTreeMap::new();
            let (mut active, mut never_used) = (0, 0);
            let rows: Vec<Value> = keys
                .iter()
                .map(|k| {
                    let revoked = k.revoked_at.as_deref().is_some_and(|r| ms(r) <= p.to_ms);
                    if !revoked {
                        active += 1;
                        *by_role.entry(k.role.to_string()).or_default() += 1;
                    }
                    if k.last_used_at.is_none() {
                        never_used += 1;
                    }
                    json!({
                        "id": k.id, "role": k.role, "name": k.name,
                        "created_at": k.created_at, "last_used_at": k.last_used_at,
                        "revoked_at": k.revoked_at,
                        "status": if revoked { "revoked" } else { "active" },
                    })
                })
                .collect();
            let revocations: Vec<Value> = keys
                .iter()
                .filter(|k| k.revoked_at.as_deref().is_some_and(|r| p.contains(ms(r))))
                .map(|k| json!({"id": k.id, "role": k.role, "name": k.name, "revoked_at": k.revoked_at}))
                .collect();
            Ok(EvidenceSection {
                facts: json!({
                    "keys": rows.len(),
                    "active_at_end": active,
                    "active_by_role": by_role,
                    "never_used": never_used,
                    "revoked_in_period": revocations.len(),
                }),
                files: vec![
                    ("keys.json".into(), serde_json::to_vec_pretty(&rows)?),
                    (
                        "revocations.json".into(),
                        serde_json::to_vec_pretty(&revocations)?,
                    ),
                ],
            })
        })
    }
}

pub struct KeysGdpr;

impl Gdpr for KeysGdpr {
    fn about(&self) -> &'static str {
        "API keys whose label (name) is the subject; delete clears the label, the key stays"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let keys: Vec<KeyInfo> = super::list_keys(&state.store, Some(&req.tenant))
                .await?
                .into_iter()
                .filter(|k| k.name.as_deref() == Some(req.subject.as_str()))
                .collect();
            Ok(GdprExport {
                records: keys.len() as u64,
                data: json!({ "keys": keys }),
                notes: Vec::new(),
            })
        })
    }
    fn delete<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprErasure>> {
        Box::pin(async move {
            let sql = "UPDATE api_keys SET name = NULL WHERE tenant_id = $1 AND name = $2";
            Ok(req
                .erase(
                    &state.store,
                    "keys",
                    &[("key_labels", Erase::Anonymise, sql)],
                )
                .await?)
        })
    }
}
