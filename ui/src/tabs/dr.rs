//! DR tab: probes `Area::Dr`'s route; live once the backend area exists.

use ratatui::layout::Rect;
use ratatui::Frame;

use crate::app::App;
use crate::event::Area;

/// What the area covers, shown while it is not installed.
pub const ABOUT: &str = "Backups, restore drills (dr_verify) and recovery-point age.";

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    super::area_tab(frame, area, app, Area::Dr, ABOUT);
}
