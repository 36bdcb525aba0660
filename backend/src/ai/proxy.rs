//! The recording proxy: `POST /api/v1/ai/proxy/v1/{chat/completions,embeddings}` forwards
//! the body unchanged to `[ai] upstream_base_url` with the configured upstream key, and
//! records the call as an AI event with the upstream's usage figures. An app gets the data
//! lake by changing its base URL (and sending its EchoPilot key as `X-Dash-Key`).
//!
//! Streaming (`"stream": true`): the upstream's bytes go to the client chunk by chunk
//! through a small channel (never the whole answer in memory); a tee parses the SSE
//! `data:` lines for the text and the `usage` object (present when the client asked for
//! `stream_options.include_usage`; otherwise tokens are recorded as unknown, not
//! estimated). The event is recorded when the stream ends, also when the client goes
//! away or the upstream fails mid-stream (status `error`).
//!
//! The upstream key never leaves this module except in the upstream request's
//! `Authorization` header: it is not logged, and it is scrubbed from upstream error text
//! before that is shown to the caller.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::events::{CallStatus, NewEvent, MAX_TEXT_CHARS};
use super::{Ai, PROXY_TOTAL};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{problem_response, ApiError};
use crate::model::Role;
use crate::util::now_ms;

/// Client headers naming the feature and end user of a proxied call.
pub const FEATURE_HEADER: &str = "x-ai-feature";
pub const DISTINCT_ID_HEADER: &str = "x-ai-distinct-id";

/// Most text kept from one answer for hashing and (redacted) storage.
const MAX_CAPTURE_BYTES: usize = 4 * MAX_TEXT_CHARS;

/// Forward a chat completion (streamed or not) to the upstream and record it.
#[utoipa::path(post, path = "/api/v1/ai/proxy/v1/chat/completions", tag = "ai",
    request_body(content = Object, content_type = "application/json",
        description = "An OpenAI chat-completions request, forwarded unchanged (`model` is required). Optional headers X-Ai-Feature and X-Ai-Distinct-Id label the recorded event."),
    responses(
        (status = 200, description = "The upstream's answer: JSON, or text/event-stream when `stream` is true"),
        (status = 400), (status = 401), (status = 403),
        (status = 404, description = "No upstream configured (`[ai] upstream_base_url`), or the ai module is off"),
        (status = 413), (status = 415), (status = 422),
        (status = 502, description = "The upstream is unreachable (a gateway error)"),
        (status = 504, description = "The upstream did not answer in time")),
    security(("dash_key" = [])))]
pub async fn chat_completions(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&state, ai, caller, headers, body, Endpoint::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Forward an embeddings request to the upstream and record it.
#[utoipa::path(post, path = "/api/v1/ai/proxy/v1/embeddings", tag = "ai",
    request_body(content = Object, content_type = "application/json",
        description = "An OpenAI embeddings request, forwarded unchanged (`model` is required)."),
    responses(
        (status = 200, description = "The upstream's answer"),
        (status = 400), (status = 401), (status = 403),
        (status = 404, description = "No upstream configured (`[ai] upstream_base_url`), or the ai module is off"),
        (status = 413), (status = 415), (status = 422),
        (status = 502, description = "The upstream is unreachable (a gateway error)"),
        (status = 504, description = "The upstream did not answer in time")),
    security(("dash_key" = [])))]
pub async fn embeddings(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward(&state, ai, caller, headers, body, Endpoint::Embeddings)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// What the caller asked for, as far as recording needs it.
struct Call {
    tenant: String,
    model: String,
    prompt: String,
    feature: Option<String>,
    distinct_id: Option<String>,
    endpoint: Endpoint,
    started: Instant,
    ts: i64,
}

impl Call {
    fn event(
        self,
        model: Option<String>,
        response: String,
        usage: Option<(i64, i64)>,
        error: Option<String>,
    ) -> (String, NewEvent) {
        let ev = NewEvent {
            model: model.filter(|m| !m.is_empty()).unwrap_or(self.model),
            prompt: self.prompt,
            response,
            tokens_in: usage.map(|u| u.0),
            tokens_out: usage.map(|u| u.1),
            latency_ms: self.started.elapsed().as_millis().min(i64::MAX as u128) as i64,
            status: if error.is_some() {
                CallStatus::Error
            } else {
                CallStatus::Ok
            },
            error,
            feature: self.feature,
            distinct_id: self.distinct_id,
            ts: self.ts,
            source: "proxy",
            endpoint: Some(self.endpoint.path()),
        };
        (self.tenant, ev)
    }
}

fn header_label(headers: &HeaderMap, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= max)
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "header {name} must be 1 to {max} visible ASCII characters"
            ))
        })?;
    Ok(Some(s.to_string()))
}

fn count(endpoint: Endpoint, outcome: &'static str) {
    metrics::counter!(PROXY_TOTAL, "endpoint" => endpoint.path(), "outcome" => outcome)
        .increment(1);
}

async fn forward(
    state: &AppState,
    ai: Ai,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    caller.require(state, Role::Integration, "ai.proxy").await?;
    let json_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_ct {
        return Err(ApiError::UnsupportedMediaType(
            "expected request header Content-Type: application/json".into(),
        ));
    }
    let req: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    let Some(obj) = req.as_object() else {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    let model = match obj.get("model") {
        Some(Value::String(m))
            if !m.trim().is_empty() && m.chars().count() <= super::events::MAX_MODEL_CHARS =>
        {
            m.trim().to_string()
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "model must be a string of 1 to 200 characters".into(),
            ))
        }
    };
    let Some(base) = ai.settings.upstream_base_url.clone() else {
        return Err(ApiError::NotFound(
            "the AI proxy has no upstream: set [ai] upstream_base_url (e.g. https://api.openai.com/v1)".into(),
        ));
    };
    let stream =
        endpoint == Endpoint::Chat && obj.get("stream").and_then(Value::as_bool) == Some(true);
    let call = Call {
        tenant: caller.tenant().to_string(),
        model,
        prompt: prompt_text(endpoint, obj),
        feature: header_label(&headers, FEATURE_HEADER, 100)?,
        distinct_id: header_label(&headers, DISTINCT_ID_HEADER, 200)?,
        endpoint,
        started: Instant::now(),
        ts: now_ms(),
    };
    let mut up = ai
        .http
        .post(format!("{base}/{}", endpoint.path()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    if stream {
        up = up.header(header::ACCEPT, "text/event-stream");
    }
    if let Some(k) = &ai.settings.upstream_api_key {
        up = up.bearer_auth(k);
    }
    let resp = match up.send().await {
        Ok(r) => r,
        Err(e) => {
            let (status, what, outcome) = if e.is_timeout() {
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "did not answer in time",
                    "timeout",
                )
            } else {
                (StatusCode::BAD_GATEWAY, "is unreachable", "unreachable")
            };
            count(endpoint, outcome);
            let msg = format!("the AI upstream {what}: {}", error_chain(&e));
            let msg = scrub(&ai, &msg);
            record_logged(
                &ai,
                call.event(None, String::new(), None, Some(msg.clone())),
            )
            .await;
            return Ok(problem_response(status, msg));
        }
    };
    let status = resp.status();
    let is_sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if status.is_success() && is_sse {
        count(endpoint, "streamed");
        return Ok(stream_through(ai, call, resp));
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            count(endpoint, "unreachable");
            let msg = scrub(
                &ai,
                &format!(
                    "the AI upstream failed while answering: {}",
                    error_chain(&e)
                ),
            );
            record_logged(
                &ai,
                call.event(None, String::new(), None, Some(msg.clone())),
            )
            .await;
            return Ok(problem_response(StatusCode::BAD_GATEWAY, msg));
        }
    };
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        count(endpoint, "upstream_error");
        let detail = scrub(
            &ai,
            &format!(
                "the AI upstream answered {}: {}",
                status.as_u16(),
                upstream_error(&answer, &bytes)
            ),
        );
        record_logged(
            &ai,
            call.event(None, String::new(), None, Some(detail.clone())),
        )
        .await;
        let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut r = problem_response(code, detail);
        if let Some(v) = retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    count(endpoint, "ok");
    let (text, usage) = parse_answer(endpoint, &answer);
    let model = answer
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    record_logged(&ai, call.event(model, text, usage, None)).await;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        ct.unwrap_or_else(|| HeaderValue::from_static("application/json")),
    );
    Ok(r)
}

/// Record, logging (never failing the call) when the store refuses.
async fn record_logged(ai: &Ai, (tenant, ev): (String, NewEvent)) {
    if let Err(e) = ai.record(&tenant, vec![ev]).await {
        count_record_failure();
        tracing::warn!(target: "ai_events", tenant_id = %tenant, error = %e, "a proxied call could not be recorded");
    }
}

fn count_record_failure() {
    metrics::counter!(PROXY_TOTAL, "endpoint" => "any", "outcome" => "record_failed").increment(1);
}

/// `reqwest` errors hide the cause (connection refused, DNS) in their source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Remove the upstream key (and anything shaped like a known secret) from upstream text.
fn scrub(ai: &Ai, text: &str) -> String {
    let mut t = text.to_string();
    if let Some(k) = &ai.settings.upstream_api_key {
        t = t.replace(k.as_str(), "[REDACTED]");
    }
    crate::logging::redact_secrets(&t)
}

/// The upstream's error message (`{"error": {"message": …}}`), else its text.
fn upstream_error(answer: &Value, bytes: &[u8]) -> String {
    let msg = answer
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            answer
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().to_string());
    msg.chars().take(400).collect()
}

/// The prompt as text: chat messages as `role: content` lines; embeddings' input.
fn prompt_text(endpoint: Endpoint, req: &serde_json::Map<String, Value>) -> String {
    let mut out = String::new();
    match endpoint {
        Endpoint::Chat => {
            for m in req
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let role = m.get("role").and_then(Value::as_str).unwrap_or("");
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(role);
                out.push_str(": ");
                match m.get("content") {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Array(parts)) => {
                        for p in parts {
                            if let Some(t) = p.get("text").and_then(Value::as_str) {
                                out.push_str(t);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Endpoint::Embeddings => match req.get("input") {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Array(items)) => {
                let texts: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                out.push_str(&texts.join("\n"));
            }
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        },
    }
    truncate_bytes(&mut out, MAX_CAPTURE_BYTES);
    out
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
}

fn usage_of(v: &Value) -> Option<(i64, i64)> {
    let u = v.get("usage")?.as_object()?;
    let prompt = u.get("prompt_tokens")?.as_i64()?;
    // Embeddings report no completion tokens.
    let completion = u
        .get("completion_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some((prompt.max(0), completion.max(0)))
}

/// Text and usage of a non-streamed answer.
fn parse_answer(endpoint: Endpoint, answer: &Value) -> (String, Option<(i64, i64)>) {
    let mut text = String::new();
    if endpoint == Endpoint::Chat {
        for c in answer
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = c.pointer("/message/content").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    truncate_bytes(&mut text, MAX_CAPTURE_BYTES);
    (text, usage_of(answer))
}

/// Parses an SSE byte stream as it passes: `data:` lines, their deltas and usage.
#[derive(Default)]
pub struct SseTee {
    line: Vec<u8>,
    pub text: String,
    pub usage: Option<(i64, i64)>,
    pub model: Option<String>,
    pub done: bool,
    pub error: Option<String>,
}

impl SseTee {
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
            } else if self.line.len() < MAX_CAPTURE_BYTES {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        let Some(data) = line.strip_prefix("data:") else {
            return;
        };
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(m) = v.get("model").and_then(Value::as_str) {
            self.model = Some(m.to_string());
        }
        if let Some(u) = usage_of(&v) {
            self.usage = Some(u);
        }
        if let Some(e) = v.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            self.error = Some(msg.chars().take(400).collect());
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                if self.text.len() + t.len() <= MAX_CAPTURE_BYTES {
                    self.text.push_str(t);
                }
            }
        }
    }
}

/// Pass the upstream's SSE body through chunk by chunk; record when it ends.
fn stream_through(ai: Ai, call: Call, mut resp: reqwest::Response) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("text/event-stream"));
    tokio::spawn(async move {
        let mut tee = SseTee::default();
        let failure: Option<String> = loop {
            tokio::select! {
                chunk = resp.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        tee.feed(&bytes);
                        if tx.send(Ok(bytes)).await.is_err() {
                            break Some("the client disconnected before the stream ended".to_string());
                        }
                    }
                    Ok(None) if tee.done => break None,
                    Ok(None) => break Some("the upstream stream ended without data: [DONE]".to_string()),
                    Err(e) => {
                        let msg = scrub(&ai, &format!("the upstream stream failed: {}", error_chain(&e)));
                        let _ = tx.send(Err(std::io::Error::other(msg.clone()))).await;
                        break Some(msg);
                    }
                },
                _ = tx.closed() => break Some("the client disconnected before the stream ended".to_string()),
            }
        };
        let failure = failure.or(tee
            .error
            .take()
            .map(|e| scrub(&ai, &format!("the upstream reported: {e}"))));
        if failure.is_some() {
            count(call.endpoint, "stream_failed");
        }
        let ev = call.event(
            tee.model.take(),
            std::mem::take(&mut tee.text),
            tee.usage,
            failure,
        );
        record_logged(&ai, ev).await;
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, ct);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tee_assembles_text_and_usage_across_chunk_boundaries() {
        let sse = concat!(
            "data: {\"model\":\"m-1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n",
            ": keep-alive\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n"
        );
        let mut t = SseTee::default();
        for piece in sse.as_bytes().chunks(5) {
            t.feed(piece);
        }
        assert_eq!(t.text, "Hello");
        assert_eq!(t.usage, Some((7, 2)));
        assert_eq!(t.model.as_deref(), Some("m-1"));
        assert!(t.done);
    }
}
