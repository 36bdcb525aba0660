//! The ops area's parts of compliance requests: the `change_log` evidence section (every
//! confirmed ops command of the period with its reason, read from the audit log, where
//! `ops.confirm` records live for good — plans are kept a day only) and GDPR (the plans a
//! key made, matched by key id: exported, and deleted on request; they are short-lived
//! working state, the audit log keeps the accountable record).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::app::{AppState, BoxFuture};
use crate::area::{
    Erase, Evidence, EvidenceRequest, EvidenceSection, EvidenceTooLarge, Gdpr, GdprErasure,
    GdprExport, GdprRequest,
};
use crate::util::rfc3339_ms;

pub struct ChangeLog;

impl Evidence for ChangeLog {
    fn section(&self) -> &'static str {
        "change_log"
    }
    fn about(&self) -> &'static str {
        "confirmed ops commands of the period (verb, args, who, when, outcome, reason), from the audit log"
    }
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>> {
        Box::pin(async move {
            let p = req.period;
            let recs = crate::audit::compliance::records_between(
                &state.store,
                &req.tenant,
                p.from_ms,
                p.to_ms,
                Some("ops.confirm"),
                i64::MAX,
                req.max_records + 1,
            )
            .await?;
            if recs.len() as i64 > req.max_records {
                return Err(EvidenceTooLarge(format!(
                    "the period holds more than {} confirmed ops commands; export a shorter period",
                    req.max_records
                ))
                .into());
            }
            let mut out = Vec::new();
            let (mut high, mut failed, mut unexplained) = (0, 0, 0);
            let mut by_verb: BTreeMap<String, u64> = BTreeMap::new();
            for r in &recs {
                let d = &r.detail;
                let risk = d["risk"].as_str().unwrap_or("");
                let reason = d["reason"].as_str();
                if risk == "high" {
                    high += 1;
                    if reason.is_none_or(|s| s.trim().is_empty()) {
                        unexplained += 1;
                    }
                }
                if r.outcome != "ok" {
                    failed += 1;
                }
                *by_verb.entry(r.target.clone()).or_default() += 1;
                let line = json!({
                    "audit_seq": r.seq, "ts": r.ts, "actor": r.actor, "verb": r.target,
                    "outcome": r.outcome, "plan_id": d["plan_id"], "args": d["args"],
                    "risk": risk, "reason": reason, "error": d.get("error").cloned().unwrap_or(Value::Null),
                });
                serde_json::to_writer(&mut out, &line)?;
                out.push(b'\n');
            }
            Ok(EvidenceSection {
                files: vec![("change_log.ndjson".into(), out)],
                facts: json!({
                    "commands": recs.len(),
                    "high_risk": high,
                    "high_risk_without_reason": unexplained,
                    "failed": failed,
                    "by_verb": by_verb,
                }),
            })
        })
    }
}

pub struct OpsGdpr;

#[derive(sqlx::FromRow)]
struct PlanRow {
    plan_id: String,
    verb: String,
    args: String,
    created_at: i64,
    confirmed_at: Option<i64>,
    reason: Option<String>,
}

impl Gdpr for OpsGdpr {
    fn about(&self) -> &'static str {
        "ops command plans (kept a day) made by the key whose id is the subject"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let rows: Vec<PlanRow> = sqlx::query_as(
                "SELECT plan_id, verb, args, created_at, confirmed_at, reason FROM ops_plans \
                 WHERE tenant_id = $1 AND key_id = $2 ORDER BY created_at, plan_id",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(state.store.reader())
            .await
            .map_err(crate::store::in_table("ops_plans", None))?;
            let plans: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "plan_id": r.plan_id, "verb": r.verb,
                        "args": serde_json::from_str::<Value>(&r.args).unwrap_or(Value::String(r.args)),
                        "created_at": rfc3339_ms(r.created_at),
                        "confirmed_at": r.confirmed_at.map(rfc3339_ms), "reason": r.reason,
                    })
                })
                .collect();
            Ok(GdprExport {
                records: plans.len() as u64,
                data: json!({ "plans": plans }),
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
            let sql = "DELETE FROM ops_plans WHERE tenant_id = $1 AND key_id = $2";
            Ok(req
                .erase(&state.store, "ops", &[("plans", Erase::Delete, sql)])
                .await?)
        })
    }
}
