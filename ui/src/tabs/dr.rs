//! DR tab: the backups (age, size, files, verified or not), the newest restore rehearsal
//! with each check, and the measured RPO (age of the newest verified backup) and RTO (the
//! rehearsal's restore time) — red when the newest verified backup is older than the
//! configured RPO. `b` runs `run_backup`, `v` runs `verify_dr` (also in the palette);
//! restoring stays a CLI action (`echopilot restore`), on purpose.

use std::any::Any;

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};
use ratatui::Frame;
use serde_json::Map;

use super::{Intent, Tab};
use crate::app::App;
use crate::cache::{Cache, Res, Resource};
use crate::commands::{cmd, mutating, Action, KeyCommand, Scope, TabAction, NONE};
use crate::components::badge::badge;
use crate::components::table::{fit, fit_view, DataTable, TableView};
use crate::components::{empty_message, freshness, panel, Component};
use crate::model::{parse_ts, DrBackups, DrVerify};
use crate::util::{fmt_age, fmt_count, fmt_duration_ms, rel_time};

const TITLE: &str = "DR";

/// Backups with their manifests, the RPO and the measured RPO.
pub const BACKUPS: Res<DrBackups> = Res::new("dr.backups", "/api/v1/dr/backups", 15);
/// The newest rehearsal.
pub const VERIFY: Res<DrVerify> = Res::new("dr.verify", "/api/v1/dr/verify", 15);

pub const RUN_BACKUP: TabAction = TabAction("dr.run_backup");
pub const VERIFY_DR: TabAction = TabAction("dr.verify");

static COMMANDS: &[KeyCommand] = &[
    mutating(cmd(
        Action::Tab(RUN_BACKUP),
        &[(KeyCode::Char('b'), NONE)],
        "b",
        "backup",
        "Take a backup now (run_backup: dry-run plan, then confirm)",
        Scope::OnTab(TITLE),
    )),
    mutating(cmd(
        Action::Tab(VERIFY_DR),
        &[(KeyCode::Char('v'), NONE)],
        "v",
        "rehearse",
        "Rehearse a restore of the newest backup (verify_dr: dry-run plan, then confirm)",
        Scope::OnTab(TITLE),
    )),
];

pub struct DrTab {
    pub backups: TableView,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(DrTab {
        backups: TableView::default(),
    })
}

fn verb(name: &'static str) -> Intent {
    Intent::Verb {
        name,
        args: Map::new(),
    }
}

fn size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= 1024.0 * MB {
        format!("{:.1} GiB", b / (1024.0 * MB))
    } else if b >= MB {
        format!("{:.1} MiB", b / MB)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

impl Tab for DrTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![BACKUPS.res, VERIFY.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let [status, table, rehearsal] = Layout::vertical([
            Constraint::Length(5),
            Constraint::Percentage(45),
            Constraint::Fill(1),
        ])
        .areas(area);
        self.draw_status(frame, status, app);
        self.draw_backups(frame, table, app);
        self.draw_rehearsal(frame, rehearsal, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, _cache: &Cache) -> Intent {
        match action {
            RUN_BACKUP => verb("run_backup"),
            VERIFY_DR => verb("verify_dr"),
            _ => Intent::Nothing,
        }
    }

    fn table(&self) -> Option<&TableView> {
        Some(&self.backups)
    }

    fn table_mut(&mut self) -> Option<&mut TableView> {
        Some(&mut self.backups)
    }

    fn refilter(&mut self, cache: &Cache) {
        let list = cache
            .get(BACKUPS)
            .map(|l| l.backups.as_slice())
            .unwrap_or(&[]);
        self.backups.refilter(list.iter().map(|b| {
            let text = format!(
                "{} {} {}",
                b.id,
                b.manifest.engine,
                b.verified.as_deref().unwrap_or("unverified")
            );
            (b.id.clone(), text)
        }));
    }

    fn log_area(&self) -> &'static str {
        "dr"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl DrTab {
    fn draw_status(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = BACKUPS.res.route;
        let remote = app.cache.remote(BACKUPS);
        let f = freshness(&remote, route, app.now);
        let block = panel("Recovery objectives", &f, false, theme);
        let Some(list) = remote.data else {
            frame.render_widget(
                Paragraph::new(Span::styled(empty_message(&f, route), theme.muted)).block(block),
                area,
            );
            return;
        };
        let latest = app.cache.get(VERIFY).and_then(|v| v.latest.as_ref());
        // Ages from the console's clock, so the light moves while the screen is open.
        let age = |ts: &str| parse_ts(ts).map(|t| (app.now - t).num_seconds().max(0));
        let verified = list
            .backups
            .iter()
            .find(|b| b.verified.as_deref() == Some("pass"));
        let measured = verified.and_then(|b| age(&b.created_at));
        let (light, reason) = echopilot_backend::dr::judge(
            list.rpo_minutes,
            measured,
            !list.backups.is_empty(),
            latest.map(|r| r.result),
        );
        let rpo = match measured {
            Some(s) => format!("{} (newest verified backup)", fmt_age(s)),
            None => "none verified".into(),
        };
        // The RTO is the whole rehearsal, not its decrypt+load alone: `echopilot restore`
        // runs the same checks before it puts anything in place, and on a large database
        // the checks take longer than the load.
        let rto = match latest.filter(|r| r.restore_ms > 0) {
            Some(r) => format!(
                "{} = load {} + checks {}, rehearsal {} of {}",
                fmt_duration_ms(r.duration_ms),
                fmt_duration_ms(r.restore_ms),
                fmt_duration_ms(r.duration_ms - r.restore_ms),
                rel_time(Some(&r.started_at), app.now),
                r.backup_id.as_deref().unwrap_or("-"),
            ),
            None => "not measured yet".into(),
        };
        let lines = vec![
            Line::from(vec![badge(light, theme), Span::raw(format!(" {reason}"))]),
            Line::from(vec![
                Span::styled("RPO  ", theme.accent),
                Span::raw(format!("{rpo}; target {} min", list.rpo_minutes)),
            ]),
            Line::from(vec![Span::styled("RTO  ", theme.accent), Span::raw(rto)]),
        ];
        frame.render_widget(
            Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
            area,
        );
    }

    fn draw_backups(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = BACKUPS.res.route;
        let remote = app.cache.remote(BACKUPS);
        let f = freshness(&remote, route, app.now);
        let block = panel("Backups", &f, true, theme);
        let list = remote.data.map(|l| l.backups.as_slice()).unwrap_or(&[]);
        const HEADER: [&str; 7] = [
            "Backup", "Age", "Size", "Files", "Rows", "Verified", "On disk",
        ];
        let texts = |i: usize| -> Vec<String> {
            let b = &list[i];
            vec![
                b.id.clone(),
                rel_time(Some(&b.created_at), app.now),
                size(b.bytes),
                b.files.to_string(),
                fmt_count(b.manifest.row_counts.values().sum::<i64>().max(0) as u64),
                b.verified
                    .as_deref()
                    .map(|v| badge(v, theme).content.to_string())
                    .unwrap_or_else(|| "unverified".into()),
                if b.present { "yes" } else { "MISSING" }.into(),
            ]
        };
        // Sized to the rows: backup ids whole, k9s-style.
        let (w, widths) = fit_view(&HEADER, &self.backups, block.inner(area).width, texts);
        let row = |i: usize| {
            let b = &list[i];
            let t = texts(i);
            Row::new(vec![
                Cell::from(fit(&t[0], w[0])),
                Cell::from(fit(&t[1], w[1])),
                Cell::from(fit(&t[2], w[2])),
                Cell::from(fit(&t[3], w[3])),
                Cell::from(fit(&t[4], w[4])),
                Cell::from(match b.verified.as_deref() {
                    Some(v) => Span::styled(fit(&t[5], w[5]), badge(v, theme).style),
                    None => Span::styled(fit(&t[5], w[5]), theme.muted),
                }),
                Cell::from(if b.present {
                    Span::raw(fit(&t[6], w[6]))
                } else {
                    Span::styled(fit(&t[6], w[6]), theme.fail)
                }),
            ])
        };
        DataTable {
            block,
            header: &HEADER,
            widths: &widths,
            view: &self.backups,
            row: &row,
            focused: true,
            editing: app.filtering,
            empty: if remote.data.is_some() {
                "No backup yet: press b (run_backup) or wait for the 02:30 UTC job.".into()
            } else {
                empty_message(&f, route)
            },
            total: list.len(),
        }
        .render(frame, area, theme);
    }

    fn draw_rehearsal(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = VERIFY.res.route;
        let remote = app.cache.remote(VERIFY);
        let f = freshness(&remote, route, app.now);
        let block = panel("Last restore rehearsal", &f, false, theme);
        let mut lines = Vec::new();
        match remote.data.map(|v| v.latest.as_ref()) {
            None => lines.push(Line::from(Span::styled(
                empty_message(&f, route),
                theme.muted,
            ))),
            Some(None) => lines.push(Line::from(Span::styled(
                "No rehearsal yet: press v (verify_dr) or wait for the 02:45 UTC job.",
                theme.muted,
            ))),
            Some(Some(r)) => {
                lines.push(Line::from(vec![
                    badge(r.result.as_str(), theme),
                    Span::raw(format!(
                        " {} of {}  {}  files {}/{} hashes match  restore {}  total {}",
                        r.id,
                        r.backup_id.as_deref().unwrap_or("-"),
                        rel_time(Some(&r.started_at), app.now),
                        r.hashes_matching,
                        r.file_count,
                        fmt_duration_ms(r.restore_ms),
                        fmt_duration_ms(r.duration_ms)
                    )),
                ]));
                for fc in r.files.iter().filter(|f| !f.ok) {
                    lines.push(Line::from(vec![
                        badge("fail", theme),
                        Span::raw(format!(" {}", fc.detail)),
                    ]));
                }
                for c in &r.checks {
                    lines.push(Line::from(vec![
                        badge(if c.ok { "ok" } else { "fail" }, theme),
                        Span::styled(format!(" {:<18}", c.name), theme.accent),
                        Span::styled(format!("{:>6} ms  ", c.duration_ms), theme.muted),
                        Span::raw(c.detail.clone()),
                    ]));
                }
            }
        }
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}
