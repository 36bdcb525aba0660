//! Drives the real event flow (Harness: effects on tokio tasks, answers over the channel)
//! against a small local HTTP server that speaks the documented API.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fixture;
use echopilot_ui::resources::VERBS;
use echopilot_ui::tabs::telemetry::SUMMARY;
use echopilot_ui::{ConsoleOptions, Harness, KeyCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    key: Option<String>,
    tenant: Option<String>,
    body: Value,
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn route(method: &str, path: &str, body: &Value) -> (u16, Value) {
    match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/api/v1/ops/verbs") => (200, fixture("verbs.json")),
        ("GET", "/api/v1/ops/telemetry") => (200, fixture("telemetry.json")),
        ("GET", "/api/v1/audit/chain") => (200, fixture("audit.json")),
        ("POST", "/api/v1/ops/command") => {
            if body["confirm"] == json!(false) {
                (200, fixture("dryrun_high.json"))
            } else if body["plan_id"] != fixture("dryrun_high.json")["plan_id"] {
                (
                    409,
                    json!({"title": "Conflict", "status": 409, "detail": "unknown plan"}),
                )
            } else if body["reason"].as_str().unwrap_or("").is_empty() {
                (
                    422,
                    json!({"title": "Unprocessable Entity", "status": 422, "detail": "reason required"}),
                )
            } else {
                (
                    200,
                    json!({"executed": true, "audit_seq": 77, "result": {"restarted": true}}),
                )
            }
        }
        _ => (
            404,
            json!({"type": "about:blank", "title": "Not Found", "status": 404}),
        ),
    }
}

async fn serve(seen: Arc<Mutex<Vec<Seen>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, mut body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (
                            String::from_utf8_lossy(&buf[..p]).to_string(),
                            buf[p + 4..].to_vec(),
                        );
                    }
                };
                let len: usize = header(&head, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while body.len() < len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let method = first.next().unwrap_or("").to_string();
                let path = first.next().unwrap_or("").to_string();
                let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    key: header(&head, "x-dash-key"),
                    tenant: header(&head, "x-tenant-id"),
                    body: json_body.clone(),
                });
                let (status, resp) = route(&method, &path, &json_body);
                let ctype = if status >= 400 {
                    "application/problem+json"
                } else {
                    "application/json"
                };
                let text = resp.to_string();
                let out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn opts(base_url: String) -> ConsoleOptions {
    ConsoleOptions {
        base_url,
        key: "test-key-0123456789abcdef0123456789abcdef".into(),
        tenant: Some("acme".into()),
        theme: "default".into(),
        themes_dir: None,
        readonly: false,
        demo: false,
    }
}

#[tokio::test]
async fn palette_dry_run_confirm_against_server() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = serve(seen.clone()).await;
    let mut h = Harness::new(&opts(url)).unwrap();
    let t = Duration::from_secs(10);
    h.tick();
    h.settle(t).await.unwrap();
    assert!(h.app.data(VERBS).is_some(), "verbs loaded");
    // Telemetry tab probes nothing optional; the missing summary/history routes answered 404.
    assert_eq!(
        h.app.cache.meta(SUMMARY.res).error.and_then(|e| e.status()),
        Some(404)
    );

    h.key(KeyCode::Char(':'));
    h.type_str("restrt sched");
    h.key(KeyCode::Enter);
    h.settle(t).await.unwrap();
    assert_eq!(h.app.mode(), echopilot_ui::commands::Mode::ConfirmHigh);
    h.type_str("restart_scheduler");
    h.key(KeyCode::Tab);
    h.type_str("e2e drill");
    h.key(KeyCode::Enter);
    h.settle(t).await.unwrap();
    // A short answer is a flash line, not a modal.
    assert!(h.app.popup.is_none());
    let screen = h.render(100, 30);
    assert!(
        screen.contains("restart_scheduler done · restarted true · audit #77"),
        "{screen}"
    );

    let seen = seen.lock().unwrap().clone();
    assert!(seen
        .iter()
        .all(|s| s.key.as_deref() == Some("test-key-0123456789abcdef0123456789abcdef")));
    assert!(seen.iter().all(|s| s.tenant.as_deref() == Some("acme")));
    let cmds: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path == "/api/v1/ops/command")
        .collect();
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0].body["confirm"], json!(false));
    assert_eq!(
        cmds[1].body["plan_id"],
        fixture("dryrun_high.json")["plan_id"]
    );
    assert_eq!(cmds[1].body["reason"], json!("e2e drill"));
    assert!(seen
        .iter()
        .all(|s| s.method == "GET" || s.path == "/api/v1/ops/command"));
}

#[tokio::test]
async fn unreachable_backend_keeps_running() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut h = Harness::new(&opts(format!("http://127.0.0.1:{port}"))).unwrap();
    h.tick();
    h.settle(Duration::from_secs(10)).await.unwrap();
    assert!(h.app.unreachable_since.is_some());
    let screen = h.render(80, 24);
    assert!(screen.contains("[OFFLINE] backend unreachable"), "{screen}");
    assert!(screen.contains("[NO DATA] backend unreachable"), "{screen}");
    // Keys still work while offline.
    h.key(KeyCode::Char('3'));
    h.key(KeyCode::Char('?'));
    assert!(h.app.popup.is_some());
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('q'));
    assert!(h.app.should_quit);
}

#[tokio::test]
async fn drive_for_test_runs_keys_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = serve(seen.clone()).await;
    let keys: Vec<_> = [KeyCode::Char('4')]
        .into_iter()
        .map(|c| echopilot_ui::KeyEvent::new(c, echopilot_ui::KeyModifiers::NONE))
        .collect();
    let h = echopilot_ui::drive_for_test(&opts(url), &keys, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(h
        .render(100, 30)
        .contains("GET /api/v1/costs/summary answered 404"));
}
