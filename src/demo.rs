//! `echopilot demo`: steady, clearly labelled synthetic activity in a `demo` tenant so a
//! new user sees every live tab move. Everything goes through the public HTTP API, like
//! any other client; every payload says it is demo data.

use std::time::Duration;

use serde_json::{json, Value};

pub const DEMO_TENANT: &str = "demo";

/// Create an operator key for the demo tenant and start the activity generator.
pub async fn start(url: &str, admin_key: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{url}/api/v1/keys"))
        .header("X-Dash-Key", admin_key)
        .json(
            &json!({"role": "operator", "tenant": DEMO_TENANT, "name": "demo activity generator"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let key = created["key"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("key creation returned no key"))?
        .to_string();
    let url = url.to_string();
    Ok(tokio::spawn(async move {
        let mut tick = 0u64;
        loop {
            tick += 1;
            for job in demo_jobs(tick) {
                let _ = http
                    .post(format!("{url}/api/v1/queue/enqueue"))
                    .header("X-Dash-Key", &key)
                    .json(&job)
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }))
}

/// A varied mix of the diagnostic kinds: mostly quick successes, some slow jobs, some
/// that fail a few times before succeeding, and an occasional one that dead-letters.
fn demo_jobs(tick: u64) -> Vec<Value> {
    let label = json!({"demo": true, "note": "synthetic demo activity"});
    let mut jobs = vec![json!({"kind": "echo", "payload": {"demo": label, "tick": tick}})];
    if tick.is_multiple_of(3) {
        jobs.push(
            json!({"kind": "sleep", "payload": {"ms": 200 + (tick * 37) % 1500, "demo": label}}),
        );
    }
    if tick.is_multiple_of(5) {
        jobs.push(json!({"kind": "fail", "payload": {"until_attempt": 3, "demo": label}, "max_attempts": 5}));
    }
    if tick.is_multiple_of(23) {
        jobs.push(json!({"kind": "fail", "payload": {"until_attempt": 99, "demo": label}, "max_attempts": 2}));
    }
    jobs
}
