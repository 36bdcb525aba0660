//! The contract pass over the finished OpenAPI document: every operation gets the
//! problem+json answers the middleware stack can give it, whichever area declared it, so
//! a route that lands tomorrow is documented like the others without touching this file.
//!
//! What each operation may answer besides its own responses, and why:
//! - every operation: 400 (a NUL byte or malformed percent-encoding anywhere in the URL is
//!   refused at the edge) and 503 (the request timeout, a busy database);
//! - with `security`: 401 (no, unknown or revoked key), 403 (role below `x-min-role`, a
//!   foreign `X-Tenant-Id`), 429 (per-key rate limit, with `Retry-After`);
//! - with a request body: 413, 415 and 422 (well-formed but invalid values);
//! - with parameters: 422 (bounds the handler checks);
//! - with a path parameter, or of a module (off for the tenant or fleet): 404;
//! - a protected POST: `Idempotency-Key` (optional header), 409 while the first request
//!   with that key runs, 422 when the key was used with a different request.
//!
//! Protected operations declare `x-min-role` (the least role the handler lets through)
//! and, for fleet-wide switches, `x-system: true` (a key of the system tenant `default`
//! or a superadmin). The idempotency middleware and the tenant-matrix test read them.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use utoipa::PartialSchema;

use crate::model::{Problem, Role};

/// Extension naming the least role an operation admits.
pub const MIN_ROLE: &str = "x-min-role";
/// Extension marking a fleet-wide switch (system-tenant key or superadmin).
pub const SYSTEM: &str = "x-system";

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Routes whose POST ignores `Idempotency-Key`: the answer holds a secret (a new key), or
/// is a binary file built fresh on each call (an evidence bundle: the replay cache keeps
/// JSON text only).
pub const IDEMPOTENCY_EXEMPT: &[&str] = &["/api/v1/keys", "/api/v1/compliance/evidence/export"];

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// Shared responses, referenced from the operations.
fn shared_responses() -> Map<String, Value> {
    let mut m = Map::new();
    let mut add = |code: &str, d: &str| {
        m.insert(format!("Problem{code}"), problem_response(d));
    };
    add("400", "Malformed request: bad JSON, unknown field, wrong type, bad query or path parameter, or a NUL byte");
    add("401", "Missing, unknown or revoked X-Dash-Key");
    add(
        "403",
        "The key's role is below x-min-role, or X-Tenant-Id names another tenant (audited)",
    );
    add(
        "404",
        "No such resource in this tenant, or the route's module is off (members module, scope)",
    );
    add(
        "409",
        "Conflict with the current state, or a request with this Idempotency-Key is still running",
    );
    add("413", "Request body over body_limit_bytes");
    add("415", "Request body without Content-Type: application/json");
    add(
        "422",
        "Well-formed but invalid values, or an Idempotency-Key reused with a different request",
    );
    add("503", "The request timed out or the database is busy");
    let mut rl = problem_response("Per-key rate limit exceeded");
    rl["headers"] = json!({"Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1}
    }});
    m.insert("Problem429".into(), rl);
    m
}

/// Apply the contract to the generated document (see the module docs).
pub fn finish(mut doc: Value) -> Value {
    // "METHOD /path" of every module route: the gate may answer 404 on any of them.
    let modules: Vec<String> = crate::area::module_names()
        .into_iter()
        .flat_map(crate::marketplace::module_routes)
        .collect();
    let components = doc
        .as_object_mut()
        .expect("an OpenAPI document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["schemas"]["Problem"] =
        serde_json::to_value(Problem::schema()).expect("the Problem schema serializes");
    let responses = components
        .as_object_mut()
        .expect("components is an object")
        .entry("responses")
        .or_insert_with(|| json!({}));
    for (k, v) in shared_responses() {
        responses[k] = v;
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                finish_operation(path, method, op, &modules);
            }
        }
    }
    doc
}

fn finish_operation(path: &str, method: &str, op: &mut Value, modules: &[String]) {
    let protected = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = op.get("requestBody").is_some();
    let params: Vec<Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_path_param = params.iter().any(|p| p["in"] == "path");
    let has_params = params
        .iter()
        .any(|p| p["in"] == "path" || p["in"] == "query");
    let is_module = modules.contains(&format!("{} {path}", method.to_uppercase()));
    let idempotent_post = protected && method == "post" && !IDEMPOTENCY_EXEMPT.contains(&path);

    let mut codes = vec!["400", "503"];
    if protected {
        codes.extend(["401", "403", "429"]);
    }
    if has_body {
        codes.extend(["413", "415", "422"]);
    }
    if has_params {
        codes.push("422");
    }
    if has_path_param || is_module {
        codes.push("404");
    }
    if idempotent_post {
        codes.extend(["409", "422"]);
        let params = op
            .as_object_mut()
            .expect("an operation is an object")
            .entry("parameters")
            .or_insert_with(|| json!([]));
        let list = params.as_array_mut().expect("parameters is an array");
        let named = |p: &Value| {
            p["in"] == "header"
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
        };
        list.retain(|p| !named(p));
        list.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Repeat-safe POST: the first executed answer is replayed for 24 h to this key, for this method and route; a different request under the same key is 422",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}
        }));
    }
    let responses = op
        .as_object_mut()
        .expect("an operation is an object")
        .entry("responses")
        .or_insert_with(|| json!({}));
    let responses = responses.as_object_mut().expect("responses is an object");
    for code in codes {
        match responses.get_mut(code) {
            // Declared by the handler without a body: keep its description, add the schema.
            Some(r) if r.get("content").is_none() && r.get("$ref").is_none() => {
                let d = r["description"].as_str().unwrap_or_default().to_string();
                let d = if d.is_empty() {
                    shared_description(code)
                } else {
                    d
                };
                *r = problem_response(&d);
                if code == "429" {
                    r["headers"] = shared_responses()["Problem429"]["headers"].clone();
                }
            }
            Some(_) => {}
            None => {
                responses.insert(
                    code.to_string(),
                    json!({"$ref": format!("#/components/responses/Problem{code}")}),
                );
            }
        }
    }
    // Other error answers a handler declared (e.g. readyz's 503) are problem+json too.
    for (code, r) in responses.iter_mut() {
        let is_error = code.starts_with('4') || code.starts_with('5');
        if is_error && r.get("content").is_none() && r.get("$ref").is_none() {
            let d = r["description"].as_str().unwrap_or_default().to_string();
            *r = problem_response(&d);
        }
    }
}

fn shared_description(code: &str) -> String {
    shared_responses()[&format!("Problem{code}")]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What an operation declares about who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub min_role: Role,
    pub system: bool,
}

/// `(METHOD, route template)` → the operation's declared access, for every protected
/// operation of the document. An operation without a valid `x-min-role` is an error
/// naming it (the contract test and the server's start both refuse such a document).
pub fn access_table(doc: &Value) -> Result<HashMap<(String, String), Access>, String> {
    let mut out = HashMap::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let protected = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            if !protected {
                continue;
            }
            let role = op
                .get(MIN_ROLE)
                .and_then(Value::as_str)
                .and_then(Role::parse)
                .ok_or_else(|| {
                    format!(
                        "{} {path} has no valid {MIN_ROLE} (one of integration, readonly, operator, admin, superadmin)",
                        method.to_uppercase()
                    )
                })?;
            let system = op.get(SYSTEM).and_then(Value::as_bool).unwrap_or(false);
            out.insert(
                (method.to_uppercase(), path.clone()),
                Access {
                    min_role: role,
                    system,
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut v = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    v.push((m.to_string(), path.clone(), op.clone()));
                }
            }
        }
        v
    }

    #[test]
    fn every_protected_operation_declares_its_least_role() {
        let doc = crate::api::openapi();
        let table = access_table(&doc).unwrap();
        let protected = operations(&doc)
            .into_iter()
            .filter(|(_, _, op)| op["security"].as_array().is_some_and(|s| !s.is_empty()))
            .count();
        assert_eq!(table.len(), protected);
        assert!(protected > 30, "{protected} protected operations");
    }

    #[test]
    fn every_operation_documents_the_common_problems() {
        let doc = crate::api::openapi();
        assert!(doc["components"]["schemas"]["Problem"].is_object());
        // A module's route may be 404 (the gate), whatever its tag.
        assert!(doc["paths"]["/api/v1/system-health"]["get"]["responses"]["404"].is_object());
        for (m, path, op) in operations(&doc) {
            let r = &op["responses"];
            for code in ["400", "503"] {
                assert!(r.get(code).is_some(), "{m} {path} lacks {code}");
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                for code in ["401", "403", "429"] {
                    assert!(r.get(code).is_some(), "{m} {path} lacks {code}");
                }
            }
            if op.get("requestBody").is_some() {
                for code in ["413", "415", "422"] {
                    assert!(r.get(code).is_some(), "{m} {path} lacks {code}");
                }
            }
            for (code, resp) in r.as_object().unwrap() {
                if code.starts_with('4') || code.starts_with('5') {
                    let ok = resp.get("$ref").is_some()
                        || resp["content"]["application/problem+json"].is_object();
                    assert!(ok, "{m} {path} {code} is not problem+json: {resp}");
                }
            }
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        // A parameter's $ref is not collected into components by utoipa (schemathesis
        // reported `#/components/schemas/LogLevel` unresolvable): such types are inlined.
        let doc = crate::api::openapi();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let missing: Vec<&str> = text
            .split("\"#/components/schemas/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|name| !schemas.contains_key(*name))
            .collect();
        assert!(missing.is_empty(), "unresolvable schema refs: {missing:?}");
    }

    #[test]
    fn path_parameters_are_in_the_path_and_query_parameters_are_not() {
        let doc = crate::api::openapi();
        for (m, path, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                match p["in"].as_str().unwrap() {
                    "path" => assert!(in_template, "{m} {path}: {name} is no path parameter"),
                    _ => assert!(!in_template, "{m} {path}: {name} is in the path"),
                }
            }
        }
    }

    /// utoipa keys components by name, so two types of one name silently share one
    /// schema. Each area's routes are documented alone here and a name two areas define
    /// differently fails, naming both.
    #[test]
    fn component_names_are_unique_across_areas() {
        let mut seen: HashMap<String, (String, Value)> = HashMap::new();
        let mut docs: Vec<(String, utoipa::openapi::OpenApi)> = crate::areas::ALL
            .iter()
            .map(|a| (a.name().to_string(), a.routes().split_for_parts().1))
            .collect();
        docs.push((
            "public".into(),
            crate::api::public_routes().split_for_parts().1,
        ));
        for (area, doc) in docs {
            let v = serde_json::to_value(&doc).unwrap();
            for (name, schema) in v["components"]["schemas"]
                .as_object()
                .cloned()
                .unwrap_or_default()
            {
                if let Some((other, s)) = seen.get(&name) {
                    assert_eq!(
                        s, &schema,
                        "component {name} is defined differently by {other} and {area}"
                    );
                } else {
                    seen.insert(name, (area.clone(), schema));
                }
            }
        }
    }

    #[test]
    fn protected_posts_take_an_idempotency_key_except_key_creation() {
        let doc = crate::api::openapi();
        for (m, path, op) in operations(&doc) {
            let has = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "Idempotency-Key");
            let protected = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let expect = m == "post" && protected && !IDEMPOTENCY_EXEMPT.contains(&path.as_str());
            assert_eq!(has, expect, "{m} {path}");
        }
    }
}
