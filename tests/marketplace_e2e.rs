//! End-to-end tests of the marketplace (per-tenant modules) and the fleet-wide module
//! switch, against the real binary on SQLite and PostgreSQL.

mod common;

use serde_json::{json, Value};

use common::{key, start};

fn module<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("module {name} not listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_disabled_for_one_tenant_changes_nothing_for_another() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let root = srv.client();
        let a = key(&root, "admin", "tenant-a").await;
        let a_ro = key(&root, "readonly", "tenant-a").await;
        let b = key(&root, "admin", "tenant-b").await;

        // Every module starts on, for both tenants.
        let list = a.get("/api/v1/marketplace/list").await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.body["tenant"], "tenant-a");
        for m in ["alerts", "selfheal", "telemetry"] {
            let s = module(&list.body, m);
            assert_eq!(s["enabled"], true, "{backend}: {s}");
            assert_eq!(s["fleet_enabled"], true);
            assert!(s["changed_by"].is_null());
        }
        let tel = module(&list.body, "telemetry");
        assert!(
            tel["routes"]
                .as_array()
                .unwrap()
                .contains(&json!("GET /api/v1/ops/telemetry")),
            "{tel}"
        );
        assert!(
            module(&list.body, "alerts")["jobs"]
                .as_array()
                .unwrap()
                .contains(&json!("alert_rules")),
            "{list:?}",
            list = list.text
        );
        // Core areas are not modules.
        assert!(list.body["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["name"] != "queue" && m["name"] != "marketplace"));

        // Tenant A turns telemetry off.
        let r = a
            .post(
                "/api/v1/marketplace/toggle",
                json!({"module": "telemetry", "enabled": false, "reason": "not licensed"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["changed"], true);
        assert_eq!(r.body["tenant"], "tenant-a");
        let seq = r.body["audit_seq"].as_i64().expect("audit seq");

        // A's telemetry routes answer 404 naming the module; B's still work.
        for path in ["/api/v1/ops/telemetry", "/api/v1/system-health"] {
            let off = a_ro.get(path).await;
            off.assert_problem(404);
            assert_eq!(off.body["module"], "telemetry", "{}", off.text);
            assert_eq!(off.body["scope"], "tenant");
            assert_eq!(off.body["title"], "Module disabled");
            assert!(off.body["detail"].as_str().unwrap().contains("tenant-a"));
            let on = b.get(path).await;
            assert_eq!(on.status, 200, "{backend} {path}: {}", on.text);
        }
        // Other modules of A are untouched.
        assert_eq!(a.get("/api/v1/alerts").await.status, 200);

        // The summary says so in the module's own section.
        let sa = a.get("/api/v1/status/summary").await;
        assert_eq!(
            sa.body["telemetry"],
            json!({"disabled": true, "scope": "tenant"})
        );
        assert_eq!(sa.body["marketplace"]["disabled"], json!(["telemetry"]));
        let sb = b.get("/api/v1/status/summary").await;
        assert!(sb.body.get("telemetry").is_none(), "{}", sb.text);
        assert_eq!(sb.body["marketplace"]["disabled"], json!([]));

        // Listing shows who changed it and why; B's listing is unchanged.
        let la = a.get("/api/v1/marketplace/list").await;
        let t = module(&la.body, "telemetry");
        assert_eq!(t["enabled"], false);
        assert_eq!(t["tenant_enabled"], false);
        assert_eq!(t["reason"], "not licensed");
        assert!(t["changed_by"].is_string() && t["changed_at"].is_string());
        let lb = b.get("/api/v1/marketplace/list").await;
        assert_eq!(module(&lb.body, "telemetry")["enabled"], true);

        // Audited in A's tenant.
        let recs = a
            .get("/api/v1/audit/records?action=marketplace.toggle&limit=10")
            .await;
        assert_eq!(recs.status, 200, "{}", recs.text);
        let rec = &recs.body["records"][0];
        assert_eq!(rec["seq"], json!(seq));
        assert_eq!(rec["tenant_id"], "tenant-a");
        assert_eq!(rec["detail"]["enabled"], false);
        assert_eq!(rec["detail"]["reason"], "not licensed");

        // Turning it back on restores the routes.
        let r = a
            .post(
                "/api/v1/marketplace/toggle",
                json!({"module": "telemetry", "enabled": true, "reason": "renewed"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(a_ro.get("/api/v1/ops/telemetry").await.status, 200);

        // The license event is in marketplace.ndjson, with no key in it.
        let logs = srv.read_logs();
        let license: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("\"area\":\"marketplace\"") && l.contains("license"))
            .collect();
        assert_eq!(license.len(), 2, "{backend}: {logs}");
        assert!(!logs.contains(&srv.key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_rejects_bad_input_and_lower_roles() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let root = srv.client();
        let a = key(&root, "admin", "tenant-a").await;
        let op = key(&root, "operator", "tenant-a").await;
        let t = "/api/v1/marketplace/toggle";

        let r = a
            .post(
                t,
                json!({"module": "nope", "enabled": false, "reason": "x"}),
            )
            .await;
        r.assert_problem(422);
        assert!(
            r.body["detail"].as_str().unwrap().contains("modules: "),
            "{}",
            r.text
        );
        let r = a
            .post(
                t,
                json!({"module": "queue", "enabled": false, "reason": "x"}),
            )
            .await;
        r.assert_problem(422);
        assert!(r.body["detail"].as_str().unwrap().contains("core area"));
        a.post(
            t,
            json!({"module": "alerts", "enabled": false, "reason": "  "}),
        )
        .await
        .assert_problem(422);
        a.post(
            t,
            json!({"module": "alerts", "enabled": false, "reason": "x".repeat(501)}),
        )
        .await
        .assert_problem(422);
        // Body shape errors (missing or unknown fields, wrong types) are 400, as everywhere.
        a.post(t, json!({"module": "alerts", "enabled": false}))
            .await
            .assert_problem(400);
        a.post(
            t,
            json!({"module": "alerts", "enabled": false, "reason": "x", "tenant": "other"}),
        )
        .await
        .assert_problem(400);
        a.post(
            t,
            json!({"module": "alerts", "enabled": "no", "reason": "x"}),
        )
        .await
        .assert_problem(400);
        op.post(
            t,
            json!({"module": "alerts", "enabled": false, "reason": "x"}),
        )
        .await
        .assert_problem(403);
        root.with_key("ep_wrong")
            .post(
                t,
                json!({"module": "alerts", "enabled": false, "reason": "x"}),
            )
            .await
            .assert_problem(401);
        // An admin of tenant A cannot act for tenant B.
        a.with_tenant("tenant-b")
            .post(
                t,
                json!({"module": "alerts", "enabled": false, "reason": "x"}),
            )
            .await
            .assert_problem(403);
        // Nothing was changed by any of that.
        let list = a.get("/api/v1/marketplace/list").await;
        assert!(list.body["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["enabled"] == true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_module_verb_plans_routes_and_jobs_then_runs() {
    for backend in common::backends() {
        let srv = start(backend, &[]).await;
        let root = srv.client();
        let a = key(&root, "admin", "tenant-a").await;
        let cmd = "/api/v1/ops/command";
        let args = json!({"module": "alerts", "enabled": false});
        let r = a
            .post(
                cmd,
                json!({"verb": "toggle_module", "args": args, "confirm": false}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let effects: Vec<&str> = r.body["plan"]["effects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert!(
            effects
                .contains(&"GET /api/v1/alerts answers 404 (module disabled) for tenant tenant-a"),
            "{effects:?}"
        );
        assert!(
            effects.contains(&"scheduled job alert_rules skips tenant tenant-a"),
            "{effects:?}"
        );
        assert!(effects.contains(&"Other tenants are not affected"));
        assert_eq!(r.body["risk"], "high", "{}", r.text);
        let plan_id = r.body["plan_id"].as_str().unwrap().to_string();
        // Dry-run changed nothing.
        assert_eq!(a.get("/api/v1/alerts").await.status, 200);
        // Confirm (high risk: a reason is required).
        let r = a
            .post(
                cmd,
                json!({"verb": "toggle_module", "args": args, "confirm": true,
                       "plan_id": plan_id, "reason": "trial ended"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["result"]["enabled"], false, "{}", r.text);
        let off = a.get("/api/v1/alerts").await;
        off.assert_problem(404);
        assert_eq!(off.body["module"], "alerts");
        // The other tenant still has alerts.
        let b = key(&root, "readonly", "tenant-b").await;
        assert_eq!(b.get("/api/v1/alerts").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_turned_off_fleet_wide_is_off_for_everyone() {
    for backend in common::backends() {
        let srv = start(backend, &[("ECHOPILOT_MODULES__ALERTS", "false")]).await;
        let root = srv.client();
        let r = root.get("/api/v1/alerts").await;
        r.assert_problem(404);
        assert_eq!(r.body["module"], "alerts");
        assert_eq!(r.body["scope"], "fleet");
        let s = root.get("/api/v1/status/summary").await;
        assert_eq!(
            s.body["alerts"],
            json!({"disabled": true, "scope": "fleet"})
        );
        assert!(!s.body["server"]["areas"]
            .as_array()
            .unwrap()
            .contains(&json!("alerts")));
        // Its scheduled job is not registered, its module is listed as off.
        let st = root.get("/api/v1/automations/status").await;
        assert_eq!(st.status, 200, "{}", st.text);
        assert!(!st.text.contains("alert_rules"), "{}", st.text);
        let list = root.get("/api/v1/marketplace/list").await;
        let m = module(&list.body, "alerts");
        assert_eq!(m["fleet_enabled"], false);
        assert_eq!(m["enabled"], false);
        // Telemetry shows it as absent rather than silently missing.
        let t = root.get("/api/v1/ops/telemetry").await;
        assert_eq!(
            t.body["components"]["alerts"]["status"], "absent",
            "{}",
            t.text
        );
        let h = root.get("/api/v1/system-health").await;
        assert_eq!(
            h.body["components"]["alerts"]["status"], "absent",
            "{}",
            h.text
        );
        // The OpenAPI document still describes the module (it is part of the build).
        let doc = srv.client().anonymous().get("/api/v1/openapi.json").await;
        assert!(doc.body["paths"]["/api/v1/alerts"].is_object());
    }
}

#[test]
fn a_core_area_or_unknown_module_in_config_stops_the_server() {
    for (var, needle) in [
        ("ECHOPILOT_MODULES__QUEUE", "core area"),
        ("ECHOPILOT_MODULES__NOPE", "no module named"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_echopilot"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("ECHOPILOT_CONFIG", "/dev/null")
            .env_remove("ECHOPILOT_DATABASE_URL")
            .env(var, "false")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{var}: {err}");
    }
}
