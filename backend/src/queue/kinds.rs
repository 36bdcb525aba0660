//! The handler registry (`kind → async fn(ctx, payload)`) and the built-in diagnostic
//! kinds used by drills and smoke tests: `echo`, `sleep`, `fail`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::app::BoxFuture;
use crate::store::Store;

/// What a handler knows about the job it runs.
#[derive(Clone)]
pub struct JobCtx {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    /// 1-based number of this attempt.
    pub attempt: i64,
    pub max_attempts: i64,
    pub store: Store,
}

pub type HandlerFn =
    Arc<dyn Fn(JobCtx, Value) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;
pub type ValidateFn = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;
/// Called with the job and the error after an attempt was cancelled at its timeout.
pub type TimeoutHook = Arc<dyn Fn(JobCtx, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// How a kind behaves besides its handler.
#[derive(Clone, Default)]
pub struct KindSpec {
    /// Checked at enqueue time, so a malformed payload is a 422 instead of a dead job.
    pub validate: Option<ValidateFn>,
    /// Longest one attempt may run; `None` = `queue.job_timeout_s`.
    pub timeout: Option<Duration>,
    /// Runs after a timed-out attempt's handler was aborted and before the failure is
    /// written, so a kind that keeps records of its own (the scheduler's `job_runs`) can
    /// close them; it is bounded by a few seconds.
    pub on_timeout: Option<TimeoutHook>,
    /// The platform's own kind (scheduled jobs, alert delivery): only tenant `_system` may
    /// enqueue it, so a tenant's operator cannot run system work through the queue API.
    pub internal: bool,
}

#[derive(Clone)]
pub struct Kind {
    pub handler: HandlerFn,
    pub validate: Option<ValidateFn>,
    pub timeout: Option<Duration>,
    pub on_timeout: Option<TimeoutHook>,
    pub internal: bool,
}

#[derive(Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<String, Kind>>>);

impl Registry {
    /// Register (or replace) the handler of `kind`.
    pub fn register<F, Fut>(&self, kind: &str, validate: Option<ValidateFn>, f: F)
    where
        F: Fn(JobCtx, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, String>> + Send + 'static,
    {
        self.register_spec(
            kind,
            KindSpec {
                validate,
                ..KindSpec::default()
            },
            f,
        )
    }

    /// Register (or replace) `kind` with its validation, timeout and timeout hook.
    pub fn register_spec<F, Fut>(&self, kind: &str, spec: KindSpec, f: F)
    where
        F: Fn(JobCtx, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, String>> + Send + 'static,
    {
        let handler: HandlerFn = Arc::new(move |ctx, payload| Box::pin(f(ctx, payload)));
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(
            kind.to_string(),
            Kind {
                handler,
                validate: spec.validate,
                timeout: spec.timeout,
                on_timeout: spec.on_timeout,
                internal: spec.internal,
            },
        );
    }

    /// Change the timeout of a registered kind (the scheduler's reload); false if unknown.
    pub fn set_timeout(&self, kind: &str, timeout: Option<Duration>) -> bool {
        match self
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(kind)
        {
            Some(k) => {
                k.timeout = timeout;
                true
            }
            None => false,
        }
    }

    pub fn get(&self, kind: &str) -> Option<Kind> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }

    /// Kinds tenants may enqueue (internal ones left out).
    pub fn kinds(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, k)| !k.internal)
            .map(|(name, _)| name.clone())
            .collect();
        v.sort();
        v
    }
}

/// Highest `queue.max_sleep_ms` accepted (10 minutes): longer diagnostic sleeps are
/// mistakes.
pub const MAX_SLEEP_MS: u64 = 600_000;

/// The diagnostic kinds are bounded so an operator key cannot park worker slots: `sleep`
/// up to `max_sleep_ms` (`queue.max_sleep_ms`, default 60 s), `fail` by the job's
/// `max_attempts` (≤ 100) and its backoff.
pub fn register_builtins(reg: &Registry, max_sleep_ms: u64) {
    reg.register("echo", None, |_ctx, payload| async move { Ok(payload) });

    let sleep_validate: ValidateFn = Arc::new(move |p| sleep_ms(p, max_sleep_ms).map(|_| ()));
    reg.register(
        "sleep",
        Some(sleep_validate),
        move |_ctx, payload| async move {
            let ms = sleep_ms(&payload, max_sleep_ms)?;
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(serde_json::json!({ "slept_ms": ms }))
        },
    );

    let fail_validate: ValidateFn = Arc::new(|p| until_attempt(p).map(|_| ()));
    reg.register("fail", Some(fail_validate), |ctx, payload| async move {
        let until = until_attempt(&payload)?;
        if ctx.attempt < until {
            Err(format!(
                "diagnostic failure: attempt {} of a job that fails until attempt {until}",
                ctx.attempt
            ))
        } else {
            Ok(serde_json::json!({ "succeeded_on_attempt": ctx.attempt }))
        }
    });
}

fn sleep_ms(p: &Value, max: u64) -> Result<u64, String> {
    match p.get("ms").and_then(Value::as_u64) {
        Some(ms) if ms <= max => Ok(ms),
        _ => Err(format!(
            "sleep payload must be {{\"ms\": n}} with 0 <= n <= {max} (queue.max_sleep_ms)"
        )),
    }
}

fn until_attempt(p: &Value) -> Result<i64, String> {
    match p.get("until_attempt").and_then(Value::as_i64) {
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err("fail payload must be {\"until_attempt\": n} with 1 <= n <= 1000".into()),
    }
}
