//! Ops commands: one registry of allow-listed verbs, driven through a two-step
//! dry-run → confirm protocol (`POST /api/v1/ops/command`).
//!
//! Each verb declares its name, aliases, description, args JSON schema, risk, minimum
//! role and whether it changes anything, and implements `plan` (read the world, change
//! nothing) and `execute`. Areas register their verbs at start with
//! `state.ops.register(Arc::new(MyVerb))`; the registry feeds `GET /api/v1/ops/verbs`,
//! the console palette and `echopilot ctl`.

pub mod api;
pub mod area;
pub mod command;
pub mod compliance;
pub mod schema;
pub mod verbs;

#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::{AppState, BoxFuture};
use crate::error::ApiResult;
use crate::model::Role;

// Stored as TEXT in `ops_plans.risk`. The serde attribute only tells the OpenAPI schema
// the names; the macro implements serde itself from the same names.
crate::text_enum! {
    /// How dangerous a verb is; high-risk verbs need a `reason` to confirm.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Risk {
        Low = "low",
        High = "high",
    }
}

/// A verb's declaration, as listed by `GET /api/v1/ops/verbs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerbSpec {
    pub name: String,
    pub aliases: Vec<String>,
    pub description: String,
    /// JSON schema of the args object (see [`schema`] for the supported subset).
    #[schema(value_type = Object)]
    pub args: Value,
    pub risk: Risk,
    pub min_role: Role,
    /// False for verbs that only read (the console's `--readonly` still shows them).
    pub mutating: bool,
}

/// What a confirm would do, computed from the current world without changing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub summary: String,
    pub steps: Vec<String>,
    pub effects: Vec<String>,
}

/// A plan plus the facts it was computed on. `world` is hashed into the plan's
/// fingerprint; confirming re-plans and refuses (409) if the fingerprint moved, so a
/// verb should put there exactly what its effect depends on (ids it would touch,
/// states it would flip), not things that change every second.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub world: Value,
}

/// Who runs a verb, for tenancy and for the audit records a verb writes itself.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    /// Effective tenant of the request.
    pub tenant: String,
    pub key_id: String,
    /// The key's own tenant (system-wide verbs need a key of the `default` tenant).
    pub key_tenant: String,
    pub role: Role,
    pub request_id: String,
    /// Set on confirm: the plan being executed and the operator's reason.
    pub plan_id: Option<String>,
    pub reason: Option<String>,
}

impl Ctx {
    /// The caller as the auth layer saw it, for area service calls that take a `Caller`.
    pub fn caller(&self) -> crate::auth::Caller {
        crate::auth::Caller {
            key_id: self.key_id.clone(),
            role: self.role,
            key_tenant: self.key_tenant.clone(),
            tenant: self.tenant.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// An ops verb. `args` passed to `plan`/`execute` are already validated against the
/// spec's schema with defaults filled in. Errors are API errors (422 for args the schema
/// cannot express, 404 for a missing entity, 409 for a state that forbids the action).
pub trait Verb: Send + Sync + 'static {
    fn spec(&self) -> &VerbSpec;
    fn plan<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>>;
    fn execute<'a>(&'a self, ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>>;
}

/// The verb registry, owned by [`AppState`] (`state.ops`).
#[derive(Default)]
pub struct Registry {
    verbs: RwLock<Vec<Arc<dyn Verb>>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Add a verb. Its name and aliases must not collide with any registered verb's.
    pub fn register(&self, verb: Arc<dyn Verb>) -> anyhow::Result<()> {
        let spec = verb.spec();
        if !valid_name(&spec.name) || !spec.aliases.iter().all(|a| valid_name(a)) {
            anyhow::bail!(
                "ops verb {:?}: names and aliases are 1-64 chars of a-z, 0-9, '_'",
                spec.name
            );
        }
        let mut verbs = self.verbs.write().unwrap_or_else(|e| e.into_inner());
        let new_names: Vec<&str> = std::iter::once(spec.name.as_str())
            .chain(spec.aliases.iter().map(String::as_str))
            .collect();
        for v in verbs.iter() {
            let s = v.spec();
            for n in std::iter::once(s.name.as_str()).chain(s.aliases.iter().map(String::as_str)) {
                if new_names.contains(&n) {
                    anyhow::bail!(
                        "ops verb {:?}: name {n:?} is already taken by verb {:?}",
                        spec.name,
                        s.name
                    );
                }
            }
        }
        verbs.push(verb);
        Ok(())
    }

    /// Find a verb by name or alias.
    pub fn resolve(&self, name: &str) -> Option<Arc<dyn Verb>> {
        self.verbs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|v| {
                let s = v.spec();
                s.name == name || s.aliases.iter().any(|a| a == name)
            })
            .cloned()
    }

    /// Every verb's spec, sorted by name.
    pub fn specs(&self) -> Vec<VerbSpec> {
        let mut out: Vec<VerbSpec> = self
            .verbs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|v| v.spec().clone())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
