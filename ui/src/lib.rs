//! EchoPilot OS operator console: a ratatui terminal UI that is a pure HTTP client of the
//! backend.
//!
//! * [`run_console`] — what the `echopilot` binary calls: takes over the terminal until `q`.
//! * [`App`] + [`App::handle_event`] → [`Effect`]s, and [`ui::draw`] / [`ui::render_to_string`]
//!   — the pure core, used by snapshot tests and benches (feed JSON with [`App::load`]).
//! * [`Harness`] / [`drive_for_test`] — run the app's event flow against a real server without a
//!   terminal (palette → dry-run → confirm end-to-end tests).
//! * [`popups::palette::Filter::rank`] — the palette's fuzzy ranking, for benches.

pub mod app;
pub mod cache;
pub mod client;
pub mod clipboard;
pub mod commands;
pub mod components;
pub mod event;
pub mod model;
pub mod popups;
pub mod resources;
mod runtime;
pub mod tabs;
pub mod theme;
pub mod ui;
pub mod util;

use std::path::PathBuf;
use std::time::Duration;

pub use app::{App, AppConfig};
pub use cache::{Cache, Res};
pub use client::{Client, ClientError, Problem};
pub use crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
pub use event::{Effect, Event, PostOp, Resource};
/// Style types for tests that look at rendered cells.
pub use ratatui::style as ratatui_style;
pub use runtime::{Executor, Harness};
pub use tabs::Tab;
pub use theme::Theme;

/// How to start the console.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Backend base URL, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// API key sent as `X-Dash-Key`.
    pub key: String,
    /// Sent as `X-Tenant-Id` when set.
    pub tenant: Option<String>,
    /// Theme name (`default`, `light`, `high-contrast`, or a file in `themes_dir`).
    pub theme: String,
    /// Where to look for `<theme>.toml` first (then `./themes`, then the embedded copies).
    pub themes_dir: Option<PathBuf>,
    /// Hide verbs with `mutating: true` and the keys that run them.
    pub readonly: bool,
    /// `echopilot demo`: label the console as showing synthetic demo activity.
    pub demo: bool,
}

/// Runs the console in the current terminal until the operator quits.
///
/// Enters raw mode and the alternate screen, installs a panic hook that restores the terminal
/// before the panic message prints, and restores it on return (also on error). Fails early,
/// before touching the terminal, for an unknown theme or an invalid URL.
pub async fn run_console(opts: ConsoleOptions) -> anyhow::Result<()> {
    runtime::run(opts).await
}

/// Builds a [`Harness`], loads every resource once, then feeds `keys` one by one, letting the
/// requests each key causes finish before the next. Returns the harness for inspection.
pub async fn drive_for_test(
    opts: &ConsoleOptions,
    keys: &[KeyEvent],
    per_step: Duration,
) -> anyhow::Result<Harness> {
    let mut h = Harness::new(opts)?;
    h.tick();
    h.settle(per_step).await?;
    for k in keys {
        h.dispatch(Event::Key(*k));
        h.settle(per_step).await?;
    }
    Ok(h)
}

impl App {
    /// Feeds a successful answer for `resource` (as if fetched now): how tests and benches
    /// build a loaded app from JSON fixtures.
    pub fn load(&mut self, resource: Resource, json: serde_json::Value) {
        let at = self.now;
        self.handle_event(Event::Fetched {
            resource,
            result: Ok(json),
            at,
        });
    }
}

/// File names [`load_fixtures`] understands, with the resource each one answers. The files
/// are recorded from a real backend (`ui/tests/record_fixtures.rs`).
pub const FIXTURE_FILES: [(&str, Resource); 19] = [
    ("telemetry.json", resources::TELEMETRY.res),
    ("history.json", tabs::telemetry::HISTORY.res),
    ("verbs.json", resources::VERBS.res),
    ("automations.json", tabs::jobs::AUTOMATIONS.res),
    ("runs.json", tabs::jobs::RUNS.res),
    ("queue_health.json", tabs::queue::HEALTH.res),
    ("queue_jobs.json", tabs::queue::JOBS.res),
    ("audit.json", resources::AUDIT.res),
    ("summary.json", tabs::telemetry::SUMMARY.res),
    ("tenants.json", resources::TENANTS.res),
    ("dr_backups.json", tabs::dr::BACKUPS.res),
    ("dr_verify.json", tabs::dr::VERIFY.res),
    ("analytics_usage.json", tabs::forecast::USAGE.res),
    ("analytics_funnels.json", tabs::forecast::FUNNELS.res),
    ("ai_analytics.json", tabs::costs::AI.res),
    ("logs.json", popups::logs::LOGS.res),
    ("security_status.json", tabs::security::STATUS.res),
    ("security_latest.json", tabs::security::LATEST.res),
    ("compliance_hooks.json", tabs::security::HOOKS.res),
];

/// Loads every [`FIXTURE_FILES`] entry present in `dir` into `app` (for snapshot tests and
/// benches; the console itself never reads fixtures). A file that does not parse into its
/// backend type is an error. Returns how many were loaded.
pub fn load_fixtures(app: &mut App, dir: &std::path::Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for (file, resource) in FIXTURE_FILES {
        let path = dir.join(file);
        if path.is_file() {
            let text = std::fs::read_to_string(&path)?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            app.load(resource, json);
            if let Some(e) = app.cache.meta(resource).error {
                anyhow::bail!("{}: {e}", path.display());
            }
            n += 1;
        }
    }
    Ok(n)
}
