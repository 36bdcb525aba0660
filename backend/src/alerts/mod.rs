//! Alerts: rules evaluated by the `alert_rules` job, a dispatcher to Telegram (Bot API
//! `sendMessage`), a Slack incoming webhook and a generic (optionally HMAC-signed) webhook,
//! a cooldown per alert key kept in the database (so it holds across restarts and
//! replicas), and every alert stored in `alerts`.
//!
//! Secrets (the bot token, which is part of the Telegram URL, and webhook URLs) are never
//! logged or returned: request errors are stripped of their URL and passed through
//! `logging::redact_secrets`.

pub mod api;
pub mod area;
pub mod rules;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::app::{AppState, BoxFuture};
use crate::config::{Config, ConfigError};
use crate::store::Store;
use crate::util::{now_ms, random_id, rfc3339_ms};

pub const ALERTS_TOTAL: &str = "echopilot_alerts_total";

const KNOWN_KEYS: &[&str] = &[
    "telegram_bot_token",
    "telegram_chat_id",
    "telegram_base_url",
    "slack_webhook_url",
    "webhook_url",
    "webhook_secret",
    "cooldown_secs",
    "timeout_secs",
    "disk_threshold_pct",
    "tick_gap_secs",
    "tick_gap_count",
    "selfheal_requeue_max",
];

#[derive(Clone)]
struct Telegram {
    base_url: String,
    token: String,
    chat_id: String,
}

#[derive(Clone)]
struct Webhook {
    url: String,
    secret: Option<String>,
}

/// Rule thresholds (all configurable so tests and drills can trigger rules on purpose).
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub disk_pct: f64,
    pub tick_gap_secs: u64,
    pub tick_gap_count: u64,
    pub selfheal_requeue_max: i64,
}

/// Source of "jobs requeued by self-heal in the last 24 h" (set by the self-heal area).
pub type CountSource = Arc<dyn Fn(Store) -> BoxFuture<'static, anyhow::Result<i64>> + Send + Sync>;

/// The alert service, kept in `AppState::alerts`.
pub struct Alerts {
    telegram: Option<Telegram>,
    slack: Option<String>,
    webhook: Option<Webhook>,
    cooldown_ms: i64,
    http: reqwest::Client,
    pub thresholds: Thresholds,
    rules: Vec<rules::Rule>,
    selfheal_requeues: OnceLock<CountSource>,
}

/// An alert a rule (or an operator's test) wants to send.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Cooldown key: one delivery per key per cooldown window.
    pub key: String,
    /// info, warning or critical.
    pub severity: String,
    pub title: String,
    pub message: String,
}

/// A stored alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRecord {
    pub id: String,
    pub ts: String,
    pub key: String,
    pub severity: String,
    pub title: String,
    pub message: String,
    /// Channels it was sent to (empty when suppressed).
    pub channels: Vec<String>,
    /// Every channel accepted it.
    pub delivered: bool,
    /// Not sent: the key was in its cooldown window.
    pub suppressed: bool,
    /// Delivery failures per channel (secrets redacted).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertRecord>,
}

fn url_key(cfg: &Config, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(v) = cfg.raw.get_string(key)?.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    match reqwest::Url::parse(v.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {
            Ok(Some(v.trim().trim_end_matches('/').to_string()))
        }
        // Never echo the value: webhook URLs carry their secret in the path.
        _ => Err(cfg.raw.error(key, "expected an http:// or https:// URL")),
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.trim().is_empty())
}

impl Alerts {
    /// Read `alerts.*` (and `TELEGRAM_BOT_TOKEN` / `TELEGRAM_CHAT_ID`); errors name the key.
    pub fn from_config(cfg: &Config) -> Result<Alerts, ConfigError> {
        let raw = &cfg.raw;
        for key in raw.keys_with_prefix("alerts.") {
            if !KNOWN_KEYS.contains(&&key["alerts.".len()..]) {
                return Err(raw.error(
                    key,
                    format!("unknown key; alerts keys: {}", KNOWN_KEYS.join(", ")),
                ));
            }
        }
        let token = raw
            .get_string("alerts.telegram_bot_token")?
            .filter(|s| !s.trim().is_empty())
            .or_else(|| env_nonempty("TELEGRAM_BOT_TOKEN"));
        let chat_id = raw
            .get_string("alerts.telegram_chat_id")?
            .filter(|s| !s.trim().is_empty())
            .or_else(|| env_nonempty("TELEGRAM_CHAT_ID"));
        let base_url = url_key(cfg, "alerts.telegram_base_url")?
            .unwrap_or_else(|| "https://api.telegram.org".into());
        let telegram = match (token, chat_id) {
            (Some(token), Some(chat_id)) => {
                if token.contains('/') || token.chars().any(char::is_whitespace) {
                    return Err(raw.error("alerts.telegram_bot_token", "not a bot token (expected <digits>:<secret>)"));
                }
                Some(Telegram {
                    base_url,
                    token: token.trim().to_string(),
                    chat_id: chat_id.trim().to_string(),
                })
            }
            (Some(_), None) => {
                return Err(raw.error(
                    "alerts.telegram_chat_id",
                    "a Telegram bot token is set but no chat id (alerts.telegram_chat_id or TELEGRAM_CHAT_ID)",
                ))
            }
            (None, Some(_)) => {
                return Err(raw.error(
                    "alerts.telegram_bot_token",
                    "a Telegram chat id is set but no bot token (alerts.telegram_bot_token or TELEGRAM_BOT_TOKEN)",
                ))
            }
            (None, None) => None,
        };
        let webhook = url_key(cfg, "alerts.webhook_url")?.map(|url| Webhook { url, secret: None });
        let secret = raw
            .get_string("alerts.webhook_secret")?
            .filter(|s| !s.is_empty());
        let webhook = match (webhook, secret) {
            (Some(w), secret) => Some(Webhook { secret, ..w }),
            (None, Some(_)) => {
                return Err(raw.error(
                    "alerts.webhook_secret",
                    "set alerts.webhook_url too (the secret signs its requests)",
                ))
            }
            (None, None) => None,
        };
        let timeout = raw.u64_in("alerts.timeout_secs", 10, 1, 120)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout))
            .user_agent(concat!("echopilot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                raw.error(
                    "alerts.timeout_secs",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let thresholds = Thresholds {
            disk_pct: raw.u64_in("alerts.disk_threshold_pct", 85, 0, 100)? as f64,
            tick_gap_secs: raw.u64_in("alerts.tick_gap_secs", 70, 1, 86_400)?,
            tick_gap_count: raw.u64_in("alerts.tick_gap_count", 3, 1, 100)?,
            selfheal_requeue_max: raw.u64_in("alerts.selfheal_requeue_max", 3, 0, 1_000_000)?
                as i64,
        };
        Ok(Alerts {
            telegram,
            slack: url_key(cfg, "alerts.slack_webhook_url")?,
            webhook,
            cooldown_ms: raw.u64_in("alerts.cooldown_secs", 1800, 0, 7 * 86_400)? as i64 * 1000,
            http,
            thresholds,
            rules: rules::builtin(),
            selfheal_requeues: OnceLock::new(),
        })
    }

    /// Add a rule (before the service is put in the app state).
    pub fn add_rule(&mut self, rule: rules::Rule) {
        self.rules.push(rule);
    }

    pub fn rules(&self) -> &[rules::Rule] {
        &self.rules
    }

    /// Wire the self-heal requeue count into the `selfheal_requeues` rule (done once, by the
    /// self-heal area at start). Until then the rule reports that it has no data.
    pub fn set_selfheal_requeue_source(&self, source: CountSource) -> bool {
        self.selfheal_requeues.set(source).is_ok()
    }

    pub fn selfheal_requeue_source(&self) -> Option<&CountSource> {
        self.selfheal_requeues.get()
    }

    /// Names of the configured channels.
    pub fn channels(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.telegram.is_some() {
            v.push("telegram".to_string());
        }
        if self.slack.is_some() {
            v.push("slack".to_string());
        }
        if self.webhook.is_some() {
            v.push("webhook".to_string());
        }
        v
    }

    /// Store the alert and send it, unless its key is in its cooldown window (then it is
    /// stored as suppressed and not sent). The cooldown claim is one conditional upsert, so
    /// two replicas raising the same key at once send it once.
    pub async fn raise(&self, store: &Store, alert: NewAlert) -> anyhow::Result<AlertRecord> {
        let now = now_ms();
        let claimed = sqlx::query(
            "INSERT INTO alert_cooldowns (key, until_ms) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms \
             WHERE alert_cooldowns.until_ms <= $3",
        )
        .bind(&alert.key)
        .bind(now + self.cooldown_ms)
        .bind(now)
        .execute(store.writer())
        .await?
        .rows_affected()
            == 1;
        let mut rec = AlertRecord {
            id: random_id("alert_", 10),
            ts: rfc3339_ms(now),
            key: alert.key.clone(),
            severity: alert.severity.clone(),
            title: alert.title.clone(),
            message: alert.message.clone(),
            channels: Vec::new(),
            delivered: false,
            suppressed: !claimed,
            error: None,
        };
        if !claimed {
            insert(store, &rec, now).await?;
            metrics::counter!(ALERTS_TOTAL, "key" => alert.key.clone(), "result" => "suppressed")
                .increment(1);
            tracing::info!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity, "alert suppressed (cooldown)");
            return Ok(rec);
        }
        rec.channels = self.channels();
        insert(store, &rec, now).await?;
        let mut errors = Vec::new();
        let mut sent = 0;
        for ch in &rec.channels {
            match self.send(ch, &rec).await {
                Ok(()) => sent += 1,
                Err(e) => errors.push(format!("{ch}: {}", crate::logging::redact_secrets(&e))),
            }
        }
        if rec.channels.is_empty() {
            errors.push("no alert channel is configured".to_string());
        }
        rec.delivered = !rec.channels.is_empty() && errors.is_empty();
        rec.error = (!errors.is_empty()).then(|| errors.join("; "));
        sqlx::query("UPDATE alerts SET delivered = $1, error = $2 WHERE id = $3")
            .bind(rec.delivered as i64)
            .bind(&rec.error)
            .bind(&rec.id)
            .execute(store.writer())
            .await?;
        if sent == 0 && !rec.channels.is_empty() {
            // Nothing got out: give the key back so the next evaluation tries again.
            sqlx::query("UPDATE alert_cooldowns SET until_ms = $1 WHERE key = $2")
                .bind(now)
                .bind(&rec.key)
                .execute(store.writer())
                .await?;
        }
        let result = if rec.delivered { "delivered" } else { "failed" };
        metrics::counter!(ALERTS_TOTAL, "key" => alert.key.clone(), "result" => result)
            .increment(1);
        match &rec.error {
            None => {
                tracing::info!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity, channels = %rec.channels.join(","), "alert delivered")
            }
            Some(err) => {
                tracing::warn!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity, channels = %rec.channels.join(","), error = %err, "alert not delivered everywhere")
            }
        }
        Ok(rec)
    }

    async fn send(&self, channel: &str, rec: &AlertRecord) -> Result<(), String> {
        let text = format!(
            "[{}] {}\n{}",
            rec.severity.to_uppercase(),
            rec.title,
            rec.message
        );
        let resp = match channel {
            "telegram" => {
                let t = self.telegram.as_ref().ok_or("not configured")?;
                let url = format!("{}/bot{}/sendMessage", t.base_url, t.token);
                self.http
                    .post(url)
                    .json(&json!({"chat_id": t.chat_id, "text": text, "disable_web_page_preview": true}))
                    .send()
                    .await
            }
            "slack" => {
                let url = self.slack.as_ref().ok_or("not configured")?;
                self.http
                    .post(url)
                    .json(&json!({ "text": text }))
                    .send()
                    .await
            }
            "webhook" => {
                let w = self.webhook.as_ref().ok_or("not configured")?;
                let body = serde_json::to_vec(&json!({
                    "id": rec.id, "ts": rec.ts, "key": rec.key, "severity": rec.severity,
                    "title": rec.title, "message": rec.message,
                }))
                .map_err(|e| e.to_string())?;
                let mut req = self
                    .http
                    .post(&w.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json");
                if let Some(secret) = &w.secret {
                    req = req.header("X-EchoPilot-Signature", sign(secret, &body));
                }
                req.body(body).send().await
            }
            other => return Err(format!("unknown channel {other}")),
        };
        // The URL holds the secret (bot token, webhook path): drop it from errors.
        let resp = resp.map_err(|e| e.without_url().to_string())?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", short(&body)));
        }
        if channel == "telegram" {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v["ok"] != true {
                return Err(format!(
                    "Telegram did not accept the message: {}",
                    short(&body)
                ));
            }
        }
        Ok(())
    }
}

/// `sha256=<hex HMAC-SHA256 of the body>` for the `X-EchoPilot-Signature` header.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    s.replace(char::is_control, " ")
}

async fn insert(store: &Store, rec: &AlertRecord, ts: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO alerts (id, ts, key, severity, title, message, channels, delivered, suppressed, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&rec.id)
    .bind(ts)
    .bind(&rec.key)
    .bind(&rec.severity)
    .bind(&rec.title)
    .bind(&rec.message)
    .bind(serde_json::to_string(&rec.channels).unwrap_or_else(|_| "[]".into()))
    .bind(rec.delivered as i64)
    .bind(rec.suppressed as i64)
    .bind(&rec.error)
    .execute(store.writer())
    .await?;
    Ok(())
}

/// Newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<AlertRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, ts, key, severity, title, message, channels, delivered, suppressed, error \
         FROM alerts ORDER BY ts DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            let channels: String = r.try_get("channels")?;
            Ok(AlertRecord {
                id: r.try_get("id")?,
                ts: rfc3339_ms(r.try_get("ts")?),
                key: r.try_get("key")?,
                severity: r.try_get("severity")?,
                title: r.try_get("title")?,
                message: r.try_get("message")?,
                channels: serde_json::from_str(&channels).unwrap_or_default(),
                delivered: r.try_get::<i64, _>("delivered")? != 0,
                suppressed: r.try_get::<i64, _>("suppressed")? != 0,
                error: r.try_get("error")?,
            })
        })
        .collect()
}

/// Register the `alert_rules` job (every minute, at second 30 so it sees the latest tick).
pub fn register(reg: &mut crate::jobs::JobRegistry) {
    reg.register(
        "alert_rules",
        "30 * * * * *",
        crate::jobs::handler(rules::evaluate_all),
    )
    .describe("evaluates alert rules (tick gaps, disk usage, self-heal requeues) and sends alerts");
}

/// Status-summary section `alerts`.
pub struct AlertsSummary;

impl crate::app::SummaryProvider for AlertsSummary {
    fn area(&self) -> &'static str {
        "alerts"
    }

    fn summary<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let since = now_ms() - 24 * 3600 * 1000;
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(delivered), 0) AS BIGINT) AS delivered, \
                 CAST(COALESCE(SUM(suppressed), 0) AS BIGINT) AS suppressed FROM alerts WHERE ts >= $1",
            )
            .bind(since)
            .fetch_one(state.store.reader())
            .await?;
            let n: i64 = row.try_get("n")?;
            let delivered: i64 = row.try_get("delivered")?;
            let suppressed: i64 = row.try_get("suppressed")?;
            Ok(json!({
                "last_24h": n,
                "delivered_24h": delivered,
                "suppressed_24h": suppressed,
                "undelivered_24h": n - delivered - suppressed,
                "channels": area::service(state).map(|a| a.channels()).unwrap_or_default(),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
