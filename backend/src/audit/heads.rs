//! Signed tree heads (Certificate Transparency style): the log's size and root, with a
//! timestamp, signed with an Ed25519 key that lives outside the database. A head kept
//! anywhere else (a witness, a copy of `audit_heads.*.ndjson`) lets `verify` — or an
//! auditor offline — prove that the current log extends it, so truncating or rewriting
//! history is caught even when every remaining row still matches its stored hashes.
//!
//! Signed message (UTF-8, `\n`-separated, no trailing newline):
//! `echopilot-audit-tree-head:v1`, tree size (decimal), root (lowercase hex), timestamp
//! (Unix ms, decimal).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConfigMap};
use crate::model::AuditHead;
use crate::store::Store;

pub const HEADS_PUBLISHED: &str = "echopilot_audit_heads_published_total";
pub const WITNESS_FAILURES: &str = "echopilot_audit_witness_failures_total";
pub const LAST_HEAD_TS: &str = "echopilot_audit_last_head_timestamp_seconds";
const MESSAGE_TAG: &str = "echopilot-audit-tree-head:v1";
/// Heads sent to the witness per attempt, oldest first (the rest go next time).
const WITNESS_BATCH: i64 = 50;

/// `[audit]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// The Ed25519 signing key (64 hex chars); empty = `<data-dir>/audit_head.key`,
    /// created with mode 0600 on first start. Replicas sharing a database should share it.
    pub head_key_file: String,
    /// POST every new head here as JSON (empty = no witness).
    pub witness_url: String,
    /// Timeout of one witness POST (100..=60000).
    pub witness_timeout_ms: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            head_key_file: String::new(),
            witness_url: String::new(),
            witness_timeout_ms: 5000,
        }
    }
}

impl AuditSection {
    pub fn load(raw: &ConfigMap) -> Result<Self, ConfigError> {
        let s: AuditSection = raw.section("audit")?;
        raw.check_range(
            "audit.witness_timeout_ms",
            s.witness_timeout_ms,
            100,
            60_000,
        )?;
        let url = &s.witness_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(raw.error(
                "audit.witness_url",
                "expected an http:// or https:// URL, or empty",
            ));
        }
        Ok(s)
    }
}

/// The bytes a head's signature covers.
pub fn signed_message(tree_size: i64, root_hex: &str, ts_ms: i64) -> String {
    format!("{MESSAGE_TAG}\n{tree_size}\n{root_hex}\n{ts_ms}")
}

/// Check a head's signature against the public key it names.
pub fn signature_ok(h: &AuditHead) -> bool {
    let Ok(pk) = hex::decode(&h.public_key) else {
        return false;
    };
    let Ok(pk) = <[u8; 32]>::try_from(pk.as_slice()) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = hex::decode(&h.signature) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    vk.verify(
        signed_message(h.tree_size, &h.root, h.ts_ms).as_bytes(),
        &sig,
    )
    .is_ok()
}

/// The audit area's head publisher: the signing key, the witness, the counters.
#[derive(Clone)]
pub struct Heads {
    key: Arc<SigningKey>,
    witness: Option<(reqwest::Client, String)>,
    witness_lock: Arc<tokio::sync::Mutex<()>>,
    pub stats: Arc<HeadStats>,
}

#[derive(Default)]
pub struct HeadStats {
    pub published: AtomicU64,
    pub witness_failures: AtomicU64,
    pub witness_delivered: AtomicU64,
}

crate::service_from_ref!(Heads);

fn key_path(s: &AuditSection, data_dir: &Path) -> PathBuf {
    if s.head_key_file.is_empty() {
        data_dir.join("audit_head.key")
    } else {
        PathBuf::from(&s.head_key_file)
    }
}

/// Read an Ed25519 key file (64 hex chars, the seed), or create it (mode 0600) when it
/// does not exist. `what` names the key in messages ("audit head key").
pub(crate) fn load_or_create_signing_key(path: &Path, what: &str) -> anyhow::Result<SigningKey> {
    use anyhow::Context;
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let seed: [u8; 32] = rand::random();
        crate::auth::write_secret_file(path, &format!("{}\n", hex::encode(seed)))
            .with_context(|| format!("cannot write the {what} {}", path.display()))?;
        tracing::info!(target: "audit", path = %path.display(), "created the {what}");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let seed = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{what} {} must hold 64 hex characters (an Ed25519 seed)",
                path.display()
            )
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

#[derive(sqlx::FromRow)]
pub(crate) struct HeadRow {
    id: i64,
    tree_size: i64,
    root: String,
    ts: i64,
    public_key: String,
    signature: String,
    witnessed: i64,
}

impl From<HeadRow> for AuditHead {
    fn from(r: HeadRow) -> Self {
        AuditHead {
            id: r.id,
            tree_size: r.tree_size,
            root: r.root,
            ts_ms: r.ts,
            timestamp: crate::util::rfc3339_ms(r.ts),
            public_key: r.public_key,
            signature: r.signature,
            witnessed: r.witnessed != 0,
        }
    }
}

const HEAD_COLS: &str = "id, tree_size, root, ts, public_key, signature, witnessed";
pub(crate) const LATEST_SQL: &str =
    "SELECT id, tree_size, root, ts, public_key, signature, witnessed \
     FROM audit_heads ORDER BY id DESC LIMIT 1";

/// Heads newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<AuditHead>, sqlx::Error> {
    let rows = sqlx::query_as::<_, HeadRow>(&format!(
        "SELECT {HEAD_COLS} FROM audit_heads ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    Ok(rows.into_iter().map(AuditHead::from).collect())
}

/// The most recently published head, if any.
pub async fn latest(store: &Store) -> Result<Option<AuditHead>, sqlx::Error> {
    Ok(list(store, 1).await?.pop())
}

/// The newest head signed at or before `ts_ms` (what an evidence bundle proves
/// consistency from: the log as it stood when its period began).
pub async fn latest_at_or_before(
    store: &Store,
    ts_ms: i64,
) -> Result<Option<AuditHead>, sqlx::Error> {
    let row = sqlx::query_as::<_, HeadRow>(&format!(
        "SELECT {HEAD_COLS} FROM audit_heads WHERE ts <= $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(ts_ms)
    .fetch_optional(store.reader())
    .await?;
    Ok(row.map(AuditHead::from))
}

/// The first head ever published, if any.
pub async fn oldest(store: &Store) -> Result<Option<AuditHead>, sqlx::Error> {
    let row = sqlx::query_as::<_, HeadRow>(&format!(
        "SELECT {HEAD_COLS} FROM audit_heads ORDER BY id LIMIT 1"
    ))
    .fetch_optional(store.reader())
    .await?;
    Ok(row.map(AuditHead::from))
}

impl Heads {
    pub fn new(s: &AuditSection, data_dir: &Path) -> anyhow::Result<Heads> {
        let key = load_or_create_signing_key(&key_path(s, data_dir), "audit head key")?;
        let witness = if s.witness_url.is_empty() {
            None
        } else {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(s.witness_timeout_ms))
                .build()?;
            Some((client, s.witness_url.clone()))
        };
        Ok(Heads {
            key: Arc::new(key),
            witness,
            witness_lock: Default::default(),
            stats: Default::default(),
        })
    }

    /// The verifying key, hex.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Sign the current tree (size and root from the stored nodes), store the head,
    /// append it to `audit_heads.ndjson`, and hand it to the witness in the background.
    pub async fn publish(&self, store: &Store) -> Result<AuditHead, sqlx::Error> {
        let chain = super::chain(store).await?;
        let ts = crate::util::now_ms();
        let sig = self
            .key
            .sign(signed_message(chain.size, &chain.root, ts).as_bytes());
        let public_key = self.public_key();
        let signature = hex::encode(sig.to_bytes());
        let mut tx = store.begin_write().await?;
        let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_heads")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_heads (id, tree_size, root, ts, public_key, signature, witnessed) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(id)
        .bind(chain.size)
        .bind(&chain.root)
        .bind(ts)
        .bind(&public_key)
        .bind(&signature)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let head = AuditHead {
            id,
            tree_size: chain.size,
            root: chain.root,
            ts_ms: ts,
            timestamp: crate::util::rfc3339_ms(ts),
            public_key,
            signature,
            witnessed: false,
        };
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(HEADS_PUBLISHED).increment(1);
        metrics::gauge!(LAST_HEAD_TS).set(ts as f64 / 1000.0);
        tracing::info!(
            target: "audit_heads",
            head_id = head.id,
            tree_size = head.tree_size,
            root = %head.root,
            ts_ms = head.ts_ms,
            public_key = %head.public_key,
            signature = %head.signature,
            "audit tree head published"
        );
        if self.witness.is_some() {
            let (me, store) = (self.clone(), store.clone());
            tokio::spawn(async move { me.deliver_to_witness(&store).await });
        }
        Ok(head)
    }

    /// POST every head the witness has not acknowledged yet (oldest first). A failure is
    /// counted and left for the next publish; it never fails the publish itself.
    pub async fn deliver_to_witness(&self, store: &Store) {
        let Some((client, url)) = &self.witness else {
            return;
        };
        let _one_at_a_time = self.witness_lock.lock().await;
        let pending = match sqlx::query_as::<_, HeadRow>(&format!(
            "SELECT {HEAD_COLS} FROM audit_heads WHERE witnessed = 0 ORDER BY id LIMIT $1"
        ))
        .bind(WITNESS_BATCH)
        .fetch_all(store.reader())
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(target: "audit", error = %e, "cannot read heads for the witness");
                return;
            }
        };
        for row in pending {
            let head = AuditHead::from(row);
            let sent = client.post(url).json(&head).send().await;
            let ok = matches!(&sent, Ok(r) if r.status().is_success());
            if !ok {
                self.stats.witness_failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(WITNESS_FAILURES).increment(1);
                let why = match sent {
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(e) => crate::logging::redact_secrets(&e.to_string()),
                };
                tracing::warn!(target: "audit", head_id = head.id, error = %why, "witness did not accept the audit head; retried at the next publish");
                return;
            }
            self.stats.witness_delivered.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = sqlx::query("UPDATE audit_heads SET witnessed = 1 WHERE id = $1")
                .bind(head.id)
                .execute(store.writer())
                .await
            {
                tracing::warn!(target: "audit", error = %e, "cannot mark an audit head witnessed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_verify_offline_and_a_changed_field_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = load_or_create_signing_key(&path, "audit head key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // The same file gives the same key.
        assert_eq!(
            load_or_create_signing_key(&path, "audit head key")
                .unwrap()
                .verifying_key(),
            key.verifying_key()
        );
        let root = "ab".repeat(32);
        let sig = key.sign(signed_message(7, &root, 1_700_000_000_000).as_bytes());
        let mut h = AuditHead {
            id: 1,
            tree_size: 7,
            root,
            ts_ms: 1_700_000_000_000,
            timestamp: String::new(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(sig.to_bytes()),
            witnessed: false,
        };
        assert!(signature_ok(&h));
        h.tree_size = 6;
        assert!(!signature_ok(&h));
    }
}
