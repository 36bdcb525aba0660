//! Alerts: rules evaluated by the `alert_rules` job, delivery to Telegram (Bot API
//! `sendMessage`), a Slack incoming webhook and a generic (optionally HMAC-signed) webhook,
//! a cooldown per alert key kept in the database (so it holds across restarts and
//! replicas), and every alert stored in `alerts`.
//!
//! Transactional outbox: raising an alert writes its row and enqueues its delivery job
//! (`alerts.deliver`, [`deliver`]) in one transaction; queue workers deliver it with
//! retries and backoff, and the row records what was sent and the errors.
//!
//! Secrets (the bot token, which is part of the Telegram URL, and webhook URLs) are never
//! logged or returned: request errors are stripped of their URL and passed through
//! `logging::redact_secrets`.

pub mod api;
pub mod area;
pub mod deliver;
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
use crate::queue::{NewJob, Queue, SYSTEM_TENANT};
use crate::store::{Store, Tx};
use crate::util::{now_ms, random_id, rfc3339_ms};
pub use deliver::DELIVER_KIND;

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
    "delivery_attempts",
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
    queue: OnceLock<Queue>,
    /// Queue attempts per delivery (`alerts.delivery_attempts`).
    delivery_attempts: i64,
}

crate::text_enum! {
    /// How bad an alert is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Severity {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

/// An alert a rule (or an operator's test) wants to send.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Cooldown key: one delivery per key per cooldown window.
    pub key: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
}

/// A stored alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRecord {
    pub id: String,
    pub ts: String,
    pub key: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    /// Channels it is delivered to (empty when suppressed).
    pub channels: Vec<String>,
    /// Every channel accepted it.
    pub delivered: bool,
    /// Not sent: the key was in its cooldown window.
    pub suppressed: bool,
    /// Delivery failures per channel of the last attempt (secrets redacted).
    pub error: Option<String>,
    /// Channels that accepted it so far.
    pub sent: Vec<String>,
    /// Delivery attempts made (by the `alerts.deliver` queue job).
    pub attempts: i64,
    /// The queue job delivering it (not stored; set when it is raised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_job_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    ts: i64,
    key: String,
    severity: Severity,
    title: String,
    message: String,
    channels: crate::queue::JsonText,
    delivered: i64,
    suppressed: i64,
    error: Option<String>,
    sent: crate::queue::JsonText,
    attempts: i64,
}

impl TryFrom<AlertRow> for AlertRecord {
    type Error = sqlx::Error;
    fn try_from(r: AlertRow) -> Result<AlertRecord, sqlx::Error> {
        let list = |v: Value, col: &str| -> Result<Vec<String>, sqlx::Error> {
            serde_json::from_value(v).map_err(|e| sqlx::Error::ColumnDecode {
                index: col.to_string(),
                source: Box::new(e),
            })
        };
        Ok(AlertRecord {
            id: r.id,
            ts: rfc3339_ms(r.ts),
            key: r.key,
            severity: r.severity,
            title: r.title,
            message: r.message,
            channels: list(r.channels.0, "channels")?,
            delivered: r.delivered != 0,
            suppressed: r.suppressed != 0,
            error: r.error,
            sent: list(r.sent.0, "sent")?,
            attempts: r.attempts,
            delivery_job_id: None,
        })
    }
}

const ALERT_COLS: &str =
    "id, ts, key, severity, title, message, channels, delivered, suppressed, error, sent, attempts";

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
            queue: OnceLock::new(),
            delivery_attempts: raw.u64_in("alerts.delivery_attempts", 5, 1, 100)? as i64,
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

    /// Use `queue` for deliveries (set once by `server::start_areas`, before any alert).
    pub fn attach_queue(&self, queue: Queue) -> bool {
        self.queue.set(queue).is_ok()
    }

    /// Store the alert and enqueue its delivery in one transaction (see
    /// [`Alerts::raise_in_tx`]); returns the stored record (not yet delivered).
    pub async fn raise(&self, store: &Store, alert: NewAlert) -> anyhow::Result<AlertRecord> {
        let mut tx = store.begin_write().await?;
        let rec = self.raise_in_tx(store, &mut tx, alert).await?;
        tx.commit().await?;
        log_raised(&rec);
        Ok(rec)
    }

    /// Transactional outbox: claim the key's cooldown, write the alert row and enqueue its
    /// `alerts.deliver` job inside the caller's transaction, so the alert and its delivery
    /// exist together or not at all. A key in its cooldown window is stored as suppressed
    /// and nothing is enqueued; the claim is one conditional upsert, so two replicas
    /// raising the same key at once send it once.
    pub async fn raise_in_tx(
        &self,
        store: &Store,
        tx: &mut Tx,
        alert: NewAlert,
    ) -> anyhow::Result<AlertRecord> {
        let _ = store;
        let now = now_ms();
        let claimed = sqlx::query(
            "INSERT INTO alert_cooldowns (key, until_ms) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms \
             WHERE alert_cooldowns.until_ms <= $3",
        )
        .bind(&alert.key)
        .bind(now + self.cooldown_ms)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        let mut rec = AlertRecord {
            id: random_id("alert_", 10),
            ts: rfc3339_ms(now),
            key: alert.key.clone(),
            severity: alert.severity,
            title: alert.title.clone(),
            message: alert.message.clone(),
            channels: Vec::new(),
            delivered: false,
            suppressed: !claimed,
            error: None,
            sent: Vec::new(),
            attempts: 0,
            delivery_job_id: None,
        };
        if claimed {
            rec.channels = self.channels();
            if rec.channels.is_empty() {
                rec.error = Some("no alert channel is configured".to_string());
            }
        }
        if !rec.channels.is_empty() {
            let queue = self
                .queue
                .get()
                .ok_or_else(|| anyhow::anyhow!("the alert service has no queue attached"))?;
            let mut job = NewJob::new(DELIVER_KIND, json!({ "alert_id": rec.id }));
            job.max_attempts = Some(self.delivery_attempts);
            job.priority = 200;
            let e = queue.enqueue_in_tx(tx, SYSTEM_TENANT, job).await?;
            rec.delivery_job_id = Some(e.id);
        }
        insert(tx, &rec, now).await?;
        Ok(rec)
    }
}

/// `sha256=<hex HMAC-SHA256 of the body>` for the `X-EchoPilot-Signature` header.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn short(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    s.replace(char::is_control, " ")
}

async fn insert(tx: &mut Tx, rec: &AlertRecord, ts: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO alerts (id, ts, key, severity, title, message, channels, delivered, suppressed, error, sent, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]', 0)",
    )
    .bind(&rec.id)
    .bind(ts)
    .bind(&rec.key)
    .bind(rec.severity.as_str())
    .bind(&rec.title)
    .bind(&rec.message)
    .bind(serde_json::to_string(&rec.channels).unwrap_or_else(|_| "[]".into()))
    .bind(rec.delivered as i64)
    .bind(rec.suppressed as i64)
    .bind(&rec.error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn log_raised(rec: &AlertRecord) {
    if rec.suppressed {
        metrics::counter!(ALERTS_TOTAL, "key" => rec.key.clone(), "result" => "suppressed")
            .increment(1);
        tracing::info!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity.as_str(), "alert suppressed (cooldown)");
    } else if let Some(job) = &rec.delivery_job_id {
        tracing::info!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity.as_str(), channels = %rec.channels.join(","), queue_job_id = %job, "alert raised; delivery enqueued");
    } else {
        metrics::counter!(ALERTS_TOTAL, "key" => rec.key.clone(), "result" => "failed")
            .increment(1);
        tracing::warn!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity.as_str(), error = rec.error.as_deref().unwrap_or(""), "alert not delivered");
    }
}

/// One alert.
pub async fn load(store: &Store, id: &str) -> Result<Option<AlertRecord>, sqlx::Error> {
    let row: Option<AlertRow> =
        sqlx::query_as(&format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(store.reader())
            .await?;
    row.map(AlertRecord::try_from).transpose()
}

/// Newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<AlertRecord>, sqlx::Error> {
    let rows: Vec<AlertRow> = sqlx::query_as(&format!(
        "SELECT {ALERT_COLS} FROM alerts ORDER BY ts DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.into_iter().map(AlertRecord::try_from).collect()
}

/// Register the `alert_rules` job (every minute, at second 30 so it sees the latest tick).
pub fn register(reg: &mut crate::jobs::JobRegistry) {
    reg.register(
        "alert_rules",
        "30 * * * * *",
        crate::jobs::handler(rules::evaluate_all),
    )
    .timeout(Duration::from_secs(120))
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
    use crate::store::testing;

    #[tokio::test]
    async fn the_alert_and_its_delivery_job_commit_or_roll_back_together() {
        for b in testing::backends() {
            let (store, _db) = testing::fresh(b).await;
            let dir = std::env::temp_dir();
            let mut cfg = Config::for_data_dir(&dir);
            cfg.raw.set_str(
                "alerts.webhook_url",
                "http://127.0.0.1:9/hook",
                crate::config::Source::Flag,
            );
            let alerts = Alerts::from_config(&cfg).unwrap();
            let qcfg = crate::queue::QueueConfig::from_config(&cfg).unwrap();
            let (_stop, rx) = tokio::sync::watch::channel(false);
            let q = Queue::new(store.clone(), qcfg, "test", rx);
            q.register(DELIVER_KIND, None, |_c, _p| async { Ok(Value::Null) });
            alerts.attach_queue(q.clone());
            let alert = |key: &str| NewAlert {
                key: key.into(),
                severity: Severity::Warning,
                title: "t".into(),
                message: "m".into(),
            };
            let mut tx = store.begin_write().await.unwrap();
            let rec = alerts
                .raise_in_tx(&store, &mut tx, alert("k1"))
                .await
                .unwrap();
            let job = rec.delivery_job_id.clone().expect("delivery enqueued");
            tx.rollback().await.unwrap();
            assert!(list(&store, 10).await.unwrap().is_empty(), "{b}: no alert");
            assert!(
                q.get(SYSTEM_TENANT, &job).await.unwrap().is_none(),
                "{b}: no job"
            );
            // The cooldown claim rolled back too: the same key raises again.
            let rec = alerts.raise(&store, alert("k1")).await.unwrap();
            assert!(!rec.suppressed, "{b}");
            let stored = load(&store, &rec.id).await.unwrap().unwrap();
            assert_eq!(stored.channels, vec!["webhook".to_string()]);
            assert!(!stored.delivered && stored.sent.is_empty() && stored.attempts == 0);
            let j = q
                .get(SYSTEM_TENANT, rec.delivery_job_id.as_deref().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(j.kind, DELIVER_KIND);
            assert_eq!(j.payload["alert_id"], rec.id.as_str());
            // Within the cooldown: stored as suppressed, nothing enqueued.
            let again = alerts.raise(&store, alert("k1")).await.unwrap();
            assert!(again.suppressed && again.delivery_job_id.is_none(), "{b}");
        }
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
