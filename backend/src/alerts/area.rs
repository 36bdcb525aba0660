//! The `alerts` module: rules evaluated by the `alert_rules` job, delivery to Telegram,
//! Slack and a signed webhook, cooldowns, stored alerts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{api, Alerts};
use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::area::{Area, Light, Probe};
use crate::config::{ConfigError, ConfigMap};

crate::service_from_ref!(Arc<Alerts>);

/// The alert service, when the module runs.
pub fn service(state: &AppState) -> Option<Arc<Alerts>> {
    state.service::<Arc<Alerts>>()
}

/// `[alerts]`: every key, so an unknown one (a typo) stops the server naming it. Values
/// are checked further (URLs, ranges, token shape) by `Alerts::from_config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSection {
    pub telegram_bot_token: String,
    pub telegram_chat_id: String,
    pub telegram_base_url: String,
    pub slack_webhook_url: String,
    pub webhook_url: String,
    pub webhook_secret: String,
    pub cooldown_secs: u64,
    pub timeout_secs: u64,
    pub disk_threshold_pct: u64,
    pub tick_gap_secs: u64,
    pub tick_gap_count: u64,
    pub selfheal_requeue_max: u64,
    /// Queue attempts per delivery (the `alerts.deliver` job).
    pub delivery_attempts: u64,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            telegram_bot_token: String::new(),
            telegram_chat_id: String::new(),
            telegram_base_url: String::new(),
            slack_webhook_url: String::new(),
            webhook_url: String::new(),
            webhook_secret: String::new(),
            cooldown_secs: 1800,
            timeout_secs: 10,
            disk_threshold_pct: 85,
            tick_gap_secs: 70,
            tick_gap_count: 3,
            selfheal_requeue_max: 3,
            delivery_attempts: 5,
        }
    }
}

pub struct AlertsArea;

impl Area for AlertsArea {
    fn name(&self) -> &'static str {
        "alerts"
    }
    fn about(&self) -> &'static str {
        "alerts: rules, Telegram/Slack/webhook delivery with cooldowns, alert history"
    }
    fn is_module(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["alerts", "alert_cooldowns"]
    }
    fn log_files(&self) -> &'static [&'static str] {
        &["alerts"]
    }
    fn check_config(&self, raw: &ConfigMap) -> Result<(), ConfigError> {
        raw.section::<AlertsSection>("alerts").map(|_| ())
    }
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(api::list_alerts))
            .routes(routes!(api::test_alert))
    }
    fn init<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let alerts = Alerts::from_config(&state.cfg)?;
            // Self-heal owns its history; the rule asks it through this source.
            alerts.set_selfheal_requeue_source(Arc::new(|store| {
                Box::pin(async move { Ok(crate::selfheal::requeue_count_24h(&store).await) })
            }));
            state.provide(Arc::new(alerts));
            Ok(())
        })
    }
    fn jobs(&self, _state: &AppState, reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        super::register(reg);
        Ok(())
    }
    /// Deliveries are queue jobs (`alerts.deliver`), enqueued with the alert (outbox).
    fn kinds(&self, state: &AppState, queue: &crate::queue::Queue) -> anyhow::Result<()> {
        let alerts = state.require::<Arc<Alerts>>("alerts", "alerts")?;
        alerts.attach_queue(queue.clone());
        super::deliver::register(queue, state);
        Ok(())
    }
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        Some(Arc::new(super::AlertsSummary))
    }
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![Arc::new(AlertsProbe)]
    }
}

struct AlertsProbe;

impl Probe for AlertsProbe {
    fn name(&self) -> &'static str {
        "alerts"
    }
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        _tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>> {
        Box::pin(async move {
            let a = state.require::<Arc<Alerts>>("telemetry", "alerts")?;
            let list = super::list(&state.store, 500).await?;
            let now = crate::util::now_ms();
            let age_ms = |ts: &str| {
                chrono::DateTime::parse_from_rfc3339(ts)
                    .map(|t| now - t.timestamp_millis())
                    .unwrap_or(i64::MAX)
            };
            let last_hour: Vec<_> = list.iter().filter(|x| age_ms(&x.ts) <= 3_600_000).collect();
            let day = list.iter().filter(|x| age_ms(&x.ts) <= 86_400_000).count();
            // Raised, not suppressed by its cooldown, and not accepted by every channel.
            let failed = last_hour
                .iter()
                .filter(|x| !x.delivered && !x.suppressed && !x.channels.is_empty())
                .count();
            let critical = last_hour
                .iter()
                .filter(|x| x.severity == "critical")
                .count();
            let warning = last_hour.iter().filter(|x| x.severity == "warning").count();
            let light = if failed > 0 || critical > 0 {
                Light::Red
            } else if warning > 0 {
                Light::Yellow
            } else {
                Light::Green
            };
            let latest = list.first().map(|x| {
                json!({"ts": x.ts, "key": x.key, "severity": x.severity, "title": x.title,
                       "delivered": x.delivered, "suppressed": x.suppressed})
            });
            Ok((
                light,
                json!({
                    "channels": a.channels(),
                    "last_hour": last_hour.len(),
                    "last_hour_critical": critical,
                    "last_hour_warning": warning,
                    "last_hour_undelivered": failed,
                    "last_24h": day,
                    "latest": latest,
                }),
            ))
        })
    }
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let a = state.require::<Arc<Alerts>>("telemetry", "alerts")?;
            let last = super::list(&state.store, 1).await?;
            let ch = a.channels();
            let channels = if ch.is_empty() {
                "no delivery channel configured".to_string()
            } else {
                format!("channels: {}", ch.join(", "))
            };
            Ok(match last.first() {
                Some(x) => format!("{channels}; last alert {} at {}", x.key, x.ts),
                None => format!("{channels}; no alert raised yet"),
            })
        })
    }
}
