//! Describe view (`d` / Enter on a table row): every field of the record as the backend sent
//! it — full ids, the whole error, payload and result — with `y` for the raw JSON and `c` to
//! copy the id. Read-only: nothing here sends a request.

use std::cell::Cell;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use serde::Serialize;
use serde_json::Value;

use crate::theme::Theme;

/// One row, described: what it is, its id and its fields in reading order.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// What the row is ("queue job", "job run", "scheduled job").
    pub kind: &'static str,
    /// The full id (what `c` copies).
    pub id: String,
    pub fields: Vec<(String, Value)>,
}

impl Described {
    /// Every field of `record` (its serde form), the `lead` ones first in that order, the rest
    /// alphabetically — so nothing the backend sent is left out.
    pub fn of(kind: &'static str, id: String, record: &impl Serialize, lead: &[&str]) -> Described {
        let mut map = match serde_json::to_value(record) {
            Ok(Value::Object(m)) => m,
            Ok(other) => [("value".to_string(), other)].into_iter().collect(),
            Err(e) => [("error".to_string(), Value::from(e.to_string()))]
                .into_iter()
                .collect(),
        };
        let mut fields: Vec<(String, Value)> = lead
            .iter()
            .filter_map(|k| map.remove(*k).map(|v| (k.to_string(), v)))
            .collect();
        fields.extend(map);
        Described { kind, id, fields }
    }

    /// The record as pretty JSON (keys in the same order as the fields view).
    pub fn json(&self) -> String {
        let mut out = String::from("{\n");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            let body = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
            let body = body.replace('\n', "\n  ");
            let key = Value::from(k.as_str());
            let comma = if i + 1 < self.fields.len() { "," } else { "" };
            out.push_str(&format!("  {key}: {body}{comma}\n"));
        }
        out.push('}');
        out
    }
}

/// The open describe view.
#[derive(Debug)]
pub struct DescribeView {
    pub described: Described,
    /// Showing the JSON instead of the fields.
    pub json: bool,
    pub scroll: u16,
    /// Body height of the last draw: how far PgDn/PgUp move and where scrolling stops.
    page: Cell<u16>,
    /// Lines of the last draw (after wrapping).
    drawn_lines: Cell<u16>,
}

impl DescribeView {
    pub fn new(described: Described) -> DescribeView {
        DescribeView {
            described,
            json: false,
            scroll: 0,
            page: Cell::new(10),
            drawn_lines: Cell::new(u16::MAX),
        }
    }

    /// Scrolls by `delta` lines, stopping at the top and once the last line is on screen.
    pub fn scroll_by(&mut self, delta: i32) {
        let max = self.drawn_lines.get().saturating_sub(self.page.get());
        let to = (self.scroll as i32 + delta).clamp(0, max as i32);
        self.scroll = to as u16;
    }

    pub fn page(&self) -> i32 {
        self.page.get().max(1) as i32
    }

    pub fn toggle_json(&mut self) {
        self.json = !self.json;
        self.scroll = 0;
        self.drawn_lines.set(u16::MAX);
    }
}

/// How the describe view shows times: relative to `now`, in UTC or local time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: chrono::DateTime<chrono::Utc>,
    pub utc: bool,
}

impl Clock {
    /// `2026-05-01 11:59:58.340 UTC (2s ago)`, or the local time with its offset.
    pub fn absolute(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        let when = if self.utc {
            t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
        } else {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S%.3f %:z")
                .to_string()
        };
        format!("{when} ({})", crate::util::rel(t, self.now))
    }
}

/// Splits `text` into pieces of at most `width` characters (at least one piece).
pub(crate) fn chunks(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// The fields view as lines `width` wide: `key  value`, a long value wrapped under itself
/// (its indent kept), nested objects and arrays as indented JSON below their key.
pub fn field_lines(d: &Described, width: usize, theme: &Theme, clock: Clock) -> Vec<Line<'static>> {
    let key_w = d
        .fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let val_w = width.saturating_sub(key_w).max(10);
    let mut out = Vec::new();
    for (k, v) in &d.fields {
        let key = Span::styled(format!("{k:<key_w$}"), theme.accent);
        let scalar = match v {
            Value::Null => Some(Span::styled("-".to_string(), theme.muted)),
            // A timestamp reads as a clock time (local or UTC, `z`) and how long ago.
            Value::String(s) => Some(Span::raw(match crate::model::parse_ts(s) {
                Some(t) => clock.absolute(t),
                None => s.clone(),
            })),
            Value::Bool(_) | Value::Number(_) => Some(Span::raw(v.to_string())),
            Value::Array(a) if a.is_empty() => Some(Span::styled("[]".to_string(), theme.muted)),
            Value::Object(o) if o.is_empty() => Some(Span::styled("{}".to_string(), theme.muted)),
            _ => None,
        };
        match scalar {
            Some(span) => {
                let style = span.style;
                for (i, piece) in span
                    .content
                    .lines()
                    .flat_map(|l| chunks(l, val_w))
                    .enumerate()
                {
                    let lead = if i == 0 {
                        key.clone()
                    } else {
                        Span::raw(" ".repeat(key_w))
                    };
                    out.push(Line::from(vec![lead, Span::styled(piece, style)]));
                }
            }
            None => {
                out.push(Line::from(key));
                let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
                for l in pretty.lines() {
                    for piece in chunks(l, width.saturating_sub(2)) {
                        out.push(Line::from(format!("  {piece}")));
                    }
                }
            }
        }
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, v: &DescribeView, theme: &Theme, clock: Clock) {
    frame.render_widget(Clear, area);
    let d = &v.described;
    let title = Line::from(vec![
        Span::styled(
            format!(
                " {} {} · {} ",
                if v.json { "JSON of" } else { "Describe" },
                d.kind,
                d.id
            ),
            theme.accent,
        ),
        Span::styled(
            format!(
                "· y {} · c copy id · Esc back ",
                if v.json { "fields" } else { "JSON" }
            ),
            theme.muted,
        ),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .style(theme.base)
        .title(title);
    let inner = block.inner(area);
    let lines: Vec<Line> = if v.json {
        d.json()
            .lines()
            .flat_map(|l| chunks(l, inner.width as usize))
            .map(Line::from)
            .collect()
    } else {
        field_lines(d, inner.width as usize, theme, clock)
    };
    v.page.set(inner.height);
    v.drawn_lines.set(lines.len().min(u16::MAX as usize) as u16);
    let max = (lines.len() as u16).saturating_sub(inner.height);
    let scroll = v.scroll.min(max);
    let mut block = block;
    if lines.len() as u16 > inner.height {
        block = block.title_bottom(Line::from(Span::styled(
            format!(
                " lines {}-{} of {} ",
                scroll + 1,
                (scroll + inner.height).min(lines.len() as u16),
                lines.len()
            ),
            theme.muted,
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}
