//! The `dr` evidence section: the backups taken in the period (manifests, rehearsal
//! verdicts) and the DR proofs (the newest backup whose rehearsal passed, that rehearsal,
//! the newest rehearsal whatever its result). Backups are fleet-wide, so every tenant's
//! bundle shows the same ones.

use serde_json::json;

use super::Dr;
use crate::app::{AppState, BoxFuture};
use crate::area::{Evidence, EvidenceRequest, EvidenceSection};

pub struct DrEvidence;

impl Evidence for DrEvidence {
    fn section(&self) -> &'static str {
        "dr"
    }
    fn about(&self) -> &'static str {
        "backups of the period with their manifests and rehearsal verdicts, and the DR proofs (newest verified backup, its passing rehearsal, the newest rehearsal)"
    }
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>> {
        Box::pin(async move {
            let dr = state.require::<Dr>("compliance", "dr")?;
            let list = dr.list().await?;
            let in_period: Vec<_> = list
                .backups
                .iter()
                .filter(|b| req.period.contains(b.manifest.created_at_ms))
                .collect();
            let proofs = dr.proofs().await?;
            let facts = json!({
                "backups_in_period": in_period.len(),
                "verified_in_period": in_period.iter().filter(|b| b.verified.as_deref() == Some("pass")).count(),
                "rpo_minutes": list.rpo_minutes,
                "measured_rpo_secs": list.measured_rpo_secs,
                "latest_verified_backup": proofs.latest_verified_backup.as_ref().map(|m| &m.id),
                "latest_rehearsal": proofs.latest_rehearsal.as_ref().map(|r| json!({"id": r.id, "result": r.result, "started_at": r.started_at})),
            });
            Ok(EvidenceSection {
                files: vec![
                    (
                        "backups.json".into(),
                        serde_json::to_vec_pretty(&in_period)?,
                    ),
                    ("proofs.json".into(), serde_json::to_vec_pretty(&proofs)?),
                ],
                facts,
            })
        })
    }
}
