use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use echopilot_backend::auth::{self, Actor, RevokeOutcome};
use echopilot_backend::config::{ConfigError, Overrides};
use echopilot_backend::model::Role;
use echopilot_backend::{logging, server, Config, Store};

/// Exit code for invalid configuration or usage.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "echopilot",
    version,
    about = "EchoPilot OS: operations platform for a SaaS business",
    long_about = "EchoPilot OS. With no subcommand: start an embedded backend (SQLite in the data dir) and open the operator console on it.\nConfiguration: defaults < echopilot.toml < ECHOPILOT_* env < flags."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Console colour theme: default, light, high-contrast (or a themes/*.toml name).
    #[arg(long, default_value = "default", global = true)]
    theme: String,
    /// Hide mutating verbs in the console (the server enforces roles anyway).
    #[arg(long, global = true)]
    readonly: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone, Default)]
struct GlobalArgs {
    /// Data directory (default: ECHOPILOT_DATA_DIR, else the XDG data dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (default: ECHOPILOT_CONFIG, else <config dir>/echopilot/echopilot.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL (postgres://… to use PostgreSQL; default: SQLite in the data dir).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the headless backend until Ctrl-C / SIGTERM.
    Serve {
        /// Listen address (default 127.0.0.1:8080; port 0 picks a free port).
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
    },
    /// Manage API keys directly in the database (bootstrap and recovery).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Open the console on a remote backend.
    Tui {
        /// Backend URL.
        #[arg(long, env = "ECHOPILOT_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key. Prefer ECHOPILOT_KEY or --key-file: a --key value shows in `ps`.
        #[arg(long, env = "ECHOPILOT_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Read the API key from this file (first line; keep it mode 0600).
        #[arg(
            long,
            env = "ECHOPILOT_KEY_FILE",
            value_name = "FILE",
            conflicts_with = "key"
        )]
        key_file: Option<PathBuf>,
        /// Tenant to view (X-Tenant-Id).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Run an ops command: prints the dry-run plan; --confirm executes exactly that plan.
    /// Without VERB, lists the verbs.
    Ctl {
        /// Verb name (see `echopilot ctl` for the list).
        verb: Option<String>,
        /// Verb argument as key=value (JSON values allowed); repeatable.
        #[arg(long = "arg", value_name = "K=V")]
        args: Vec<String>,
        /// Execute the plan after showing it.
        #[arg(long)]
        confirm: bool,
        /// Why (required for high-risk verbs).
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Backend URL.
        #[arg(long, env = "ECHOPILOT_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key (default: ECHOPILOT_KEY, else <data-dir>/admin.key).
        #[arg(long, env = "ECHOPILOT_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Tenant (X-Tenant-Id).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Restore a backup (a `<data-dir>/backups/<id>` directory) into a new data dir, or
    /// into an empty PostgreSQL database with --database-url. Verifies every file and the
    /// restored data before putting anything in place; the key comes from [dr] key_file or
    /// ECHOPILOT_DR__KEY.
    Restore {
        /// The backup directory (holding manifest.json).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Overwrite a data dir that is not empty (or looks in use), or a database that
        /// has tables (its public schema is dropped first).
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The security scanner: `scan PATH…` (secrets, lockfiles, offline OSV, SBOM) and
    /// `import-osv FILE…`. See docs/SECURITY.md.
    Security {
        #[command(subcommand)]
        command: crate::security_cli::SecurityCommand,
    },
    /// Compliance evidence bundles (`POST /api/v1/compliance/evidence/export`).
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// The embedded console plus a clearly labelled demo tenant with synthetic activity.
    Demo,
    /// Print the version.
    Version,
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum EvidenceCommand {
    /// Check a bundle offline: the signature of evidence.json, every file's SHA-256, the
    /// audit records' inclusion and consistency proofs. Exit 1 when it does not verify.
    Verify {
        /// The bundle (.zip).
        file: PathBuf,
        /// Require this evidence key (hex; `compliance.evidence_public_key` in the status
        /// summary). Without it the key inside the bundle is used.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Require the tree head to be signed by this audit key (`GET /api/v1/audit/heads`).
        #[arg(long, value_name = "HEX")]
        audit_public_key: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key and print it once.
    Create {
        /// superadmin, admin, operator, readonly, integration or ingest (publishable: may
        /// only add analytics events).
        #[arg(long)]
        role: String,
        /// Tenant id (created if new).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never secrets).
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke { id: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Version) => {
            println!("echopilot {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "echopilot",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Serve { addr }) => run(serve(cli.global, addr)),
        Some(Command::Keys { command }) => run(keys(cli.global, command)),
        Some(Command::Restore { from, force, json }) => run(restore(cli.global, from, force, json)),
        Some(Command::Security { command }) => {
            crate::security_cli::run(cli.global.data_dir, cli.global.config, command)
        }
        Some(Command::Evidence {
            command:
                EvidenceCommand::Verify {
                    file,
                    public_key,
                    audit_public_key,
                    json,
                },
        }) => crate::evidence::verify(
            &file,
            public_key.as_deref(),
            audit_public_key.as_deref(),
            json,
        ),
        Some(Command::Tui {
            url,
            key,
            key_file,
            tenant,
        }) => {
            let key = match tui_key(key, key_file) {
                Ok(k) => k,
                Err(msg) => {
                    eprintln!("echopilot: {msg}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let c = crate::console::ConsoleArgs {
                theme: cli.theme,
                readonly: cli.readonly,
                tenant,
            };
            run(async move { Ok(crate::console::remote(url, key, c).await?) })
        }
        Some(Command::Ctl {
            verb,
            args,
            confirm,
            reason,
            json,
            url,
            key,
            tenant,
        }) => {
            let g = cli.global;
            run(async move {
                let key = match key {
                    Some(k) => k,
                    None => {
                        let cfg = load_config(&g, None)?;
                        auth::read_admin_key(&cfg).ok_or_else(|| {
                            Failure::Config("no API key: pass --key, set ECHOPILOT_KEY, or run where <data-dir>/admin.key exists".into())
                        })?
                    }
                };
                crate::ctl::run(crate::ctl::CtlArgs {
                    url,
                    key,
                    tenant,
                    verb,
                    args,
                    confirm,
                    reason,
                    json,
                })
                .await?;
                Ok(())
            })
        }
        Some(Command::Demo) => {
            let c = crate::console::ConsoleArgs {
                theme: cli.theme,
                readonly: cli.readonly,
                tenant: None,
            };
            let g = cli.global;
            run(async move {
                let cfg = load_config(&g, None)?;
                Ok(crate::console::embedded(cfg, c, true).await?)
            })
        }
        None => {
            let c = crate::console::ConsoleArgs {
                theme: cli.theme,
                readonly: cli.readonly,
                tenant: None,
            };
            let g = cli.global;
            run(async move {
                let cfg = load_config(&g, None)?;
                Ok(crate::console::embedded(cfg, c, false).await?)
            })
        }
    }
}

/// Errors that map to exit code 2 (bad config/usage) vs 1 (runtime failure).
enum Failure {
    Config(String),
    Runtime(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        // Areas validate their config sections at start and return ConfigError through anyhow.
        match e.downcast_ref::<ConfigError>() {
            Some(c) => Failure::Config(c.to_string()),
            None => Failure::Runtime(e),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Runtime(e.into())
    }
}

fn run(fut: impl std::future::Future<Output = Result<(), Failure>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echopilot: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(fut);
    logging::flush();
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprintln!("echopilot: {msg}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("echopilot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(g: &GlobalArgs, addr: Option<String>) -> Result<Config, Failure> {
    let over = Overrides {
        config_file: g.config.clone(),
        data_dir: g.data_dir.clone(),
        addr,
        database_url: g.database_url.clone(),
    };
    Ok(Config::load(&over)?)
}

async fn serve(g: GlobalArgs, addr: Option<String>) -> Result<(), Failure> {
    let cfg = load_config(&g, addr)?;
    logging::init(cfg.logs_dir(), &cfg.log_level, cfg.log_to_stderr)?;
    if cfg.bootstrap_key.as_ref().is_some_and(|k| k.len() < 32) {
        return Err(Failure::Config(
            "invalid configuration: key `bootstrap_key` (from ECHOPILOT_BOOTSTRAP_KEY): must be at least 32 characters".into(),
        ));
    }
    let running = server::start(cfg).await?;
    match &running.bootstrap {
        auth::Bootstrap::WroteFile(p) => {
            println!(
                "echopilot: first start: superadmin key written to {} (mode 0600)",
                p.display()
            )
        }
        auth::Bootstrap::FromEnv => {
            println!(
                "echopilot: first start: ECHOPILOT_BOOTSTRAP_KEY installed as the superadmin key"
            )
        }
        auth::Bootstrap::Existing => {}
    }
    println!("echopilot: listening on {}", running.url());
    server::shutdown_signal().await;
    println!("echopilot: shutting down (finishing in-flight requests)");
    running.shutdown().await?;
    Ok(())
}

async fn restore(g: GlobalArgs, from: PathBuf, force: bool, json: bool) -> Result<(), Failure> {
    use echopilot_backend::dr;
    let Some(data_dir) = g.data_dir.clone() else {
        return Err(Failure::Config(
            "restore needs --data-dir NEW (the data dir to restore into)".into(),
        ));
    };
    let cfg = load_config(&g, None)?;
    let section = dr::DrSection::load(&cfg.raw)?;
    let req = dr::restore::RestoreRequest {
        from,
        data_dir,
        database_url: g.database_url.clone(),
        force,
    };
    let s = dr::restore::run_restore(&req, &section).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
        return Ok(());
    }
    println!(
        "restored backup {} ({}, taken {}) in {} ms (decrypt+load {} ms, checks and the rest {} ms)",
        s.backup_id,
        s.engine,
        s.created_at,
        s.total_ms,
        s.restore_ms,
        s.total_ms - s.restore_ms
    );
    println!("  database: {}", s.database);
    for f in &s.files {
        println!("  file {}: {}", f.name, f.detail);
    }
    for w in &s.written {
        println!("  wrote {}", s.data_dir.join(w).display());
    }
    for c in &s.checks {
        println!(
            "  check {}: {} ({} ms) {}",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.duration_ms,
            c.detail
        );
    }
    println!(
        "  {} rows; audit tree size {} root {}",
        s.rows, s.audit.size, s.audit.root
    );
    // The URL as printed above (a password in it shows as ***: give it again).
    let db_flag = if s.engine == "postgres" {
        format!(" --database-url {}", s.database)
    } else {
        String::new()
    };
    println!(
        "start it: echopilot serve --data-dir {}{db_flag}   (echopilot.toml.restored holds the config with secrets removed)",
        s.data_dir.display()
    );
    Ok(())
}

async fn keys(g: GlobalArgs, cmd: KeysCommand) -> Result<(), Failure> {
    let cfg = load_config(&g, None)?;
    let store = Store::open(&cfg).await?;
    let actor = Actor {
        id: "cli",
        request_id: "cli",
    };
    match cmd {
        KeysCommand::Create {
            role,
            tenant,
            name,
            json,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                Failure::Config(format!(
                    "unknown role {role:?}; expected superadmin, admin, operator, readonly, integration or ingest"
                ))
            })?;
            if !auth::valid_tenant_id(&tenant) {
                return Err(Failure::Config(
                    "tenant must be 1-64 characters of a-z, 0-9, '-' or '_'".into(),
                ));
            }
            let k = auth::create_key(&store, role, &tenant, name.as_deref(), None, actor).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&k).unwrap_or_default());
            } else {
                println!("{}", k.key);
                eprintln!(
                    "created key {} (role {}, tenant {}): store it now, it is not shown again",
                    k.id, k.role, k.tenant
                );
            }
        }
        KeysCommand::List { tenant, json } => {
            let keys = auth::list_keys(&store, tenant.as_deref()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&keys).unwrap_or_default()
                );
            } else {
                println!(
                    "{:<20} {:<11} {:<16} {:<24} {:<8} NAME",
                    "ID", "ROLE", "TENANT", "CREATED", "STATE"
                );
                for k in keys {
                    println!(
                        "{:<20} {:<11} {:<16} {:<24} {:<8} {}",
                        k.id,
                        k.role,
                        k.tenant,
                        k.created_at,
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        k.name.unwrap_or_default()
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => match auth::revoke_key(&store, &id, None, actor).await? {
            RevokeOutcome::Revoked(k) => println!("revoked {}", k.id),
            RevokeOutcome::AlreadyRevoked(k) => println!("{} was already revoked", k.id),
            RevokeOutcome::NotFound => {
                return Err(Failure::Runtime(anyhow::anyhow!("no key with id {id}")))
            }
        },
    }
    store.close().await;
    Ok(())
}

/// The console's key: `--key` / `ECHOPILOT_KEY`, else the first line of `--key-file` /
/// `ECHOPILOT_KEY_FILE`.
fn tui_key(key: Option<String>, file: Option<PathBuf>) -> Result<String, String> {
    if let Some(k) = key.filter(|k| !k.trim().is_empty()) {
        return Ok(k.trim().to_string());
    }
    let Some(path) = file else {
        return Err(
            "no API key: set ECHOPILOT_KEY, pass --key-file FILE, or --key KEY (visible in ps)"
                .into(),
        );
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    match text.lines().next().map(str::trim) {
        Some(k) if !k.is_empty() => Ok(k.to_string()),
        _ => Err(format!("the key file {} is empty", path.display())),
    }
}
