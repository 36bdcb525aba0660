//! Costs tab: probes `Area::Costs`'s route; live once the backend area exists.

use ratatui::layout::Rect;
use ratatui::Frame;

use crate::app::App;
use crate::event::Area;

/// What the area covers, shown while it is not installed.
pub const ABOUT: &str = "Cloud and vendor spend by service and tenant, budgets and anomalies.";

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    super::area_tab(frame, area, app, Area::Costs, ABOUT);
}
