//! Plain serde types of the HTTP API, shared by the backend, the `ctl` client and tests.
//! This module depends on nothing but serde so any client can use it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Roles in increasing order of power; a route names the minimum it needs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishable ingestion key (like a Segment write key): may add analytics events for
    /// its tenant and call nothing else, so it can ship in a web page.
    Ingest,
    Integration,
    Readonly,
    Operator,
    Admin,
    Superadmin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Ingest,
        Role::Integration,
        Role::Readonly,
        Role::Operator,
        Role::Admin,
        Role::Superadmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Integration => "integration",
            Role::Readonly => "readonly",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Superadmin => "superadmin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Rank used for "at least" checks. `integration` keys are machine keys for
    /// inbound integrations: they may read and call integration routes, nothing else.
    /// `ingest` keys rank below every other role and are refused by the authentication
    /// middleware on every route but `POST /api/v1/analytics/events`.
    pub fn rank(self) -> u8 {
        match self {
            Role::Ingest => 0,
            Role::Integration => 1,
            Role::Readonly => 2,
            Role::Operator => 3,
            Role::Admin => 4,
            Role::Superadmin => 5,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of [`Role::ALL`] (e.g. a corrupt `api_keys.role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl std::fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Quote only name-like values: a corrupt stored role may hold anything.
        let v = &self.0;
        if v.len() <= 32 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            write!(f, "unknown role {v:?}")?;
        } else {
            write!(f, "unknown role (a value of {} bytes)", v.len())?;
        }
        f.write_str(
            " (expected one of: ingest, integration, readonly, operator, admin, superadmin)",
        )
    }
}

impl std::error::Error for UnknownRole {}

/// For decoding stored roles (`store::convert`): this module stays free of sqlx.
impl TryFrom<String> for Role {
    type Error = UnknownRole;
    fn try_from(s: String) -> Result<Role, UnknownRole> {
        Role::parse(&s).ok_or(UnknownRole(s))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// One of superadmin, admin, operator, readonly, integration, ingest (a publishable
    /// key that may only add analytics events).
    #[schema(value_type = Role)]
    pub role: String,
    /// Tenant id: 1–64 chars of `[a-z0-9_-]` (`_system` is reserved).
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub tenant: String,
    /// At most 100 printable characters.
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub name: Option<String>,
}

/// Returned once, at creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    pub key: String,
    pub role: Role,
    pub tenant: String,
    pub name: Option<String>,
}

/// A key as listed: never the secret or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub role: Role,
    pub tenant: String,
    pub name: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

/// One audit record; `seq` is its 0-based leaf index in the Merkle tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts: String,
    pub tenant_id: String,
    /// Key id (never the key), or `system` / `cli`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `ok`, `denied`, `error`.
    pub outcome: String,
    pub request_id: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditChain {
    pub size: i64,
    /// Hex SHA-256 root of the RFC 6962 tree over all records.
    pub root: String,
    pub head: Option<AuditRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditRecords {
    pub records: Vec<AuditRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditReceipt {
    pub seq: i64,
    pub size: i64,
    /// The exact canonical JSON string that was hashed as the leaf.
    pub leaf: String,
    pub leaf_hash: String,
    /// RFC 6962 audit path, bottom-up, hex.
    pub proof: Vec<String>,
    pub root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditConsistency {
    pub from: i64,
    pub to: i64,
    pub proof: Vec<String>,
    pub from_root: String,
    pub to_root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditVerify {
    pub ok: bool,
    pub size: i64,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
    /// The latest published signed tree head the current tree was checked against
    /// (null when none was published yet).
    #[serde(default)]
    pub head: Option<AuditHead>,
}

/// A signed tree head: the audit log's size and root at a moment, Ed25519-signed over
/// `echopilot-audit-tree-head:v1\n<tree_size>\n<root>\n<ts_ms>`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditHead {
    /// 1, 2, … in publication order.
    pub id: i64,
    pub tree_size: i64,
    /// Root hash, lowercase hex (64 chars).
    pub root: String,
    /// Unix milliseconds (the signed value).
    pub ts_ms: i64,
    /// The same instant, RFC 3339.
    pub timestamp: String,
    /// Ed25519 verifying key, hex (64 chars).
    pub public_key: String,
    /// Ed25519 signature, hex (128 chars).
    pub signature: String,
    /// Whether the configured witness acknowledged it.
    pub witnessed: bool,
}

/// `GET /api/v1/audit/heads`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditHeads {
    /// This server's verifying key, hex; each head also names the key that signed it.
    pub public_key: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// What the signature covers.
    pub message_format: String,
    /// Newest first.
    pub heads: Vec<AuditHead>,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Set when the route belongs to a module that is off (see `marketplace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// `tenant` or `fleet`, with `module`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
