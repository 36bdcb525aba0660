//! The console commands: embedded backend + console (`echopilot`, `echopilot demo`) and
//! the console against a remote backend (`echopilot tui`).

use std::path::PathBuf;

use echopilot_backend::{auth, logging, server, Config};
use echopilot_ui::ConsoleOptions;

pub struct ConsoleArgs {
    pub theme: String,
    pub readonly: bool,
    pub tenant: Option<String>,
}

fn themes_dir() -> Option<PathBuf> {
    // Prefer themes next to the binary's working tree; the ui embeds defaults anyway.
    let here = PathBuf::from("themes");
    here.is_dir().then_some(here)
}

/// Start a backend in this process (SQLite in the data dir, random loopback port),
/// open the console on it, and stop both when the console quits.
pub async fn embedded(mut cfg: Config, c: ConsoleArgs, demo: bool) -> anyhow::Result<()> {
    cfg.addr = "127.0.0.1:0".parse()?;
    // The console owns the terminal: logs go to files only.
    cfg.log_to_stderr = false;
    logging::init(cfg.logs_dir(), &cfg.log_level, false)?;
    let running = server::start(cfg.clone()).await?;
    let key = auth::read_admin_key(&cfg).ok_or_else(|| {
        anyhow::anyhow!(
            "no admin key: set ECHOPILOT_BOOTSTRAP_KEY or restore {}/admin.key",
            cfg.data_dir.display()
        )
    })?;
    let mut tenant = c.tenant.clone();
    let demo_task = if demo {
        let handle = crate::demo::start(&running.url(), &key).await?;
        tenant.get_or_insert_with(|| crate::demo::DEMO_TENANT.to_string());
        Some(handle)
    } else {
        None
    };
    let result = echopilot_ui::run_console(ConsoleOptions {
        base_url: running.url(),
        key,
        tenant,
        theme: c.theme,
        themes_dir: themes_dir(),
        readonly: c.readonly,
        demo,
    })
    .await;
    if let Some(t) = demo_task {
        t.abort();
    }
    running.shutdown().await?;
    result
}

pub async fn remote(url: String, key: String, c: ConsoleArgs) -> anyhow::Result<()> {
    echopilot_ui::run_console(ConsoleOptions {
        base_url: url,
        key,
        tenant: c.tenant,
        theme: c.theme,
        themes_dir: themes_dir(),
        readonly: c.readonly,
        demo: false,
    })
    .await
}
