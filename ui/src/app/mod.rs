//! Console state and the pure `handle_event → effects` state machine.
//!
//! Nothing here touches the network or the terminal: [`App::handle_event`] returns
//! [`Effect`]s that the runtime (or a test) executes, and answers come back as events. That keeps
//! the draw loop free of awaits and lets tests drive every flow deterministically.
//!
//! Split by responsibility: this file holds the state; `fetch.rs` the cache bookkeeping
//! (what is wanted, single-flight, answers); `input.rs` key handling; `flows.rs` the dialog
//! flows (palette, verb → dry-run → confirm → result).

mod fetch;
mod flows;
mod input;

use chrono::{DateTime, Duration, Utc};

pub use crate::cache::{backoff_secs, Remote, MAX_BACKOFF_SECS};
use crate::cache::{Cache, Res, View};
use crate::commands::{Context, Mode};
use crate::event::{Effect, Event};
use crate::model::Verb;
use crate::popups::Popup;
use crate::resources::VERBS;
use crate::tabs::{self, Tab};
use crate::theme::Theme;
pub use input::edit_line;

/// Static settings for an [`App`].
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Shown in the header.
    pub base_url: String,
    pub tenant: Option<String>,
    /// Hide verbs with `mutating: true` and the keys that run them.
    pub readonly: bool,
    /// `echopilot demo`: the header says the data is synthetic, on every tab.
    pub demo: bool,
}

/// The whole console state.
pub struct App {
    pub config: AppConfig,
    pub theme: Theme,
    /// Clock of the last tick/answer: every age on screen is relative to it.
    pub now: DateTime<Utc>,
    /// The tab list ([`tabs::all`]), each with its own state.
    pub tabs: Vec<Box<dyn Tab>>,
    /// Index of the current tab in `tabs`.
    pub current: usize,
    pub tenant: Option<String>,
    /// Every backend resource, keyed.
    pub cache: Cache,
    /// `/` filter editor open on the current table.
    pub filtering: bool,
    pub popup: Option<Popup>,
    /// A one-line message for the status bar, with when it was set.
    pub notice: Option<(String, DateTime<Utc>)>,
    /// Since when every request has failed to connect (cleared by any answer).
    pub unreachable_since: Option<DateTime<Utc>>,
    /// Runs started from the console, reported in a flash when they end.
    pub watched_runs: Vec<WatchedRun>,
    /// Since when the backend has answered 401 (a wrong or revoked key); cleared by any 2xx.
    pub auth_rejected_since: Option<DateTime<Utc>>,
    /// Absolute times in UTC instead of local time (`z`).
    pub utc: bool,
    /// Live updates paused (`p`): nothing is fetched until resumed or `r`.
    pub paused: bool,
    /// How far the help overlay can scroll (set by its last draw: the end stop).
    pub help_max_scroll: std::cell::Cell<u16>,
    /// Size of the last drawn frame (where the tab line's labels are, for clicks).
    pub frame_size: std::cell::Cell<(u16, u16)>,
    pub should_quit: bool,
}

/// A job run the operator started; watched through the run history until it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedRun {
    pub run_id: String,
    pub job: String,
    pub since: DateTime<Utc>,
}

/// How long a started run is watched before the console stops waiting for its end.
const WATCH_RUNS_FOR_SECS: i64 = 30 * 60;

impl App {
    pub fn new(config: AppConfig, theme: Theme, now: DateTime<Utc>) -> App {
        App {
            tenant: config.tenant.clone(),
            config,
            theme,
            now,
            tabs: tabs::all(),
            current: 0,
            cache: Cache::default(),
            filtering: false,
            popup: None,
            notice: None,
            unreachable_since: None,
            auth_rejected_since: None,
            watched_runs: Vec::new(),
            utc: false,
            paused: false,
            help_max_scroll: std::cell::Cell::new(u16::MAX),
            frame_size: std::cell::Cell::new((0, 0)),
            should_quit: false,
        }
    }

    pub fn current(&self) -> &dyn Tab {
        self.tabs[self.current].as_ref()
    }

    /// Title of the current tab.
    pub fn tab_title(&self) -> &'static str {
        self.current().title()
    }

    /// The state of the tab of type `T` (tests and callers that inspect a tab).
    pub fn tab<T: Tab>(&self) -> Option<&T> {
        self.tabs
            .iter()
            .find_map(|t| t.as_any().downcast_ref::<T>())
    }

    /// Index of the tab titled `title`.
    pub fn tab_index(&self, title: &str) -> Option<usize> {
        self.tabs.iter().position(|t| t.title() == title)
    }

    /// The parsed data of a resource.
    pub fn data<T: View>(&self, r: Res<T>) -> Option<&T> {
        self.cache.get(r)
    }

    /// The input mode (which keys apply).
    pub fn mode(&self) -> Mode {
        match &self.popup {
            Some(p) => p.mode(),
            None if self.filtering => Mode::Filter,
            None => Mode::Normal,
        }
    }

    pub fn context(&self) -> Context {
        let tab = self.current();
        Context {
            mode: self.mode(),
            tab: tab.title(),
            has_table: tab.has_table(),
            readonly: self.config.readonly,
            tab_commands: tab.commands(),
        }
    }

    /// Verbs the operator may use (mutating ones hidden with `--readonly`).
    pub fn visible_verbs(&self) -> impl Iterator<Item = &Verb> {
        let readonly = self.config.readonly;
        self.cache
            .get(VERBS)
            .map(|l| l.verbs.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter(move |v| !(readonly && v.mutating))
    }

    pub fn find_verb(&self, name: &str) -> Option<&Verb> {
        self.visible_verbs().find(|v| v.name == name)
    }

    /// Called when no event is waiting: finish work deferred to keep keystrokes fast (the
    /// palette's exact ranking). Returns whether the screen needs a redraw.
    pub fn on_idle(&mut self) -> bool {
        match &mut self.popup {
            Some(Popup::Palette(p)) => p.refine(),
            _ => false,
        }
    }

    /// The single entry point: update state, return the work to do.
    pub fn handle_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Tick(now) => {
                self.now = now;
                if let Some((_, at)) = &self.notice {
                    if now - *at > Duration::seconds(8) {
                        self.notice = None;
                    }
                }
                self.due_fetches()
            }
            Event::Resize(..) => Vec::new(),
            Event::Key(key) => self.on_key(key),
            Event::Mouse(m) => self.on_mouse(m),
            Event::Fetched {
                resource,
                result,
                at,
            } => self.on_fetched(resource, result, at),
            Event::Posted { op, result, at } => self.on_posted(op, result, at),
        }
    }

    fn notify(&mut self, msg: impl Into<String>) {
        self.notice = Some((msg.into(), self.now));
    }

    /// After a run-history answer: report each watched run that has ended. True when one
    /// did: what it changed (a backup, a scan report) is then fetched at once.
    fn report_finished_runs(&mut self) -> bool {
        let Some(runs) = self.cache.get(crate::tabs::jobs::RUNS) else {
            return false;
        };
        let mut done = Vec::new();
        for w in &self.watched_runs {
            if let Some(r) = runs.runs.iter().find(|r| r.id == w.run_id) {
                if r.outcome.as_str() != "running" {
                    let took = r
                        .duration_ms
                        .map(|ms| format!(" in {}", crate::util::fmt_duration_ms(ms)))
                        .unwrap_or_default();
                    let why = r
                        .error
                        .as_deref()
                        .map(|e| format!(" · {}", e.lines().next().unwrap_or(e)))
                        .unwrap_or_default();
                    done.push((
                        w.run_id.clone(),
                        format!("{} {}{took} · {}{why}", w.job, r.outcome.as_str(), w.run_id),
                    ));
                }
            }
        }
        let now = self.now;
        self.watched_runs.retain(|w| {
            !done.iter().any(|(id, _)| *id == w.run_id)
                && (now - w.since).num_seconds() < WATCH_RUNS_FOR_SECS
        });
        let ended = !done.is_empty();
        if let Some((_, msg)) = done.pop() {
            self.notify(msg);
        }
        ended
    }

    /// Rebuilds every tab's visible rows from the cache.
    fn refilter_all(&mut self) {
        for t in &mut self.tabs {
            t.refilter(&self.cache);
        }
    }

    fn switch_tab(&mut self, index: usize) -> Vec<Effect> {
        if index < self.tabs.len() {
            self.current = index;
        }
        self.filtering = false;
        self.due_fetches()
    }
}
