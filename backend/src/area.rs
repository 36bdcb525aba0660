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
