//! Telemetry tab: component status list (text labels), sparklines of CPU, memory, queue depth
//! and API p95 latency from the last hour of samples, the audit chain head and the status
//! summary counters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use std::any::Any;

use super::Tab;
use crate::app::App;
use crate::cache::{Res, Resource};
use crate::components::badge::badge;
use crate::components::sparkline::Spark;
use crate::components::{empty_message, freshness, panel, Component, Freshness};
use crate::model::{HistoryView, Metric, Section, Summary};
use crate::resources::{AUDIT, TELEMETRY};
use crate::util::{
    fmt_age, fmt_bytes, fmt_count, fmt_duration, fmt_duration_ms, fmt_num, fmt_rate, rel_time,
    wrap_words,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The last hour of samples, for the sparklines.
pub const HISTORY: Res<HistoryView> = Res::new(
    "ops.telemetry.history",
    "/api/v1/ops/telemetry/history?minutes=60",
    10,
);
/// Per-area counters (and which modules are disabled).
pub const SUMMARY: Res<Summary> = Res::new("status.summary", "/api/v1/status/summary", 15);

pub struct TelemetryTab;

pub fn tab() -> Box<dyn Tab> {
    Box::new(TelemetryTab)
}

impl Tab for TelemetryTab {
    fn title(&self) -> &'static str {
        "Telemetry"
    }

    fn resources(&self) -> Vec<Resource> {
        vec![TELEMETRY.res, HISTORY.res, SUMMARY.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    components(frame, left, app);
    let [s0, s1, s2, s3, rest] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(right);
    sparks(frame, [s0, s1, s2, s3], app);
    audit_summary(frame, rest, app);
}

/// Problems first (red, then yellow), then the rest, each by name.
fn severity(status: &str) -> u8 {
    match status {
        "red" | "fail" => 0,
        "yellow" | "warn" => 1,
        "green" | "ok" => 3,
        _ => 2,
    }
}

fn components(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = TELEMETRY.res.route;
    let remote = app.cache.remote(TELEMETRY);
    let f = freshness(&remote, route, app.now);
    let block = panel("Components", &f, false, theme);
    let width = block.inner(area).width as usize;
    let mut lines: Vec<Line> = Vec::new();
    match remote.data {
        None => lines.extend(muted_lines(&empty_message(&f, route), width, app)),
        Some(t) => {
            let o = &t.report.overall;
            lines.push(Line::from(vec![
                Span::styled("Overall    ", theme.base.add_modifier(Modifier::BOLD)),
                badge(o, theme),
                Span::styled(format!(" {o}"), theme.muted),
            ]));
            if t.report.components.is_empty() {
                lines.push(Line::from(Span::styled(
                    "The backend reported no components.",
                    theme.muted,
                )));
            }
            let mut comps: Vec<_> = t.report.components.iter().collect();
            comps.sort_by_key(|(name, c)| (severity(&c.status), name.to_string()));
            let name_w = comps.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            // One card per component: badge, name, then why — the reason it is not green
            // first, in words and units — wrapped under the name, never cut.
            for (name, c) in comps {
                let empty = Map::new();
                let details = c.details.as_object().unwrap_or(&empty);
                let why = card(name, details, app.now);
                // Narrow panel: the text goes under the name, two columns in, instead of in
                // a column too thin to read.
                let column = 7 + name_w + 1;
                let narrow = width.saturating_sub(column) < 32;
                let indent = if narrow { 2 } else { column };
                let avail = width.saturating_sub(indent).max(10);
                let mut pieces = wrap_words(&why, avail).into_iter();
                let first = if narrow {
                    String::new()
                } else {
                    pieces.next().unwrap_or_default()
                };
                let good = severity(&c.status) >= 2;
                let why_style = if good { theme.muted } else { theme.base };
                let b = badge(&c.status, theme);
                let pad = 7usize.saturating_sub(b.content.chars().count());
                lines.push(Line::from(vec![
                    b,
                    Span::raw(" ".repeat(pad)),
                    Span::styled(
                        format!("{name:<name_w$} "),
                        theme.base.add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(first, why_style),
                ]));
                for p in pieces {
                    lines.push(Line::from(vec![
                        Span::raw(" ".repeat(indent)),
                        Span::styled(p, why_style),
                    ]));
                }
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A panel's message (no data yet, retrying…) wrapped to the panel, in the muted colour.
fn muted_lines(text: &str, width: usize, app: &App) -> Vec<Line<'static>> {
    wrap_words(text, width.max(10))
        .into_iter()
        .map(|l| Line::from(Span::styled(l, app.theme.muted)))
        .collect()
}

fn num(d: &Map<String, Value>, k: &str) -> Option<f64> {
    d.get(k).and_then(Value::as_f64)
}

fn text<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// One component's card text: what matters first (why it is not green), then its key
/// figures in units. Components the console does not know get their `reason` (if any) and
/// their scalar details.
pub fn card(name: &str, d: &Map<String, Value>, now: DateTime<Utc>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let reason = text(d, "reason").map(str::to_string);
    match name {
        "queue" => {
            if d.get("paused").and_then(Value::as_bool) == Some(true) {
                parts.push("PAUSED: nothing is claimed until resume_queue".into());
            }
            let depth = d.get("depth").and_then(Value::as_object);
            let n = |k: &str| {
                depth
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            };
            if n("dead") > 0 {
                parts.push(format!("{} dead", n("dead")));
            }
            if n("failed") > 0 {
                parts.push(format!("{} failed (retry due)", n("failed")));
            }
            if let Some(age) = num(d, "oldest_ready_age_s").filter(|a| *a >= 60.0) {
                parts.push(format!(
                    "oldest ready job waits {}",
                    fmt_duration(age as i64)
                ));
            }
            if d.get("local_pool_healthy").and_then(Value::as_bool) == Some(false) {
                parts.push("this replica's worker pool is not healthy".into());
            }
            parts.push(format!("{} queued · {} running", n("queued"), n("running")));
            if let Some(w) = num(d, "workers") {
                parts.push(format!("{} workers", fmt_num(w)));
            }
            if let Some(t) = num(d, "throughput_per_min") {
                parts.push(format!("{} jobs/min", fmt_num(t)));
            }
        }
        "system" => {
            // Each use with its percentage: whatever is worst leads.
            let mut uses: Vec<(f64, String)> = Vec::new();
            if let Some(p) = num(d, "disk_pct") {
                let mut s = format!("disk {}% used", fmt_num(p));
                if let Some(f) = num(d, "disk_free_bytes") {
                    s.push_str(&format!(" ({} free", fmt_bytes(f)));
                    if let Some(m) = text(d, "disk_mount") {
                        s.push_str(&format!(" on {m}"));
                    }
                    s.push(')');
                }
                uses.push((p, s));
            }
            if let Some(c) = num(d, "cpu_pct") {
                let cpus = num(d, "cpus").map(|n| format!(" of {} CPUs", fmt_num(n)));
                uses.push((
                    c,
                    format!("cpu {}%{}", fmt_num(c), cpus.unwrap_or_default()),
                ));
            }
            match (num(d, "mem_used_bytes"), num(d, "mem_total_bytes")) {
                (Some(u), Some(t)) => {
                    let pct = num(d, "mem_pct").unwrap_or(u / t.max(1.0) * 100.0);
                    uses.push((
                        pct,
                        format!(
                            "memory {} of {} ({}%)",
                            fmt_bytes(u),
                            fmt_bytes(t),
                            fmt_num(pct)
                        ),
                    ));
                }
                _ => {
                    if let Some(m) = num(d, "mem_pct") {
                        uses.push((m, format!("memory {}%", fmt_num(m))));
                    }
                }
            }
            uses.sort_by(|a, b| b.0.total_cmp(&a.0));
            parts.extend(uses.into_iter().map(|(_, s)| s));
        }
        "alerts" => {
            let warn = num(d, "last_hour_warning").unwrap_or(0.0);
            let crit = num(d, "last_hour_critical").unwrap_or(0.0);
            let undelivered = num(d, "last_hour_undelivered").unwrap_or(0.0);
            if crit + warn > 0.0 {
                let mut s = format!(
                    "{} critical, {} warning in the last hour",
                    fmt_num(crit),
                    fmt_num(warn)
                );
                if let Some(l) = d.get("latest").and_then(Value::as_object) {
                    if let Some(t) = l.get("title").and_then(Value::as_str) {
                        s.push_str(&format!(": latest \"{t}\""));
                    }
                    if let Some(ts) = l.get("ts").and_then(Value::as_str) {
                        s.push_str(&format!(" {}", rel_time(Some(ts), now)));
                    }
                }
                parts.push(s);
            } else {
                parts.push("no alert in the last hour".into());
            }
            if undelivered > 0.0 {
                parts.push(format!("{} not delivered", fmt_num(undelivered)));
            }
            match d.get("channels").and_then(Value::as_array) {
                Some(c) if c.is_empty() => parts.push("no channel configured".into()),
                Some(c) => parts.push(format!(
                    "channels {}",
                    c.iter()
                        .map(|v| v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                None => {}
            }
            if let Some(n) = num(d, "last_24h") {
                parts.push(format!("{} in 24 h", fmt_num(n)));
            }
        }
        "api" => {
            if let Some(e) = num(d, "error_rate").filter(|e| *e > 0.0) {
                parts.push(format!("{}% 5xx", fmt_num(e * 100.0)));
            }
            if let Some(p) = num(d, "p95_ms") {
                parts.push(format!("p95 {} ms", fmt_num(p)));
            }
            if let Some(p) = num(d, "p50_ms") {
                parts.push(format!("p50 {} ms", fmt_num(p)));
            }
            if let (Some(r), Some(w)) = (num(d, "requests"), num(d, "window_s")) {
                parts.push(format!(
                    "{} requests in {} ({})",
                    fmt_num(r),
                    fmt_duration(w as i64),
                    fmt_rate(r / w.max(1.0))
                ));
            }
            if let Some(c) = num(d, "client_error_rate").filter(|c| *c > 0.0) {
                parts.push(format!("{}% 4xx", fmt_num(c * 100.0)));
            }
        }
        "database" => {
            if let Some(x) = text(d, "dialect") {
                parts.push(x.to_string());
            }
            if let Some(l) = num(d, "latency_ms") {
                parts.push(format!("ping {} ms", fmt_num(l)));
            }
            if let (Some(i), Some(s)) = (num(d, "pool_idle"), num(d, "pool_size")) {
                parts.push(format!("pool {} of {} idle", fmt_num(i), fmt_num(s)));
            }
        }
        "audit" => {
            if let Some(r) = num(d, "records") {
                parts.push(format!("{} records", fmt_count(r.max(0.0) as u64)));
            }
            if let Some(t) = text(d, "last_record_at") {
                parts.push(format!("last {}", rel_time(Some(t), now)));
            }
        }
        "scheduler" => {
            if let Some(f) = d.get("last_run_failed").and_then(Value::as_array) {
                if !f.is_empty() {
                    let names: Vec<String> = f
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect();
                    parts.push(format!("last run failed: {}", names.join(", ")));
                }
            }
            if d.get("running").and_then(Value::as_bool) == Some(false) {
                parts.push("STOPPED: no job runs on schedule".into());
            }
            if let (Some(e), Some(j)) = (num(d, "enabled"), num(d, "jobs")) {
                parts.push(format!("{} of {} jobs enabled", fmt_num(e), fmt_num(j)));
            }
            if let Some(n) = num(d, "in_progress").filter(|n| *n > 0.0) {
                parts.push(format!("{} running", fmt_num(n)));
            }
            if let Some(t) = text(d, "next_run") {
                parts.push(format!("next {}", crate::util::next_time(Some(t), now)));
            }
            match (
                d.get("leader").and_then(Value::as_bool),
                text(d, "replica_id"),
            ) {
                (Some(true), Some(r)) => parts.push(format!("leader {r}")),
                (Some(false), Some(r)) => parts.push(format!("follower {r}")),
                _ => {}
            }
        }
        "dr" => {
            if let Some(r) = &reason {
                parts.push(r.clone());
            }
            if let Some(v) = text(d, "last_verify") {
                let when = text(d, "last_verify_at")
                    .map(|t| format!(" {}", rel_time(Some(t), now)))
                    .unwrap_or_default();
                parts.push(format!("last rehearsal {v}{when}"));
            }
            if let Some(ms) = num(d, "last_restore_ms") {
                parts.push(format!(
                    "restore took {}",
                    crate::util::fmt_duration_ms(ms as i64)
                ));
            }
            if let Some(n) = num(d, "backups") {
                parts.push(format!("{} backups", fmt_num(n)));
            }
            return parts.join(" · ");
        }
        _ => {
            if let Some(r) = &reason {
                parts.push(r.clone());
            }
            for (k, v) in d {
                if matches!(k.as_str(), "reason" | "latency_ms" | "light") {
                    continue;
                }
                let shown = match v {
                    Value::Null | Value::Object(_) => continue,
                    Value::Array(a) => crate::model::list_text(a),
                    other => crate::model::scalar_text(other),
                };
                parts.push(summary_field(k, &shown, now));
            }
            return parts.join(" · ");
        }
    }
    // A component that explains itself (`reason`) leads with its own words.
    if let Some(r) = reason {
        parts.insert(0, r);
    }
    parts.join(" · ")
}

fn sparks(frame: &mut Frame, areas: [Rect; 4], app: &App) {
    let theme = &app.theme;
    let route = HISTORY.res.route;
    let history = app.cache.remote(HISTORY);
    let f = freshness(&history, route, app.now);
    let note = match &f {
        Freshness::Stale { age_s, reason } => Some(Span::styled(
            format!("[STALE {}] {reason} ", fmt_age(*age_s)),
            theme.warn,
        )),
        Freshness::Failed { reason } => {
            Some(Span::styled(format!("[NO DATA] {reason} "), theme.fail))
        }
        _ => None,
    };
    let waiting = match &f {
        Freshness::Failed { .. } => "Retrying with backoff.".to_string(),
        _ => empty_message(&f, route),
    };
    for (i, (m, rect)) in Metric::ALL.iter().zip(areas).enumerate() {
        let values: &[f64] = history.data.map(|h| h.series[i].as_slice()).unwrap_or(&[]);
        let stamps: &[i64] = history.data.map(|h| h.stamps[i].as_slice()).unwrap_or(&[]);
        let empty = match history.data {
            Some(h) if h.samples == 0 => "No samples in the last 60 minutes yet.",
            Some(_) => "This metric is not in the telemetry history samples.",
            None => waiting.as_str(),
        };
        Spark {
            metric: *m,
            values,
            stamps,
            note: note.clone(),
            empty,
        }
        .render(frame, rect, theme);
    }
}

fn audit_summary(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = SUMMARY.res.route;
    let summary = app.cache.remote(SUMMARY);
    let audit = app.cache.remote(AUDIT);
    let f = freshness(&summary, route, app.now);
    let block = panel("Audit & summary", &f, false, theme);
    let mut lines: Vec<Line> = Vec::new();
    match audit.data {
        Some(a) => {
            let root = if a.root.len() > 12 {
                format!("{}…", &a.root[..12])
            } else {
                a.root.clone()
            };
            let mut s = format!(
                "Audit chain {} records · root {root}",
                fmt_count(a.size.max(0) as u64)
            );
            if let Some(h) = &a.head {
                s.push_str(&format!(
                    " · head {} {}",
                    h.action,
                    crate::util::rel_time(Some(&h.ts), app.now)
                ));
            }
            if audit.is_stale() {
                s.push_str(" [STALE]");
            }
            let width = block.inner(area).width as usize;
            lines.extend(wrap_words(&s, width.max(10)).into_iter().map(Line::from));
        }
        None => lines.extend(muted_lines(
            &empty_message(
                &freshness(&audit, AUDIT.res.route, app.now),
                AUDIT.res.route,
            ),
            block.inner(area).width as usize,
            app,
        )),
    }
    match summary.data {
        Some(s) => {
            // One line per area (wrapped under its name): disabled modules say so, the
            // others list their counters in words and units.
            let width = block.inner(area).width as usize;
            let name_w = s.sections.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            let avail = width.saturating_sub(name_w + 1).max(10);
            let mut sections: Vec<&(String, Section)> = s.sections.iter().collect();
            sections.sort_by_key(|(_, sec)| !matches!(sec, Section::Disabled { .. }));
            for (name, section) in sections {
                let (text, style) = match section {
                    Section::Disabled { fleet: false } => {
                        ("disabled for this tenant".to_string(), theme.warn)
                    }
                    Section::Disabled { fleet: true } => {
                        ("turned off fleet-wide".to_string(), theme.warn)
                    }
                    Section::Fields(fields) => (
                        fields
                            .iter()
                            .map(|(k, v)| summary_field(k, v, app.now))
                            .collect::<Vec<_>>()
                            .join(" · "),
                        theme.base,
                    ),
                };
                for (i, piece) in wrap_words(&text, avail).into_iter().enumerate() {
                    let head = if i == 0 { name.as_str() } else { "" };
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!("{head:<name_w$} "),
                            theme.muted.add_modifier(Modifier::BOLD),
                        ),
                        Span::styled(piece, style),
                    ]));
                }
            }
        }
        None => lines.extend(muted_lines(
            &empty_message(&f, route),
            block.inner(area).width as usize,
            app,
        )),
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A counter or detail as words: `events_24h 12` → `events 12 (24 h)`, bytes and durations
/// in units, times as ages, booleans as yes/no (the summary panel and unknown cards).
fn summary_field(key: &str, value: &str, now: DateTime<Utc>) -> String {
    let (base, window) = match key.rsplit_once('_') {
        Some((b, w @ ("24h" | "1h" | "7d" | "today"))) => (b, Some(w)),
        _ => (key, None),
    };
    let unit = ["_bytes", "_secs", "_s", "_ms", "_at"]
        .into_iter()
        .find(|u| base.ends_with(u));
    let shown = match (value, unit) {
        ("true", _) => "yes".to_string(),
        ("false", _) => "no".to_string(),
        (v, Some(u)) => match (v.parse::<f64>(), u) {
            (Ok(n), "_bytes") => fmt_bytes(n),
            (Ok(n), "_ms") => fmt_duration_ms(n as i64),
            (_, "_at") => rel_time(Some(v), now),
            (Ok(n), _) => fmt_duration(n as i64),
            (Err(_), _) => v.to_string(),
        },
        // Keys and hashes: enough to recognise, not a whole row of hex.
        (v, None) if v.len() > 24 && v.chars().all(|c| c.is_ascii_hexdigit()) => {
            format!("{}…", &v[..12])
        }
        (v, None) => v.to_string(),
    };
    let label = base
        .strip_suffix(unit.unwrap_or(""))
        .unwrap_or(base)
        .replace(['_', '.'], " ");
    match window {
        Some("24h") => format!("{label} {shown} (24 h)"),
        Some("1h") => format!("{label} {shown} (1 h)"),
        Some("7d") => format!("{label} {shown} (7 d)"),
        Some(w) => format!("{label} {shown} ({w})"),
        None => format!("{label} {shown}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{card, summary_field};

    #[test]
    fn summary_fields_read_as_words_and_units() {
        assert_eq!(
            summary_field("last_scan_age_s", "75", now()),
            "last scan age 1m 15s"
        );
        assert_eq!(
            summary_field("last_restore_ms", "640", now()),
            "last restore 640 ms"
        );
        assert_eq!(summary_field("rollup_lag_secs", "-", now()), "rollup lag -");
        assert_eq!(summary_field("paused", "false", now()), "paused no");
        assert_eq!(summary_field("events_24h", "12", now()), "events 12 (24 h)");
        assert_eq!(
            summary_field("evidence_public_key", &"ab".repeat(32), now()),
            "evidence public key abababababab…"
        );
        assert_eq!(summary_field("targets", "none", now()), "targets none");
        assert_eq!(
            summary_field("last_scan_at", "2026-05-01T11:59:00Z", now()),
            "last scan 1m ago"
        );
    }
    use serde_json::json;

    fn now() -> chrono::DateTime<chrono::Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_card_leads_with_why() {
        let q = json!({"paused": true, "depth": {"dead": 7, "queued": 2, "running": 0},
                       "workers": 4, "throughput_per_min": 0});
        let text = card("queue", q.as_object().unwrap(), now());
        assert!(text.starts_with("PAUSED"), "{text}");
        assert!(text.contains("7 dead"), "{text}");
        let s = json!({"cpu_pct": 12.0, "disk_pct": 91.0, "disk_free_bytes": 24_501_329_920u64,
                       "mem_pct": 5.6, "mem_used_bytes": 1_422_413_824u64,
                       "mem_total_bytes": 25_276_502_016u64});
        let text = card("system", s.as_object().unwrap(), now());
        assert!(text.starts_with("disk 91% used (23 GB free)"), "{text}");
        assert!(text.contains("memory 1.3 GB of 24 GB (5.6%)"), "{text}");
        // An unknown component: its own reason first, units from the key names.
        let x = json!({"reason": "certificate expires in 3 days", "size_bytes": 2048,
                       "checked_at": "2026-05-01T11:59:00Z", "latency_ms": 3});
        let text = card("tls", x.as_object().unwrap(), now());
        assert_eq!(
            text,
            "certificate expires in 3 days · checked 1m ago · size 2.0 KB"
        );
    }
}
