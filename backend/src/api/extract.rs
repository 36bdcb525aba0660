//! Extractors whose rejections are problem+json with the status the API promises:
//! 400 for malformed JSON, unknown fields or wrong types; 413 over the body limit;
//! 415 without a JSON content type; 422 for a string holding a NUL byte (no engine
//! stores it the same way: PostgreSQL refuses it, SQLite keeps it), checked here so every
//! JSON route answers alike on both.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rej) => return Err(json_rejection(rej)),
        };
        if let Some(at) = nul_at(&value, "body") {
            return Err(ApiError::Unprocessable(format!(
                "{at} holds a NUL character (\\u0000), which cannot be stored"
            )));
        }
        serde_path_to_error::deserialize::<_, T>(value)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(body_error(e)))
    }
}

/// An optional JSON body: empty (or only whitespace) and `null` are `T::default()`.
/// Malformed JSON is 400, a content type other than JSON 415, and anything else wrong with
/// it (not an object, an unknown member, a wrong type, a NUL) 422 naming where.
pub fn optional_json<T: DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body exceeds the configured size limit".into())
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {e}"))
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "expected request header Content-Type: application/json".into(),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    if v.is_null() {
        return Ok(T::default());
    }
    // Only an object (serde would also take a struct from an array).
    if !v.is_object() {
        return Err(ApiError::Unprocessable(
            "invalid request body: expected a JSON object (or no body)".into(),
        ));
    }
    if let Some(at) = nul_at(&v, "body") {
        return Err(ApiError::Unprocessable(format!(
            "{at} holds a NUL character (\\u0000), which cannot be stored"
        )));
    }
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| ApiError::Unprocessable(body_error(e)))
}

/// The body of a route that takes none: nothing, `null` or `{}` — anything else is refused
/// ([`optional_json`]'s answers) instead of being silently ignored.
pub struct NoBody;

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = axum::body::Bytes::from_request(req, state).await;
        optional_json::<Empty>(&headers, body).map(|_| NoBody)
    }
}

/// `invalid request body: <where>: <what>` (no `<where>` at the top level).
pub fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." {
        format!("invalid request body: {inner}")
    } else {
        format!("invalid request body: {path}: {inner}")
    }
}

/// Where the first string (or object key) holding a NUL is, e.g. `body.jobs[2].kind`.
pub fn nul_at(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_at(x, &format!("{at}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(format!("a key of {at}"))
            } else {
                nul_at(x, &format!("{at}.{k}"))
            }
        }),
        _ => None,
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::JsonDataError(e) => {
            ApiError::BadRequest(format!("invalid request body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected request header Content-Type: application/json".into(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body exceeds the configured size limit".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::BadRequest(format!("invalid query string: {}", e.body_text()))
            })
    }
}

pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::BadRequest(format!("invalid path parameter: {}", e.body_text()))
            })
    }
}

/// An optional numeric query parameter with a default: out of `range` → 422 naming it.
/// Deserialize an integer that JSON may spell as a whole float (`2812.0` is the integer
/// 2812 to JSON Schema, so a schema-valid body must not be refused for it).
pub fn whole_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let v = <serde_json::Number as serde::Deserialize>::deserialize(d)?;
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(f as i64),
        _ => Err(D::Error::custom(format!("expected an integer, got {v}"))),
    }
}

pub fn bounded(
    name: &str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::Unprocessable(format!(
            "{name} must be between {} and {}, got {v}",
            range.start(),
            range.end()
        )))
    }
}

#[cfg(test)]
mod whole_number_tests {
    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "super::whole_i64")]
        n: i64,
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        let n = |s: &str| serde_json::from_str::<T>(s).map(|t| t.n);
        assert_eq!(n(r#"{"n": 2812}"#).unwrap(), 2812);
        assert_eq!(n(r#"{"n": 2812.0}"#).unwrap(), 2812);
        assert_eq!(n(r#"{"n": -3.0}"#).unwrap(), -3);
        assert!(n(r#"{"n": 2.5}"#).is_err());
        assert!(n(r#"{"n": 1e300}"#).is_err());
        assert!(n(r#"{"n": "1"}"#).is_err());
    }
}
