//! Structured NDJSON logs, one file per area: `<data-dir>/logs/<area>.<YYYY-MM-DD>.ndjson`
//! (tracing-appender, non-blocking, rotated daily). The event's tracing *target* names
//! its area (`tracing::info!(target: "security", …)`); anything else goes to `server`.
//! Every line carries ts, level, area, msg, the event's fields and the request span's
//! request_id / tenant_id / job_run_id.
//!
//! Secrets are kept out twice over: code never logs them, and this layer redacts fields
//! named like secrets and any string that looks like an EchoPilot API key.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::model::AuditRecord;

/// Log files: `server` plus every area's own (`Area::log_files`). Events whose tracing
/// target is not one of them go to `server`.
pub fn areas() -> &'static [&'static str] {
    static FILES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FILES.get_or_init(crate::area::log_files)
}

static GUARDS: Mutex<Vec<WorkerGuard>> = Mutex::new(Vec::new());

/// Install the global subscriber (once per process; later calls are no-ops).
pub fn init(logs_dir: PathBuf, level: &str, to_stderr: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(&logs_dir)?;
    let max_level = match level {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "warn" => Level::WARN,
        "error" => Level::ERROR,
        _ => Level::INFO,
    };
    let ndjson = NdjsonLayer {
        dir: logs_dir,
        max_level,
        writers: Mutex::new(HashMap::new()),
    };
    let stderr = to_stderr.then(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},sqlx=warn,hyper=warn"))
        });
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(true)
            .compact()
            .fmt_fields(RedactedFields)
            .with_filter(filter)
    });
    let _ = tracing_subscriber::registry()
        .with(ndjson)
        .with(stderr)
        .try_init();
    Ok(())
}

/// Flush and close log files (call before the process exits).
pub fn flush() {
    GUARDS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Mirror an appended audit record into `audit.ndjson` (the database stays the source of truth).
pub fn audit_event(r: &AuditRecord) {
    tracing::info!(
        target: "audit",
        seq = r.seq,
        tenant_id = %r.tenant_id,
        actor = %r.actor,
        action = %r.action,
        audit_target = %r.target,
        outcome = %r.outcome,
        request_id = %r.request_id,
        "audit record appended"
    );
}

struct NdjsonLayer {
    dir: PathBuf,
    max_level: Level,
    writers: Mutex<HashMap<&'static str, NonBlocking>>,
}

impl NdjsonLayer {
    fn writer(&self, area: &'static str) -> Option<NonBlocking> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = writers.get(area) {
            return Some(w.clone());
        }
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(area)
            .filename_suffix("ndjson")
            .build(&self.dir)
            .ok()?;
        let (nb, guard) = tracing_appender::non_blocking(appender);
        GUARDS.lock().unwrap_or_else(|e| e.into_inner()).push(guard);
        writers.insert(area, nb.clone());
        Some(nb)
    }
}

/// Span fields kept for events inside the span.
struct SpanFields(BTreeMap<String, Value>);

struct JsonVisitor<'a>(&'a mut BTreeMap<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

impl<S> Layer<S> for NdjsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let ours = areas().contains(&meta.target()) || meta.target().starts_with("echopilot");
        // Third-party crates only log warnings and errors to the files.
        let limit = if ours { self.max_level } else { Level::WARN };
        if *meta.level() > limit {
            return;
        }
        let area: &'static str = areas()
            .iter()
            .find(|a| **a == meta.target())
            .copied()
            .unwrap_or("server");

        let mut fields = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in f {
                        fields.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));

        let mut line = Map::new();
        line.insert(
            "ts".into(),
            Value::String(crate::util::rfc3339_ms(crate::util::now_ms())),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("area".into(), Value::String(area.into()));
        if area == "server" && meta.target() != "server" {
            line.insert("target".into(), Value::String(meta.target().into()));
        }
        let msg = fields
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        line.insert("msg".into(), redact_value("message", msg));
        for key in ["request_id", "tenant_id", "job_run_id"] {
            line.entry(key.to_string()).or_insert(Value::Null);
        }
        for (k, v) in fields {
            let v = redact_value(&k, v);
            line.insert(k, v);
        }
        if let Some(mut w) = self.writer(area) {
            if let Ok(mut bytes) = serde_json::to_vec(&Value::Object(line)) {
                bytes.push(b'\n');
                let _ = w.write_all(&bytes);
            }
        }
    }
}

/// The human-readable stderr log's field formatter: every field (of events and of their
/// spans) goes through the same [`redact_value`] as the NDJSON files.
struct RedactedFields;

struct RedactingWriter<'a, 'w> {
    writer: &'a mut tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl RedactingWriter<'_, '_> {
    fn put(&mut self, name: &str, value: Value) {
        if self.result.is_err() {
            return;
        }
        let shown = match redact_value(name, value) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{sep}{shown}")
        } else {
            write!(self.writer, "{sep}{name}={shown}")
        };
    }
}

impl Visit for RedactingWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field.name(), Value::String(format!("{value:?}")));
    }
}

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for RedactedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut v = RedactingWriter {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

/// Field names whose values are secrets.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "key"
        || n == "token"
        || n == "secret"
        || n == "password"
        || n == "authorization"
        || n == "x-dash-key"
        || n.ends_with("_token")
        || n.ends_with("_secret")
        || n.ends_with("_password")
        || n == "api_key"
}

fn redact_value(name: &str, v: Value) -> Value {
    if is_secret_name(name) {
        return Value::String("[REDACTED]".into());
    }
    match v {
        Value::String(s) => Value::String(redact_secrets(&s)),
        other => other,
    }
}

/// Replace anything shaped like an API key (`ep_` + 32 or more hex chars), and the
/// token part of Telegram bot URLs, with a marker. Used on logs and on log tails.
pub fn redact_secrets(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"ep_") {
            let hex_len = bytes[i + 3..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if hex_len >= 32 {
                out.push_str("ep_[REDACTED]");
                i += 3 + hex_len;
                continue;
            }
        }
        if bytes[i..].starts_with(b"/bot") {
            // Telegram: /bot<digits>:<token>/method
            let rest = &s[i + 4..];
            if let Some(end) = rest.find('/') {
                let tok = &rest[..end];
                if tok.contains(':')
                    && tok
                        .split(':')
                        .next()
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                {
                    out.push_str("/bot[REDACTED]");
                    i += 4 + end;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_and_bot_tokens() {
        let key = format!("ep_{}", "ab".repeat(32));
        let s = format!("got {key} and https://api.telegram.org/bot123:AAbbCC/sendMessage");
        let r = redact_secrets(&s);
        assert!(!r.contains(&key));
        assert!(!r.contains("AAbbCC"));
        assert!(r.contains("ep_[REDACTED]") && r.contains("/bot[REDACTED]/sendMessage"));
        assert_eq!(redact_secrets("ep_short é"), "ep_short é");
        assert_eq!(
            redact_value("telegram_bot_token", Value::String("x".into())),
            Value::String("[REDACTED]".into())
        );
        assert_eq!(
            redact_value("key_id", Value::String("key_1".into())),
            Value::String("key_1".into())
        );
    }

    #[test]
    fn stderr_fields_are_redacted_like_the_files() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .compact()
            .fmt_fields(RedactedFields);
        let key = format!("ep_{}", "cd".repeat(32));
        let path = format!("/api/v1/keys/{key}");
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("request", path = %path);
            span.in_scope(|| tracing::info!(token = "hunter2", "request finished"));
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(&key), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("path=/api/v1/keys/ep_[REDACTED]"), "{text}");
        assert!(text.contains("request finished token=[REDACTED]"), "{text}");
    }
}
