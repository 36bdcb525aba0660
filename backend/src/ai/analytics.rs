//! `GET /api/v1/ai/analytics`: SQL aggregates over the tenant's events in `[from, to)`.
//! Latency percentiles use the nearest-rank definition (the smallest value with at least
//! p % of the calls at or below it), computed with window functions, which SQLite and
//! PostgreSQL evaluate the same way — no interpolation that would differ by engine.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Ai;
use crate::error::ApiError;
use crate::store::Store;
use crate::util::rfc3339_ms;

/// Totals over the window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct Totals {
    pub events: i64,
    pub errors: i64,
    /// errors / events (0 when there are no events).
    pub error_rate: f64,
    /// Sums over events that reported usage.
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Sum over priced events, in millionths of the currency unit.
    pub cost_micros: i64,
    /// Events whose model has no price (or no token counts): not in `cost_micros`.
    pub unpriced_events: i64,
    pub redactions: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelStats {
    pub model: String,
    pub events: i64,
    pub errors: i64,
    pub error_rate: f64,
    /// Averages over events that reported usage; null when none did.
    pub avg_tokens_in: Option<f64>,
    pub avg_tokens_out: Option<f64>,
    pub p50_latency_ms: i64,
    pub p95_latency_ms: i64,
    pub cost_micros: i64,
    pub unpriced_events: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeatureStats {
    /// Null: calls that named no feature.
    pub feature: Option<String>,
    pub events: i64,
    pub errors: i64,
    pub cost_micros: i64,
    pub unpriced_events: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateStats {
    pub template_hash: String,
    /// The normalised template (literal values masked).
    pub template: String,
    pub events: i64,
    pub errors: i64,
    pub avg_tokens_in: Option<f64>,
    pub avg_tokens_out: Option<f64>,
    pub last_seen: String,
}

/// A failed call (newest first).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailedCall {
    pub id: String,
    pub ts: String,
    pub model: String,
    pub feature: Option<String>,
    /// The error message, redacted.
    pub error: Option<String>,
    pub latency_ms: i64,
    /// `api` or `proxy`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AiAnalytics {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub currency: String,
    pub totals: Totals,
    /// Most calls first.
    pub models: Vec<ModelStats>,
    /// Highest cost first.
    pub features: Vec<FeatureStats>,
    /// Most calls first, at most `limit`.
    pub top_templates: Vec<TemplateStats>,
    /// At most `limit`.
    pub recent_errors: Vec<FailedCall>,
}

#[derive(sqlx::FromRow)]
struct TotalsRow {
    events: i64,
    errors: i64,
    tokens_in: i64,
    tokens_out: i64,
    cost_micros: i64,
    unpriced: i64,
    redactions: i64,
}

fn rate(errors: i64, events: i64) -> f64 {
    if events == 0 {
        0.0
    } else {
        errors as f64 / events as f64
    }
}

/// Totals of `tenant` in `[from, to)` (ms).
pub async fn totals(
    store: &Store,
    tenant: &str,
    from: i64,
    to: i64,
) -> Result<Totals, sqlx::Error> {
    let r = sqlx::query_as::<_, TotalsRow>(
        "SELECT COUNT(*) AS events, \
         CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
         CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) AS tokens_in, \
         CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) AS tokens_out, \
         CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros, \
         CAST(COALESCE(SUM(CASE WHEN cost_micros IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS unpriced, \
         CAST(COALESCE(SUM(redaction_count), 0) AS BIGINT) AS redactions \
         FROM ai_events WHERE tenant_id = $1 AND ts >= $2 AND ts < $3",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .fetch_one(store.reader())
    .await?;
    Ok(Totals {
        events: r.events,
        errors: r.errors,
        error_rate: rate(r.errors, r.events),
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        cost_micros: r.cost_micros,
        unpriced_events: r.unpriced,
        redactions: r.redactions,
    })
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    model: String,
    events: i64,
    errors: i64,
    avg_in: Option<f64>,
    avg_out: Option<f64>,
    cost_micros: i64,
    unpriced: i64,
}

#[derive(sqlx::FromRow)]
struct PctRow {
    model: String,
    p50: i64,
    p95: i64,
}

#[derive(sqlx::FromRow)]
struct FeatureRow {
    feature: Option<String>,
    events: i64,
    errors: i64,
    cost_micros: i64,
    unpriced: i64,
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    template_hash: String,
    template: String,
    events: i64,
    errors: i64,
    avg_in: Option<f64>,
    avg_out: Option<f64>,
    last_seen: i64,
}

#[derive(sqlx::FromRow)]
struct ErrorRow {
    id: String,
    ts: i64,
    model: String,
    feature: Option<String>,
    error: Option<String>,
    latency_ms: i64,
    source: String,
}

const ERRORS: &str =
    "CAST(COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT)";
const UNPRICED: &str =
    "CAST(COALESCE(SUM(CASE WHEN cost_micros IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT)";
const COST: &str = "CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)";

impl Ai {
    pub async fn analytics(
        &self,
        tenant: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<AiAnalytics, ApiError> {
        let db = self.store.reader();
        let window = "FROM ai_events WHERE tenant_id = $1 AND ts >= $2 AND ts < $3";
        let totals = totals(&self.store, tenant, from, to).await?;
        let models: Vec<ModelRow> = sqlx::query_as(&format!(
            "SELECT model, COUNT(*) AS events, {ERRORS} AS errors, \
             CAST(AVG(tokens_in) AS DOUBLE PRECISION) AS avg_in, \
             CAST(AVG(tokens_out) AS DOUBLE PRECISION) AS avg_out, \
             {COST} AS cost_micros, {UNPRICED} AS unpriced \
             {window} GROUP BY model ORDER BY events DESC, model"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?;
        // Nearest rank: rank ⌈p·n/100⌉ = (p·n + 99) / 100 in integer arithmetic.
        let pcts: Vec<PctRow> = sqlx::query_as(&format!(
            "SELECT model, \
             CAST(MIN(CASE WHEN rn = (50 * n + 99) / 100 THEN latency_ms END) AS BIGINT) AS p50, \
             CAST(MIN(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END) AS BIGINT) AS p95 \
             FROM (SELECT model, latency_ms, \
                   ROW_NUMBER() OVER (PARTITION BY model ORDER BY latency_ms) AS rn, \
                   COUNT(*) OVER (PARTITION BY model) AS n \
                   {window}) ranked \
             GROUP BY model"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?;
        let features: Vec<FeatureRow> = sqlx::query_as(&format!(
            "SELECT feature, COUNT(*) AS events, {ERRORS} AS errors, {COST} AS cost_micros, \
             {UNPRICED} AS unpriced {window} GROUP BY feature \
             ORDER BY cost_micros DESC, events DESC, feature"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?;
        let templates: Vec<TemplateRow> = sqlx::query_as(&format!(
            "SELECT template_hash, MIN(template) AS template, COUNT(*) AS events, {ERRORS} AS errors, \
             CAST(AVG(tokens_in) AS DOUBLE PRECISION) AS avg_in, \
             CAST(AVG(tokens_out) AS DOUBLE PRECISION) AS avg_out, \
             MAX(ts) AS last_seen {window} GROUP BY template_hash \
             ORDER BY events DESC, last_seen DESC, template_hash LIMIT $4"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(db)
        .await?;
        let errors: Vec<ErrorRow> = sqlx::query_as(&format!(
            "SELECT id, ts, model, feature, error, latency_ms, source {window} \
             AND status = 'error' ORDER BY ts DESC, id DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(db)
        .await?;
        Ok(AiAnalytics {
            tenant: tenant.to_string(),
            from: rfc3339_ms(from),
            to: rfc3339_ms(to),
            currency: self.settings.currency.clone(),
            totals,
            models: models
                .into_iter()
                .map(|m| {
                    let p = pcts.iter().find(|p| p.model == m.model);
                    ModelStats {
                        error_rate: rate(m.errors, m.events),
                        p50_latency_ms: p.map_or(0, |p| p.p50),
                        p95_latency_ms: p.map_or(0, |p| p.p95),
                        model: m.model,
                        events: m.events,
                        errors: m.errors,
                        avg_tokens_in: m.avg_in,
                        avg_tokens_out: m.avg_out,
                        cost_micros: m.cost_micros,
                        unpriced_events: m.unpriced,
                    }
                })
                .collect(),
            features: features
                .into_iter()
                .map(|f| FeatureStats {
                    feature: f.feature,
                    events: f.events,
                    errors: f.errors,
                    cost_micros: f.cost_micros,
                    unpriced_events: f.unpriced,
                })
                .collect(),
            top_templates: templates
                .into_iter()
                .map(|t| TemplateStats {
                    template_hash: t.template_hash,
                    template: t.template,
                    events: t.events,
                    errors: t.errors,
                    avg_tokens_in: t.avg_in,
                    avg_tokens_out: t.avg_out,
                    last_seen: rfc3339_ms(t.last_seen),
                })
                .collect(),
            recent_errors: errors
                .into_iter()
                .map(|e| FailedCall {
                    id: e.id,
                    ts: rfc3339_ms(e.ts),
                    model: e.model,
                    feature: e.feature,
                    error: e.error,
                    latency_ms: e.latency_ms,
                    source: e.source,
                })
                .collect(),
        })
    }
}
