//! Plan/confirm dialog: shows the dry-run plan and collects the confirmation. Low risk: `y`.
//! High risk: the verb name typed exactly plus a reason.

use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use serde_json::Value;

use super::palette::centered;
use crate::commands::Mode;
use crate::model::{Plan, Verb, VerbExt};
use crate::theme::Theme;
use crate::util::fmt_duration;

/// What is being confirmed.
pub enum Kind {
    /// An ops verb: dry-run plan from the backend, then confirm with its `plan_id`. (There
    /// is no other kind: a confirmable action without the server's risk would be a guess.)
    Verb { verb: Verb, args: Value },
}

pub enum Stage {
    /// Waiting for the dry-run answer.
    Planning,
    Ready(Plan),
    /// Waiting for the confirm answer.
    Confirming(Plan),
}

pub struct PlanDialog {
    pub kind: Kind,
    pub stage: Stage,
    /// Typed verb name (high risk).
    pub typed: String,
    pub reason: String,
    /// 0 = verb name field, 1 = reason field.
    pub field: usize,
    pub error: Option<String>,
    /// First body line shown (PgDn/PgUp); the input fields below the body never scroll.
    pub scroll: u16,
}

impl PlanDialog {
    pub fn verb(verb: Verb, args: Value) -> PlanDialog {
        PlanDialog {
            kind: Kind::Verb { verb, args },
            stage: Stage::Planning,
            typed: String::new(),
            reason: String::new(),
            field: 0,
            error: None,
            scroll: 0,
        }
    }

    /// Scroll the body; clamped to its length when drawn.
    pub fn scroll_by(&mut self, delta: i32) {
        self.scroll = (self.scroll as i32 + delta).clamp(0, u16::MAX as i32) as u16;
    }

    pub fn verb_name(&self) -> &str {
        let Kind::Verb { verb, .. } = &self.kind;
        &verb.name
    }

    /// High risk if either the verb registry or the plan says so (the stricter wins).
    pub fn is_high_risk(&self) -> bool {
        match (&self.kind, &self.stage) {
            (Kind::Verb { verb, .. }, Stage::Ready(p) | Stage::Confirming(p)) => {
                verb.is_high_risk() || (!p.risk.is_empty() && !p.risk.eq_ignore_ascii_case("low"))
            }
            (Kind::Verb { verb, .. }, Stage::Planning) => verb.is_high_risk(),
        }
    }

    pub fn mode(&self) -> Mode {
        match self.stage {
            Stage::Planning | Stage::Confirming(_) => Mode::Pending,
            Stage::Ready(_) if self.is_high_risk() => Mode::ConfirmHigh,
            Stage::Ready(_) => Mode::ConfirmLow,
        }
    }
}

/// Rows `lines` take when wrapped at `width` (word wrap can need a little more than the
/// character count suggests, so each wrapped line counts one extra row).
fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = width.max(1) as usize;
    lines
        .iter()
        .map(|l| match l.width() {
            0 => 1,
            n if n <= w => 1,
            n => n.div_ceil(w) + 1,
        })
        .sum::<usize>()
        .min(u16::MAX as usize) as u16
}

/// The body scrolls; the footer (confirmation hint, input fields, error) is always in view,
/// down to an 80×24 terminal.
pub fn draw(frame: &mut Frame, area: Rect, d: &PlanDialog, now: DateTime<Utc>, theme: &Theme) {
    let high = d.is_high_risk();
    let risk = if high { "HIGH" } else { "low" };
    let title = format!(" Plan: {} · risk {risk} ", d.verb_name());
    let bold = theme.base.add_modifier(Modifier::BOLD);
    let width = centered(area, 80, 3).width;
    let inner_w = width.saturating_sub(2);
    // A list item wrapped under its own text, not under its number.
    let hanging = |prefix: String, text: &str| {
        crate::util::hanging_lines(vec![Span::raw(prefix)], text, inner_w as usize, 10)
    };
    let mut body: Vec<Line> = Vec::new();
    let mut footer: Vec<Line> = Vec::new();
    match &d.stage {
        Stage::Planning => {
            body.push(Line::from(Span::styled(
                "Asking the backend for a dry-run plan… (nothing changes yet; Esc cancels)",
                theme.muted,
            )));
        }
        Stage::Ready(p) | Stage::Confirming(p) => {
            let Kind::Verb { args, .. } = &d.kind;
            body.push(Line::from(vec![
                Span::styled("Args     ", bold),
                Span::raw(args.to_string()),
            ]));
            body.push(Line::from(vec![
                Span::styled("Summary  ", bold),
                Span::raw(if p.summary.is_empty() {
                    "-"
                } else {
                    p.summary.as_str()
                }),
            ]));
            if !p.steps.is_empty() {
                body.push(Line::from(Span::styled("Steps", bold)));
                for (i, s) in p.steps.iter().enumerate() {
                    body.extend(hanging(format!("  {}. ", i + 1), s));
                }
            }
            if !p.effects.is_empty() {
                body.push(Line::from(Span::styled("Effects", bold)));
                for e in &p.effects {
                    body.extend(hanging("  - ".into(), e));
                }
            }
            let mut meta = Vec::new();
            if !p.plan_id.is_empty() {
                meta.push(format!("plan {}", p.plan_id));
            }
            if let Some(exp) = p.expires_at {
                let secs = (exp - now).num_seconds();
                meta.push(if secs > 0 {
                    format!("expires in {}", fmt_duration(secs))
                } else {
                    "EXPIRED: confirming will be refused (409); Esc and run again".into()
                });
            }
            if !meta.is_empty() {
                body.push(Line::from(Span::styled(meta.join(" · "), theme.muted)));
            }
            if matches!(d.stage, Stage::Confirming(_)) {
                footer.push(Line::from(Span::styled(
                    "Executing the confirmed plan…",
                    theme.muted,
                )));
            } else if high {
                footer.push(Line::from(Span::styled(
                    "[HIGH RISK] Type the verb name exactly, Enter, give a reason, Enter.",
                    theme.fail,
                )));
                let field = |label: &str, value: &str, focused: bool| {
                    Line::from(vec![
                        Span::styled(if focused { "> " } else { "  " }, theme.accent),
                        Span::styled(format!("{label:<10}"), bold),
                        Span::styled(
                            format!("[{value}{}]", if focused { "█" } else { "" }),
                            if focused { theme.selected } else { theme.base },
                        ),
                    ])
                };
                footer.push(field("Verb name", &d.typed, d.field == 0));
                footer.push(field("Reason", &d.reason, d.field == 1));
            } else {
                footer.push(Line::from(vec![
                    Span::styled("Confirm? ", bold),
                    Span::styled(" y ", theme.key),
                    Span::raw(" execute   "),
                    Span::styled(" n/Esc ", theme.key),
                    Span::raw(" cancel"),
                ]));
            }
            if let Some(e) = &d.error {
                footer.push(Line::from(Span::styled(format!("[FAIL] {e}"), theme.fail)));
            }
        }
    }
    // Size to the content, within the screen.
    let body_rows = wrapped_rows(&body, inner_w);
    let footer_rows = if footer.is_empty() {
        0
    } else {
        wrapped_rows(&footer, inner_w) + 1
    };
    let max_h = area.height.saturating_sub(2).max(3);
    let rect = centered(area, 80, (body_rows + footer_rows + 2).clamp(5, max_h));
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if high { theme.fail } else { theme.border })
        .style(theme.base)
        .title(Span::styled(
            title,
            if high { theme.fail } else { theme.accent },
        ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let footer_h = footer_rows.min(inner.height);
    let [body_area, footer_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(footer_h)]).areas(inner);
    let max_scroll = body_rows.saturating_sub(body_area.height);
    let scroll = d.scroll.min(max_scroll);
    if max_scroll > 0 {
        let more = match (scroll > 0, scroll < max_scroll) {
            (true, true) => "↑↓ more: PgUp/PgDn",
            (false, _) => "↓ more: PgDn",
            (true, false) => "↑ more: PgUp",
        };
        footer.insert(0, Line::from(Span::styled(more, theme.muted)));
    } else if !footer.is_empty() {
        footer.insert(0, Line::default());
    }
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body_area,
    );
    frame.render_widget(
        Paragraph::new(footer).wrap(Wrap { trim: false }),
        footer_area,
    );
}
