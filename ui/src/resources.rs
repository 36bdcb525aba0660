//! Resources the whole console uses (header, palette, help); each tab declares its own in
//! its file.

use crate::cache::Res;
use crate::model::{AuditChain, Telemetry, TenantList, VerbList};

/// Header badge and the Telemetry tab's component list.
pub const TELEMETRY: Res<Telemetry> = Res::new("ops.telemetry", "/api/v1/ops/telemetry", 5);
/// Verbs for the palette, the help overlay and the dry-run flows.
pub const VERBS: Res<VerbList> = Res::new("ops.verbs", "/api/v1/ops/verbs", 60);
/// Audit chain size in the header.
pub const AUDIT: Res<AuditChain> = Res::new("audit.chain", "/api/v1/audit/chain", 15);
/// Tenants the key may switch to (palette).
pub const TENANTS: Res<TenantList> = Res::new("tenants", "/api/v1/tenants", 60);
