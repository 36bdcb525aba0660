//! Forecast tab: probes `Area::Forecast`'s route; live once the backend area exists.

use ratatui::layout::Rect;
use ratatui::Frame;

use crate::app::App;
use crate::event::Area;

/// What the area covers, shown while it is not installed.
pub const ABOUT: &str = "Capacity and demand forecasts refreshed by forecast_refresh.";

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    super::area_tab(frame, area, app, Area::Forecast, ABOUT);
}
