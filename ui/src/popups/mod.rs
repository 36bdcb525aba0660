//! Dialogs drawn over the tabs: palette, args form, plan/confirm, result, help, describe,
//! logs.

pub mod args;
pub mod describe;
pub mod help;
pub mod logs;
pub mod palette;
pub mod plan;
pub mod result;

use ratatui::layout::Rect;
use ratatui::Frame;

use crate::app::App;
use crate::commands::Mode;

/// The open dialog (at most one).
pub enum Popup {
    Palette(palette::PaletteState),
    // Boxed: the text area is large and the popup is moved around.
    ArgsForm(Box<args::ArgsForm>),
    Plan(Box<plan::PlanDialog>),
    Result(result::ResultDialog),
    Help { scroll: u16 },
    Describe(describe::DescribeView),
    Logs(logs::LogsView),
}

impl Popup {
    pub fn mode(&self) -> Mode {
        match self {
            Popup::Palette(_) => Mode::Palette,
            Popup::ArgsForm(_) => Mode::ArgsForm,
            Popup::Plan(d) => d.mode(),
            Popup::Result(_) => Mode::Result,
            Popup::Help { .. } => Mode::Help,
            Popup::Describe(_) => Mode::Describe,
            Popup::Logs(l) if l.searching => Mode::LogsSearch,
            Popup::Logs(_) => Mode::Logs,
        }
    }

    /// Short name, handy in tests and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Popup::Palette(_) => "palette",
            Popup::ArgsForm(_) => "args",
            Popup::Plan(_) => "plan",
            Popup::Result(_) => "result",
            Popup::Help { .. } => "help",
            Popup::Describe(d) if d.json => "describe json",
            Popup::Describe(_) => "describe",
            Popup::Logs(_) => "logs",
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(p) = &app.popup else { return };
    let theme = &app.theme;
    match p {
        Popup::Palette(s) => palette::draw(frame, area, s, theme),
        Popup::ArgsForm(f) => args::draw(frame, area, f, theme),
        Popup::Plan(d) => plan::draw(frame, area, d, app.now, theme),
        Popup::Result(r) => result::draw(frame, area, r, theme),
        Popup::Help { scroll } => help::draw(frame, area, app, *scroll),
        Popup::Describe(d) => describe::draw(
            frame,
            area,
            d,
            theme,
            describe::Clock {
                now: app.now,
                utc: app.utc,
            },
        ),
        Popup::Logs(l) => logs::draw(frame, area, app, l),
    }
}
