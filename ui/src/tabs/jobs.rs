//! Jobs tab: the scheduler registry (schedule, enabled, next/last run and outcome) and the
//! run history. `d`/Enter describes the selected row; `t` triggers (runs now) the selected
//! scheduled job through the dry-run → confirm flow.

use std::any::Any;

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;
use serde_json::{Map, Value};

use super::{Intent, Tab};
use crate::app::App;
use crate::cache::{Cache, Res, Resource};
use crate::commands::{cmd, mutating, Action, KeyCommand, Scope, TabAction, NONE};
use crate::components::badge::{self, badge};
use crate::components::table::{fit, fit_view, DataTable, TableView};
use crate::components::{empty_message, freshness, panel, Component};
use crate::model::{AutomationsStatus, JobRun, JobRuns, JobStatus, Verb};
use crate::popups::describe::Described;
use crate::popups::palette::{Entry, EntryKind, Target};
use crate::util::{cron_words, fmt_num, rel_time};

const TITLE: &str = "Jobs";

/// The scheduler registry.
pub const AUTOMATIONS: Res<AutomationsStatus> =
    Res::new("automations.status", "/api/v1/automations/status", 10);
/// Newest runs first.
pub const RUNS: Res<JobRuns> = Res::new("jobs.runs", "/api/v1/jobs/runs?limit=50", 10);

pub const SWITCH_PANE: TabAction = TabAction("jobs.switch_pane");
pub const RUN_NOW: TabAction = TabAction("jobs.run_now");

static COMMANDS: &[KeyCommand] = &[
    cmd(
        Action::Tab(SWITCH_PANE),
        &[
            (KeyCode::Char('h'), NONE),
            (KeyCode::Left, NONE),
            (KeyCode::Right, NONE),
        ],
        "←/→ h",
        "pane",
        "Switch between the job registry and the run history",
        Scope::OnTab(TITLE),
    ),
    mutating(cmd(
        Action::Tab(RUN_NOW),
        &[(KeyCode::Char('t'), NONE)],
        "t",
        "trigger",
        "Trigger (run now) the selected scheduled job of the registry (dry-run plan, then confirm)",
        Scope::OnTab(TITLE),
    )),
];

/// Which table has focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Registry,
    Runs,
}

pub struct JobsTab {
    pub pane: Pane,
    pub registry: TableView,
    pub runs: TableView,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(JobsTab {
        pane: Pane::Registry,
        registry: TableView::default(),
        runs: TableView::default(),
    })
}

impl Tab for JobsTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![AUTOMATIONS.res, RUNS.res]
    }

    fn palette_resources(&self) -> Vec<Resource> {
        vec![AUTOMATIONS.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
        self.draw_registry(frame, top, app);
        self.draw_history(frame, bottom, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, cache: &Cache) -> Intent {
        match action {
            SWITCH_PANE => {
                self.pane = match self.pane {
                    Pane::Registry => Pane::Runs,
                    Pane::Runs => Pane::Registry,
                };
                Intent::Nothing
            }
            // Only from the registry: a row of the history is a past run, and triggering
            // from it would start a job the operator did not pick as a job.
            RUN_NOW => match (self.pane, self.selected_job(cache)) {
                (Pane::Runs, _) => Intent::Notify(
                    "t triggers a scheduled job: switch to the registry (h) and select it.".into(),
                ),
                (Pane::Registry, Some(j)) => run_job(&j.name, cache),
                (Pane::Registry, None) => Intent::Notify("No job selected.".into()),
            },
            _ => Intent::Nothing,
        }
    }

    fn table(&self) -> Option<&TableView> {
        Some(match self.pane {
            Pane::Registry => &self.registry,
            Pane::Runs => &self.runs,
        })
    }

    fn table_mut(&mut self) -> Option<&mut TableView> {
        Some(match self.pane {
            Pane::Registry => &mut self.registry,
            Pane::Runs => &mut self.runs,
        })
    }

    fn refilter(&mut self, cache: &Cache) {
        let jobs = cache
            .get(AUTOMATIONS)
            .map(|a| a.jobs.as_slice())
            .unwrap_or(&[]);
        // Searchable text: the fields and what the row shows for them (schedule in words,
        // `[on]`, the outcome badge), so `/` finds what is on screen.
        self.registry.refilter_sorted(jobs.iter().map(|j| {
            let outcome = j.last_run.as_ref().map(|r| r.outcome.as_str());
            let text = format!(
                "{} {} {} {} {} {}",
                j.name,
                j.schedule,
                cron_words(&j.schedule),
                if j.enabled { "[on]" } else { "[off]" },
                outcome.unwrap_or(""),
                outcome.map(badge::label).unwrap_or_default()
            );
            let sort = vec![
                j.name.clone(),
                j.schedule.clone(),
                j.enabled.to_string(),
                j.next_run.clone().unwrap_or_default(),
                j.last_run
                    .as_ref()
                    .map(|r| r.started_at.clone())
                    .unwrap_or_default(),
                outcome.unwrap_or("").to_string(),
            ];
            (j.name.clone(), text, sort)
        }));
        let runs = cache.get(RUNS).map(|r| r.runs.as_slice()).unwrap_or(&[]);
        self.runs.refilter_sorted(runs.iter().map(|r| {
            let text = format!(
                "{} {} {} {} {} {}",
                r.id,
                r.job,
                r.outcome,
                badge::label(r.outcome.as_str()),
                r.replica,
                r.error.as_deref().unwrap_or("")
            );
            let sort = vec![
                r.started_at.clone(),
                r.job.clone(),
                r.outcome.to_string(),
                r.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
                r.replica.clone(),
                r.error.clone().unwrap_or_default(),
            ];
            (r.id.clone(), text, sort)
        }));
    }

    fn palette_entries(&self, cache: &Cache, out: &mut Vec<Entry>) {
        let jobs = cache
            .get(AUTOMATIONS)
            .map(|a| a.jobs.as_slice())
            .unwrap_or(&[]);
        for j in jobs {
            let detail = format!(
                "scheduled job  {}{}",
                j.schedule,
                if j.enabled { "" } else { "  disabled" }
            );
            out.push(Entry::new(
                EntryKind::Entity("job"),
                j.name.clone(),
                detail,
                Target::Entity {
                    tab: TITLE,
                    key: j.name.clone(),
                },
            ));
        }
    }

    fn open_entity(&mut self, key: &str, cache: &Cache) {
        self.pane = Pane::Registry;
        self.registry.select_key(key);
        self.refilter(cache);
    }

    fn describe(&self, cache: &Cache) -> Option<Described> {
        match self.pane {
            Pane::Registry => {
                let j = self.selected_job(cache)?;
                Some(Described::of(
                    "scheduled job",
                    j.name.clone(),
                    j,
                    &[
                        "name",
                        "description",
                        "schedule",
                        "enabled",
                        "next_run",
                        "timeout_secs",
                        "run_at_start",
                        "last_run",
                    ],
                ))
            }
            Pane::Runs => {
                let r = self.selected_run(cache)?;
                Some(Described::of(
                    "job run",
                    r.id.clone(),
                    r,
                    &[
                        "id",
                        "job",
                        "outcome",
                        "trigger",
                        "error",
                        "started_at",
                        "finished_at",
                        "duration_ms",
                        "replica",
                        "queue_job_id",
                        "attempt",
                        "fire_at",
                        "result",
                    ],
                ))
            }
        }
    }

    fn selection_args(&self, verb: &Verb, cache: &Cache) -> Map<String, Value> {
        let job = match self.pane {
            Pane::Registry => self.selected_job(cache).map(|j| j.name.as_str()),
            Pane::Runs => self.selected_run(cache).map(|r| r.job.as_str()),
        };
        match job {
            Some(name) if verb.name == "run_job" => run_job_args(verb, name),
            _ => Map::new(),
        }
    }

    fn log_area(&self) -> &'static str {
        "scheduler"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl JobsTab {
    fn selected_job<'a>(&self, cache: &'a Cache) -> Option<&'a JobStatus> {
        let i = self.registry.selected_index()?;
        cache.get(AUTOMATIONS)?.jobs.get(i)
    }

    fn selected_run<'a>(&self, cache: &'a Cache) -> Option<&'a JobRun> {
        let i = self.runs.selected_index()?;
        cache.get(RUNS)?.runs.get(i)
    }
}

/// `run_job`'s arguments for `job` (the argument name taken from the verb's schema).
fn run_job_args(v: &Verb, job: &str) -> Map<String, Value> {
    let key = super::pick_arg(v, &["job", "name", "job_name"]);
    [(key, Value::from(job))].into_iter().collect()
}

/// The `run_job` verb (argument name taken from its schema).
fn run_job(job: &str, cache: &Cache) -> Intent {
    let args = super::find_verb(cache, "run_job")
        .map(|v| run_job_args(v, job))
        .unwrap_or_default();
    Intent::Verb {
        name: "run_job",
        args,
    }
}

impl JobsTab {
    fn draw_registry(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = AUTOMATIONS.res.route;
        let automations = app.cache.remote(AUTOMATIONS);
        let f = freshness(&automations, route, app.now);
        let focused = self.pane == Pane::Registry;
        let mut block = panel("Scheduled jobs", &f, focused, theme);
        if let Some(a) = automations.data {
            let s = [
                if a.running {
                    "scheduler running"
                } else {
                    "scheduler STOPPED"
                }
                .to_string(),
                if a.leader { "leader" } else { "follower" }.to_string(),
                format!("replica {}", a.replica_id),
            ];
            block = block.title_bottom(Line::from(Span::styled(
                format!(" {} ", s.join(" · ")),
                theme.muted,
            )));
        }
        let jobs = automations.data.map(|a| a.jobs.as_slice()).unwrap_or(&[]);
        let runs = app
            .cache
            .get(RUNS)
            .map(|r| r.runs.as_slice())
            .unwrap_or(&[]);
        const HEADER: [&str; 6] = ["Job", "Schedule", "On", "Next run", "Last run", "Outcome"];
        let last_of = |i: usize| {
            let j = &jobs[i];
            // Prefer the registry's own last-run record; else the newest run in the history.
            j.last_run
                .as_ref()
                .or_else(|| runs.iter().find(|r| r.job == j.name))
        };
        let texts = |i: usize| -> Vec<String> {
            let j = &jobs[i];
            let last = last_of(i);
            vec![
                j.name.clone(),
                cron_words(&j.schedule),
                if j.enabled { "[on]" } else { "[off]" }.into(),
                crate::util::next_time(j.next_run.as_deref(), app.now),
                last.map(|r| rel_time(Some(&r.started_at), app.now))
                    .unwrap_or_else(|| "never".into()),
                last.map(|r| badge(r.outcome.as_str(), theme).content.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        };
        // Sized to the rows: job names and schedules whole, k9s-style.
        let (w, widths) = fit_view(&HEADER, &self.registry, block.inner(area).width, texts);
        let row = |i: usize| {
            let j = &jobs[i];
            let t = texts(i);
            Row::new(vec![
                Cell::from(fit(&t[0], w[0])),
                Cell::from(fit(&t[1], w[1])),
                Cell::from(if j.enabled {
                    Span::raw(fit(&t[2], w[2]))
                } else {
                    Span::styled(fit(&t[2], w[2]), theme.warn)
                }),
                Cell::from(fit(&t[3], w[3])),
                Cell::from(fit(&t[4], w[4])),
                Cell::from(match last_of(i) {
                    Some(r) => {
                        let b = badge(r.outcome.as_str(), theme);
                        Span::styled(fit(&t[5], w[5]), b.style)
                    }
                    None => Span::styled("-", theme.muted),
                }),
            ])
        };
        DataTable {
            block,
            header: &HEADER,
            widths: &widths,
            view: &self.registry,
            row: &row,
            focused,
            editing: focused && app.filtering,
            empty: if automations.data.is_some() {
                "The scheduler has no registered jobs.".into()
            } else {
                empty_message(&f, route)
            },
            total: jobs.len(),
        }
        .render(frame, area, theme);
    }

    fn draw_history(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = RUNS.res.route;
        let remote = app.cache.remote(RUNS);
        let f = freshness(&remote, route, app.now);
        let focused = self.pane == Pane::Runs;
        let block = panel("Run history", &f, focused, theme);
        let runs = remote.data.map(|r| r.runs.as_slice()).unwrap_or(&[]);
        const HEADER: [&str; 6] = ["Started", "Job", "Outcome", "Duration", "Replica", "Error"];
        let texts = |i: usize| -> Vec<String> {
            let r = &runs[i];
            vec![
                rel_time(Some(&r.started_at), app.now),
                r.job.clone(),
                badge(r.outcome.as_str(), theme).content.to_string(),
                r.duration_ms
                    .map(|d| format!("{} ms", fmt_num(d as f64)))
                    .unwrap_or_else(|| "-".into()),
                r.replica.clone(),
                r.error.clone().unwrap_or_default(),
            ]
        };
        // Sized to the rows (job and replica names whole), the error gets the rest.
        let (w, widths) = fit_view(&HEADER, &self.runs, block.inner(area).width, texts);
        let row = |i: usize| {
            let r = &runs[i];
            let t = texts(i);
            let b = badge(r.outcome.as_str(), theme);
            Row::new(vec![
                Cell::from(fit(&t[0], w[0])),
                Cell::from(fit(&t[1], w[1])),
                Cell::from(Span::styled(fit(&t[2], w[2]), b.style)),
                Cell::from(fit(&t[3], w[3])),
                Cell::from(fit(&t[4], w[4])),
                Cell::from(fit(&t[5], w[5])),
            ])
        };
        DataTable {
            block,
            header: &HEADER,
            widths: &widths,
            view: &self.runs,
            row: &row,
            focused,
            editing: focused && app.filtering,
            empty: if remote.data.is_some() {
                "No runs recorded yet.".into()
            } else {
                empty_message(&f, route)
            },
            total: runs.len(),
        }
        .render(frame, area, theme);
    }
}
