//! The API contract under hostile input, on SQLite and PostgreSQL: idempotency that
//! cannot leak or be poisoned, and input the databases cannot store answered alike (4xx)
//! on both engines.

mod common;

use common::{Client, Opts, Server};
use serde_json::{json, Value};

async fn start(backend: &str) -> Server {
    let database_url = common::fresh_database(backend).await;
    Server::start_with(Opts {
        database_url,
        ..Default::default()
    })
}

async fn key(c: &Client, role: &str, tenant: &str) -> String {
    let r = c
        .post("/api/v1/keys", json!({"role": role, "tenant": tenant}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["key"].as_str().unwrap().to_string()
}

async fn post_idem(c: &Client, path: &str, idem: &str, body: &str) -> common::Resp {
    c.send(
        c.req(reqwest::Method::POST, path)
            .header("Idempotency-Key", idem)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn replayed(r: &common::Resp) -> bool {
    r.headers.get("idempotent-replayed").is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_is_per_key_and_route_and_stores_only_executed_answers() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let sup = srv.client();
        let integ = sup.with_key(&key(&sup, "integration", "default").await);
        let ro = sup.with_key(&key(&sup, "readonly", "default").await);
        let op = sup.with_key(&key(&sup, "operator", "default").await);

        // No leak: the superadmin's stored answer is never replayed to another key.
        let a = post_idem(&sup, "/api/v1/queue/pause", "shared-1", "{}").await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        let b = post_idem(&integ, "/api/v1/queue/pause", "shared-1", "{}").await;
        b.assert_problem(403);
        assert!(!replayed(&b), "{backend}: an integration key got a replay");
        let again = post_idem(&sup, "/api/v1/queue/pause", "shared-1", "{}").await;
        assert_eq!(again.status, 200, "{backend}: {}", again.text);
        assert!(replayed(&again), "{backend}");
        post_idem(&sup, "/api/v1/queue/resume", "shared-1", "{}").await;

        // No poisoning: a refused request (403) stores nothing; the same key used by the
        // owner, or by the refused key once it may, runs for real.
        let enq = r#"{"kind": "echo", "payload": {"a": 1, "b": [1, 2]}}"#;
        ro.send(
            ro.req(reqwest::Method::POST, "/api/v1/queue/enqueue")
                .header("Idempotency-Key", "order-1")
                .header("content-type", "application/json")
                .body(enq),
        )
        .await
        .assert_problem(403);
        let owner = post_idem(&op, "/api/v1/queue/enqueue", "order-1", enq).await;
        assert_eq!(owner.status, 201, "{backend}: {}", owner.text);
        assert!(
            !replayed(&owner),
            "{backend}: the owner got a replayed answer"
        );

        // A validation error is not stored: the corrected request under the same key runs.
        let bad = post_idem(
            &op,
            "/api/v1/queue/enqueue",
            "order-2",
            r#"{"kind": "nope", "payload": 1}"#,
        )
        .await;
        bad.assert_problem(422);
        let fixed = post_idem(&op, "/api/v1/queue/enqueue", "order-2", enq).await;
        assert_eq!(fixed.status, 201, "{backend}: {}", fixed.text);
        assert!(!replayed(&fixed));

        // The same body with its keys reordered (and other spacing) is the same request.
        let reordered = r#"{"payload":{"b":[1,2],"a":1},"kind":"echo"}"#;
        let r = post_idem(&op, "/api/v1/queue/enqueue", "order-1", reordered).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert!(replayed(&r), "{backend}: reordered keys must replay");
        assert_eq!(r.body["id"], owner.body["id"]);
        // A different body under a used key: 409, nothing replayed.
        let other = post_idem(
            &op,
            "/api/v1/queue/enqueue",
            "order-1",
            r#"{"kind": "echo", "payload": 2}"#,
        )
        .await;
        other.assert_problem(409);
        // The same Idempotency-Key on another route is another entry.
        let batch = post_idem(
            &op,
            "/api/v1/queue/enqueue/batch",
            "order-1",
            r#"{"jobs": [{"kind": "echo", "payload": 3}]}"#,
        )
        .await;
        assert_eq!(batch.status, 201, "{backend}: {}", batch.text);
        assert!(!replayed(&batch));
    }
}

/// One corpus of input the databases cannot store or parse, sent to both engines: every
/// answer is a 4xx, the NUL cases have their contract status, and both engines agree.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_same_4xx_on_every_engine() {
    let long_kind = "k".repeat(100_000);
    let corpus: Vec<(&str, String, Option<Value>, Option<u16>)> = vec![
        ("GET", "/api/v1/queue/jobs?kind=%00".into(), None, Some(400)),
        (
            "GET",
            "/api/v1/queue/jobs?kind=a%00b&state=queued".into(),
            None,
            Some(400),
        ),
        ("GET", "/api/v1/queue/jobs/job%00x".into(), None, Some(400)),
        ("GET", "/api/v1/queue/jobs/%FF%FE".into(), None, Some(400)),
        (
            "GET",
            "/api/v1/audit/records?action=keys.create%00".into(),
            None,
            Some(400),
        ),
        ("GET", "/api/v1/jobs/runs?job=%00".into(), None, Some(400)),
        (
            "GET",
            "/api/v1/selfheal/history?remediation=%00".into(),
            None,
            Some(400),
        ),
        (
            "POST",
            "/api/v1/jobs/ret%00ention/run".into(),
            Some(json!({})),
            Some(400),
        ),
        ("DELETE", "/api/v1/keys/key_%00".into(), None, Some(400)),
        ("GET", "/healthz?x=%00".into(), None, Some(400)),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": "echo", "payload": {"s": "a\u{0}b"}})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": "echo", "payload": {"k\u{0}": 1}})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": "ec\u{0}ho", "payload": {}})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue/batch".into(),
            Some(json!({"jobs": [{"kind": "echo", "payload": 1, "idempotency_key": "k\u{0}"}]})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/keys".into(),
            Some(json!({"role": "readonly", "tenant": "default", "name": "x\u{0}"})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/marketplace/toggle".into(),
            Some(json!({"module": "alerts", "enabled": true, "reason": "r\u{0}"})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/ops/command".into(),
            Some(json!({"verb": "tail_logs", "args": {}, "reason": "\u{0}"})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/alerts/test".into(),
            Some(json!({"message": "\u{0}"})),
            Some(422),
        ),
        // Numbers and sizes out of every range.
        (
            "GET",
            "/api/v1/queue/jobs?limit=99999999999999999999".into(),
            None,
            Some(400),
        ),
        (
            "GET",
            "/api/v1/audit/receipt/99999999999999999999".into(),
            None,
            Some(400),
        ),
        ("GET", "/api/v1/audit/receipt/-1".into(), None, Some(422)),
        (
            "GET",
            "/api/v1/audit/consistency?from=1&to=9223372036854775807".into(),
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/audit/records?after=-9223372036854775808".into(),
            None,
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": "echo", "payload": 1, "priority": 1e300})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": "echo", "payload": 1, "run_at": "9999-12-31T23:59:59Z"})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue".into(),
            Some(json!({"kind": long_kind, "payload": 1})),
            Some(422),
        ),
        (
            "POST",
            "/api/v1/queue/enqueue/batch".into(),
            Some(
                json!({"jobs": [{"kind": "echo", "payload": 1, "idempotency_key": "x".repeat(10_000)}]}),
            ),
            Some(422),
        ),
    ];
    let mut answers: Vec<Vec<u16>> = Vec::new();
    for backend in common::backends() {
        let srv = start(backend).await;
        let c = srv.client();
        let mut got = Vec::new();
        for (method, path, body, want) in &corpus {
            let mut rb = c.req(method.parse().unwrap(), path);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = c.send(rb).await;
            assert!(
                (400..500).contains(&r.status),
                "{backend}: {method} {} → {}: {}",
                &path[..path.len().min(120)],
                r.status,
                r.text.chars().take(300).collect::<String>()
            );
            r.assert_problem(r.status);
            if let Some(w) = want {
                assert_eq!(
                    r.status,
                    *w,
                    "{backend}: {method} {}: {}",
                    &path[..path.len().min(120)],
                    r.text.chars().take(300).collect::<String>()
                );
            }
            got.push(r.status);
        }
        // Nothing of it was counted as a server error.
        let m = c.anonymous().get("/metrics").await.text;
        assert!(
            !m.lines()
                .any(|l| l.starts_with("echopilot_http_requests_total") && l.contains("status=\"5")),
            "{backend}: a 5xx was recorded"
        );
        answers.push(got);
    }
    for a in &answers[1..] {
        assert_eq!(
            a, &answers[0],
            "the engines answered the corpus differently"
        );
    }
}
