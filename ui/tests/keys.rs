//! Key handling and the effect state machine, without a terminal or a server.

mod common;

use chrono::Duration;
use common::*;
use echopilot_ui::event::{Area, PostOp};
use echopilot_ui::{ClientError, Effect, Event, KeyCode, KeyModifiers, Resource, Tab};
use serde_json::json;

fn posts(fx: &[Effect]) -> Vec<(PostOp, String, serde_json::Value)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Post { op, path, body } => Some((op.clone(), path.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

fn fetches(fx: &[Effect]) -> Vec<Resource> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Fetch { resource, .. } => Some(*resource),
            _ => None,
        })
        .collect()
}

fn popup(app: &echopilot_ui::App) -> Option<&'static str> {
    app.popup.as_ref().map(|p| p.name())
}

#[test]
fn q_quits_only_without_dialog() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.should_quit, "q with help open must not quit");
    press(&mut app, KeyCode::Char(':'));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char(':'));
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.should_quit, "q in the palette is typed");
    assert_eq!(popup(&app), Some("palette"));
    press(&mut app, KeyCode::Esc);
    assert_eq!(popup(&app), None);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit);
}

#[test]
fn ctrl_c_quits_even_in_dialogs() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    press_mod(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(app.should_quit);
}

#[test]
fn esc_closes_every_dialog() {
    let mut app = loaded_app();
    for open in [KeyCode::Char('?'), KeyCode::Char(':')] {
        press(&mut app, open);
        assert!(app.popup.is_some());
        press(&mut app, KeyCode::Esc);
        assert!(app.popup.is_none());
    }
    // Plan dialog: Esc cancels and nothing is sent.
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "restart_scheduler");
    let fx = press(&mut app, KeyCode::Enter);
    assert_eq!(posts(&fx).len(), 1, "dry-run sent");
    let fx = press(&mut app, KeyCode::Esc);
    assert!(app.popup.is_none() && fx.is_empty());
    // The late dry-run answer for the closed dialog is ignored.
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    assert!(app.popup.is_none());
}

#[test]
fn tabs_and_numbers() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab, Tab::Queue);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Costs);
    press_mod(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    press_mod(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(app.tab, Tab::Jobs);
    press(&mut app, KeyCode::Char('8'));
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Telemetry, "wraps around");
}

#[test]
fn high_risk_needs_typed_verb_and_reason() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "restrt sched");
    let fx = press(&mut app, KeyCode::Enter);
    let p = posts(&fx);
    assert_eq!(p[0].0, PostOp::DryRun);
    assert_eq!(
        p[0].2,
        json!({"verb": "restart_scheduler", "args": {}, "confirm": false})
    );
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    // `y` does nothing for a high-risk plan (it is typed into the name field).
    assert!(posts(&press(&mut app, KeyCode::Char('y'))).is_empty());
    assert!(
        posts(&press(&mut app, KeyCode::Enter)).is_empty(),
        "wrong name"
    );
    press_mod(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
    type_str(&mut app, "restart_scheduler");
    assert!(
        posts(&press(&mut app, KeyCode::Enter)).is_empty(),
        "no reason yet"
    );
    type_str(&mut app, "scheduler wedged after deploy");
    let fx = press(&mut app, KeyCode::Enter);
    let p = posts(&fx);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, PostOp::Confirm);
    assert_eq!(
        p[0].2,
        json!({"verb": "restart_scheduler", "args": {}, "confirm": true,
               "plan_id": "pl_01HZX3K9", "reason": "scheduler wedged after deploy"})
    );
    // While waiting, keys other than Esc/^C do nothing.
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    let fx = app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(fixture("confirm.json")),
        at: t0(),
    });
    assert_eq!(popup(&app), Some("result"));
    assert!(
        !fetches(&fx).is_empty(),
        "a confirmed command refreshes the tab"
    );
    match &app.popup {
        Some(echopilot_ui::popups::Popup::Result(r)) => {
            assert!(r.ok);
            assert_eq!(r.audit_seq, Some(1286));
        }
        _ => unreachable!(),
    }
}

#[test]
fn low_risk_confirms_with_y_and_run_now_prefills_job() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('j'));
    let fx = press(&mut app, KeyCode::Enter);
    let p = posts(&fx);
    assert_eq!(
        p[0].2,
        json!({"verb": "run_job", "args": {"job": "retention"}, "confirm": false})
    );
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_low.json")),
        at: t0(),
    });
    assert!(posts(&press(&mut app, KeyCode::Char('x'))).is_empty());
    let p = posts(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(p[0].2["plan_id"], "pl_01HZX3KA");
    assert!(p[0].2.get("reason").is_none());
}

#[test]
fn retry_only_dead_jobs_and_typed_id() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    assert!(
        press(&mut app, KeyCode::Enter).is_empty(),
        "first job is queued"
    );
    assert!(app.notice.as_ref().unwrap().0.contains("Only dead jobs"));
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "DEAD");
    press(&mut app, KeyCode::Enter);
    let p = posts(&press(&mut app, KeyCode::Enter));
    assert_eq!(
        p[0].2,
        json!({"verb": "retry_job", "args": {"id": 5112}, "confirm": false})
    );
}

#[test]
fn direct_calls_when_backend_has_no_verb() {
    let mut app = loaded_app();
    app.load(Resource::Verbs, json!({"verbs": []}));
    press(&mut app, KeyCode::Char('2'));
    assert!(press(&mut app, KeyCode::Enter).is_empty(), "asks first");
    assert_eq!(popup(&app), Some("plan"));
    let p = posts(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(p[0].0, PostOp::RunJob("scheduler_tick".into()));
    assert_eq!(p[0].1, "/api/v1/jobs/scheduler_tick/run");
}

#[test]
fn readonly_hides_mutating_verbs_and_keys() {
    let mut app = app_with(true);
    app.load(Resource::Verbs, fixture("verbs.json"));
    app.load(Resource::Automations, fixture("automations.json"));
    let verbs: Vec<_> = app.visible_verbs().map(|v| v.name.clone()).collect();
    assert_eq!(verbs, vec!["tail_logs"]);
    press(&mut app, KeyCode::Char('2'));
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.popup.is_none());
    let entries = app.palette_entries();
    assert!(!entries.iter().any(|e| e.label == "restart_scheduler"));
}

#[test]
fn args_form_submits_typed_args() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "logs");
    press(&mut app, KeyCode::Enter);
    assert_eq!(popup(&app), Some("args"));
    // Cursor starts at the top-left: "area=" is the first line.
    press(&mut app, KeyCode::End);
    type_str(&mut app, "queue");
    let fx = press_mod(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert_eq!(
        posts(&fx)[0].2,
        json!({"verb": "tail_logs", "args": {"area": "queue", "lines": 50}, "confirm": false})
    );
}

#[test]
fn single_flight_and_backoff() {
    let mut app = empty_app();
    let fx = app.handle_event(Event::Tick(t0()));
    let first = fetches(&fx);
    assert!(first.contains(&Resource::Telemetry));
    // Still in flight: a second tick asks for nothing.
    assert!(fetches(&app.handle_event(Event::Tick(t0() + Duration::seconds(1)))).is_empty());
    let fail = |app: &mut echopilot_ui::App, secs| {
        app.handle_event(Event::Fetched {
            resource: Resource::Telemetry,
            result: Err(ClientError::Unreachable("refused".into())),
            at: t0() + Duration::seconds(secs),
        })
    };
    fail(&mut app, 1);
    assert_eq!(app.telemetry.next_due, Some(t0() + Duration::seconds(2)));
    let mut at = 2;
    for n in 2..=8 {
        let fx = app.handle_event(Event::Tick(t0() + Duration::seconds(at)));
        assert!(fetches(&fx).contains(&Resource::Telemetry), "retry {n}");
        fail(&mut app, at);
        let wait = (app.telemetry.next_due.unwrap() - (t0() + Duration::seconds(at))).num_seconds();
        assert_eq!(wait, (1i64 << (n - 1)).min(30));
        at += wait;
    }
    assert!(app.unreachable_since.is_some());
    // `r` forgets the backoff.
    let fx = press(&mut app, KeyCode::Char('r'));
    assert!(fetches(&fx).contains(&Resource::Telemetry));
}

#[test]
fn stale_data_is_kept_and_marked() {
    let mut app = loaded_app();
    go_offline(&mut app, 42);
    assert!(app.telemetry.data.is_some());
    assert!(app.telemetry.is_stale());
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("[STALE 50s] backend unreachable"),
        "{screen}"
    );
    assert!(screen.contains("[OFFLINE]"));
    // Recovery clears the marker.
    app.load(Resource::Telemetry, fixture("telemetry.json"));
    assert!(app.unreachable_since.is_none());
}

#[test]
fn area_404_is_reported_honestly() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('6'));
    let screen = render(&app, 100, 30);
    assert!(screen.contains(
        "This area is not installed on this backend (GET /api/v1/dr/status answered 404)"
    ));
    assert!(app.area(Area::Dr).next_due.is_some());
}

#[test]
fn queue_state_filter_refetches_and_drops_superseded_answer() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    app.queue_jobs.in_flight = false;
    let fx = press(&mut app, KeyCode::Char('s'));
    let path = fx
        .iter()
        .find_map(|e| match e {
            Effect::Fetch {
                resource: Resource::QueueJobs,
                path,
            } => Some(path.clone()),
            _ => None,
        })
        .unwrap();
    assert!(path.contains("state=queued"), "{path}");
    // Switch again while that request is in flight; its answer must not be shown.
    press(&mut app, KeyCode::Char('s'));
    let fx = app.handle_event(Event::Fetched {
        resource: Resource::QueueJobs,
        result: Ok(json!({"jobs": []})),
        at: t0(),
    });
    assert_eq!(app.queue_state, Some("running"));
    assert!(
        fetches(&fx).contains(&Resource::QueueJobs),
        "asks again with the new filter"
    );
}

#[test]
fn selection_survives_refresh_reorder() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let mut q = fixture("queue_jobs.json");
    q["jobs"].as_array_mut().unwrap().reverse();
    app.load(Resource::QueueJobs, q);
    let i = app.queue_table.selected_index().unwrap();
    assert_eq!(app.queue_jobs.data.as_ref().unwrap()[i].id, "5118");
}

#[test]
fn palette_enter_on_entity_jumps_to_it() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "health_probe");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Jobs);
    let i = app.jobs_table.selected_index().unwrap();
    assert_eq!(
        app.automations.data.as_ref().unwrap().jobs[i].name,
        "health_probe"
    );
}

#[test]
fn tenant_switch_from_palette() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "demo");
    let fx = press(&mut app, KeyCode::Enter);
    assert!(fx.contains(&Effect::SetTenant(Some("demo".into()))));
    assert_eq!(app.tenant.as_deref(), Some("demo"));
    assert!(app.queue_jobs.data.is_none(), "old tenant's data dropped");
}
