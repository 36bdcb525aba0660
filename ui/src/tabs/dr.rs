//! DR tab: probes its area's route; live once the backend area exists.

use super::area::{AreaSpec, AreaTab};
use super::Tab;
use crate::cache::Res;

pub static SPEC: AreaSpec = AreaSpec {
    title: "DR",
    res: Res::new("area.dr", "/api/v1/dr/status", 60),
    about: "Backups, restore drills (dr_verify) and recovery-point age.",
};

pub fn tab() -> Box<dyn Tab> {
    Box::new(AreaTab(&SPEC))
}
