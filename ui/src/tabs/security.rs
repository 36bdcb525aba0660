//! Security tab: probes its area's route; live once the backend area exists.

use super::area::{AreaSpec, AreaTab};
use super::Tab;
use crate::cache::Res;

pub static SPEC: AreaSpec = AreaSpec {
    title: "Security",
    res: Res::new("area.security", "/api/v1/security/findings", 60),
    about: "Scan findings, secret exposure checks and access anomalies.",
};

pub fn tab() -> Box<dyn Tab> {
    Box::new(AreaTab(&SPEC))
}
