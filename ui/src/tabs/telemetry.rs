//! Telemetry tab: component status list (text labels), sparklines of CPU, memory, queue depth
//! and API p95 latency from the last hour of samples, the audit chain head and the status
//! summary counters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
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
use crate::util::{ellipsize, fmt_age, fmt_count};

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

fn components(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = TELEMETRY.res.route;
    let remote = app.cache.remote(TELEMETRY);
    let f = freshness(&remote, route, app.now);
    let block = panel("Components", &f, false, theme);
    let width = block.inner(area).width as usize;
    let mut lines: Vec<Line> = Vec::new();
    match remote.data {
        None => lines.push(Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        ))),
        Some(t) => {
            let o = &t.report.overall;
            lines.push(Line::from(vec![
                Span::styled("Overall    ", theme.base.add_modifier(Modifier::BOLD)),
                badge(o, theme),
                Span::styled(format!(" {o}"), theme.muted),
            ]));
            if t.components.is_empty() {
                lines.push(Line::from(Span::styled(
                    "The backend reported no components.",
                    theme.muted,
                )));
            }
            for c in &t.components {
                lines.push(Line::from(vec![
                    badge(&c.status, theme),
                    Span::raw(" "),
                    Span::styled(c.name.clone(), theme.base.add_modifier(Modifier::BOLD)),
                    Span::styled(format!(" ({})", c.status), theme.muted),
                ]));
                if !c.details.is_empty() {
                    let d: Vec<String> =
                        c.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    lines.push(Line::from(Span::styled(
                        format!("  {}", ellipsize(&d.join(" · "), width.saturating_sub(2))),
                        theme.muted,
                    )));
                }
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
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
        let empty = match history.data {
            Some(h) if h.samples == 0 => "No samples in the last 60 minutes yet.",
            Some(_) => "This metric is not in the telemetry history samples.",
            None => waiting.as_str(),
        };
        Spark {
            metric: *m,
            values,
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
            lines.push(Line::from(s));
        }
        None => lines.push(Line::from(Span::styled(
            empty_message(
                &freshness(&audit, AUDIT.res.route, app.now),
                AUDIT.res.route,
            ),
            theme.muted,
        ))),
    }
    match summary.data {
        Some(s) => {
            // Disabled modules first: they explain missing counters.
            let mut parts: Vec<String> = Vec::new();
            for (name, section) in &s.sections {
                match section {
                    Section::Disabled { fleet: false } => {
                        parts.push(format!("{name} disabled for this tenant"))
                    }
                    Section::Disabled { fleet: true } => {
                        parts.push(format!("{name} turned off fleet-wide"))
                    }
                    Section::Fields(_) => {}
                }
            }
            for (name, section) in &s.sections {
                if let Section::Fields(fields) = section {
                    parts.extend(fields.iter().map(|(k, v)| format!("{name}.{k} {v}")));
                }
            }
            lines.push(Line::from(Span::styled(parts.join(" · "), theme.base)));
        }
        None => lines.push(Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        ))),
    }
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}
