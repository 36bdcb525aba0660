//! Plan/confirm dialog: shows the dry-run plan and collects the confirmation. Low risk: `y`.
//! High risk: the verb name typed exactly plus a reason.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use serde_json::Value;

use super::palette::centered;
use crate::commands::Mode;
use crate::event::PostOp;
use crate::model::{Plan, Verb, VerbExt};
use crate::theme::Theme;
use crate::util::fmt_duration;

/// What is being confirmed.
pub enum Kind {
    /// An ops verb: dry-run plan from the backend, then confirm with its `plan_id`.
    Verb { verb: Verb, args: Value },
    /// A plain API call (the backend offers no verb for it): local description, then `y`.
    Direct { op: PostOp, path: String },
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
        }
    }

    pub fn direct(op: PostOp, path: String, summary: String) -> PlanDialog {
        let plan = Plan {
            summary,
            steps: vec![format!("POST {path}")],
            risk: "low".into(),
            ..Plan::default()
        };
        PlanDialog {
            kind: Kind::Direct { op, path },
            stage: Stage::Ready(plan),
            typed: String::new(),
            reason: String::new(),
            field: 0,
            error: None,
        }
    }

    pub fn verb_name(&self) -> &str {
        match &self.kind {
            Kind::Verb { verb, .. } => &verb.name,
            Kind::Direct { path, .. } => path,
        }
    }

    /// High risk if either the verb registry or the plan says so (the stricter wins).
    pub fn is_high_risk(&self) -> bool {
        match (&self.kind, &self.stage) {
            (Kind::Direct { .. }, _) => false,
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

pub fn draw(frame: &mut Frame, area: Rect, d: &PlanDialog, now: DateTime<Utc>, theme: &Theme) {
    let rect = centered(area, 80, area.height.saturating_sub(2).min(22));
    frame.render_widget(Clear, rect);
    let high = d.is_high_risk();
    let risk = if high { "HIGH" } else { "low" };
    let title = format!(" Plan: {} · risk {risk} ", d.verb_name());
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(if high { theme.fail } else { theme.border })
        .style(theme.base)
        .title(Span::styled(
            title,
            if high { theme.fail } else { theme.accent },
        ));
    let mut lines: Vec<Line> = Vec::new();
    let bold = theme.base.add_modifier(Modifier::BOLD);
    match &d.stage {
        Stage::Planning => {
            lines.push(Line::from(Span::styled(
                "Asking the backend for a dry-run plan… (nothing changes yet; Esc cancels)",
                theme.muted,
            )));
        }
        Stage::Ready(p) | Stage::Confirming(p) => {
            if let Kind::Verb { args, .. } = &d.kind {
                lines.push(Line::from(vec![
                    Span::styled("Args     ", bold),
                    Span::raw(args.to_string()),
                ]));
            }
            lines.push(Line::from(vec![
                Span::styled("Summary  ", bold),
                Span::raw(if p.summary.is_empty() {
                    "-"
                } else {
                    p.summary.as_str()
                }),
            ]));
            if !p.steps.is_empty() {
                lines.push(Line::from(Span::styled("Steps", bold)));
                for (i, s) in p.steps.iter().enumerate() {
                    lines.push(Line::from(format!("  {}. {s}", i + 1)));
                }
            }
            if !p.effects.is_empty() {
                lines.push(Line::from(Span::styled("Effects", bold)));
                for e in &p.effects {
                    lines.push(Line::from(format!("  - {e}")));
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
                lines.push(Line::from(Span::styled(meta.join(" · "), theme.muted)));
            }
            lines.push(Line::default());
            if matches!(d.stage, Stage::Confirming(_)) {
                lines.push(Line::from(Span::styled(
                    "Executing the confirmed plan…",
                    theme.muted,
                )));
            } else if high {
                lines.push(Line::from(Span::styled(
                    "[HIGH RISK] Type the verb name exactly and give a reason, then Enter.",
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
                lines.push(field("Verb name", &d.typed, d.field == 0));
                lines.push(field("Reason", &d.reason, d.field == 1));
            } else {
                lines.push(Line::from(vec![
                    Span::styled("Confirm? ", bold),
                    Span::styled(" y ", theme.key),
                    Span::raw(" execute   "),
                    Span::styled(" n/Esc ", theme.key),
                    Span::raw(" cancel"),
                ]));
            }
            if let Some(e) = &d.error {
                lines.push(Line::from(Span::styled(format!("[FAIL] {e}"), theme.fail)));
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
