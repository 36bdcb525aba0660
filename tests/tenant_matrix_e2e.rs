//! Every operation of the served OpenAPI document × every role × own tenant / another
//! tenant's `X-Tenant-Id` / another tenant's ids. Expectations come from the document
//! itself (`x-min-role`, `x-system`, the declared examples), so a route that lands
//! tomorrow is covered without editing this file — and an operation that does not
//! declare its least role, or has a body or path parameter without an example, fails it.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{Client, Opts, Server};
use echopilot_backend::model::Role;
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const OTHER: &str = "matrix-other";

struct Op {
    method: String,
    path: String,
    min_role: Role,
    system: bool,
    /// Path parameter name → (example, is integer).
    path_params: Vec<(String, Value, bool)>,
    query: Vec<(String, String)>,
    body: Option<Value>,
}

fn label(op: &Op) -> String {
    format!("{} {}", op.method.to_uppercase(), op.path)
}

/// Read the protected operations and what they declare; every gap is one error line.
fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut gaps = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            if op["security"].as_array().is_none_or(|s| s.is_empty()) {
                continue;
            }
            let name = format!("{} {path}", m.to_uppercase());
            let Some(min_role) = op["x-min-role"].as_str().and_then(Role::parse) else {
                gaps.push(format!("{name}: no valid x-min-role"));
                continue;
            };
            let mut path_params = Vec::new();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let pname = p["name"].as_str().unwrap().to_string();
                let example = p.get("example").or_else(|| p["schema"].get("example"));
                let integer = p["schema"]["type"] == "integer";
                match (p["in"].as_str().unwrap(), example) {
                    ("path", Some(e)) => path_params.push((pname, e.clone(), integer)),
                    ("path", None) => {
                        gaps.push(format!("{name}: path parameter {pname} has no example"))
                    }
                    ("query", Some(e)) if p["required"] == true => {
                        let v = e
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string());
                        query.push((pname, v));
                    }
                    ("query", None) if p["required"] == true => gaps.push(format!(
                        "{name}: required query parameter {pname} has no example"
                    )),
                    _ => {}
                }
            }
            let body = match op.get("requestBody") {
                None => None,
                Some(rb) => {
                    let media = &rb["content"]["application/json"];
                    match media
                        .get("example")
                        .or_else(|| media["schema"].get("example"))
                    {
                        Some(e) => Some(e.clone()),
                        None => {
                            gaps.push(format!("{name}: request body has no example"));
                            continue;
                        }
                    }
                }
            };
            ops.push(Op {
                method: m.to_string(),
                path: path.clone(),
                min_role,
                system: op["x-system"] == true,
                path_params,
                query,
                body,
            });
        }
    }
    assert!(
        gaps.is_empty(),
        "the OpenAPI document is incomplete:\n{}",
        gaps.join("\n")
    );
    assert!(ops.len() > 30, "only {} protected operations", ops.len());
    ops
}

fn url_of(op: &Op, ids: &[(String, String)]) -> String {
    let mut path = op.path.clone();
    for (name, example, _) in &op.path_params {
        let v = ids
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                example
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| example.to_string())
            });
        path = path.replace(&format!("{{{name}}}"), &v);
    }
    if !op.query.is_empty() {
        let q: Vec<String> = op.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        path = format!("{path}?{}", q.join("&"));
    }
    path
}

/// Send one call; returns (status, request id).
async fn call(c: &Client, op: &Op, ids: &[(String, String)], rid: &str) -> (u16, String) {
    let mut rb = c
        .req(op.method.to_uppercase().parse().unwrap(), &url_of(op, ids))
        .header("X-Request-ID", rid);
    if let Some(b) = &op.body {
        rb = rb.json(b);
    }
    let r = c.send(rb).await;
    assert!(
        r.status < 500,
        "{} as {rid}: {} {}",
        label(op),
        r.status,
        r.text
    );
    (r.status, rid.to_string())
}

async fn key(c: &Client, role: Role, tenant: &str) -> String {
    let r = c
        .post(
            "/api/v1/keys",
            json!({"role": role.as_str(), "tenant": tenant, "name": "matrix"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["key"].as_str().unwrap().to_string()
}

/// Request ids of every denied audit record of a tenant.
async fn denied_request_ids(sup: &Client, tenant: &str) -> HashSet<String> {
    let c = sup.with_tenant(tenant);
    let mut out = HashSet::new();
    let mut after = -1i64;
    loop {
        let r = c
            .get(&format!("/api/v1/audit/records?limit=1000&after={after}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let recs = r.body["records"].as_array().unwrap().clone();
        if recs.is_empty() {
            return out;
        }
        for rec in &recs {
            after = after.max(rec["seq"].as_i64().unwrap());
            if rec["outcome"] == "denied" {
                out.insert(rec["request_id"].as_str().unwrap().to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_every_role_every_tenant() {
    for backend in common::backends() {
        let database_url = common::fresh_database(backend).await;
        let srv = Server::start_with(Opts {
            database_url,
            env: vec![
                ("ECHOPILOT_RATE_LIMIT_PER_SEC".into(), "100000".into()),
                ("ECHOPILOT_RATE_LIMIT_BURST".into(), "100000".into()),
                // DR routes answer 409 without a backup key.
                ("ECHOPILOT_DR__KEY".into(), "44".repeat(32)),
            ],
            ..Default::default()
        });
        let sup = srv.client();
        let doc = sup.anonymous().get("/api/v1/openapi.json").await.body;
        let ops = operations(&doc);

        // Keys of every role in the system tenant `default` (the bootstrap superadmin's),
        // and an operator and admin of another tenant for the fleet-wide switches.
        let mut own: Vec<(Role, Client)> = Vec::new();
        for role in Role::ALL {
            let c = if role == Role::Superadmin {
                sup.clone()
            } else {
                sup.with_key(&key(&sup, role, "default").await)
            };
            own.push((role, c));
        }
        let other_op = sup.with_key(&key(&sup, Role::Operator, OTHER).await);
        let other_admin = sup.with_key(&key(&sup, Role::Admin, OTHER).await);
        // Ids the other tenant owns: a job, a key, an audit record.
        let job = other_op
            .post(
                "/api/v1/queue/enqueue",
                json!({"kind": "echo", "payload": {"of": OTHER}}),
            )
            .await;
        assert_eq!(job.status, 201, "{}", job.text);
        let other_job = job.body["id"].as_str().unwrap().to_string();
        let keys = other_admin.get("/api/v1/keys").await;
        let other_key = keys.body["keys"][0]["id"].as_str().unwrap().to_string();
        let recs = sup
            .with_tenant(OTHER)
            .get("/api/v1/audit/records?limit=1")
            .await;
        let other_seq = recs.body["records"][0]["seq"].as_i64().unwrap().to_string();

        let mut must_be_audited: BTreeSet<(String, String)> = BTreeSet::new();
        let mut n = 0usize;
        for op in &ops {
            // No key: 401.
            let (s, _) = call(&sup.anonymous(), op, &[], &format!("m-{n}-anon")).await;
            n += 1;
            assert_eq!(s, 401, "{} without a key", label(op));

            for (role, c) in &own {
                let allowed = role.rank() >= op.min_role.rank();
                let rid = format!("m-{n}-{role}-own");
                n += 1;
                let (s, rid) = call(c, op, &[], &rid).await;
                if allowed {
                    assert!(
                        s != 401 && s != 403,
                        "{} as {role}: {s}, but x-min-role is {}",
                        label(op),
                        op.min_role
                    );
                    if op.path_params.is_empty() {
                        assert!((200..300).contains(&s), "{} as {role}: {s}", label(op));
                    }
                } else {
                    assert_eq!(
                        s,
                        403,
                        "{} as {role} (x-min-role {})",
                        label(op),
                        op.min_role
                    );
                    must_be_audited.insert(("default".into(), rid));
                }

                // Another tenant's X-Tenant-Id: 403 and audited, except for a superadmin.
                let rid = format!("m-{n}-{role}-foreign");
                n += 1;
                let (s, rid) = call(&c.with_tenant(OTHER), op, &[], &rid).await;
                if *role == Role::Superadmin {
                    assert!(
                        s != 401 && s != 403,
                        "{} as superadmin of {OTHER}: {s}",
                        label(op)
                    );
                } else {
                    assert_eq!(s, 403, "{} as {role} asking for {OTHER}", label(op));
                    must_be_audited.insert((OTHER.into(), rid));
                }

                // Another tenant's ids in the path: never a success short of superadmin.
                if !op.path_params.is_empty() && *role != Role::Superadmin {
                    for id in [&other_job, &other_key, &other_seq] {
                        let ids: Vec<(String, String)> = op
                            .path_params
                            .iter()
                            .filter(|(_, _, int)| *int == id.parse::<i64>().is_ok())
                            .map(|(name, _, _)| (name.clone(), id.clone()))
                            .collect();
                        if ids.is_empty() {
                            continue;
                        }
                        let rid = format!("m-{n}-{role}-ids");
                        n += 1;
                        let (s, rid) = call(c, op, &ids, &rid).await;
                        assert!(
                            s == 403 || s == 404,
                            "{} as {role} with {OTHER}'s id {id}: {s}",
                            label(op)
                        );
                        if s == 403 {
                            must_be_audited.insert(("default".into(), rid));
                        }
                    }
                }
            }

            // Fleet-wide switches need a key of the system tenant.
            if op.system {
                for (who, c) in [("operator", &other_op), ("admin", &other_admin)] {
                    let rid = format!("m-{n}-{who}-of-{OTHER}");
                    n += 1;
                    let (s, rid) = call(c, op, &[], &rid).await;
                    assert_eq!(s, 403, "{} (x-system) as {who} of {OTHER}", label(op));
                    must_be_audited.insert((OTHER.into(), rid));
                }
            }
        }

        // Every denial is in the audit log, in the tenant it concerned.
        let mut missing = Vec::new();
        for tenant in ["default", OTHER] {
            let denied = denied_request_ids(&sup, tenant).await;
            for (t, rid) in &must_be_audited {
                if t == tenant && !denied.contains(rid) {
                    missing.push(format!("{tenant}: {rid}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{backend}: {} of {} denials not audited: {missing:?}",
            missing.len(),
            must_be_audited.len()
        );
        eprintln!(
            "{backend}: {} operations, {n} calls, {} denials audited",
            ops.len(),
            must_be_audited.len()
        );
    }
}
