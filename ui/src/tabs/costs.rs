//! Costs tab: AI spend from the ai module (`GET /api/v1/ai/analytics`, the last 7 days) —
//! totals, cost, error rate and p50/p95 latency per model, cost per feature, and either
//! the top prompt templates (cost view) or the latest failed calls (errors view: `e`
//! switches; the palette's "ai errors" opens it). Cloud and vendor spend belongs to the
//! FinOps area, which does not exist yet: its route is probed and the strip at the bottom
//! says plainly that it is not installed (nothing is made up).

use std::any::Any;

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::area::AreaSpec;
use super::{Intent, Tab};
use crate::app::App;
use crate::cache::{Cache, Res, Resource};
use crate::commands::{cmd, Action, KeyCommand, Scope, TabAction, NONE};
use crate::components::{empty_message, freshness, panel, Freshness};
use crate::model::{AiAnalytics, AiModelStats};
use crate::popups::palette::{Entry, EntryKind, Target};
use crate::theme::Theme;
use crate::util::{ellipsize, fmt_count, rel_time};

const TITLE: &str = "Costs";

/// Cloud and vendor spend (the FinOps area, later): probed, shown as not installed.
pub static SPEC: AreaSpec = AreaSpec {
    title: "Cloud & vendor spend (FinOps)",
    res: Res::new("area.costs", "/api/v1/costs/summary", 60),
    about: "Cloud and vendor spend by service and tenant, budgets and anomalies.",
};

/// The last 7 days of AI calls (the route's default window).
pub const AI: Res<AiAnalytics> = Res::new("ai.analytics", "/api/v1/ai/analytics", 30);

pub const TOGGLE_VIEW: TabAction = TabAction("costs.toggle_view");

static COMMANDS: &[KeyCommand] = &[cmd(
    Action::Tab(TOGGLE_VIEW),
    &[(KeyCode::Char('e'), NONE)],
    "e",
    "errors/costs",
    "Toggle the error view: models by error rate, the latest failed calls",
    Scope::OnTab(TITLE),
)];

/// What the tab puts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Models by calls, top prompt templates.
    #[default]
    Cost,
    /// Models by error rate, the latest failed calls.
    Errors,
}

#[derive(Default)]
pub struct CostsTab {
    pub view: View,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(CostsTab::default())
}

/// Millionths of the currency unit as money: small amounts keep four decimals (one call
/// often costs a fraction of a cent).
pub fn fmt_money(micros: i64, currency: &str) -> String {
    let v = micros as f64 / 1_000_000.0;
    let n = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    format!("{n} {currency}")
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(title)
}

/// A model's cost cell: the priced sum, or `unpriced` when no call of it had a price.
fn model_cost(m: &AiModelStats, currency: &str) -> String {
    if m.unpriced_events == m.events {
        "unpriced".into()
    } else {
        fmt_money(m.cost_micros, currency)
    }
}

impl CostsTab {
    fn draw_ai(&self, frame: &mut Frame, rect: Rect, app: &App, a: &AiAnalytics, f: &Freshness) {
        let theme = &app.theme;
        // The model table takes what its rows need; features and templates / failures get
        // the rest (at least 6 lines).
        let rows = a.models.len().max(1) as u16 + 3;
        let models_h = rows.min(rect.height.saturating_sub(4 + 6)).max(4);
        let [summary, models, bottom] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Length(models_h),
            Constraint::Min(6),
        ])
        .areas(rect);
        let t = &a.totals;
        let mut title = "AI calls · last 7 days".to_string();
        if self.view == View::Errors {
            title.push_str(" · errors view");
        }
        let err_style = |n: i64| if n > 0 { theme.fail } else { theme.base };
        let lines = vec![
            Line::from(vec![
                Span::styled("calls ", theme.muted),
                Span::raw(fmt_count(t.events.max(0) as u64)),
                Span::styled("  errors ", theme.muted),
                Span::styled(
                    format!(
                        "{} ({})",
                        fmt_count(t.errors.max(0) as u64),
                        pct(t.error_rate)
                    ),
                    err_style(t.errors),
                ),
                Span::styled("  tokens ", theme.muted),
                Span::raw(format!(
                    "{} in / {} out",
                    fmt_count(t.tokens_in.max(0) as u64),
                    fmt_count(t.tokens_out.max(0) as u64)
                )),
                Span::styled("  redactions ", theme.muted),
                Span::raw(fmt_count(t.redactions.max(0) as u64)),
            ]),
            Line::from(vec![
                Span::styled("cost ", theme.muted),
                Span::styled(fmt_money(t.cost_micros, &a.currency), theme.accent),
                Span::styled(
                    if t.unpriced_events > 0 {
                        format!(
                            "  + {} unpriced call(s): no price in [ai] prices",
                            fmt_count(t.unpriced_events as u64)
                        )
                    } else {
                        String::new()
                    },
                    theme.warn,
                ),
            ]),
        ];
        frame.render_widget(
            Paragraph::new(lines)
                .block(panel(&title, f, true, theme))
                .wrap(Wrap { trim: false }),
            summary,
        );
        if t.events == 0 {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "No AI calls in the last 7 days: apps record them with POST /api/v1/ai/events or send them through the recording proxy (/api/v1/ai/proxy/v1, docs/AI.md).",
                    theme.muted,
                ))
                .block(block(" Per model ".into(), theme))
                .wrap(Wrap { trim: false }),
                Rect {
                    height: models.height + bottom.height,
                    ..models
                },
            );
            return;
        }
        self.draw_models(frame, models, app, a);
        // Narrow screens in the error view give the failed calls the whole row.
        let narrow = bottom.width < 100;
        let left = match (self.view, narrow) {
            (View::Errors, true) => 0,
            (View::Errors, false) => 40,
            (View::Cost, true) => 50,
            (View::Cost, false) => 45,
        };
        let [feat, right] = Layout::horizontal([
            Constraint::Percentage(left),
            Constraint::Percentage(100 - left),
        ])
        .areas(bottom);
        if left > 0 {
            draw_features(frame, feat, theme, a);
        }
        match self.view {
            View::Cost => draw_templates(frame, right, theme, a),
            View::Errors => draw_failures(frame, right, app, a),
        }
    }

    fn draw_models(&self, frame: &mut Frame, rect: Rect, app: &App, a: &AiAnalytics) {
        let theme = &app.theme;
        let inner_w = rect.width.saturating_sub(2) as usize;
        // Average tokens only where there is room.
        let wide = inner_w >= 96;
        let fixed = if wide {
            7 + 7 + 7 + 9 + 9 + 8 + 8 + 12
        } else {
            7 + 7 + 7 + 9 + 9 + 12
        };
        let nw = inner_w.saturating_sub(fixed).clamp(8, 48);
        let mut head = format!(
            "{:<nw$} {:>6} {:>6} {:>6} {:>8} {:>8}",
            "model", "calls", "errors", "err%", "p50", "p95"
        );
        if wide {
            head.push_str(&format!(" {:>7} {:>7}", "avg in", "avg out"));
        }
        head.push_str(&format!(" {:>11}", "cost"));
        let mut lines = vec![Line::from(Span::styled(head, theme.muted))];
        let mut models: Vec<&AiModelStats> = a.models.iter().collect();
        let title = match self.view {
            View::Cost => " Per model · most calls first ",
            View::Errors => {
                models.sort_by(|x, y| {
                    y.error_rate
                        .total_cmp(&x.error_rate)
                        .then(y.errors.cmp(&x.errors))
                        .then(x.model.cmp(&y.model))
                });
                " Per model · highest error rate first "
            }
        };
        let avg = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "-".into());
        for m in models {
            let mut spans = vec![Span::raw(format!(
                "{:<nw$} {:>6} {:>6} ",
                ellipsize(&m.model, nw),
                fmt_count(m.events.max(0) as u64),
                fmt_count(m.errors.max(0) as u64),
            ))];
            spans.push(Span::styled(
                format!("{:>6}", pct(m.error_rate)),
                if m.errors > 0 { theme.fail } else { theme.base },
            ));
            let mut rest = format!(
                " {:>8} {:>8}",
                format!("{} ms", m.p50_latency_ms),
                format!("{} ms", m.p95_latency_ms)
            );
            if wide {
                rest.push_str(&format!(
                    " {:>7} {:>7}",
                    avg(m.avg_tokens_in),
                    avg(m.avg_tokens_out)
                ));
            }
            rest.push_str(&format!(" {:>11}", model_cost(m, &a.currency)));
            spans.push(Span::raw(rest));
            lines.push(Line::from(spans));
        }
        frame.render_widget(
            Paragraph::new(lines).block(block(title.into(), theme)),
            rect,
        );
    }

    fn draw_finops(&self, frame: &mut Frame, rect: Rect, app: &App) {
        let theme = &app.theme;
        let remote = app.cache.remote(SPEC.res);
        let route = SPEC.res.res.route;
        let (not_installed, f) = SPEC.probe(app);
        let line = if not_installed {
            let mut text = format!("Waits for the FinOps area: GET {route} answered 404");
            let more = "; probed every minute.";
            if (rect.width as usize) >= text.len() + more.len() + 2 {
                text.push_str(more);
            }
            Line::from(Span::styled(text, theme.muted))
        } else if let Some(d) = remote.data {
            let mut spans = Vec::new();
            for (i, (k, v)) in d.fields.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" · ", theme.muted));
                }
                spans.push(Span::styled(format!("{k} "), theme.accent));
                spans.push(Span::raw(v.clone()));
            }
            Line::from(spans)
        } else {
            Line::from(Span::styled(empty_message(&f, route), theme.muted))
        };
        frame.render_widget(
            Paragraph::new(line)
                .block(panel(SPEC.title, &f, false, theme))
                .wrap(Wrap { trim: false }),
            rect,
        );
    }
}

fn draw_features(frame: &mut Frame, rect: Rect, theme: &Theme, a: &AiAnalytics) {
    let nw = (rect.width as usize)
        .saturating_sub(2 + 7 + 7 + 12)
        .clamp(6, 40);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:<nw$} {:>6} {:>6} {:>11}",
            "feature", "calls", "errors", "cost"
        ),
        theme.muted,
    ))];
    for x in &a.features {
        let cost = if x.unpriced_events == x.events {
            "unpriced".to_string()
        } else {
            fmt_money(x.cost_micros, &a.currency)
        };
        lines.push(Line::from(format!(
            "{:<nw$} {:>6} {:>6} {:>11}",
            ellipsize(x.feature.as_deref().unwrap_or("(none named)"), nw),
            fmt_count(x.events.max(0) as u64),
            fmt_count(x.errors.max(0) as u64),
            cost
        )));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(" Cost per feature ".into(), theme)),
        rect,
    );
}

fn draw_templates(frame: &mut Frame, rect: Rect, theme: &Theme, a: &AiAnalytics) {
    let nw = (rect.width as usize)
        .saturating_sub(2 + 7 + 7)
        .clamp(8, 200);
    let mut lines = vec![Line::from(Span::styled(
        format!("{:<nw$} {:>6} {:>6}", "prompt template", "calls", "errors"),
        theme.muted,
    ))];
    for t in &a.top_templates {
        lines.push(Line::from(format!(
            "{:<nw$} {:>6} {:>6}",
            ellipsize(&t.template, nw),
            fmt_count(t.events.max(0) as u64),
            fmt_count(t.errors.max(0) as u64)
        )));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(" Top prompt templates ".into(), theme)),
        rect,
    );
}

fn draw_failures(frame: &mut Frame, rect: Rect, app: &App, a: &AiAnalytics) {
    let theme = &app.theme;
    let mut lines = Vec::new();
    if a.recent_errors.is_empty() {
        lines.push(Line::from(Span::styled(
            "No failed call in the last 7 days.",
            theme.ok,
        )));
    }
    // Aligned columns (age, model, feature); the message takes the rest and is cut at
    // the edge like every table row.
    let width = |f: fn(&crate::model::AiFailedCall) -> usize, cap: usize| {
        a.recent_errors.iter().map(f).max().unwrap_or(0).min(cap)
    };
    let mw = width(|e| e.model.chars().count(), 16);
    let fw = width(
        |e| e.feature.as_deref().map_or(1, |f| f.chars().count()),
        12,
    );
    for e in &a.recent_errors {
        let head = format!(
            "{:>7} {:<mw$} {:<fw$}",
            rel_time(Some(&e.ts), app.now),
            ellipsize(&e.model, mw),
            ellipsize(e.feature.as_deref().unwrap_or("-"), fw)
        );
        lines.push(Line::from(vec![
            Span::styled(head, theme.muted),
            Span::raw("  "),
            Span::styled(
                e.error.clone().unwrap_or_else(|| "(no message)".into()),
                theme.fail,
            ),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(
            format!(" Latest failed calls ({}) ", a.recent_errors.len()),
            theme,
        )),
        rect,
    );
}

impl Tab for CostsTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![AI.res, SPEC.res.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        // The FinOps strip: one line while the area is missing, two for its fields.
        let finops_h = if app.cache.get(SPEC.res).is_some() {
            4
        } else {
            3
        };
        let [ai, finops] =
            Layout::vertical([Constraint::Min(8), Constraint::Length(finops_h)]).areas(area);
        let remote = app.cache.remote(AI);
        let route = AI.res.route;
        let f = freshness(&remote, route, app.now);
        match remote.data {
            Some(a) => self.draw_ai(frame, ai, app, a, &f),
            None => frame.render_widget(
                Paragraph::new(Span::styled(empty_message(&f, route), app.theme.muted))
                    .block(panel("AI calls · last 7 days", &f, true, &app.theme))
                    .wrap(Wrap { trim: false }),
                ai,
            ),
        }
        self.draw_finops(frame, finops, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, _cache: &Cache) -> Intent {
        if action == TOGGLE_VIEW {
            self.view = match self.view {
                View::Cost => View::Errors,
                View::Errors => View::Cost,
            };
        }
        Intent::Nothing
    }

    fn palette_entries(&self, _cache: &Cache, out: &mut Vec<Entry>) {
        for (label, detail, key) in [
            (
                "ai errors",
                "Costs tab: AI error rate per model and the latest failed calls",
                "errors",
            ),
            (
                "ai costs",
                "Costs tab: AI cost per model and per feature, top prompt templates",
                "cost",
            ),
        ] {
            out.push(Entry::new(
                EntryKind::Entity("view"),
                label.into(),
                detail.into(),
                Target::Entity {
                    tab: TITLE,
                    key: key.into(),
                },
            ));
        }
    }

    fn open_entity(&mut self, key: &str, _cache: &Cache) {
        self.view = if key == "errors" {
            View::Errors
        } else {
            View::Cost
        };
    }

    fn log_area(&self) -> &'static str {
        "ai_events"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
