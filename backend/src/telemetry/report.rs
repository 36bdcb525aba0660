//! `GET /api/v1/ops/telemetry`: the platform's own components and every area's probe.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::*;
use crate::app::AppState;
use crate::util::{now_ms, rfc3339_ms};

/// One component of the telemetry report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Component {
    /// `green`, `yellow`, `red`, or `absent` (the area is not part of this build).
    pub status: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl Component {
    fn new(status: &str, details: Value) -> Component {
        Component {
            status: status.into(),
            details,
        }
    }

    /// A module turned off fleet-wide (`[modules] <name> = false`).
    fn off(module: &str) -> Component {
        Component::new(
            "absent",
            json!({"reason": format!("module {module} is turned off fleet-wide ([modules] {module} = false)")}),
        )
    }
}

/// `GET /api/v1/ops/telemetry`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TelemetryReport {
    /// Worst status of the present components: `green`, `yellow` or `red`.
    pub overall: String,
    pub components: std::collections::BTreeMap<String, Component>,
    pub generated_at: String,
    pub sample_interval_s: u64,
}

pub(super) fn rank(status: &str) -> u8 {
    match status {
        "red" => 2,
        "yellow" => 1,
        _ => 0,
    }
}

/// Run a probe with the configured timeout; a timeout is a result, not a hang.
pub(super) async fn probe<T>(
    timeout: Duration,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> (Result<T, String>, f64) {
    let start = Instant::now();
    let r = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
    };
    (r, window::round2(start.elapsed().as_secs_f64() * 1000.0))
}

async fn database_component(state: &AppState) -> Component {
    let timeout = tel(state).probe_timeout();
    let store = &state.store;
    let (r, ms) = probe(timeout, async {
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(store.reader())
            .await?;
        Ok(one)
    })
    .await;
    let dialect = match store.dialect() {
        crate::store::Dialect::Sqlite => "sqlite",
        crate::store::Dialect::Postgres => "postgres",
    };
    let pool = store.reader();
    let mut details = json!({
        "dialect": dialect,
        "latency_ms": ms,
        "pool_size": pool.size(),
        "pool_idle": pool.num_idle(),
    });
    let status = match r {
        Ok(_) if ms > DB_YELLOW_MS => "yellow",
        Ok(_) => "green",
        Err(e) => {
            details["error"] = Value::String(e);
            "red"
        }
    };
    Component::new(status, details)
}

fn system_component(state: &AppState) -> Component {
    let Some(r) = tel(state).latest_system() else {
        return Component::new(
            "yellow",
            json!({"reason": "the first system sample has not been taken yet"}),
        );
    };
    let disk = r.disk_pct.unwrap_or(0.0);
    let status = if r.mem_pct >= MEM_RED || disk >= DISK_RED {
        "red"
    } else if r.cpu_pct >= CPU_YELLOW || r.mem_pct >= MEM_YELLOW || disk >= DISK_YELLOW {
        "yellow"
    } else {
        "green"
    };
    Component::new(status, serde_json::to_value(&r).unwrap_or(Value::Null))
}

fn api_component() -> Component {
    let s = window::stats(API_WINDOW_MS);
    let err = s.error_rate.unwrap_or(0.0);
    let status = if err >= ERR_RED {
        "red"
    } else if err >= ERR_YELLOW || s.p95_ms.unwrap_or(0.0) >= P95_YELLOW_MS {
        "yellow"
    } else {
        "green"
    };
    Component::new(status, serde_json::to_value(&s).unwrap_or(Value::Null))
}

/// Build the telemetry report now: the platform's own components (database, host, API)
/// and every area's probe, each under the probe timeout. Area figures are the tenant's
/// where the area is tenant-scoped; the rest is fleet-wide.
pub async fn report(state: &AppState, tenant: &str) -> TelemetryReport {
    let timeout = tel(state).probe_timeout();
    let probes = state.probes();
    let areas = probes.iter().map(|p| async move {
        let (r, ms) = probe(timeout, p.component(state, tenant)).await;
        let c = match r {
            Ok((light, mut details)) => {
                if let Some(m) = details.as_object_mut() {
                    m.insert("latency_ms".into(), json!(ms));
                }
                Component::new(light.as_str(), details)
            }
            Err(e) => Component::new("red", json!({"error": e, "latency_ms": ms})),
        };
        (p.name(), c)
    });
    let (database, areas) = tokio::join!(
        database_component(state),
        futures_util::future::join_all(areas)
    );
    let mut components = std::collections::BTreeMap::new();
    components.insert("database".to_string(), database);
    components.insert("system".to_string(), system_component(state));
    components.insert("api".to_string(), api_component());
    for (name, c) in areas {
        components.insert(name.to_string(), c);
    }
    // A module that is off fleet-wide is shown as such, not silently missing.
    for m in state.modules_off() {
        components.insert(m.to_string(), Component::off(m));
    }
    let worst = components
        .values()
        .map(|c| rank(&c.status))
        .max()
        .unwrap_or(0);
    TelemetryReport {
        overall: ["green", "yellow", "red"][worst as usize].to_string(),
        components,
        generated_at: rfc3339_ms(now_ms()),
        sample_interval_s: tel(state).interval_secs(),
    }
}
