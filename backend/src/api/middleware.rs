//! Request pipeline: legacy-path aliasing, request ids + metrics + problem+json
//! normalisation, authentication/tenancy/rate limiting, and idempotent POSTs.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::api::auth_failures::{AuthFailures, Failure};
use crate::app::AppState;
use crate::auth::{self, Caller, DEFAULT_TENANT};
use crate::error::{problem_response, ApiError, PROBLEM_JSON};
use crate::model::{Problem, Role};
use crate::store::{decode_json, in_table};

pub const REQUEST_ID: &str = "x-request-id";

/// The request id of the current request (taken from `X-Request-ID` or generated).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn valid_request_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// `/api/<x>` (not v1) answers as `/api/v1/<x>`, with `Deprecation` and a `Link` to the
/// successor. Runs before routing.
pub async fn legacy_alias(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let legacy = path.starts_with("/api/") && !path.starts_with("/api/v1/") && path != "/api/v1";
    if !legacy {
        return next.run(req).await;
    }
    let new_path = format!("/api/v1/{}", &path["/api/".len()..]);
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path.clone(),
    };
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("deprecation", HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(&format!("<{new_path}>; rel=\"successor-version\"")) {
        h.insert(header::LINK, v);
    }
    resp
}

/// Request id, span, access log, metrics, and the guarantee that every error response
/// is problem+json with `instance` and `request_id` filled in.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let rid = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_request_id(s))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(RequestId(rid.clone()));
    let span = tracing::info_span!(
        target: "server",
        "request",
        request_id = %rid,
        tenant_id = tracing::field::Empty,
        method = %method,
        path = %path,
    );
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status();
    if status.is_client_error() || status.is_server_error() {
        resp = normalize_problem(resp, &path, &rid).await;
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let secs = start.elapsed().as_secs_f64();
    crate::api::metrics::record_request(&route, method.as_str(), status.as_u16(), secs);
    crate::telemetry::window::record(status.as_u16(), secs);
    span.in_scope(|| {
        tracing::info!(
            target: "server",
            status = status.as_u16(),
            latency_ms = secs * 1000.0,
            route = %route,
            "request finished"
        );
    });
    resp
}

async fn normalize_problem(resp: Response, path: &str, rid: &str) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let is_problem = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let mut problem = if is_problem {
        serde_json::from_slice::<Problem>(&bytes).ok()
    } else {
        None
    };
    if problem.is_none() {
        // A response produced outside our handlers (405, timeout, …): wrap its text.
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let detail = if text.is_empty() {
            default_detail(parts.status)
        } else {
            text.chars().take(500).collect()
        };
        let fresh = problem_response(parts.status, detail);
        let (_, b) = fresh.into_parts();
        let fb = b.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        problem = serde_json::from_slice::<Problem>(&fb).ok();
    }
    let Some(mut p) = problem else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    p.instance = path.to_string();
    p.request_id = Some(rid.to_string());
    let body = serde_json::to_vec(&p).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn default_detail(status: StatusCode) -> String {
    match status.as_u16() {
        404 => "no such route".into(),
        405 => "method not allowed on this route".into(),
        408 | 503 => "the request did not complete in time".into(),
        _ => status.canonical_reason().unwrap_or("error").into(),
    }
}

/// Authenticate `X-Dash-Key`, resolve the tenant, apply the per-key rate limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authorize(&state, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authorize(state: &AppState, req: &mut Request) -> Result<(), ApiError> {
    let rid = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    // 401s are budgeted per client address (see `auth_failures`): an address over its
    // budget is refused before its key is even looked up.
    let guard = state.service::<std::sync::Arc<AuthFailures>>();
    let peer = AuthFailures::addr_of(
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0),
    );
    if let Some(wait) = guard.as_ref().and_then(|g| g.blocked(peer)) {
        return Err(too_many_failures(wait));
    }
    let refuse = |why: Failure, detail: &str| match guard.as_ref().and_then(|g| g.failed(peer, why))
    {
        Some(wait) => too_many_failures(wait),
        None => ApiError::Unauthorized(detail.into()),
    };
    let from_query = query_key(req);
    let presented = match (req.headers().get("x-dash-key"), &from_query) {
        (Some(h), _) => match h.to_str() {
            Ok(v) => v.to_string(),
            Err(_) => return Err(refuse(Failure::InvalidKey, "invalid API key")),
        },
        (None, Some(k)) => k.clone(),
        (None, None) => {
            return Err(refuse(Failure::MissingKey, "missing X-Dash-Key header"));
        }
    };
    let row = auth::authenticate(&state.store, &presented).await?;
    let Some(row) = row else {
        return Err(refuse(Failure::InvalidKey, "invalid API key"));
    };
    if row.revoked {
        return Err(refuse(Failure::RevokedKey, "this API key has been revoked"));
    }
    if let Err(not_until) = state.limiter.check_key(&row.id) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(ApiError::RateLimited {
            detail: format!(
                "rate limit of {}/s (burst {}) exceeded for this key",
                state.cfg.rate_limit_per_sec, state.cfg.rate_limit_burst
            ),
            retry_after_s: secs.max(1),
        });
    }
    let requested = match req.headers().get("x-tenant-id") {
        None => None,
        Some(v) => {
            let t = v.to_str().unwrap_or_default().to_string();
            if !auth::valid_tenant_id(&t) {
                return Err(ApiError::BadRequest(
                    "X-Tenant-Id must be 1-64 characters of a-z, 0-9, '-' or '_'".into(),
                ));
            }
            Some(t)
        }
    };
    let mut caller = Caller {
        key_id: row.id.clone(),
        role: row.role,
        key_tenant: row.tenant_id.clone(),
        tenant: row.tenant_id.clone(),
        request_id: rid,
    };
    if let Some(t) = requested {
        if t != row.tenant_id && !caller.is_superadmin() {
            let detail = serde_json::json!({
                "reason": "tenant",
                "key_tenant": row.tenant_id,
                "requested_tenant": t,
                "method": req.method().as_str(),
                "path": req.uri().path(),
            });
            auth::deny(state, &caller, "tenant.access", &t, detail).await;
            return Err(ApiError::Forbidden(format!(
                "this key belongs to tenant {:?} and may not act on tenant {t:?}",
                row.tenant_id
            )));
        }
        caller.tenant = t;
    }
    // After the tenant check, so a foreign tenant is refused (and audited) as for any key.
    if caller.role == Role::Ingest && req.uri().path() != auth::INGEST_ROUTE {
        let detail = serde_json::json!({
            "reason": "ingest key", "method": req.method().as_str(), "path": req.uri().path(),
        });
        auth::deny(state, &caller, "ingest.scope", &caller.tenant, detail).await;
        return Err(ApiError::Forbidden(format!(
            "a publishable ingest key may only call POST {}",
            auth::INGEST_ROUTE
        )));
    }
    if req.headers().get("x-dash-key").is_none() && caller.role != Role::Ingest {
        // A powerful key in a URL ends up in proxies' and browsers' histories.
        tracing::warn!(target: "security", key_id = %caller.key_id, "non-ingest key presented in the query string");
        return Err(ApiError::Unauthorized(
            "only a publishable ingest key may be passed as ?key=; send other keys in X-Dash-Key"
                .into(),
        ));
    }
    tracing::Span::current().record("tenant_id", caller.tenant.as_str());
    state.last_used.touch(&state.store, &row.id);
    req.extensions_mut().insert(caller);
    Ok(())
}

fn too_many_failures(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        detail: "too many failed authentications from this address; try again later".into(),
        retry_after_s: secs.max(1),
    }
}

/// `?key=` of the ingestion route (sendBeacon cannot set headers); `None` elsewhere.
fn query_key(req: &Request) -> Option<String> {
    if req.uri().path() != auth::INGEST_ROUTE {
        return None;
    }
    req.uri().query()?.split('&').find_map(|pair| {
        let v = pair.strip_prefix("key=")?;
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// CORS for the routes areas declare as callable from web pages on other origins
/// ([`crate::area::Area::cors_paths`]: the publishable ingestion route and its client
/// script); every other route stays same-origin (no CORS headers, preflights as before).
pub async fn cors(req: Request, next: Next) -> Response {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        crate::areas::ALL
            .iter()
            .flat_map(|a| a.cors_paths().iter().copied())
            .collect()
    });
    if !paths.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    use tower::{Layer, ServiceExt};
    let layer = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-dash-key"),
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::ETAG, header::HeaderName::from_static(REQUEST_ID)])
        .max_age(std::time::Duration::from_secs(86_400));
    match layer.layer(next).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// `(METHOD, route template)` → declared access, from the OpenAPI contract.
pub type AccessTable = std::collections::HashMap<(String, String), crate::api::contract::Access>;

/// `Idempotency-Key` on a protected POST. The cache is keyed by tenant, API key, method and
/// route template, so one key never sees another key's answer. It is consulted only once
/// the caller passed authentication (outer layer) and the route's declared role
/// (`x-min-role`, `x-system`): a caller below it goes to the handler, which refuses and
/// audits, and nothing is stored. Only what a handler executed is stored (2xx and the
/// handler's own 404/409/…), never 400/401/403/413/415/422/429, a disabled module or a
/// 5xx — so a refused request cannot poison the key for its owner (as Stripe does).
/// The same request is the same method, path, query and JSON body *by value* (keys in
/// any order); a different request under a used key → 409; a repeat while the first
/// runs → 409. Key creation is exempt: its answer holds a secret, shown once. A streamed
/// answer (`text/event-stream`, the AI proxy) passes through unbuffered and is not
/// stored: the key is held while it streams and released when it ends.
pub async fn idempotency(
    State((state, access)): State<(AppState, std::sync::Arc<AccessTable>)>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        return next.run(req).await;
    };
    if crate::api::contract::IDEMPOTENCY_EXEMPT.contains(&route.as_str()) {
        return next.run(req).await;
    }
    let Some(idem) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let Some(acc) = access.get(&("POST".to_string(), route.clone())) else {
        return next.run(req).await;
    };
    let system_ok = !acc.system || caller.is_superadmin() || caller.key_tenant == DEFAULT_TENANT;
    if caller.role.rank() < acc.min_role.rank() || !system_ok {
        return next.run(req).await;
    }
    match run_idempotent(&state, &caller, &route, idem, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Marks a response produced before the handler ran (a module's gate), so the
/// idempotency cache does not keep it.
#[derive(Debug, Clone, Copy)]
pub struct NotExecuted;

/// Whether a response is what a handler executed (and may be replayed).
fn storable(resp: &Response) -> bool {
    let s = resp.status();
    !s.is_server_error()
        && resp.extensions().get::<NotExecuted>().is_none()
        && !matches!(
            s.as_u16(),
            400 | 401 | 403 | 405 | 408 | 413 | 415 | 422 | 429
        )
}

/// Hash of what makes two requests "the same": method, path, query and the body — a
/// JSON body by value (canonical form: keys sorted, no whitespace), anything else by bytes.
fn request_hash(parts: &axum::http::request::Parts, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update([0]);
    h.update(parts.uri.path().as_bytes());
    h.update([0]);
    h.update(parts.uri.query().unwrap_or("").as_bytes());
    h.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            h.update(b"json:");
            h.update(crate::audit::canonical_json(&v).as_bytes());
        }
        Err(_) => {
            h.update(b"raw:");
            h.update(body);
        }
    }
    hex::encode(h.finalize())
}

/// An `idempotency_keys` row; `status`/`body` are NULL while the first request runs.
#[derive(sqlx::FromRow)]
struct IdemRow {
    request_hash: String,
    status: Option<i64>,
    /// Replayed byte for byte, so kept as text; checked to be JSON (or empty) on read.
    body: Option<String>,
}

/// The row's key: tenant, API key, method, route template, Idempotency-Key.
struct IdemKey<'a> {
    tenant: &'a str,
    key_id: &'a str,
    route: &'a str,
    idem: &'a str,
}

const IDEM_WHERE: &str =
    "tenant_id = $1 AND key_id = $2 AND method = 'POST' AND route = $3 AND idem_key = $4";

async fn forget(store: &crate::store::Store, k: &IdemKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DELETE FROM idempotency_keys WHERE {IDEM_WHERE}"))
        .bind(k.tenant)
        .bind(k.key_id)
        .bind(k.route)
        .bind(k.idem)
        .execute(store.writer())
        .await
        .map(|_| ())
}

/// `text/event-stream`: an answer that is streamed, so never buffered for the cache.
fn is_event_stream(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Releases an Idempotency-Key when dropped (with the body of a streamed answer).
struct Release {
    store: crate::store::Store,
    tenant: String,
    key_id: String,
    route: String,
    idem: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, tenant, key_id, route, idem) = (
            self.store.clone(),
            std::mem::take(&mut self.tenant),
            std::mem::take(&mut self.key_id),
            std::mem::take(&mut self.route),
            std::mem::take(&mut self.idem),
        );
        rt.spawn(async move {
            let key = IdemKey {
                tenant: &tenant,
                key_id: &key_id,
                route: &route,
                idem: &idem,
            };
            if let Err(e) = forget(&store, &key).await {
                tracing::warn!(target: "server", error = %e, "an Idempotency-Key of a streamed answer could not be released; it expires after 24 h");
            }
        });
    }
}

async fn run_idempotent(
    state: &AppState,
    caller: &Caller,
    route: &str,
    idem: HeaderValue,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let idem = idem
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1-255 visible ASCII characters".into())
        })?
        .to_string();
    let (parts, body) = req.into_parts();
    let limit = state.cfg.body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge("request body exceeds the configured size limit".into())
    })?;
    let req_hash = request_hash(&parts, &bytes);
    let key = IdemKey {
        tenant: &caller.tenant,
        key_id: &caller.key_id,
        route,
        idem: &idem,
    };
    let store = &state.store;
    let now = crate::util::now_ms();
    // Forget keys older than a day, like Stripe.
    sqlx::query(&format!(
        "DELETE FROM idempotency_keys WHERE {IDEM_WHERE} AND created_at < $5"
    ))
    .bind(key.tenant)
    .bind(key.key_id)
    .bind(key.route)
    .bind(key.idem)
    .bind(now - 86_400_000)
    .execute(store.writer())
    .await?;
    // The row can vanish between the INSERT that found it and the SELECT that reads it
    // (a streamed answer releases its key when it ends): then the key is free, so the
    // INSERT is tried again rather than answering with the missing row.
    let mut attempts = 0;
    let row = loop {
        attempts += 1;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key_id, method, route, idem_key, request_hash, created_at) \
             VALUES ($1, $2, 'POST', $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(key.tenant)
        .bind(key.key_id)
        .bind(key.route)
        .bind(key.idem)
        .bind(&req_hash)
        .bind(now)
        .execute(store.writer())
        .await?
        .rows_affected();
        if inserted != 0 {
            break None;
        }
        let row = sqlx::query_as::<_, IdemRow>(&format!(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE {IDEM_WHERE}"
        ))
        .bind(key.tenant)
        .bind(key.key_id)
        .bind(key.route)
        .bind(key.idem)
        .fetch_optional(store.writer())
        .await
        .map_err(in_table("idempotency_keys", Some(&"the request's key")))?;
        match row {
            Some(row) => break Some(row),
            None if attempts < 5 => continue,
            None => {
                return Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still in progress".into(),
                ))
            }
        }
    };
    if let Some(row) = row {
        if row.request_hash != req_hash {
            return Err(ApiError::Conflict(
                "this Idempotency-Key was already used with a different request".into(),
            ));
        }
        let Some(status) = row.status else {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still in progress".into(),
            ));
        };
        let body = row.body.unwrap_or_default();
        if !body.is_empty() {
            decode_json::<serde::de::IgnoredAny>(&body).map_err(|e| {
                ApiError::CorruptData(format!("idempotency_keys.body (the request's key): {e}"))
            })?;
        }
        // A stored status that is no HTTP status is a corrupt row, not a 200.
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| {
                ApiError::CorruptData(format!(
                    "idempotency_keys.status (the request's key): {status} is not an HTTP status"
                ))
            })?;
        let ct = if status.is_success() {
            "application/json"
        } else {
            PROBLEM_JSON
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !storable(&resp) {
        // Not executed, or a failure of ours: the key stays free for a corrected retry.
        let _ = forget(store, &key).await;
        return Ok(resp);
    }
    if is_event_stream(&resp) {
        // A streamed answer (the AI proxy's SSE) goes through as it comes: never
        // buffered, never stored. The key stays in progress while it streams (a repeat
        // is 409) and is released when the stream ends or the client goes away.
        let release = Release {
            store: store.clone(),
            tenant: key.tenant.to_string(),
            key_id: key.key_id.to_string(),
            route: key.route.to_string(),
            idem: key.idem.to_string(),
        };
        let (rparts, rbody) = resp.into_parts();
        let mut data = rbody.into_data_stream();
        let body = futures_util::stream::poll_fn(move |cx| {
            let _held = &release;
            futures_util::Stream::poll_next(std::pin::Pin::new(&mut data), cx)
        });
        return Ok(Response::from_parts(rparts, Body::from_stream(body)));
    }
    let (rparts, rbody) = resp.into_parts();
    let rbytes: Bytes = rbody
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    sqlx::query(&format!(
        "UPDATE idempotency_keys SET status = $5, body = $6 WHERE {IDEM_WHERE}"
    ))
    .bind(key.tenant)
    .bind(key.key_id)
    .bind(key.route)
    .bind(key.idem)
    .bind(rparts.status.as_u16() as i64)
    .bind(String::from_utf8_lossy(&rbytes).to_string())
    .execute(store.writer())
    .await?;
    Ok(Response::from_parts(rparts, Body::from(rbytes)))
}

/// Refuse, at the edge, a URL the databases cannot store: a NUL byte (`%00`) in the path
/// or query (PostgreSQL rejects NUL in text; SQLite would store it), or a path whose
/// percent-encoding is not UTF-8. Same 400 on both engines, before any handler runs.
pub async fn reject_unstorable_url(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let bad = |s: &str| {
        let decoded = percent_encoding::percent_decode_str(s);
        let bytes: Vec<u8> = decoded.collect();
        bytes.contains(&0) || std::str::from_utf8(&bytes).is_err()
    };
    if bad(uri.path()) {
        return ApiError::BadRequest(
            "the path holds a NUL byte or percent-encoding that is not UTF-8".into(),
        )
        .into_response();
    }
    // `+` is a space in a query; only `%00` and invalid UTF-8 matter here.
    if uri.query().is_some_and(bad) {
        return ApiError::BadRequest(
            "the query string holds a NUL byte or percent-encoding that is not UTF-8".into(),
        )
        .into_response();
    }
    next.run(req).await
}
