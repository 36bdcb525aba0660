//! `echopilot ctl`: the ops-command protocol from scripts. Plans (dry-run) by default;
//! `--confirm` plans and then confirms exactly that plan.

use serde_json::{json, Map, Value};

pub struct CtlArgs {
    pub url: String,
    pub key: String,
    pub tenant: Option<String>,
    pub verb: Option<String>,
    pub args: Vec<String>,
    pub confirm: bool,
    pub reason: Option<String>,
    pub json: bool,
}

/// Parse `k=v` pairs; a value that is valid JSON (number, bool, object…) is taken as
/// such, anything else as a string.
pub fn parse_args(pairs: &[String]) -> Result<Value, String> {
    let mut map = Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--arg {p:?}: expected key=value"))?;
        if k.is_empty() {
            return Err(format!("--arg {p:?}: empty key"));
        }
        let value =
            serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(Value::Object(map))
}

struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
    tenant: Option<String>,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut rb = self
            .http
            .request(
                method,
                format!("{}{}", self.url.trim_end_matches('/'), path),
            )
            .header("X-Dash-Key", &self.key);
        if let Some(t) = &self.tenant {
            rb = rb.header("X-Tenant-Id", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            let detail = v["detail"].as_str().unwrap_or(&text);
            anyhow::bail!(
                "{} {}: {detail}",
                status.as_u16(),
                v["title"].as_str().unwrap_or("")
            );
        }
        Ok(v)
    }
}

pub async fn run(a: CtlArgs) -> anyhow::Result<()> {
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?,
        url: a.url.clone(),
        key: a.key.clone(),
        tenant: a.tenant.clone(),
    };
    let Some(verb) = a.verb.clone() else {
        let verbs = api
            .call(reqwest::Method::GET, "/api/v1/ops/verbs", None)
            .await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&verbs)?);
        } else {
            println!(
                "{:<20} {:<5} {:<10} DESCRIPTION",
                "VERB", "RISK", "MIN ROLE"
            );
            for v in verbs["verbs"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{:<20} {:<5} {:<10} {}",
                    v["name"].as_str().unwrap_or(""),
                    v["risk"].as_str().unwrap_or(""),
                    v["min_role"].as_str().unwrap_or(""),
                    v["description"].as_str().unwrap_or("")
                );
            }
        }
        return Ok(());
    };
    let args = parse_args(&a.args).map_err(|e| anyhow::anyhow!(e))?;
    let plan = api
        .call(
            reqwest::Method::POST,
            "/api/v1/ops/command",
            Some(json!({"verb": verb, "args": args, "confirm": false})),
        )
        .await?;
    if !a.confirm {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print_plan(&verb, &plan);
            println!(
                "\nnothing was changed (dry run); re-run with --confirm{} to execute",
                if plan["risk"] == "high" {
                    " --reason \"…\""
                } else {
                    ""
                }
            );
        }
        return Ok(());
    }
    if !a.json {
        print_plan(&verb, &plan);
    }
    let mut body = json!({"verb": verb, "args": args, "confirm": true, "plan_id": plan["plan_id"]});
    if let Some(r) = &a.reason {
        body["reason"] = Value::String(r.clone());
    }
    let result = api
        .call(reqwest::Method::POST, "/api/v1/ops/command", Some(body))
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "\nexecuted{}:",
            match result.get("audit_seq") {
                Some(Value::Number(n)) => format!(" (audit seq {n})"),
                _ => String::new(),
            }
        );
        println!(
            "{}",
            serde_json::to_string_pretty(result.get("result").unwrap_or(&result))?
        );
    }
    Ok(())
}

fn print_plan(verb: &str, plan: &Value) {
    println!(
        "plan for {verb} (risk {}):",
        plan["risk"].as_str().unwrap_or("?")
    );
    println!("  {}", plan["plan"]["summary"].as_str().unwrap_or(""));
    for (title, key) in [("steps", "steps"), ("effects", "effects")] {
        if let Some(items) = plan["plan"][key].as_array() {
            if !items.is_empty() {
                println!("  {title}:");
                for s in items {
                    match s.as_str() {
                        Some(t) => println!("    - {t}"),
                        None => println!("    - {s}"),
                    }
                }
            }
        }
    }
    println!(
        "  plan_id {} (expires {})",
        plan["plan_id"].as_str().unwrap_or("?"),
        plan["expires_at"].as_str().unwrap_or("?")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_typed_when_json() {
        let v =
            parse_args(&["lines=50".into(), "area=server".into(), "force=true".into()]).unwrap();
        assert_eq!(v, json!({"lines": 50, "area": "server", "force": true}));
        assert!(parse_args(&["novalue".into()]).is_err());
    }
}
