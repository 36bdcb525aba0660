//! Per-tenant redaction rules: built-in recognisers a tenant turned off, and its extra
//! patterns. A tenant without a row uses every built-in recogniser and no extras.
//! `PUT /api/v1/ai/redaction` (admin, audited) replaces the tenant's rules.

use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::redact::{self, Extra, Redactor, RULES};
use super::Ai;
use crate::audit::{self, NewAudit};
use crate::error::ApiError;
use crate::store::Json;
use crate::util::{now_ms, rfc3339_ms};

pub const MAX_EXTRAS: usize = 20;
pub const MAX_PATTERN_CHARS: usize = 500;

/// A tenant-defined pattern; matches are replaced by `[REDACTED:<name>]`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExtraRule {
    /// Lowercase letters, digits and `_`, starting with a letter; not a built-in name.
    #[schema(min_length = 1, max_length = 40, pattern = "^[a-z][a-z0-9_]*$")]
    pub name: String,
    /// A Rust `regex` pattern (no look-around, no backreferences; linear-time matching).
    #[schema(min_length = 1, max_length = 500)]
    pub pattern: String,
}

/// The new rules of the caller's tenant (replaces the previous ones).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionUpdate {
    /// Built-in recognisers to turn off (names from `GET /api/v1/ai/redaction`).
    #[schema(max_items = 64)]
    pub disabled: Vec<String>,
    /// Extra patterns, run after the built-ins.
    #[schema(max_items = 20)]
    pub extra: Vec<ExtraRule>,
}

/// One built-in recogniser as the tenant has it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecogniserState {
    pub name: String,
    /// `pii` or `secret`.
    pub kind: String,
    pub description: String,
    /// `luhn`, `mod97`, `ipv4`, `ipv6`, `phone` or `none`.
    pub validator: String,
    pub enabled: bool,
}

/// The tenant's redaction rules.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedactionRules {
    pub tenant: String,
    pub recognisers: Vec<RecogniserState>,
    pub extra: Vec<ExtraRule>,
    /// Key id of whoever last changed them (none: never changed, the defaults apply).
    pub updated_by: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RulesRow {
    disabled: Json<Vec<String>>,
    extras: Json<Vec<ExtraRule>>,
    updated_by: String,
    updated_at: i64,
}

/// Compiled extra patterns, by pattern text (patterns are validated when stored).
#[derive(Default)]
pub struct ExtraCache(Mutex<HashMap<String, Regex>>);

impl ExtraCache {
    fn get(&self, pattern: &str) -> Option<Regex> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = m.get(pattern) {
            return Some(r.clone());
        }
        let r = redact::compile_extra(pattern).ok()?;
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(pattern.to_string(), r.clone());
        Some(r)
    }
}

fn validator_name(v: redact::Validator) -> &'static str {
    use redact::Validator::*;
    match v {
        None => "none",
        Luhn => "luhn",
        Iban => "mod97",
        Ipv4 => "ipv4",
        Ipv6 => "ipv6",
        Phone => "phone",
    }
}

impl Ai {
    async fn rules_row(&self, tenant: &str) -> Result<Option<RulesRow>, ApiError> {
        sqlx::query_as::<_, RulesRow>(
            "SELECT disabled, extras, updated_by, updated_at FROM ai_redaction_rules WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(self.store.reader())
        .await
        .map_err(crate::store::in_table("ai_redaction_rules", Some(&tenant)))
        .map_err(ApiError::from)
    }

    /// The redactor of `tenant` (its disabled built-ins and its extras).
    pub async fn redactor(&self, tenant: &str) -> Result<Redactor, ApiError> {
        let Some(row) = self.rules_row(tenant).await? else {
            return Ok(Redactor::all());
        };
        let extras = row
            .extras
            .0
            .iter()
            .filter_map(|x| {
                self.extras.get(&x.pattern).map(|regex| Extra {
                    name: x.name.clone(),
                    regex,
                })
            })
            .collect();
        Ok(Redactor::new(&row.disabled.0, extras))
    }

    pub async fn rules(&self, tenant: &str) -> Result<RedactionRules, ApiError> {
        let row = self.rules_row(tenant).await?;
        let disabled = row
            .as_ref()
            .map(|r| r.disabled.0.clone())
            .unwrap_or_default();
        Ok(RedactionRules {
            tenant: tenant.to_string(),
            recognisers: RULES
                .iter()
                .map(|r| RecogniserState {
                    name: r.name.into(),
                    kind: r.kind.into(),
                    description: r.description.into(),
                    validator: validator_name(r.validator).into(),
                    enabled: !disabled.iter().any(|d| d == r.name),
                })
                .collect(),
            extra: row.as_ref().map(|r| r.extras.0.clone()).unwrap_or_default(),
            updated_by: row.as_ref().map(|r| r.updated_by.clone()),
            updated_at: row.as_ref().map(|r| rfc3339_ms(r.updated_at)),
        })
    }

    /// Replace the tenant's rules (row and audit record in one transaction).
    pub async fn set_rules(
        &self,
        tenant: &str,
        actor: &str,
        request_id: &str,
        update: RedactionUpdate,
    ) -> Result<RedactionRules, ApiError> {
        let update = check_update(update)?;
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO ai_redaction_rules (tenant_id, disabled, extras, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id) DO UPDATE SET disabled = $2, extras = $3, updated_by = $4, updated_at = $5",
        )
        .bind(tenant)
        .bind(Json(&update.disabled))
        .bind(Json(&update.extra))
        .bind(actor)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        audit::append(
            &self.store,
            &mut tx,
            NewAudit::new(
                tenant,
                actor,
                "ai.redaction",
                "redaction_rules",
                "ok",
                request_id,
            )
            .detail(serde_json::json!({
                "disabled": update.disabled,
                "extra": update.extra.iter().map(|x| &x.name).collect::<Vec<_>>(),
            })),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(target: "ai_events", event = "redaction_rules", tenant_id = tenant, actor,
            disabled = %update.disabled.join(","), extras = update.extra.len(), "redaction rules changed");
        self.rules(tenant).await
    }
}

/// Names known, extras well-formed and compilable; duplicates refused.
fn check_update(mut u: RedactionUpdate) -> Result<RedactionUpdate, ApiError> {
    let names = redact::names();
    u.disabled.sort();
    u.disabled.dedup();
    if u.disabled.len() > 64 {
        return Err(ApiError::Unprocessable("disabled: at most 64 names".into()));
    }
    for d in &u.disabled {
        if !names.contains(&d.as_str()) {
            return Err(ApiError::Unprocessable(format!(
                "disabled: no recogniser named {d:?}; recognisers: {}",
                names.join(", ")
            )));
        }
    }
    if u.extra.len() > MAX_EXTRAS {
        return Err(ApiError::Unprocessable(format!(
            "extra: at most {MAX_EXTRAS} patterns, got {}",
            u.extra.len()
        )));
    }
    let mut seen = Vec::new();
    for (i, x) in u.extra.iter().enumerate() {
        let ok_name = !x.name.is_empty()
            && x.name.len() <= 40
            && x.name.as_bytes()[0].is_ascii_lowercase()
            && x.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok_name {
            return Err(ApiError::Unprocessable(format!(
                "extra[{i}].name must be 1 to 40 characters of a-z, 0-9 and _, starting with a letter"
            )));
        }
        if names.contains(&x.name.as_str()) || seen.contains(&x.name.as_str()) {
            return Err(ApiError::Unprocessable(format!(
                "extra[{i}].name {:?} is already used (built-in or earlier extra)",
                x.name
            )));
        }
        seen.push(x.name.as_str());
        let n = x.pattern.chars().count();
        if n == 0 || n > MAX_PATTERN_CHARS {
            return Err(ApiError::Unprocessable(format!(
                "extra[{i}].pattern must be 1 to {MAX_PATTERN_CHARS} characters, got {n}"
            )));
        }
        let re = redact::compile_extra(&x.pattern).map_err(|e| {
            ApiError::Unprocessable(format!("extra[{i}].pattern is not a valid regex: {e}"))
        })?;
        if re.is_match("") {
            return Err(ApiError::Unprocessable(format!(
                "extra[{i}].pattern matches the empty string; it would redact nothing useful"
            )));
        }
    }
    Ok(u)
}
