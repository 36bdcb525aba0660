//! Costs tab: probes its area's route; live once the backend area exists.

use super::area::{AreaSpec, AreaTab};
use super::Tab;
use crate::cache::Res;

pub static SPEC: AreaSpec = AreaSpec {
    title: "Costs",
    res: Res::new("area.costs", "/api/v1/costs/summary", 60),
    about: "Cloud and vendor spend by service and tenant, budgets and anomalies.",
};

pub fn tab() -> Box<dyn Tab> {
    Box::new(AreaTab(&SPEC))
}
