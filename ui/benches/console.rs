//! Console benchmarks: full redraw of the busiest tab at 200×50 and palette filtering of
//! 10,000 entries per keystroke. `cargo bench -p echopilot-ui --bench console`.
//! (First frame and RSS are measured on the real binary: scripts/bench/console.sh.)

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
#[path = "../tests/common/palette_corpus.rs"]
mod palette_corpus;

use echopilot_ui::popups::palette::{Filter, Ranked};
use echopilot_ui::{load_fixtures, App, AppConfig, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn loaded_app(tab: &str) -> App {
    let mut app = App::new(
        AppConfig {
            base_url: "http://127.0.0.1:8080".into(),
            tenant: None,
            readonly: false,
            demo: false,
        },
        Theme::builtin(false),
        chrono::Utc::now(),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    load_fixtures(&mut app, &dir).expect("fixtures");
    app.current = app.tab_index(tab).expect("tab");
    app
}

fn redraw(c: &mut Criterion) {
    for (name, tab) in [
        ("telemetry", "Telemetry"),
        ("queue", "Queue"),
        ("jobs", "Jobs"),
    ] {
        let app = loaded_app(tab);
        let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
        c.bench_function(&format!("full redraw {name} 200x50"), |b| {
            b.iter(|| {
                term.draw(|f| echopilot_ui::ui::draw(f, &app)).unwrap();
            })
        });
    }
    // The logs view over a tab (every line formatted into columns each frame).
    let mut app = loaded_app("Queue");
    app.handle_event(echopilot_ui::Event::Key(echopilot_ui::KeyEvent::new(
        echopilot_ui::KeyCode::Char('l'),
        echopilot_ui::KeyModifiers::NONE,
    )));
    let logs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs.json"),
    )
    .expect("logs fixture");
    app.load(
        echopilot_ui::popups::logs::LOGS.res,
        serde_json::from_str(&logs).expect("logs json"),
    );
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    c.bench_function("full redraw logs view 200x50", |b| {
        b.iter(|| {
            term.draw(|f| echopilot_ui::ui::draw(f, &app)).unwrap();
        })
    });
}

fn palette(c: &mut Criterion) {
    let entries = palette_corpus::queue_items(10_000);
    let mut filter = Filter::default();
    let mut out: Vec<Ranked> = Vec::new();
    // Each keystroke of "restrt sched" re-ranks all 10k entries.
    let query = "restrt sched";
    // Typing the whole query: 12 keystrokes (divide by 12 for the per-keystroke mean).
    c.bench_function(
        "palette type 'restrt sched' over 10k entries (12 keystrokes)",
        |b| {
            b.iter(|| {
                for end in 1..=query.len() {
                    filter.rank(&entries, &query[..end], &mut out);
                }
            })
        },
    );
    // The worst keystroke: the first one, which scans every entry ("r" matches all).
    c.bench_function("palette first keystroke over 10k entries", |b| {
        b.iter(|| {
            filter.rank(&entries, "", &mut out);
            filter.rank(&entries, "r", &mut out);
        })
    });
    // A keystroke that cannot narrow (query edited in the middle): full rescan.
    c.bench_function("palette full rescan 'sched' over 10k entries", |b| {
        b.iter(|| {
            filter.rank(&entries, "", &mut out);
            filter.rank(&entries, "sched", &mut out);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = redraw, palette
}
criterion_main!(benches);
