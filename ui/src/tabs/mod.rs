//! The tabs. Each is one file implementing [`Tab`]; [`all`] is the one list (order = the
//! number keys). Telemetry, Jobs, Queue and DR are live; the optional areas probe their route and
//! say plainly when the backend does not have that area or its module is disabled.
//!
//! Adding a tab: write `tabs/<name>.rs` with a type implementing [`Tab`] (title, the
//! [`Res`](crate::cache::Res) constants it reads, draw, its keys as `KeyCommand`s with
//! `Scope::OnTab(title)`, palette entries) and a `pub fn tab() -> Box<dyn Tab>`, then add one
//! line to [`all`]. The cache, fetch loop, key bar, help and palette pick it up from there.

pub mod area;
pub mod costs;
pub mod dr;
pub mod forecast;
pub mod integrations;
pub mod jobs;
pub mod queue;
pub mod security;
pub mod telemetry;

use std::any::Any;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use serde_json::{Map, Value};

use crate::app::App;
use crate::cache::{Cache, Resource};
use crate::client::Disabled;
use crate::commands::{KeyCommand, TabAction};
use crate::components::table::TableView;
use crate::components::{panel, Freshness};
use crate::popups::describe::Described;
use crate::popups::palette::Entry;

/// The one list of tabs, in key order (`1`–`8`).
pub fn all() -> Vec<Box<dyn Tab>> {
    vec![
        telemetry::tab(),
        jobs::tab(),
        queue::tab(),
        costs::tab(),
        security::tab(),
        dr::tab(),
        forecast::tab(),
        integrations::tab(),
    ]
}

/// What a tab asks the app to do after one of its keys or a palette jump.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Nothing,
    Notify(String),
    /// Run this ops verb (args form if needed, dry-run, confirm). Its risk comes from the
    /// server's verb registry only: without the registry the action is refused, never run
    /// as a low-risk call.
    Verb {
        name: &'static str,
        args: Map<String, Value>,
    },
    /// The tab changed a request parameter (e.g. a filter): fetch this resource now.
    Refetch(Resource),
}

/// One console tab: its data needs, drawing, keys and palette entries, with its own state
/// (selection, filters, panes).
pub trait Tab: Any {
    fn title(&self) -> &'static str;

    /// Resources kept fresh while this tab is shown.
    fn resources(&self) -> Vec<Resource>;

    /// The resources of the tab's own area: when they answer "module disabled" or "not
    /// installed", so is the tab. Resources of another area a pane shows beside (the
    /// Security tab's compliance hooks) are left out, and that pane says so itself.
    fn area_resources(&self) -> Vec<Resource> {
        self.resources()
    }

    /// Resources its palette entries come from (fetched while the palette is open).
    fn palette_resources(&self) -> Vec<Resource> {
        Vec::new()
    }

    /// The request path for `r` when it depends on this tab's state (query parameters).
    fn path(&self, _r: Resource) -> Option<String> {
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App);

    /// This tab's keys (scope `Scope::OnTab(self.title())`).
    fn commands(&self) -> &'static [KeyCommand] {
        &[]
    }

    /// Runs one of this tab's [`commands`](Tab::commands).
    fn on_action(&mut self, _action: TabAction, _cache: &Cache) -> Intent {
        Intent::Nothing
    }

    /// Whether the body is a selectable, filterable table (enables `/`, `j`/`k`…).
    fn has_table(&self) -> bool {
        self.table().is_some()
    }

    /// The table the selection keys and `/` act on.
    fn table(&self) -> Option<&TableView> {
        None
    }

    fn table_mut(&mut self) -> Option<&mut TableView> {
        None
    }

    /// Rebuilds the visible rows of its tables from the cache (after new data or a filter
    /// edit).
    fn refilter(&mut self, _cache: &Cache) {}

    /// Entities it contributes to the palette.
    fn palette_entries(&self, _cache: &Cache, _out: &mut Vec<Entry>) {}

    /// The palette's Enter on one of this tab's entities: select it.
    fn open_entity(&mut self, _key: &str, _cache: &Cache) {}

    /// The describe view of the selected row (`d` / Enter): every field of the record the
    /// backend sent, its full id. `None` when nothing is selected.
    fn describe(&self, _cache: &Cache) -> Option<Described> {
        None
    }

    /// Arguments of verb `verb` taken from the selected row, so a verb chosen in the palette
    /// opens with them filled in (`retry_job` on a selected dead job gets its id).
    fn selection_args(&self, _verb: &crate::model::Verb, _cache: &Cache) -> Map<String, Value> {
        Map::new()
    }

    /// The log area (`<data-dir>/logs/<area>.*.ndjson`) the logs view (`l`) opens on.
    fn log_area(&self) -> &'static str {
        "server"
    }

    fn as_any(&self) -> &dyn Any;
}

/// The module-disabled answer of one of the tab's resources, if any.
pub fn disabled(tab: &dyn Tab, cache: &Cache) -> Option<Disabled> {
    tab.area_resources()
        .into_iter()
        .find_map(|r| cache.meta(r).disabled())
}

/// Whether the tab has nothing to show here: its area is not installed on this backend
/// (404) or its module is disabled. The tab line dims it.
pub fn unavailable(tab: &dyn Tab, cache: &Cache) -> bool {
    let res = tab.area_resources();
    !res.is_empty()
        && res.iter().all(|r| {
            let m = cache.meta(*r);
            m.data.is_none() && m.error.as_ref().and_then(|e| e.status()) == Some(404)
        })
}

/// Draws the current tab, or the module-disabled notice instead of its body.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let tab = app.current();
    match disabled(tab, &app.cache) {
        Some(d) => draw_disabled(frame, area, app, tab.title(), &d),
        None => tab.draw(frame, area, app),
    }
}

/// "Module X is disabled": an answer, not an error, so no backoff and no red.
pub fn draw_disabled(frame: &mut Frame, rect: Rect, app: &App, title: &str, d: &Disabled) {
    let theme = &app.theme;
    let block = panel(title, &Freshness::Fresh, true, theme);
    let name = &d.module;
    let mut lines = vec![Line::from(Span::styled(
        if d.fleet {
            format!("Module {name} is turned off fleet-wide.")
        } else {
            format!("Module {name} is disabled for this tenant.")
        },
        theme.warn,
    ))];
    lines.push(Line::default());
    if d.fleet {
        lines.push(Line::from(format!(
            "The server config has `[modules] {name} = false`; an operator of the fleet can set it back to true and restart."
        )));
    } else {
        lines.push(Line::from(format!(
            "To enable it: palette (:) → toggle_module with module={name} enabled=true (admin role)."
        )));
    }
    lines.push(Line::from(Span::styled(
        "Nothing is shown meanwhile; the console checks again every minute.",
        theme.muted,
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// The verb `name` if the backend offers it (tabs use it to fill in arguments).
pub fn find_verb<'a>(cache: &'a Cache, name: &str) -> Option<&'a crate::model::Verb> {
    cache
        .get(crate::resources::VERBS)?
        .verbs
        .iter()
        .find(|v| v.name == name)
}

/// Picks the verb's argument name among `candidates` (else its first required one).
pub fn pick_arg(v: &crate::model::Verb, candidates: &[&str]) -> String {
    use crate::model::VerbExt;
    let props = v.arg_props();
    candidates
        .iter()
        .find(|c| props.iter().any(|(k, _, _)| k == *c))
        .map(|c| c.to_string())
        .or_else(|| props.iter().find(|(_, _, r)| *r).map(|(k, _, _)| k.clone()))
        .or_else(|| props.first().map(|(k, _, _)| k.clone()))
        .unwrap_or_else(|| candidates[0].to_string())
}
