//! Connection-level defences (issue 9, item 3), against the real binary on both engines:
//! idle sockets beyond the cap or the fd limit, partial headers at shutdown, requests
//! accepted before SIGTERM, bounded metric labels, the 401 budget, the stderr redaction.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Opts, Server};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn start(backend: &str, pairs: &[(&str, &str)], tweak: impl FnOnce(&mut Opts)) -> Server {
    let mut opts = Opts {
        database_url: common::fresh_database(backend).await,
        env: env(pairs),
        ..Default::default()
    };
    tweak(&mut opts);
    Server::start_with(opts)
}

fn addr(srv: &Server) -> String {
    srv.url.trim_start_matches("http://").to_string()
}

/// Open `n` loopback connections that never send a byte.
fn idle_sockets(srv: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr(srv)).ok())
        .collect()
}

async fn healthz_within(srv: &Server, limit: Duration) -> u16 {
    let http = reqwest::Client::builder().timeout(limit).build().unwrap();
    http.get(format!("{}/healthz", srv.url))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("/healthz did not answer within {limit:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_fd_limit_do_not_lock_out_healthz() {
    for backend in common::backends() {
        // 200 idle sockets against a process allowed 128 descriptors: accept runs out of
        // descriptors, and the longest-idle connection makes room.
        let srv = start(backend, &[], |o| o.fd_limit = Some(128)).await;
        let held = idle_sockets(&srv, 200);
        assert!(held.len() >= 150, "{backend}: opened only {}", held.len());
        assert_eq!(
            healthz_within(&srv, Duration::from_secs(10)).await,
            200,
            "{backend}"
        );
        drop(held);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_are_evicted_for_a_real_request() {
    for backend in common::backends() {
        let srv = start(
            backend,
            &[("ECHOPILOT_SERVER__MAX_CONNECTIONS", "20")],
            |_| {},
        )
        .await;
        let held = idle_sockets(&srv, 60);
        assert_eq!(
            healthz_within(&srv, Duration::from_secs(10)).await,
            200,
            "{backend}"
        );
        let c = srv.client();
        let s = c.get("/api/v1/status/summary").await;
        assert_eq!(s.status, 200, "{backend}: {}", s.text);
        let st = &s.body["status"];
        assert!(
            st["connections_evicted"].as_u64().unwrap_or(0) >= 40,
            "{backend}: {st}"
        );
        assert!(
            st["connections_open"].as_u64().unwrap_or(99) <= 21,
            "{backend}: {st}"
        );
        drop(held);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_time_out() {
    for backend in common::backends() {
        let srv = start(
            backend,
            &[
                ("ECHOPILOT_SERVER__HEADER_READ_TIMEOUT_MS", "300"),
                ("ECHOPILOT_SERVER__IDLE_TIMEOUT_SECS", "1"),
            ],
            |_| {},
        )
        .await;
        let mut idle = TcpStream::connect(addr(&srv)).unwrap();
        let mut slow = TcpStream::connect(addr(&srv)).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        // The server closes both: a read sees EOF (or a reset), never blocks to our timeout.
        for (name, s) in [("slow header", &mut slow), ("idle", &mut idle)] {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => panic!("{backend}: {name}: unexpected bytes {:?}", &buf[..n]),
                Err(e) => assert!(
                    e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut,
                    "{backend}: {name} connection was not closed: {e}"
                ),
            }
        }
        let s = srv.client().get("/api/v1/status/summary").await;
        let st = &s.body["status"];
        assert!(
            st["connections_header_timeout"].as_u64().unwrap_or(0) >= 1,
            "{backend}: {st}"
        );
        assert!(
            st["connections_idle_timeout"].as_u64().unwrap_or(0) >= 1,
            "{backend}: {st}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_header_does_not_stop_sigterm() {
    for backend in common::backends() {
        let mut srv = start(
            backend,
            &[
                ("ECHOPILOT_SERVER__HEADER_READ_TIMEOUT_MS", "600000"),
                ("ECHOPILOT_SERVER__SHUTDOWN_GRACE_SECS", "2"),
            ],
            |_| {},
        )
        .await;
        let mut partial = TcpStream::connect(addr(&srv)).unwrap();
        partial
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        // Accepts are in order: once a later connection was accepted, so was this one.
        let c = srv.client();
        common::eventually(
            Duration::from_secs(10),
            "the partial connection accepted",
            || {
                let c = c.clone();
                async move {
                    let s = c.get("/api/v1/status/summary").await;
                    (s.body["status"]["connections_accepted"]
                        .as_u64()
                        .unwrap_or(0)
                        >= 2)
                        .then_some(())
                }
            },
        )
        .await;
        let t = Instant::now();
        let code = srv.terminate();
        let took = t.elapsed();
        assert_eq!(
            code,
            Some(0),
            "{backend}: exit code after SIGTERM (None = had to be killed)"
        );
        assert!(
            took < Duration::from_secs(15),
            "{backend}: exit took {took:?}"
        );
        drop(partial);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_sent_before_sigterm_are_answered() {
    for backend in common::backends() {
        let mut srv = start(
            backend,
            &[("ECHOPILOT_SERVER__SHUTDOWN_GRACE_SECS", "10")],
            |_| {},
        )
        .await;
        let a = addr(&srv);
        // Many complete requests on fresh connections, the last ones still in the listen
        // backlog when SIGTERM lands.
        let mut conns = Vec::new();
        for _ in 0..150 {
            let mut s = TcpStream::connect(&a).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            conns.push(s);
        }
        let pid = srv.pid();
        let killer = std::thread::spawn(move || {
            std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .unwrap();
        });
        killer.join().unwrap();
        let mut unanswered = 0;
        for mut s in conns {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                            break;
                        }
                    }
                }
            }
            if !got.starts_with(b"HTTP/1.1 200") {
                unanswered += 1;
            }
        }
        assert_eq!(
            unanswered, 0,
            "{backend}: requests sent before SIGTERM got no answer"
        );
        assert_eq!(srv.terminate(), Some(0), "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_metrics() {
    for backend in common::backends() {
        let srv = start(backend, &[], |_| {}).await;
        let http = reqwest::Client::new();
        let metrics = || async {
            http.get(format!("{}/metrics", srv.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        // Warm up the series a normal client creates.
        for m in ["XWARM", "YWARM"] {
            let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
            let _ = http
                .request(method.clone(), format!("{}/nowhere/warm", srv.url))
                .send()
                .await;
            let _ = http
                .request(method, format!("{}/healthz", srv.url))
                .send()
                .await;
            let _ = http
                .request(reqwest::Method::GET, format!("{}/nowhere/{m}", srv.url))
                .send()
                .await;
        }
        metrics().await;
        let before = metrics().await;
        for i in 0..300 {
            let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
            let path = if i % 2 == 0 {
                "/healthz".to_string()
            } else {
                format!("/nowhere/{i}")
            };
            let r = http
                .request(method, format!("{}{path}", srv.url))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{backend}: {}", r.status());
        }
        let after = metrics().await;
        assert!(
            !after.contains("MADEUP"),
            "{backend}: a made-up method became a label"
        );
        assert!(
            !after.contains("/nowhere/"),
            "{backend}: an unmatched path became a label"
        );
        // HTTP series are names with labels; values change, the set must not (background
        // jobs may add their own series meanwhile).
        let series = |t: &str| -> std::collections::BTreeSet<String> {
            t.lines()
                .filter(|l| l.starts_with("echopilot_http_request"))
                .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| k.to_string()))
                .collect()
        };
        let new: Vec<String> = series(&after)
            .difference(&series(&before))
            .cloned()
            .collect();
        assert!(new.is_empty(), "{backend}: new series {new:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_bad_keys_from_one_address_get_429_and_few_log_lines() {
    for backend in common::backends() {
        let srv = start(
            backend,
            &[
                ("ECHOPILOT_SERVER__AUTH_FAILURES_BURST", "5"),
                ("ECHOPILOT_SERVER__AUTH_FAILURES_PER_MINUTE", "1"),
                ("ECHOPILOT_SERVER__AUTH_FAILURE_LOG_INTERVAL_SECS", "1"),
            ],
            |_| {},
        )
        .await;
        let bad = srv.client().with_key(&format!("ep_{}", "0".repeat(64)));
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(bad.get("/api/v1/status/summary").await);
        }
        assert!(statuses[..5].iter().all(|r| r.status == 401), "{backend}");
        let throttled = &statuses[5];
        throttled.assert_problem(429);
        let retry: u64 = throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1, "{backend}");
        assert!(statuses[6..].iter().all(|r| r.status == 429), "{backend}");
        // A key-less request from the same address is refused before any lookup too.
        srv.client()
            .anonymous()
            .get("/api/v1/status/summary")
            .await
            .assert_problem(429);
        // The 61 refusals cost a summary line per interval, not a line each.
        let summary = common::eventually(
            Duration::from_secs(10),
            "a refusal summary line",
            || async {
                let logs = srv.read_logs();
                logs.lines()
                    .any(|l| l.contains("unauthenticated requests refused"))
                    .then_some(logs)
            },
        )
        .await;
        let security: Vec<&str> = summary
            .lines()
            .filter(|l| l.contains("\"area\":\"security\""))
            .collect();
        assert!(
            security.len() <= 3,
            "{backend}: {} security lines: {security:?}",
            security.len()
        );
        // 61 refusals: 6 looked up (the 6th exhausted the budget), 55 refused unread.
        let lines: Vec<serde_json::Value> = common::eventually(
            Duration::from_secs(10),
            "every refusal summarised",
            || async {
                let lines: Vec<serde_json::Value> = srv
                    .read_logs()
                    .lines()
                    .filter(|l| l.contains("unauthenticated requests refused"))
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                let total: u64 = lines
                    .iter()
                    .map(|l| l["invalid_key"].as_u64().unwrap() + l["throttled"].as_u64().unwrap())
                    .sum();
                (total == 61).then_some(lines)
            },
        )
        .await;
        let sum = |k: &str| lines.iter().map(|l| l[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(
            (sum("invalid_key"), sum("throttled")),
            (6, 55),
            "{backend}: {lines:?}"
        );
        assert!(
            lines[0]["top_addresses"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1"),
            "{lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_is_redacted_like_the_log_files() {
    for backend in common::backends() {
        let srv = start(backend, &[], |o| o.capture_stderr = true).await;
        let secret = format!("ep_{}", "ab12".repeat(16));
        let r = srv.client().get(&format!("/api/v1/nowhere/{secret}")).await;
        assert_eq!(r.status, 404, "{backend}");
        let text = common::eventually(Duration::from_secs(10), "the request on stderr", || async {
            let t = srv.stderr_text();
            t.contains("/api/v1/nowhere/ep_[REDACTED]").then_some(t)
        })
        .await;
        assert!(!text.contains(&secret), "{backend}: a key reached stderr");
        assert!(
            !text.contains(&srv.key),
            "{backend}: the bootstrap key reached stderr"
        );
        assert!(
            !srv.read_logs().contains(&secret),
            "{backend}: a key reached the log files"
        );
    }
}
