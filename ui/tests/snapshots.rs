//! Render snapshots of every tab and dialog: empty, loaded, offline/stale, 80×24.

mod common;

use chrono::Duration;
use common::*;
use echopilot_ui::event::PostOp;
use echopilot_ui::resources::VERBS;
use echopilot_ui::{Event, KeyCode, KeyModifiers};
use insta::assert_snapshot;

const W: u16 = 120;
const H: u16 = 32;

const TITLES: [&str; 8] = [
    "Telemetry",
    "Jobs",
    "Queue",
    "Costs",
    "Security",
    "DR",
    "Forecast",
    "Integrations",
];

fn on_tab(mut app: echopilot_ui::App, title: &str) -> echopilot_ui::App {
    go_tab(&mut app, title);
    assert_eq!(app.tab_title(), title);
    app
}

#[test]
fn tabs_empty() {
    for tab in TITLES {
        let app = on_tab(empty_app(), tab);
        assert_snapshot!(format!("empty_{}", tab.to_lowercase()), render(&app, W, H));
    }
}

#[test]
fn tabs_loaded() {
    for tab in TITLES {
        let app = on_tab(loaded_app(), tab);
        assert_snapshot!(format!("loaded_{}", tab.to_lowercase()), render(&app, W, H));
    }
}

#[test]
fn tabs_loaded_80x24() {
    for tab in TITLES {
        let app = on_tab(loaded_app(), tab);
        assert_snapshot!(
            format!("narrow_{}", tab.to_lowercase()),
            render(&app, 80, 24)
        );
    }
}

#[test]
fn tabs_offline_stale() {
    for tab in TITLES {
        let mut app = on_tab(loaded_app(), tab);
        go_offline(&mut app, 42);
        assert_snapshot!(
            format!("offline_{}", tab.to_lowercase()),
            render(&app, W, H)
        );
    }
}

#[test]
fn tabs_offline_never_connected() {
    for tab in ["Telemetry", "Jobs", "Queue", "Costs"] {
        let mut app = on_tab(empty_app(), tab);
        go_offline(&mut app, 0);
        assert_snapshot!(
            format!("unreachable_{}", tab.to_lowercase()),
            render(&app, 80, 24)
        );
    }
}

#[test]
fn area_tab_answers_with_data() {
    let mut app = on_tab(loaded_app(), "Costs");
    app.handle_event(Event::Fetched {
        resource: echopilot_ui::tabs::costs::SPEC.res.res,
        result: Ok(serde_json::json!({"currency": "EUR", "month_to_date": 412.37, "by_service": {"compute": 301.2, "storage": 111.17}})),
        at: t0(),
    });
    assert_snapshot!("area_costs_answered", render(&app, 80, 24));
}

/// The Costs tab's error view (`e`, or the palette's "ai errors"): models by error rate
/// and the latest failed calls (recorded: `ai_analytics.json`); and a tenant with no AI
/// calls in the window (the same answer emptied, as the backend sends it then).
#[test]
fn costs_error_view_and_no_calls() {
    let mut app = on_tab(loaded_app(), "Costs");
    press(&mut app, KeyCode::Char('e'));
    assert_snapshot!("costs_errors_view", render(&app, W, H));
    assert_snapshot!("costs_errors_view_80x24", render(&app, 80, 24));
    let mut empty = fixture("ai_analytics.json");
    for list in ["models", "features", "top_templates", "recent_errors"] {
        empty[list] = serde_json::json!([]);
    }
    for (k, v) in empty["totals"].as_object_mut().unwrap() {
        *v = if k == "error_rate" {
            serde_json::json!(0.0)
        } else {
            serde_json::json!(0)
        };
    }
    let mut app = on_tab(loaded_app(), "Costs");
    app.load(echopilot_ui::tabs::costs::AI.res, empty);
    assert_snapshot!("costs_no_calls", render(&app, 80, 24));
}

#[test]
fn too_small() {
    assert_snapshot!("too_small", render(&loaded_app(), 70, 20));
}

#[test]
fn readonly_header_and_keys() {
    let app = on_tab(app_with(true), "Queue");
    assert_snapshot!("readonly_queue_empty", render(&app, 80, 24));
}

#[test]
fn queue_filter_editing() {
    let mut app = on_tab(loaded_app(), "Queue");
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "dead");
    assert_snapshot!("queue_filter_editing", render(&app, 80, 24));
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('j'));
    assert_snapshot!("queue_filter_applied", render(&app, 80, 24));
}

#[test]
fn jobs_runs_pane_focused() {
    let mut app = on_tab(loaded_app(), "Jobs");
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    assert_snapshot!("jobs_runs_pane", render(&app, W, H));
}

#[test]
fn palette_states() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    assert_snapshot!("palette_open", render(&app, W, H));
    type_str(&mut app, "restrt sched");
    assert_snapshot!("palette_restrt_sched", render(&app, W, H));
    assert_snapshot!("palette_restrt_sched_80x24", render(&app, 80, 24));
    // Descriptions match by words: `pause` lists pause_queue, not purge_dlq or
    // restart_scheduler (whose descriptions hold the letters p…a…u…s…e).
    press_mod(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    type_str(&mut app, "pause");
    assert_snapshot!("palette_pause", render(&app, W, H));
    let mut empty = empty_app();
    press_mod(&mut empty, KeyCode::Char('p'), KeyModifiers::CONTROL);
    assert_snapshot!("palette_empty", render(&empty, 80, 24));
}

#[test]
fn args_form() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "tail_logs");
    press(&mut app, KeyCode::Enter);
    assert_snapshot!("args_form", render(&app, 80, 24));
    // A value the schema type refuses → local error, nothing sent.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::End);
    type_str(&mut app, "x");
    let fx = press_mod(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert!(fx.is_empty());
    assert_snapshot!("args_form_error", render(&app, 80, 24));
}

fn high_plan_app() -> echopilot_ui::App {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "restart_scheduler");
    press(&mut app, KeyCode::Enter);
    app
}

#[test]
fn plan_dialogs() {
    let mut app = high_plan_app();
    assert_snapshot!("plan_pending", render(&app, 80, 24));
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0() + Duration::seconds(2),
    });
    assert_snapshot!("plan_high_ready", render(&app, W, H));
    assert_snapshot!("plan_high_ready_80x24", render(&app, 80, 24));
    type_str(&mut app, "restart_sched");
    press(&mut app, KeyCode::Enter);
    assert_snapshot!("plan_high_wrong_name", render(&app, W, H));
    // At 80×24 the fields stay in view while the operator types; the body scrolls.
    type_str(&mut app, "uler");
    press(&mut app, KeyCode::Enter);
    type_str(&mut app, "wedged after deploy");
    assert_snapshot!("plan_high_reason_80x24", render(&app, 80, 24));
    press(&mut app, KeyCode::PageDown);
    assert_snapshot!("plan_high_reason_80x24_scrolled", render(&app, 80, 24));

    let mut low = on_tab(loaded_app(), "Jobs");
    // The recorded dry-run is run_job retention: select retention (third job).
    press(&mut low, KeyCode::Char('j'));
    press(&mut low, KeyCode::Char('j'));
    press(&mut low, KeyCode::Char('t'));
    low.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_low.json")),
        at: t0() + Duration::seconds(1),
    });
    assert_snapshot!("plan_low_ready", render(&low, W, H));
}

/// The backend was down at start (no verb registry): `D` on the Queue tab is refused with
/// a message instead of opening a confirmable "risk low" purge.
#[test]
fn refused_purge_without_registry() {
    let mut app = empty_app();
    app.load(
        echopilot_ui::tabs::queue::JOBS.res,
        fixture("queue_jobs.json"),
    );
    let mut app = on_tab(app, "Queue");
    press_mod(&mut app, KeyCode::Char('D'), KeyModifiers::SHIFT);
    assert_snapshot!("refused_purge_no_registry", render(&app, 80, 24));
}

/// A wrong key: every request answers 401. The status line says so (not "connecting…"
/// forever) and the header drops the overall status it can no longer vouch for.
#[test]
fn wrong_key_banner() {
    let problem = r#"{"type":"https://echopilot.dev/problems/unauthorized","title":"Unauthorized","status":401,"detail":"invalid or revoked API key"}"#;
    let mut app = on_tab(empty_app(), "Queue");
    let resources = app.wanted();
    for r in resources {
        app.handle_event(Event::Fetched {
            resource: r,
            result: Err(echopilot_ui::ClientError::Problem(
                echopilot_ui::client::parse_problem(401, problem.as_bytes()),
            )),
            at: t0(),
        });
    }
    assert_snapshot!("wrong_key_401", render(&app, 80, 24));
}

/// Data arrived, then refreshing started to fail with 5xx: the tab says STALE with the
/// age of what it shows, and the header marks the overall status stale.
#[test]
fn stale_tab_says_so() {
    let mut app = on_tab(loaded_app(), "Queue");
    let resources = app.wanted();
    for r in resources {
        app.handle_event(Event::Fetched {
            resource: r,
            result: Err(echopilot_ui::ClientError::Problem(
                echopilot_ui::client::parse_problem(
                    503,
                    br#"{"title":"Service Unavailable","status":503}"#,
                ),
            )),
            at: t0() + Duration::seconds(30),
        });
    }
    app.handle_event(Event::Tick(t0() + Duration::seconds(31)));
    assert_snapshot!("stale_queue", render(&app, 80, 24));
}

/// A paused queue: `[QUEUE PAUSED]` in the header on every tab and `[PAUSED]` on the Queue
/// tab. (The recorded answers with their `paused` flag set, as a paused backend sends them.)
#[test]
fn paused_queue_is_said() {
    let mut app = loaded_app();
    let mut tele = fixture("telemetry.json");
    tele["components"]["queue"]["details"]["paused"] = serde_json::json!(true);
    app.load(echopilot_ui::resources::TELEMETRY.res, tele);
    let mut health = fixture("queue_health.json");
    health["paused"] = serde_json::json!(true);
    app.load(echopilot_ui::tabs::queue::HEALTH.res, health);
    let app = on_tab(app, "Queue");
    assert_snapshot!("queue_paused", render(&app, 80, 24));
}

#[test]
fn result_dialogs() {
    let mut app = high_plan_app();
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    type_str(&mut app, "restart_scheduler");
    press(&mut app, KeyCode::Tab);
    type_str(&mut app, "stuck after deploy");
    press(&mut app, KeyCode::Enter);
    let p = fixture("problem409.json");
    app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Err(echopilot_ui::ClientError::Problem(
            echopilot_ui::client::parse_problem(409, p.to_string().as_bytes()),
        )),
        at: t0(),
    });
    assert_snapshot!("result_problem", render(&app, 80, 24));

    let mut ok = on_tab(loaded_app(), "Jobs");
    press(&mut ok, KeyCode::Char('j'));
    press(&mut ok, KeyCode::Char('j'));
    press(&mut ok, KeyCode::Char('t'));
    ok.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_low.json")),
        at: t0(),
    });
    press(&mut ok, KeyCode::Char('y'));
    ok.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(fixture("confirm.json")),
        at: t0(),
    });
    // A short answer: a flash line (and the plan dialog is gone).
    assert_snapshot!("flash_run_started", render(&ok, 80, 24));

    // A long, structured answer (recorded run history): the scrollable result view.
    let mut long = high_plan_app();
    long.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    type_str(&mut long, "restart_scheduler");
    press(&mut long, KeyCode::Enter);
    type_str(&mut long, "drill");
    press(&mut long, KeyCode::Enter);
    long.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(serde_json::json!({"audit_seq": 12, "result": fixture("runs.json")})),
        at: t0(),
    });
    assert_snapshot!("result_ok", render(&long, 80, 24));
    press_mod(&mut long, KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert_snapshot!("result_ok_end", render(&long, 80, 24));
}

#[test]
fn help_overlay() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('?'));
    assert_snapshot!("help", render(&app, W, 60));
    assert_snapshot!("help_80x24", render(&app, 80, 24));
    let mut ro = app_with(true);
    ro.load(VERBS.res, fixture("verbs.json"));
    press(&mut ro, KeyCode::Char('?'));
    assert_snapshot!("help_readonly", render(&ro, W, 60));
}

#[test]
fn light_and_no_color_render_same_text() {
    // Themes change colours only; the text (markers, labels) must be identical.
    let mut a = loaded_app();
    a.theme = echopilot_ui::Theme::load("light", None, false).unwrap();
    let mut b = loaded_app();
    b.theme = echopilot_ui::Theme::load("high-contrast", None, true).unwrap();
    assert_eq!(render(&a, W, H), render(&b, W, H));
    assert_eq!(render(&a, W, H), render(&loaded_app(), W, H));
}

#[test]
fn module_disabled_tab() {
    // The module-disabled 404 (fixtures/module_disabled.json, recorded) on the Telemetry
    // tab and on an area tab.
    for (scope, name) in [
        ("tenant", "disabled_telemetry"),
        ("fleet", "disabled_telemetry_fleet"),
    ] {
        let mut app = loaded_app();
        for r in [
            echopilot_ui::resources::TELEMETRY.res,
            echopilot_ui::tabs::telemetry::HISTORY.res,
        ] {
            app.handle_event(Event::Fetched {
                resource: r,
                result: Err(module_disabled("telemetry", scope)),
                at: t0(),
            });
        }
        assert_snapshot!(name, render(&app, 80, 24));
    }
    // The Costs tab reads the ai module: it off for the tenant disables the tab.
    let mut app = on_tab(loaded_app(), "Costs");
    app.handle_event(Event::Fetched {
        resource: echopilot_ui::tabs::costs::AI.res,
        result: Err(module_disabled("ai", "tenant")),
        at: t0(),
    });
    assert_snapshot!("disabled_costs", render(&app, 80, 24));
}

#[test]
fn a_secret_from_git_history_shows_its_commit() {
    use echopilot_ui::tabs::security::LATEST;
    let mut app = on_tab(loaded_app(), "Security");
    let mut latest = fixture("security_latest.json");
    latest["report"]["secrets"][0]["commit"] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into();
    app.load(LATEST.res, latest);
    let screen = render(&app, W, H);
    assert!(screen.contains("4b825dc642cb@deploy.env:2"), "{screen}");
    assert!(
        screen.contains(" deploy.env:3 "),
        "the tree's finding as before: {screen}"
    );
}

#[test]
fn security_tab_says_when_the_compliance_module_is_off() {
    // The hooks are the compliance module's: it off (for the tenant or the fleet) leaves
    // the Security tab on, and its pane says so instead of showing any hook.
    for (scope, want) in [
        ("tenant", "Module compliance is disabled for this tenant"),
        ("fleet", "Module compliance is turned off fleet-wide"),
    ] {
        let mut app = on_tab(loaded_app(), "Security");
        app.handle_event(Event::Fetched {
            resource: echopilot_ui::tabs::security::HOOKS.res,
            result: Err(module_disabled("compliance", scope)),
            at: t0(),
        });
        let screen = render(&app, W, H);
        assert!(screen.contains(want), "{screen}");
        assert!(
            screen.contains("RUSTSEC-2021-0003"),
            "the tab is on: {screen}"
        );
        assert!(!screen.contains("msg_fixture"), "no hook shown: {screen}");
        if scope == "tenant" {
            assert_snapshot!("security_compliance_off", screen);
        }
    }
    // A backend without the compliance area (a plain 404).
    let mut app = on_tab(loaded_app(), "Security");
    let mut body = fixture("module_disabled.json");
    body.as_object_mut().unwrap().remove("module");
    body.as_object_mut().unwrap().remove("scope");
    app.handle_event(Event::Fetched {
        resource: echopilot_ui::tabs::security::HOOKS.res,
        result: Err(echopilot_ui::ClientError::Problem(
            echopilot_ui::client::parse_problem(404, body.to_string().as_bytes()),
        )),
        at: t0(),
    });
    let screen = render(&app, W, H);
    assert!(
        screen.contains("The compliance area is not installed"),
        "{screen}"
    );
}

#[test]
fn summary_shows_disabled_sections() {
    // Recorded after turning the telemetry module off for the tenant.
    let mut app = loaded_app();
    app.load(
        echopilot_ui::tabs::telemetry::SUMMARY.res,
        fixture("summary_disabled.json"),
    );
    let screen = render(&app, 240, 60);
    assert!(
        screen.lines().any(|l| l.contains("│telemetry ")
            && l.contains("disabled for this tenant")
            && l.find("telemetry") < l.find("disabled")),
        "{screen}"
    );
}

#[test]
fn dr_is_red_past_the_rpo_and_shows_a_failed_rehearsal_by_file() {
    use echopilot_ui::tabs::dr::{BACKUPS, VERIFY};
    // The same recorded backup, two days older than the clock: past the 26 h RPO.
    let mut app = on_tab(loaded_app(), "DR");
    let mut list = fixture("dr_backups.json");
    let old = (t0() - Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    list["backups"][0]["created_at"] = old.into();
    app.load(BACKUPS.res, list);
    let screen = render(&app, W, H);
    assert!(
        screen.contains(
            "[FAIL] the newest verified backup is 2880 min old, older than the RPO of 1560 min"
        ),
        "{screen}"
    );
    assert_snapshot!("dr_past_rpo", screen);

    // A rehearsal that found a changed file: red, the file named.
    let mut app = on_tab(loaded_app(), "DR");
    let mut v = fixture("dr_verify.json");
    let detail = "database.sqlite.enc: decryption failed at chunk 0: wrong key, or the file was altered; its SHA-256 no longer matches the manifest";
    v["latest"]["result"] = "FAIL".into();
    v["latest"]["hashes_matching"] = 1.into();
    v["latest"]["files"][0]["ok"] = false.into();
    v["latest"]["files"][0]["detail"] = detail.into();
    v["latest"]["failures"] = serde_json::json!([detail]);
    app.load(VERIFY.res, v);
    let screen = render(&app, W, H);
    assert!(
        screen.contains("[FAIL] the newest rehearsal failed"),
        "{screen}"
    );
    assert!(
        screen.contains("database.sqlite.enc: decryption failed"),
        "{screen}"
    );
    assert_snapshot!("dr_rehearsal_failed", screen);
}

#[test]
fn describe_and_json_views() {
    // Times as UTC clock times, so the snapshots do not depend on the machine's zone.
    let mut app = on_tab(loaded_app(), "Queue");
    app.utc = true;
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "dead");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char('d'));
    assert_snapshot!("describe_queue_dead", render(&app, W, H));
    assert_snapshot!("describe_queue_dead_80x24", render(&app, 80, 24));
    press(&mut app, KeyCode::Char('y'));
    assert_snapshot!("describe_queue_dead_json", render(&app, W, H));
    let mut jobs = on_tab(loaded_app(), "Jobs");
    jobs.utc = true;
    press(&mut jobs, KeyCode::Char('h'));
    press(&mut jobs, KeyCode::Enter);
    assert_snapshot!("describe_job_run", render(&jobs, W, H));
}

#[test]
fn readonly_flash() {
    let mut app = on_tab(app_with(true), "Queue");
    echopilot_ui::load_fixtures(&mut app, &fixtures_dir()).unwrap();
    press_mod(&mut app, KeyCode::Char('R'), KeyModifiers::SHIFT);
    assert_snapshot!("readonly_flash", render(&app, 80, 24));
}

#[test]
fn sorted_table() {
    let mut app = on_tab(loaded_app(), "Queue");
    // Third column (State), descending: Id ▲ ▼, Kind ▲ ▼, State ▲ ▼ — six presses of >.
    for _ in 0..6 {
        press(&mut app, KeyCode::Char('>'));
    }
    assert_snapshot!("queue_sorted_state_desc", render(&app, 80, 24));
}

/// The logs view (`l`): columns, wrapped, searched with no match, at 80×24; the paused
/// header. Times in UTC so the snapshots do not depend on the machine's zone.
#[test]
fn logs_view_states() {
    use echopilot_ui::popups::logs::LOGS;
    let mut app = loaded_app();
    app.utc = true;
    press(&mut app, KeyCode::Char('l'));
    app.load(LOGS.res, fixture("logs.json"));
    assert_snapshot!("logs_view", render(&app, W, H));
    assert_snapshot!("logs_view_80x24", render(&app, 80, 24));
    press(&mut app, KeyCode::Char('w'));
    press(&mut app, KeyCode::Char('k'));
    assert_snapshot!("logs_view_wrapped_scrolled_80x24", render(&app, 80, 24));
    // A log with no HTTP lines (the queue's) gives the route, status and ms columns'
    // room to the message.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('l'));
    app.load(LOGS.res, fixture("logs_queue.json"));
    assert_snapshot!("logs_view_queue_80x24", render(&app, 80, 24));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('1'));
    press(&mut app, KeyCode::Char('l'));
    app.load(LOGS.res, fixture("logs.json"));
    let server = render(&app, 80, 24);
    assert!(
        server.contains("Route") && server.contains(" ms│"),
        "{server}"
    );
    press(&mut app, KeyCode::Char('w'));
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "zzz");
    press(&mut app, KeyCode::Enter);
    let mut none = fixture("logs.json");
    none["lines"] = serde_json::json!([]);
    let at = app.now;
    app.handle_event(Event::Fetched {
        resource: LOGS.res,
        result: Ok(none.clone()),
        at,
    });
    app.load(LOGS.res, none);
    assert_snapshot!("logs_view_no_match", render(&app, W, H));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('p'));
    assert_snapshot!("header_paused", render(&app, W, H));
}

/// `echopilot demo` says on every tab that the data is synthetic.
#[test]
fn demo_header_is_labelled() {
    let mut app = loaded_app();
    app.config.demo = true;
    app.tenant = Some("demo".into());
    assert_snapshot!("header_demo_80x24", render(&app, 80, 24));
}

#[test]
fn security_shows_the_last_scan_redacted_findings_and_exports_the_sbom() {
    use echopilot_ui::tabs::security::{export_sbom, LATEST};
    let app = on_tab(loaded_app(), "Security");
    let screen = render(&app, W, H);
    // Recorded from a real scan: two fake secrets, two vulnerable packages.
    assert!(screen.contains("[FAIL] 2 secret(s) found"), "{screen}");
    assert!(screen.contains("RUSTSEC-2021-0003"), "{screen}");
    assert!(screen.contains("github-pat"), "{screen}");
    assert!(screen.contains("REDACTED"), "{screen}");
    assert_snapshot!("security_findings", screen);
    // The secret itself never reached the console: only its redacted form is in the data.
    let report = app.cache.get(LATEST).unwrap().report.clone().unwrap();
    for s in &report.secrets {
        assert!(s.redacted.contains("REDACTED"), "{s:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let notice = export_sbom(&app.cache, dir.path());
    assert!(notice.contains("written to"), "{notice}");
    let path = dir.path().join(format!("sbom-{}.cdx.json", report.id));
    let sbom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
}
