//! Shared end-to-end harness: start the real `echopilot serve` binary on a random
//! loopback port with a fresh data dir (and optionally a fresh PostgreSQL database),
//! then drive it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    pub url: String,
    pub key: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

/// Options for [`Server::start_with`].
#[derive(Default, Clone)]
pub struct Opts {
    /// Use this database URL (e.g. a fresh Postgres db); default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// Reuse a data dir (restart scenarios); default: a fresh temp dir.
    pub data_dir: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Bootstrap key to install; default: a random one.
    pub key: Option<String>,
    /// Write the server's stderr to `<data-dir>/stderr.log` (see [`Server::stderr_text`]).
    pub capture_stderr: bool,
    /// Run the server with this soft limit on open file descriptors (`ulimit -n`).
    pub fd_limit: Option<u64>,
}

pub fn random_key() -> String {
    use std::fmt::Write;
    let mut s = String::from("ep_");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Not for production: tests only need distinct 64-hex-char keys.
    let mut x = seed ^ (std::process::id() as u128) << 64;
    for _ in 0..32 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        write!(s, "{:02x}", (x >> 64) as u8).unwrap();
    }
    s
}

/// Backends to run an e2e test on: sqlite always, postgres when ECHOPILOT_TEST_PG_URL is set.
pub fn backends() -> Vec<&'static str> {
    echopilot_backend::store::testing::backends()
}

/// A fresh database URL for the backend (None = SQLite in the data dir).
pub async fn fresh_database(backend: &str) -> Option<String> {
    match backend {
        "postgres" => Some(echopilot_backend::store::testing::create_pg_database().await),
        _ => None,
    }
}

/// Starts the server on `backend` (a fresh database; SQLite in the data dir) with extra
/// environment variables.
pub async fn start(backend: &str, env: &[(&str, &str)]) -> Server {
    Server::start_with(Opts {
        database_url: fresh_database(backend).await,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

/// A new key of `role` for `tenant`, created by `root` (the bootstrap key's client):
/// a client that sends it.
pub async fn key(root: &Client, role: &str, tenant: &str) -> Client {
    key_and_secret(root, role, tenant).await.0
}

/// [`key`] and the key's secret (for `?key=` or raw requests).
pub async fn key_and_secret(root: &Client, role: &str, tenant: &str) -> (Client, String) {
    let r = root
        .post(
            "/api/v1/keys",
            serde_json::json!({"role": role, "tenant": tenant}),
        )
        .await;
    assert_eq!(
        r.status, 201,
        "create a {role} key for {tenant}: {}",
        r.text
    );
    let secret = r.body["key"].as_str().expect("the new key").to_string();
    (root.with_key(&secret), secret)
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Server {
        let (tmp, data_dir) = match opts.data_dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let key = opts.key.clone().unwrap_or_else(random_key);
        let mut cmd = match opts.fd_limit {
            None => Command::new(env!("CARGO_BIN_EXE_echopilot")),
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_echopilot"));
                c
            }
        };
        let stderr = if opts.capture_stderr {
            Stdio::from(std::fs::File::create(data_dir.join("stderr.log")).expect("stderr.log"))
        } else {
            Stdio::null()
        };
        cmd.arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .env("ECHOPILOT_BOOTSTRAP_KEY", &key)
            .env("ECHOPILOT_CONFIG", "/dev/null")
            .env_remove("ECHOPILOT_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(u) = &opts.database_url {
            cmd.env("ECHOPILOT_DATABASE_URL", u);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn echopilot serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.strip_prefix("echopilot: listening on ") {
                        let _ = tx.send(url.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address within 60 s");
        Server {
            url,
            key,
            data_dir,
            database_url: opts.database_url,
            child: Some(child),
            _tmp: tmp,
        }
    }

    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.url.clone(),
            key: Some(self.key.clone()),
            tenant: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, no cleanup (crash simulation).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote to stderr (with [`Opts::capture_stderr`]).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("stderr.log")).unwrap_or_default()
    }

    /// Every log file's contents under `<data-dir>/logs`.
    pub fn read_logs(&self) -> String {
        let mut all = String::new();
        if let Ok(rd) = std::fs::read_dir(self.data_dir.join("logs")) {
            for e in rd.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
    pub tenant: Option<String>,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Client {
    pub fn with_key(&self, key: &str) -> Client {
        Client {
            key: Some(key.to_string()),
            ..self.clone()
        }
    }

    pub fn with_tenant(&self, tenant: &str) -> Client {
        Client {
            tenant: Some(tenant.to_string()),
            ..self.clone()
        }
    }

    pub fn anonymous(&self) -> Client {
        Client {
            key: None,
            ..self.clone()
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = &self.key {
            r = r.header("X-Dash-Key", k);
        }
        if let Some(t) = &self.tenant {
            r = r.header("X-Tenant-Id", t);
        }
        r
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(self.req(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }
}

impl Resp {
    /// Assert the response is an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        let ct = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            ct.starts_with("application/problem+json"),
            "content-type {ct}"
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        for f in ["type", "title", "detail", "instance"] {
            assert!(
                self.body[f].is_string(),
                "problem field {f} missing: {}",
                self.text
            );
        }
        self
    }
}

/// Poll until `f` returns Some, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `cmd` with its stdout a pipe whose reader is already gone (as after `| head -c 10`
/// has read enough): every write gets EPIPE. Returns the exit code and stderr.
pub fn run_with_closed_stdout(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run the command");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
