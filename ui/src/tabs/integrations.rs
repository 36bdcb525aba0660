//! Integrations tab: probes its area's route; live once the backend area exists.

use super::area::{AreaSpec, AreaTab};
use super::Tab;
use crate::cache::Res;

pub static SPEC: AreaSpec = AreaSpec {
    title: "Integrations",
    res: Res::new("area.integrations", "/api/v1/integrations", 60),
    about: "Connected third-party services and their sync health.",
};

pub fn tab() -> Box<dyn Tab> {
    Box::new(AreaTab(&SPEC))
}
