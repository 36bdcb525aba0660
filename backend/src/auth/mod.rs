//! API keys, roles and tenancy.
//!
//! Keys are `ep_` + 64 hex chars (32 random bytes). Only SHA-256 of a key is stored: keys
//! are high-entropy, so a fast hash is safe and keeps auth to one indexed lookup. The
//! stored hash is compared in constant time. Revocation is read on every request, so it
//! takes effect at once.

pub mod area;
pub mod compliance;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{FromRow as _, Row as _};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::audit::{self, NewAudit};
use crate::error::ApiError;
use crate::model::{CreatedKey, KeyInfo, Role, Tenant};
use crate::store::{convert, in_table, Store};
use crate::util::{now_ms, random_id, rfc3339_ms};

pub const KEY_PREFIX: &str = "ep_";

/// The one route a publishable `ingest` key may call (it ships in web pages, so it can do
/// nothing else), and the one route that takes a key in the query string (`?key=`, for
/// `navigator.sendBeacon`, which cannot set headers) — and then only an `ingest` key.
pub const INGEST_ROUTE: &str = "/api/v1/analytics/events";
pub const DEFAULT_TENANT: &str = "default";

/// The authenticated caller of a request, put in request extensions by the auth
/// middleware. `tenant` is the effective tenant (`X-Tenant-Id` or the key's own).
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
    pub key_tenant: String,
    pub tenant: String,
    pub request_id: String,
}

impl Caller {
    /// Require at least `min`; a denial is written to the audit log (outcome `denied`).
    pub async fn require(&self, state: &AppState, min: Role, action: &str) -> Result<(), ApiError> {
        if self.role.rank() >= min.rank() {
            return Ok(());
        }
        let detail = serde_json::json!({"reason": "role", "role": self.role, "required": min});
        deny(state, self, action, &self.tenant, detail).await;
        Err(ApiError::Forbidden(format!(
            "this action needs role {min} or above; the key has role {}",
            self.role
        )))
    }

    /// For fleet-wide actions (the scheduler, the queue's pause flag, self-heal): at least
    /// `min`, and a key of the system tenant `default` or a superadmin, so one tenant's
    /// operator cannot stop work for every tenant. Refusals are audited.
    pub async fn require_system(
        &self,
        state: &AppState,
        min: Role,
        action: &str,
        what: &str,
    ) -> Result<(), ApiError> {
        self.require(state, min, action).await?;
        if self.key_tenant == DEFAULT_TENANT || self.is_superadmin() {
            return Ok(());
        }
        let reason =
            format!("{what} is system-wide: this needs a key of the `{DEFAULT_TENANT}` tenant");
        deny(
            state,
            self,
            action,
            &self.tenant,
            serde_json::json!({"reason": reason}),
        )
        .await;
        Err(ApiError::Forbidden(reason))
    }

    pub fn is_superadmin(&self) -> bool {
        self.role == Role::Superadmin
    }

    /// Tenant filter for reads: superadmin sees the selected tenant; others their own.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// Record a denied access in the audit log and the security log. Failures to write the
/// record are logged, never turned into a different response.
pub async fn deny(
    state: &AppState,
    caller: &Caller,
    action: &str,
    tenant: &str,
    detail: serde_json::Value,
) {
    tracing::warn!(target: "security", key_id = %caller.key_id, action, tenant, "access denied");
    let rec = NewAudit::new(
        tenant,
        &caller.key_id,
        action,
        tenant,
        "denied",
        &caller.request_id,
    )
    .detail(detail);
    if let Err(e) = audit::record(&state.store, rec).await {
        tracing::error!(target: "security", error = %e, "could not write denied-access audit record");
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("missing X-Dash-Key header".into()))
    }
}

/// A new random key and its stored hash.
pub fn generate_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let hash = hash_key(&key);
    (key, hash)
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Tenant ids: 1–64 of `[a-z0-9_-]`, so they are safe in paths, logs and headers.
pub fn valid_tenant_id(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: String,
    pub role: Role,
    pub revoked: bool,
}

/// The `api_keys` columns [`authenticate`] reads.
#[derive(sqlx::FromRow)]
struct AuthRow {
    id: String,
    tenant_id: String,
    role: String,
    key_hash: String,
    revoked_at: Option<i64>,
}

/// Find the (non-revoked) key for a presented secret. A key row whose role no longer
/// decodes is an error (the request fails closed), not a key of some default role.
pub async fn authenticate(store: &Store, presented: &str) -> Result<Option<KeyRow>, sqlx::Error> {
    let hash = hash_key(presented);
    let row = sqlx::query(
        "SELECT id, tenant_id, role, key_hash, revoked_at FROM api_keys WHERE key_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(store.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let key_id: String = row.try_get("id")?;
    let row = AuthRow::from_row(&row).map_err(in_table("api_keys", Some(&key_id)))?;
    if !bool::from(row.key_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    Ok(Some(KeyRow {
        role: convert("api_keys", "role", &row.id, row.role)?,
        id: row.id,
        tenant_id: row.tenant_id,
        revoked: row.revoked_at.is_some(),
    }))
}

pub async fn ensure_tenant(tx: &mut crate::store::Tx, tenant: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(tenant)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Who performs a key operation, for the audit record.
pub struct Actor<'a> {
    pub id: &'a str,
    pub request_id: &'a str,
}

/// Create a key (and its tenant if new), audited in the same transaction.
/// `plaintext` lets the bootstrap path install an operator-chosen key.
pub async fn create_key(
    store: &Store,
    role: Role,
    tenant: &str,
    name: Option<&str>,
    plaintext: Option<&str>,
    actor: Actor<'_>,
) -> Result<CreatedKey, sqlx::Error> {
    let (key, hash) = match plaintext {
        Some(k) => (k.to_string(), hash_key(k)),
        None => generate_key(),
    };
    let id = random_id("key_", 8);
    let mut tx = store.begin_write().await?;
    ensure_tenant(&mut tx, tenant).await?;
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, role, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(tenant)
    .bind(role.as_str())
    .bind(name.map(str::to_string))
    .bind(&hash)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let rec = NewAudit::new(tenant, actor.id, "keys.create", &id, "ok", actor.request_id)
        .detail(serde_json::json!({"role": role, "tenant": tenant, "name": name}));
    audit::append(store, &mut tx, rec).await?;
    tx.commit().await?;
    Ok(CreatedKey {
        id,
        key,
        role,
        tenant: tenant.to_string(),
        name: name.map(str::to_string),
    })
}

/// An `api_keys` row as listed (never the hash).
#[derive(sqlx::FromRow)]
struct KeyInfoRow {
    id: String,
    tenant_id: String,
    role: String,
    name: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

fn row_to_key_info(row: &crate::store::Row) -> Result<KeyInfo, sqlx::Error> {
    let r = KeyInfoRow::from_row(row).map_err(|e| {
        let id = row.try_get::<String, _>("id").unwrap_or_default();
        let e = in_table("api_keys", Some(&id))(e);
        e
    })?;
    Ok(KeyInfo {
        role: convert("api_keys", "role", &r.id, r.role)?,
        id: r.id,
        tenant: r.tenant_id,
        name: r.name,
        created_at: rfc3339_ms(r.created_at),
        revoked_at: r.revoked_at.map(rfc3339_ms),
        last_used_at: r.last_used_at.map(rfc3339_ms),
    })
}

/// Keys of one tenant (or all, for `None`), newest first. Never secrets or hashes.
pub async fn list_keys(store: &Store, tenant: Option<&str>) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let cols = "id, tenant_id, role, name, created_at, revoked_at, last_used_at";
    let rows = match tenant {
        Some(t) => {
            sqlx::query(&format!(
                "SELECT {cols} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id"
            ))
            .bind(t)
            .fetch_all(store.reader())
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {cols} FROM api_keys ORDER BY created_at DESC, id"
            ))
            .fetch_all(store.reader())
            .await?
        }
    };
    rows.iter().map(row_to_key_info).collect()
}

#[derive(Debug)]
pub enum RevokeOutcome {
    Revoked(KeyInfo),
    AlreadyRevoked(KeyInfo),
    NotFound,
}

/// Revoke a key; `tenant` restricts which keys the caller may touch.
pub async fn revoke_key(
    store: &Store,
    id: &str,
    tenant: Option<&str>,
    actor: Actor<'_>,
) -> Result<RevokeOutcome, sqlx::Error> {
    let mut tx = store.begin_write().await?;
    let row = sqlx::query(
        "SELECT id, tenant_id, role, name, created_at, revoked_at, last_used_at FROM api_keys WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(RevokeOutcome::NotFound);
    };
    let mut info = row_to_key_info(&row)?;
    if tenant.is_some_and(|t| t != info.tenant) {
        return Ok(RevokeOutcome::NotFound);
    }
    if info.revoked_at.is_some() {
        return Ok(RevokeOutcome::AlreadyRevoked(info));
    }
    let now = now_ms();
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let rec = NewAudit::new(
        &info.tenant,
        actor.id,
        "keys.revoke",
        id,
        "ok",
        actor.request_id,
    );
    audit::append(store, &mut tx, rec).await?;
    tx.commit().await?;
    info.revoked_at = Some(rfc3339_ms(now));
    Ok(RevokeOutcome::Revoked(info))
}

pub async fn list_tenants(store: &Store, only: Option<&str>) -> Result<Vec<Tenant>, sqlx::Error> {
    let rows = match only {
        Some(t) => {
            sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
                .bind(t)
                .fetch_all(store.reader())
                .await?
        }
        None => {
            sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY id")
                .fetch_all(store.reader())
                .await?
        }
    };
    rows.iter()
        .map(|r| {
            let t = TenantRow::from_row(r).map_err(in_table("tenants", None))?;
            Ok(Tenant {
                id: t.id,
                name: t.name,
                created_at: rfc3339_ms(t.created_at),
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    name: String,
    created_at: i64,
}

/// Keys of `tenant` that are not revoked (for `/status/summary`).
pub async fn count_active_keys(store: &Store, tenant: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL")
        .bind(tenant)
        .fetch_one(store.reader())
        .await
}

/// What first start did about the superadmin key.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Keys already existed; nothing done.
    Existing,
    /// `ECHOPILOT_BOOTSTRAP_KEY` installed as the superadmin key of `default`.
    FromEnv,
    /// A new key written to this file (mode 0600).
    WroteFile(std::path::PathBuf),
}

/// On first start (no keys at all), install the superadmin key.
pub async fn bootstrap(store: &Store, cfg: &crate::Config) -> anyhow::Result<Bootstrap> {
    // Replicas started together on a fresh PostgreSQL database would each see no key and
    // each install one (the same env key twice is a unique violation that stopped the
    // second replica). One session lock makes the check-and-install atomic fleet-wide.
    let mut lock = None;
    if store.dialect() == crate::store::Dialect::Postgres {
        let mut conn = store.writer().acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *conn)
            .await?;
        lock = Some(conn);
    }
    let out = bootstrap_locked(store, cfg).await;
    if let Some(mut conn) = lock {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *conn)
            .await;
    }
    out
}

/// Advisory lock key of the bootstrap step ("epboot" in ASCII).
const BOOTSTRAP_LOCK: i64 = 0x6570_626f_6f74;

async fn bootstrap_locked(store: &Store, cfg: &crate::Config) -> anyhow::Result<Bootstrap> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
        .fetch_one(store.reader())
        .await?;
    if count > 0 {
        return Ok(Bootstrap::Existing);
    }
    let actor = Actor {
        id: "system",
        request_id: "bootstrap",
    };
    if let Some(k) = &cfg.bootstrap_key {
        if k.len() < 32 {
            anyhow::bail!("ECHOPILOT_BOOTSTRAP_KEY must be at least 32 characters of random data");
        }
        create_key(
            store,
            Role::Superadmin,
            DEFAULT_TENANT,
            Some("bootstrap"),
            Some(k),
            actor,
        )
        .await?;
        return Ok(Bootstrap::FromEnv);
    }
    let created = create_key(
        store,
        Role::Superadmin,
        DEFAULT_TENANT,
        Some("bootstrap"),
        None,
        actor,
    )
    .await?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let path = cfg.data_dir.join("admin.key");
    write_secret_file(&path, &format!("{}\n", created.key))?;
    Ok(Bootstrap::WroteFile(path))
}

/// Write a file readable only by its owner.
pub fn write_secret_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Read the admin key the embedded console uses: env first, then `<data-dir>/admin.key`.
pub fn read_admin_key(cfg: &crate::Config) -> Option<String> {
    if let Some(k) = &cfg.bootstrap_key {
        return Some(k.clone());
    }
    std::fs::read_to_string(cfg.data_dir.join("admin.key"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Throttle for `last_used_at` writes: at most one per key per minute, so auth stays a
/// read and the SQLite writer is not hit on every request.
#[derive(Default)]
pub struct LastUsed {
    seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl LastUsed {
    pub fn touch(self: &Arc<Self>, store: &Store, key_id: &str) {
        let now = now_ms();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            match seen.get(key_id) {
                Some(t) if now - t < 60_000 => return,
                _ => {
                    seen.insert(key_id.to_string(), now);
                }
            }
        }
        let store = store.clone();
        let id = key_id.to_string();
        tokio::spawn(async move {
            let _ = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(store.writer())
                .await;
        });
    }
}
