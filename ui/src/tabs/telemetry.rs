//! Telemetry tab: component status list (text labels), sparklines of CPU, memory, queue depth
//! and API p95 latency from the last hour of samples, the audit chain head and the status
//! summary counters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::App;
use crate::components::badge::badge;
use crate::components::sparkline::Spark;
use crate::components::{empty_message, freshness, panel, Component, Freshness};
use crate::event::Resource;
use crate::model::Metric;
use crate::util::{ellipsize, fmt_age, fmt_count};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
    let route = Resource::Telemetry.route();
    let f = freshness(&app.telemetry, route, app.now);
    let block = panel("Components", &f, false, theme);
    let width = block.inner(area).width as usize;
    let mut lines: Vec<Line> = Vec::new();
    match &app.telemetry.data {
        None => lines.push(Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        ))),
        Some(t) => {
            if let Some(o) = &t.overall {
                lines.push(Line::from(vec![
                    Span::styled("Overall    ", theme.base.add_modifier(Modifier::BOLD)),
                    badge(o, theme),
                    Span::styled(format!(" {o}"), theme.muted),
                ]));
            }
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
    let route = Resource::History.route();
    let f = freshness(&app.history, route, app.now);
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
        let values: &[f64] = app
            .history
            .data
            .as_ref()
            .map(|h| h.series[i].as_slice())
            .unwrap_or(&[]);
        let empty = match &app.history.data {
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
    let route = Resource::Summary.route();
    let f = freshness(&app.summary, route, app.now);
    let block = panel("Audit & summary", &f, false, theme);
    let mut lines: Vec<Line> = Vec::new();
    match &app.audit.data {
        Some(a) => {
            let root = if a.root.len() > 12 {
                format!("{}…", &a.root[..12])
            } else {
                a.root.clone()
            };
            let mut s = format!("Audit chain {} records · root {root}", fmt_count(a.size));
            if let Some(h) = &a.head_action {
                s.push_str(&format!(" · head {h}"));
            }
            if let Some(ts) = &a.head_ts {
                s.push_str(&format!(" {}", crate::util::rel_time(Some(ts), app.now)));
            }
            if app.audit.is_stale() {
                s.push_str(" [STALE]");
            }
            lines.push(Line::from(s));
        }
        None => lines.push(Line::from(Span::styled(
            empty_message(
                &freshness(&app.audit, Resource::Audit.route(), app.now),
                Resource::Audit.route(),
            ),
            theme.muted,
        ))),
    }
    match &app.summary.data {
        Some(s) => {
            let parts: Vec<String> = s
                .fields
                .iter()
                .filter(|(k, _)| !k.starts_with("tenants"))
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
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
