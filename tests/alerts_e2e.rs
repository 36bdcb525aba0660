//! Alerts end-to-end against local fake channels (wiremock): delivery through the queue
//! (transactional outbox, kind `alerts.deliver`) and cooldown suppression, tokens never in
//! logs, a retry after a 500, failed delivery recorded, Slack and the HMAC-signed generic
//! webhook.

mod common;

use std::time::Duration;

use common::{eventually, Opts, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "123456789:AAHsecretTOKENvalue_for-tests";
const TOKEN_SECRET_PART: &str = "AAHsecretTOKENvalue_for-tests";

async fn start(backend: &str, env: Vec<(&str, String)>) -> Server {
    let database_url = common::fresh_database(backend).await;
    let mut env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    // Only the runs this test asks for: no scheduled evaluation racing it.
    env.push((
        "ECHOPILOT_JOBS__ALERT_RULES__ENABLED".into(),
        "false".into(),
    ));
    // Delivery retries within the test's patience.
    for (k, v) in [
        ("ECHOPILOT_QUEUE__BACKOFF_BASE_MS", "100"),
        ("ECHOPILOT_QUEUE__BACKOFF_CAP_MS", "200"),
        ("ECHOPILOT_QUEUE__POLL_INTERVAL_MS", "100"),
    ] {
        env.push((k.into(), v.into()));
    }
    Server::start_with(Opts {
        database_url,
        env,
        ..Default::default()
    })
}

/// Run `alert_rules` now and return the finished run.
async fn run_rules(c: &common::Client) -> Value {
    let r = c.post("/api/v1/jobs/alert_rules/run", json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["run_id"].as_str().unwrap().to_string();
    eventually(
        Duration::from_secs(30),
        "alert_rules run finishes",
        || async {
            let r = c.get("/api/v1/jobs/runs?job=alert_rules").await;
            r.body["runs"]
                .as_array()?
                .iter()
                .find(|x| x["id"] == id.as_str() && x["outcome"] != "running")
                .cloned()
        },
    )
    .await
}

/// Wait until alert `id`'s delivery job is finished (succeeded or dead); returns the alert.
async fn delivered(c: &common::Client, id: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("alert {id} delivery finishes"),
        || async {
            // The job first: its state is written after the handler updated the alert row,
            // so once it is final the row read next is final too.
            let jobs = c
                .with_tenant("_system")
                .get("/api/v1/queue/jobs?kind=alerts.deliver&limit=100")
                .await;
            let job = jobs.body["jobs"]
                .as_array()?
                .iter()
                .find(|j| j["payload"]["alert_id"] == id)?
                .clone();
            if job["state"] != "succeeded" && job["state"] != "dead" {
                return None;
            }
            let list = c.get("/api/v1/alerts?limit=50").await;
            let a = list.body["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["id"] == id)?
                .clone();
            Some(json!({"alert": a, "job": job}))
        },
    )
    .await
}

fn rule<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["result"]["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("rules in {run}"))
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("rule {name} in {run}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_alert_is_delivered_once_then_suppressed_and_the_token_never_logged() {
    for backend in common::backends() {
        let tg = MockServer::builder().start().await;
        Mock::given(method("POST"))
            .and(path(format!("/bot{TOKEN}/sendMessage")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"ok": true, "result": {"message_id": 1}})),
            )
            .expect(1)
            .mount(&tg)
            .await;
        let srv = start(
            backend,
            vec![
                ("TELEGRAM_BOT_TOKEN", TOKEN.into()),
                ("TELEGRAM_CHAT_ID", "-100424242".into()),
                ("ECHOPILOT_ALERTS__TELEGRAM_BASE_URL", tg.uri()),
                ("ECHOPILOT_ALERTS__DISK_THRESHOLD_PCT", "0".into()),
            ],
        )
        .await;
        let c = srv.client();

        let run = run_rules(&c).await;
        assert_eq!(run["outcome"], "succeeded", "{backend}: {run}");
        let disk = rule(&run, "disk_usage");
        assert_eq!(disk["status"], "firing", "{disk}");
        assert_eq!(disk["suppressed"], false, "{disk}");
        assert!(disk["delivery_job_id"].is_string(), "{disk}");
        let d = delivered(&c, disk["alert_id"].as_str().unwrap()).await;
        assert_eq!(d["job"]["state"], "succeeded", "{backend}: {d}");
        assert_eq!(d["job"]["attempts"], 1, "{d}");
        assert_eq!(d["alert"]["delivered"], true, "{d}");
        assert_eq!(d["alert"]["sent"], json!(["telegram"]), "{d}");
        // The self-heal rule reads the real requeue count (none on a fresh database).
        let sh = rule(&run, "selfheal_requeues");
        assert_eq!(sh["status"], "ok", "{sh}");
        assert_eq!(sh["observed"]["requeued_24h"], 0, "{sh}");

        let reqs = tg.received_requests().await.unwrap();
        assert_eq!(reqs.len(), 1, "{backend}");
        assert_eq!(reqs[0].url.path(), format!("/bot{TOKEN}/sendMessage"));
        let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
        assert_eq!(body["chat_id"], "-100424242", "{body}");
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("Disk usage high"), "{text}");

        // Within the cooldown: stored as suppressed, not sent.
        let run = run_rules(&c).await;
        let disk = rule(&run, "disk_usage");
        assert_eq!(disk["status"], "firing");
        assert_eq!(disk["suppressed"], true, "{backend}: {disk}");
        assert!(
            disk["delivery_job_id"].is_null(),
            "nothing enqueued: {disk}"
        );
        assert_eq!(
            tg.received_requests().await.unwrap().len(),
            1,
            "{backend}: not sent again"
        );

        let list = c.get("/api/v1/alerts?limit=10").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let alerts = list.body["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 2, "{}", list.text);
        assert_eq!(alerts[0]["key"], "disk_usage");
        assert_eq!(alerts[0]["suppressed"], true);
        assert_eq!(alerts[0]["delivered"], false);
        assert_eq!(alerts[0]["channels"], json!([]));
        assert_eq!(alerts[1]["suppressed"], false);
        assert_eq!(alerts[1]["delivered"], true);
        assert_eq!(alerts[1]["channels"], json!(["telegram"]));
        assert!(alerts[1]["error"].is_null());
        for f in ["id", "ts", "severity", "title", "message"] {
            assert!(alerts[1][f].is_string(), "{f}");
        }
        let s = c.get("/api/v1/status/summary").await;
        assert_eq!(s.body["alerts"]["last_24h"], 2, "{}", s.text);
        assert_eq!(s.body["alerts"]["suppressed_24h"], 1, "{}", s.text);

        let logs =
            eventually(Duration::from_secs(10), "alerts log", || {
                let l = srv.read_logs();
                async move {
                    (l.contains("alert delivered") && l.contains("alert suppressed")).then_some(l)
                }
            })
            .await;
        assert!(
            !logs.contains(TOKEN_SECRET_PART),
            "{backend}: bot token leaked into logs"
        );
        assert!(!list.text.contains(TOKEN_SECRET_PART));
        tg.verify().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_is_retried_after_a_500_by_the_queue() {
    for backend in common::backends() {
        let tg = MockServer::builder().start().await;
        // The first attempt meets a 500; the queue's retry gets through.
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&tg)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .with_priority(2)
            .mount(&tg)
            .await;
        let srv = start(
            backend,
            vec![
                ("ECHOPILOT_ALERTS__TELEGRAM_BOT_TOKEN", TOKEN.into()),
                ("ECHOPILOT_ALERTS__TELEGRAM_CHAT_ID", "42".into()),
                ("ECHOPILOT_ALERTS__TELEGRAM_BASE_URL", tg.uri()),
                ("ECHOPILOT_ALERTS__DISK_THRESHOLD_PCT", "0".into()),
            ],
        )
        .await;
        let c = srv.client();
        let run = run_rules(&c).await;
        let disk = rule(&run, "disk_usage");
        let d = delivered(&c, disk["alert_id"].as_str().unwrap()).await;
        assert_eq!(d["job"]["state"], "succeeded", "{backend}: {d}");
        assert_eq!(d["job"]["attempts"], 2, "{backend}: {d}");
        assert_eq!(d["alert"]["delivered"], true, "{d}");
        assert_eq!(d["alert"]["attempts"], 2, "{d}");
        assert!(d["alert"]["error"].is_null(), "{d}");
        assert_eq!(tg.received_requests().await.unwrap().len(), 2);
        assert!(
            !srv.read_logs().contains(TOKEN_SECRET_PART),
            "{backend}: token in logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_delivery_is_recorded_redacted_and_retried_next_time() {
    for backend in common::backends() {
        let tg = MockServer::builder().start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
            .mount(&tg)
            .await;
        let srv = start(
            backend,
            vec![
                ("ECHOPILOT_ALERTS__TELEGRAM_BOT_TOKEN", TOKEN.into()),
                ("ECHOPILOT_ALERTS__TELEGRAM_CHAT_ID", "42".into()),
                ("ECHOPILOT_ALERTS__TELEGRAM_BASE_URL", tg.uri()),
                ("ECHOPILOT_ALERTS__DISK_THRESHOLD_PCT", "0".into()),
                ("ECHOPILOT_ALERTS__DELIVERY_ATTEMPTS", "2".into()),
            ],
        )
        .await;
        let c = srv.client();
        let run = run_rules(&c).await;
        let disk = rule(&run, "disk_usage");
        let d = delivered(&c, disk["alert_id"].as_str().unwrap()).await;
        assert_eq!(d["job"]["state"], "dead", "{backend}: {d}");
        assert_eq!(d["alert"]["delivered"], false, "{d}");
        assert_eq!(d["alert"]["attempts"], 2, "{d}");
        let err = d["alert"]["error"].as_str().unwrap();
        assert!(err.contains("telegram") && err.contains("500"), "{err}");
        assert_eq!(tg.received_requests().await.unwrap().len(), 2);
        // Nothing got out, so the key is not in cooldown: the next evaluation tries again.
        let run = run_rules(&c).await;
        let again = rule(&run, "disk_usage");
        assert_eq!(again["suppressed"], false, "{backend}: {run}");
        delivered(&c, again["alert_id"].as_str().unwrap()).await;
        assert_eq!(tg.received_requests().await.unwrap().len(), 4);
        let list = c.get("/api/v1/alerts").await;
        assert!(
            !list.text.contains(TOKEN_SECRET_PART),
            "token in API: {}",
            list.text
        );
        // Unreachable endpoint: the transport error names no URL (it holds the token).
        // Exclusive (non-pooled) mock servers: dropping one really closes its port, so no
        // other test's mock can answer for it.
        drop(tg);
        let run = run_rules(&c).await;
        let d = delivered(&c, rule(&run, "disk_usage")["alert_id"].as_str().unwrap()).await;
        assert_eq!(d["alert"]["delivered"], false, "{d}");
        let logs = srv.read_logs();
        assert!(
            !logs.contains(TOKEN_SECRET_PART),
            "{backend}: token leaked into logs"
        );
        let list = c.get("/api/v1/alerts").await;
        assert!(
            !list.text.contains(TOKEN_SECRET_PART),
            "token in API: {}",
            list.text
        );
    }
}

/// HMAC-SHA256 (RFC 2104) with sha2 only, to check the server's signature independently.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), msg].concat());
    hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_and_signed_webhook_receive_a_test_alert() {
    for backend in common::backends() {
        let mock = MockServer::builder().start().await;
        Mock::given(method("POST"))
            .and(path("/services/T0/B0/slacksecret"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&mock)
            .await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&mock)
            .await;
        let srv = start(
            backend,
            vec![
                (
                    "ECHOPILOT_ALERTS__SLACK_WEBHOOK_URL",
                    format!("{}/services/T0/B0/slacksecret", mock.uri()),
                ),
                (
                    "ECHOPILOT_ALERTS__WEBHOOK_URL",
                    format!("{}/hook", mock.uri()),
                ),
                ("ECHOPILOT_ALERTS__WEBHOOK_SECRET", "s3cret".into()),
            ],
        )
        .await;
        let c = srv.client();
        let r = c
            .post("/api/v1/alerts/test", json!({"message": "drill"}))
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["channels"], json!(["slack", "webhook"]));
        let d = delivered(&c, r.body["id"].as_str().unwrap()).await;
        assert_eq!(d["alert"]["delivered"], true, "{d}");
        assert_eq!(d["alert"]["sent"], json!(["slack", "webhook"]), "{d}");
        let reqs = mock.received_requests().await.unwrap();
        let slack = reqs
            .iter()
            .find(|r| r.url.path().starts_with("/services"))
            .unwrap();
        let v: Value = serde_json::from_slice(&slack.body).unwrap();
        assert!(v["text"].as_str().unwrap().contains("drill"));
        let hook = reqs.iter().find(|r| r.url.path() == "/hook").unwrap();
        let sig = hook
            .headers
            .get("x-echopilot-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            sig,
            format!("sha256={}", hmac_sha256(b"s3cret", &hook.body))
        );
        let v: Value = serde_json::from_slice(&hook.body).unwrap();
        assert_eq!(v["key"], "test");
        assert_eq!(v["message"], "drill");
        let a = c.get("/api/v1/audit/records?action=alerts.test").await;
        assert_eq!(a.body["records"].as_array().unwrap().len(), 1, "{}", a.text);
        c.post("/api/v1/alerts/test", json!({"bogus": 1}))
            .await
            .assert_problem(400);
        c.get("/api/v1/alerts?limit=9999").await.assert_problem(422);
        assert!(
            !srv.read_logs().contains("slacksecret"),
            "webhook URL leaked into logs"
        );
        mock.verify().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_alert_config_is_a_config_error_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_echopilot"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("ECHOPILOT_CONFIG", "/dev/null")
        .env_remove("ECHOPILOT_DATABASE_URL")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_CHAT_ID")
        .env("ECHOPILOT_ALERTS__DISK_THRESHOLD_PCT", "150")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alerts.disk_threshold_pct"), "{err}");
}
