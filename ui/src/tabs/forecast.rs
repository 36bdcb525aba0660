//! Forecast tab: probes its area's route; live once the backend area exists.

use super::area::{AreaSpec, AreaTab};
use super::Tab;
use crate::cache::Res;

pub static SPEC: AreaSpec = AreaSpec {
    title: "Forecast",
    res: Res::new("area.forecast", "/api/v1/forecast", 60),
    about: "Capacity and demand forecasts refreshed by forecast_refresh.",
};

pub fn tab() -> Box<dyn Tab> {
    Box::new(AreaTab(&SPEC))
}
