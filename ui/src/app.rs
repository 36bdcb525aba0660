//! Console state and the pure `handle_event → effects` state machine.
//!
//! Nothing here touches the network or the terminal: [`App::handle_event`] returns
//! [`Effect`]s that the runtime (or a test) executes, and answers come back as events. That keeps
//! the draw loop free of awaits and lets tests drive every flow deterministically.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{json, Map, Value};

use crate::client::ClientError;
use crate::commands::{self, Action, Context, Mode, PaletteAction};
use crate::event::{Area, Effect, Event, PostOp, Resource};
use crate::model::{
    self, AreaData, AuditChain, Automations, History, JobRun, Plan, QueueHealth, QueueJob, Summary,
    Telemetry, Verb,
};
use crate::popups::palette::{Entry, EntryKind, PaletteState, Target};
use crate::popups::Popup;
use crate::tabs::Tab;
use crate::theme::Theme;

/// Retry delay cap while the backend is failing.
pub const MAX_BACKOFF_SECS: i64 = 30;
const OPS_COMMAND: &str = "/api/v1/ops/command";

/// The last good copy of one backend resource plus its fetch bookkeeping.
#[derive(Debug, Clone)]
pub struct Remote<T> {
    pub data: Option<T>,
    /// When `data` was received.
    pub updated_at: Option<DateTime<Utc>>,
    /// The last failure (cleared by the next success).
    pub error: Option<ClientError>,
    pub in_flight: bool,
    pub failures: u32,
    /// When to fetch next; `None` means now.
    pub next_due: Option<DateTime<Utc>>,
    /// The exact path of the request in flight (to drop answers to a superseded filter).
    pub requested: Option<String>,
}

impl<T> Default for Remote<T> {
    fn default() -> Self {
        Remote {
            data: None,
            updated_at: None,
            error: None,
            in_flight: false,
            failures: 0,
            next_due: None,
            requested: None,
        }
    }
}

impl<T> Remote<T> {
    fn due(&self, now: DateTime<Utc>) -> bool {
        !self.in_flight && self.next_due.is_none_or(|d| now >= d)
    }

    /// Stores an answer; returns whether data changed.
    fn apply(
        &mut self,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
        refresh_secs: i64,
        parse: impl FnOnce(&Value) -> T,
    ) -> bool {
        self.in_flight = false;
        self.requested = None;
        match result {
            Ok(v) => {
                self.data = Some(parse(&v));
                self.updated_at = Some(at);
                self.error = None;
                self.failures = 0;
                self.next_due = Some(at + Duration::seconds(refresh_secs));
                true
            }
            Err(e) => {
                if e.status() == Some(404) {
                    // An answer, not an outage: the route does not exist here. Check rarely.
                    self.data = None;
                    self.failures = 0;
                    self.next_due = Some(at + Duration::seconds(60));
                } else {
                    self.failures = self.failures.saturating_add(1);
                    self.next_due = Some(at + Duration::seconds(backoff_secs(self.failures)));
                }
                self.error = Some(e);
                false
            }
        }
    }

    /// True when data is shown but the latest attempt failed.
    pub fn is_stale(&self) -> bool {
        self.data.is_some() && self.error.is_some()
    }
}

/// 1, 2, 4, 8, 16, 30, 30, … seconds.
pub fn backoff_secs(failures: u32) -> i64 {
    let exp = failures.saturating_sub(1).min(10);
    (1i64 << exp).min(MAX_BACKOFF_SECS)
}

/// A table's selection and `/` filter. `visible` holds indices into the data, filtered.
#[derive(Debug, Clone, Default)]
pub struct TableView {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
    /// Key of the selected row, so a refresh that reorders rows keeps the selection.
    pub selected_key: Option<String>,
}

impl TableView {
    /// Recomputes `visible` from `(key, searchable text)` rows.
    pub fn refilter<'a>(&mut self, rows: impl Iterator<Item = (String, String)> + 'a) {
        let terms: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let mut keys = Vec::new();
        self.visible.clear();
        for (i, (key, text)) in rows.enumerate() {
            let text = text.to_lowercase();
            if terms.iter().all(|t| text.contains(t.as_str())) {
                self.visible.push(i);
                keys.push(key);
            }
        }
        if let Some(k) = &self.selected_key {
            if let Some(pos) = keys.iter().position(|x| x == k) {
                self.selected = pos;
            }
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        self.selected_key = keys.get(self.selected).cloned();
    }

    /// Index into the data of the selected row.
    pub fn selected_index(&self) -> Option<usize> {
        self.visible.get(self.selected).copied()
    }

    fn move_to(&mut self, pos: isize, keys: &dyn Fn(usize) -> String) {
        if self.visible.is_empty() {
            return;
        }
        let max = self.visible.len() as isize - 1;
        self.selected = pos.clamp(0, max) as usize;
        self.selected_key = self.selected_index().map(keys);
    }
}

/// Which table has focus on the Jobs tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobsPane {
    Registry,
    Runs,
}

/// Static settings for an [`App`].
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Shown in the header.
    pub base_url: String,
    pub tenant: Option<String>,
    /// Hide verbs with `mutating: true` and the keys that run them.
    pub readonly: bool,
}

/// The whole console state.
pub struct App {
    pub config: AppConfig,
    pub theme: Theme,
    /// Clock of the last tick/answer: every age on screen is relative to it.
    pub now: DateTime<Utc>,
    pub tab: Tab,
    pub tenant: Option<String>,
    pub telemetry: Remote<Telemetry>,
    pub history: Remote<History>,
    pub verbs: Remote<Vec<Verb>>,
    pub automations: Remote<Automations>,
    pub runs: Remote<Vec<JobRun>>,
    pub queue_health: Remote<QueueHealth>,
    pub queue_jobs: Remote<Vec<QueueJob>>,
    pub audit: Remote<AuditChain>,
    pub summary: Remote<Summary>,
    pub areas: [Remote<AreaData>; 5],
    pub jobs_table: TableView,
    pub runs_table: TableView,
    pub queue_table: TableView,
    pub jobs_pane: JobsPane,
    /// Server-side state filter for the queue job list (`None` = all).
    pub queue_state: Option<&'static str>,
    /// `/` filter editor open on the current table.
    pub filtering: bool,
    pub popup: Option<Popup>,
    /// A one-line message for the status bar, with when it was set.
    pub notice: Option<(String, DateTime<Utc>)>,
    /// Since when every request has failed to connect (cleared by any answer).
    pub unreachable_since: Option<DateTime<Utc>>,
    pub should_quit: bool,
}

impl App {
    pub fn new(config: AppConfig, theme: Theme, now: DateTime<Utc>) -> App {
        App {
            tenant: config.tenant.clone(),
            config,
            theme,
            now,
            tab: Tab::Telemetry,
            telemetry: Remote::default(),
            history: Remote::default(),
            verbs: Remote::default(),
            automations: Remote::default(),
            runs: Remote::default(),
            queue_health: Remote::default(),
            queue_jobs: Remote::default(),
            audit: Remote::default(),
            summary: Remote::default(),
            areas: Default::default(),
            jobs_table: TableView::default(),
            runs_table: TableView::default(),
            queue_table: TableView::default(),
            jobs_pane: JobsPane::Registry,
            queue_state: None,
            filtering: false,
            popup: None,
            notice: None,
            unreachable_since: None,
            should_quit: false,
        }
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
        Context {
            mode: self.mode(),
            tab: self.tab,
            readonly: self.config.readonly,
        }
    }

    /// Verbs the operator may use (mutating ones hidden with `--readonly`).
    pub fn visible_verbs(&self) -> impl Iterator<Item = &Verb> {
        let readonly = self.config.readonly;
        self.verbs
            .data
            .iter()
            .flatten()
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
            Event::Fetched {
                resource,
                result,
                at,
            } => self.on_fetched(resource, result, at),
            Event::Posted { op, result, at } => self.on_posted(op, result, at),
        }
    }

    // ------------------------------------------------------------ fetching

    /// Resources kept fresh on the current tab (plus the always-on header ones).
    pub fn wanted(&self) -> Vec<Resource> {
        let mut r = vec![Resource::Telemetry, Resource::Verbs, Resource::Audit];
        match self.tab {
            Tab::Telemetry => r.extend([Resource::History, Resource::Summary]),
            Tab::Jobs => r.extend([Resource::Automations, Resource::JobRuns]),
            Tab::Queue => r.extend([Resource::QueueHealth, Resource::QueueJobs]),
            t => {
                if let Some(a) = t.area() {
                    r.push(Resource::Area(a));
                }
            }
        }
        if matches!(self.popup, Some(Popup::Palette(_))) {
            // Entities for the palette.
            for x in [
                Resource::Automations,
                Resource::QueueJobs,
                Resource::Summary,
            ] {
                if !r.contains(&x) {
                    r.push(x);
                }
            }
        }
        r
    }

    fn path_for(&self, r: Resource) -> String {
        match (r, self.queue_state) {
            (Resource::QueueJobs, Some(s)) => format!("{}?state={s}&limit=200", r.route()),
            (Resource::QueueJobs, None) => format!("{}?limit=200", r.route()),
            _ => r.route().to_string(),
        }
    }

    fn meta_mut(
        &mut self,
        r: Resource,
    ) -> (
        &mut bool,
        &mut Option<DateTime<Utc>>,
        &mut Option<String>,
        &mut u32,
    ) {
        macro_rules! m {
            ($x:expr) => {
                (
                    &mut $x.in_flight,
                    &mut $x.next_due,
                    &mut $x.requested,
                    &mut $x.failures,
                )
            };
        }
        match r {
            Resource::Telemetry => m!(self.telemetry),
            Resource::History => m!(self.history),
            Resource::Verbs => m!(self.verbs),
            Resource::Automations => m!(self.automations),
            Resource::JobRuns => m!(self.runs),
            Resource::QueueHealth => m!(self.queue_health),
            Resource::QueueJobs => m!(self.queue_jobs),
            Resource::Audit => m!(self.audit),
            Resource::Summary => m!(self.summary),
            Resource::Area(a) => m!(self.areas[a.index()]),
        }
    }

    fn is_due(&self, r: Resource) -> bool {
        let now = self.now;
        match r {
            Resource::Telemetry => self.telemetry.due(now),
            Resource::History => self.history.due(now),
            Resource::Verbs => self.verbs.due(now),
            Resource::Automations => self.automations.due(now),
            Resource::JobRuns => self.runs.due(now),
            Resource::QueueHealth => self.queue_health.due(now),
            Resource::QueueJobs => self.queue_jobs.due(now),
            Resource::Audit => self.audit.due(now),
            Resource::Summary => self.summary.due(now),
            Resource::Area(a) => self.areas[a.index()].due(now),
        }
    }

    /// Fetch effects for wanted resources that are due and not already in flight
    /// (single-flight per resource).
    pub fn due_fetches(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        for r in self.wanted() {
            if self.is_due(r) {
                out.push(self.start_fetch(r));
            }
        }
        out
    }

    fn start_fetch(&mut self, r: Resource) -> Effect {
        let path = self.path_for(r);
        let (in_flight, _, requested, _) = self.meta_mut(r);
        *in_flight = true;
        *requested = Some(path.clone());
        Effect::Fetch { resource: r, path }
    }

    /// `r`: fetch the current tab now, forgetting any backoff.
    fn refresh_now(&mut self) -> Vec<Effect> {
        for r in self.wanted() {
            let (_, next_due, _, failures) = self.meta_mut(r);
            *next_due = None;
            *failures = 0;
        }
        self.due_fetches()
    }

    fn on_fetched(
        &mut self,
        resource: Resource,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    ) -> Vec<Effect> {
        if at > self.now {
            self.now = at;
        }
        // An answer for a superseded queue filter: drop it and ask again.
        if resource == Resource::QueueJobs {
            let want = self.path_for(resource);
            if self
                .queue_jobs
                .requested
                .as_deref()
                .is_some_and(|p| p != want)
            {
                self.queue_jobs.in_flight = false;
                self.queue_jobs.requested = None;
                self.queue_jobs.next_due = None;
                return self.due_fetches();
            }
        }
        match &result {
            Err(e) if e.is_unreachable() => {
                self.unreachable_since.get_or_insert(at);
            }
            _ => self.unreachable_since = None,
        }
        let secs = resource.refresh_secs();
        match resource {
            Resource::Telemetry => {
                self.telemetry.apply(result, at, secs, Telemetry::from_json);
            }
            Resource::History => {
                self.history.apply(result, at, secs, History::from_json);
            }
            Resource::Verbs => {
                self.verbs.apply(result, at, secs, model::parse_verbs);
            }
            Resource::Automations => {
                if self.automations.apply(result, at, secs, |v| {
                    serde_json::from_value(v.clone()).unwrap_or_default()
                }) {
                    self.refilter_jobs();
                }
            }
            Resource::JobRuns => {
                if self.runs.apply(result, at, secs, model::parse_runs) {
                    self.refilter_runs();
                }
            }
            Resource::QueueHealth => {
                self.queue_health
                    .apply(result, at, secs, QueueHealth::from_json);
            }
            Resource::QueueJobs => {
                if self
                    .queue_jobs
                    .apply(result, at, secs, model::parse_queue_jobs)
                {
                    self.refilter_queue();
                }
            }
            Resource::Audit => {
                self.audit.apply(result, at, secs, AuditChain::from_json);
            }
            Resource::Summary => {
                self.summary.apply(result, at, secs, Summary::from_json);
            }
            Resource::Area(a) => {
                self.areas[a.index()].apply(result, at, secs, AreaData::from_json);
            }
        }
        if let Some(Popup::Palette(p)) = &mut self.popup {
            // New entities may have arrived; keep the query, rebuild the candidates.
            let query = std::mem::take(&mut p.query);
            let mut fresh = PaletteState::new(self.palette_entries());
            fresh.query = query;
            fresh.refilter();
            self.popup = Some(Popup::Palette(fresh));
        }
        Vec::new()
    }

    pub(crate) fn refilter_jobs(&mut self) {
        let jobs = self
            .automations
            .data
            .as_ref()
            .map(|a| a.jobs.as_slice())
            .unwrap_or(&[]);
        self.jobs_table.refilter(jobs.iter().map(|j| {
            let text = format!(
                "{} {} {} {}",
                j.name,
                j.schedule.as_deref().unwrap_or(""),
                match j.enabled {
                    Some(false) => "off disabled",
                    _ => "on enabled",
                },
                j.last_outcome().unwrap_or_default()
            );
            (j.name.clone(), text)
        }));
    }

    pub(crate) fn refilter_runs(&mut self) {
        let runs = self.runs.data.as_deref().unwrap_or(&[]);
        self.runs_table.refilter(runs.iter().map(|r| {
            let text = format!(
                "{} {} {} {} {}",
                r.id,
                r.job,
                r.outcome,
                r.replica.as_deref().unwrap_or(""),
                r.error.as_deref().unwrap_or("")
            );
            (r.id.clone(), text)
        }));
    }

    pub(crate) fn refilter_queue(&mut self) {
        let jobs = self.queue_jobs.data.as_deref().unwrap_or(&[]);
        self.queue_table.refilter(jobs.iter().map(|j| {
            let text = format!(
                "{} {} {} {} {}",
                j.id,
                j.kind,
                j.state,
                j.worker.as_deref().unwrap_or(""),
                j.error.as_deref().unwrap_or("")
            );
            (j.id.clone(), text)
        }));
    }

    fn refilter_current(&mut self) {
        match (self.tab, self.jobs_pane) {
            (Tab::Jobs, JobsPane::Registry) => self.refilter_jobs(),
            (Tab::Jobs, JobsPane::Runs) => self.refilter_runs(),
            (Tab::Queue, _) => self.refilter_queue(),
            _ => {}
        }
    }

    /// The table the selection keys act on, if the tab has one.
    pub fn current_table_mut(&mut self) -> Option<&mut TableView> {
        match (self.tab, self.jobs_pane) {
            (Tab::Jobs, JobsPane::Registry) => Some(&mut self.jobs_table),
            (Tab::Jobs, JobsPane::Runs) => Some(&mut self.runs_table),
            (Tab::Queue, _) => Some(&mut self.queue_table),
            _ => None,
        }
    }

    pub fn current_table(&self) -> Option<&TableView> {
        match (self.tab, self.jobs_pane) {
            (Tab::Jobs, JobsPane::Registry) => Some(&self.jobs_table),
            (Tab::Jobs, JobsPane::Runs) => Some(&self.runs_table),
            (Tab::Queue, _) => Some(&self.queue_table),
            _ => None,
        }
    }

    fn row_key(&self, i: usize) -> String {
        match (self.tab, self.jobs_pane) {
            (Tab::Jobs, JobsPane::Registry) => self
                .automations
                .data
                .as_ref()
                .and_then(|a| a.jobs.get(i))
                .map(|j| j.name.clone()),
            (Tab::Jobs, JobsPane::Runs) => self
                .runs
                .data
                .as_ref()
                .and_then(|r| r.get(i))
                .map(|r| r.id.clone()),
            _ => self
                .queue_jobs
                .data
                .as_ref()
                .and_then(|q| q.get(i))
                .map(|j| j.id.clone()),
        }
        .unwrap_or_default()
    }

    fn move_selection(&mut self, f: impl FnOnce(&TableView) -> isize) {
        let keys: Vec<String> = match self.current_table() {
            Some(t) => t.visible.iter().map(|i| self.row_key(*i)).collect(),
            None => return,
        };
        let visible: Vec<usize> = self
            .current_table()
            .map(|t| t.visible.clone())
            .unwrap_or_default();
        if let Some(t) = self.current_table_mut() {
            let pos = f(t);
            let key_of = |data_idx: usize| {
                visible
                    .iter()
                    .position(|v| *v == data_idx)
                    .and_then(|p| keys.get(p).cloned())
                    .unwrap_or_default()
            };
            t.move_to(pos, &key_of);
        }
    }

    // ------------------------------------------------------------ keys

    fn notify(&mut self, msg: impl Into<String>) {
        self.notice = Some((msg.into(), self.now));
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctx = self.context();
        let action = commands::resolve(&key, &ctx);
        if action == Some(Action::Quit)
            && (ctx.mode == Mode::Normal || key.modifiers.contains(KeyModifiers::CONTROL))
        {
            self.should_quit = true;
            return Vec::new();
        }
        match ctx.mode {
            Mode::Normal => match action {
                Some(a) => self.normal_action(a, &key),
                None => Vec::new(),
            },
            Mode::Filter => {
                match action {
                    Some(Action::FilterApply) => self.filtering = false,
                    Some(Action::FilterClear) => {
                        self.filtering = false;
                        if let Some(t) = self.current_table_mut() {
                            t.filter.clear();
                        }
                        self.refilter_current();
                    }
                    _ => {
                        let changed = match self.current_table_mut() {
                            Some(t) => edit_line(&mut t.filter, &key),
                            None => false,
                        };
                        if changed {
                            self.refilter_current();
                        }
                    }
                }
                Vec::new()
            }
            _ => self.popup_key(ctx.mode, action, key),
        }
    }

    fn normal_action(&mut self, action: Action, key: &KeyEvent) -> Vec<Effect> {
        match action {
            Action::GoTab => {
                if let KeyCode::Char(c) = key.code {
                    if let Some(t) = c.to_digit(10).and_then(|d| Tab::from_number(d as usize)) {
                        return self.switch_tab(t);
                    }
                }
                Vec::new()
            }
            Action::NextTab => self.switch_tab(self.tab.next()),
            Action::PrevTab => self.switch_tab(self.tab.prev()),
            Action::Palette => self.open_palette(),
            Action::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            Action::Filter => {
                if self.current_table().is_some() {
                    self.filtering = true;
                }
                Vec::new()
            }
            Action::Refresh => {
                self.notify("Refreshing…");
                self.refresh_now()
            }
            Action::Up => {
                self.move_selection(|t| t.selected as isize - 1);
                Vec::new()
            }
            Action::Down => {
                self.move_selection(|t| t.selected as isize + 1);
                Vec::new()
            }
            Action::PageUp => {
                self.move_selection(|t| t.selected as isize - 10);
                Vec::new()
            }
            Action::PageDown => {
                self.move_selection(|t| t.selected as isize + 10);
                Vec::new()
            }
            Action::Top => {
                self.move_selection(|_| 0);
                Vec::new()
            }
            Action::Bottom => {
                self.move_selection(|t| t.visible.len() as isize - 1);
                Vec::new()
            }
            Action::SwitchPane => {
                self.jobs_pane = match self.jobs_pane {
                    JobsPane::Registry => JobsPane::Runs,
                    JobsPane::Runs => JobsPane::Registry,
                };
                Vec::new()
            }
            Action::RunNow => {
                let name = match self.jobs_pane {
                    JobsPane::Registry => self.jobs_table.selected_index().and_then(|i| {
                        self.automations
                            .data
                            .as_ref()?
                            .jobs
                            .get(i)
                            .map(|j| j.name.clone())
                    }),
                    JobsPane::Runs => self
                        .runs_table
                        .selected_index()
                        .and_then(|i| self.runs.data.as_ref()?.get(i).map(|r| r.job.clone())),
                };
                match name {
                    Some(n) => self.start_run_job(&n),
                    None => {
                        self.notify("No job selected.");
                        Vec::new()
                    }
                }
            }
            Action::Retry => {
                let job = self
                    .queue_table
                    .selected_index()
                    .and_then(|i| self.queue_jobs.data.as_ref()?.get(i).cloned());
                match job {
                    Some(j) if j.state == "dead" => self.start_retry(&j.id),
                    Some(j) => {
                        self.notify(format!(
                            "Only dead jobs can be retried (job {} is {}).",
                            j.id, j.state
                        ));
                        Vec::new()
                    }
                    None => {
                        self.notify("No queue job selected.");
                        Vec::new()
                    }
                }
            }
            Action::PurgeDlq => {
                if self.find_verb("purge_dlq").is_some() {
                    self.start_verb("purge_dlq", Map::new())
                } else {
                    self.open_direct(
                        PostOp::PurgeDlq,
                        "/api/v1/queue/dlq/purge".into(),
                        "Purge the dead-letter queue".into(),
                    )
                }
            }
            Action::CycleState => {
                let states: [Option<&'static str>; 6] = [
                    None,
                    Some("queued"),
                    Some("running"),
                    Some("failed"),
                    Some("dead"),
                    Some("succeeded"),
                ];
                let pos = states
                    .iter()
                    .position(|s| *s == self.queue_state)
                    .unwrap_or(0);
                self.queue_state = states[(pos + 1) % states.len()];
                self.queue_jobs.next_due = None;
                self.due_fetches()
            }
            Action::Quit => {
                self.should_quit = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn switch_tab(&mut self, tab: Tab) -> Vec<Effect> {
        self.tab = tab;
        self.filtering = false;
        self.due_fetches()
    }

    // ------------------------------------------------------------ palette

    /// Everything the palette searches: verbs, console actions, jobs, queue items, tenants.
    pub fn palette_entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        for v in self.visible_verbs() {
            let mut detail = String::new();
            if !v.aliases.is_empty() {
                detail.push_str(&v.aliases.join(" "));
                detail.push_str("  ");
            }
            detail.push_str(&v.description);
            if v.is_high_risk() {
                detail.push_str("  [high risk]");
            }
            out.push(Entry::new(
                EntryKind::Verb,
                v.name.clone(),
                detail,
                Target::Verb(v.name.clone()),
            ));
        }
        for (label, detail, act) in commands::palette_actions() {
            out.push(Entry::new(
                EntryKind::Action,
                label,
                detail,
                Target::Action(act),
            ));
        }
        if let Some(a) = &self.automations.data {
            for j in &a.jobs {
                let detail = format!(
                    "scheduled job  {}{}",
                    j.schedule.as_deref().unwrap_or(""),
                    if j.enabled == Some(false) {
                        "  disabled"
                    } else {
                        ""
                    }
                );
                out.push(Entry::new(
                    EntryKind::Job,
                    j.name.clone(),
                    detail,
                    Target::Job(j.name.clone()),
                ));
            }
        }
        if let Some(q) = &self.queue_jobs.data {
            for j in q {
                let detail = format!("{} {}", j.kind, j.state);
                out.push(Entry::new(
                    EntryKind::QueueItem,
                    j.id.clone(),
                    detail,
                    Target::QueueItem(j.id.clone()),
                ));
            }
        }
        if let Some(s) = &self.summary.data {
            for t in &s.tenants {
                out.push(Entry::new(
                    EntryKind::Tenant,
                    t.clone(),
                    "switch tenant (X-Tenant-Id)".into(),
                    Target::Tenant(t.clone()),
                ));
            }
        }
        out
    }

    fn open_palette(&mut self) -> Vec<Effect> {
        self.popup = Some(Popup::Palette(PaletteState::new(self.palette_entries())));
        self.due_fetches()
    }

    fn palette_run(&mut self) -> Vec<Effect> {
        let Some(Popup::Palette(p)) = &self.popup else {
            return Vec::new();
        };
        let Some(target) = p.selected_entry().map(|e| e.target.clone()) else {
            return Vec::new();
        };
        self.popup = None;
        match target {
            Target::Verb(name) => self.start_verb(&name, Map::new()),
            Target::Action(PaletteAction::Tab(t)) => self.switch_tab(t),
            Target::Action(PaletteAction::Key(a)) => {
                let k = KeyEvent::new(KeyCode::Null, KeyModifiers::NONE);
                self.normal_action(a, &k)
            }
            Target::Job(name) => {
                self.jobs_pane = JobsPane::Registry;
                self.jobs_table.filter.clear();
                self.jobs_table.selected_key = Some(name);
                self.refilter_jobs();
                self.switch_tab(Tab::Jobs)
            }
            Target::QueueItem(id) => {
                self.queue_table.filter.clear();
                self.queue_table.selected_key = Some(id);
                self.refilter_queue();
                self.switch_tab(Tab::Queue)
            }
            Target::Tenant(t) => {
                self.tenant = Some(t.clone());
                // Data of the previous tenant must not be shown under the new one.
                let keep_verbs = std::mem::take(&mut self.verbs);
                let (cfg, theme, now, tab) =
                    (self.config.clone(), self.theme.clone(), self.now, self.tab);
                *self = App::new(
                    AppConfig {
                        tenant: Some(t.clone()),
                        ..cfg
                    },
                    theme,
                    now,
                );
                self.tab = tab;
                self.verbs = keep_verbs;
                self.verbs.next_due = None;
                self.notify(format!("Tenant switched to {t}."));
                let mut fx = vec![Effect::SetTenant(Some(t))];
                fx.extend(self.due_fetches());
                fx
            }
        }
    }

    // ------------------------------------------------------------ ops commands

    /// Starts the verb flow: args form if needed, else straight to the dry-run.
    pub fn start_verb(&mut self, name: &str, prefill: Map<String, Value>) -> Vec<Effect> {
        let Some(verb) = self.find_verb(name).cloned() else {
            self.notify(if self.config.readonly {
                format!("Verb {name} is not available (read-only console or not offered by this backend).")
            } else {
                format!("Verb {name} is not offered by this backend.")
            });
            return Vec::new();
        };
        let props = verb.arg_props();
        let satisfied = props
            .iter()
            .all(|(k, _, required)| !required || prefill.contains_key(k));
        if props.is_empty() || (!prefill.is_empty() && satisfied) {
            return self.dry_run(verb, Value::Object(prefill));
        }
        let lines: Vec<String> = props
            .iter()
            .map(|(k, _, _)| {
                let v = prefill
                    .get(k)
                    .or_else(|| verb.default_for(k))
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                format!("{k}={v}")
            })
            .collect();
        self.popup = Some(Popup::ArgsForm(Box::new(
            crate::popups::args::ArgsForm::new(verb, lines),
        )));
        Vec::new()
    }

    fn dry_run(&mut self, verb: Verb, args: Value) -> Vec<Effect> {
        let body = json!({"verb": verb.name, "args": args, "confirm": false});
        self.popup = Some(Popup::Plan(Box::new(
            crate::popups::plan::PlanDialog::verb(verb, args),
        )));
        vec![Effect::Post {
            op: PostOp::DryRun,
            path: OPS_COMMAND.into(),
            body,
        }]
    }

    fn start_run_job(&mut self, job: &str) -> Vec<Effect> {
        if let Some(v) = self.find_verb("run_job") {
            let key = pick_arg(v, &["job", "name", "job_name"]);
            let mut m = Map::new();
            m.insert(key, Value::from(job));
            return self.start_verb("run_job", m);
        }
        self.open_direct(
            PostOp::RunJob(job.into()),
            format!("/api/v1/jobs/{job}/run"),
            format!("Run scheduled job {job} now"),
        )
    }

    fn start_retry(&mut self, id: &str) -> Vec<Effect> {
        if let Some(v) = self.find_verb("retry_job") {
            let key = pick_arg(v, &["id", "job_id", "job"]);
            let mut m = Map::new();
            // Ids are numbers on some backends; send what the list showed.
            let val = id
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(id));
            let val = match v.arg_props().iter().find(|(k, _, _)| *k == key) {
                Some((_, ty, _)) if ty == "string" => Value::from(id),
                _ => val,
            };
            m.insert(key, val);
            return self.start_verb("retry_job", m);
        }
        self.open_direct(
            PostOp::RetryQueueJob(id.into()),
            format!("/api/v1/queue/jobs/{id}/retry"),
            format!("Move dead queue job {id} back to queued"),
        )
    }

    /// A confirm dialog for a plain API call, used when the backend has no verb for it.
    fn open_direct(&mut self, op: PostOp, path: String, summary: String) -> Vec<Effect> {
        if self.config.readonly {
            self.notify("Read-only console: actions that change state are disabled.");
            return Vec::new();
        }
        self.popup = Some(Popup::Plan(Box::new(
            crate::popups::plan::PlanDialog::direct(op, path, summary),
        )));
        Vec::new()
    }

    fn popup_key(&mut self, mode: Mode, action: Option<Action>, key: KeyEvent) -> Vec<Effect> {
        use crate::popups::plan::Stage;
        if action == Some(Action::Close) {
            self.popup = None;
            return Vec::new();
        }
        let Some(popup) = self.popup.as_mut() else {
            return Vec::new();
        };
        match (popup, mode) {
            (Popup::Palette(p), _) => match action {
                Some(Action::Up) => p.move_by(-1),
                Some(Action::Down) => p.move_by(1),
                Some(Action::PaletteRun) => return self.palette_run(),
                _ => {
                    if edit_line(&mut p.query, &key) {
                        p.refilter();
                    }
                }
            },
            (Popup::ArgsForm(f), _) => match action {
                Some(Action::Submit) => match f.parse() {
                    Ok(args) => {
                        let verb = f.verb.clone();
                        return self.dry_run(verb, args);
                    }
                    Err(e) => f.error = Some(e),
                },
                _ => {
                    f.error = None;
                    f.textarea.input(key);
                }
            },
            (Popup::Plan(_), Mode::ConfirmLow) if action == Some(Action::Confirm) => {
                return self.confirm_plan();
            }
            (Popup::Plan(d), Mode::ConfirmHigh) => match action {
                Some(Action::NextField) => d.field = 1 - d.field.min(1),
                Some(Action::Confirm) => {
                    if let Stage::Ready(_) = &d.stage {
                        let name = d.verb_name().to_string();
                        if d.typed.trim() != name {
                            d.error =
                                Some(format!("Type the verb name {name} exactly to confirm."));
                        } else if d.reason.trim().is_empty() {
                            d.error = Some("A reason is required for a high-risk verb.".into());
                            d.field = 1;
                        } else {
                            return self.confirm_plan();
                        }
                    }
                }
                _ => {
                    let field = if d.field == 0 {
                        &mut d.typed
                    } else {
                        &mut d.reason
                    };
                    if edit_line(field, &key) {
                        d.error = None;
                    }
                }
            },
            (Popup::Result(r), _) => match action {
                Some(Action::Up) => r.scroll = r.scroll.saturating_sub(1),
                Some(Action::Down) => r.scroll = r.scroll.saturating_add(1),
                _ => {}
            },
            (Popup::Help { scroll }, _) => match action {
                Some(Action::Up) => *scroll = scroll.saturating_sub(1),
                Some(Action::Down) => *scroll = scroll.saturating_add(1),
                _ => {}
            },
            _ => {}
        }
        Vec::new()
    }

    fn confirm_plan(&mut self) -> Vec<Effect> {
        use crate::popups::plan::{Kind, Stage};
        let Some(Popup::Plan(d)) = self.popup.as_mut() else {
            return Vec::new();
        };
        let Stage::Ready(plan) = &d.stage else {
            return Vec::new();
        };
        let plan = plan.clone();
        let effect = match &d.kind {
            Kind::Verb { verb, args } => {
                let mut body = json!({
                    "verb": verb.name,
                    "args": args,
                    "confirm": true,
                    "plan_id": plan.plan_id,
                });
                if !d.reason.trim().is_empty() {
                    body["reason"] = Value::from(d.reason.trim());
                }
                Effect::Post {
                    op: PostOp::Confirm,
                    path: OPS_COMMAND.into(),
                    body,
                }
            }
            Kind::Direct { op, path } => Effect::Post {
                op: op.clone(),
                path: path.clone(),
                body: json!({}),
            },
        };
        d.stage = Stage::Confirming(plan);
        vec![effect]
    }

    fn on_posted(
        &mut self,
        op: PostOp,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    ) -> Vec<Effect> {
        use crate::popups::plan::Stage;
        use crate::popups::result::ResultDialog;
        if at > self.now {
            self.now = at;
        }
        match (&op, &mut self.popup) {
            (PostOp::DryRun, Some(Popup::Plan(d))) if matches!(d.stage, Stage::Planning) => {
                match result {
                    Ok(v) => d.stage = Stage::Ready(Plan::from_json(&v)),
                    Err(e) => {
                        let title = format!("Dry-run of {} failed", d.verb_name());
                        self.popup = Some(Popup::Result(ResultDialog::from_result(title, Err(e))));
                    }
                }
                Vec::new()
            }
            // A dry-run answer for a dialog the operator already closed: nothing to show.
            (PostOp::DryRun, _) => Vec::new(),
            _ => {
                // Confirm/direct answers are always shown: the operator must learn what happened.
                let what = match (&op, &self.popup) {
                    (_, Some(Popup::Plan(d))) => d.verb_name().to_string(),
                    (PostOp::RunJob(j), _) => format!("run job {j}"),
                    (PostOp::RetryQueueJob(id), _) => format!("retry queue job {id}"),
                    (PostOp::PurgeDlq, _) => "purge dead-letter queue".into(),
                    _ => "command".into(),
                };
                let ok = result.is_ok();
                let title = format!("{what}: {}", if ok { "done" } else { "failed" });
                self.popup = Some(Popup::Result(ResultDialog::from_result(title, result)));
                // Something changed: refresh what is on screen and the audit head.
                self.refresh_now()
            }
        }
    }

    /// Seconds until the soonest retry among the failing resources this tab wants (for the
    /// status line); `None` when nothing is failing.
    pub fn next_retry_in(&self) -> Option<i64> {
        let mut best: Option<DateTime<Utc>> = None;
        let wanted: HashSet<Resource> = self.wanted().into_iter().collect();
        for r in wanted {
            let (next, failures) = match r {
                Resource::Telemetry => (self.telemetry.next_due, self.telemetry.failures),
                Resource::History => (self.history.next_due, self.history.failures),
                Resource::Verbs => (self.verbs.next_due, self.verbs.failures),
                Resource::Automations => (self.automations.next_due, self.automations.failures),
                Resource::JobRuns => (self.runs.next_due, self.runs.failures),
                Resource::QueueHealth => (self.queue_health.next_due, self.queue_health.failures),
                Resource::QueueJobs => (self.queue_jobs.next_due, self.queue_jobs.failures),
                Resource::Audit => (self.audit.next_due, self.audit.failures),
                Resource::Summary => (self.summary.next_due, self.summary.failures),
                Resource::Area(a) => (
                    self.areas[a.index()].next_due,
                    self.areas[a.index()].failures,
                ),
            };
            if failures > 0 {
                if let Some(n) = next {
                    best = Some(best.map_or(n, |b| b.min(n)));
                }
            }
        }
        best.map(|b| (b - self.now).num_seconds().max(0))
    }

    /// The area probe state for an optional-area tab.
    pub fn area(&self, a: Area) -> &Remote<AreaData> {
        &self.areas[a.index()]
    }
}

/// Picks the verb's argument name among `candidates` (else its first required one).
fn pick_arg(v: &Verb, candidates: &[&str]) -> String {
    let props = v.arg_props();
    candidates
        .iter()
        .find(|c| props.iter().any(|(k, _, _)| k == *c))
        .map(|c| c.to_string())
        .or_else(|| props.iter().find(|(_, _, r)| *r).map(|(k, _, _)| k.clone()))
        .or_else(|| props.first().map(|(k, _, _)| k.clone()))
        .unwrap_or_else(|| candidates[0].to_string())
}

/// Minimal single-line editing; returns whether the text changed.
pub fn edit_line(s: &mut String, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => {
            s.clear();
            true
        }
        KeyCode::Char('w') if ctrl => {
            let trimmed = s.trim_end().len();
            let cut = s[..trimmed].rfind(' ').map(|i| i + 1).unwrap_or(0);
            s.truncate(cut);
            true
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            s.push(c);
            true
        }
        KeyCode::Backspace => s.pop().is_some(),
        _ => false,
    }
}
