//! Queue tab: depth by state, lag, oldest ready age, throughput and workers, then the job list
//! (`s` cycles the state filter, `/` filters, Enter retries a dead job, `D` purges dead jobs).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};
use ratatui::Frame;

use crate::app::App;
use crate::components::table::DataTable;
use crate::components::{empty_message, freshness, panel, Component};
use crate::event::Resource;
use crate::theme::Theme;
use crate::util::{fmt_count, fmt_duration, fmt_num, rel_time};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let [top, bottom] = Layout::vertical([Constraint::Length(4), Constraint::Min(5)]).areas(area);
    health(frame, top, app);
    jobs(frame, bottom, app);
}

/// Queue state as text; colour only reinforces it.
fn state_span(s: &str, theme: &Theme) -> Span<'static> {
    match s {
        "dead" => Span::styled("DEAD", theme.fail),
        "failed" => Span::styled("retrying", theme.warn),
        "succeeded" => Span::styled("done", theme.ok),
        other => Span::raw(other.to_string()),
    }
}

fn health(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = Resource::QueueHealth.route();
    let f = freshness(&app.queue_health, route, app.now);
    let block = panel("Queue health", &f, false, theme);
    let bold = theme.base.add_modifier(Modifier::BOLD);
    let lines = match &app.queue_health.data {
        None => vec![Line::from(Span::styled(
            empty_message(&f, route),
            theme.muted,
        ))],
        Some(h) => {
            let mut depth = vec![Span::styled("Depth  ", bold)];
            for (state, n) in &h.depth {
                depth.push(state_span(state, theme));
                depth.push(Span::raw(format!(" {}   ", fmt_count(*n))));
            }
            if h.depth.is_empty() {
                depth.push(Span::styled("not reported", theme.muted));
            }
            let opt =
                |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
            let stats = vec![
                Span::styled("Lag ", bold),
                Span::raw(format!(
                    "{}   ",
                    opt(h.lag_ms, &|v| format!("{} ms", fmt_num(v)))
                )),
                Span::styled("Oldest ready ", bold),
                Span::raw(format!(
                    "{}   ",
                    opt(h.oldest_ready_age_s, &|v| fmt_duration(v as i64))
                )),
                Span::styled("Throughput ", bold),
                Span::raw(format!(
                    "{}   ",
                    opt(h.throughput_per_min, &|v| format!("{}/min", fmt_num(v)))
                )),
                Span::styled("Workers ", bold),
                Span::raw(h.workers.clone().unwrap_or_else(|| "-".into())),
            ];
            vec![Line::from(depth), Line::from(stats)]
        }
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn jobs(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let route = Resource::QueueJobs.route();
    let f = freshness(&app.queue_jobs, route, app.now);
    let title = format!("Jobs · state: {}", app.queue_state.unwrap_or("all"));
    let block = panel(&title, &f, true, theme);
    let jobs = app.queue_jobs.data.as_deref().unwrap_or(&[]);
    let row = |i: usize| {
        let j = &jobs[i];
        let attempts = match (j.attempts, j.max_attempts) {
            (Some(a), Some(m)) => format!("{}/{}", fmt_num(a), fmt_num(m)),
            (Some(a), None) => fmt_num(a),
            _ => "-".into(),
        };
        Row::new(vec![
            Cell::from(j.id.clone()),
            Cell::from(j.kind.clone()),
            Cell::from(state_span(&j.state, theme)),
            Cell::from(attempts),
            Cell::from(rel_time(j.enqueued_at.as_deref(), app.now)),
            Cell::from(j.worker.clone().unwrap_or_else(|| "-".into())),
            Cell::from(j.error.clone().unwrap_or_default()),
        ])
    };
    DataTable {
        block,
        header: &[
            "Id", "Kind", "State", "Tries", "Enqueued", "Worker", "Error",
        ],
        widths: &[
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
        view: &app.queue_table,
        row: &row,
        focused: true,
        editing: app.filtering,
        empty: if app.queue_jobs.data.is_some() {
            match app.queue_state {
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
