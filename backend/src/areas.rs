//! The one list of areas. Adding an area is one module under `backend/src/<area>/`, its
//! migration files, and one line here; everything else (routes, OpenAPI tags, config
//! sections, log files, status summary, telemetry, health, ops verbs, scheduled jobs,
//! queue kinds, the marketplace listing) is derived from this list. See
//! `docs/ARCHITECTURE.md` ("Adding an area").

use crate::area::Area;

pub static ALL: &[&dyn Area] = &[
    &crate::auth::area::KeysArea,
    &crate::audit::area::AuditArea,
    &crate::api::status::StatusArea,
    &crate::queue::area::QueueArea,
    &crate::jobs::area::JobsArea,
    &crate::alerts::area::AlertsArea,
    &crate::selfheal::area::SelfHealArea,
    &crate::telemetry::area::TelemetryArea,
    &crate::ops::area::OpsArea,
    &crate::marketplace::MarketplaceArea,
    &crate::dr::area::DrArea,
    &crate::analytics::AnalyticsArea,
    &crate::ai::AiArea,
    &crate::security::area::SecurityArea,
    &crate::compliance::area::ComplianceArea,
];
