//! End-to-end tests of product analytics against the real binary, on SQLite and
//! PostgreSQL: ingestion (idempotent repeats, mixed good/bad batches), the publishable
//! ingest key's limits, CORS and the client script, rollups against a brute-force count
//! over the events sent (seeded random data), a funnel with known answers, the daily job.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use echopilot_backend::analytics::rollup::date_of;
use serde_json::{json, Value};

use common::{eventually, key_and_secret, Client, Opts, Server};

const DAY_MS: i64 = 86_400_000;

/// Rolls up every second; a rate limit the bulk tests stay under.
async fn start(backend: &str) -> Server {
    common::start(
        backend,
        &[
            ("ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS", "1"),
            ("ECHOPILOT_RATE_LIMIT_PER_SEC", "1000"),
            ("ECHOPILOT_RATE_LIMIT_BURST", "1000"),
        ],
    )
    .await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Usage once every event is rolled up.
async fn settled_usage(c: &Client, query: &str) -> Value {
    eventually(Duration::from_secs(60), "rollups complete", || async {
        let r = c.get(&format!("/api/v1/analytics/usage?{query}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.body["rollup"]["complete"] == true).then_some(r.body)
    })
    .await
}

fn statuses(r: &Value) -> Vec<u64> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_is_per_event_and_idempotent_by_uuid() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let (int, _) = key_and_secret(&root, "integration", "acme").await;
        let (ro, _) = key_and_secret(&root, "readonly", "acme").await;
        let ts = now_ms() - 60_000;
        let batch = json!({"events": [
            {"uuid": "e-1", "event": "pageview", "distinct_id": "u1", "ts": ts},
            {"uuid": "e-2", "event": "click", "distinct_id": "u1", "ts": ts, "properties": {"feature": "search"}},
            {"uuid": "e-3", "event": "click", "distinct_id": "u2", "ts": ts, "properties": {"feature": "search"}},
        ]});
        let r = int.post("/api/v1/analytics/events", batch.clone()).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["created"], 3, "{}", r.text);
        assert_eq!(statuses(&r.body), vec![201, 201, 201]);
        // The same batch again stores nothing.
        let r = int.post("/api/v1/analytics/events", batch).await;
        assert_eq!(r.body["duplicates"], 3, "{}", r.text);
        assert_eq!(statuses(&r.body), vec![200, 200, 200]);
        // A mixed batch: the bad events are named, the good ones stored.
        let r = int
            .post(
                "/api/v1/analytics/events",
                json!({"events": [
                    {"uuid": "e-4", "event": "pageview", "distinct_id": "u3", "ts": ts},
                    {"uuid": "bad-1", "event": "pageview"},
                    {"uuid": "e-5", "event": "signup", "distinct_id": "u3", "ts": ts, "properties": {"plan": "pro"}},
                    {"uuid": "bad-2", "event": "x", "distinct_id": "u3", "colour": "red"},
                    {"uuid": "e-4", "event": "pageview", "distinct_id": "u3", "ts": ts},
                    "not an object",
                ]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(statuses(&r.body), vec![201, 422, 201, 422, 200, 422]);
        let res = r.body["results"].as_array().unwrap();
        assert_eq!(res[1]["uuid"], "bad-1");
        assert!(
            res[1]["detail"].as_str().unwrap().contains("distinct_id"),
            "{}",
            r.text
        );
        assert!(res[3]["detail"].as_str().unwrap().contains("colour"));
        assert_eq!(
            (
                &r.body["created"],
                &r.body["duplicates"],
                &r.body["rejected"]
            ),
            (&json!(2), &json!(1), &json!(3))
        );

        // Whole-request errors are problems, nothing stored.
        let many: Vec<Value> = (0..1001)
            .map(|i| json!({"event": "x", "distinct_id": format!("u{i}")}))
            .collect();
        int.post("/api/v1/analytics/events", json!({"events": many}))
            .await
            .assert_problem(422);
        int.post("/api/v1/analytics/events", json!({"events": []}))
            .await
            .assert_problem(422);
        int.post(
            "/api/v1/analytics/events",
            json!({"events": [], "extra": 1}),
        )
        .await
        .assert_problem(400);
        int.send(
            int.req(reqwest::Method::POST, "/api/v1/analytics/events")
                .header("content-type", "application/xml")
                .body("<events/>"),
        )
        .await
        .assert_problem(415);
        int.send(
            int.req(reqwest::Method::POST, "/api/v1/analytics/events")
                .header("content-type", "application/json")
                .body("{\"events\": ["),
        )
        .await
        .assert_problem(400);
        // sendBeacon's text/plain is accepted.
        let r = int
            .send(
                int.req(reqwest::Method::POST, "/api/v1/analytics/events")
                    .header("content-type", "text/plain;charset=UTF-8")
                    .body(
                        json!({"events": [{"uuid": "e-6", "event": "pageview", "distinct_id": "u4", "ts": ts}]})
                            .to_string(),
                    ),
            )
            .await;
        assert_eq!(r.body["created"], 1, "{}", r.text);

        // Readers see exactly the 6 stored events once rolled up.
        let u = settled_usage(&ro, "").await;
        let today = u["series"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(today["date"], date_of(now_ms() / DAY_MS));
        let day_of_events = u["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["date"] == date_of(ts / DAY_MS))
            .unwrap();
        assert_eq!(day_of_events["events"], 6, "{u}");
        assert_eq!(day_of_events["dau"], 4, "{u}");
        let click = u["top_events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "click")
            .unwrap();
        assert_eq!((&click["events"], &click["users"]), (&json!(2), &json!(2)));
        assert_eq!(u["top_features"][0]["name"], "search");
        // The legacy alias answers too.
        let legacy = ro.get("/api/analytics/usage").await;
        assert_eq!(legacy.status, 200, "{}", legacy.text);
        assert_eq!(legacy.headers["deprecation"], "true");
        // Bad queries are 4xx.
        ro.get("/api/v1/analytics/usage?from=yesterday")
            .await
            .assert_problem(422);
        ro.get("/api/v1/analytics/usage?interval=hour")
            .await
            .assert_problem(400);
        ro.get("/api/v1/analytics/usage?from=2020-01-01&to=2026-01-01")
            .await
            .assert_problem(422);
        ro.get("/api/v1/analytics/usage?limit=0")
            .await
            .assert_problem(422);

        // Status summary counters.
        let s = ro.get("/api/v1/status/summary").await;
        assert_eq!(s.status, 200, "{}", s.text);
        let a = &s.body["analytics"];
        assert_eq!(a["events_rolled_up"], 6, "{a}");
        assert!(
            a["process"]["events_rejected"].as_u64().unwrap() >= 3,
            "{a}"
        );
        let m = reqwest::get(format!("{}/metrics", srv.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            m.contains("echopilot_analytics_events_total{result=\"created\"} 6"),
            "{m}"
        );
        drop(srv);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishable_key_can_only_add_events_for_its_tenant() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let (admin_a, _) = key_and_secret(&root, "admin", "shop-a").await;
        let (ro_a, _) = key_and_secret(&root, "readonly", "shop-a").await;
        let (ro_b, _) = key_and_secret(&root, "readonly", "shop-b").await;
        // An admin mints it through the ordinary keys API.
        let (pub_a, pub_key) = key_and_secret(&admin_a, "ingest", "shop-a").await;
        let ev = |uuid: &str| json!({"events": [{"uuid": uuid, "event": "pageview", "distinct_id": "visitor"}]});
        let r = pub_a.post("/api/v1/analytics/events", ev("p-1")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["tenant"], "shop-a");
        // In the query string (sendBeacon), without any header.
        let anon = root.anonymous();
        let r = anon
            .send(
                anon.req(
                    reqwest::Method::POST,
                    &format!("/api/v1/analytics/events?key={pub_key}"),
                )
                .header("content-type", "text/plain")
                .body(ev("p-2").to_string()),
            )
            .await;
        assert_eq!(r.body["created"], 1, "{}", r.text);
        // Only an ingest key may travel in a URL.
        let r = anon
            .send(
                anon.req(
                    reqwest::Method::POST,
                    &format!("/api/v1/analytics/events?key={}", srv.key),
                )
                .json(&ev("p-3")),
            )
            .await;
        r.assert_problem(401);
        // It cannot read anything, or call any other route.
        for (method, path) in [
            ("GET", "/api/v1/analytics/usage"),
            ("GET", "/api/v1/analytics/funnels"),
            ("POST", "/api/v1/analytics/funnels"),
            ("GET", "/api/v1/analytics/funnels/signup"),
            ("POST", "/api/v1/analytics/rollup"),
            ("GET", "/api/v1/status/summary"),
            ("GET", "/api/v1/keys"),
            ("POST", "/api/v1/keys"),
            ("GET", "/api/v1/tenants"),
            ("GET", "/api/v1/queue/jobs"),
            ("GET", "/api/v1/audit/chain"),
            ("GET", "/api/v1/ops/verbs"),
            ("GET", "/api/v1/marketplace/list"),
            ("POST", "/api/v1/jobs/analytics_rollup/run"),
        ] {
            let rb = pub_a.req(method.parse().unwrap(), path).json(&json!({}));
            let r = pub_a.send(rb).await;
            assert_eq!(r.status, 403, "{backend}: {method} {path}: {}", r.text);
        }
        // It cannot write another tenant.
        pub_a
            .with_tenant("shop-b")
            .post("/api/v1/analytics/events", ev("p-4"))
            .await
            .assert_problem(403);
        // What it wrote is shop-a's only.
        let u = settled_usage(&ro_a, "").await;
        let total: i64 = u["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["events"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 2, "{u}");
        let u = settled_usage(&ro_b, "").await;
        assert!(u["series"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["events"] == 0));
        // A revoked publishable key stops at once.
        let list = admin_a.get("/api/v1/keys").await;
        let id = list.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == "ingest")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            admin_a.delete(&format!("/api/v1/keys/{id}")).await.status,
            200
        );
        pub_a
            .post("/api/v1/analytics/events", ev("p-5"))
            .await
            .assert_problem(401);
        drop(srv);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_script_is_public_cacheable_and_cors_is_limited_to_ingestion() {
    let srv = start("sqlite").await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/js/telemetry.js", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let body = r.text().await.unwrap();
    assert!(body.contains("sendBeacon") && body.contains("localStorage"));
    let r = http
        .get(format!("{}/js/telemetry.js", srv.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    // A page on another origin may post events (preflight answered, any origin)…
    let r = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/analytics/events", srv.url),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-dash-key")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-dash-key"), "{allowed}");
    // …but no other route is opened to other origins.
    let r = http
        .get(format!("{}/api/v1/analytics/usage", srv.url))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// A small deterministic generator (tests must be reproducible from the seed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_a_brute_force_count_over_random_events() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let (int, _) = key_and_secret(&root, "integration", "prop").await;
        let (ro, _) = key_and_secret(&root, "readonly", "prop").await;
        let today = now_ms() / DAY_MS;
        let from = today - 40;
        let mut stored: HashMap<String, (String, String, i64, Option<String>)> = HashMap::new();
        for seed in [7u64, 1234] {
            let mut rng = Lcg(seed);
            let names = ["pageview", "click", "signup", "search", "export", "share"];
            let features = ["billing", "search", "reports", "alerts"];
            let mut sent: Vec<(String, String, String, i64, Option<String>)> = Vec::new();
            let n = 700;
            for i in 0..n {
                // Some repeats of earlier uuids: they must count once.
                let uuid = if i > 10 && rng.below(10) == 0 {
                    sent[rng.below(sent.len() as u64) as usize].0.clone()
                } else {
                    format!("s{seed}-{i}")
                };
                let day = from + rng.below(41) as i64;
                let ts = (day * DAY_MS + rng.below(DAY_MS as u64) as i64).min(now_ms() - 1000);
                let user = format!("user{}", rng.below(25));
                let event = names[rng.below(names.len() as u64) as usize].to_string();
                let feature =
                    (rng.below(3) == 0).then(|| features[rng.below(4) as usize].to_string());
                sent.push((uuid, event, user, ts, feature));
            }
            for chunk in sent.chunks(250) {
                let events: Vec<Value> = chunk
                    .iter()
                    .map(|(uuid, event, user, ts, feature)| {
                        let mut e =
                            json!({"uuid": uuid, "event": event, "distinct_id": user, "ts": ts});
                        if let Some(f) = feature {
                            e["properties"] = json!({"feature": f});
                        }
                        e
                    })
                    .collect();
                let r = int
                    .post("/api/v1/analytics/events", json!({"events": events}))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                assert_eq!(r.body["rejected"], 0, "{}", r.text);
            }
            // Brute force over what the server stored: the first write of each uuid wins,
            // across both seeds (the tenant keeps every seed's events).
            for (uuid, event, user, ts, feature) in &sent {
                stored.entry(uuid.clone()).or_insert((
                    event.clone(),
                    user.clone(),
                    *ts,
                    feature.clone(),
                ));
            }
            let u = settled_usage(
                &ro,
                &format!("from={}&to={}&limit=100", date_of(from), date_of(today)),
            )
            .await;
            check_against(&u, &stored, from, today, seed, backend);
        }
        drop(srv);
    }
}

fn check_against(
    u: &Value,
    stored: &HashMap<String, (String, String, i64, Option<String>)>,
    from: i64,
    today: i64,
    seed: u64,
    backend: &str,
) {
    let events: Vec<&(String, String, i64, Option<String>)> = stored.values().collect();
    let users_between = |a: i64, b: i64| -> usize {
        events
            .iter()
            .filter(|e| (a..=b).contains(&(e.2 / DAY_MS)))
            .map(|e| e.1.as_str())
            .collect::<HashSet<_>>()
            .len()
    };
    for p in u["series"].as_array().unwrap() {
        let day = (from..=today)
            .find(|d| date_of(*d) == p["date"].as_str().unwrap())
            .unwrap();
        let count = events.iter().filter(|e| e.2 / DAY_MS == day).count();
        assert_eq!(
            p["events"], count,
            "seed {seed} {backend}: events on {}",
            p["date"]
        );
        assert_eq!(
            p["dau"],
            users_between(day, day),
            "seed {seed}: dau {}",
            p["date"]
        );
        assert_eq!(
            p["wau"],
            users_between(day - 6, day),
            "seed {seed}: wau {}",
            p["date"]
        );
        assert_eq!(
            p["mau"],
            users_between(day - 27, day),
            "seed {seed}: mau {}",
            p["date"]
        );
    }
    let in_range: Vec<_> = events
        .iter()
        .filter(|e| (from..=today).contains(&(e.2 / DAY_MS)))
        .collect();
    for (list, key) in [("top_events", 0usize), ("top_features", 1)] {
        let mut expect: BTreeMap<String, (i64, HashSet<&str>)> = BTreeMap::new();
        for e in &in_range {
            let name = if key == 0 { Some(&e.0) } else { e.3.as_ref() };
            if let Some(n) = name {
                let x = expect.entry(n.clone()).or_default();
                x.0 += 1;
                x.1.insert(e.1.as_str());
            }
        }
        let got = u[list].as_array().unwrap();
        assert_eq!(got.len(), expect.len(), "{list}: {u}");
        for t in got {
            let (n, users) = &expect[t["name"].as_str().unwrap()];
            assert_eq!(t["events"], *n, "seed {seed}: {list} {t}");
            assert_eq!(t["users"], users.len(), "seed {seed}: {list} {t}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_funnel_gives_known_answers_and_the_daily_job_recomputes() {
    for backend in common::backends() {
        let srv = start(backend).await;
        let root = srv.client();
        let (op, _) = key_and_secret(&root, "operator", "funnels").await;
        let (ro, _) = key_and_secret(&root, "readonly", "funnels").await;
        // Entries two days ago at noon, so every step falls on known days.
        let t0 = (now_ms() / DAY_MS - 2) * DAY_MS + 12 * 3_600_000;
        let ev = |u: &str, e: &str, dt_s: i64| json!({"uuid": format!("{u}-{e}-{dt_s}"), "event": e, "distinct_id": u, "ts": t0 + dt_s * 1000});
        let events = vec![
            // u1 completes: 60 s to sign up, 120 s more to activate.
            ev("u1", "visit", 0),
            ev("u1", "signup", 60),
            ev("u1", "activate", 180),
            // u2 signs up after 120 s, never activates.
            ev("u2", "visit", 0),
            ev("u2", "signup", 120),
            // u3 only visits.
            ev("u3", "visit", 10),
            // u4 signs up before visiting: the order does not match.
            ev("u4", "signup", 0),
            ev("u4", "visit", 30),
            // u5 signs up after the one-hour window.
            ev("u5", "visit", 0),
            ev("u5", "signup", 7200),
            // u6 visits again the next day and completes then: counts once, from the first entry.
            ev("u6", "visit", 0),
            ev("u6", "visit", 86_400),
            ev("u6", "signup", 86_460),
        ];
        let r = op
            .post("/api/v1/analytics/events", json!({"events": events}))
            .await;
        assert_eq!(r.body["created"], 13, "{}", r.text);
        // Define the funnel after the events: the past is backfilled.
        let bad = op
            .post(
                "/api/v1/analytics/funnels",
                json!({"name": "signup", "steps": ["visit"], "window_secs": 3600}),
            )
            .await;
        bad.assert_problem(422);
        ro.post(
            "/api/v1/analytics/funnels",
            json!({"name": "signup", "steps": ["visit", "signup"], "window_secs": 3600}),
        )
        .await
        .assert_problem(403);
        // Wait until the events themselves are rolled up, so the backfill covers their days.
        settled_usage(&ro, "").await;
        let r = op
            .post(
                "/api/v1/analytics/funnels",
                json!({"name": "signup", "steps": ["visit", "signup", "activate"], "window_secs": 3600}),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.body["backfill_days"].as_u64().unwrap() >= 2, "{}", r.text);
        let answer = eventually(Duration::from_secs(60), "funnel backfilled", || async {
            let r = ro.get("/api/v1/analytics/funnels/signup").await;
            assert_eq!(r.status, 200, "{}", r.text);
            (r.body["rollup"]["complete"] == true).then_some(r.body)
        })
        .await;
        let f = &answer["funnel"];
        assert_eq!(f["entered"], 6, "{backend}: {answer}");
        let steps = f["steps"].as_array().unwrap();
        let users: Vec<i64> = steps.iter().map(|s| s["users"].as_i64().unwrap()).collect();
        // Signed up: u1 and u2. u6's first entry (t0) does not convert within the hour;
        // its next-day entry does not count here (a user counts from the earliest entry).
        assert_eq!(users, vec![6, 2, 1], "{answer}");
        assert_eq!(steps[1]["drop_off"], 4);
        assert_eq!(steps[2]["drop_off"], 1);
        assert_eq!(steps[1]["median_secs_from_previous"], 90.0, "{answer}");
        assert_eq!(steps[2]["median_secs_from_previous"], 120.0);
        assert!((f["conversion"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-9);
        // Only the next day: u6 enters and converts to signup there.
        let next = date_of(t0 / DAY_MS + 1);
        let r = ro
            .get(&format!(
                "/api/v1/analytics/funnels/signup?from={next}&to={next}"
            ))
            .await;
        let users: Vec<i64> = r.body["funnel"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["users"].as_i64().unwrap())
            .collect();
        assert_eq!(users, vec![1, 1, 0], "{}", r.text);
        ro.get("/api/v1/analytics/funnels/nope")
            .await
            .assert_problem(404);
        // Usage lists the funnel too.
        let u = settled_usage(&ro, "").await;
        assert_eq!(u["funnels"][0]["name"], "signup");
        assert_eq!(u["funnels"][0]["entered"], 6);

        // The daily job recomputes idempotently: same answers, a summary line, a result.
        let r = root
            .post("/api/v1/jobs/analytics_rollup/run", json!({}))
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        let run_id = r.body["run_id"].as_str().unwrap().to_string();
        let run = eventually(Duration::from_secs(60), "rollup job finishes", || async {
            let r = root
                .get("/api/v1/jobs/runs?job=analytics_rollup&limit=10")
                .await;
            r.body["runs"]
                .as_array()?
                .iter()
                .find(|x| x["id"] == run_id.as_str() && x["outcome"] != "running")
                .cloned()
        })
        .await;
        assert_eq!(run["outcome"], "succeeded", "{run}");
        assert!(run["result"]["days"].as_u64().unwrap() >= 3, "{run}");
        // Its error ledger: every day recomputed and the prune are artifacts, all processed.
        let l = eventually(Duration::from_secs(30), "the run's ledger", || async {
            let l = root
                .get(&format!("/api/v1/jobs/runs/{run_id}/ledger"))
                .await;
            (l.status == 200).then_some(l)
        })
        .await;
        assert!(
            l.body["artifacts_total"].as_u64().unwrap() >= 4,
            "{}",
            l.text
        );
        assert_eq!(
            l.body["artifacts_total"], l.body["artifacts_processed"],
            "{}",
            l.text
        );
        assert_eq!(l.body["errors_count"], 0, "{}", l.text);
        let again = ro.get("/api/v1/analytics/funnels/signup").await;
        assert_eq!(again.body["funnel"], answer["funnel"]);
        let logs = eventually(Duration::from_secs(10), "rollup summary logged", || async {
            let l = srv.read_logs();
            l.contains("analytics rollup done").then_some(l)
        })
        .await;
        assert!(logs.contains("\"days\""), "summary carries figures");
        // An operator can ask for any day to be recomputed.
        let r = op
            .post(
                "/api/v1/analytics/rollup",
                json!({"from": date_of(t0 / DAY_MS), "to": date_of(t0 / DAY_MS + 1)}),
            )
            .await;
        assert_eq!(r.body["marked_days"], 2, "{}", r.text);
        let after = eventually(Duration::from_secs(60), "recomputed", || async {
            let r = ro.get("/api/v1/analytics/funnels/signup").await;
            (r.body["rollup"]["complete"] == true).then_some(r.body)
        })
        .await;
        assert_eq!(after["funnel"], answer["funnel"]);
        drop(srv);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_off_for_the_fleet_is_a_module_404() {
    let srv = Server::start_with(Opts {
        env: vec![("ECHOPILOT_MODULES__ANALYTICS".into(), "false".into())],
        ..Default::default()
    });
    let c = srv.client();
    let r = c
        .post(
            "/api/v1/analytics/events",
            json!({"events": [{"event": "x", "distinct_id": "u"}]}),
        )
        .await;
    r.assert_problem(404);
    assert_eq!(r.body["module"], "analytics");
    assert_eq!(r.body["scope"], "fleet");
    let r = reqwest::get(format!("{}/js/telemetry.js", srv.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
