//! The `compliance` module: what auditors ask for.
//!
//! - [`webhook`]: `POST /api/v1/compliance/webhook`, authenticated by Standard Webhooks
//!   signatures (several secrets at once, each mapped to a tenant), a 5-minute window and
//!   dedupe by `webhook-id`; events in `compliance_hooks` and `logs/compliance_hooks.*.ndjson`.
//! - [`evidence`]: `POST /api/v1/compliance/evidence/export` answers a zip of the sections
//!   the running areas provide ([`crate::area::Evidence`]) and a signed `evidence.json`;
//!   `echopilot evidence verify FILE.zip` checks one offline ([`evidence::verify_bundle`]).
//! - [`gdpr`]: `GET /api/v1/gdpr/export`, `DELETE /api/v1/gdpr/delete` run every area's
//!   part ([`crate::area::Gdpr`]).
//!
//! See docs/COMPLIANCE.md.

pub mod api;
pub mod area;
pub mod evidence;
pub mod gdpr;
pub mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::api::auth_failures::RefusalLog;
use crate::config::{ConfigError, ConfigMap};
use crate::store::Store;

pub const WEBHOOKS_TOTAL: &str = "echopilot_compliance_webhooks_total";
pub const EVIDENCE_EXPORTS_TOTAL: &str = "echopilot_compliance_evidence_exports_total";
pub const GDPR_REQUESTS_TOTAL: &str = "echopilot_compliance_gdpr_requests_total";

/// `[compliance]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceSection {
    /// Webhook secrets by name: `"<tenant>:whsec_<base64>"` (Standard Webhooks format).
    /// Several may map to one tenant, so a secret can be rotated without downtime. From
    /// the environment: `ECHOPILOT_COMPLIANCE__WEBHOOK_SECRETS__<NAME>=tenant:whsec_…`.
    /// Secret: never logged, never shown; the name is what logs and events carry.
    pub webhook_secrets: BTreeMap<String, String>,
    /// How far `webhook-timestamp` may be from the server's clock (30..=3600 s, default
    /// 300: the Standard Webhooks recommendation).
    pub webhook_tolerance_secs: u64,
    /// Rejected webhook requests audited per minute (0..=10000, default 60); beyond that
    /// they are counted and logged only, so anyone on the network cannot grow the audit log
    /// without bound.
    pub audit_rejections_per_minute: u64,
    /// Rejected webhook requests logged one line each per interval (0..=10000, default
    /// 20); past that, one summary line per interval counts the rest (as the 401s of
    /// keyed routes are logged). Audit records follow `audit_rejections_per_minute`.
    pub rejection_log_budget: u64,
    /// The interval of `rejection_log_budget` and its summary line (1..=86400 s, default 60).
    pub rejection_log_interval_secs: u64,
    /// Ed25519 key that signs `evidence.json` (64 hex characters, an Ed25519 seed);
    /// default `<data-dir>/evidence.key`, created on first start with mode 0600.
    pub evidence_key_file: String,
    /// Longest period one evidence bundle may cover (1..=3660 days, default 366).
    pub evidence_max_days: u64,
    /// Most audit records one bundle holds (1..=1000000, default 100000); a longer period
    /// is refused with 422 naming how many records it has.
    pub evidence_max_records: u64,
}

impl std::fmt::Debug for ComplianceSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComplianceSection")
            .field(
                "webhook_secrets",
                &self.webhook_secrets.keys().collect::<Vec<_>>(),
            )
            .field("webhook_tolerance_secs", &self.webhook_tolerance_secs)
            .field("evidence_key_file", &self.evidence_key_file)
            .finish_non_exhaustive()
    }
}

impl Default for ComplianceSection {
    fn default() -> Self {
        ComplianceSection {
            webhook_secrets: BTreeMap::new(),
            webhook_tolerance_secs: 300,
            audit_rejections_per_minute: 60,
            rejection_log_budget: 20,
            rejection_log_interval_secs: 60,
            evidence_key_file: String::new(),
            evidence_max_days: 366,
            evidence_max_records: 100_000,
        }
    }
}

/// One configured webhook secret: its name, the tenant it maps to, the HMAC key.
#[derive(Clone)]
pub struct WebhookSecret {
    pub name: String,
    pub tenant: String,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// Checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub secrets: Vec<WebhookSecret>,
    pub tolerance_secs: i64,
    pub audit_rejections_per_minute: u64,
    pub rejection_log_budget: u64,
    pub rejection_log_interval_secs: u64,
    pub evidence_key_file: String,
    pub evidence_max_days: i64,
    pub evidence_max_records: i64,
}

impl Settings {
    pub fn load(raw: &ConfigMap) -> Result<Settings, ConfigError> {
        let s: ComplianceSection = raw.section("compliance")?;
        raw.check_range(
            "compliance.webhook_tolerance_secs",
            s.webhook_tolerance_secs,
            30,
            3600,
        )?;
        raw.check_range(
            "compliance.audit_rejections_per_minute",
            s.audit_rejections_per_minute,
            0,
            10_000,
        )?;
        raw.check_range(
            "compliance.rejection_log_budget",
            s.rejection_log_budget,
            0,
            10_000,
        )?;
        raw.check_range(
            "compliance.rejection_log_interval_secs",
            s.rejection_log_interval_secs,
            1,
            86_400,
        )?;
        raw.check_range("compliance.evidence_max_days", s.evidence_max_days, 1, 3660)?;
        raw.check_range(
            "compliance.evidence_max_records",
            s.evidence_max_records,
            1,
            1_000_000,
        )?;
        let mut secrets = Vec::new();
        for (name, value) in &s.webhook_secrets {
            let key = format!("compliance.webhook_secrets.{name}");
            // Messages never echo the value: it is a secret.
            let (tenant, secret) = value
                .split_once(':')
                .ok_or_else(|| raw.error(&key, "expected \"<tenant>:whsec_<base64>\""))?;
            let tenant = tenant.trim();
            if !crate::auth::valid_tenant_id(tenant) {
                return Err(raw.error(
                    &key,
                    "the part before ':' must be a tenant id (lowercase letters, digits, - and _)",
                ));
            }
            let key_bytes = webhook::parse_secret(secret.trim()).map_err(|m| raw.error(&key, m))?;
            secrets.push(WebhookSecret {
                name: name.clone(),
                tenant: tenant.to_string(),
                key: key_bytes,
            });
        }
        Ok(Settings {
            secrets,
            tolerance_secs: s.webhook_tolerance_secs as i64,
            audit_rejections_per_minute: s.audit_rejections_per_minute,
            rejection_log_budget: s.rejection_log_budget,
            rejection_log_interval_secs: s.rejection_log_interval_secs,
            evidence_key_file: s.evidence_key_file.trim().to_string(),
            evidence_max_days: s.evidence_max_days as i64,
            evidence_max_records: s.evidence_max_records as i64,
        })
    }
}

/// Process-lifetime counters (the `/metrics` counters carry the same numbers).
#[derive(Default)]
pub struct Counters {
    pub webhooks_accepted: AtomicU64,
    pub webhooks_rejected: AtomicU64,
    pub rejections_unaudited: AtomicU64,
    pub evidence_exports: AtomicU64,
    pub gdpr_exports: AtomicU64,
    pub gdpr_deletes: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The compliance service (`State<Compliance>`).
#[derive(Clone)]
pub struct Compliance {
    pub(crate) store: Store,
    pub(crate) settings: Arc<Settings>,
    pub(crate) evidence_key: Arc<SigningKey>,
    pub(crate) counters: Arc<Counters>,
    /// Rejections audited in the current minute: (minute, count).
    pub(crate) rejection_window: Arc<std::sync::Mutex<(i64, u64)>>,
    /// Rejections logged in the current interval (a line each within the budget, then a
    /// summary line: [`Compliance::flush_rejection_log`]).
    pub(crate) rejection_log: Arc<RefusalLog>,
}

crate::service_from_ref!(Compliance);

impl Compliance {
    pub fn new(store: Store, settings: Settings, data_dir: &Path) -> anyhow::Result<Compliance> {
        let path = if settings.evidence_key_file.is_empty() {
            data_dir.join("evidence.key")
        } else {
            PathBuf::from(&settings.evidence_key_file)
        };
        let key = crate::audit::heads::load_or_create_signing_key(&path, "evidence signing key")?;
        Ok(Compliance {
            store,
            evidence_key: Arc::new(key),
            counters: Arc::default(),
            rejection_window: Arc::default(),
            rejection_log: Arc::new(RefusalLog::new(
                webhook::REJECTION_REASONS,
                settings.rejection_log_budget,
            )),
            settings: Arc::new(settings),
        })
    }

    /// The key that verifies `evidence.json` signatures, hex.
    pub fn evidence_public_key(&self) -> String {
        hex::encode(self.evidence_key.verifying_key().as_bytes())
    }

    /// The summary line of the interval that just ended, when more rejections came than
    /// were logged one by one (run every `rejection_log_interval_secs`).
    pub fn flush_rejection_log(&self) {
        let Some(w) = self.rejection_log.take() else {
            return;
        };
        if w.unlogged == 0 {
            return;
        }
        tracing::warn!(
            target: "compliance_hooks",
            interval_secs = self.settings.rejection_log_interval_secs,
            rejected = w.total,
            logged_each = w.total - w.unlogged,
            not_logged_each = w.unlogged,
            malformed = w.count("malformed"),
            bad_signature = w.count("bad_signature"),
            stale = w.count("stale"),
            replayed = w.count("replayed"),
            addresses = w.addresses,
            top_addresses = %w.top_addresses,
            "compliance webhook rejections over the log budget"
        );
    }

    /// Whether one more rejection may be audited this minute.
    pub(crate) fn may_audit_rejection(&self, now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let mut w = self
            .rejection_window
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if w.0 != minute {
            *w = (minute, 0);
        }
        if w.1 >= self.settings.audit_rejections_per_minute {
            return false;
        }
        w.1 += 1;
        true
    }
}
