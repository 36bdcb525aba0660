//! Result dialog: the command's result or its problem+json error, with the audit seq.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use serde_json::Value;

use super::palette::centered;
use crate::client::ClientError;
use crate::model::audit_seq;
use crate::theme::Theme;

pub struct ResultDialog {
    pub title: String,
    pub ok: bool,
    pub lines: Vec<String>,
    pub audit_seq: Option<u64>,
    pub scroll: u16,
    /// The raw answer, for tests and callers that want to inspect it.
    pub raw: Option<Value>,
}

const MAX_LINES: usize = 500;

impl ResultDialog {
    pub fn from_result(title: String, result: Result<Value, ClientError>) -> ResultDialog {
        match result {
            Ok(v) => {
                let shown = v.get("result").unwrap_or(&v);
                let text =
                    serde_json::to_string_pretty(shown).unwrap_or_else(|_| shown.to_string());
                ResultDialog {
                    title,
                    ok: true,
                    lines: text.lines().take(MAX_LINES).map(str::to_string).collect(),
                    audit_seq: audit_seq(&v),
                    scroll: 0,
                    raw: Some(v),
                }
            }
            Err(e) => {
                let mut lines = Vec::new();
                match &e {
                    ClientError::Problem(p) => {
                        lines.push(format!("HTTP {} {}", p.status, p.title));
                        if let Some(d) = &p.detail {
                            lines.push(d.clone());
                        }
                        if let Some(k) = &p.kind {
                            lines.push(format!("type: {k}"));
                        }
                    }
                    other => lines.push(other.to_string()),
                }
                ResultDialog {
                    title,
                    ok: false,
                    lines,
                    audit_seq: None,
                    scroll: 0,
                    raw: None,
                }
            }
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, r: &ResultDialog, theme: &Theme) {
    let h = (r.lines.len() as u16 + 5).clamp(7, area.height.saturating_sub(2));
    let rect = centered(area, 80, h);
    frame.render_widget(Clear, rect);
    let (badge, style) = if r.ok {
        ("[OK]", theme.ok)
    } else {
        ("[FAIL]", theme.fail)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .style(theme.base)
        .title(Line::from(vec![
            Span::raw(" "),
            Span::styled(badge, style),
            Span::styled(format!(" {} ", r.title), theme.accent),
        ]));
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(Span::styled(
        match r.audit_seq {
            Some(s) => format!("audit seq {s}"),
            None if r.ok => "audit seq: not reported by the backend".into(),
            None => "nothing was executed".into(),
        },
        theme.muted,
    )));
    // Keep the last page in view however far PgDn / G went.
    let body_h = rect.height.saturating_sub(3) as usize;
    let max_scroll = r.lines.len().saturating_sub(body_h);
    let scroll = (r.scroll as usize).min(max_scroll);
    if max_scroll > 0 {
        lines[0].spans.push(Span::styled(
            format!(
                " · lines {}-{} of {} (PgDn/PgUp, g/G)",
                scroll + 1,
                (scroll + body_h).min(r.lines.len()),
                r.lines.len()
            ),
            theme.muted,
        ));
    }
    lines.extend(r.lines.iter().skip(scroll).map(|l| Line::from(l.as_str())));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
