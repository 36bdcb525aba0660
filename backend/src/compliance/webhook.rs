//! Compliance webhooks, authenticated by [Standard Webhooks] signatures: the sender signs
//! `<webhook-id>.<webhook-timestamp>.<body>` with HMAC-SHA256 under a shared secret
//! (`whsec_<base64>`) and sends `webhook-signature: v1,<base64>` (several, space
//! separated, during a rotation). A request is accepted when one signature matches one
//! configured secret, its timestamp is within the window, and its id was not seen for
//! that tenant before.
//!
//! [Standard Webhooks]: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Compliance, Counters, WebhookSecret, WEBHOOKS_TOTAL};
use crate::audit::{self, NewAudit};
use crate::auth::DEFAULT_TENANT;
use crate::store::in_table;
use crate::util::{now_ms, rfc3339_ms, truncate_chars};

type HmacSha256 = Hmac<Sha256>;

/// Longest `webhook-id` kept (Standard Webhooks ids are short; this bounds the key).
pub const MAX_ID_CHARS: usize = 256;

/// Decode a `whsec_<base64>` secret into the HMAC key (24..=64 bytes, per the spec).
/// The message never contains the secret.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, String> {
    let b64 = s.strip_prefix("whsec_").ok_or_else(|| {
        "the secret must start with whsec_ (Standard Webhooks format)".to_string()
    })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the part after whsec_ must be standard base64".to_string())?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the secret must decode to 24 to 64 bytes, got {}",
            key.len()
        ));
    }
    Ok(key)
}

/// The `v1,<base64>` signature of a message (what a sender puts in `webhook-signature`).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Why a request was refused (401 unless noted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A `webhook-*` header is missing or malformed.
    Malformed(String),
    /// No configured secret made any of the signatures.
    BadSignature,
    /// Signed, but the timestamp is outside the window.
    Stale { skew_secs: i64 },
    /// Signed and fresh, but this id was already received for the tenant.
    Replayed { first_received: String },
}

impl Rejection {
    /// The reason, one of [`REJECTION_REASONS`].
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale { .. } => "stale",
            Rejection::Replayed { .. } => "replayed",
        }
    }

    pub fn detail(&self, tolerance_secs: i64) -> String {
        match self {
            Rejection::Malformed(m) => m.clone(),
            Rejection::BadSignature => {
                "webhook-signature does not match any configured secret".into()
            }
            Rejection::Stale { skew_secs } => format!(
                "webhook-timestamp is {skew_secs} s from the server's clock; the window is {tolerance_secs} s"
            ),
            Rejection::Replayed { first_received } => format!(
                "this webhook-id was already received at {first_received}; a replay is refused"
            ),
        }
    }
}

/// A refusal, and the secret that signed the message when one did (a stale or replayed
/// but genuine message names its tenant).
#[derive(Debug)]
pub struct Refused<'s> {
    pub rejection: Rejection,
    pub signer: Option<&'s WebhookSecret>,
}

impl From<Rejection> for Refused<'_> {
    fn from(rejection: Rejection) -> Self {
        Refused {
            rejection,
            signer: None,
        }
    }
}

/// The three headers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Check headers and body against the secrets at `now_ms`: the matching secret, or why
/// not. The id-replay check needs the database and happens after this.
pub fn authenticate<'s>(
    secrets: &'s [WebhookSecret],
    h: SignedHeaders<'_>,
    body: &[u8],
    now_ms: i64,
    tolerance_secs: i64,
) -> Result<(&'s WebhookSecret, String, i64), Refused<'s>> {
    let missing = |name: &str| Rejection::Malformed(format!("the {name} header is missing"));
    let id = h.id.ok_or_else(|| missing("webhook-id"))?.trim();
    if id.is_empty()
        || id.chars().count() > MAX_ID_CHARS
        || id.chars().any(|c| c.is_control() || c == '.')
    {
        return Err(Rejection::Malformed(format!(
            "webhook-id must be 1 to {MAX_ID_CHARS} printable characters without '.'"
        ))
        .into());
    }
    let ts_text = h
        .timestamp
        .ok_or_else(|| missing("webhook-timestamp"))?
        .trim();
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| Rejection::Malformed("webhook-timestamp must be whole Unix seconds".into()))?;
    let sigs = h.signature.ok_or_else(|| missing("webhook-signature"))?;
    // Every v1 signature the sender offers; other versions are skipped (the spec lets a
    // sender list several).
    let offered: Vec<Vec<u8>> = sigs
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .collect();
    let mut matched = None;
    'secrets: for secret in secrets {
        for sig in &offered {
            let mut mac = HmacSha256::new_from_slice(&secret.key).expect("any key length");
            mac.update(format!("{id}.{ts_text}.").as_bytes());
            mac.update(body);
            // Constant-time comparison.
            if mac.verify_slice(sig).is_ok() {
                matched = Some(secret);
                break 'secrets;
            }
        }
    }
    let secret = matched.ok_or(Rejection::BadSignature)?;
    let skew = now_ms.div_euclid(1000).saturating_sub(ts).saturating_abs();
    if skew > tolerance_secs {
        return Err(Refused {
            rejection: Rejection::Stale { skew_secs: skew },
            signer: Some(secret),
        });
    }
    Ok((secret, id.to_string(), ts))
}

/// Every [`Rejection::reason`] (the counts of the rejection log's summary line).
pub const REJECTION_REASONS: &[&str] = &["malformed", "bad_signature", "stale", "replayed"];

/// A stored event, as `GET /api/v1/compliance/hooks` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HookEvent {
    pub webhook_id: String,
    /// Name of the secret that signed it (`[compliance.webhook_secrets] <name>`).
    pub secret_name: String,
    /// The payload's `type`, when it is a string.
    pub event_type: Option<String>,
    /// `webhook-timestamp`, RFC 3339.
    pub sent_at: String,
    pub received_at: String,
    /// SHA-256 of the body as received, hex.
    pub body_sha256: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HookList {
    pub hooks: Vec<HookEvent>,
}

/// What the sender gets back for an accepted event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HookAccepted {
    pub accepted: bool,
    pub webhook_id: String,
    pub received_at: String,
}

#[derive(sqlx::FromRow)]
struct HookRow {
    webhook_id: String,
    secret_name: String,
    event_type: Option<String>,
    sent_at: i64,
    received_at: i64,
    body_sha256: String,
    payload: crate::store::Json<Value>,
}

/// Outcome of a delivery that passed the signature and window checks.
pub enum Stored {
    Accepted(HookAccepted),
    Replayed(Rejection),
}

impl Compliance {
    /// Store an authenticated event (and its audit record) unless its id was seen
    /// before for the tenant.
    pub async fn store_event(
        &self,
        secret: &WebhookSecret,
        webhook_id: &str,
        sent_at_secs: i64,
        body: &[u8],
        payload: Value,
        request_id: &str,
    ) -> Result<Stored, sqlx::Error> {
        let now = now_ms();
        let sha = hex::encode(Sha256::digest(body));
        let event_type = payload
            .get("type")
            .and_then(Value::as_str)
            .map(|t| truncate_chars(t, 200));
        let mut tx = self.store.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO compliance_hooks (tenant_id, webhook_id, secret_name, event_type, sent_at, received_at, body_sha256, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&secret.tenant)
        .bind(webhook_id)
        .bind(&secret.name)
        .bind(event_type.clone())
        .bind(sent_at_secs.saturating_mul(1000))
        .bind(now)
        .bind(&sha)
        .bind(payload.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let first: i64 = sqlx::query_scalar(
                "SELECT received_at FROM compliance_hooks WHERE tenant_id = $1 AND webhook_id = $2",
            )
            .bind(&secret.tenant)
            .bind(webhook_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            return Ok(Stored::Replayed(Rejection::Replayed {
                first_received: rfc3339_ms(first),
            }));
        }
        let rec = NewAudit::new(
            &secret.tenant,
            &format!("webhook:{}", secret.name),
            "compliance.webhook",
            webhook_id,
            "ok",
            request_id,
        )
        .detail(json!({"event_type": event_type, "body_sha256": sha, "bytes": body.len()}));
        audit::append(&self.store, &mut tx, rec).await?;
        tx.commit().await?;
        Counters::bump(&self.counters.webhooks_accepted);
        metrics::counter!(WEBHOOKS_TOTAL, "result" => "accepted").increment(1);
        tracing::info!(
            target: "compliance_hooks",
            tenant_id = %secret.tenant,
            webhook_id,
            secret_name = %secret.name,
            event_type = event_type.as_deref().unwrap_or(""),
            sent_at = %rfc3339_ms(sent_at_secs.saturating_mul(1000)),
            body_sha256 = %sha,
            payload = %payload,
            "compliance webhook accepted"
        );
        Ok(Stored::Accepted(HookAccepted {
            accepted: true,
            webhook_id: webhook_id.to_string(),
            received_at: rfc3339_ms(now),
        }))
    }

    /// Count, log (a line each within `[compliance] rejection_log_budget` per interval,
    /// then the interval's summary line) and (within `audit_rejections_per_minute`) audit a
    /// refused delivery from `peer`. `tenant` is the signing secret's when the signature
    /// matched.
    #[allow(clippy::too_many_arguments)]
    pub async fn reject(
        &self,
        peer: std::net::IpAddr,
        rejection: &Rejection,
        tenant: Option<&str>,
        secret_name: Option<&str>,
        webhook_id: Option<&str>,
        request_id: &str,
    ) {
        Counters::bump(&self.counters.webhooks_rejected);
        metrics::counter!(WEBHOOKS_TOTAL, "result" => rejection.reason()).increment(1);
        let id = webhook_id
            .map(|i| truncate_chars(i, 80))
            .unwrap_or_default();
        let tenant = tenant.unwrap_or(DEFAULT_TENANT);
        if self.rejection_log.count(peer, rejection.reason()) {
            tracing::warn!(
                target: "compliance_hooks",
                tenant_id = tenant,
                webhook_id = %id,
                secret_name = secret_name.unwrap_or(""),
                reason = rejection.reason(),
                "compliance webhook rejected"
            );
        }
        if !self.may_audit_rejection(now_ms()) {
            Counters::bump(&self.counters.rejections_unaudited);
            return;
        }
        let actor = match secret_name {
            Some(n) => format!("webhook:{n}"),
            None => "webhook".to_string(),
        };
        let rec = NewAudit::new(
            tenant,
            &actor,
            "compliance.webhook",
            &id,
            "denied",
            request_id,
        )
        .detail(json!({"reason": rejection.reason()}));
        if let Err(e) = audit::record(&self.store, rec).await {
            tracing::error!(target: "compliance_hooks", error = %e, "could not audit a rejected webhook");
        }
    }

    /// The tenant's events, newest first.
    pub async fn list_hooks(
        &self,
        tenant: &str,
        event_type: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HookEvent>, sqlx::Error> {
        let rows: Vec<HookRow> = sqlx::query_as(
            "SELECT webhook_id, secret_name, event_type, sent_at, received_at, body_sha256, payload \
             FROM compliance_hooks WHERE tenant_id = $1 AND ($2 = '' OR event_type = $2) \
             ORDER BY received_at DESC, webhook_id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(event_type.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store.reader())
        .await
        .map_err(in_table("compliance_hooks", None))?;
        Ok(rows.into_iter().map(HookEvent::from).collect())
    }

    /// Events received for the tenant (the status summary).
    pub async fn count_hooks(&self, tenant: &str) -> Result<(i64, Option<i64>), sqlx::Error> {
        let row: (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(received_at) FROM compliance_hooks WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(self.store.reader())
        .await?;
        Ok(row)
    }
}

/// The subject as a whole JSON string value, as it appears in a stored payload (stored as
/// serde_json writes them, so the encoding is the same).
pub fn as_json_string(subject: &str) -> String {
    Value::String(subject.to_string()).to_string()
}

/// The tenant's events whose payload holds `subject` as a string value (GDPR export).
pub async fn hooks_mentioning(
    store: &crate::store::Store,
    tenant: &str,
    subject: &str,
) -> Result<Vec<HookEvent>, sqlx::Error> {
    let rows: Vec<HookRow> = sqlx::query_as(&format!(
        "SELECT webhook_id, secret_name, event_type, sent_at, received_at, body_sha256, payload \
         FROM compliance_hooks WHERE tenant_id = $1 AND {} ORDER BY received_at, webhook_id",
        store.contains_sql("payload", "$2")
    ))
    .bind(tenant)
    .bind(as_json_string(subject))
    .fetch_all(store.reader())
    .await
    .map_err(in_table("compliance_hooks", None))?;
    Ok(rows.into_iter().map(HookEvent::from).collect())
}

/// The statement deleting the tenant's (`$1`) events whose payload holds `$2` (the
/// subject as [`as_json_string`]).
pub fn delete_mentioning_sql(store: &crate::store::Store) -> String {
    format!(
        "DELETE FROM compliance_hooks WHERE tenant_id = $1 AND {}",
        store.contains_sql("payload", "$2")
    )
}

impl From<HookRow> for HookEvent {
    fn from(r: HookRow) -> Self {
        HookEvent {
            webhook_id: r.webhook_id,
            secret_name: r.secret_name,
            event_type: r.event_type,
            sent_at: rfc3339_ms(r.sent_at),
            received_at: rfc3339_ms(r.received_at),
            body_sha256: r.body_sha256,
            payload: r.payload.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, tenant: &str, key: &[u8]) -> WebhookSecret {
        WebhookSecret {
            name: name.into(),
            tenant: tenant.into(),
            key: key.to_vec(),
        }
    }

    #[test]
    fn the_spec_example_signature_verifies() {
        // The example of the Standard Webhooks / Svix documentation.
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let secrets = [secret("primary", "default", &key)];
        let h = SignedHeaders {
            id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            timestamp: Some("1614265330"),
            signature: Some(&sig),
        };
        let (s, id, ts) = authenticate(&secrets, h, body, 1614265330 * 1000, 300).unwrap();
        assert_eq!(
            (s.name.as_str(), id.as_str(), ts),
            ("primary", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330)
        );
        // One byte of the body changed, or outside the window.
        assert_eq!(
            authenticate(&secrets, h, b"{}", 1614265330 * 1000, 300)
                .unwrap_err()
                .rejection,
            Rejection::BadSignature
        );
        assert_eq!(
            authenticate(&secrets, h, body, (1614265330 + 301) * 1000, 300)
                .unwrap_err()
                .rejection,
            Rejection::Stale { skew_secs: 301 }
        );
    }

    #[test]
    fn any_offered_signature_of_any_secret_matches_and_names_the_tenant() {
        let old = secret("old", "acme", &[1u8; 32]);
        let new = secret("new", "acme", &[2u8; 32]);
        let other = secret("other", "globex", &[3u8; 32]);
        let secrets = [old, new.clone(), other];
        let body = b"{\"type\":\"x\"}";
        let sig = format!("v2,abc {} v1,!!", sign(&new.key, "id1", 1000, body));
        let h = SignedHeaders {
            id: Some("id1"),
            timestamp: Some("1000"),
            signature: Some(&sig),
        };
        let (s, _, _) = authenticate(&secrets, h, body, 1_000_000, 300).unwrap();
        assert_eq!((s.name.as_str(), s.tenant.as_str()), ("new", "acme"));
        let none = SignedHeaders {
            signature: None,
            ..h
        };
        assert!(matches!(
            authenticate(&secrets, none, body, 1_000_000, 300).map_err(|r| r.rejection),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn secrets_are_checked_without_echoing_them() {
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        let e = parse_secret("whsec_c2hvcnQ=").unwrap_err();
        assert!(!e.contains("c2hvcnQ"), "{e}");
        assert!(parse_secret("whsec_***").is_err());
    }
}
