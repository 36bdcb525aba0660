//! One error type for the whole API; every variant becomes an RFC 9457 problem+json response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::model::Problem;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{detail}")]
    RateLimited { detail: String, retry_after_s: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A stored row that does not decode (corrupt JSON, unknown enum name): 500, and the
    /// detail names table, column and row (never the stored content) so an operator can
    /// find and repair it.
    #[error("stored data is corrupt: {0}")]
    CorruptData(String),
    /// A module off for the caller's tenant (`scope` "tenant") or the fleet ("fleet"):
    /// 404 with `module` and `scope` members so clients can tell it from a missing route.
    #[error("{detail}")]
    ModuleDisabled {
        module: String,
        scope: &'static str,
        detail: String,
    },
    /// Unexpected failure; the detail shown to clients is generic, the cause is logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ModuleDisabled { .. } => StatusCode::NOT_FOUND,
            ApiError::Internal(_) | ApiError::CorruptData(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    fn public_detail(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "the server failed to handle this request; see the server log for this request id"
                    .to_string()
            }
            other => other.to_string(),
        }
    }
}

/// Slug used in the problem `type` URI for a status code.
pub fn problem_type(status: StatusCode) -> String {
    let slug = match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        408 => "request-timeout",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "unprocessable-entity",
        429 => "rate-limited",
        503 => "unavailable",
        _ => "error",
    };
    format!("https://echopilot.dev/problems/{slug}")
}

/// Build a problem+json response. `instance` is filled in by the observe middleware
/// (it knows the request path and id), so handlers need not care.
pub fn problem_response(status: StatusCode, detail: String) -> Response {
    let body = Problem {
        type_: problem_type(status),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        instance: String::new(),
        request_id: None,
        module: None,
        scope: None,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(target: "server", error = %cause, "internal error")
            }
            ApiError::CorruptData(cause) => {
                tracing::error!(target: "server", error = %cause, "corrupt stored row")
            }
            _ => {}
        }
        if let ApiError::ModuleDisabled {
            module,
            scope,
            detail,
        } = &self
        {
            let body = Problem {
                type_: "https://echopilot.dev/problems/module-disabled".into(),
                title: "Module disabled".into(),
                status: 404,
                detail: detail.clone(),
                instance: String::new(),
                request_id: None,
                module: Some(module.clone()),
                scope: Some(scope.to_string()),
            };
            let mut resp = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            // The gate answered, no handler ran: never an idempotent answer to replay.
            resp.extensions_mut()
                .insert(crate::api::middleware::NotExecuted);
            return resp;
        }
        let mut resp = problem_response(self.status(), self.public_detail());
        if let ApiError::RateLimited { retry_after_s, .. } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => {
                ApiError::Unavailable("database is busy; retry shortly".into())
            }
            sqlx::Error::ColumnDecode { index, source } => {
                ApiError::CorruptData(format!("{index}: {source}"))
            }
            sqlx::Error::Decode(source) => ApiError::CorruptData(source.to_string()),
            sqlx::Error::Database(db) => match input_rejection(db.code().as_deref()) {
                Some(what) => ApiError::Unprocessable(format!(
                    "the database refused a value of this request ({what})"
                )),
                None => ApiError::Internal(format!("database: {e}")),
            },
            _ => ApiError::Internal(format!("database: {e}")),
        }
    }
}

/// SQLSTATEs that mean "this input cannot be stored" rather than "the server failed":
/// class 22 (data exception: a NUL byte or invalid byte sequence, a number out of range, a
/// string too long, …) and 54000 (program limit: e.g. a value too large for an index row).
/// Such a request is the client's to fix, so it is a 422 — never a 5xx, never counted as
/// a server error. The database's own message is not passed on (it can quote the value).
fn input_rejection(code: Option<&str>) -> Option<&'static str> {
    let code = code?;
    Some(match code {
        "22021" | "22P05" => "a character the database cannot store, such as a NUL byte",
        "22003" => "a number out of range",
        "22001" => "a string too long",
        "54000" => "a value too large to index",
        c if c.starts_with("22") => "a value of the wrong form",
        _ => return None,
    })
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if let Some(db) = e.downcast_ref::<sqlx::Error>() {
            if crate::store::is_corrupt_row(db) {
                return ApiError::CorruptData(db.to_string());
            }
            if let sqlx::Error::Database(d) = db {
                if let Some(what) = input_rejection(d.code().as_deref()) {
                    return ApiError::Unprocessable(format!(
                        "the database refused a value of this request ({what})"
                    ));
                }
            }
        }
        ApiError::Internal(format!("{e:#}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
