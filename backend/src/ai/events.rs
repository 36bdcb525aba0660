//! Recording AI events: validate, redact with the tenant's rules, hash, template, price,
//! store (a batch in one transaction: all or nothing), then log the redacted event to
//! `ai_events.ndjson` and count it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::template::{display, sha256_hex, template};
use super::{Ai, EVENTS_TOTAL, REDACTIONS_TOTAL, TOKENS_TOTAL, UNPRICED_TOTAL};
use crate::error::ApiError;
use crate::store::{values_rows, Json};
use crate::util::{now_ms, random_id, rfc3339_ms};

pub const MAX_MODEL_CHARS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 200_000;
pub const MAX_ERROR_CHARS: usize = 2_000;
pub const MAX_TOKENS: i64 = 100_000_000;
pub const MAX_LATENCY_MS: i64 = 86_400_000;

crate::text_enum! {
    /// Outcome of an AI call.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum CallStatus {
        Ok = "ok",
        Error = "error",
    }
}

/// One AI call, as a client reports it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiEventIn {
    /// Model name as the provider calls it (`gpt-4o-mini`).
    #[schema(min_length = 1, max_length = 200)]
    pub model: String,
    /// The prompt text. Only its hash and template are kept unless `[ai] store_text`.
    #[schema(max_length = 200000)]
    pub prompt: String,
    #[schema(max_length = 200000)]
    pub response: String,
    #[schema(minimum = 0, maximum = 100000000)]
    #[serde(deserialize_with = "crate::api::extract::whole_i64")]
    pub tokens_in: i64,
    #[schema(minimum = 0, maximum = 100000000)]
    #[serde(deserialize_with = "crate::api::extract::whole_i64")]
    pub tokens_out: i64,
    #[schema(minimum = 0, maximum = 86400000)]
    #[serde(deserialize_with = "crate::api::extract::whole_i64")]
    pub latency_ms: i64,
    pub status: CallStatus,
    /// Error message of a failed call (redacted before it is kept).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub error: Option<String>,
    /// Product feature that made the call (`search`, `summary`).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub feature: Option<String>,
    /// End user (as in product analytics).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub distinct_id: Option<String>,
    /// When the call happened (RFC 3339); default: now. At most one day ahead, not older
    /// than `[ai] retention_days`.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub ts: Option<String>,
}

/// `POST /api/v1/ai/events/batch`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiEventBatch {
    /// 1 to `[ai] max_batch` (default 100) events, stored all or nothing.
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<AiEventIn>,
}

/// A checked event, from the API or the proxy.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub model: String,
    pub prompt: String,
    pub response: String,
    /// `None`: the upstream did not report usage (recorded as unknown, never guessed).
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub latency_ms: i64,
    pub status: CallStatus,
    pub error: Option<String>,
    pub feature: Option<String>,
    pub distinct_id: Option<String>,
    pub ts: i64,
    /// `api` or `proxy`.
    pub source: &'static str,
    /// Proxy endpoint (`chat/completions`, `embeddings`); none for the API.
    pub endpoint: Option<&'static str>,
}

/// What was stored for one event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedEvent {
    pub id: String,
    pub ts: String,
    pub model: String,
    pub status: CallStatus,
    pub prompt_sha256: String,
    pub response_sha256: String,
    /// SHA-256 of the normalised prompt template.
    pub template_hash: String,
    /// The template (literal values masked), at most 500 characters.
    pub template: String,
    /// Cost in millionths of the currency unit; null when the model has no price.
    pub cost_micros: Option<i64>,
    pub currency: String,
    /// Redactions per recogniser in prompt, response and error.
    pub redactions: BTreeMap<String, u64>,
    /// Whether the redacted text was kept (`[ai] store_text`).
    pub text_stored: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedBatch {
    pub recorded: Vec<RecordedEvent>,
}

fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be {min} to {max} characters, got {n}"
        )));
    }
    Ok(())
}

fn check_range(field: &str, v: i64, max: i64) -> Result<(), ApiError> {
    if !(0..=max).contains(&v) {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be between 0 and {max}, got {v}"
        )));
    }
    Ok(())
}

impl AiEventIn {
    /// Checked, with `field` naming it in errors (`events[3].model`); `oldest` is the
    /// retention cut-off (ms).
    pub fn check(self, at: &str, now: i64, oldest: i64) -> Result<NewEvent, ApiError> {
        let f = |name: &str| format!("{at}{name}");
        let model = self.model.trim().to_string();
        check_len(&f("model"), &model, 1, MAX_MODEL_CHARS)?;
        if model.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(format!(
                "{} must not contain control characters",
                f("model")
            )));
        }
        check_len(&f("prompt"), &self.prompt, 0, MAX_TEXT_CHARS)?;
        check_len(&f("response"), &self.response, 0, MAX_TEXT_CHARS)?;
        check_range(&f("tokens_in"), self.tokens_in, MAX_TOKENS)?;
        check_range(&f("tokens_out"), self.tokens_out, MAX_TOKENS)?;
        check_range(&f("latency_ms"), self.latency_ms, MAX_LATENCY_MS)?;
        if let Some(e) = &self.error {
            check_len(&f("error"), e, 0, MAX_ERROR_CHARS)?;
        }
        if let Some(x) = &self.feature {
            check_len(&f("feature"), x, 1, 100)?;
        }
        if let Some(x) = &self.distinct_id {
            check_len(&f("distinct_id"), x, 1, 200)?;
        }
        let ts = match &self.ts {
            None => now,
            Some(s) => {
                let t = chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| {
                        ApiError::Unprocessable(format!(
                            "{} must be an RFC 3339 time like 2026-12-01T12:00:00Z",
                            f("ts")
                        ))
                    })?
                    .timestamp_millis();
                if t > now + 86_400_000 || t < 0 {
                    return Err(ApiError::Unprocessable(format!(
                        "{} must be after 1970 and at most one day ahead of the server clock",
                        f("ts")
                    )));
                }
                if t < oldest {
                    return Err(ApiError::Unprocessable(format!(
                        "{} is older than the retention period ([ai] retention_days)",
                        f("ts")
                    )));
                }
                t
            }
        };
        Ok(NewEvent {
            model,
            prompt: self.prompt,
            response: self.response,
            tokens_in: Some(self.tokens_in),
            tokens_out: Some(self.tokens_out),
            latency_ms: self.latency_ms,
            status: self.status,
            error: self.error.filter(|e| !e.is_empty()),
            feature: self.feature,
            distinct_id: self.distinct_id,
            ts,
            source: "api",
            endpoint: None,
        })
    }
}

/// A prepared row: everything derived, nothing raw except hashes.
struct Row {
    id: String,
    ev: NewEvent,
    prompt_sha256: String,
    response_sha256: String,
    template_hash: String,
    template: String,
    prompt_text: Option<String>,
    response_text: Option<String>,
    error: Option<String>,
    cost_micros: Option<i64>,
    redactions: BTreeMap<String, u64>,
}

const COLS: usize = 24;

impl Ai {
    /// Store `events` for `tenant` in one transaction; log and count them after commit.
    pub async fn record(
        &self,
        tenant: &str,
        events: Vec<NewEvent>,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let redactor = self.redactor(tenant).await?;
        let received = now_ms();
        let rows: Vec<Row> = events
            .into_iter()
            .map(|ev| {
                let p = redactor.redact(&ev.prompt);
                let r = redactor.redact(&ev.response);
                let e = ev.error.as_deref().map(|e| redactor.redact(e));
                let mut redactions = p.counts.clone();
                for (k, v) in r
                    .counts
                    .iter()
                    .chain(e.iter().flat_map(|e| e.counts.iter()))
                {
                    *redactions.entry(k.clone()).or_insert(0) += v;
                }
                let tpl = template(&p.text);
                let cost_micros =
                    match (self.settings.price(&ev.model), ev.tokens_in, ev.tokens_out) {
                        (Some(price), Some(i), Some(o)) => Some(cost_micros(price, i, o)),
                        _ => None,
                    };
                let store_text = self.settings.store_text;
                Row {
                    id: random_id("aie_", 12),
                    prompt_sha256: sha256_hex(&ev.prompt),
                    response_sha256: sha256_hex(&ev.response),
                    template_hash: sha256_hex(&tpl),
                    template: display(&tpl),
                    prompt_text: store_text.then_some(p.text),
                    response_text: store_text.then_some(r.text),
                    error: e.map(|e| e.text),
                    cost_micros,
                    redactions,
                    ev,
                }
            })
            .collect();
        let mut tx = self.store.begin_write().await?;
        // Bounded statements: both engines cap bind parameters (SQLite 32766, PG 65535).
        for chunk in rows.chunks(500) {
            let sql = format!(
                "INSERT INTO ai_events (id, tenant_id, ts, received_at, model, feature, distinct_id, \
                 status, error, tokens_in, tokens_out, latency_ms, cost_micros, currency, \
                 prompt_sha256, response_sha256, template_hash, template, prompt_text, \
                 response_text, redactions, redaction_count, source, endpoint) VALUES {}",
                values_rows(chunk.len(), COLS)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.id)
                    .bind(tenant)
                    .bind(r.ev.ts)
                    .bind(received)
                    .bind(&r.ev.model)
                    .bind(&r.ev.feature)
                    .bind(&r.ev.distinct_id)
                    .bind(r.ev.status.as_str())
                    .bind(&r.error)
                    .bind(r.ev.tokens_in)
                    .bind(r.ev.tokens_out)
                    .bind(r.ev.latency_ms)
                    .bind(r.cost_micros)
                    .bind(&self.settings.currency)
                    .bind(&r.prompt_sha256)
                    .bind(&r.response_sha256)
                    .bind(&r.template_hash)
                    .bind(&r.template)
                    .bind(&r.prompt_text)
                    .bind(&r.response_text)
                    .bind(Json(&r.redactions))
                    .bind(r.redactions.values().sum::<u64>() as i64)
                    .bind(r.ev.source)
                    .bind(r.ev.endpoint);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|r| self.after_commit(tenant, r))
            .collect())
    }

    fn after_commit(&self, tenant: &str, r: Row) -> RecordedEvent {
        let ev = &r.ev;
        metrics::counter!(EVENTS_TOTAL, "source" => ev.source, "status" => ev.status.as_str())
            .increment(1);
        for (name, n) in &r.redactions {
            // Tenant-defined names would make labels unbounded: they count as `custom`.
            let label = if super::redact::names().contains(&name.as_str()) {
                name.clone()
            } else {
                "custom".to_string()
            };
            metrics::counter!(REDACTIONS_TOTAL, "recogniser" => label).increment(*n);
        }
        if r.cost_micros.is_none() {
            metrics::counter!(UNPRICED_TOTAL).increment(1);
        } else {
            metrics::counter!(super::COST_MICROS_TOTAL)
                .increment(r.cost_micros.unwrap_or(0) as u64);
        }
        if let Some(i) = ev.tokens_in {
            metrics::counter!(TOKENS_TOTAL, "direction" => "in").increment(i as u64);
        }
        if let Some(o) = ev.tokens_out {
            metrics::counter!(TOKENS_TOTAL, "direction" => "out").increment(o as u64);
        }
        let redactions = serde_json::to_string(&r.redactions).unwrap_or_default();
        // The log line holds what the row holds: hashes, the template, redacted text only
        // when text is kept. Never the raw prompt.
        tracing::info!(
            target: "ai_events",
            event = "ai_call",
            tenant_id = tenant,
            id = %r.id,
            ts = %rfc3339_ms(ev.ts),
            model = %ev.model,
            status = ev.status.as_str(),
            source = ev.source,
            endpoint = ev.endpoint.unwrap_or(""),
            feature = ev.feature.as_deref().unwrap_or(""),
            distinct_id = ev.distinct_id.as_deref().unwrap_or(""),
            tokens_in = ev.tokens_in,
            tokens_out = ev.tokens_out,
            latency_ms = ev.latency_ms,
            cost_micros = r.cost_micros,
            prompt_sha256 = %r.prompt_sha256,
            response_sha256 = %r.response_sha256,
            template_hash = %r.template_hash,
            template = %r.template,
            prompt_redacted = r.prompt_text.as_deref().unwrap_or(""),
            response_redacted = r.response_text.as_deref().unwrap_or(""),
            error = r.error.as_deref().unwrap_or(""),
            redactions = %redactions,
            "ai call recorded"
        );
        RecordedEvent {
            id: r.id,
            ts: rfc3339_ms(ev.ts),
            model: ev.model.clone(),
            status: ev.status,
            prompt_sha256: r.prompt_sha256,
            response_sha256: r.response_sha256,
            template_hash: r.template_hash,
            template: r.template,
            cost_micros: r.cost_micros,
            currency: self.settings.currency.clone(),
            redactions: r.redactions,
            text_stored: self.settings.store_text,
        }
    }
}

/// `tokens × price per million`, rounded to the nearest micro-unit (integer arithmetic).
pub fn cost_micros(p: super::MicroPrice, tokens_in: i64, tokens_out: i64) -> i64 {
    let total = tokens_in as i128 * p.input as i128 + tokens_out as i128 * p.output as i128;
    ((total + 500_000) / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        // $0.15 / $0.60 per 1M tokens: 1000 in + 500 out = 150 + 300 micro-dollars.
        let p = crate::ai::MicroPrice {
            input: 150_000,
            output: 600_000,
        };
        assert_eq!(cost_micros(p, 1000, 500), 450);
        assert_eq!(cost_micros(p, 1, 0), 0, "0.15 micro rounds to 0");
        assert_eq!(cost_micros(p, 4, 0), 1, "0.6 micro rounds to 1");
    }
}

/// A stored event as `GET /api/v1/ai/events` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredEvent {
    pub id: String,
    pub ts: String,
    pub model: String,
    pub feature: Option<String>,
    pub distinct_id: Option<String>,
    pub status: CallStatus,
    /// Redacted.
    pub error: Option<String>,
    /// Null: unknown (a streamed call without usage).
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub latency_ms: i64,
    pub cost_micros: Option<i64>,
    pub currency: String,
    pub prompt_sha256: String,
    pub response_sha256: String,
    pub template_hash: String,
    pub template: String,
    /// Redacted prompt; null unless `[ai] store_text` was on when it was recorded.
    pub prompt_text: Option<String>,
    pub response_text: Option<String>,
    /// Redactions per recogniser.
    pub redactions: BTreeMap<String, u64>,
    /// `api` or `proxy`.
    pub source: String,
    pub endpoint: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    id: String,
    ts: i64,
    model: String,
    feature: Option<String>,
    distinct_id: Option<String>,
    status: CallStatus,
    error: Option<String>,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    latency_ms: i64,
    cost_micros: Option<i64>,
    currency: String,
    prompt_sha256: String,
    response_sha256: String,
    template_hash: String,
    template: String,
    prompt_text: Option<String>,
    response_text: Option<String>,
    redactions: Json<BTreeMap<String, u64>>,
    source: String,
    endpoint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredEvents {
    pub events: Vec<StoredEvent>,
}

impl Ai {
    /// The tenant's latest events, newest first (optionally only one status).
    pub async fn list(
        &self,
        tenant: &str,
        status: Option<CallStatus>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, ApiError> {
        let rows: Vec<StoredRow> = sqlx::query_as(
            "SELECT id, ts, model, feature, distinct_id, status, error, tokens_in, \
             tokens_out, latency_ms, cost_micros, currency, prompt_sha256, response_sha256, \
             template_hash, template, prompt_text, response_text, redactions, source, endpoint \
             FROM ai_events WHERE tenant_id = $1 AND ($2 = '' OR status = $2) \
             ORDER BY ts DESC, id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(status.map(|s| s.as_str()).unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store.reader())
        .await
        .map_err(crate::store::in_table("ai_events", None))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredEvent {
                id: r.id,
                ts: rfc3339_ms(r.ts),
                model: r.model,
                feature: r.feature,
                distinct_id: r.distinct_id,
                status: r.status,
                error: r.error,
                tokens_in: r.tokens_in,
                tokens_out: r.tokens_out,
                latency_ms: r.latency_ms,
                cost_micros: r.cost_micros,
                currency: r.currency,
                prompt_sha256: r.prompt_sha256,
                response_sha256: r.response_sha256,
                template_hash: r.template_hash,
                template: r.template,
                prompt_text: r.prompt_text,
                response_text: r.response_text,
                redactions: r.redactions.0,
                source: r.source,
                endpoint: r.endpoint,
            })
            .collect())
    }
}
