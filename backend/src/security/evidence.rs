//! The `security` section of compliance evidence bundles: every scan report of the
//! tenant in the period (as the API returns it: redacted findings, packages, the SBOM)
//! and the newest one's SBOM on its own.

use serde_json::json;

use super::Security;
use crate::app::{AppState, BoxFuture};
use crate::area::{Evidence, EvidenceRequest, EvidenceSection, EvidenceTooLarge};

pub struct SecurityEvidence;

impl Evidence for SecurityEvidence {
    fn section(&self) -> &'static str {
        "security"
    }
    fn about(&self) -> &'static str {
        "security scan reports of the period (redacted secret findings, vulnerable packages, counts) and the newest SBOM (CycloneDX 1.5)"
    }
    fn collect<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a EvidenceRequest,
    ) -> BoxFuture<'a, anyhow::Result<EvidenceSection>> {
        Box::pin(async move {
            let sec = state.require::<Security>("compliance", "security")?;
            let p = req.period;
            let reports = sec.between(&req.tenant, p.from_ms, p.to_ms).await?;
            if reports.len() as i64 > req.max_records {
                return Err(EvidenceTooLarge(format!(
                    "the period holds {} security reports, more than {}: choose a shorter period",
                    reports.len(),
                    req.max_records
                ))
                .into());
            }
            let mut files = Vec::new();
            for r in &reports {
                files.push((format!("{}.json", r.id), serde_json::to_vec_pretty(r)?));
            }
            if let Some(last) = reports.last() {
                files.push((
                    format!("sbom-{}.cdx.json", last.id),
                    serde_json::to_vec_pretty(&last.sbom)?,
                ));
            }
            let facts = json!({
                "reports": reports.len(),
                "ids": reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
                "latest": reports.last().map(|r| json!({
                    "id": r.id,
                    "created_at": r.created_at,
                    "counts": r.counts,
                })),
            });
            Ok(EvidenceSection { files, facts })
        })
    }
}
