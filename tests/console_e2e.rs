//! The console's real event loop (effects on tokio tasks, answers over the channel)
//! against the real backend binary: palette → dry-run → confirm, and the audit log then
//! holds both records.

mod common;

use std::time::Duration;

use echopilot_ui::commands::Mode;
use echopilot_ui::popups::Popup;
use echopilot_ui::resources::{TELEMETRY, VERBS};
use echopilot_ui::{ConsoleOptions, Harness, KeyCode};

fn opts(srv: &common::Server) -> ConsoleOptions {
    ConsoleOptions {
        base_url: srv.url.clone(),
        key: srv.key.clone(),
        tenant: None,
        theme: "default".into(),
        themes_dir: None,
        readonly: false,
        demo: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn palette_dry_run_confirm_is_audited_on_the_real_server() {
    for backend in common::backends() {
        let srv = common::Server::start_with(common::Opts {
            database_url: common::fresh_database(backend).await,
            ..Default::default()
        });
        let mut h = Harness::new(&opts(&srv)).unwrap();
        let t = Duration::from_secs(15);
        h.tick();
        h.settle(t).await.unwrap();
        assert!(
            h.app.data(VERBS).is_some(),
            "verbs loaded from /api/v1/ops/verbs"
        );
        assert!(h.app.data(TELEMETRY).is_some(), "telemetry loaded");

        // A typo'd query finds restart_scheduler; it is high risk: type its name and a reason.
        h.key(KeyCode::Char(':'));
        h.type_str("restrt sched");
        h.key(KeyCode::Enter);
        h.settle(t).await.unwrap();
        assert_eq!(h.app.mode(), Mode::ConfirmHigh, "{}", h.render(100, 30));
        h.type_str("restart_scheduler");
        h.key(KeyCode::Tab);
        h.type_str("console e2e drill");
        h.key(KeyCode::Enter);
        h.settle(t).await.unwrap();
        let seq = match &h.app.popup {
            Some(Popup::Result(r)) => {
                assert!(r.ok, "{:?}", r.lines);
                r.audit_seq.expect("result carries the audit seq")
            }
            _ => panic!("expected the result dialog: {}", h.render(100, 30)),
        };
        assert!(h.render(100, 30).contains(&format!("audit seq {seq}")));

        // Both steps are in the audit log, in order, with the verb as target.
        let c = srv.client();
        let dry = c.get("/api/v1/audit/records?action=ops.dry_run").await;
        let conf = c.get("/api/v1/audit/records?action=ops.confirm").await;
        let dry = dry.body["records"].as_array().unwrap().clone();
        let conf = conf.body["records"].as_array().unwrap().clone();
        assert!(
            dry.iter().any(|r| r["target"] == "restart_scheduler"),
            "{dry:?}"
        );
        let confirm = conf
            .iter()
            .find(|r| r["seq"] == seq)
            .unwrap_or_else(|| panic!("no ops.confirm record with seq {seq}: {conf:?}"));
        assert_eq!(confirm["target"], "restart_scheduler");
        assert_eq!(confirm["outcome"], "ok");
        assert!(dry.iter().any(|r| r["seq"].as_u64() < Some(seq)));
        // The receipt of that record verifies as part of the tree (shape check here;
        // proofs are verified independently in api_e2e).
        let receipt = c.get(&format!("/api/v1/audit/receipt/{seq}")).await;
        assert_eq!(receipt.status, 200, "{}", receipt.text);
        assert!(receipt.body["leaf"]
            .as_str()
            .unwrap()
            .contains("ops.confirm"));

        // The scheduler really restarted and is running.
        let status = c.get("/api/v1/automations/status").await;
        assert_eq!(status.body["running"], true, "{}", status.text);

        // q quits only when no dialog is open.
        h.key(KeyCode::Char('q'));
        assert!(!h.app.should_quit);
        h.key(KeyCode::Esc);
        h.key(KeyCode::Char('q'));
        assert!(h.app.should_quit);
    }
}
