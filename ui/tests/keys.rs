//! Key handling and the effect state machine, without a terminal or a server.

mod common;

use chrono::Duration;
use common::*;
use echopilot_ui::event::PostOp;
use echopilot_ui::resources::{TELEMETRY, VERBS};
use echopilot_ui::tabs::jobs::{JobsTab, AUTOMATIONS, RUNS};
use echopilot_ui::tabs::queue::{QueueTab, JOBS};
use echopilot_ui::{ClientError, Effect, Event, KeyCode, KeyModifiers, Resource};
use serde_json::json;

/// Id of the first queue job in the fixture that is in `state`.
fn queue_id(state: &str) -> String {
    fixture("queue_jobs.json")["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["state"] == state)
        .map(|j| j["id"].as_str().unwrap().to_string())
        .unwrap()
}

fn job_name(i: usize) -> String {
    fixture("automations.json")["jobs"][i]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

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
    let titles: Vec<_> = app.tabs.iter().map(|t| t.title()).collect();
    assert_eq!(
        titles,
        [
            "Telemetry",
            "Jobs",
            "Queue",
            "Costs",
            "Security",
            "DR",
            "Forecast",
            "Integrations"
        ]
    );
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab_title(), "Queue");
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab_title(), "Costs");
    press_mod(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    press_mod(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(app.tab_title(), "Jobs");
    press(&mut app, KeyCode::Char('8'));
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.tab_title(), "Telemetry", "wraps around");
    press(&mut app, KeyCode::Char('9'));
    assert_eq!(app.tab_title(), "Telemetry", "no ninth tab");
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
               "plan_id": fixture("dryrun_high.json")["plan_id"],
               "reason": "scheduler wedged after deploy"})
    );
    // While waiting, keys other than Esc/^C do nothing.
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    let fx = app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(fixture("confirm.json")),
        at: t0(),
    });
    // A short answer is a flash line naming the run and the audit record, not a modal.
    assert_eq!(popup(&app), None);
    let confirm = fixture("confirm.json");
    let run_id = confirm["result"]["run_id"].as_str().unwrap();
    assert_eq!(
        app.notice.as_ref().unwrap().0,
        format!(
            "restart_scheduler started · {run_id} · audit #{}",
            confirm["audit_seq"]
        )
    );
    assert!(
        !fetches(&fx).is_empty(),
        "a confirmed command refreshes the tab"
    );
}

/// A verb that starts a run (run_backup, verify_dr, run_scan) answers with the run id and a
/// long `follow` hint: still a flash line, and a run already going is said so.
#[test]
fn a_started_run_with_a_follow_hint_is_a_flash_line() {
    let mut app = loaded_app();
    let answer = |already: bool| {
        json!({"audit_seq": 27, "result": {
            "already_running": already, "job": "backup", "run_id": "run_3a5aaf01a4b948d2d444",
            "follow": "GET /api/v1/jobs/runs?job=backup; the DR tab shows the result"}})
    };
    app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(answer(false)),
        at: t0(),
    });
    assert_eq!(popup(&app), None);
    assert_eq!(
        app.notice.as_ref().unwrap().0,
        "command started · run_3a5aaf01a4b948d2d444 · audit #27"
    );
    app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(answer(true)),
        at: t0(),
    });
    assert_eq!(
        app.notice.as_ref().unwrap().0,
        "command: already running · run_3a5aaf01a4b948d2d444 · audit #27"
    );
}

/// A run started from the console is followed until it ends, then reported — "done" is
/// not said while it is still running.
#[test]
fn a_started_run_is_reported_when_it_ends() {
    let mut app = loaded_app();
    let confirm = fixture("confirm.json");
    let run_id = confirm["result"]["run_id"].as_str().unwrap().to_string();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "restrt sched");
    press(&mut app, KeyCode::Enter);
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    type_str(&mut app, "restart_scheduler");
    press(&mut app, KeyCode::Enter);
    type_str(&mut app, "drill");
    press(&mut app, KeyCode::Enter);
    let fx = app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(confirm),
        at: t0(),
    });
    assert!(app.notice.as_ref().unwrap().0.contains("started"));
    // The run history is fetched (on any tab) while the run is watched.
    assert!(fetches(&fx).contains(&RUNS.res), "{:?}", fetches(&fx));
    let runs = |outcome: &str, duration: Option<i64>| {
        json!({"runs": [{"id": run_id, "job": "retention", "trigger": "manual",
            "started_at": "2026-05-01T12:00:00Z", "finished_at": null, "outcome": outcome,
            "error": null, "duration_ms": duration, "replica": "r-7f3a", "result": null,
            "queue_job_id": null, "attempt": 1, "fire_at": null}]})
    };
    let fx = app.handle_event(Event::Fetched {
        resource: RUNS.res,
        result: Ok(runs("running", None)),
        at: t0() + Duration::seconds(1),
    });
    assert!(
        app.notice.as_ref().unwrap().0.contains("started"),
        "still running: no end yet"
    );
    assert_eq!(app.watched_runs.len(), 1);
    assert!(fetches(&fx).is_empty(), "{:?}", fetches(&fx));
    // Still running: asked again after 2 s, not the history's usual 10 s.
    assert_eq!(
        app.cache.meta(RUNS.res).next_due,
        Some(t0() + Duration::seconds(3))
    );
    // The refresh the confirm asked for has been answered meanwhile.
    for r in app.current().resources() {
        let (file, _) = echopilot_ui::FIXTURE_FILES
            .iter()
            .find(|(_, x)| *x == r)
            .unwrap();
        app.handle_event(Event::Fetched {
            resource: r,
            result: Ok(fixture(file)),
            at: t0() + Duration::seconds(2),
        });
    }
    let fx = app.handle_event(Event::Fetched {
        resource: RUNS.res,
        result: Ok(runs("succeeded", Some(1234))),
        at: t0() + Duration::seconds(12),
    });
    assert_eq!(
        app.notice.as_ref().unwrap().0,
        format!("retention succeeded in 1.2 s · {run_id}")
    );
    assert!(app.watched_runs.is_empty());
    // What the run changed is fetched at once, not on the tab's timer.
    let tab = app.current().resources();
    assert!(
        tab.iter().all(|r| fetches(&fx).contains(r)),
        "{:?} of {tab:?}",
        fetches(&fx)
    );
}

/// `run_scan` confirmed from the palette: when its run ends, the Security tab's data is
/// fetched at once (the new report), not when its refresh timer comes round.
#[test]
fn a_scan_confirmed_from_the_palette_refetches_the_security_tab_when_it_ends() {
    use echopilot_ui::tabs::security::{HOOKS, LATEST, STATUS};
    let mut app = loaded_app();
    go_tab(&mut app, "Security");
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "run_scan");
    let fx = press(&mut app, KeyCode::Enter);
    assert_eq!(posts(&fx)[0].2["verb"], "run_scan", "{:?}", posts(&fx));
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_low.json")),
        at: t0(),
    });
    let fx = press(&mut app, KeyCode::Char('y'));
    assert_eq!(posts(&fx)[0].0, PostOp::Confirm);
    // The verb's answer (as run_scan gives it): a run of security_scan.
    let mut answer = fixture("confirm.json");
    let run_id = "run_00000000000000000abc";
    answer["result"] = json!({"job": "security_scan", "run_id": run_id,
        "report_id": "scan_00000000000000000abc", "already_running": false,
        "follow": "GET /api/v1/security/reports/latest; the Security tab shows the result"});
    let at = t0() + Duration::seconds(1);
    let fx = app.handle_event(Event::Posted {
        op: PostOp::Confirm,
        result: Ok(answer),
        at,
    });
    assert!(fetches(&fx).contains(&RUNS.res), "{:?}", fetches(&fx));
    // The refresh the confirm asked for is answered before the scan ends.
    for (r, f) in [
        (STATUS.res, "security_status.json"),
        (LATEST.res, "security_latest.json"),
        (HOOKS.res, "compliance_hooks.json"),
    ] {
        app.handle_event(Event::Fetched {
            resource: r,
            result: Ok(fixture(f)),
            at,
        });
    }
    let runs = |outcome: &str| {
        json!({"runs": [{"id": run_id, "job": "security_scan", "trigger": "manual",
            "started_at": "2026-05-01T12:00:00Z", "finished_at": null, "outcome": outcome,
            "error": null, "duration_ms": 40, "replica": "r-7f3a", "result": null,
            "queue_job_id": null, "attempt": 1, "fire_at": null}]})
    };
    let fx = app.handle_event(Event::Fetched {
        resource: RUNS.res,
        result: Ok(runs("running")),
        at: at + Duration::seconds(1),
    });
    assert!(
        !fetches(&fx).contains(&LATEST.res),
        "nothing new while it runs: {:?}",
        fetches(&fx)
    );
    // Two seconds later (the report's timer is 30 s): it ended, the tab is fetched now.
    let fx = app.handle_event(Event::Fetched {
        resource: RUNS.res,
        result: Ok(runs("succeeded")),
        at: at + Duration::seconds(2),
    });
    let got = fetches(&fx);
    for r in [LATEST.res, STATUS.res, HOOKS.res] {
        assert!(got.contains(&r), "{} not refetched: {got:?}", r.key);
    }
    assert!(app.watched_runs.is_empty());
}

#[test]
fn low_risk_confirms_with_y_and_run_now_prefills_job() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    let fx = press(&mut app, KeyCode::Char('t'));
    let p = posts(&fx);
    assert_eq!(
        p[0].2,
        json!({"verb": "run_job", "args": {"job": job_name(2)}, "confirm": false})
    );
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_low.json")),
        at: t0(),
    });
    assert!(posts(&press(&mut app, KeyCode::Char('x'))).is_empty());
    let p = posts(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(p[0].2["plan_id"], fixture("dryrun_low.json")["plan_id"]);
    assert!(p[0].2.get("reason").is_none());
}

#[test]
fn retry_only_dead_jobs_and_typed_id() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    assert!(
        press(&mut app, KeyCode::Char('R')).is_empty(),
        "first job is queued"
    );
    assert!(app.notice.as_ref().unwrap().0.contains("Only dead jobs"));
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "DEAD");
    press(&mut app, KeyCode::Enter);
    let p = posts(&press_mod(
        &mut app,
        KeyCode::Char('R'),
        KeyModifiers::SHIFT,
    ));
    assert_eq!(
        p[0].2,
        json!({"verb": "retry_job", "args": {"id": queue_id("dead")}, "confirm": false})
    );
}

/// Safety: without the server's verb registry (backend down at start) a mutating key is
/// refused with a message; it never opens as "risk low" confirmable with a single `y`.
#[test]
fn mutating_keys_are_refused_without_the_verb_registry() {
    let mut app = empty_app();
    app.load(JOBS.res, fixture("queue_jobs.json"));
    app.load(AUTOMATIONS.res, fixture("automations.json"));
    press(&mut app, KeyCode::Char('3'));
    let fx = press_mod(&mut app, KeyCode::Char('D'), KeyModifiers::SHIFT);
    assert!(posts(&fx).is_empty());
    assert_eq!(popup(&app), None, "no confirm dialog without the registry");
    let notice = &app.notice.as_ref().unwrap().0;
    assert!(
        notice.starts_with("Refused purge_dlq: risk unknown until the server's verb list loads"),
        "{notice}"
    );
    // Pressing y afterwards confirms nothing.
    assert!(posts(&press(&mut app, KeyCode::Char('y'))).is_empty());
    // Run-now on the Jobs tab: the same.
    press(&mut app, KeyCode::Char('2'));
    assert!(posts(&press(&mut app, KeyCode::Char('t'))).is_empty());
    assert_eq!(popup(&app), None);
    assert!(app
        .notice
        .as_ref()
        .unwrap()
        .0
        .starts_with("Refused run_job: risk unknown"));
    // A registry that lacks the verb: refused too, and said so.
    app.load(VERBS.res, json!({"verbs": []}));
    press(&mut app, KeyCode::Char('3'));
    assert!(posts(&press_mod(
        &mut app,
        KeyCode::Char('D'),
        KeyModifiers::SHIFT
    ))
    .is_empty());
    assert_eq!(popup(&app), None);
    assert_eq!(
        app.notice.as_ref().unwrap().0,
        "Verb purge_dlq is not offered by this backend."
    );
}

/// Enter on a correctly typed verb name moves to the reason field; the "reason is
/// required" error only comes when Enter is pressed on an empty reason.
#[test]
fn enter_on_the_verb_name_moves_to_the_reason_without_an_error() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "restrt sched");
    press(&mut app, KeyCode::Enter);
    app.handle_event(Event::Posted {
        op: PostOp::DryRun,
        result: Ok(fixture("dryrun_high.json")),
        at: t0(),
    });
    type_str(&mut app, "restart_scheduler");
    assert!(posts(&press(&mut app, KeyCode::Enter)).is_empty());
    let dialog = |app: &echopilot_ui::App| match &app.popup {
        Some(echopilot_ui::popups::Popup::Plan(d)) => (d.field, d.error.clone()),
        _ => unreachable!("the plan dialog stays open"),
    };
    assert_eq!(dialog(&app), (1, None), "moved on, no error yet");
    assert!(posts(&press(&mut app, KeyCode::Enter)).is_empty());
    assert_eq!(
        dialog(&app),
        (1, Some("A reason is required for a high-risk verb.".into()))
    );
}

/// The args form's cursor starts after the `=` of the first empty value, so typed text
/// lands in the value (not in front of `id=`).
#[test]
fn args_form_cursor_starts_in_the_empty_value() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "retry_job");
    press(&mut app, KeyCode::Enter);
    assert_eq!(popup(&app), Some("args"));
    type_str(&mut app, "job_0123456789");
    let fx = press_mod(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert_eq!(
        posts(&fx)[0].2,
        json!({"verb": "retry_job", "args": {"id": "job_0123456789"}, "confirm": false})
    );
}

#[test]
fn readonly_hides_mutating_verbs_and_keys() {
    let mut app = app_with(true);
    app.load(VERBS.res, fixture("verbs.json"));
    app.load(AUTOMATIONS.res, fixture("automations.json"));
    let verbs: Vec<_> = app.visible_verbs().map(|v| v.name.clone()).collect();
    assert_eq!(verbs, vec!["tail_logs"]);
    press(&mut app, KeyCode::Char('2'));
    assert!(press(&mut app, KeyCode::Char('t')).is_empty());
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
    // Every value is pre-filled, so the cursor starts at the end of the first line
    // ("area=server", the default); End keeps it there.
    press(&mut app, KeyCode::End);
    for _ in "server".chars() {
        press(&mut app, KeyCode::Backspace);
    }
    type_str(&mut app, "queue");
    let fx = press_mod(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
    assert_eq!(
        posts(&fx)[0].2,
        json!({"verb": "tail_logs", "args": {"area": "queue", "lines": 100}, "confirm": false})
    );
}

#[test]
fn single_flight_and_backoff() {
    let mut app = empty_app();
    let fx = app.handle_event(Event::Tick(t0()));
    let first = fetches(&fx);
    assert!(first.contains(&TELEMETRY.res));
    // Still in flight: a second tick asks for nothing.
    assert!(fetches(&app.handle_event(Event::Tick(t0() + Duration::seconds(1)))).is_empty());
    let fail = |app: &mut echopilot_ui::App, secs| {
        app.handle_event(Event::Fetched {
            resource: TELEMETRY.res,
            result: Err(ClientError::Unreachable("refused".into())),
            at: t0() + Duration::seconds(secs),
        })
    };
    fail(&mut app, 1);
    let due = |app: &echopilot_ui::App| app.cache.meta(TELEMETRY.res).next_due.unwrap();
    assert_eq!(due(&app), t0() + Duration::seconds(2));
    let mut at = 2;
    for n in 2..=8 {
        let fx = app.handle_event(Event::Tick(t0() + Duration::seconds(at)));
        assert!(fetches(&fx).contains(&TELEMETRY.res), "retry {n}");
        fail(&mut app, at);
        let wait = (due(&app) - (t0() + Duration::seconds(at))).num_seconds();
        assert_eq!(wait, (1i64 << (n - 1)).min(30));
        at += wait;
    }
    assert!(app.unreachable_since.is_some());
    // `r` forgets the backoff.
    let fx = press(&mut app, KeyCode::Char('r'));
    assert!(fetches(&fx).contains(&TELEMETRY.res));
}

#[test]
fn stale_data_is_kept_and_marked() {
    let mut app = loaded_app();
    go_offline(&mut app, 42);
    assert!(app.data(TELEMETRY).is_some());
    assert!(app.cache.meta(TELEMETRY.res).is_stale());
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("[STALE 50s] backend unreachable"),
        "{screen}"
    );
    assert!(screen.contains("[OFFLINE]"));
    // Recovery clears the marker.
    app.load(TELEMETRY.res, fixture("telemetry.json"));
    assert!(app.unreachable_since.is_none());
}

#[test]
fn area_404_is_reported_honestly() {
    let mut app = loaded_app();
    go_tab(&mut app, "Integrations");
    let screen = render(&app, 100, 30);
    assert!(screen.contains(
        "This area is not installed on this backend (GET /api/v1/integrations answered 404)"
    ));
    // The Costs tab shows AI spend; its cloud-spend strip says the FinOps area is missing.
    go_tab(&mut app, "Costs");
    let screen = render(&app, 120, 32);
    assert!(
        screen.contains("Waits for the FinOps area: GET /api/v1/costs/summary answered 404"),
        "{screen}"
    );
    assert!(screen.contains("AI calls · last 7 days"), "{screen}");
    let costs = app.cache.meta(echopilot_ui::tabs::costs::SPEC.res.res);
    assert_eq!(costs.next_due, Some(t0() + Duration::seconds(60)));
    assert_eq!(costs.failures, 0, "a 404 is an answer, not a failure");
}

#[test]
fn palette_ai_errors_opens_the_costs_tab_on_error_rates() {
    use echopilot_ui::tabs::costs::{CostsTab, View};
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "ai errors");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab_title(), "Costs");
    assert_eq!(app.tab::<CostsTab>().unwrap().view, View::Errors);
    let screen = render(&app, 120, 32);
    assert!(screen.contains("highest error rate first"), "{screen}");
    assert!(screen.contains("Latest failed calls"), "{screen}");
    // `e` goes back to the cost view, and the palette's "ai costs" too.
    press(&mut app, KeyCode::Char('e'));
    assert_eq!(app.tab::<CostsTab>().unwrap().view, View::Cost);
    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "ai costs");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab::<CostsTab>().unwrap().view, View::Cost);
}

#[test]
fn queue_state_filter_refetches_and_drops_superseded_answer() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    app.cache.entry_mut(JOBS.res).in_flight = false;
    let fx = press(&mut app, KeyCode::Char('s'));
    let path = fx
        .iter()
        .find_map(|e| match e {
            Effect::Fetch { resource, path } if *resource == JOBS.res => Some(path.clone()),
            _ => None,
        })
        .unwrap();
    assert!(path.contains("state=queued"), "{path}");
    // Switch again while that request is in flight; its answer must not be shown.
    press(&mut app, KeyCode::Char('s'));
    let fx = app.handle_event(Event::Fetched {
        resource: JOBS.res,
        result: Ok(json!({"jobs": []})),
        at: t0(),
    });
    assert_eq!(app.tab::<QueueTab>().unwrap().state, Some("running"));
    assert!(
        fetches(&fx).contains(&JOBS.res),
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
    app.load(JOBS.res, q);
    let i = app
        .tab::<QueueTab>()
        .unwrap()
        .table
        .selected_index()
        .unwrap();
    let third = fixture("queue_jobs.json")["jobs"][2]["id"].clone();
    assert_eq!(json!(app.data(JOBS).unwrap().jobs[i].id), third);
}

#[test]
fn palette_enter_on_entity_jumps_to_it() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "health_probe");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab_title(), "Jobs");
    let i = app
        .tab::<JobsTab>()
        .unwrap()
        .registry
        .selected_index()
        .unwrap();
    assert_eq!(app.data(AUTOMATIONS).unwrap().jobs[i].name, "health_probe");
}

#[test]
fn palette_funnel_signup_opens_it_on_the_forecast_tab() {
    use echopilot_ui::tabs::forecast::ForecastTab;
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "funnel signup");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.tab_title(), "Forecast");
    assert_eq!(
        app.tab::<ForecastTab>().unwrap().funnel.as_deref(),
        Some("signup")
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
    assert!(app.data(JOBS).is_none(), "old tenant's data dropped");
    assert!(app.data(TELEMETRY).is_none(), "old tenant's data dropped");
    assert!(app.data(VERBS).is_some(), "verbs are not tenant data");
}

#[test]
fn module_disabled_is_an_answer_not_an_error() {
    let mut app = loaded_app();
    for scope in ["tenant", "fleet"] {
        for r in [TELEMETRY.res, echopilot_ui::tabs::telemetry::HISTORY.res] {
            app.handle_event(Event::Fetched {
                resource: r,
                result: Err(module_disabled("telemetry", scope)),
                at: t0(),
            });
            let m = app.cache.meta(r);
            assert_eq!(m.failures, 0, "no backoff for a disabled module");
            assert_eq!(m.next_due, Some(t0() + Duration::seconds(60)));
            assert!(m.data.is_none(), "nothing of a disabled module is shown");
        }
        assert!(app.unreachable_since.is_none());
        let screen = render(&app, 100, 30);
        let line = if scope == "fleet" {
            "Module telemetry is turned off fleet-wide."
        } else {
            "Module telemetry is disabled for this tenant."
        };
        assert!(screen.contains(line), "{screen}");
        assert!(
            !screen.contains("[NO DATA]") && !screen.contains("[FAIL]"),
            "{screen}"
        );
    }
    // The other tabs are unaffected.
    press(&mut app, KeyCode::Char('3'));
    assert!(!render(&app, 100, 30).contains("is turned off"));
}

#[test]
fn plain_404_is_still_not_installed() {
    let mut app = loaded_app();
    go_tab(&mut app, "Integrations");
    let screen = render(&app, 100, 30);
    assert!(screen.contains("This area is not installed"), "{screen}");
    assert!(!screen.contains("Module"), "{screen}");
}

#[test]
fn enter_and_d_describe_and_never_mutate() {
    let mut app = loaded_app();
    // Queue: Enter on a dead job opens its description; nothing is sent.
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "dead");
    press(&mut app, KeyCode::Enter);
    let fx = press(&mut app, KeyCode::Enter);
    assert!(fx.is_empty(), "Enter sends nothing: {fx:?}");
    assert_eq!(popup(&app), Some("describe"));
    let Some(echopilot_ui::popups::Popup::Describe(v)) = &app.popup else {
        unreachable!()
    };
    assert_eq!(v.described.id, queue_id("dead"));
    let keys: Vec<_> = v.described.fields.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "id",
        "state",
        "attempts",
        "max_attempts",
        "error",
        "payload",
        "result",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(popup(&app), Some("describe json"));
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(popup(&app), Some("describe"));
    press(&mut app, KeyCode::Esc);
    assert_eq!(popup(&app), None, "Esc goes back to the table");
    // Jobs: Enter and d on the registry and on the run history describe, never run.
    press(&mut app, KeyCode::Char('2'));
    for open in [KeyCode::Enter, KeyCode::Char('d')] {
        assert!(posts(&press(&mut app, open)).is_empty());
        assert_eq!(popup(&app), Some("describe"));
        press(&mut app, KeyCode::Esc);
    }
    press(&mut app, KeyCode::Char('h'));
    assert!(posts(&press(&mut app, KeyCode::Enter)).is_empty());
    let Some(echopilot_ui::popups::Popup::Describe(v)) = &app.popup else {
        panic!("run history row described")
    };
    assert_eq!(v.described.kind, "job run");
    assert_eq!(
        v.described.id,
        fixture("runs.json")["runs"][0]["id"].as_str().unwrap()
    );
    press(&mut app, KeyCode::Esc);
    // `t` on the run history does not run anything either.
    assert!(posts(&press(&mut app, KeyCode::Char('t'))).is_empty());
    assert_eq!(popup(&app), None);
}

#[test]
fn c_copies_the_full_id_with_osc52() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('d'));
    let fx = press(&mut app, KeyCode::Char('c'));
    let id = fixture("queue_jobs.json")["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fx, vec![Effect::CopyToClipboard(id.clone())]);
    assert!(app.notice.as_ref().unwrap().0.contains(&id));
    // The bytes the runtime writes through the terminal backend.
    let mut bytes = Vec::<u8>::new();
    echopilot_ui::clipboard::copy(
        &mut ratatui::backend::CrosstermBackend::new(&mut bytes),
        &id,
    )
    .unwrap();
    let written = String::from_utf8(bytes).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&id);
    assert_eq!(written, format!("\x1b]52;c;{b64}\x07"));
}

#[test]
fn palette_verb_picks_up_the_selected_row() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "dead");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "retry_job");
    let fx = press(&mut app, KeyCode::Enter);
    assert!(posts(&fx).is_empty(), "the form opens first");
    let Some(echopilot_ui::popups::Popup::ArgsForm(f)) = &app.popup else {
        panic!("args form expected, got {:?}", popup(&app))
    };
    assert_eq!(f.textarea.lines(), [format!("id={}", queue_id("dead"))]);
    let p = posts(&press_mod(
        &mut app,
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    ));
    assert_eq!(
        p[0].2,
        json!({"verb": "retry_job", "args": {"id": queue_id("dead")}, "confirm": false})
    );
    // A queued job is not a retry candidate: nothing is picked up.
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('/'));
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "retry_job");
    press(&mut app, KeyCode::Enter);
    let Some(echopilot_ui::popups::Popup::ArgsForm(f)) = &app.popup else {
        panic!("args form expected")
    };
    assert_eq!(f.textarea.lines(), ["id="]);
}

#[test]
fn readonly_mutating_key_flashes_read_only() {
    let mut app = app_with(true);
    echopilot_ui::load_fixtures(&mut app, &fixtures_dir()).unwrap();
    press(&mut app, KeyCode::Char('3'));
    for key in ['R', 'D'] {
        app.notice = None;
        let fx = press_mod(&mut app, KeyCode::Char(key), KeyModifiers::SHIFT);
        assert!(fx.is_empty() && app.popup.is_none());
        let msg = &app.notice.as_ref().expect("a flash").0;
        assert!(msg.starts_with("read-only"), "{msg}");
    }
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('t'));
    assert!(app.notice.as_ref().unwrap().0.starts_with("read-only"));
    // Reading still works.
    press(&mut app, KeyCode::Char('d'));
    assert_eq!(popup(&app), Some("describe"));
}

/// A 401 marks the key rejected until any request succeeds again (the key was fixed or
/// the backend restored it); other errors leave it alone.
#[test]
fn a_401_is_remembered_until_a_success() {
    let mut app = loaded_app();
    app.handle_event(Event::Fetched {
        resource: TELEMETRY.res,
        result: Err(ClientError::Problem(echopilot_ui::client::parse_problem(
            401,
            br#"{"title":"Unauthorized","status":401}"#,
        ))),
        at: t0(),
    });
    assert_eq!(app.auth_rejected_since, Some(t0()));
    app.handle_event(Event::Fetched {
        resource: VERBS.res,
        result: Err(ClientError::Unreachable("refused".into())),
        at: t0() + Duration::seconds(1),
    });
    assert_eq!(
        app.auth_rejected_since,
        Some(t0()),
        "kept across other errors"
    );
    app.handle_event(Event::Fetched {
        resource: TELEMETRY.res,
        result: Ok(fixture("telemetry.json")),
        at: t0() + Duration::seconds(2),
    });
    assert_eq!(app.auth_rejected_since, None);
}

/// The recorded queue jobs repeated under fresh ids until there are `n` (a page-sized list).
fn many_queue_jobs(n: usize) -> serde_json::Value {
    let recorded = fixture("queue_jobs.json")["jobs"]
        .as_array()
        .unwrap()
        .clone();
    let jobs: Vec<_> = (0..n)
        .map(|i| {
            let mut j = recorded[i % recorded.len()].clone();
            j["id"] = format!("job_{i:020x}").into();
            j
        })
        .collect();
    let mut list = fixture("queue_jobs.json");
    list["jobs"] = jobs.into();
    list
}

#[test]
fn page_keys_move_by_the_visible_height_and_title_shows_position() {
    let mut app = loaded_app();
    app.load(JOBS.res, many_queue_jobs(60));
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('g'));
    let screen = render(&app, 80, 24);
    let page = app.tab::<QueueTab>().unwrap().table.page.get();
    assert!(page > 1 && page < 60, "{page}");
    assert!(
        screen.contains(&format!("1 of 60 · rows 1-{page}")),
        "{screen}"
    );
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.tab::<QueueTab>().unwrap().table.selected, page);
    press(&mut app, KeyCode::PageDown);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.tab::<QueueTab>().unwrap().table.selected, page);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains(&format!("{} of 60 · rows", page + 1)),
        "{screen}"
    );
}

#[test]
fn one_state_vocabulary_and_s_backwards() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    let screen = render(&app, 120, 32);
    assert!(screen.contains("succeeded"), "{screen}");
    assert!(
        !screen.contains("retrying") && !screen.contains(" done "),
        "{screen}"
    );
    // `/` finds the words the table shows.
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "succeeded");
    let n = app.tab::<QueueTab>().unwrap().table.visible.len();
    let recorded = fixture("queue_jobs.json")["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .count();
    assert_eq!(n, recorded);
    press(&mut app, KeyCode::Esc);
    // `S` goes backwards through the same states `s` goes forwards through.
    let state = |app: &echopilot_ui::App| app.tab::<QueueTab>().unwrap().state;
    press_mod(&mut app, KeyCode::Char('S'), KeyModifiers::SHIFT);
    assert_eq!(state(&app), Some("succeeded"));
    press_mod(&mut app, KeyCode::Char('S'), KeyModifiers::SHIFT);
    assert_eq!(state(&app), Some("dead"));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(state(&app), Some("succeeded"));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(state(&app), None);
}

#[test]
fn sort_cycles_through_columns_and_keeps_the_selection() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('3'));
    let shown_ids = |app: &echopilot_ui::App| app.tab::<QueueTab>().unwrap().table.keys.clone();
    let backend_order = shown_ids(&app);
    press(&mut app, KeyCode::Char('>'));
    let mut ascending = backend_order.clone();
    // The table's order: digit runs compare as numbers (job_…19 before job_…1a).
    ascending.sort_by(|a, b| echopilot_ui::components::table::natural_cmp(a, b));
    assert_eq!(shown_ids(&app), ascending, "Id ascending");
    press(&mut app, KeyCode::Char('>'));
    let descending: Vec<_> = ascending.iter().rev().cloned().collect();
    assert_eq!(shown_ids(&app), descending, "Id descending");
    assert!(render(&app, 80, 24).contains("Id ▼"));
    // Kind ascending: the selected job stays selected wherever it lands.
    let selected = app.tab::<QueueTab>().unwrap().table.selected_key.clone();
    press(&mut app, KeyCode::Char('>'));
    let t = &app.tab::<QueueTab>().unwrap().table;
    assert_eq!(t.keys.get(t.selected).cloned(), selected);
    let jobs = fixture("queue_jobs.json")["jobs"]
        .as_array()
        .unwrap()
        .clone();
    let kind_of = |id: &String| {
        jobs.iter().find(|j| j["id"] == id.as_str()).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kinds: Vec<_> = t.keys.iter().map(kind_of).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted);
    assert!(render(&app, 80, 24).contains("Kind ▲"));
    // `<` steps back; all the way round is the backend's order again.
    press(&mut app, KeyCode::Char('<'));
    press(&mut app, KeyCode::Char('<'));
    press(&mut app, KeyCode::Char('<'));
    assert_eq!(shown_ids(&app), backend_order);
}

fn fetch_paths(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Fetch { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

fn logs_path(app: &echopilot_ui::App) -> String {
    app.path_for(echopilot_ui::popups::logs::LOGS.res)
}

#[test]
fn l_opens_the_logs_of_the_tab_area_read_only() {
    use echopilot_ui::popups::logs::LOGS;
    let mut app = loaded_app();
    let fx = press(&mut app, KeyCode::Char('l'));
    assert_eq!(popup(&app), Some("logs"));
    // Straight to a GET of the log: no plan, no confirm, nothing posted.
    assert!(posts(&fx).is_empty());
    assert_eq!(
        fetch_paths(&fx),
        vec!["/api/v1/ops/logs?area=server&lines=500".to_string()]
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(popup(&app), None);
    // On the Jobs tab the scheduler's log, on the Queue tab the queue's.
    go_tab(&mut app, "Jobs");
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(logs_path(&app), "/api/v1/ops/logs?area=scheduler&lines=500");
    press(&mut app, KeyCode::Esc);
    go_tab(&mut app, "Queue");
    press(&mut app, KeyCode::Char('l'));
    assert_eq!(logs_path(&app), "/api/v1/ops/logs?area=queue&lines=500");
    app.load(LOGS.res, fixture("logs.json"));
    // `a` steps to the next area of the backend's list, `v` the level, `/` the search.
    let fx = press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        fetch_paths(&fx),
        vec!["/api/v1/ops/logs?area=scheduler&lines=500".to_string()]
    );
    press(&mut app, KeyCode::Char('v'));
    press(&mut app, KeyCode::Char('v'));
    assert_eq!(
        logs_path(&app),
        "/api/v1/ops/logs?area=scheduler&lines=500&level=warn"
    );
    press(&mut app, KeyCode::Char('/'));
    type_str(&mut app, "job failed");
    // Typing is text, not commands (`f`, `a` and `v` are letters of the search here).
    assert_eq!(popup(&app), Some("logs"));
    press(&mut app, KeyCode::Enter);
    let want = "/api/v1/ops/logs?area=scheduler&lines=500&level=warn&q=job%20failed";
    assert_eq!(logs_path(&app), want);
    // The answer to the earlier request (still in flight: one request at a time) is
    // dropped when it comes, and the search is asked for.
    let at = app.now;
    let fx = app.handle_event(Event::Fetched {
        resource: LOGS.res,
        result: Ok(fixture("logs.json")),
        at,
    });
    assert_eq!(fetch_paths(&fx), vec![want.to_string()]);
}

#[test]
fn logs_follow_refreshes_and_scrolling_back_holds_still() {
    use echopilot_ui::popups::logs::LOGS;
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('l'));
    app.load(LOGS.res, fixture("logs.json"));
    // Following: due again after its 2 s interval.
    let later = app.now + Duration::seconds(3);
    let fx = app.handle_event(Event::Tick(later));
    assert!(fetches(&fx).contains(&LOGS.res));
    app.load(LOGS.res, fixture("logs.json"));
    // Scrolling back stops following: the lines hold still while the operator reads.
    press(&mut app, KeyCode::Char('k'));
    let Some(echopilot_ui::popups::Popup::Logs(v)) = &app.popup else {
        panic!("logs view closed")
    };
    assert!(!v.follow);
    assert_eq!(v.back, 1);
    let fx = app.handle_event(Event::Tick(later + Duration::seconds(10)));
    assert!(!fetches(&fx).contains(&LOGS.res));
    // `G` goes to the newest line and follows again.
    let fx = press(&mut app, KeyCode::Char('G'));
    assert!(fetches(&fx).contains(&LOGS.res));
}

#[test]
fn p_pauses_live_updates_and_minus_slows_them() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('p'));
    assert!(app.paused);
    assert!(app.notice.as_ref().unwrap().0.contains("paused"));
    let fx = app.handle_event(Event::Tick(app.now + Duration::seconds(600)));
    assert!(fetches(&fx).is_empty(), "{fx:?}");
    // `r` still refreshes once while paused.
    let fx = press(&mut app, KeyCode::Char('r'));
    assert!(fetches(&fx).contains(&TELEMETRY.res));
    press(&mut app, KeyCode::Char('p'));
    assert!(!app.paused);
    // `-` stretches every interval: telemetry (5 s) is not due 6 s after an answer at ×2.
    press(&mut app, KeyCode::Char('-'));
    assert_eq!(app.cache.refresh_scale, 2);
    let at = app.now;
    app.handle_event(Event::Fetched {
        resource: TELEMETRY.res,
        result: Ok(fixture("telemetry.json")),
        at,
    });
    let fx = app.handle_event(Event::Tick(at + Duration::seconds(6)));
    assert!(!fetches(&fx).contains(&TELEMETRY.res));
    let fx = app.handle_event(Event::Tick(at + Duration::seconds(11)));
    assert!(fetches(&fx).contains(&TELEMETRY.res));
    press(&mut app, KeyCode::Char('+'));
    assert_eq!(app.cache.refresh_scale, 1);
}

fn mouse(app: &mut echopilot_ui::App, kind: echopilot_ui::MouseEventKind, column: u16, row: u16) {
    app.handle_event(Event::Mouse(echopilot_ui::MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

#[test]
fn mouse_clicks_tabs_and_rows_and_the_wheel_scrolls() {
    use echopilot_ui::{MouseButton, MouseEventKind};
    let click = MouseEventKind::Down(MouseButton::Left);
    let mut app = loaded_app();
    // Where things are comes from the last draw.
    let screen = render(&app, 120, 32);
    let tabline = screen.lines().nth(1).unwrap();
    let x = tabline.find("3 Queue").unwrap() as u16;
    mouse(&mut app, click, x + 2, 1);
    assert_eq!(app.tab_title(), "Queue");
    let screen = render(&app, 120, 32);
    // The third data row of the job list, by its id on screen.
    let id = {
        let t = app.tab::<QueueTab>().unwrap();
        t.table.keys[2].clone()
    };
    let y = screen
        .lines()
        .position(|l| l.contains(&id))
        .expect("row on screen") as u16;
    mouse(&mut app, click, 10, y);
    let selected = |app: &echopilot_ui::App| {
        let t = &app.tab::<QueueTab>().unwrap().table;
        t.keys[t.selected].clone()
    };
    assert_eq!(selected(&app), id);
    assert_eq!(popup(&app), None);
    // A second click on the selected row describes it.
    mouse(&mut app, click, 10, y);
    assert_eq!(popup(&app), Some("describe"));
    press(&mut app, KeyCode::Esc);
    // The wheel moves the selection by three rows.
    let before = app.tab::<QueueTab>().unwrap().table.selected;
    mouse(&mut app, MouseEventKind::ScrollDown, 10, y);
    let after = app.tab::<QueueTab>().unwrap().table.selected;
    assert_eq!(
        after,
        (before + 3).min(app.tab::<QueueTab>().unwrap().table.visible.len() - 1)
    );
}

#[test]
fn help_stops_scrolling_at_its_end_and_lists_each_key_once() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char('?'));
    let first = render(&app, 120, 32);
    for _ in 0..500 {
        press(&mut app, KeyCode::Char('j'));
    }
    let Some(echopilot_ui::popups::Popup::Help { scroll }) = app.popup else {
        panic!("help closed")
    };
    assert_eq!(scroll, app.help_max_scroll.get());
    assert!(scroll > 0 && scroll < 500, "{scroll}");
    // One k scrolls back at once: no overshoot to unwind.
    press(&mut app, KeyCode::Char('k'));
    let Some(echopilot_ui::popups::Popup::Help { scroll: back }) = app.popup else {
        panic!("help closed")
    };
    assert_eq!(back, scroll - 1);
    // g, PgDn, G page through it as in the result view; G stops at the same end.
    let help_scroll = |app: &echopilot_ui::App| match app.popup {
        Some(echopilot_ui::popups::Popup::Help { scroll }) => scroll,
        _ => panic!("help closed"),
    };
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(help_scroll(&app), 0);
    press(&mut app, KeyCode::PageDown);
    assert!(help_scroll(&app) > 1, "{}", help_scroll(&app));
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(help_scroll(&app), scroll);
    // The move keys are described once, with their arrows.
    assert!(first.contains("j or ↓ down, k or ↑ up"), "{first}");
    assert!(!first.contains("Move the selection up (k or ↑)"), "{first}");
}

#[test]
fn tabs_of_areas_not_installed_are_dimmed_on_the_tab_line() {
    use echopilot_ui::ratatui_style::Modifier;
    let mut app = loaded_app();
    // loaded_app answers the Integrations tab's route with 404 (not installed here).
    let i = app.tab_index("Integrations").unwrap();
    assert!(echopilot_ui::tabs::unavailable(
        app.tabs[i].as_ref(),
        &app.cache
    ));
    let j = app.tab_index("Queue").unwrap();
    assert!(!echopilot_ui::tabs::unavailable(
        app.tabs[j].as_ref(),
        &app.cache
    ));
    let buf = echopilot_ui::ui::render_buffer(&app, 120, 32);
    let (spots, _) = echopilot_ui::ui::tab_positions(&app, 120);
    let dim = |x: u16| buf[(x, 1)].modifier.contains(Modifier::DIM);
    assert!(dim(spots[i].0), "Integrations is dimmed");
    assert!(!dim(spots[j].0), "Queue is not");
    go_tab(&mut app, "Integrations");
    let buf = echopilot_ui::ui::render_buffer(&app, 120, 32);
    let (spots, _) = echopilot_ui::ui::tab_positions(&app, 120);
    assert!(
        !buf[(spots[i].0, 1)].modifier.contains(Modifier::DIM),
        "the current tab is shown as current, not dimmed"
    );
}

#[test]
fn run_scan_comes_from_the_palette_and_the_security_tab() {
    let mut app = loaded_app();
    press(&mut app, KeyCode::Char(':'));
    type_str(&mut app, "run_scan");
    let fx = press(&mut app, KeyCode::Enter);
    let p = posts(&fx);
    assert_eq!(p[0].0, PostOp::DryRun);
    assert_eq!(
        p[0].2,
        json!({"verb": "run_scan", "args": {}, "confirm": false})
    );
    let mut app = loaded_app();
    go_tab(&mut app, "Security");
    let fx = press(&mut app, KeyCode::Char('s'));
    let p = posts(&fx);
    assert_eq!(p[0].2["verb"], "run_scan", "{p:?}");
}
