//! Forecast tab: product usage from the analytics module — DAU / WAU / MAU sparklines over
//! the last 28 days, top features and events, and funnels (`f` cycles; the palette opens one
//! by name: "funnel signup") — next to the traffic forecast, which comes from the forecast
//! area once the backend has one (until then its panel says so; nothing is made up).

use std::any::Any;

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::area::{AreaSpec, AreaTab};
use super::{Intent, Tab};
use crate::app::App;
use crate::cache::{Cache, Res, Resource};
use crate::commands::{cmd, Action, KeyCommand, Scope, TabAction, NONE};
use crate::components::{empty_message, freshness, panel};
use crate::model::{FunnelList, FunnelResult, Usage};
use crate::popups::palette::{Entry, EntryKind, Target};
use crate::util::{fmt_count, fmt_duration};

const TITLE: &str = "Forecast";

/// The traffic forecast (a later area): probed, shown as not installed until it exists.
pub static SPEC: AreaSpec = AreaSpec {
    title: "Traffic forecast",
    res: Res::new("area.forecast", "/api/v1/forecast", 60),
    about: "Capacity and demand forecasts refreshed by forecast_refresh.",
};

/// The last 28 days of usage, daily.
pub const USAGE: Res<Usage> = Res::new("analytics.usage", "/api/v1/analytics/usage", 30);
/// Funnel definitions (palette entries).
pub const FUNNELS: Res<FunnelList> = Res::new("analytics.funnels", "/api/v1/analytics/funnels", 60);

pub const NEXT_FUNNEL: TabAction = TabAction("forecast.next_funnel");

static COMMANDS: &[KeyCommand] = &[cmd(
    Action::Tab(NEXT_FUNNEL),
    &[(KeyCode::Char('f'), NONE)],
    "f",
    "next funnel",
    "Show the next funnel (the palette opens one by name: \"funnel signup\")",
    Scope::OnTab(TITLE),
)];

#[derive(Default)]
pub struct ForecastTab {
    /// Funnel shown; the first one when unset or gone.
    pub funnel: Option<String>,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(ForecastTab::default())
}

impl ForecastTab {
    fn shown<'a>(&self, usage: &'a Usage) -> Option<&'a FunnelResult> {
        self.funnel
            .as_ref()
            .and_then(|n| usage.funnels.iter().find(|f| &f.name == n))
            .or_else(|| usage.funnels.first())
    }

    fn draw_usage(&self, frame: &mut Frame, rect: Rect, app: &App, usage: &Usage) {
        let theme = &app.theme;
        let [sparks, tops, funnel] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Min(5),
            Constraint::Length(9),
        ])
        .areas(rect);
        let cols = Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(sparks);
        let series = |f: fn(&crate::model::UsagePoint) -> i64| -> Vec<u64> {
            usage.series.iter().map(|p| f(p).max(0) as u64).collect()
        };
        for (i, (label, data)) in [
            ("DAU", series(|p| p.dau)),
            ("WAU", series(|p| p.wau)),
            ("MAU", series(|p| p.mau)),
        ]
        .into_iter()
        .enumerate()
        {
            let last = data.last().copied().unwrap_or(0);
            let max = data.iter().copied().max().unwrap_or(0);
            let block = Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(Line::from(vec![
                    Span::styled(format!(" {label} "), theme.base),
                    Span::styled(
                        format!("now {} · max {} ", fmt_count(last), fmt_count(max)),
                        theme.accent,
                    ),
                ]));
            let inner = block.inner(cols[i]);
            frame.render_widget(block, cols[i]);
            let start = data.len().saturating_sub(inner.width as usize);
            frame.render_widget(
                Sparkline::default()
                    .data(&data[start..])
                    .style(theme.sparkline),
                inner,
            );
        }
        let [feat, evs] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(tops);
        for (area, title, list) in [
            (feat, "Top features", &usage.top_features),
            (evs, "Top events", &usage.top_events),
        ] {
            // Name column takes what the two counts (8 + 1 + 7 + 1) leave.
            let nw = (area.width as usize).saturating_sub(2 + 17).clamp(6, 40);
            let mut lines = vec![Line::from(Span::styled(
                format!("{:<nw$} {:>8} {:>7}", "name", "events", "users"),
                theme.muted,
            ))];
            if list.is_empty() {
                lines.push(Line::from(Span::styled(
                    "none in the last 28 days",
                    theme.muted,
                )));
            }
            for t in list {
                lines.push(Line::from(format!(
                    "{:<nw$} {:>8} {:>7}",
                    crate::util::ellipsize(&t.name, nw),
                    fmt_count(t.events.max(0) as u64),
                    fmt_count(t.users.max(0) as u64)
                )));
            }
            frame.render_widget(
                Paragraph::new(lines).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(theme.border)
                        .title(format!(" {title} ")),
                ),
                area,
            );
        }
        let mut lines = Vec::new();
        let title = match self.shown(usage) {
            None => {
                lines.push(Line::from(Span::styled(
                    "No funnel defined: POST /api/v1/analytics/funnels or [analytics.funnels.<name>] in the config.",
                    theme.muted,
                )));
                " Funnels ".to_string()
            }
            Some(f) => {
                lines.push(Line::from(Span::styled(
                    format!(
                        "{:<3} {:<22} {:>8} {:>8} {:>9} {:>10}",
                        "#", "step", "users", "conv", "drop-off", "median"
                    ),
                    theme.muted,
                )));
                for (i, s) in f.steps.iter().enumerate() {
                    let median = s
                        .median_secs_from_previous
                        .map(|m| fmt_duration(m.round() as i64))
                        .unwrap_or_else(|| "-".into());
                    lines.push(Line::from(format!(
                        "{:<3} {:<22} {:>8} {:>7.1}% {:>9} {:>10}",
                        i + 1,
                        crate::util::ellipsize(&s.event, 22),
                        fmt_count(s.users.max(0) as u64),
                        s.conversion * 100.0,
                        fmt_count(s.drop_off.max(0) as u64),
                        median
                    )));
                }
                let others = usage.funnels.len().saturating_sub(1);
                format!(
                    " Funnel {} · {} entered · {:.1}% converted · window {}{} ",
                    f.name,
                    fmt_count(f.entered.max(0) as u64),
                    f.conversion * 100.0,
                    fmt_duration(f.window_secs),
                    if others > 0 {
                        format!(" · f: {others} more")
                    } else {
                        String::new()
                    }
                )
            }
        };
        // Rows are a table: cut at the edge rather than wrapped into the next step.
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme.border)
                    .title(title),
            ),
            funnel,
        );
    }
}

impl Tab for ForecastTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![USAGE.res, SPEC.res.res]
    }

    fn palette_resources(&self) -> Vec<Resource> {
        vec![FUNNELS.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(70), Constraint::Percentage(30)])
                .areas(area);
        let remote = app.cache.remote(USAGE);
        let route = USAGE.res.route;
        let f = freshness(&remote, route, app.now);
        let mut title = "Product usage · last 28 days".to_string();
        if let Some(u) = remote.data {
            if !u.rollup.complete {
                title.push_str(&format!(" · {} day(s) rolling up", u.rollup.pending_days));
            }
        }
        let block = panel(&title, &f, true, &app.theme);
        let inner = block.inner(left);
        frame.render_widget(block, left);
        match remote.data {
            Some(u) => self.draw_usage(frame, inner, app, u),
            None => frame.render_widget(
                Paragraph::new(Span::styled(empty_message(&f, route), app.theme.muted))
                    .wrap(Wrap { trim: false }),
                inner,
            ),
        }
        AreaTab(&SPEC).draw(frame, right, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, cache: &Cache) -> Intent {
        if action != NEXT_FUNNEL {
            return Intent::Nothing;
        }
        let Some(u) = cache.get(USAGE) else {
            return Intent::Nothing;
        };
        if u.funnels.is_empty() {
            return Intent::Notify("no funnel defined for this tenant".into());
        }
        let cur = self
            .shown(u)
            .and_then(|f| u.funnels.iter().position(|x| x.name == f.name))
            .unwrap_or(0);
        self.funnel = Some(u.funnels[(cur + 1) % u.funnels.len()].name.clone());
        Intent::Nothing
    }

    fn palette_entries(&self, cache: &Cache, out: &mut Vec<Entry>) {
        for f in cache
            .get(FUNNELS)
            .map(|l| l.funnels.as_slice())
            .unwrap_or(&[])
        {
            out.push(Entry::new(
                EntryKind::Entity("funnel"),
                format!("funnel {}", f.name),
                format!(
                    "{}  window {}",
                    f.steps.join(" → "),
                    fmt_duration(f.window_secs)
                ),
                Target::Entity {
                    tab: TITLE,
                    key: f.name.clone(),
                },
            ));
        }
    }

    fn open_entity(&mut self, key: &str, _cache: &Cache) {
        self.funnel = Some(key.to_string());
    }

    fn log_area(&self) -> &'static str {
        "analytics"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
