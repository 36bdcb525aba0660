//! The area pattern: every capability of the backend is one [`Area`] and one line in
//! [`crate::areas::ALL`]. The server, the router, the OpenAPI tags, config sections, log
//! files, the status summary, telemetry probes, both health endpoints and the ops verb
//! registry are all derived from that list — an area never edits them.
//!
//! Start-up runs in phases over the list, so no area depends on its position in it:
//! 1. [`Area::init`]: read its config section, build its service, [`AppState::provide`] it.
//!    A service needed from another area is taken with [`AppState::require`], which fails
//!    with a message naming both areas when that area is off or has not been built yet.
//! 2. declarations: [`Area::jobs`], [`Area::kinds`], [`Area::verbs`], [`Area::summary`],
//!    [`Area::probes`] — collected once every service exists.
//! 3. [`Area::start`]: background work (workers, samplers), after every kind is known.
//! 4. the job engine starts the schedule built from every area's jobs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use crate::app::{AppState, BoxFuture, SummaryProvider};
use crate::config::{ConfigError, ConfigMap};

/// One capability of the backend (see the module docs).
pub trait Area: Send + Sync + 'static {
    /// Short lowercase name: the config section, the OpenAPI tag, the status-summary
    /// section, the `[modules]` key and the marketplace module name.
    fn name(&self) -> &'static str;

    /// One line for the marketplace listing and the OpenAPI tag.
    fn about(&self) -> &'static str;

    /// Optional modules can be turned off fleet-wide (`[modules] <name> = false`) and per
    /// tenant (marketplace); core areas are always on.
    fn is_module(&self) -> bool {
        false
    }

    /// Directories under `backend/src` holding this area's code (the table-owner test reads
    /// them). Defaults to the area's name.
    fn source_dirs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Tables this area owns. Only its own source names them in SQL; other areas call its
    /// service (enforced by `backend/tests/table_owners.rs`).
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Log files (tracing targets) this area writes: `logs/<target>.<date>.ndjson`.
    fn log_files(&self) -> &'static [&'static str] {
        &[]
    }

    /// Config sections it reads besides `[<name>]` (kept for compatibility, e.g. jobs'
    /// `[retention]`).
    fn extra_config_sections(&self) -> &'static [&'static str] {
        &[]
    }

    /// Check this area's config section (its own serde struct; unknown keys rejected).
    /// Called while the config loads, so a bad value stops the process before it binds.
    fn check_config(&self, _raw: &ConfigMap) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Authenticated routes (`/api/v1/...`), documented through utoipa.
    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    /// Routes served without an API key (e.g. a client script), behind the module gate
    /// like [`Area::routes`].
    fn public_routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
    }

    /// Paths that web pages on other origins may call (CORS allowed, any origin). Only
    /// routes whose credentials are publishable belong here.
    fn cors_paths(&self) -> &'static [&'static str] {
        &[]
    }

    /// Phase 1: build the service from config and the services it needs; provide it.
    fn init<'a>(&'a self, _state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Scheduled jobs (become queue jobs; see `jobs`).
    fn jobs(&self, _state: &AppState, _reg: &mut crate::jobs::JobRegistry) -> anyhow::Result<()> {
        Ok(())
    }

    /// Queue job kinds this area handles.
    fn kinds(&self, _state: &AppState, _queue: &crate::queue::Queue) -> anyhow::Result<()> {
        Ok(())
    }

    /// Ops verbs (dry-run → confirm) this area offers.
    fn verbs(&self, _state: &AppState) -> Vec<Arc<dyn crate::ops::Verb>> {
        Vec::new()
    }

    /// Its section of `GET /api/v1/status/summary`.
    fn summary(&self) -> Option<Arc<dyn SummaryProvider>> {
        None
    }

    /// Its components in telemetry and `GET /api/v1/system-health`.
    fn probes(&self) -> Vec<Arc<dyn Probe>> {
        Vec::new()
    }

    /// Phase 3: background work for the life of the server (`AppState::spawn_background`).
    fn start<'a>(&'a self, _state: &'a AppState) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Its part of GDPR subject requests (`GET /api/v1/gdpr/export`, `DELETE
    /// /api/v1/gdpr/delete`): every area that stores personal data returns one. See
    /// [`Gdpr`] and docs/COMPLIANCE.md.
    fn gdpr(&self) -> Option<Arc<dyn Gdpr>> {
        None
    }

    /// Its sections of a compliance evidence bundle (`POST
    /// /api/v1/compliance/evidence/export`). See [`Evidence`].
    fn evidence(&self) -> Vec<Arc<dyn Evidence>> {
        Vec::new()
    }
}

/// A GDPR subject request as an area sees it. `subject` is the identifier the request
/// names (an analytics `distinct_id`, a key id, a key label…); each area matches it
/// against the identifiers it stores.
#[derive(Debug, Clone)]
pub struct GdprRequest {
    pub tenant: String,
    pub subject: String,
    /// Key id of the admin making the request (the audit actor).
    pub actor: String,
    pub request_id: String,
}

/// What an area holds about a subject.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GdprExport {
    /// Records found (0: nothing about the subject here).
    pub records: u64,
    /// The records themselves, as the area's API shows them.
    pub data: Value,
    /// What is kept on purpose and why (e.g. the append-only audit log), no personal data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What an area erased for a subject: counts only, never the personal data itself (this
/// is what the audit record of the deletion says).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GdprErasure {
    /// Rows deleted, by kind (`"events": 12`).
    pub deleted: std::collections::BTreeMap<String, u64>,
    /// Rows kept with the subject's identifiers replaced, by kind.
    pub anonymised: std::collections::BTreeMap<String, u64>,
    /// What is kept on purpose and why, no personal data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

impl GdprErasure {
    /// Nothing was deleted or anonymised (a repeated request).
    pub fn is_empty(&self) -> bool {
        self.deleted.values().all(|n| *n == 0) && self.anonymised.values().all(|n| *n == 0)
    }
}

/// An area's part of GDPR subject requests. `delete` removes or anonymises everything the
/// area holds about the subject in **one transaction**, appends its audit record in that
/// same transaction ([`GdprRequest::audit_in`]) and is idempotent: a repeat finds nothing
/// and returns an empty [`GdprErasure`]. Hooks run for every area of the build, even a
/// module turned off (its rows are still stored), so they use `state.store` and their own
/// tables only, not services.
pub trait Gdpr: Send + Sync {
    /// Which identifiers of the subject the area matches and what it holds (one line, for
    /// the export and docs/COMPLIANCE.md).
    fn about(&self) -> &'static str;
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>>;
    fn delete<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprErasure>>;
}

/// What a statement of [`GdprRequest::erase`] does to the rows it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erase {
    Delete,
    Anonymise,
}

impl GdprRequest {
    /// The common delete: run each statement (SQL of the area's own tables taking `$1` =
    /// tenant, `$2` = subject) in one write transaction, count the rows each touched under
    /// its kind, append the area's audit record in the same transaction, commit.
    pub async fn erase(
        &self,
        store: &crate::store::Store,
        area: &str,
        statements: &[(&str, Erase, &str)],
    ) -> Result<GdprErasure, sqlx::Error> {
        let mut tx = store.begin_write().await?;
        let mut e = GdprErasure::default();
        for (kind, what, sql) in statements {
            let n = sqlx::query(sql)
                .bind(&self.tenant)
                .bind(&self.subject)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let into = match what {
                Erase::Delete => &mut e.deleted,
                Erase::Anonymise => &mut e.anonymised,
            };
            *into.entry((*kind).to_string()).or_default() += n;
        }
        self.audit_in(store, &mut tx, area, &e).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// Append the audit record `gdpr.delete` of `area`'s part inside its transaction. The
    /// record holds the counts, never the subject (the caller gets `request_id` back to
    /// tie the record to the request).
    pub async fn audit_in(
        &self,
        store: &crate::store::Store,
        tx: &mut crate::store::Tx,
        area: &str,
        erasure: &GdprErasure,
    ) -> Result<(), sqlx::Error> {
        let rec = crate::audit::NewAudit::new(
            &self.tenant,
            &self.actor,
            "gdpr.delete",
            area,
            "ok",
            &self.request_id,
        )
        .detail(serde_json::json!({
            "area": area,
            "deleted": erasure.deleted,
            "anonymised": erasure.anonymised,
            "nothing_left": erasure.is_empty(),
        }));
        crate::audit::append(store, tx, rec).await.map(|_| ())
    }
}

/// The period an evidence bundle covers: `[from_ms, to_ms]`, Unix ms (UTC), inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EvidencePeriod {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl EvidencePeriod {
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.from_ms <= ts_ms && ts_ms <= self.to_ms
    }
}

/// What an evidence section is asked for: the caller's tenant and the period.
#[derive(Debug, Clone)]
pub struct EvidenceRequest {
    pub tenant: String,
    pub period: EvidencePeriod,
    /// Most rows one section may hold; a section with more fails with
    /// [`EvidenceTooLarge`] (the request answers 422) instead of truncating silently.
    pub max_records: i64,
    /// Key id of the caller (the audit actor) and the request id.
    pub actor: String,
    pub request_id: String,
}

/// A section would hold more than [`EvidenceRequest::max_records`] rows: the message says
/// how many and suggests a shorter period.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvidenceTooLarge(pub String);

/// One section of an evidence bundle: files under `<name>/` in the zip and the facts
/// shown for it in `evidence.json`.
#[derive(Debug, Clone)]
pub struct EvidenceSection {
    /// Files: (name inside the section's directory, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// Figures and identifiers for `evidence.json` (counts, ids, the tree head…). No
    /// secrets, no personal data beyond what the files hold.
    pub facts: Value,
}

/// A provider of one evidence section, for the caller's tenant and a period. A section
/// nobody provides (its area is not installed or turned off) is listed in `evidence.json`
/// as not installed; it is never filled in. Files should be deterministic for the same
/// data (sorted, canonical JSON) so two exports of one period can be compared.
pub trait Evidence: Send + Sync {
    /// Section name: its directory in the zip and its key in `evidence.json` (`audit`,
    /// `access_review`, `change_log`, `security`, `dr`, `slo`, …).
    fn section(&self) -> &'static str;
    /// One line: what the section shows.
    fn about(&self) -> &'static str;
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>>;
}

/// Status of a telemetry component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Light {
    Green,
    Yellow,
    Red,
}

impl Light {
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Green => "green",
            Light::Yellow => "yellow",
            Light::Red => "red",
        }
    }
}

/// An area's health probe. `component` feeds `GET /api/v1/ops/telemetry` (a light and the
/// figures behind it, for the caller's tenant); `check` feeds `GET /api/v1/system-health`
/// and `/readyz` (a line of text; `Err` is a failure, text starting with `degraded: ` a
/// warning). Both run under the telemetry probe timeout.
pub trait Probe: Send + Sync {
    /// Component name (`queue`, `scheduler`, …).
    fn name(&self) -> &'static str;
    fn component<'a>(
        &'a self,
        state: &'a AppState,
        tenant: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<(Light, Value)>>;
    fn check<'a>(&'a self, state: &'a AppState) -> BoxFuture<'a, anyhow::Result<String>>;
    /// Whether a failed check makes `/readyz` answer 503 (this replica should get no
    /// traffic). Default: no — most areas degrade, they do not stop the API.
    fn gates_readiness(&self) -> bool {
        false
    }
}

/// Services built by the areas, by type: handlers reach them through axum `FromRef`
/// (`State<Queue>`), areas through [`AppState::service`] / [`AppState::require`].
#[derive(Default)]
pub struct Services {
    map: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Services {
    pub(crate) fn insert<T: Any + Send + Sync + Clone>(&self, service: T) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(TypeId::of::<T>(), Arc::new(service));
    }

    pub(crate) fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&TypeId::of::<T>())
            .and_then(|s| s.downcast_ref::<T>().cloned())
    }
}

/// Implement axum's `FromRef<AppState>` for a service type, so handlers take
/// `State<Service>`. The area's routes are mounted only once its service is provided, so
/// a missing service is a wiring bug caught by every e2e test of that area.
#[macro_export]
macro_rules! service_from_ref {
    ($t:ty) => {
        impl axum::extract::FromRef<$crate::app::AppState> for $t {
            fn from_ref(state: &$crate::app::AppState) -> $t {
                state.service::<$t>().unwrap_or_else(|| {
                    panic!(
                        "service {} used before its area provided it",
                        std::any::type_name::<$t>()
                    )
                })
            }
        }
    };
}

/// Which areas run in this process: every core area, plus each module that
/// `[modules] <name>` does not turn off.
pub fn enabled(raw: &ConfigMap) -> Vec<&'static dyn Area> {
    crate::areas::ALL
        .iter()
        .copied()
        .filter(|a| !a.is_module() || fleet_enabled(raw, a.name()))
        .collect()
}

/// `[modules] <name>` (default on). Values were checked when the config loaded.
pub fn fleet_enabled(raw: &ConfigMap, module: &str) -> bool {
    raw.get_bool(&format!("modules.{module}"))
        .ok()
        .flatten()
        .unwrap_or(true)
}

pub fn find(name: &str) -> Option<&'static dyn Area> {
    crate::areas::ALL.iter().copied().find(|a| a.name() == name)
}

/// Names of the optional modules.
pub fn module_names() -> Vec<&'static str> {
    crate::areas::ALL
        .iter()
        .filter(|a| a.is_module())
        .map(|a| a.name())
        .collect()
}

/// Check the `[modules]` section and every area's own section (called by config loading).
pub fn check_config(raw: &ConfigMap) -> Result<(), ConfigError> {
    let modules = module_names();
    for key in raw.keys_with_prefix("modules.") {
        let name = &key["modules.".len()..];
        if !modules.contains(&name) {
            let core = find(name).is_some();
            return Err(raw.error(
                key,
                if core {
                    format!(
                        "{name} is a core area and cannot be turned off; modules: {}",
                        modules.join(", ")
                    )
                } else {
                    format!("no module named {name:?}; modules: {}", modules.join(", "))
                },
            ));
        }
        raw.get_bool(key)?;
    }
    for a in crate::areas::ALL {
        a.check_config(raw)?;
    }
    Ok(())
}

/// Config sections owned by areas (plus the core `modules` section).
pub fn config_sections() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::areas::ALL.iter().map(|a| a.name()).collect();
    for a in crate::areas::ALL {
        for extra in a.extra_config_sections() {
            v.push(extra);
        }
    }
    v.push("modules");
    v
}

/// Every log file name (tracing target) with a file of its own: `server` plus the areas'.
pub fn log_files() -> Vec<&'static str> {
    let mut v = vec!["server"];
    for a in crate::areas::ALL {
        for f in a.log_files() {
            if !v.contains(f) {
                v.push(f);
            }
        }
    }
    v
}

/// Source directories of an area (its name when it declares none).
pub fn source_dirs(a: &dyn Area) -> Vec<&'static str> {
    let d = a.source_dirs();
    if d.is_empty() {
        vec![a.name()]
    } else {
        d.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_area_list_is_consistent() {
        let mut names = std::collections::HashSet::new();
        let mut tables = std::collections::HashMap::new();
        for a in crate::areas::ALL {
            assert!(names.insert(a.name()), "area {} listed twice", a.name());
            assert!(!a.about().is_empty(), "{} has no description", a.name());
            for t in a.tables() {
                if let Some(other) = tables.insert(*t, a.name()) {
                    panic!("table {t} owned by both {other} and {}", a.name());
                }
            }
            for d in source_dirs(*a) {
                let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("src")
                    .join(d);
                assert!(p.exists(), "{}: source {d} does not exist", a.name());
            }
        }
        // Defaults of every section are valid.
        let raw = ConfigMap::default();
        check_config(&raw).unwrap();
        // Log files are distinct and include server.
        let logs = log_files();
        assert_eq!(logs[0], "server");
        let uniq: std::collections::HashSet<_> = logs.iter().collect();
        assert_eq!(uniq.len(), logs.len());
    }

    #[test]
    fn every_module_serves_routes_and_core_areas_cannot_be_turned_off() {
        for m in module_names() {
            assert!(
                !crate::marketplace::module_routes(m).is_empty(),
                "module {m} has no routes to gate"
            );
        }
        let mut raw = ConfigMap::default();
        raw.set(
            "modules.queue",
            toml::Value::Boolean(false),
            crate::config::Source::Flag,
        );
        let err = check_config(&raw).unwrap_err();
        assert!(err.message.contains("core area"), "{err}");
        let mut raw = ConfigMap::default();
        raw.set(
            "modules.alerts",
            toml::Value::Boolean(false),
            crate::config::Source::Flag,
        );
        check_config(&raw).unwrap();
        assert!(!enabled(&raw).iter().any(|a| a.name() == "alerts"));
        assert!(enabled(&raw).iter().any(|a| a.name() == "queue"));
    }
}
