#![allow(dead_code)]

pub mod palette_corpus;

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use echopilot_ui::tabs::area::AreaTab;
use echopilot_ui::{
    load_fixtures, App, AppConfig, ClientError, Effect, Event, KeyCode, KeyEvent, KeyModifiers,
    Problem, Resource, Theme,
};
use serde_json::Value;

pub fn t0() -> DateTime<Utc> {
    "2026-05-01T12:00:00Z".parse().unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn app_with(readonly: bool) -> App {
    App::new(
        AppConfig {
            base_url: "http://127.0.0.1:8080".into(),
            tenant: None,
            readonly,
            demo: false,
        },
        Theme::load("default", None, false).unwrap(),
        t0(),
    )
}

pub fn empty_app() -> App {
    app_with(false)
}

/// The optional areas' resources (the tabs built on [`AreaTab`]).
pub fn area_resources(app: &App) -> Vec<Resource> {
    app.tabs
        .iter()
        .filter_map(|t| t.as_any().downcast_ref::<AreaTab>())
        .map(|a| a.0.res.res)
        .chain([
            echopilot_ui::tabs::forecast::SPEC.res.res,
            echopilot_ui::tabs::costs::SPEC.res.res,
        ])
        .collect()
}

/// Every resource any tab or the header reads.
pub fn all_resources(app: &App) -> Vec<Resource> {
    let mut out: Vec<Resource> = echopilot_ui::FIXTURE_FILES
        .iter()
        .map(|(_, r)| *r)
        .collect();
    for t in &app.tabs {
        for r in t.resources() {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// Every live resource loaded from fixtures; the optional areas answered 404.
pub fn loaded_app() -> App {
    let mut app = empty_app();
    load_fixtures(&mut app, &fixtures_dir()).unwrap();
    for r in area_resources(&app) {
        app.handle_event(Event::Fetched {
            resource: r,
            result: Err(not_found(r.route)),
            at: t0(),
        });
    }
    app
}

pub fn not_found(route: &str) -> ClientError {
    ClientError::Problem(Problem {
        status: 404,
        title: "Not Found".into(),
        detail: Some(format!("no route {route}")),
        kind: None,
        module: None,
        scope: None,
    })
}

/// The module-disabled 404 as the backend sends it (recorded: `module_disabled.json`),
/// for `module` and `scope` (`tenant` or `fleet`).
pub fn module_disabled(module: &str, scope: &str) -> ClientError {
    let mut body = fixture("module_disabled.json");
    body["module"] = module.into();
    body["scope"] = scope.into();
    ClientError::Problem(echopilot_ui::client::parse_problem(
        404,
        body.to_string().as_bytes(),
    ))
}

/// Presses the number key of the tab titled `title`.
pub fn go_tab(app: &mut App, title: &str) {
    let i = app.tab_index(title).expect(title);
    press(app, KeyCode::Char(char::from(b'1' + i as u8)));
}

/// Every request fails to connect `secs` after t0, then the clock moves 8 s on.
pub fn go_offline(app: &mut App, secs: i64) {
    let at = t0() + Duration::seconds(secs);
    for r in all_resources(app) {
        app.handle_event(Event::Fetched {
            resource: r,
            result: Err(ClientError::Unreachable("connection failed".into())),
            at,
        });
    }
    app.handle_event(Event::Tick(at + Duration::seconds(8)));
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle_event(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn press_mod(app: &mut App, code: KeyCode, m: KeyModifiers) -> Vec<Effect> {
    app.handle_event(Event::Key(KeyEvent::new(code, m)))
}

pub fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        press(app, KeyCode::Char(c));
    }
}

pub fn render(app: &App, w: u16, h: u16) -> String {
    echopilot_ui::ui::render_to_string(app, w, h)
}
