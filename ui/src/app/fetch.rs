//! What to fetch and what to do with answers: the wanted set (always-on header resources,
//! the current tab's, the palette's), single-flight per resource, backoff, superseded answers.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::App;
use crate::cache::Resource;
use crate::client::ClientError;
use crate::event::Effect;
use crate::popups::palette::PaletteState;
use crate::popups::Popup;
use crate::resources::{AUDIT, TELEMETRY, TENANTS, VERBS};

impl App {
    /// Resources kept fresh now: the header's, the current tab's and, with the palette open,
    /// every tab's palette sources and the tenant list.
    pub fn wanted(&self) -> Vec<Resource> {
        let mut r = vec![TELEMETRY.res, VERBS.res, AUDIT.res];
        let mut add = |x: Resource| {
            if !r.contains(&x) {
                r.push(x);
            }
        };
        for x in self.current().resources() {
            add(x);
        }
        // A run started from the console is followed on any tab, to report its end.
        if !self.watched_runs.is_empty() {
            add(crate::tabs::jobs::RUNS.res);
        }
        if matches!(self.popup, Some(Popup::Logs(_))) {
            add(crate::popups::logs::LOGS.res);
        }
        if matches!(self.popup, Some(Popup::Palette(_))) {
            for t in &self.tabs {
                for x in t.palette_resources() {
                    add(x);
                }
            }
            add(TENANTS.res);
        }
        r
    }

    /// The request path for `r`: a tab may add parameters (the queue's state filter).
    pub fn path_for(&self, r: Resource) -> String {
        if let Some(Popup::Logs(l)) = &self.popup {
            if r == crate::popups::logs::LOGS.res {
                return l.path();
            }
        }
        self.tabs
            .iter()
            .find_map(|t| t.path(r))
            .unwrap_or_else(|| r.route.to_string())
    }

    /// Fetch effects for wanted resources that are due and not already in flight
    /// (single-flight per resource).
    pub fn due_fetches(&mut self) -> Vec<Effect> {
        self.fetch_due(false)
    }

    /// [`App::due_fetches`]. Unless `force` (`r`, a changed filter), what was fetched once
    /// is held while updates are paused (`p`), and the logs view's lines while it does not
    /// follow; what was never fetched is fetched (a tab opened while paused still shows).
    fn fetch_due(&mut self, force: bool) -> Vec<Effect> {
        let mut out = Vec::new();
        let following = matches!(&self.popup, Some(Popup::Logs(l)) if l.follow);
        for r in self.wanted() {
            let logs = r == crate::popups::logs::LOGS.res;
            let held = !force
                && self.cache.meta(r).updated_at.is_some()
                && (self.paused || (logs && !following));
            if !held && self.cache.is_due(r, self.now) {
                let path = self.path_for(r);
                let e = self.cache.entry_mut(r);
                e.in_flight = true;
                e.requested = Some(path.clone());
                out.push(Effect::Fetch { resource: r, path });
            }
        }
        out
    }

    /// `r`: fetch the current tab now, forgetting any backoff.
    pub(super) fn refresh_now(&mut self) -> Vec<Effect> {
        for r in self.wanted() {
            let e = self.cache.entry_mut(r);
            e.next_due = None;
            e.failures = 0;
        }
        self.fetch_due(true)
    }

    /// A tab changed how `r` is requested: ask again now (an answer already in flight for
    /// the old path is dropped when it arrives).
    pub(super) fn refetch(&mut self, r: Resource) -> Vec<Effect> {
        self.cache.entry_mut(r).next_due = None;
        self.fetch_due(true)
    }

    pub(super) fn on_fetched(
        &mut self,
        resource: Resource,
        result: Result<Value, ClientError>,
        at: DateTime<Utc>,
    ) -> Vec<Effect> {
        if at > self.now {
            self.now = at;
        }
        // An answer for a superseded request path (the filter changed meanwhile): drop it
        // and ask again.
        let want = self.path_for(resource);
        let e = self.cache.entry_mut(resource);
        if e.requested.as_deref().is_some_and(|p| p != want) {
            e.in_flight = false;
            e.requested = None;
            e.next_due = None;
            return self.fetch_due(true);
        }
        match &result {
            Err(e) if e.is_unreachable() => {
                self.unreachable_since.get_or_insert(at);
            }
            _ => self.unreachable_since = None,
        }
        match &result {
            Err(e) if e.status() == Some(401) => {
                self.auth_rejected_since.get_or_insert(at);
            }
            Ok(_) => self.auth_rejected_since = None,
            Err(_) => {}
        }
        if self.cache.apply(resource, result, at) {
            self.refilter_all();
        }
        let run_ended = resource == crate::tabs::jobs::RUNS.res
            && !self.watched_runs.is_empty()
            && self.report_finished_runs();
        // While a run started here is going, its end is looked for every 2 s, so the tab
        // shows what it changed soon after, not on the run history's 10 s cadence.
        if resource == crate::tabs::jobs::RUNS.res && !self.watched_runs.is_empty() {
            let e = self.cache.entry_mut(resource);
            if e.failures == 0 {
                e.next_due = Some(at + chrono::Duration::seconds(WATCHED_RUN_POLL_SECS));
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
        if run_ended {
            return self.refresh_now();
        }
        Vec::new()
    }

    /// Freshness of what the current tab shows: when its oldest piece of data arrived, and
    /// whether any of it is failing to refresh (then it is stale). `None`: nothing yet.
    pub fn tab_freshness(&self) -> Option<(DateTime<Utc>, bool)> {
        let metas: Vec<_> = self
            .current()
            .resources()
            .into_iter()
            .chain([TELEMETRY.res])
            .map(|r| self.cache.meta(r))
            .collect();
        let oldest = metas.iter().filter_map(|m| m.updated_at).min()?;
        let stale = metas
            .iter()
            .any(|m| m.failures > 0 && m.updated_at.is_some());
        Some((oldest, stale))
    }

    /// Seconds until the soonest retry among the failing resources this tab wants (for the
    /// status line); `None` when nothing is failing.
    pub fn next_retry_in(&self) -> Option<i64> {
        self.wanted()
            .into_iter()
            .map(|r| self.cache.meta(r))
            .filter(|m| m.failures > 0)
            .filter_map(|m| m.next_due)
            .min()
            .map(|b| (b - self.now).num_seconds().max(0))
    }
}

/// How often the run history is asked while a run started from the console is going.
const WATCHED_RUN_POLL_SECS: i64 = 2;
