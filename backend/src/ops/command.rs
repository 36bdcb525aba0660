//! The dry-run → confirm protocol behind `POST /api/v1/ops/command`.
//!
//! Dry-run: validate args, compute the plan, store it (bound to key, tenant, verb,
//! canonical args and a fingerprint of the world) and audit `ops.dry_run`.
//! Confirm: load that plan, refuse (409) if it is foreign, expired, for other verb/args,
//! or if re-planning now yields a different fingerprint or summary; then claim it with one
//! conditional UPDATE (so concurrent confirms run it once), execute on a task of its own
//! (a client that hangs up cannot cut an execution in half), store the result and audit
//! `ops.confirm` in one transaction. A repeat confirm replays the stored first answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{schema, Ctx, Plan, Risk, VerbSpec};
use crate::app::AppState;
use crate::audit::{self, canonical_json, NewAudit};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::{in_table, Json};
use crate::util::{now_ms, random_id, rfc3339_ms};

/// How long a plan may be confirmed.
pub const PLAN_TTL_MS: i64 = 5 * 60 * 1000;
/// Plans are deleted this long after they were made.
const PLAN_KEEP_MS: i64 = 24 * 3600 * 1000;
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Verb name or alias (see `GET /api/v1/ops/verbs`).
    pub verb: String,
    /// Object matching the verb's args schema; omitted or null means `{}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub args: Value,
    /// false (default): dry-run, returns a plan. true: execute the plan named by `plan_id`.
    #[serde(default)]
    pub confirm: bool,
    /// Required with `confirm: true`: the `plan_id` of the dry-run being confirmed.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Why; required to confirm a high-risk verb. Recorded in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Answer to a dry-run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DryRunResponse {
    /// Always true.
    pub dry_run: bool,
    pub plan_id: String,
    pub verb: String,
    /// The args as they will be executed (defaults filled in).
    #[schema(value_type = Object)]
    pub args: Value,
    pub plan: Plan,
    pub risk: Risk,
    pub expires_at: String,
    /// Seq of the `ops.dry_run` audit record.
    pub audit_seq: i64,
}

/// Answer to a confirm (replayed unchanged for a repeat confirm of the same plan).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmResponse {
    /// Always false.
    pub dry_run: bool,
    pub plan_id: String,
    pub verb: String,
    #[schema(value_type = Object)]
    pub args: Value,
    /// What the verb returned.
    #[schema(value_type = Value)]
    pub result: Value,
    /// Seq of the `ops.confirm` audit record.
    pub audit_seq: i64,
    pub executed_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CommandResponse {
    DryRun(DryRunResponse),
    Confirmed(ConfirmResponse),
}

/// Hash of what a plan depends on; equal fingerprints mean "same plan, same world".
fn fingerprint(verb: &str, args: &Value, world: &Value) -> String {
    let doc = json!({"verb": verb, "args": args, "world": world});
    hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
}

fn ctx_for(
    state: &AppState,
    caller: &Caller,
    plan_id: Option<String>,
    reason: Option<String>,
) -> Ctx {
    Ctx {
        state: state.clone(),
        tenant: caller.tenant.clone(),
        key_id: caller.key_id.clone(),
        key_tenant: caller.key_tenant.clone(),
        role: caller.role,
        request_id: caller.request_id.clone(),
        plan_id,
        reason,
    }
}

/// Handle one `POST /api/v1/ops/command`.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    req: CommandRequest,
) -> ApiResult<CommandResponse> {
    let action = if req.confirm {
        "ops.confirm"
    } else {
        "ops.dry_run"
    };
    let Some(verb) = state.ops.resolve(req.verb.trim()) else {
        let known: Vec<String> = state.ops.specs().into_iter().map(|s| s.name).collect();
        tracing::warn!(target: "ops_console", key_id = %caller.key_id, verb = %req.verb.chars().take(64).collect::<String>(), action, "unknown ops verb");
        return Err(ApiError::BadRequest(format!(
            "unknown verb {:?}; known verbs: {}",
            req.verb.chars().take(64).collect::<String>(),
            known.join(", ")
        )));
    };
    let spec = verb.spec().clone();
    if caller.role.rank() < spec.min_role.rank() {
        deny_role(state, caller, action, &spec).await;
        return Err(ApiError::Forbidden(format!(
            "verb {} needs role {} or above; the key has role {}",
            spec.name, spec.min_role, caller.role
        )));
    }
    let args = schema::validate(&spec.args, &req.args)
        .map_err(|m| ApiError::Unprocessable(format!("verb {}: {m}", spec.name)))?;
    let reason = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if let Some(r) = &reason {
        if r.chars().count() > MAX_REASON_CHARS || r.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(format!(
                "reason must be at most {MAX_REASON_CHARS} printable characters"
            )));
        }
    }
    if req.confirm {
        confirm(state, caller, verb, &spec, args, req.plan_id, reason).await
    } else {
        if req.plan_id.is_some() {
            return Err(ApiError::Unprocessable(
                "plan_id is only accepted with confirm: true; a dry-run creates a new plan".into(),
            ));
        }
        dry_run(state, caller, verb, &spec, args, reason).await
    }
}

async fn deny_role(state: &AppState, caller: &Caller, action: &str, spec: &VerbSpec) {
    tracing::warn!(target: "ops_console", key_id = %caller.key_id, verb = %spec.name, action, role = %caller.role, required = %spec.min_role, "ops command denied: role");
    tracing::warn!(target: "security", key_id = %caller.key_id, action, verb = %spec.name, "access denied");
    let rec = NewAudit::new(
        &caller.tenant,
        &caller.key_id,
        action,
        &spec.name,
        "denied",
        &caller.request_id,
    )
    .detail(json!({"reason": "role", "role": caller.role, "required": spec.min_role}));
    if let Err(e) = audit::record(&state.store, rec).await {
        tracing::error!(target: "security", error = %e, "could not write denied-access audit record");
    }
}

async fn dry_run(
    state: &AppState,
    caller: &Caller,
    verb: std::sync::Arc<dyn super::Verb>,
    spec: &VerbSpec,
    args: Value,
    reason: Option<String>,
) -> ApiResult<CommandResponse> {
    let ctx = ctx_for(state, caller, None, reason.clone());
    let planned = verb.plan(&ctx, &args).await?;
    let fp = fingerprint(&spec.name, &args, &planned.world);
    let plan_id = random_id("plan_", 12);
    let now = now_ms();
    let expires = now + PLAN_TTL_MS;
    let plan_json = serde_json::to_string(&planned.plan).map_err(ApiError::internal)?;
    let store = &state.store;
    let mut tx = store.begin_write().await?;
    // Plans (and the results they replay) are kept a day: long past their 5-minute life,
    // and a tail_logs result is not meant to live on in the database.
    sqlx::query("DELETE FROM ops_plans WHERE tenant_id = $1 AND created_at < $2")
        .bind(&caller.tenant)
        .bind(now - PLAN_KEEP_MS)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ops_plans (plan_id, tenant_id, key_id, verb, args, plan, fingerprint, risk, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&plan_id)
    .bind(&caller.tenant)
    .bind(&caller.key_id)
    .bind(&spec.name)
    .bind(canonical_json(&args))
    .bind(&plan_json)
    .bind(&fp)
    .bind(spec.risk.as_str())
    .bind(now)
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    let rec = NewAudit::new(
        &caller.tenant,
        &caller.key_id,
        "ops.dry_run",
        &spec.name,
        "ok",
        &caller.request_id,
    )
    .detail(json!({
        "plan_id": plan_id,
        "args": args,
        "reason": reason,
        "risk": spec.risk,
        "summary": planned.plan.summary,
    }));
    let rec = audit::append(store, &mut tx, rec).await?;
    tx.commit().await?;
    tracing::info!(target: "ops_console", key_id = %caller.key_id, verb = %spec.name, plan_id = %plan_id, args = %canonical_json(&args), risk = spec.risk.as_str(), audit_seq = rec.seq, summary = %planned.plan.summary, "ops dry-run planned");
    Ok(CommandResponse::DryRun(DryRunResponse {
        dry_run: true,
        plan_id,
        verb: spec.name.clone(),
        args,
        plan: planned.plan,
        risk: spec.risk,
        expires_at: rfc3339_ms(expires),
        audit_seq: rec.seq,
    }))
}

/// An `ops_plans` row. `args` stays text: it is compared with the canonical JSON of the
/// confirm's args, byte for byte.
#[derive(sqlx::FromRow)]
struct PlanRow {
    tenant_id: String,
    key_id: String,
    verb: String,
    args: String,
    plan: Json<Plan>,
    fingerprint: String,
    #[allow(dead_code)] // decoded so a corrupt risk is reported, not ignored
    risk: Risk,
    expires_at: i64,
    confirmed_at: Option<i64>,
    result: Option<Json<Value>>,
    result_status: Option<i64>,
}

async fn load_plan(state: &AppState, plan_id: &str) -> ApiResult<Option<PlanRow>> {
    // Autocommit read: sees every committed claim and result (WAL readers on SQLite).
    let row = sqlx::query_as::<_, PlanRow>(
        "SELECT tenant_id, key_id, verb, args, plan, fingerprint, risk, expires_at, confirmed_at, \
         result, result_status FROM ops_plans WHERE plan_id = $1",
    )
    .bind(plan_id)
    .fetch_optional(state.store.reader())
    .await
    .map_err(in_table("ops_plans", Some(&plan_id)))?;
    Ok(row)
}

async fn confirm(
    state: &AppState,
    caller: &Caller,
    verb: std::sync::Arc<dyn super::Verb>,
    spec: &VerbSpec,
    args: Value,
    plan_id: Option<String>,
    reason: Option<String>,
) -> ApiResult<CommandResponse> {
    if spec.risk == Risk::High && reason.is_none() {
        return Err(ApiError::Unprocessable(format!(
            "verb {} is high-risk: confirming it needs a non-empty \"reason\"",
            spec.name
        )));
    }
    let Some(plan_id) = plan_id.filter(|p| !p.is_empty() && p.len() <= 64) else {
        return Err(ApiError::Unprocessable(
            "confirm: true needs the \"plan_id\" returned by the dry-run".into(),
        ));
    };
    let reject = |why: String| {
        tracing::warn!(target: "ops_console", key_id = %caller.key_id, verb = %spec.name, plan_id = %plan_id, why = %why, "ops confirm refused");
        ApiError::Conflict(format!(
            "{why}; run the dry-run again and confirm the new plan"
        ))
    };
    let Some(row) = load_plan(state, &plan_id).await? else {
        return Err(reject(format!("there is no plan {plan_id:?}")));
    };
    // A foreign plan is reported like a missing one: its existence is not the caller's business.
    if row.tenant_id != caller.tenant || row.key_id != caller.key_id {
        return Err(reject(format!(
            "plan {plan_id:?} was not made by this key for this tenant"
        )));
    }
    let args_c = canonical_json(&args);
    if row.verb != spec.name || row.args != args_c {
        return Err(reject(format!(
            "plan {plan_id:?} was made for verb {} with args {}, not verb {} with args {args_c}",
            row.verb, row.args, spec.name
        )));
    }
    if row.confirmed_at.is_some() {
        return replay(state, &plan_id, row).await;
    }
    let now = now_ms();
    if now > row.expires_at {
        return Err(reject(format!(
            "plan {plan_id:?} expired at {}",
            rfc3339_ms(row.expires_at)
        )));
    }
    let ctx = ctx_for(state, caller, Some(plan_id.clone()), reason.clone());
    let again = verb
        .plan(&ctx, &args)
        .await
        .map_err(|e| reject(format!("the world changed since the plan: {e}")))?;
    let old_plan = &row.plan.0;
    if fingerprint(&spec.name, &args, &again.world) != row.fingerprint
        || again.plan.summary != old_plan.summary
    {
        return Err(reject(format!(
            "the world changed since the plan (planned: {:?}; now: {:?})",
            old_plan.summary, again.plan.summary
        )));
    }
    let claimed = sqlx::query(
        "UPDATE ops_plans SET confirmed_at = $1, reason = $2 \
         WHERE plan_id = $3 AND confirmed_at IS NULL AND expires_at >= $1",
    )
    .bind(now)
    .bind(reason.clone())
    .bind(&plan_id)
    .execute(state.store.writer())
    .await?
    .rows_affected();
    if claimed == 0 {
        // Lost a race with another confirm (replay its answer) or expired just now.
        let row = load_plan(state, &plan_id)
            .await?
            .ok_or_else(|| reject(format!("there is no plan {plan_id:?}")))?;
        if row.confirmed_at.is_some() {
            return replay(state, &plan_id, row).await;
        }
        return Err(reject(format!("plan {plan_id:?} expired")));
    }
    let task = {
        let state = state.clone();
        let spec = spec.clone();
        let plan_id = plan_id.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            let outcome = verb.execute(&ctx, &args).await;
            finish(&state, &caller, &spec, &plan_id, args, reason, outcome).await
        })
    };
    match task.await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("ops verb task failed: {e}"))),
    }
}

/// Store the result and write the `ops.confirm` record in one transaction.
async fn finish(
    state: &AppState,
    caller: &Caller,
    spec: &VerbSpec,
    plan_id: &str,
    args: Value,
    reason: Option<String>,
    outcome: ApiResult<Value>,
) -> ApiResult<CommandResponse> {
    let store = &state.store;
    let now = now_ms();
    let (status, audit_outcome, error_detail) = match &outcome {
        Ok(_) => (200_i64, "ok", None),
        Err(e) => {
            let detail = match e {
                // Internal causes are logged, not stored or shown.
                ApiError::Internal(cause) => {
                    tracing::error!(target: "ops_console", verb = %spec.name, plan_id, error = %cause, "ops verb failed");
                    "the verb failed; see the server log for this request id".to_string()
                }
                other => other.to_string(),
            };
            (i64::from(e.status().as_u16()), "error", Some(detail))
        }
    };
    let mut tx = store.begin_write().await?;
    let rec = NewAudit::new(
        &caller.tenant,
        &caller.key_id,
        "ops.confirm",
        &spec.name,
        audit_outcome,
        &caller.request_id,
    )
    .detail(json!({
        "plan_id": plan_id,
        "args": args,
        "reason": reason,
        "risk": spec.risk,
        "error": error_detail,
    }));
    let rec = audit::append(store, &mut tx, rec).await?;
    let body = match &outcome {
        Ok(result) => serde_json::to_value(ConfirmResponse {
            dry_run: false,
            plan_id: plan_id.to_string(),
            verb: spec.name.clone(),
            args: args.clone(),
            result: result.clone(),
            audit_seq: rec.seq,
            executed_at: rfc3339_ms(now),
        })
        .map_err(ApiError::internal)?,
        Err(_) => json!({"detail": error_detail, "audit_seq": rec.seq}),
    };
    sqlx::query("UPDATE ops_plans SET result = $1, result_status = $2 WHERE plan_id = $3")
        .bind(canonical_json(&body))
        .bind(status)
        .bind(plan_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(target: "ops_console", key_id = %caller.key_id, verb = %spec.name, plan_id, args = %canonical_json(&args), outcome = audit_outcome, audit_seq = rec.seq, reason = reason.as_deref().unwrap_or(""), "ops command confirmed");
    stored_answer(status, body)
}

/// Answer of a plan that was already confirmed: wait (bounded) for its first execution
/// to record a result, then return exactly that.
async fn replay(state: &AppState, plan_id: &str, mut row: PlanRow) -> ApiResult<CommandResponse> {
    #[cfg(test)]
    replay_waits::enter(plan_id);
    let wait = Duration::from_secs(
        state
            .cfg
            .request_timeout_secs
            .saturating_sub(2)
            .clamp(1, 25),
    );
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let (Some(Json(body)), Some(status)) = (row.result.take(), row.result_status) {
            tracing::info!(target: "ops_console", plan_id, "ops confirm replayed the first result");
            return stored_answer(status, body);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Conflict(format!(
                "plan {plan_id:?} was confirmed and its execution has not recorded a result yet; \
                 check the audit log (action ops.confirm) before re-planning"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        row = load_plan(state, plan_id)
            .await?
            .ok_or_else(|| ApiError::Conflict(format!("there is no plan {plan_id:?}")))?;
    }
}

fn stored_answer(status: i64, body: Value) -> ApiResult<CommandResponse> {
    if status == 200 {
        return serde_json::from_value(body)
            .map(CommandResponse::Confirmed)
            .map_err(ApiError::internal);
    }
    let detail = body
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("the verb failed")
        .to_string();
    Err(match status {
        400 => ApiError::BadRequest(detail),
        403 => ApiError::Forbidden(detail),
        404 => ApiError::NotFound(detail),
        409 => ApiError::Conflict(detail),
        422 => ApiError::Unprocessable(detail),
        503 => ApiError::Unavailable(detail),
        _ => ApiError::Internal(detail),
    })
}

/// Test hook: how many confirms of a plan entered [`replay`], so a test can hold the
/// first execution until the concurrent confirms are provably waiting for it.
#[cfg(test)]
pub(crate) mod replay_waits {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static WAITS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

    pub(crate) fn enter(plan_id: &str) {
        let mut w = WAITS.lock().unwrap();
        *w.get_or_insert_with(HashMap::new)
            .entry(plan_id.to_string())
            .or_default() += 1;
    }

    pub(crate) fn count(plan_id: &str) -> usize {
        let w = WAITS.lock().unwrap();
        w.as_ref()
            .and_then(|m| m.get(plan_id))
            .copied()
            .unwrap_or(0)
    }
}
