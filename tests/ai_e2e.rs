//! The AI data lake end to end, on SQLite and PostgreSQL: events and analytics with known
//! answers, the redaction corpus (near-misses included), per-tenant rules, and the
//! recording proxy against a local fake upstream (wiremock), streamed and not.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{key, start, Client};

const UPSTREAM_KEY: &str = "sk-upstream-secret-0123456789abcdefXYZ";

fn event(model: &str, prompt: &str, latency: i64, status: &str) -> Value {
    json!({"model": model, "prompt": prompt, "response": "fine", "tokens_in": 100,
           "tokens_out": 50, "latency_ms": latency, "status": status})
}

fn model<'a>(a: &'a Value, name: &str) -> &'a Value {
    a["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == name)
        .unwrap_or_else(|| panic!("model {name} missing: {a}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_analytics_have_known_answers_per_tenant() {
    for backend in common::backends() {
        // 1.00 per 1M tokens in, 2.00 out: 100 in + 50 out = 100 + 100 micro-units.
        let srv = start(backend, &[("ECHOPILOT_AI__PRICES", "priced-model=1.0/2.0")]).await;
        let root = srv.client();
        let ing = key(&root, "integration", "acme").await;
        let ro = key(&root, "readonly", "acme").await;
        let other = key(&root, "readonly", "globex").await;

        // 20 calls of one template (latencies 10..200), 2 failures, half for "search".
        let mut batch = Vec::new();
        for i in 1..=20 {
            let mut e = event(
                "priced-model",
                &format!("Summarise order {} for customer{}@example.com", 1000 + i, i),
                i * 10,
                if i % 10 == 0 { "error" } else { "ok" },
            );
            if i % 10 == 0 {
                e["error"] = json!("rate limited for ops@example.com");
            }
            if i % 2 == 0 {
                e["feature"] = json!("search");
            }
            batch.push(e);
        }
        let r = ing
            .post("/api/v1/ai/events/batch", json!({"events": batch}))
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let rec = r.body["recorded"].as_array().unwrap();
        assert_eq!(rec.len(), 20);
        assert_eq!(rec[0]["cost_micros"], 200);
        assert_eq!(
            rec[0]["template"],
            "Summarise order {n} for [REDACTED:email]"
        );
        assert_eq!(rec[0]["template_hash"], rec[19]["template_hash"]);
        assert_eq!(rec[0]["text_stored"], false);
        assert_eq!(rec[0]["redactions"]["email"], 1);
        // An unpriced model: cost null, counted.
        for lat in [5, 7, 9] {
            let r = ing
                .post(
                    "/api/v1/ai/events",
                    event("mystery-model", "Translate 'x' to French", lat, "ok"),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            assert!(r.body["cost_micros"].is_null());
        }

        let a = ro.get("/api/v1/ai/analytics").await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        let b = &a.body;
        assert_eq!(b["tenant"], "acme");
        assert_eq!(b["totals"]["events"], 23);
        assert_eq!(b["totals"]["errors"], 2);
        assert_eq!(b["totals"]["cost_micros"], 4000);
        assert_eq!(b["totals"]["unpriced_events"], 3);
        assert_eq!(b["totals"]["tokens_in"], 2300);
        // 20 prompt emails + 2 error emails.
        assert_eq!(b["totals"]["redactions"], 22);
        let p = model(b, "priced-model");
        assert_eq!(p["events"], 20);
        assert_eq!(p["error_rate"], 0.1);
        assert_eq!(p["p50_latency_ms"], 100, "nearest rank 10 of 20");
        assert_eq!(p["p95_latency_ms"], 190, "nearest rank 19 of 20");
        assert_eq!(p["avg_tokens_in"], 100.0);
        assert_eq!(p["avg_tokens_out"], 50.0);
        assert_eq!(p["cost_micros"], 4000);
        let m = model(b, "mystery-model");
        assert_eq!(m["p50_latency_ms"], 7);
        assert_eq!(m["p95_latency_ms"], 9);
        assert_eq!(m["unpriced_events"], 3);
        assert_eq!(m["cost_micros"], 0);
        let feats = b["features"].as_array().unwrap();
        let search = feats.iter().find(|f| f["feature"] == "search").unwrap();
        assert_eq!(search["events"], 10);
        assert_eq!(search["cost_micros"], 2000);
        assert_eq!(search["errors"], 2);
        let none = feats.iter().find(|f| f["feature"].is_null()).unwrap();
        assert_eq!(none["events"], 13);
        let top = &b["top_templates"][0];
        assert_eq!(top["events"], 20);
        assert_eq!(top["template"], "Summarise order {n} for [REDACTED:email]");
        assert_eq!(b["top_templates"][1]["template"], "Translate '…' to French");
        let errs = b["recent_errors"].as_array().unwrap();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0]["error"], "rate limited for [REDACTED:email]");

        // A window that excludes everything; a bad window.
        let empty = ro
            .get("/api/v1/ai/analytics?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z")
            .await;
        assert_eq!(empty.body["totals"]["events"], 0, "{}", empty.text);
        assert_eq!(empty.body["totals"]["error_rate"], 0.0);
        ro.get("/api/v1/ai/analytics?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")
            .await
            .assert_problem(422);
        ro.get("/api/v1/ai/analytics?from=yesterday")
            .await
            .assert_problem(422);
        ro.get("/api/v1/ai/analytics?limit=0")
            .await
            .assert_problem(422);
        ro.get("/api/v1/ai/analytics?bogus=1")
            .await
            .assert_problem(400);

        // Tenancy: another tenant sees nothing; a foreign X-Tenant-Id is refused.
        let g = other.get("/api/v1/ai/analytics").await;
        assert_eq!(g.body["totals"]["events"], 0, "{}", g.text);
        other
            .with_tenant("acme")
            .get("/api/v1/ai/analytics")
            .await
            .assert_problem(403);
        // Roles: integration keys record but do not read; no key is 401.
        ing.get("/api/v1/ai/analytics").await.assert_problem(403);
        ing.anonymous()
            .post("/api/v1/ai/events", event("m", "p", 1, "ok"))
            .await
            .assert_problem(401);

        // Bad input: 422 naming the field, 400 for unknown fields and types, 415, and a
        // batch with one bad event stores nothing.
        let mut bad = event("m", "p", 1, "ok");
        bad["tokens_in"] = json!(-1);
        let r = ing.post("/api/v1/ai/events", bad).await;
        r.assert_problem(422);
        assert!(
            r.body["detail"].as_str().unwrap().contains("tokens_in"),
            "{}",
            r.text
        );
        let mut bad = event("m", "p", 1, "ok");
        bad["colour"] = json!("red");
        ing.post("/api/v1/ai/events", bad).await.assert_problem(400);
        ing.post("/api/v1/ai/events", event("m", "p", 1, "maybe"))
            .await
            .assert_problem(400);
        ing.post("/api/v1/ai/events", event("", "p", 1, "ok"))
            .await
            .assert_problem(422);
        let mut bad = event("m", "p", 1, "ok");
        bad["ts"] = json!("2999-01-01T00:00:00Z");
        ing.post("/api/v1/ai/events", bad).await.assert_problem(422);
        let r = ing
            .send(
                ing.req(reqwest::Method::POST, "/api/v1/ai/events")
                    .body("{}"),
            )
            .await;
        r.assert_problem(415);
        let mut bad = event("m", "p", 1, "ok");
        bad["latency_ms"] = json!(86_400_001);
        let r = ing
            .post(
                "/api/v1/ai/events/batch",
                json!({"events": [event("m", "p", 1, "ok"), bad]}),
            )
            .await;
        r.assert_problem(422);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("events[1].latency_ms"),
            "{}",
            r.text
        );
        ing.post("/api/v1/ai/events/batch", json!({"events": []}))
            .await
            .assert_problem(422);
        let after = ro.get("/api/v1/ai/analytics").await;
        assert_eq!(
            after.body["totals"]["events"], 23,
            "nothing of the bad batch stored"
        );

        // Listing, summary and metrics.
        let l = ro.get("/api/v1/ai/events?limit=5&status=error").await;
        assert_eq!(l.status, 200, "{}", l.text);
        assert_eq!(l.body["events"].as_array().unwrap().len(), 2);
        assert!(
            l.body["events"][0]["prompt_text"].is_null(),
            "text not kept by default"
        );
        let s = ro.get("/api/v1/status/summary").await;
        assert_eq!(s.body["ai"]["events_24h"], 23, "{}", s.text);
        assert_eq!(s.body["ai"]["unpriced_24h"], 3);
        let metrics = ro.anonymous().get("/metrics").await.text;
        assert!(metrics.contains("echopilot_ai_events_total"), "{metrics}");
        assert!(metrics.contains("echopilot_ai_redactions_total{recogniser=\"email\"}"));
        assert!(metrics.contains("echopilot_ai_unpriced_events_total"));

        // The NDJSON log carries the event, never the raw prompt.
        let logs = common::eventually(Duration::from_secs(10), "ai_events log lines", || {
            let logs = srv.read_logs();
            async move { logs.contains("\"event\":\"ai_call\"").then_some(logs) }
        })
        .await;
        assert!(
            !logs.contains("customer3@example.com"),
            "raw prompt leaked to logs"
        );
        assert!(!logs.contains("ops@example.com"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_corpus_and_tenant_rules() {
    // (input, expected stored text)
    let corpus: &[(&str, &str)] = &[
        ("write to jane.doe@example.org", "write to [REDACTED:email]"),
        (
            "pay with 4242 4242 4242 4242",
            "pay with [REDACTED:credit_card]",
        ),
        (
            "order number 4242424242424243",
            "order number 4242424242424243",
        ),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [REDACTED:iban]"),
        (
            "IBAN DE89 3704 0044 0532 0130 01",
            "IBAN DE89 3704 0044 0532 0130 01",
        ),
        ("server 10.20.30.40 down", "server [REDACTED:ipv4] down"),
        ("upgrade to 1.2.3.4.5", "upgrade to 1.2.3.4.5"),
        ("peer 2001:db8::1 lost", "peer [REDACTED:ipv6] lost"),
        ("call me at +1 415 555 0100", "call me at [REDACTED:phone]"),
        ("invoice 4155550100", "invoice 4155550100"),
        ("key AKIAIOSFODNN7EXAMPLE", "key [REDACTED:aws_access_key]"),
        (
            "gh ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "gh [REDACTED:github_token]",
        ),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
        ("EMP-123456 asked", "EMP-123456 asked"),
    ];
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_AI__STORE_TEXT", "true")]).await;
        let root = srv.client();
        let ing = key(&root, "integration", "acme").await;
        let admin = key(&root, "admin", "acme").await;
        let ro = key(&root, "readonly", "acme").await;
        for (input, want) in corpus {
            let r = ing
                .post("/api/v1/ai/events", event("m", input, 1, "ok"))
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
            let l = ro.get("/api/v1/ai/events?limit=1").await;
            assert_eq!(
                l.body["events"][0]["prompt_text"], *want,
                "{backend}: {input}"
            );
            assert_eq!(l.body["events"][0]["response_text"], "fine");
        }

        // Rules: the defaults list every recogniser on.
        let g = ro.get("/api/v1/ai/redaction").await;
        assert_eq!(g.status, 200, "{}", g.text);
        assert!(g.body["recognisers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["enabled"] == true));
        assert!(g.body["updated_by"].is_null());
        // Only an admin changes them; bad names and patterns are 422.
        let put = |c: &Client, body: Value| {
            let c = c.clone();
            async move {
                c.send(
                    c.req(reqwest::Method::PUT, "/api/v1/ai/redaction")
                        .json(&body),
                )
                .await
            }
        };
        put(&ro, json!({"disabled": [], "extra": []}))
            .await
            .assert_problem(403);
        put(&admin, json!({"disabled": ["nosuch"], "extra": []}))
            .await
            .assert_problem(422);
        put(
            &admin,
            json!({"disabled": [], "extra": [{"name": "x", "pattern": "(unclosed"}]}),
        )
        .await
        .assert_problem(422);
        put(
            &admin,
            json!({"disabled": [], "extra": [{"name": "email", "pattern": "a"}]}),
        )
        .await
        .assert_problem(422);
        put(&admin, json!({"disabled": []}))
            .await
            .assert_problem(400);
        let r = put(
            &admin,
            json!({"disabled": ["email"], "extra": [{"name": "employee_id", "pattern": "EMP-[0-9]{6}"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let email = r.body["recognisers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "email")
            .unwrap()
            .clone();
        assert_eq!(email["enabled"], false);
        let r = ing
            .post(
                "/api/v1/ai/events",
                event("m", "EMP-123456 is jane@example.org", 1, "ok"),
            )
            .await;
        assert_eq!(
            r.body["redactions"],
            json!({"employee_id": 1}),
            "{}",
            r.text
        );
        let l = ro.get("/api/v1/ai/events?limit=1").await;
        assert_eq!(
            l.body["events"][0]["prompt_text"],
            "[REDACTED:employee_id] is jane@example.org"
        );
        // Another tenant keeps the defaults.
        let other = key(&root, "integration", "globex").await;
        let r = other
            .post(
                "/api/v1/ai/events",
                event("m", "EMP-123456 is jane@example.org", 1, "ok"),
            )
            .await;
        assert_eq!(r.body["redactions"], json!({"email": 1}), "{}", r.text);
        // The change is audited.
        let audit = admin.get("/api/v1/audit/records?limit=20").await;
        assert!(audit.text.contains("ai.redaction"), "{}", audit.text);
        let logs = srv.read_logs();
        assert!(!logs.contains("4242 4242 4242 4242"), "card number in logs");
        assert!(!logs.contains("AKIAIOSFODNN7EXAMPLE"));
    }
}

fn sse(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&format!("data: {e}\n\n"));
    }
    s.push_str("data: [DONE]\n\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_records_streamed_and_plain_calls_and_never_shows_the_key() {
    for backend in common::backends() {
        let up = MockServer::start().await;
        let auth = format!("Bearer {UPSTREAM_KEY}");
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", auth.as_str()))
            .respond_with(move |req: &wiremock::Request| {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                if body["stream"] == true {
                    let usage = body["stream_options"]["include_usage"] == true;
                    let mut chunks = vec![
                        json!({"model": "gpt-test-2026", "choices": [{"delta": {"content": "Hello"}}]}),
                        json!({"model": "gpt-test-2026", "choices": [{"delta": {"content": " world"}}]}),
                    ];
                    if usage {
                        chunks.push(json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}));
                    }
                    ResponseTemplate::new(200).set_body_raw(sse(&chunks), "text/event-stream")
                } else if body["model"] == "overloaded" {
                    ResponseTemplate::new(429)
                        .insert_header("retry-after", "7")
                        .set_body_json(json!({"error": {"message": format!("slow down, key {UPSTREAM_KEY}")}}))
                } else {
                    ResponseTemplate::new(200).set_body_json(json!({
                        "model": "gpt-test-2026",
                        "choices": [{"message": {"role": "assistant", "content": "Paris"}}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 1}}))
                }
            })
            .mount(&up)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "model": "embed-test", "data": [{"embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 4, "total_tokens": 4}})))
            .mount(&up)
            .await;
        let base = format!("{}/v1", up.uri());
        let srv = start(
            backend,
            &[
                ("ECHOPILOT_AI__UPSTREAM_BASE_URL", &base),
                ("ECHOPILOT_AI__UPSTREAM_API_KEY", UPSTREAM_KEY),
                ("ECHOPILOT_AI__PRICES", "gpt-test=1/2"),
            ],
        )
        .await;
        let root = srv.client();
        let ing = key(&root, "integration", "acme").await;
        let ro = key(&root, "readonly", "acme").await;
        let chat = "/api/v1/ai/proxy/v1/chat/completions";

        // Not streamed: the upstream's JSON comes back as is; usage is recorded.
        let r = ing
            .send(
                ing.req(reqwest::Method::POST, chat)
                    .header("x-ai-feature", "geo")
                    .json(&json!({"model": "gpt-test", "messages": [{"role": "user", "content": "Capital of France? mail me at a@b.io"}]})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["choices"][0]["message"]["content"], "Paris");

        // Streamed with include_usage: passed through byte for byte.
        let want = sse(&[
            json!({"model": "gpt-test-2026", "choices": [{"delta": {"content": "Hello"}}]}),
            json!({"model": "gpt-test-2026", "choices": [{"delta": {"content": " world"}}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}),
        ]);
        let r = ing
            .post(chat, json!({"model": "gpt-test", "stream": true, "stream_options": {"include_usage": true},
                               "messages": [{"role": "user", "content": "Say hello"}]}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        assert_eq!(r.text, want);
        // Streamed without usage: tokens unknown, not guessed.
        let r = ing
            .post(chat, json!({"model": "gpt-test", "stream": true, "messages": [{"role": "user", "content": "Say hello"}]}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Embeddings.
        let r = ing
            .post(
                "/api/v1/ai/proxy/v1/embeddings",
                json!({"model": "embed-test", "input": "hello"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // An upstream error passes through with its status; the key is scrubbed.
        let r = ing
            .post(chat, json!({"model": "overloaded", "messages": []}))
            .await;
        r.assert_problem(429);
        assert_eq!(r.headers["retry-after"], "7");
        assert!(r.text.contains("slow down"), "{}", r.text);
        assert!(!r.text.contains(UPSTREAM_KEY), "{}", r.text);
        // Bad requests never reach the upstream.
        ing.post(chat, json!({"messages": []}))
            .await
            .assert_problem(422);
        ing.send(ing.req(reqwest::Method::POST, chat).body("{}"))
            .await
            .assert_problem(415);
        ing.send(
            ing.req(reqwest::Method::POST, chat)
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await
        .assert_problem(400);
        ing.anonymous()
            .post(chat, json!({"model": "gpt-test"}))
            .await
            .assert_problem(401);

        let events = common::eventually(
            Duration::from_secs(10),
            "five proxied calls recorded",
            || {
                let ro = ro.clone();
                async move {
                    let l = ro.get("/api/v1/ai/events?limit=20").await;
                    let ev = l.body["events"].as_array()?.clone();
                    (ev.len() == 5).then_some(ev)
                }
            },
        )
        .await;
        let by = |pred: &dyn Fn(&Value) -> bool| {
            events
                .iter()
                .find(|e| pred(e))
                .cloned()
                .unwrap_or_else(|| panic!("{events:?}"))
        };
        let plain = by(&|e| e["feature"] == "geo");
        assert_eq!(
            plain["model"], "gpt-test-2026",
            "the model the upstream answered with"
        );
        assert_eq!(plain["tokens_in"], 9);
        assert_eq!(plain["tokens_out"], 1);
        assert_eq!(
            plain["cost_micros"], 11,
            "9×1 + 1×2 micro-units, priced by prefix gpt-test"
        );
        assert_eq!(plain["source"], "proxy");
        assert_eq!(plain["redactions"]["email"], 1);
        assert_eq!(
            plain["template"],
            "user: Capital of France? mail me at [REDACTED:email]"
        );
        let hello = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"Hello world"));
        let streamed: Vec<Value> = events
            .iter()
            .filter(|e| e["response_sha256"] == hello)
            .cloned()
            .collect();
        assert_eq!(streamed.len(), 2, "{events:?}");
        assert!(streamed.iter().all(|e| e["status"] == "ok"));
        assert!(streamed
            .iter()
            .any(|e| e["tokens_in"] == 11 && e["tokens_out"] == 2 && e["cost_micros"] == 15));
        assert!(streamed
            .iter()
            .any(|e| e["tokens_in"].is_null() && e["cost_micros"].is_null()));
        let emb = by(&|e| e["endpoint"] == "embeddings");
        assert_eq!(emb["tokens_in"], 4);
        assert_eq!(emb["tokens_out"], 0);
        let failed = by(&|e| e["status"] == "error");
        assert!(
            failed["error"].as_str().unwrap().contains("429"),
            "{failed}"
        );
        assert!(!failed.to_string().contains(UPSTREAM_KEY));

        // The key never appears in a log.
        let logs = srv.read_logs();
        assert!(!logs.contains(UPSTREAM_KEY), "upstream key in logs");
        assert!(!logs.contains("mail me at a@b.io"), "raw prompt in logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_upstream_the_proxy_is_404_and_the_module_rolls_back() {
    let srv = start("sqlite", &[]).await;
    let c = srv.client();
    let r = c
        .post(
            "/api/v1/ai/proxy/v1/chat/completions",
            json!({"model": "m", "messages": []}),
        )
        .await;
    r.assert_problem(404);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("upstream_base_url"),
        "{}",
        r.text
    );
    drop(srv);
    // An unreachable upstream (nothing listens on port 1) is a 502 problem, a gateway
    // error, recorded as a failed call.
    let srv = start(
        "sqlite",
        &[
            ("ECHOPILOT_AI__UPSTREAM_BASE_URL", "http://127.0.0.1:1/v1"),
            ("ECHOPILOT_AI__UPSTREAM_API_KEY", UPSTREAM_KEY),
        ],
    )
    .await;
    let c = srv.client();
    let r = c
        .post(
            "/api/v1/ai/proxy/v1/chat/completions",
            json!({"model": "m", "messages": []}),
        )
        .await;
    r.assert_problem(502);
    assert!(!r.text.contains(UPSTREAM_KEY));
    let l = c.get("/api/v1/ai/events").await;
    assert_eq!(l.body["events"][0]["status"], "error", "{}", l.text);
    assert!(!srv.read_logs().contains(UPSTREAM_KEY));
    drop(srv);
    let srv = start("sqlite", &[("ECHOPILOT_MODULES__AI", "false")]).await;
    let r = srv
        .client()
        .post("/api/v1/ai/events", event("m", "p", 1, "ok"))
        .await;
    r.assert_problem(404);
    assert_eq!(r.body["module"], "ai");
    assert_eq!(r.body["scope"], "fleet");
}

/// A fake OpenAI-compatible upstream that streams the first SSE chunk of every answer at
/// once and holds the rest until `release` is set: a test can see the first chunk arrive
/// before the upstream has finished. Raw HTTP/1.1 with chunked encoding, so nothing in
/// between can make it look streamed when it is not.
async fn holding_upstream(
    first: String,
    rest: String,
) -> (String, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (release, released) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (first, rest, mut released) = (first.clone(), rest.clone(), released.clone());
            tokio::spawn(async move {
                // Read the request: headers, then the content-length body.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let part = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
                let start = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                     connection: close\r\ntransfer-encoding: chunked\r\n\r\n{}",
                    part(&first)
                );
                if sock.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
                let _ = released.wait_for(|r| *r).await;
                let end = format!("{}0\r\n\r\n", part(&rest));
                let _ = sock.write_all(end.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (base, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_with_an_idempotency_key_still_streams() {
    for backend in common::backends() {
        let first = format!(
            "data: {}\n\n",
            json!({"model": "gpt-held", "choices": [{"delta": {"content": "Hello"}}]})
        );
        let rest = format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"model": "gpt-held", "choices": [{"delta": {"content": " there"}}]})
        );
        let (base, release) = holding_upstream(first.clone(), rest.clone()).await;
        let srv = start(
            backend,
            &[
                ("ECHOPILOT_AI__UPSTREAM_BASE_URL", &base),
                ("ECHOPILOT_AI__UPSTREAM_API_KEY", UPSTREAM_KEY),
            ],
        )
        .await;
        let root = srv.client();
        let ing = key(&root, "integration", "acme").await;
        let ro = key(&root, "readonly", "acme").await;
        let body = json!({"model": "gpt-held", "stream": true,
                          "messages": [{"role": "user", "content": "Say hello"}]});
        let call = || {
            ing.req(
                reqwest::Method::POST,
                "/api/v1/ai/proxy/v1/chat/completions",
            )
            .header("Idempotency-Key", "stream-1")
            .json(&body)
        };
        // The upstream holds everything after the first chunk until `release`: if anything
        // buffered the whole answer, neither the headers nor the first chunk would come.
        let held = Duration::from_secs(30);
        let mut resp = tokio::time::timeout(held, call().send())
            .await
            .unwrap_or_else(|_| {
                panic!("{backend}: no response while the upstream held the rest (buffered)")
            })
            .unwrap();
        assert_eq!(resp.status(), 200, "{backend}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut seen = Vec::new();
        while seen.len() < first.len() {
            let c = tokio::time::timeout(held, resp.chunk())
                .await
                .unwrap_or_else(|_| {
                    panic!("{backend}: the first chunk did not arrive before the upstream finished")
                })
                .unwrap()
                .expect("the stream ended early");
            seen.extend_from_slice(&c);
        }
        assert_eq!(String::from_utf8_lossy(&seen), first, "{backend}");
        // While it streams, the key is in progress: a repeat is 409, not a second call.
        let again = ing.send(call()).await;
        again.assert_problem(409);
        assert!(again.text.contains("in progress"), "{}", again.text);
        release.send(true).unwrap();
        while let Some(c) = resp.chunk().await.unwrap() {
            seen.extend_from_slice(&c);
        }
        assert_eq!(String::from_utf8_lossy(&seen), format!("{first}{rest}"));
        // Not stored: once the stream ended the key is released, and a repeat streams
        // again (no replay header) instead of replaying a buffered copy.
        let replay = common::eventually(Duration::from_secs(10), "the key released", || {
            let c = ing.clone();
            let rb = call();
            async move {
                let r = c.send(rb).await;
                (r.status != 409).then_some(r)
            }
        })
        .await;
        assert_eq!(replay.status, 200, "{}", replay.text);
        assert!(replay.headers.get("idempotent-replayed").is_none());
        assert_eq!(replay.text, format!("{first}{rest}"));
        let events = common::eventually(Duration::from_secs(10), "both calls recorded", || {
            let ro = ro.clone();
            async move {
                let l = ro.get("/api/v1/ai/events?limit=10").await;
                let ev = l.body["events"].as_array()?.clone();
                (ev.len() == 2).then_some(ev)
            }
        })
        .await;
        assert!(events.iter().all(|e| e["status"] == "ok"), "{events:?}");
    }
}

/// The newest finished `retention` run with this trigger started at or after `since`
/// (ms). Times are `rfc3339_ms` text, which sorts as it reads.
async fn retention_run_since(c: &Client, since: i64, trigger: &str) -> Value {
    let since = echopilot_backend::util::rfc3339_ms(since);
    common::eventually(Duration::from_secs(60), "a finished retention run", || {
        let (c, since) = (c.clone(), since.clone());
        async move {
            let r = c.get("/api/v1/jobs/runs?job=retention&limit=20").await;
            r.body["runs"].as_array()?.iter().find_map(|x| {
                let started = x["started_at"].as_str()?;
                (started >= since.as_str()
                    && x["trigger"] == trigger
                    && !x["finished_at"].is_null())
                .then(|| x.clone())
            })
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_events_past_retention_are_pruned_by_the_retention_job_with_its_ledger() {
    use echopilot_backend::util::{now_ms, rfc3339_ms};
    for backend in common::backends() {
        let tmp = tempfile::tempdir().unwrap();
        let database_url = common::fresh_database(backend).await;
        let opts = |env: &[(&str, &str)]| common::Opts {
            database_url: database_url.clone(),
            data_dir: Some(tmp.path().to_path_buf()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        // Default retention (90 days): three calls from 10 days ago, two from an hour ago.
        let mut srv = common::Server::start_with(opts(&[]));
        let root = srv.client();
        let ing = key(&root, "integration", "acme").await;
        let now = now_ms();
        for (ago, n) in [(10 * 86_400_000, 3), (3_600_000, 2)] {
            for i in 0..n {
                let mut e = event("m", &format!("call {i}"), 5, "ok");
                e["ts"] = json!(rfc3339_ms(now - ago - i));
                let r = ing.post("/api/v1/ai/events", e).await;
                assert_eq!(r.status, 201, "{backend}: {}", r.text);
            }
        }
        assert_eq!(srv.terminate(), Some(0));

        // Restarted with a 7-day retention: the retention run at start prunes the old three.
        let restarted = now_ms();
        let srv = common::Server::start_with(common::Opts {
            key: Some(srv.key.clone()),
            ..opts(&[("ECHOPILOT_AI__RETENTION_DAYS", "7")])
        });
        let root = srv.client();
        let acme = root.with_tenant("acme");
        let run = retention_run_since(&root, restarted, "startup").await;
        assert_eq!(run["outcome"], "succeeded", "{backend}: {run}");
        assert_eq!(
            run["result"]["ai_events"],
            json!({"deleted": 3, "older_than_days": 7}),
            "{backend}: {run}"
        );
        let left = acme.get("/api/v1/ai/events?limit=20").await;
        let left = left.body["events"].as_array().unwrap().clone();
        assert_eq!(left.len(), 2, "{backend}: {left:?}");
        let id = run["id"].as_str().unwrap();
        let l = root.get(&format!("/api/v1/jobs/runs/{id}/ledger")).await;
        assert_eq!(l.body["errors_count"], 0, "{}", l.text);
        assert_eq!(l.body["artifacts_total"], l.body["artifacts_processed"]);
        // Past the retention period is refused at recording, naming the field.
        let mut old = event("m", "late", 5, "ok");
        old["ts"] = json!(rfc3339_ms(now_ms() - 8 * 86_400_000));
        let r = acme.post("/api/v1/ai/events", old).await;
        r.assert_problem(422);
        assert!(r.text.contains("retention_days"), "{}", r.text);

        // A prune that fails (the table is gone for a moment) is in the run's error
        // ledger, naming ai_events and the stage, and fails the run.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&match &database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", tmp.path().join("echopilot.db").display()),
        })
        .await
        .unwrap();
        sqlx::query("ALTER TABLE ai_events RENAME TO ai_events_away")
            .execute(&pool)
            .await
            .unwrap();
        let started = now_ms();
        let r = root.post("/api/v1/jobs/retention/run", json!({})).await;
        assert!(r.status < 300, "{}", r.text);
        let run = retention_run_since(&root, started, "manual").await;
        sqlx::query("ALTER TABLE ai_events_away RENAME TO ai_events")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(run["outcome"], "failed", "{backend}: {run}");
        let id = run["id"].as_str().unwrap();
        let l = root.get(&format!("/api/v1/jobs/runs/{id}/ledger")).await;
        let errs = l.body["errors"].as_array().unwrap();
        let e = errs
            .iter()
            .find(|e| e["artifact_id"] == "ai_events")
            .unwrap_or_else(|| panic!("{backend}: {}", l.text));
        assert_eq!(e["stage"], "prune", "{e}");
        assert_eq!(e["blocking"], true, "{e}");
        assert!(
            e["exception"].as_str().unwrap().contains("ai_events"),
            "{e}"
        );
        // The rest of the pass ran: the other prunes are in the result.
        assert!(run["result"]["job_runs"]["deleted"].is_number(), "{run}");
    }
}
