//! Top-level drawing: header, tab line, the current tab, status line, key bar, dialogs.
//! `draw` only reads the [`App`]; it never blocks or mutates.

use ratatui::backend::TestBackend;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::{Frame, Terminal};

use crate::app::App;
use crate::commands::key_bar;
use crate::components::badge::badge;
use crate::components::keybar::KeyBar;
use crate::components::Component;
use crate::resources::{AUDIT, TELEMETRY};
use crate::tabs;
use crate::util::fmt_age;

/// Smallest usable terminal.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    app.frame_size.set((area.width, area.height));
    frame.render_widget(Block::default().style(app.theme.base), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, app);
        return;
    }
    let [header, tabline, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);
    draw_tabs(frame, tabline, app);
    tabs::draw(frame, body, app);
    draw_status(frame, status, app);
    let entries = key_bar(&app.context());
    KeyBar { entries: &entries }.render(frame, keys, &app.theme);
    crate::popups::draw(frame, body, app);
}

fn too_small(frame: &mut Frame, area: Rect, app: &App) {
    let msg = vec![
        Line::from(Span::styled("EchoPilot console", app.theme.accent)),
        Line::from(format!(
            "Terminal too small: {}x{}, needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from("Enlarge the window; q quits."),
    ];
    let y = area.height.saturating_sub(3) / 2;
    let rect = Rect {
        y: area.y + y,
        height: area.height.saturating_sub(y).min(3),
        ..area
    };
    frame.render_widget(
        Paragraph::new(msg)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rect,
    );
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut spans = vec![
        Span::styled(" EchoPilot OS ", theme.key),
        Span::raw(" "),
        Span::styled(app.config.base_url.clone(), theme.muted),
    ];
    if let Some(t) = &app.tenant {
        spans.push(Span::raw(format!("  tenant {t}")));
    }
    if app.config.demo {
        spans.push(Span::styled("  [DEMO: synthetic activity]", theme.warn));
    }
    // The overall status only while it is current: a last-known WARN must not pass for now.
    if app.auth_rejected_since.is_some() {
        spans.push(Span::styled("  [401 KEY REJECTED]", theme.fail));
    } else if app.unreachable_since.is_some() {
        spans.push(Span::styled("  [OFFLINE]", theme.fail));
    } else if let Some(t) = app.data(TELEMETRY) {
        spans.push(Span::raw("  overall "));
        spans.push(badge(&t.report.overall, theme));
        if app.cache.meta(TELEMETRY.res).failures > 0 {
            spans.push(Span::styled(" [STALE]", theme.warn));
        }
    }
    // A paused queue is said everywhere: nothing runs until someone resumes it.
    let paused = app
        .data(TELEMETRY)
        .and_then(|t| t.report.components.get("queue"))
        .and_then(|q| q.details.get("paused"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if paused {
        spans.push(Span::styled("  [QUEUE PAUSED]", theme.warn));
    }
    if let Some(a) = app.data(AUDIT) {
        spans.push(Span::styled(format!("  audit #{}", a.size), theme.muted));
    }
    if app.config.readonly {
        spans.push(Span::styled("  [READ-ONLY]", theme.warn));
    }
    if app.paused {
        spans.push(Span::styled("  [UPDATES PAUSED: p]", theme.warn));
    } else if app.cache.refresh_scale > 1 {
        spans.push(Span::styled(
            format!("  refresh ×{} slower", app.cache.refresh_scale),
            theme.muted,
        ));
    }
    if app.utc {
        spans.push(Span::styled("  UTC", theme.muted));
    }
    // Too narrow for everything: the URL (known to whoever started the console) gives way
    // before the status does.
    let width: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    if width > area.width as usize {
        spans.drain(1..3);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Each tab's label: `N Title`, the current one in brackets (visible without colour).
fn tab_label(app: &App, i: usize) -> String {
    let label = format!("{} {}", i + 1, app.tabs[i].title());
    if i == app.current {
        format!("[{label}]")
    } else {
        label
    }
}

/// Where each tab's label sits on the tab line (x from, x to, exclusive), for drawing and
/// for mouse clicks: labels apart by ` │ `, or by `│` when that does not fit.
pub fn tab_positions(app: &App, width: u16) -> (Vec<(u16, u16)>, &'static str) {
    let labels: Vec<u16> = (0..app.tabs.len())
        .map(|i| tab_label(app, i).chars().count() as u16)
        .collect();
    let gaps = labels.len().saturating_sub(1) as u16;
    let sep = if labels.iter().sum::<u16>() + 3 * gaps < width {
        " │ "
    } else {
        "│"
    };
    // One column of margin on the left, like the header.
    let mut x = 1u16;
    let mut out = Vec::new();
    for (i, w) in labels.iter().enumerate() {
        if i > 0 {
            x += sep.chars().count() as u16;
        }
        out.push((x, x + w));
        x += w;
    }
    (out, sep)
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let (_, sep) = tab_positions(app, area.width);
    let mut spans = vec![Span::raw(" ")];
    for (i, t) in app.tabs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(sep, theme.border));
        }
        let label = tab_label(app, i);
        let style = if i == app.current {
            theme.selected.add_modifier(Modifier::BOLD)
        } else if tabs::unavailable(t.as_ref(), &app.cache) {
            // Not installed here or disabled: dimmed, still reachable (it says why).
            theme.muted.add_modifier(Modifier::DIM)
        } else {
            theme.base
        };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut spans = Vec::new();
    // A flash message goes first: it is what the operator just caused and must read
    // whole, even at 80 columns; freshness follows.
    if let Some((msg, _)) = &app.notice {
        spans.push(Span::styled(msg.clone(), theme.accent));
        spans.push(Span::raw("  "));
    }
    if app.auth_rejected_since.is_some() {
        spans.push(Span::styled(
            "[401] the backend rejects this key: check --key / ECHOPILOT_KEY / --key-file",
            theme.fail,
        ));
    } else if let Some(since) = app.unreachable_since {
        spans.push(Span::styled(
            format!(
                "[OFFLINE] backend unreachable for {} · {}",
                fmt_age((app.now - since).num_seconds()),
                if app.cache.has_any_data() {
                    "showing last good data"
                } else {
                    "nothing received yet"
                }
            ),
            theme.fail,
        ));
        if let Some(s) = app.next_retry_in() {
            spans.push(Span::styled(format!(" · retry in {s}s"), theme.muted));
        }
    } else if let Some((t, stale)) = app.tab_freshness() {
        // Freshness of this tab's data (its oldest piece), not of whatever answered last.
        let age = fmt_age((app.now - t).num_seconds());
        if stale {
            spans.push(Span::styled(
                format!("[STALE] updated {age} ago · refresh failing"),
                theme.warn,
            ));
            if let Some(s) = app.next_retry_in() {
                spans.push(Span::styled(format!(" · retry in {s}s"), theme.muted));
            }
        } else {
            spans.push(Span::styled(format!("[LIVE] updated {age} ago"), theme.ok));
        }
    } else if app.cache.has_any_data() {
        spans.push(Span::styled(
            "waiting for this tab's first answer…",
            theme.muted,
        ));
    } else {
        spans.push(Span::styled("connecting…", theme.muted));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Renders the app into a buffer (tests that look at styles, not only text).
pub fn render_buffer(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut term = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(_) => return ratatui::buffer::Buffer::empty(Rect::new(0, 0, width, height)),
    };
    let _ = term.draw(|f| draw(f, app));
    term.backend().buffer().clone()
}

/// Renders the app into a `width`×`height` text grid (one line per row, trailing spaces
/// trimmed): what snapshot tests and benches use.
pub fn render_to_string(app: &App, width: u16, height: u16) -> String {
    let backend = TestBackend::new(width, height);
    let mut term = match Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => return format!("terminal error: {e}"),
    };
    if let Err(e) = term.draw(|f| draw(f, app)) {
        return format!("draw error: {e}");
    }
    let buf = term.backend().buffer();
    let mut out = String::with_capacity((width as usize + 1) * height as usize);
    for y in 0..height {
        let mut line = String::new();
        for x in 0..width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
