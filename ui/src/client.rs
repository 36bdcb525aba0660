//! HTTP client for the backend: `X-Dash-Key` auth, optional `X-Tenant-Id`, RFC 9457 errors.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use serde_json::Value;

/// An RFC 9457 problem (or the status of a non-JSON error answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: Option<String>,
    pub kind: Option<String>,
    /// Set when a per-tenant module is disabled: the route exists but is switched off.
    pub module: Option<String>,
    /// `tenant` or `fleet` (with `module`).
    pub scope: Option<String>,
}

/// A route answered "module disabled" (404 problem+json with a `module` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub module: String,
    /// Turned off fleet-wide (`[modules] <name> = false`), not just for this tenant.
    pub fleet: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// Why a request produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, DNS, timeout: nothing answered.
    #[error("backend unreachable ({0})")]
    Unreachable(String),
    /// The backend answered with an error status.
    #[error("{0}")]
    Problem(Problem),
    /// The backend answered 2xx but the body was not JSON.
    #[error("invalid response: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Problem(p) => Some(p.status),
            _ => None,
        }
    }

    /// The module-disabled answer, as opposed to a plain 404 (route not installed).
    pub fn disabled(&self) -> Option<Disabled> {
        match self {
            ClientError::Problem(p) if p.status == 404 => p.module.as_ref().map(|m| Disabled {
                module: m.clone(),
                fleet: p.scope.as_deref() == Some("fleet"),
            }),
            _ => None,
        }
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable(_))
    }
}

/// Cheap to clone; all clones share the connection pool and the selected tenant.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    key: Arc<str>,
    tenant: Arc<RwLock<Option<String>>>,
}

impl Client {
    pub fn new(base_url: &str, key: &str, tenant: Option<String>) -> anyhow::Result<Client> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').into(),
            key: key.into(),
            tenant: Arc::new(RwLock::new(tenant)),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn set_tenant(&self, tenant: Option<String>) {
        if let Ok(mut t) = self.tenant.write() {
            *t = tenant;
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("X-Dash-Key", &*self.key);
        if let Some(t) = self.tenant.read().ok().and_then(|t| t.clone()) {
            req = req.header("X-Tenant-Id", t);
        }
        req
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        Self::finish(self.request(reqwest::Method::GET, path).send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        Self::finish(
            self.request(reqwest::Method::POST, path)
                .json(body)
                .send()
                .await,
        )
        .await
    }

    async fn finish(sent: reqwest::Result<reqwest::Response>) -> Result<Value, ClientError> {
        let resp = sent.map_err(|e| ClientError::Unreachable(short_reason(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable(short_reason(&e)))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(ClientError::Problem(parse_problem(status.as_u16(), &bytes)))
    }
}

/// Builds a [`Problem`] from an error body; falls back to the canonical reason phrase.
pub fn parse_problem(status: u16, body: &[u8]) -> Problem {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
        .to_string();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let detail = text("detail").or_else(|| {
        // Non-problem bodies (plain text) still carry a useful reason.
        let s = String::from_utf8_lossy(body).trim().to_string();
        (v.is_null() && !s.is_empty()).then(|| s.chars().take(200).collect())
    });
    Problem {
        status,
        title: text("title").unwrap_or(reason),
        detail,
        kind: text("type"),
        module: text("module"),
        scope: text("scope"),
    }
}

fn short_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // reqwest's Display is "error sending request for url (...)"; keep it but drop the chain.
        e.to_string()
    }
}
