//! Delivery: the `alerts.deliver` queue kind sends a stored alert to each configured
//! channel still missing from its `sent` list, so a retry (with the queue's backoff) never
//! sends twice to a channel that accepted it. Every attempt records `sent`, `attempts`,
//! `delivered` and the redacted per-channel errors on the alert row. When the last attempt
//! fails and nothing got out, the key's cooldown is given back so the next evaluation
//! raises it again.

use serde_json::{json, Value};

use super::{load, short, sign, AlertRecord, Alerts, ALERTS_TOTAL};
use crate::app::AppState;
use crate::queue::{JobCtx, Queue};
use crate::store::Store;
use crate::util::now_ms;

pub const DELIVER_KIND: &str = "alerts.deliver";

/// Register the delivery kind on `queue` (it finds the alert service in `state`).
pub fn register(queue: &Queue, state: &AppState) {
    let st = state.clone();
    let validate: crate::queue::kinds::ValidateFn = std::sync::Arc::new(|p| {
        p.get("alert_id")
            .and_then(Value::as_str)
            .map(|_| ())
            .ok_or_else(|| "payload must be {\"alert_id\": \"alert_…\"}".to_string())
    });
    let spec = crate::queue::KindSpec {
        validate: Some(validate),
        internal: true,
        ..Default::default()
    };
    queue.register_kind(DELIVER_KIND, spec, move |ctx, payload| {
        let st = st.clone();
        async move {
            let alerts = super::area::service(&st)
                .ok_or_else(|| "the alert service is not started".to_string())?;
            let id = payload["alert_id"].as_str().unwrap_or_default().to_string();
            alerts.deliver(&st.store, &ctx, &id).await
        }
    });
}

impl Alerts {
    /// One delivery attempt of alert `id`.
    pub async fn deliver(&self, store: &Store, ctx: &JobCtx, id: &str) -> Result<Value, String> {
        let db = |e: sqlx::Error| format!("database: {e}");
        let rec = load(store, id)
            .await
            .map_err(db)?
            .ok_or_else(|| format!("no alert {id:?}"))?;
        let mut sent = rec.sent.clone();
        let mut errors = Vec::new();
        for ch in rec.channels.iter().filter(|c| !rec.sent.contains(c)) {
            match self.send(ch, &rec).await {
                Ok(()) => sent.push(ch.clone()),
                Err(e) => errors.push(format!("{ch}: {}", crate::logging::redact_secrets(&e))),
            }
        }
        let delivered = errors.is_empty();
        let error = (!delivered).then(|| errors.join("; "));
        sqlx::query(
            "UPDATE alerts SET delivered = $1, error = $2, sent = $3, attempts = attempts + 1 WHERE id = $4",
        )
        .bind(delivered as i64)
        .bind(&error)
        .bind(serde_json::to_string(&sent).unwrap_or_else(|_| "[]".into()))
        .bind(id)
        .execute(store.writer())
        .await
        .map_err(db)?;
        let last = ctx.attempt >= ctx.max_attempts;
        match &error {
            None => {
                metrics::counter!(ALERTS_TOTAL, "key" => rec.key.clone(), "result" => "delivered")
                    .increment(1);
                tracing::info!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity.as_str(), channels = %rec.channels.join(","), attempt = ctx.attempt, "alert delivered");
                Ok(json!({"alert_id": id, "sent": sent}))
            }
            Some(err) => {
                tracing::warn!(target: "alerts", alert_id = %rec.id, alert_key = %rec.key, severity = %rec.severity.as_str(), channels = %rec.channels.join(","), attempt = ctx.attempt, max_attempts = ctx.max_attempts, error = %err, "alert not delivered everywhere");
                if last {
                    metrics::counter!(ALERTS_TOTAL, "key" => rec.key.clone(), "result" => "failed")
                        .increment(1);
                    if sent.is_empty() {
                        // Nothing got out: give the key back so the next evaluation tries again.
                        sqlx::query("UPDATE alert_cooldowns SET until_ms = $1 WHERE key = $2")
                            .bind(now_ms())
                            .bind(&rec.key)
                            .execute(store.writer())
                            .await
                            .map_err(db)?;
                    }
                }
                Err(err.clone())
            }
        }
    }

    async fn send(&self, channel: &str, rec: &AlertRecord) -> Result<(), String> {
        let text = format!(
            "[{}] {}\n{}",
            rec.severity.as_str().to_uppercase(),
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
                    "id": rec.id, "ts": rec.ts, "key": rec.key, "severity": rec.severity.as_str(),
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
