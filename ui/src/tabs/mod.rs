//! The eight tabs. Telemetry, Jobs and Queue are live; the other five probe their area's route
//! and say plainly when the backend does not have that area.

pub mod costs;
pub mod dr;
pub mod forecast;
pub mod integrations;
pub mod jobs;
pub mod queue;
pub mod security;
pub mod telemetry;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::app::App;
use crate::components::{empty_message, freshness, panel, Freshness};
use crate::event::Area;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Telemetry,
    Jobs,
    Queue,
    Costs,
    Security,
    Dr,
    Forecast,
    Integrations,
}

impl Tab {
    pub const ALL: [Tab; 8] = [
        Tab::Telemetry,
        Tab::Jobs,
        Tab::Queue,
        Tab::Costs,
        Tab::Security,
        Tab::Dr,
        Tab::Forecast,
        Tab::Integrations,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Telemetry => "Telemetry",
            Tab::Jobs => "Jobs",
            Tab::Queue => "Queue",
            Tab::Costs => "Costs",
            Tab::Security => "Security",
            Tab::Dr => "DR",
            Tab::Forecast => "Forecast",
            Tab::Integrations => "Integrations",
        }
    }

    /// 1-based number (the key that selects it).
    pub fn number(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) + 1
    }

    pub fn from_number(n: usize) -> Option<Tab> {
        n.checked_sub(1).and_then(|i| Tab::ALL.get(i).copied())
    }

    pub fn next(self) -> Tab {
        Tab::ALL[self.number() % Tab::ALL.len()]
    }

    pub fn prev(self) -> Tab {
        Tab::ALL[(self.number() + Tab::ALL.len() - 2) % Tab::ALL.len()]
    }

    /// Tabs whose body is a selectable, filterable table.
    pub fn has_table(self) -> bool {
        matches!(self, Tab::Jobs | Tab::Queue)
    }

    /// The optional backend area behind this tab.
    pub fn area(self) -> Option<Area> {
        match self {
            Tab::Costs => Some(Area::Costs),
            Tab::Security => Some(Area::Security),
            Tab::Dr => Some(Area::Dr),
            Tab::Forecast => Some(Area::Forecast),
            Tab::Integrations => Some(Area::Integrations),
            _ => None,
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    match app.tab {
        Tab::Telemetry => telemetry::draw(frame, area, app),
        Tab::Jobs => jobs::draw(frame, area, app),
        Tab::Queue => queue::draw(frame, area, app),
        Tab::Costs => costs::draw(frame, area, app),
        Tab::Security => security::draw(frame, area, app),
        Tab::Dr => dr::draw(frame, area, app),
        Tab::Forecast => forecast::draw(frame, area, app),
        Tab::Integrations => integrations::draw(frame, area, app),
    }
}

/// Shared body of the optional-area tabs: not installed (404), waiting, failing, or the
/// fields the route returned, shown as they are.
pub(crate) fn area_tab(frame: &mut Frame, rect: Rect, app: &App, a: Area, about: &str) {
    let theme = &app.theme;
    let remote = app.area(a);
    let route = a.route();
    let title = match app.tab {
        t if t.area() == Some(a) => t.title(),
        _ => "Area",
    };
    let not_installed = remote.error.as_ref().and_then(|e| e.status()) == Some(404);
    let f = if not_installed {
        Freshness::Fresh
    } else {
        freshness(remote, route, app.now)
    };
    let block = panel(title, &f, true, theme);
    let mut lines: Vec<Line> = Vec::new();
    if not_installed {
        lines.push(Line::from(Span::styled(
            format!("This area is not installed on this backend (GET {route} answered 404)."),
            theme.warn,
        )));
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(about.to_string(), theme.muted)));
        lines.push(Line::from(Span::styled(
            "Nothing is shown until the backend serves this route; it is probed again every minute.",
            theme.muted,
        )));
    } else if let Some(d) = &remote.data {
        lines.push(Line::from(Span::styled(
            format!("GET {route}"),
            theme.muted,
        )));
        if d.fields.is_empty() {
            lines.push(Line::from("The route answered with no fields."));
        }
        let kw = d
            .fields
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0)
            .min(40);
        for (k, v) in &d.fields {
            lines.push(Line::from(vec![
                Span::styled(format!("{k:<kw$}  "), theme.accent),
                Span::raw(v.clone()),
            ]));
        }
    } else {
        lines.push(Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        )));
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(about.to_string(), theme.muted)));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
