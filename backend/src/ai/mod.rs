//! The `ai` module: the AI data lake. LLM calls are recorded as events (`POST
//! /api/v1/ai/events`, or through the recording proxy in front of an OpenAI-compatible
//! upstream): hashes of prompt and response, a normalised prompt template, token counts,
//! latency, status and a cost from the `[ai] prices` table. Text is kept only with
//! `[ai] store_text = true`, and then only after PII and secret redaction ([`redact`]) with
//! the tenant's rules ([`rules`]). Every event also goes to `logs/ai_events.ndjson`,
//! redacted. `GET /api/v1/ai/analytics` aggregates them in SQL.
//!
//! Store: `ai_events` (one row per call), `ai_redaction_rules` (one row per tenant that
//! changed its rules).

pub mod analytics;
pub mod api;
pub mod events;
pub mod gdpr;
pub mod proxy;
pub mod redact;
pub mod rules;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::Area;
use crate::config::{ConfigError, ConfigMap};
use crate::store::Store;

pub const EVENTS_TOTAL: &str = "echopilot_ai_events_total";
pub const REDACTIONS_TOTAL: &str = "echopilot_ai_redactions_total";
pub const UNPRICED_TOTAL: &str = "echopilot_ai_unpriced_events_total";
pub const TOKENS_TOTAL: &str = "echopilot_ai_tokens_total";
pub const COST_MICROS_TOTAL: &str = "echopilot_ai_cost_micros_total";
pub const PROXY_TOTAL: &str = "echopilot_ai_proxy_requests_total";

/// One price of `[ai] prices`, in the currency's units per million tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub model: String,
    pub input_per_1m: f64,
    pub output_per_1m: f64,
}

/// `[ai] prices`: an array of tables in the file (`[[ai.prices]]`), or, from the
/// environment, the text form `model=in/out;model=in/out`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Prices {
    List(Vec<Price>),
    Text(String),
}

impl Default for Prices {
    fn default() -> Self {
        Prices::List(Vec::new())
    }
}

impl Prices {
    fn entries(&self) -> Result<Vec<Price>, String> {
        match self {
            Prices::List(l) => Ok(l.clone()),
            Prices::Text(t) => t
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|item| {
                    let (model, pair) = item
                        .split_once('=')
                        .ok_or_else(|| format!("{item:?}: expected model=input/output"))?;
                    let (i, o) = pair
                        .split_once('/')
                        .ok_or_else(|| format!("{item:?}: expected model=input/output"))?;
                    let num = |s: &str| {
                        s.trim()
                            .parse::<f64>()
                            .map_err(|_| format!("{item:?}: {s:?} is not a number"))
                    };
                    Ok(Price {
                        model: model.trim().to_string(),
                        input_per_1m: num(i)?,
                        output_per_1m: num(o)?,
                    })
                })
                .collect(),
        }
    }
}

/// `[ai]`: every key, so a typo stops the server naming it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiSection {
    /// Keep prompt and response text (redacted). Off: only hashes and the template.
    pub store_text: bool,
    /// Currency of the price table (ISO 4217 code).
    pub currency: String,
    pub prices: Prices,
    /// OpenAI-compatible base URL the proxy forwards to, e.g. `https://api.openai.com/v1`.
    pub upstream_base_url: String,
    /// Secret: sent upstream as `Authorization: Bearer …`; never logged or echoed.
    pub upstream_api_key: String,
    /// Upper bound of one upstream call (a streamed answer included).
    pub upstream_timeout_secs: u64,
    /// Events per `POST /api/v1/ai/events/batch`.
    pub max_batch: u64,
    /// Events older than this many days are refused at recording and pruned by the
    /// `retention` job (1..=3650).
    pub retention_days: u64,
}

impl Default for AiSection {
    fn default() -> Self {
        AiSection {
            store_text: false,
            currency: "USD".into(),
            prices: Prices::default(),
            upstream_base_url: String::new(),
            upstream_api_key: String::new(),
            upstream_timeout_secs: 300,
            max_batch: 100,
            retention_days: 90,
        }
    }
}

/// Prices in millionths of the currency unit per million tokens (integers: no float
/// drift in sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroPrice {
    pub input: i64,
    pub output: i64,
}

/// The checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store_text: bool,
    pub currency: String,
    pub prices: HashMap<String, MicroPrice>,
    pub upstream_base_url: Option<String>,
    pub upstream_api_key: Option<String>,
    pub upstream_timeout_secs: u64,
    pub max_batch: usize,
    pub retention_days: i64,
}

impl Settings {
    pub fn load(raw: &ConfigMap) -> Result<Settings, ConfigError> {
        let s: AiSection = raw.section("ai")?;
        let cur = s.currency.trim().to_ascii_uppercase();
        if cur.len() != 3 || !cur.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(raw.error(
                "ai.currency",
                format!("expected a 3-letter ISO 4217 code, got {:?}", s.currency),
            ));
        }
        let mut prices = HashMap::new();
        for p in s.prices.entries().map_err(|e| raw.error("ai.prices", e))? {
            let model = p.model.trim();
            if model.is_empty() || model.chars().count() > events::MAX_MODEL_CHARS {
                return Err(raw.error(
                    "ai.prices",
                    "every price needs a model name (1 to 200 characters)",
                ));
            }
            let micro = |v: f64, what: &str| {
                if !(0.0..=1_000_000.0).contains(&v) || !v.is_finite() {
                    return Err(raw.error(
                        "ai.prices",
                        format!("{model}: {what} must be between 0 and 1000000, got {v}"),
                    ));
                }
                Ok((v * 1_000_000.0).round() as i64)
            };
            let mp = MicroPrice {
                input: micro(p.input_per_1m, "input_per_1m")?,
                output: micro(p.output_per_1m, "output_per_1m")?,
            };
            if prices.insert(model.to_string(), mp).is_some() {
                return Err(raw.error("ai.prices", format!("model {model:?} is priced twice")));
            }
        }
        let base = s.upstream_base_url.trim().trim_end_matches('/').to_string();
        let upstream_base_url = if base.is_empty() {
            None
        } else {
            match reqwest::Url::parse(&base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(base),
                _ => {
                    return Err(raw.error(
                        "ai.upstream_base_url",
                        "expected an http(s) URL such as https://api.openai.com/v1",
                    ))
                }
            }
        };
        raw.check_range("ai.upstream_timeout_secs", s.upstream_timeout_secs, 1, 3600)?;
        raw.check_range("ai.max_batch", s.max_batch, 1, 1000)?;
        raw.check_range("ai.retention_days", s.retention_days, 1, 3650)?;
        let key = s.upstream_api_key.trim().to_string();
        if key.chars().any(|c| c.is_control()) {
            // Never echo the value.
            return Err(raw.error("ai.upstream_api_key", "contains control characters"));
        }
        Ok(Settings {
            store_text: s.store_text,
            currency: cur,
            prices,
            upstream_base_url,
            upstream_api_key: (!key.is_empty()).then_some(key),
            upstream_timeout_secs: s.upstream_timeout_secs,
            max_batch: s.max_batch as usize,
            retention_days: s.retention_days as i64,
        })
    }

    /// The price of `model`: exact, else the longest priced name that `model` extends
    /// with `-…` (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`).
    pub fn price(&self, model: &str) -> Option<MicroPrice> {
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(m, _)| {
                model.len() > m.len()
                    && model.starts_with(m.as_str())
                    && model.as_bytes()[m.len()] == b'-'
            })
            .max_by_key(|(m, _)| m.len())
            .map(|(_, p)| *p)
    }
}

/// The AI data-lake service (`State<Ai>`).
#[derive(Clone)]
pub struct Ai {
    pub(crate) store: Store,
    pub(crate) settings: Arc<Settings>,
    pub(crate) http: reqwest::Client,
    pub(crate) extras: Arc<rules::ExtraCache>,
}

crate::service_from_ref!(Ai);

impl Ai {
    pub fn new(store: Store, settings: Settings) -> anyhow::Result<Ai> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                settings.upstream_timeout_secs,
            ))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Ai {
            store,
            settings: Arc::new(settings),
            http,
            extras: Default::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The oldest time (ms) an event may have at `now`: `[ai] retention_days` back.
    pub fn oldest(&self, now: i64) -> i64 {
        now - self.settings.retention_days * 86_400_000
    }

    /// Delete the events older than `[ai] retention_days`, per tenant in batches (short
    /// write transactions: SQLite has one writer). Returns how many went. Called by the
    /// `retention` job (`jobs/retention.rs`), which records it in its error ledger.
    pub async fn prune(&self, now: i64) -> Result<u64, sqlx::Error> {
        const BATCH: i64 = 5000;
        let cutoff = self.oldest(now);
        let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM ai_events")
            .fetch_all(self.store.reader())
            .await?;
        let mut n = 0;
        for t in tenants {
            loop {
                let r = sqlx::query(
                    "DELETE FROM ai_events WHERE id IN \
                     (SELECT id FROM ai_events WHERE tenant_id = $1 AND ts < $2 LIMIT $3)",
                )
                .bind(&t)
                .bind(cutoff)
                .bind(BATCH)
                .execute(self.store.writer())
                .await?
                .rows_affected();
                n += r;
                if r < BATCH as u64 {
                    break;
                }
            }
        }
        Ok(n)
    }
}

pub struct AiArea;

impl Area for AiArea {
    fn name(&self) -> &'static str {
        "ai"
    }
    fn about(&self) -> &'static str {
        "ai: LLM call data lake with PII redaction, prompt-template analytics, costs, and an OpenAI-compatible recording proxy"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["ai_events", "ai_redaction_rules"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["ai_events"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        Settings::load(raw).map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::record_event, api::list_events))
            .routes(routes!(api::record_batch))
            .routes(routes!(api::analytics))
            .routes(routes!(api::get_redaction, api::put_redaction))
            .routes(routes!(proxy::chat_completions))
            .routes(routes!(proxy::embeddings))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let settings = Settings::load(&state.cfg.raw)?;
            state.provide(Ai::new(state.store.clone(), settings)?);
            Ok(())
        })
    }
    fn gdpr(&self) -> Option<Arc<dyn crate::area::Gdpr>> {
        Some(Arc::new(gdpr::AiGdpr))
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(AiSummary))
    }
}

/// Status-summary section `ai`: the last 24 hours of the tenant's calls.
struct AiSummary;

impl SummaryProvider for AiSummary {
    fn area(&self) -> &'static str {
        "ai"
    }
    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let ai = state.require::<Ai>("status", "ai")?;
            let now = crate::util::now_ms();
            let t = analytics::totals(&ai.store, tenant, now - 86_400_000, now + 1).await?;
            Ok(serde_json::json!({
                "events_24h": t.events,
                "errors_24h": t.errors,
                "error_rate_24h": t.error_rate,
                "tokens_in_24h": t.tokens_in,
                "tokens_out_24h": t.tokens_out,
                "cost_micros_24h": t.cost_micros,
                "unpriced_24h": t.unpriced_events,
                "redactions_24h": t.redactions,
                "currency": ai.settings.currency,
                "store_text": ai.settings.store_text,
                "proxy_configured": ai.settings.upstream_base_url.is_some(),
            }))
        })
    }
}
