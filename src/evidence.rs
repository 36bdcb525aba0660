//! `echopilot evidence verify FILE.zip`: check an evidence bundle offline (no server, no
//! database): the signature of `evidence.json`, every file's SHA-256, and the audit
//! section's proofs. Exit 0 when it verifies, 1 when it does not.

use std::path::Path;
use std::process::ExitCode;

use echopilot_backend::compliance::evidence::verify_bundle;

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
    match verify_bundle(&bytes, public_key, audit_public_key) {
        Ok(v) => {
            if json {
                let out = serde_json::json!({
                    "ok": true,
                    "file": file.display().to_string(),
                    "tenant": v.manifest["tenant"],
                    "period": v.manifest["period"],
                    "tree_head": v.manifest["tree_head"],
                    "checks": v.checks,
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                println!(
                    "{}: OK — tenant {}, period {} .. {}",
                    file.display(),
                    v.manifest["tenant"].as_str().unwrap_or("?"),
                    v.manifest["period"]["from"].as_str().unwrap_or("?"),
                    v.manifest["period"]["to"].as_str().unwrap_or("?"),
                );
                for c in &v.checks {
                    println!("  ok  {c}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                let out = serde_json::json!({"ok": false, "file": file.display().to_string(), "error": e});
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                eprintln!("{}: FAILED — {e}", file.display());
            }
            ExitCode::from(1)
        }
    }
}
