//! Logs view (`l` from any tab): the newest lines of the tab's area log from
//! `GET /api/v1/ops/logs`, as columns (local time — `z` for UTC —, level, message, route,
//! status, ms).
//! Read-only — no plan, no confirm. Follow mode keeps the newest line at the bottom and
//! refreshes every two seconds; `w` wraps long messages, `/` searches (on the server, so
//! older matches are found too), `v` steps the level filter, `a` the area.

use std::cell::Cell;

use chrono::{DateTime, Local, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::App;
use crate::cache::Res;
use crate::components::{empty_message, freshness};
use crate::model::{LogLine, LogView};
use crate::theme::Theme;
use crate::util::{ellipsize, percent_encode};

/// The logs view's data; its path carries area, level and search ([`LogsView::path`]).
pub const LOGS: Res<LogView> = Res::new("ops.logs", "/api/v1/ops/logs", 2);

/// Lines asked for: enough to scroll back a few screens.
const LINES: usize = 500;

/// The level filter steps: everything, then at least info, warn, error.
pub const LEVELS: [Option<&str>; 4] = [None, Some("info"), Some("warn"), Some("error")];

/// The open logs view.
#[derive(Debug)]
pub struct LogsView {
    pub area: String,
    /// Index into [`LEVELS`].
    pub level: usize,
    /// The search text (sent as `q`); edited after `/`.
    pub query: String,
    pub searching: bool,
    /// Stay at the newest line and keep refreshing.
    pub follow: bool,
    pub wrap: bool,
    /// Lines scrolled back from the newest (0: the newest line is at the bottom).
    pub back: usize,
    /// Body height of the last draw: how far PgUp/PgDn move.
    page: Cell<usize>,
}

impl LogsView {
    pub fn new(area: &str) -> LogsView {
        LogsView {
            area: area.to_string(),
            level: 0,
            query: String::new(),
            searching: false,
            follow: true,
            wrap: false,
            back: 0,
            page: Cell::new(10),
        }
    }

    /// The request path for the current area, level and search.
    pub fn path(&self) -> String {
        let mut p = format!(
            "{}?area={}&lines={LINES}",
            LOGS.res.route,
            percent_encode(&self.area)
        );
        if let Some(l) = LEVELS[self.level] {
            p.push_str(&format!("&level={l}"));
        }
        if !self.query.trim().is_empty() {
            p.push_str(&format!("&q={}", percent_encode(self.query.trim())));
        }
        p
    }

    pub fn page(&self) -> usize {
        self.page.get().max(1)
    }

    /// Scrolls back (`delta` > 0) or forward; reaching the newest line again resumes
    /// following only if the operator turns follow back on (`f`), like `less +F`.
    pub fn scroll_back(&mut self, delta: isize, total: usize) {
        let max = total.saturating_sub(self.page()) as isize;
        self.back = (self.back as isize + delta).clamp(0, max.max(0)) as usize;
        if delta > 0 {
            self.follow = false;
        }
    }

    pub fn level_name(&self) -> &'static str {
        LEVELS[self.level].unwrap_or("all")
    }
}

/// Wall-clock time of a line (`HH:MM:SS.mmm`), local or UTC; the date too when it is not
/// today.
fn line_time(ts: Option<&str>, now: DateTime<Utc>, utc: bool) -> String {
    fn in_zone<Tz: chrono::TimeZone>(t: DateTime<Tz>, now: DateTime<Tz>) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        if t.date_naive() == now.date_naive() {
            t.format("%H:%M:%S%.3f").to_string()
        } else {
            t.format("%m-%d %H:%M:%S").to_string()
        }
    }
    let Some(t) = ts.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return String::new();
    };
    if utc {
        in_zone(t.with_timezone(&Utc), now)
    } else {
        in_zone(t.with_timezone(&Local), now.with_timezone(&Local))
    }
}

fn level_style(level: &str, theme: &Theme) -> Style {
    match level.to_ascii_lowercase().as_str() {
        "error" => theme.fail,
        "warn" => theme.warn,
        "info" => theme.base,
        _ => theme.muted,
    }
}

/// The message plus the fields that say what happened (`job`, `error`, …), so a line
/// without a route still reads whole.
fn message(l: &LogLine) -> String {
    let mut m = l.msg.clone();
    for (k, v) in &l.fields {
        if matches!(k.as_str(), "method" | "path" | "job_run_id" | "target") {
            continue;
        }
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        m.push_str(&format!(" {k}={v}"));
    }
    m
}

const TIME_W: usize = 12;
const LEVEL_W: usize = 5;
const STATUS_W: usize = 3;
const MS_W: usize = 8;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, v: &LogsView) {
    let theme = &app.theme;
    frame.render_widget(Clear, area);
    let remote = app.cache.remote(LOGS);
    let f = freshness(&remote, LOGS.res.route, app.now);
    let mut title = vec![Span::styled(format!(" Logs · {} ", v.area), theme.accent)];
    title.push(Span::styled(
        format!(
            "· level {} · {} · {} ",
            v.level_name(),
            if v.follow {
                "following"
            } else {
                "paused (f follows)"
            },
            if v.wrap { "wrapped" } else { "cut" }
        ),
        theme.muted,
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .style(theme.base)
        .title(Line::from(title));
    let inner = block.inner(area);
    let show_search = v.searching || !v.query.is_empty();
    let [head, body, search] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(u16::from(show_search)),
    ])
    .areas(inner);
    let width = inner.width as usize;
    // Logs of areas that serve no HTTP (queue, scheduler, …) have no route, status or
    // ms: those columns then give their room to the message.
    let http = remote.data.is_some_and(|v| {
        v.lines
            .iter()
            .any(|l| l.route.is_some() || l.status.is_some() || l.ms.is_some())
    });
    // The route column as wide as the widest route shown (ids and messages get the rest).
    let route_w = remote
        .data
        .and_then(|v| {
            v.lines
                .iter()
                .filter_map(|l| l.route.as_ref())
                .map(|r| r.chars().count())
                .max()
        })
        .unwrap_or(5)
        .clamp(5, (width / 3).max(5));
    let http_w = if http {
        route_w + STATUS_W + MS_W + 3
    } else {
        0
    };
    let msg_w = width.saturating_sub(TIME_W + LEVEL_W + http_w + 2);
    let mut header = format!(
        "{:<TIME_W$} {:<LEVEL_W$} {:<msg_w$}",
        if app.utc {
            "Time (UTC)"
        } else {
            "Time (local)"
        },
        "Level",
        "Message",
    );
    if http {
        header.push_str(&format!(
            " {:<route_w$} {:>STATUS_W$} {:>MS_W$}",
            "Route", "St", "ms"
        ));
    }
    frame.render_widget(
        Paragraph::new(Span::styled(
            header,
            theme
                .base
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )),
        head,
    );
    if show_search {
        let line = Line::from(vec![
            Span::styled("/ ", theme.accent),
            Span::raw(v.query.clone()),
            Span::styled(if v.searching { "█" } else { "" }, theme.muted),
            Span::styled(
                if v.searching {
                    "  Enter searches · Esc clears"
                } else {
                    ""
                },
                theme.muted,
            ),
        ]);
        frame.render_widget(Paragraph::new(line), search);
    }
    let rows = body.height as usize;
    v.page.set(rows);
    let Some(view) = remote.data else {
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Span::styled(empty_message(&f, LOGS.res.route), theme.muted)),
            body,
        );
        return;
    };
    // Every line as one or more screen rows (wrapped messages keep the columns' indent).
    let indent = TIME_W + LEVEL_W + 2;
    let mut screen: Vec<Line> = Vec::new();
    for l in &view.lines {
        let level = l.level.clone().unwrap_or_default();
        let msg = message(l);
        let status = l.status.map(|s| s.to_string()).unwrap_or_default();
        let ms = l.ms.map(|m| format!("{m:.1}")).unwrap_or_default();
        let status_style = match l.status {
            Some(s) if s >= 500 => theme.fail,
            Some(s) if s >= 400 => theme.warn,
            _ => theme.muted,
        };
        let route = l.route.clone().unwrap_or_default();
        let pieces: Vec<String> = if v.wrap {
            super::describe::chunks(&msg, msg_w)
        } else {
            vec![ellipsize(&msg, msg_w)]
        };
        for (i, piece) in pieces.into_iter().enumerate() {
            if i == 0 {
                let mut spans = vec![
                    Span::styled(
                        format!("{:<TIME_W$} ", line_time(l.ts.as_deref(), app.now, app.utc)),
                        theme.muted,
                    ),
                    Span::styled(
                        format!("{:<LEVEL_W$} ", ellipsize(&level, LEVEL_W)),
                        level_style(&level, theme),
                    ),
                ];
                if http {
                    spans.extend([
                        Span::raw(format!("{piece:<msg_w$} ")),
                        Span::styled(
                            format!("{:<route_w$} ", ellipsize(&route, route_w)),
                            theme.muted,
                        ),
                        Span::styled(format!("{status:>STATUS_W$} "), status_style),
                        Span::styled(format!("{ms:>MS_W$}"), theme.muted),
                    ]);
                } else {
                    spans.push(Span::raw(piece));
                }
                screen.push(Line::from(spans));
            } else {
                screen.push(Line::from(vec![
                    Span::raw(" ".repeat(indent)),
                    Span::raw(piece),
                ]));
            }
        }
    }
    let total = screen.len();
    let back = if v.follow {
        0
    } else {
        v.back.min(total.saturating_sub(rows))
    };
    let end = total.saturating_sub(back);
    let start = end.saturating_sub(rows);
    let mut block = block;
    let scope = match &view.tenant_filter {
        Some(t) => format!("tenant {t}"),
        None => "all tenants".into(),
    };
    let mut bottom = format!(
        " {} lines · {scope} · f follow · w wrap · / search · v level · a area · Esc back ",
        view.lines.len()
    );
    if total > rows {
        bottom = format!(" rows {}-{end} of {total} ·{bottom}", start + 1);
    }
    if view.scan_limit_reached {
        bottom.push_str("· read limit reached ");
    }
    block = block.title_bottom(Line::from(Span::styled(bottom, theme.muted)));
    frame.render_widget(block, area);
    if view.lines.is_empty() {
        let msg = if v.query.is_empty() && v.level == 0 {
            format!(
                "The {} log has no lines yet (files: {}).",
                v.area,
                view.files.len()
            )
        } else {
            format!(
                "No {} line matches (level {}, search {:?}).",
                v.area,
                v.level_name(),
                v.query
            )
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.muted)), body);
        return;
    }
    frame.render_widget(Paragraph::new(screen[start..end].to_vec()), body);
}
