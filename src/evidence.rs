//! `echopilot evidence verify FILE.zip`: check an evidence bundle offline (no server, no
//! database): the signature of `evidence.json`, every file's SHA-256, and the audit
//! section's proofs. Exit 0 when it verifies, 1 when it does not (also when the reader of
//! its output went away early: `| head` ends the output, not the verdict).

use std::path::Path;
use std::process::ExitCode;

use echopilot_backend::compliance::evidence::verify_bundle;

use crate::out::{self, Stopped};

pub fn verify(
    file: &Path,
    public_key: Option<&str>,
    audit_public_key: Option<&str>,
    json: bool,
) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("echopilot: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let (code, written) = match verify_bundle(&bytes, public_key, audit_public_key) {
        Ok(v) => {
            let written = if json {
                let out = serde_json::json!({
                    "ok": true,
                    "file": file.display().to_string(),
                    "tenant": v.manifest["tenant"],
                    "period": v.manifest["period"],
                    "tree_head": v.manifest["tree_head"],
                    "checks": v.checks,
                });
                out::line(&serde_json::to_string_pretty(&out).unwrap_or_default())
            } else {
                let head = format!(
                    "{}: OK — tenant {}, period {} .. {}",
                    file.display(),
                    v.manifest["tenant"].as_str().unwrap_or("?"),
                    v.manifest["period"]["from"].as_str().unwrap_or("?"),
                    v.manifest["period"]["to"].as_str().unwrap_or("?"),
                );
                let checks: Vec<String> = v.checks.iter().map(|c| format!("  ok  {c}")).collect();
                out::line(&head).and_then(|()| out::lines(checks.iter().map(String::as_str)))
            };
            (ExitCode::SUCCESS, written)
        }
        Err(e) => {
            let written = if json {
                let out = serde_json::json!({"ok": false, "file": file.display().to_string(), "error": e});
                out::line(&serde_json::to_string_pretty(&out).unwrap_or_default())
            } else {
                eprintln!("{}: FAILED — {e}", file.display());
                Ok(())
            };
            (ExitCode::from(1), written)
        }
    };
    match written {
        // A closed pipe ends the output, not the verdict.
        Ok(()) | Err(Stopped::Closed) => code,
        Err(Stopped::Failed) => ExitCode::from(2),
    }
}
