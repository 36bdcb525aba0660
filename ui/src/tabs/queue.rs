//! Queue tab: depth by state, lag, oldest ready age, throughput and workers, then the job list
//! (`s` cycles the state filter, `/` filters, `d`/Enter describes a job, `R` retries a dead
//! job, `D` purges dead jobs).

use std::any::Any;

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};
use ratatui::Frame;
use serde_json::{Map, Value};

use super::{Intent, Tab};
use crate::app::App;
use crate::cache::{Cache, Res, Resource};
use crate::commands::{cmd, hidden, mutating, Action, KeyCommand, Scope, TabAction, NONE, SHIFT};
use crate::components::table::{fit, fit_id, fit_view, DataTable, TableView};
use crate::components::{empty_message, freshness, panel, Component};
use crate::model::{JobList, QueueHealth, QueueJob, Verb, VerbExt};
use crate::popups::describe::Described;
use crate::popups::palette::{Entry, EntryKind, Target};
use crate::theme::Theme;
use crate::util::{fmt_count, fmt_duration, fmt_num, rel_time};

const TITLE: &str = "Queue";

pub const HEALTH: Res<QueueHealth> = Res::new("queue.health", "/api/v1/queue/health", 5);
/// The job list; the state filter is added by [`QueueTab::path`].
pub const JOBS: Res<JobList> = Res::new("queue.jobs", "/api/v1/queue/jobs", 5);

pub const CYCLE_STATE: TabAction = TabAction("queue.cycle_state");
pub const CYCLE_STATE_BACK: TabAction = TabAction("queue.cycle_state_back");
pub const RETRY: TabAction = TabAction("queue.retry");
pub const PURGE_DLQ: TabAction = TabAction("queue.purge_dlq");

static COMMANDS: &[KeyCommand] = &[
    cmd(
        Action::Tab(CYCLE_STATE),
        &[(KeyCode::Char('s'), NONE)],
        "s",
        "state",
        "Cycle the queue job list's state filter (all, queued, running, failed, dead, succeeded)",
        Scope::OnTab(TITLE),
    ),
    hidden(cmd(
        Action::Tab(CYCLE_STATE_BACK),
        &[(KeyCode::Char('S'), SHIFT), (KeyCode::Char('S'), NONE)],
        "S",
        "state back",
        "Cycle the queue job list's state filter backwards",
        Scope::OnTab(TITLE),
    )),
    mutating(cmd(
        Action::Tab(RETRY),
        &[(KeyCode::Char('R'), SHIFT), (KeyCode::Char('R'), NONE)],
        "R",
        "retry",
        "Retry the selected dead job (dry-run plan, then confirm)",
        Scope::OnTab(TITLE),
    )),
    mutating(cmd(
        Action::Tab(PURGE_DLQ),
        &[(KeyCode::Char('D'), SHIFT), (KeyCode::Char('D'), NONE)],
        "D",
        "purge dead",
        "Purge the dead-letter queue (purge_dlq verb, confirm required)",
        Scope::OnTab(TITLE),
    )),
];

/// The server-side state filters `s` cycles through (`None` = all).
const STATES: [Option<&str>; 6] = [
    None,
    Some("queued"),
    Some("running"),
    Some("failed"),
    Some("dead"),
    Some("succeeded"),
];

#[derive(Default)]
pub struct QueueTab {
    pub table: TableView,
    /// Server-side state filter for the job list (`None` = all).
    pub state: Option<&'static str>,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(QueueTab::default())
}

impl Tab for QueueTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![HEALTH.res, JOBS.res]
    }

    fn palette_resources(&self) -> Vec<Resource> {
        vec![JOBS.res]
    }

    fn path(&self, r: Resource) -> Option<String> {
        (r == JOBS.res).then(|| match self.state {
            Some(s) => format!("{}?state={s}&limit=200", JOBS.res.route),
            None => format!("{}?limit=200", JOBS.res.route),
        })
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let [top, bottom] =
            Layout::vertical([Constraint::Length(4), Constraint::Min(5)]).areas(area);
        health(frame, top, app);
        self.draw_jobs(frame, bottom, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, cache: &Cache) -> Intent {
        match action {
            CYCLE_STATE | CYCLE_STATE_BACK => {
                let pos = STATES.iter().position(|s| *s == self.state).unwrap_or(0);
                let step = if action == CYCLE_STATE {
                    1
                } else {
                    STATES.len() - 1
                };
                self.state = STATES[(pos + step) % STATES.len()];
                Intent::Refetch(JOBS.res)
            }
            RETRY => match self.selected_job(cache) {
                Some(j) if j.state == "dead" => retry(&j.id, cache),
                Some(j) => Intent::Notify(format!(
                    "Only dead jobs can be retried (job {} is {}).",
                    j.id, j.state
                )),
                None => Intent::Notify("No queue job selected.".into()),
            },
            PURGE_DLQ => Intent::Verb {
                name: "purge_dlq",
                args: Map::new(),
            },
            _ => Intent::Nothing,
        }
    }

    fn table(&self) -> Option<&TableView> {
        Some(&self.table)
    }

    fn table_mut(&mut self) -> Option<&mut TableView> {
        Some(&mut self.table)
    }

    fn refilter(&mut self, cache: &Cache) {
        let jobs = cache.get(JOBS).map(|l| l.jobs.as_slice()).unwrap_or(&[]);
        self.table.refilter_sorted(jobs.iter().map(|j| {
            // What the row shows (tries as `1/5`, `-` for no worker), so `/` finds what is
            // on screen.
            let text = format!(
                "{} {} {} {}/{} {} {}",
                j.id,
                j.kind,
                j.state,
                j.attempts,
                j.max_attempts,
                j.worker.as_deref().unwrap_or("-"),
                j.error.as_deref().unwrap_or("")
            );
            // One sort key per column; times by their timestamp.
            let sort = vec![
                j.id.clone(),
                j.kind.clone(),
                j.state.to_string(),
                format!("{}/{}", j.attempts, j.max_attempts),
                j.enqueued_at.clone(),
                j.worker.clone().unwrap_or_default(),
                j.error.clone().unwrap_or_default(),
            ];
            (j.id.clone(), text, sort)
        }));
    }

    fn palette_entries(&self, cache: &Cache, out: &mut Vec<Entry>) {
        for j in cache.get(JOBS).map(|l| l.jobs.as_slice()).unwrap_or(&[]) {
            out.push(Entry::new(
                EntryKind::Entity("queue"),
                j.id.clone(),
                format!("{} {}", j.kind, j.state),
                Target::Entity {
                    tab: TITLE,
                    key: j.id.clone(),
                },
            ));
        }
    }

    fn open_entity(&mut self, key: &str, cache: &Cache) {
        self.table.select_key(key);
        self.refilter(cache);
    }

    fn describe(&self, cache: &Cache) -> Option<Described> {
        let j = self.selected_job(cache)?;
        Some(Described::of(
            "queue job",
            j.id.clone(),
            j,
            &[
                "id",
                "kind",
                "state",
                "attempts",
                "max_attempts",
                "error",
                "worker",
                "priority",
                "enqueued_at",
                "run_at",
                "started_at",
                "finished_at",
                "payload",
                "result",
            ],
        ))
    }

    fn selection_args(&self, verb: &Verb, cache: &Cache) -> Map<String, Value> {
        match self.selected_job(cache) {
            Some(j) if verb.name == "retry_job" && j.state == "dead" => retry_args(verb, &j.id),
            _ => Map::new(),
        }
    }

    fn log_area(&self) -> &'static str {
        "queue"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl QueueTab {
    fn selected_job<'a>(&self, cache: &'a Cache) -> Option<&'a QueueJob> {
        let i = self.table.selected_index()?;
        cache.get(JOBS)?.jobs.get(i)
    }
}

/// `retry_job`'s arguments for job `id` (the id typed as the verb's schema says).
fn retry_args(v: &Verb, id: &str) -> Map<String, Value> {
    let key = super::pick_arg(v, &["id", "job_id", "job"]);
    let integer = v
        .arg_props()
        .iter()
        .any(|(k, ty, _)| *k == key && ty == "integer");
    let val = match id.parse::<i64>() {
        Ok(n) if integer => Value::from(n),
        _ => Value::from(id),
    };
    [(key, val)].into_iter().collect()
}

/// The `retry_job` verb.
fn retry(id: &str, cache: &Cache) -> Intent {
    let args = super::find_verb(cache, "retry_job")
        .map(|v| retry_args(v, id))
        .unwrap_or_default();
    Intent::Verb {
        name: "retry_job",
        args,
    }
}

/// Queue state as text, in the backend's own words — the same in the table, the health
/// line, the `s` filter, the palette and `/` (so `/failed` finds what the table shows as
/// failed). Only `dead` is upper-cased, to stand out without colour; colour only reinforces.
fn state_span(s: &str, theme: &Theme) -> Span<'static> {
    match s {
        "dead" => Span::styled("DEAD", theme.fail),
        "failed" => Span::styled("failed", theme.warn),
        "succeeded" => Span::styled("succeeded", theme.ok),
        other => Span::raw(other.to_string()),
    }
}

fn health(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = HEALTH.res.route;
    let remote = app.cache.remote(HEALTH);
    let f = freshness(&remote, route, app.now);
    let block = panel("Queue health", &f, false, theme);
    let bold = theme.base.add_modifier(Modifier::BOLD);
    let lines = match remote.data {
        None => vec![Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        ))],
        Some(h) => {
            let d = &h.depth;
            let mut depth = vec![Span::styled("Depth  ", bold)];
            for (state, n) in [
                ("queued", d.queued),
                ("running", d.running),
                ("failed", d.failed),
                ("dead", d.dead),
                ("succeeded", d.succeeded),
            ] {
                depth.push(state_span(state, theme));
                depth.push(Span::raw(format!(" {}   ", fmt_count(n.max(0) as u64))));
            }
            let mut stats = vec![
                Span::styled("Lag ", bold),
                Span::raw(format!("{} ms   ", fmt_num(h.lag_ms as f64))),
                Span::styled("Oldest ready ", bold),
                Span::raw(format!("{}   ", fmt_duration(h.oldest_ready_age_s))),
                Span::styled("Throughput ", bold),
                Span::raw(format!("{}/min   ", fmt_num(h.throughput_per_min as f64))),
                Span::styled("Workers ", bold),
                Span::raw(h.workers.to_string()),
            ];
            if h.paused {
                stats.push(Span::styled("   [PAUSED]", theme.warn));
            }
            vec![Line::from(depth), Line::from(stats)]
        }
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

impl QueueTab {
    fn draw_jobs(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = JOBS.res.route;
        let remote = app.cache.remote(JOBS);
        let f = freshness(&remote, route, app.now);
        let title = format!("Jobs · state: {}", self.state.unwrap_or("all"));
        let block = panel(&title, &f, true, theme);
        let jobs = remote.data.map(|l| l.jobs.as_slice()).unwrap_or(&[]);
        const HEADER: [&str; 7] = [
            "Id", "Kind", "State", "Tries", "Enqueued", "Worker", "Error",
        ];
        let texts = |i: usize| -> Vec<String> {
            let j = &jobs[i];
            vec![
                j.id.clone(),
                j.kind.clone(),
                state_span(j.state.as_str(), theme).content.to_string(),
                format!("{}/{}", j.attempts, j.max_attempts),
                rel_time(Some(&j.enqueued_at), app.now),
                j.worker.clone().unwrap_or_else(|| "-".into()),
                j.error.clone().unwrap_or_default(),
            ]
        };
        // Sized to what the filtered rows hold (ids whole, worker names unambiguous), the
        // error gets the rest; anything cut says so with `…`.
        let (w, widths) = fit_view(&HEADER, &self.table, block.inner(area).width, texts);
        let row = |i: usize| {
            let j = &jobs[i];
            let t = texts(i);
            let state = state_span(j.state.as_str(), theme);
            Row::new(vec![
                Cell::from(fit_id(&t[0], w[0])),
                Cell::from(fit(&t[1], w[1])),
                Cell::from(Span::styled(fit(&t[2], w[2]), state.style)),
                Cell::from(fit(&t[3], w[3])),
                Cell::from(fit(&t[4], w[4])),
                Cell::from(fit(&t[5], w[5])),
                Cell::from(fit(&t[6], w[6])),
            ])
        };
        DataTable {
            block,
            header: &HEADER,
            widths: &widths,
            view: &self.table,
            row: &row,
            focused: true,
            editing: app.filtering,
            empty: if remote.data.is_some() {
                match self.state {
                    Some(s) => format!("No {s} jobs in the queue."),
                    None => "The queue is empty.".into(),
                }
            } else {
                empty_message(&f, route)
            },
            total: jobs.len(),
        }
        .render(frame, area, theme);
    }
}
