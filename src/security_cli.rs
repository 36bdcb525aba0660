//! `echopilot security …`: the server's scanner from the command line (CI runs it on this
//! repository), the OSV import, and the benchmark corpus.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use echopilot_backend::config::{Config, Overrides};
use echopilot_backend::security::{self, scan, SecuritySection};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// A summary and the findings, one per line.
    Text,
    /// The whole report (as `GET /api/v1/security/reports/{id}`).
    Json,
    /// The CycloneDX 1.5 SBOM only.
    Sbom,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 when a secret is found (the default: CI fails on a leaked secret).
    Secrets,
    /// Exit 1 on a secret or a vulnerable package.
    Any,
    /// Always exit 0 once the scan ran.
    Never,
}

#[derive(Subcommand, Debug)]
pub enum SecurityCommand {
    /// Scan files and directories for secrets and vulnerable packages (offline OSV).
    /// Exit 1 when something is found (see --fail-on), 2 on bad usage.
    Scan {
        /// Files or directories (a `.echopilot-allowlist.toml` in a directory applies).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Write the output here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// OSV database (default: [security] osv_dir, else <data-dir>/osv).
        #[arg(long, value_name = "DIR")]
        osv_dir: Option<PathBuf>,
        /// An allowlist file (paths, regexes, fingerprints) on top of the config's.
        #[arg(long, value_name = "FILE")]
        allowlist: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "secrets")]
        fail_on: FailOn,
        /// Also search the git history of directories that are repositories (the lines
        /// each commit added; bounded by [security] git_max_commits / git_max_bytes).
        /// Default: [security] git_history.
        #[arg(long)]
        git_history: bool,
    },
    /// Copy OSV files into the OSV database: per-ecosystem `all.zip` archives, OSV JSON
    /// files, or directories of them. Each is checked first.
    ImportOsv {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Destination (default: [security] osv_dir, else <data-dir>/osv).
        #[arg(long, value_name = "DIR")]
        osv_dir: Option<PathBuf>,
    },
    /// Write the benchmark's seeded corpus (fake secrets of every rule among
    /// source-like lines) and print where each secret is, as JSON.
    #[command(hide = true)]
    SeedCorpus {
        dir: PathBuf,
        #[arg(long, default_value_t = 20)]
        size_mb: u64,
        /// One secret per this many lines.
        #[arg(long, default_value_t = 400)]
        every: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn config(
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> Result<(Config, SecuritySection), String> {
    let cfg = Config::load(&Overrides {
        config_file,
        data_dir,
        addr: None,
        database_url: None,
    })
    .map_err(|e| e.to_string())?;
    let s = SecuritySection::load(&cfg.raw).map_err(|e| e.to_string())?;
    Ok((cfg, s))
}

/// Write the output to `output` or stdout. A reader of stdout that went away early (`|
/// head`) is not an error: the output just ends.
fn write_out(output: &Option<PathBuf>, text: &str) -> Result<(), String> {
    match output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
        }
        None => match crate::out::line(text) {
            Ok(()) | Err(crate::out::Stopped::Closed) => Ok(()),
            Err(crate::out::Stopped::Failed) => Err("cannot write to stdout".into()),
        },
    }
}

pub fn run(
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    cmd: SecurityCommand,
) -> ExitCode {
    match run_inner(data_dir, config_file, cmd) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("echopilot: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    cmd: SecurityCommand,
) -> Result<ExitCode, String> {
    match cmd {
        SecurityCommand::Scan {
            paths,
            format,
            output,
            osv_dir,
            allowlist,
            fail_on,
            git_history,
        } => {
            let (cfg, s) = config(data_dir, config_file)?;
            let mut opts = s.options(&cfg, "cli", "");
            opts.targets = paths;
            opts.git.enabled |= git_history;
            if let Some(d) = osv_dir {
                opts.osv_dir = d;
            }
            if let Some(f) = allowlist {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
                let extra: scan::AllowlistSpec =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
                opts.allowlist.paths.extend(extra.paths);
                opts.allowlist.regexes.extend(extra.regexes);
                opts.allowlist.fingerprints.extend(extra.fingerprints);
            }
            let report = scan::run(&opts, None).map_err(|e| format!("{e:#}"))?;
            let text = match format {
                Format::Json => serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
                Format::Sbom => {
                    serde_json::to_string_pretty(&report.sbom).map_err(|e| e.to_string())?
                }
                Format::Text => text_report(&report),
            };
            write_out(&output, &text)?;
            if !matches!(format, Format::Text) || output.is_some() {
                eprintln!("{}", summary_line(&report));
            }
            let c = &report.counts;
            let fail = match fail_on {
                FailOn::Secrets => c.secrets > 0,
                FailOn::Any => c.issues() > 0,
                FailOn::Never => false,
            };
            Ok(if fail {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        SecurityCommand::ImportOsv { files, osv_dir } => {
            let dir = match osv_dir {
                Some(d) => d,
                None => {
                    let (cfg, s) = config(data_dir, config_file)?;
                    s.osv_dir(&cfg)
                }
            };
            let done = security::osv::import(&dir, &files).map_err(|e| format!("{e:#}"))?;
            let lines: Vec<String> = done
                .iter()
                .map(|i| {
                    format!(
                        "imported {}: {} advisories{} -> {}",
                        i.file,
                        i.advisories,
                        if i.errors > 0 {
                            format!(" ({} entries not OSV, skipped)", i.errors)
                        } else {
                            String::new()
                        },
                        i.stored_as
                    )
                })
                .collect();
            if !lines.is_empty() {
                write_out(&None, &lines.join("\n"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SecurityCommand::SeedCorpus {
            dir,
            size_mb,
            every,
            seed,
        } => {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let seeded =
                security::samples::write_corpus(&dir, size_mb * 1024 * 1024, every.max(2), seed)
                    .map_err(|e| e.to_string())?;
            write_out(
                &None,
                &serde_json::to_string(&seeded).map_err(|e| e.to_string())?,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn summary_line(r: &security::Report) -> String {
    let c = &r.counts;
    format!(
        "scanned {} files{} ({:.1} MiB) in {} ms: {} secret(s), {} vulnerable package version(s) of {} package(s) ({} advisories loaded); critical {}, high {}, medium {}, low {}, unknown {}; {} error(s), {} allowlisted",
        c.files_scanned,
        if r.history.is_empty() {
            String::new()
        } else {
            format!(
                " and {} commit(s)",
                r.history.iter().map(|h| h.commits).sum::<u64>()
            )
        },
        c.bytes_scanned as f64 / 1048576.0,
        r.duration_ms,
        c.secrets,
        c.vulnerabilities,
        c.packages,
        c.advisories,
        c.critical,
        c.high,
        c.medium,
        c.low,
        c.unknown,
        c.errors,
        c.allowlisted
    )
}

fn text_report(r: &security::Report) -> String {
    let mut out = vec![summary_line(r)];
    for s in &r.secrets {
        out.push(format!(
            "SECRET {:8} {}{}:{} {} {} (fingerprint {})",
            s.severity.as_str(),
            s.commit
                .as_deref()
                .map(|c| format!("commit {} ", &c[..c.len().min(12)]))
                .unwrap_or_default(),
            s.file,
            s.line,
            s.rule,
            s.redacted,
            s.fingerprint
        ));
    }
    for v in &r.vulnerabilities {
        out.push(format!(
            "VULN   {:8} {} {}@{} ({}) fixed in {} — {}",
            v.severity.as_str(),
            v.id,
            v.package,
            v.version,
            v.source,
            if v.fixed.is_empty() {
                "-".to_string()
            } else {
                v.fixed.join(", ")
            },
            v.summary
        ));
    }
    for h in &r.history {
        out.push(format!(
            "HISTORY {}: {} commit(s), {:.1} MiB of added lines{}",
            h.target,
            h.commits,
            h.bytes as f64 / 1048576.0,
            h.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    for e in &r.errors {
        out.push(format!("ERROR  {} {}: {}", e.stage, e.file, e.error));
    }
    out.join("\n")
}
