//! Protocol tests against a real store (SQLite and PostgreSQL) with a test verb whose
//! effect and world are observable: a counter.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::command::{handle, CommandRequest, CommandResponse};
use super::{Ctx, Plan, Planned, Risk, Verb, VerbSpec};
use crate::app::{AppState, BoxFuture};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::store::testing;

struct Counter {
    spec: VerbSpec,
    value: Arc<AtomicI64>,
    runs: Arc<AtomicI64>,
    /// Executions wait for a permit, so a test decides how long one is in flight.
    gate: Arc<tokio::sync::Semaphore>,
}

impl Counter {
    fn new(value: Arc<AtomicI64>, runs: Arc<AtomicI64>) -> Counter {
        Counter {
            spec: VerbSpec {
                name: "bump_counter".into(),
                aliases: vec!["bump".into()],
                description: "test verb".into(),
                args: json!({"type": "object", "properties": {
                    "by": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}
                }, "additionalProperties": false}),
                risk: Risk::High,
                min_role: Role::Operator,
                mutating: true,
            },
            value,
            runs,
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Verb for Counter {
    fn spec(&self) -> &VerbSpec {
        &self.spec
    }
    fn plan<'a>(&'a self, _ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Planned>> {
        Box::pin(async move {
            let now = self.value.load(Ordering::SeqCst);
            let by = args["by"].as_i64().unwrap_or(1);
            Ok(Planned {
                plan: Plan {
                    summary: format!("Raise the counter from {now} to {}", now + by),
                    steps: vec!["add".into()],
                    effects: vec![format!("counter = {}", now + by)],
                },
                world: json!({"value": now}),
            })
        })
    }
    fn execute<'a>(&'a self, _ctx: &'a Ctx, args: &'a Value) -> BoxFuture<'a, ApiResult<Value>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.unwrap().forget();
            let by = args["by"].as_i64().unwrap_or(1);
            Ok(json!({"count": self.value.fetch_add(by, Ordering::SeqCst) + by}))
        })
    }
}

fn caller(key: &str, role: Role, tenant: &str) -> Caller {
    Caller {
        key_id: key.into(),
        role,
        key_tenant: tenant.into(),
        tenant: tenant.into(),
        request_id: crate::util::random_id("req_", 4),
    }
}

fn req(
    verb: &str,
    args: Value,
    confirm: bool,
    plan_id: Option<&str>,
    reason: Option<&str>,
) -> CommandRequest {
    CommandRequest {
        verb: verb.into(),
        args,
        confirm,
        plan_id: plan_id.map(str::to_string),
        reason: reason.map(str::to_string),
    }
}

fn status(r: &ApiResult<CommandResponse>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e.status().as_u16(),
    }
}

async fn plan_id(state: &AppState, c: &Caller, args: Value) -> String {
    match handle(state, c, req("bump_counter", args, false, None, None)).await {
        Ok(CommandResponse::DryRun(d)) => d.plan_id,
        other => panic!("expected a dry-run, got {:?}", other.map(|_| ()).err()),
    }
}

async fn count_actions(state: &AppState, action: &str) -> usize {
    crate::audit::list_records(&state.store, None, Some(-1), Some(action), 1000)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_confirm_protocol() {
    for backend in testing::backends() {
        let (store, _db) = testing::fresh(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::new(crate::Config::for_data_dir(dir.path()), store);
        let value = Arc::new(AtomicI64::new(0));
        let runs = Arc::new(AtomicI64::new(0));
        let counter = Arc::new(Counter::new(value.clone(), runs.clone()));
        let gate = counter.gate.clone();
        state.ops.register(counter).unwrap();
        // Names and aliases are unique across the registry.
        assert!(state
            .ops
            .register(Arc::new(Counter::new(value.clone(), runs.clone())))
            .is_err());
        let op = caller("key_op", Role::Operator, "t1");

        // Unknown verb 400, bad args 422, readonly 403 (audited with the verb as target).
        assert_eq!(
            status(&handle(&state, &op, req("nope", json!({}), false, None, None)).await),
            400
        );
        assert_eq!(
            status(
                &handle(
                    &state,
                    &op,
                    req("bump", json!({"by": 0}), false, None, None)
                )
                .await
            ),
            422
        );
        assert_eq!(
            status(&handle(&state, &op, req("bump", json!({"x": 1}), false, None, None)).await),
            422
        );
        let ro = caller("key_ro", Role::Readonly, "t1");
        assert_eq!(
            status(&handle(&state, &ro, req("bump", json!({}), false, None, None)).await),
            403
        );
        let denied =
            crate::audit::list_records(&state.store, Some("t1"), Some(-1), Some("ops.dry_run"), 10)
                .await
                .unwrap();
        assert!(denied
            .iter()
            .any(|r| r.outcome == "denied" && r.target == "bump_counter"));

        // Dry-run changes nothing; {} and the defaults are the same canonical args.
        let pid = plan_id(&state, &op, json!({})).await;
        assert_eq!(value.load(Ordering::SeqCst), 0);
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        // High risk needs a reason; a missing plan_id is 422.
        assert_eq!(
            status(&handle(&state, &op, req("bump", json!({}), true, Some(&pid), None)).await),
            422
        );
        assert_eq!(
            status(
                &handle(
                    &state,
                    &op,
                    req("bump", json!({}), true, Some(&pid), Some("  "))
                )
                .await
            ),
            422
        );
        assert_eq!(
            status(&handle(&state, &op, req("bump", json!({}), true, None, Some("r"))).await),
            422
        );
        // Other args, other key, other tenant → 409.
        assert_eq!(
            status(
                &handle(
                    &state,
                    &op,
                    req("bump", json!({"by": 2}), true, Some(&pid), Some("r"))
                )
                .await
            ),
            409
        );
        let other_key = caller("key_other", Role::Admin, "t1");
        assert_eq!(
            status(
                &handle(
                    &state,
                    &other_key,
                    req("bump", json!({}), true, Some(&pid), Some("r"))
                )
                .await
            ),
            409
        );
        let mut other_tenant = op.clone();
        other_tenant.tenant = "t2".into();
        assert_eq!(
            status(
                &handle(
                    &state,
                    &other_tenant,
                    req("bump", json!({}), true, Some(&pid), Some("r"))
                )
                .await
            ),
            409
        );
        assert_eq!(
            status(
                &handle(
                    &state,
                    &op,
                    req("bump", json!({}), true, Some("plan_nope"), Some("r"))
                )
                .await
            ),
            409
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        // Concurrent confirms of one plan: one execution, every caller gets its answer.
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (state, op, pid) = (state.clone(), op.clone(), pid.clone());
            tasks.push(tokio::spawn(async move {
                handle(
                    &state,
                    &op,
                    req(
                        "bump_counter",
                        json!({"by": 1}),
                        true,
                        Some(&pid),
                        Some("test"),
                    ),
                )
                .await
            }));
        }
        // Hold the execution until the four other confirms are waiting for its result,
        // so they overlap with it by construction.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 1 || super::command::replay_waits::count(&pid) < 4 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "confirms did not all start"
            );
            tokio::task::yield_now().await;
        }
        gate.add_permits(1000);
        let mut seqs = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(CommandResponse::Confirmed(c)) => {
                    assert_eq!(c.result, json!({"count": 1}));
                    seqs.push(c.audit_seq);
                }
                other => panic!("confirm failed: {:?}", other.err()),
            }
        }
        seqs.dedup();
        assert_eq!(seqs.len(), 1, "every confirm returns the first result");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(value.load(Ordering::SeqCst), 1);
        assert_eq!(count_actions(&state, "ops.confirm").await, 1);
        let rec = crate::audit::get_record(&state.store, seqs[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (rec.action.as_str(), rec.target.as_str()),
            ("ops.confirm", "bump_counter")
        );
        assert_eq!(rec.detail["plan_id"], json!(pid));
        assert_eq!(rec.detail["reason"], json!("test"));

        // The world moved since the plan → 409, nothing runs.
        let pid2 = plan_id(&state, &op, json!({})).await;
        value.fetch_add(5, Ordering::SeqCst);
        let r = handle(
            &state,
            &op,
            req("bump", json!({}), true, Some(&pid2), Some("r")),
        )
        .await;
        assert_eq!(status(&r), 409);
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        // Expired → 409.
        let pid3 = plan_id(&state, &op, json!({})).await;
        sqlx::query("UPDATE ops_plans SET expires_at = 0 WHERE plan_id = $1")
            .bind(&pid3)
            .execute(state.store.writer())
            .await
            .unwrap();
        let r = handle(
            &state,
            &op,
            req("bump", json!({}), true, Some(&pid3), Some("r")),
        )
        .await;
        assert!(matches!(r, Err(ApiError::Conflict(ref m)) if m.contains("expired")));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(count_actions(&state, "ops.dry_run").await, 4);
    }
}
