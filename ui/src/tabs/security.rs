//! Security tab: the last scan (age, duration, counts by severity, the light), the
//! vulnerabilities most severe first (a filterable table), the secret findings (redacted:
//! the secret itself never reaches the console), the packages by ecosystem and the recent
//! compliance hooks (signed webhooks received; the compliance module's). `s` runs
//! `run_scan` (also in the palette), `x` exports the last scan's SBOM (CycloneDX 1.5) to
//! `sbom-<report>.cdx.json` in the working directory.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

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
use crate::components::table::{DataTable, TableView};
use crate::components::{empty_message, freshness, panel, Component};
use crate::model::{parse_ts, HookList, SecurityLatest, SecurityStatus};
use crate::util::{ellipsize, fmt_age, fmt_count, fmt_duration_ms, rel_time};

const TITLE: &str = "Security";

/// The light and the last scan's counts.
pub const STATUS: Res<SecurityStatus> = Res::new("security.status", "/api/v1/security/status", 15);
/// The newest report with its findings and SBOM.
pub const LATEST: Res<SecurityLatest> =
    Res::new("security.latest", "/api/v1/security/reports/latest", 30);

/// The newest compliance hooks (signed webhooks the compliance module accepted).
pub const HOOKS: Res<HookList> =
    Res::new("compliance.hooks", "/api/v1/compliance/hooks?limit=10", 30);

pub const RUN_SCAN: TabAction = TabAction("security.run_scan");
pub const EXPORT_SBOM: TabAction = TabAction("security.export_sbom");

static COMMANDS: &[KeyCommand] = &[
    mutating(cmd(
        Action::Tab(RUN_SCAN),
        &[(KeyCode::Char('s'), NONE)],
        "s",
        "scan",
        "Scan the configured paths now (run_scan: dry-run plan, then confirm)",
        Scope::OnTab(TITLE),
    )),
    cmd(
        Action::Tab(EXPORT_SBOM),
        &[(KeyCode::Char('x'), NONE)],
        "x",
        "sbom",
        "Export the last scan's SBOM (CycloneDX 1.5 JSON) to sbom-<report>.cdx.json",
        Scope::OnTab(TITLE),
    ),
];

pub struct SecurityTab {
    pub vulns: TableView,
}

pub fn tab() -> Box<dyn Tab> {
    Box::new(SecurityTab {
        vulns: TableView::default(),
    })
}

/// Write the newest report's SBOM into `dir`; returns the notice to show.
pub fn export_sbom(cache: &Cache, dir: &std::path::Path) -> String {
    let Some(r) = cache.get(LATEST).and_then(|l| l.report.as_ref()) else {
        return "No scan yet: nothing to export (press s to scan)".into();
    };
    let path = dir.join(format!("sbom-{}.cdx.json", r.id));
    let text = match serde_json::to_string_pretty(&r.sbom) {
        Ok(t) => t,
        Err(e) => return format!("SBOM export failed: {e}"),
    };
    match std::fs::write(&path, text + "\n") {
        Ok(()) => format!(
            "SBOM of {} ({} components) written to {}",
            r.id,
            r.packages.len(),
            path.display()
        ),
        Err(e) => format!("SBOM export failed: {}: {e}", path.display()),
    }
}

impl Tab for SecurityTab {
    fn title(&self) -> &'static str {
        TITLE
    }

    fn resources(&self) -> Vec<Resource> {
        vec![STATUS.res, LATEST.res, HOOKS.res]
    }

    /// The compliance module off (or not installed) leaves the tab on: the hooks pane
    /// says so.
    fn area_resources(&self) -> Vec<Resource> {
        vec![STATUS.res, LATEST.res]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        let [status, body] =
            Layout::vertical([Constraint::Length(7), Constraint::Fill(1)]).areas(area);
        let [vulns, lower] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(body);
        let [secrets, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(lower);
        // The packages pane as tall as its lines (ecosystems and the SBOM line), at most
        // half; the hooks take the rest.
        let ecosystems = app
            .cache
            .get(LATEST)
            .and_then(|l| l.report.as_ref())
            .map_or(1, |r| {
                r.packages
                    .iter()
                    .map(|p| p.ecosystem.as_str())
                    .collect::<BTreeSet<_>>()
                    .len()
                    .max(1)
            }) as u16;
        let [packages, hooks] = Layout::vertical([
            Constraint::Length((ecosystems + 3).min(right.height / 2)),
            Constraint::Fill(1),
        ])
        .areas(right);
        self.draw_status(frame, status, app);
        self.draw_vulns(frame, vulns, app);
        self.draw_secrets(frame, secrets, app);
        self.draw_packages(frame, packages, app);
        self.draw_hooks(frame, hooks, app);
    }

    fn commands(&self) -> &'static [KeyCommand] {
        COMMANDS
    }

    fn on_action(&mut self, action: TabAction, cache: &Cache) -> Intent {
        match action {
            RUN_SCAN => Intent::Verb {
                name: "run_scan",
                args: Map::new(),
            },
            EXPORT_SBOM => {
                let dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
                Intent::Notify(export_sbom(cache, &dir))
            }
            _ => Intent::Nothing,
        }
    }

    fn table(&self) -> Option<&TableView> {
        Some(&self.vulns)
    }

    fn table_mut(&mut self) -> Option<&mut TableView> {
        Some(&mut self.vulns)
    }

    fn refilter(&mut self, cache: &Cache) {
        let list = cache
            .get(LATEST)
            .and_then(|l| l.report.as_ref())
            .map(|r| r.vulnerabilities.as_slice())
            .unwrap_or(&[]);
        self.vulns.refilter(list.iter().map(|v| {
            let key = format!("{} {}@{} {}", v.id, v.package, v.version, v.source);
            let text = format!(
                "{} {} {} {} {} {}",
                v.severity.as_str(),
                v.id,
                v.aliases.join(" "),
                v.package,
                v.version,
                v.summary
            );
            (key, text)
        }));
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl SecurityTab {
    fn draw_status(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = STATUS.res.route;
        let remote = app.cache.remote(STATUS);
        let f = freshness(&remote, route, app.now);
        let block = panel("Last scan", &f, false, theme);
        let Some(s) = remote.data else {
            frame.render_widget(
                Paragraph::new(Span::styled(empty_message(&f, route), theme.muted)).block(block),
                area,
            );
            return;
        };
        let mut lines = vec![Line::from(vec![
            badge(&s.light, theme),
            Span::raw(format!(" {}", s.reason)),
        ])];
        match (&s.last_scan_at, &s.counts) {
            (Some(at), Some(c)) => {
                // The age from the console's clock, so it moves while the screen is open.
                let age = parse_ts(at)
                    .map(|t| fmt_age((app.now - t).num_seconds().max(0)))
                    .unwrap_or_else(|| "-".into());
                lines.push(Line::from(vec![
                    Span::styled("Scan  ", theme.accent),
                    Span::raw(format!(
                        "{} ago ({}), took {}; {} files, {:.1} MiB; {} packages; {} advisories loaded",
                        age,
                        s.last_report_id.as_deref().unwrap_or("-"),
                        fmt_duration_ms(s.last_duration_ms.unwrap_or(0)),
                        fmt_count(c.files_scanned),
                        c.bytes_scanned as f64 / 1048576.0,
                        fmt_count(c.packages),
                        fmt_count(c.advisories),
                    )),
                ]));
                let sev = |name: &str, n: u64, style| {
                    vec![
                        Span::styled(format!("{name} "), theme.muted),
                        Span::styled(n.to_string(), if n > 0 { style } else { theme.muted }),
                        Span::raw("  "),
                    ]
                };
                let mut counts = vec![Span::styled("Found ", theme.accent)];
                counts.extend(sev("critical", c.critical, theme.fail));
                counts.extend(sev("high", c.high, theme.fail));
                counts.extend(sev("medium", c.medium, theme.warn));
                counts.extend(sev("low", c.low, theme.warn));
                counts.extend(sev("unknown", c.unknown, theme.warn));
                counts.push(Span::raw(format!(
                    "· {} secret(s), {} vulnerable version(s) · {} unreadable · {} allowlisted",
                    c.secrets, c.vulnerabilities, c.errors, c.allowlisted
                )));
                lines.push(Line::from(counts));
            }
            _ => lines.push(Line::from(Span::styled(
                "No scan yet: press s (run_scan) or wait for the Monday 01:20 UTC job.",
                theme.muted,
            ))),
        }
        lines.push(Line::from(vec![
            Span::styled("Paths ", theme.accent),
            Span::raw(if s.targets.is_empty() {
                "none configured ([security] paths)".to_string()
            } else {
                s.targets.join(", ")
            }),
        ]));
        frame.render_widget(
            Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
            area,
        );
    }

    fn draw_vulns(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = LATEST.res.route;
        let remote = app.cache.remote(LATEST);
        let f = freshness(&remote, route, app.now);
        let block = panel("Vulnerabilities (most severe first)", &f, true, theme);
        let report = remote.data.and_then(|l| l.report.as_ref());
        let list = report.map(|r| r.vulnerabilities.as_slice()).unwrap_or(&[]);
        let row = |i: usize| {
            let v = &list[i];
            let sev = v.severity.as_str();
            let style = match sev {
                "critical" | "high" => theme.fail,
                "medium" | "low" => theme.warn,
                _ => theme.muted,
            };
            Row::new(vec![
                Cell::from(Span::styled(sev.to_string(), style)),
                Cell::from(v.id.clone()),
                Cell::from(format!("{} {}", v.ecosystem, v.package)),
                Cell::from(v.version.clone()),
                Cell::from(if v.fixed.is_empty() {
                    "-".to_string()
                } else {
                    v.fixed.join(", ")
                }),
                Cell::from(v.summary.clone()),
            ])
        };
        DataTable {
            block,
            header: &[
                "Severity", "Advisory", "Package", "Version", "Fixed in", "Summary",
            ],
            widths: &[
                Constraint::Length(9),
                Constraint::Length(20),
                Constraint::Fill(2),
                Constraint::Length(10),
                Constraint::Length(12),
                Constraint::Fill(3),
            ],
            view: &self.vulns,
            row: &row,
            focused: true,
            editing: app.filtering,
            empty: match (remote.data, report) {
                (None, _) => empty_message(&f, route),
                (Some(_), None) => "No scan yet: press s (run_scan).".into(),
                (Some(_), Some(_)) => "No vulnerable package version in the last scan.".into(),
            },
            total: list.len(),
        }
        .render(frame, area, theme);
    }

    fn draw_secrets(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = LATEST.res.route;
        let remote = app.cache.remote(LATEST);
        let f = freshness(&remote, route, app.now);
        let report = remote.data.and_then(|l| l.report.as_ref());
        let n = report.map_or(0, |r| r.secrets.len());
        let block = panel(&format!("Secrets ({n}, redacted)"), &f, false, theme);
        let mut lines = Vec::new();
        match report {
            None => lines.push(Line::from(Span::styled(
                if remote.data.is_some() {
                    "No scan yet.".to_string()
                } else {
                    empty_message(&f, route)
                },
                theme.muted,
            ))),
            Some(r) if r.secrets.is_empty() => lines.push(Line::from(vec![
                badge("ok", theme),
                Span::raw(" no secret found"),
            ])),
            Some(r) => {
                for s in &r.secrets {
                    // From git history: the commit that added it (no longer in the tree).
                    let at = s
                        .commit
                        .as_deref()
                        .map(|c| format!("{}@", &c[..c.len().min(12)]))
                        .unwrap_or_default();
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:<8} ", s.severity.as_str()), theme.fail),
                        Span::styled(format!("{at}{}:{} ", s.file, s.line), theme.accent),
                        Span::raw(format!("{} ", s.rule)),
                        Span::styled(s.redacted.clone(), theme.muted),
                    ]));
                }
                for e in &r.errors {
                    lines.push(Line::from(vec![
                        badge("warn", theme),
                        Span::raw(format!(" unreadable {} ({}): {}", e.file, e.stage, e.error)),
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

    /// The newest compliance hooks: when received, verified, the event type, the webhook
    /// id, the name of the secret that signed it (each secret names a tenant: the one
    /// shown). Every listed hook passed the signature check (refused ones are not stored),
    /// so each is marked ✓.
    fn draw_hooks(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = HOOKS.res.route;
        let remote = app.cache.remote(HOOKS);
        let meta = app.cache.meta(HOOKS.res);
        let off = meta.disabled();
        let not_installed = off.is_none()
            && meta.data.is_none()
            && meta.error.as_ref().and_then(|e| e.status()) == Some(404);
        let f = if off.is_some() || not_installed {
            crate::components::Freshness::Fresh
        } else {
            freshness(&remote, route, app.now)
        };
        let n = remote.data.map_or(0, |l| l.hooks.len());
        let title = match remote.data {
            Some(_) => format!("Compliance hooks ({n}, ✓ verified)"),
            None => "Compliance hooks".to_string(),
        };
        let block = panel(&title, &f, false, theme);
        let mut lines = Vec::new();
        match (remote.data, off.as_ref()) {
            (_, Some(d)) => lines.push(Line::from(Span::styled(
                if d.fleet {
                    "Module compliance is turned off fleet-wide: no webhooks are received."
                        .to_string()
                } else {
                    "Module compliance is disabled for this tenant: no webhooks are received."
                        .to_string()
                },
                theme.muted,
            ))),
            (None, None) if not_installed => lines.push(Line::from(Span::styled(
                "The compliance area is not installed on this backend.",
                theme.muted,
            ))),
            (None, None) => lines.push(Line::from(Span::styled(
                empty_message(&f, route),
                theme.muted,
            ))),
            (Some(l), None) if l.hooks.is_empty() => lines.push(Line::from(Span::styled(
                "No webhook received yet (POST /api/v1/compliance/webhook, signed).",
                theme.muted,
            ))),
            (Some(l), None) => {
                // One line each, cut at the pane's edge (the describe view is not needed:
                // GET /api/v1/compliance/hooks has the payloads).
                for h in &l.hooks {
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!("{:>7} ", rel_time(Some(&h.received_at), app.now)),
                            theme.muted,
                        ),
                        Span::styled("✓ ", theme.ok),
                        Span::styled(
                            format!("{} ", h.event_type.as_deref().unwrap_or("(no type)")),
                            theme.accent,
                        ),
                        Span::raw(format!("{} ", ellipsize(&h.webhook_id, 24))),
                        Span::styled(h.secret_name.clone(), theme.muted),
                    ]));
                }
            }
        }
        let p = Paragraph::new(lines).block(block);
        let p = if remote.data.is_some_and(|l| !l.hooks.is_empty()) && off.is_none() {
            p
        } else {
            p.wrap(Wrap { trim: true })
        };
        frame.render_widget(p, area);
    }

    fn draw_packages(&self, frame: &mut Frame, area: Rect, app: &App) {
        let theme = &app.theme;
        let route = LATEST.res.route;
        let remote = app.cache.remote(LATEST);
        let f = freshness(&remote, route, app.now);
        let block = panel("Packages (x: export SBOM)", &f, false, theme);
        let mut lines = Vec::new();
        if let Some(r) = remote.data.and_then(|l| l.report.as_ref()) {
            let mut by_eco: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
            for p in &r.packages {
                let e = by_eco.entry(p.ecosystem.as_str()).or_default();
                e.0 += 1;
                e.1.insert(p.source.as_str());
            }
            for (eco, (n, sources)) in &by_eco {
                lines.push(Line::from(vec![
                    Span::styled(format!("{eco:<10}"), theme.accent),
                    Span::raw(format!("{n:>5}  ")),
                    Span::styled(
                        sources.iter().copied().collect::<Vec<_>>().join(", "),
                        theme.muted,
                    ),
                ]));
            }
            if by_eco.is_empty() {
                lines.push(Line::from(Span::styled("No lockfile found.", theme.muted)));
            }
            lines.push(Line::from(Span::styled(
                format!("SBOM: CycloneDX 1.5, {} components", r.packages.len()),
                theme.muted,
            )));
        } else {
            lines.push(Line::from(Span::styled(
                empty_message(&f, route),
                theme.muted,
            )));
        }
        frame.render_widget(
            Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
            area,
        );
    }
}
