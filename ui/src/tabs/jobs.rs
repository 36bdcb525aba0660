//! Jobs tab: the scheduler registry (schedule, enabled, next/last run and outcome) and the
//! run history. Enter runs the selected job now through the dry-run → confirm flow.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;

use crate::app::{App, JobsPane};
use crate::components::badge::badge;
use crate::components::table::DataTable;
use crate::components::{empty_message, freshness, panel, Component};
use crate::event::Resource;
use crate::util::{fmt_num, rel, rel_time};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    registry(frame, top, app);
    history(frame, bottom, app);
}

fn registry(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = Resource::Automations.route();
    let f = freshness(&app.automations, route, app.now);
    let focused = app.jobs_pane == JobsPane::Registry;
    let mut block = panel("Scheduled jobs", &f, focused, theme);
    if let Some(a) = &app.automations.data {
        let mut s = vec![match a.running {
            Some(true) => "scheduler running".to_string(),
            Some(false) => "scheduler STOPPED".to_string(),
            None => "scheduler state unknown".to_string(),
        }];
        if let Some(l) = a.leader {
            s.push(if l {
                "leader".into()
            } else {
                "follower".into()
            });
        }
        if let Some(r) = &a.replica_id {
            s.push(format!("replica {r}"));
        }
        block = block.title_bottom(Line::from(Span::styled(
            format!(" {} ", s.join(" · ")),
            theme.muted,
        )));
    }
    let jobs = app
        .automations
        .data
        .as_ref()
        .map(|a| a.jobs.as_slice())
        .unwrap_or(&[]);
    let runs = app.runs.data.as_deref().unwrap_or(&[]);
    let row = |i: usize| {
        let j = &jobs[i];
        // Prefer the registry's own last-run record; else the newest run in the history.
        let last = runs.iter().find(|r| r.job == j.name);
        let last_at = j
            .last_run_at()
            .map(|t| rel(t, app.now))
            .or_else(|| last.map(|r| rel_time(r.started_at.as_deref(), app.now)))
            .unwrap_or_else(|| "never".into());
        let outcome = j.last_outcome().or_else(|| last.map(|r| r.outcome.clone()));
        Row::new(vec![
            Cell::from(j.name.clone()),
            Cell::from(j.schedule.clone().unwrap_or_else(|| "-".into())),
            Cell::from(match j.enabled {
                Some(false) => Span::styled("[off]", theme.warn),
                _ => Span::raw("[on]"),
            }),
            Cell::from(rel_time(j.next_run.as_deref(), app.now)),
            Cell::from(last_at),
            Cell::from(match outcome {
                Some(o) => badge(&o, theme),
                None => Span::styled("-", theme.muted),
            }),
        ])
    };
    DataTable {
        block,
        header: &["Job", "Schedule", "On", "Next run", "Last run", "Outcome"],
        widths: &[
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
        ],
        view: &app.jobs_table,
        row: &row,
        focused,
        editing: focused && app.filtering,
        empty: if app.automations.data.is_some() {
            "The scheduler has no registered jobs.".into()
        } else {
            empty_message(&f, route)
        },
        total: jobs.len(),
    }
    .render(frame, area, theme);
}

fn history(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = Resource::JobRuns.route();
    let f = freshness(&app.runs, route, app.now);
    let focused = app.jobs_pane == JobsPane::Runs;
    let block = panel("Run history", &f, focused, theme);
    let runs = app.runs.data.as_deref().unwrap_or(&[]);
    let row = |i: usize| {
        let r = &runs[i];
        Row::new(vec![
            Cell::from(rel_time(r.started_at.as_deref(), app.now)),
            Cell::from(r.job.clone()),
            Cell::from(badge(&r.outcome, theme)),
            Cell::from(
                r.duration_ms
                    .map(|d| format!("{} ms", fmt_num(d)))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(r.replica.clone().unwrap_or_else(|| "-".into())),
            Cell::from(r.error.clone().unwrap_or_default()),
        ])
    };
    DataTable {
        block,
        header: &["Started", "Job", "Outcome", "Duration", "Replica", "Error"],
        widths: &[
            Constraint::Length(9),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
        view: &app.runs_table,
        row: &row,
        focused,
        editing: focused && app.filtering,
        empty: if app.runs.data.is_some() {
            "No runs recorded yet.".into()
        } else {
            empty_message(&f, route)
        },
        total: runs.len(),
    }
    .render(frame, area, theme);
}
