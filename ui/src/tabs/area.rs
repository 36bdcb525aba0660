//! The optional-area tabs share one body: not installed (404), waiting, failing, or the
//! fields the route returned, shown as they are. Each area tab file only declares its
//! [`AreaSpec`].

use std::any::Any;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::Tab;
use crate::app::App;
use crate::cache::{Res, Resource};
use crate::components::{empty_message, freshness, panel, Freshness};
use crate::model::AreaData;

/// One optional area: its tab title, the route probed, and what it covers.
pub struct AreaSpec {
    pub title: &'static str,
    pub res: Res<AreaData>,
    /// What the area covers, shown while it is not installed.
    pub about: &'static str,
}

pub struct AreaTab(pub &'static AreaSpec);

impl AreaSpec {
    /// Whether the route answered 404 (the area is not installed: an answer, shown as
    /// fresh) and the panel's freshness marker.
    pub fn probe(&self, app: &App) -> (bool, Freshness) {
        let remote = app.cache.remote(self.res);
        let not_installed = remote.error.as_ref().and_then(|e| e.status()) == Some(404);
        let f = if not_installed {
            Freshness::Fresh
        } else {
            freshness(&remote, self.res.res.route, app.now)
        };
        (not_installed, f)
    }
}

impl Tab for AreaTab {
    fn title(&self) -> &'static str {
        self.0.title
    }

    fn resources(&self) -> Vec<Resource> {
        vec![self.0.res.res]
    }

    fn draw(&self, frame: &mut Frame, rect: Rect, app: &App) {
        let spec = self.0;
        let theme = &app.theme;
        let remote = app.cache.remote(spec.res);
        let route = spec.res.res.route;
        let (not_installed, f) = spec.probe(app);
        let block = panel(spec.title, &f, true, theme);
        let mut lines: Vec<Line> = Vec::new();
        if not_installed {
            lines.push(Line::from(Span::styled(
                format!("This area is not installed on this backend (GET {route} answered 404)."),
                theme.warn,
            )));
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(spec.about, theme.muted)));
            lines.push(Line::from(Span::styled(
                "Nothing is shown until the backend serves this route; it is probed again every minute.",
                theme.muted,
            )));
        } else if let Some(d) = remote.data {
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
            lines.push(Line::from(Span::styled(spec.about, theme.muted)));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            rect,
        );
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
