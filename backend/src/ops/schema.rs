//! The small JSON Schema subset verbs use for their args, and its validator.
//!
//! Verb args are flat objects of scalars, so the supported keywords are: `type`
//! (`object` at the top; `string`, `integer`, `number`, `boolean` for properties),
//! `properties`, `required`, `additionalProperties: false` (always enforced), `enum`,
//! `minimum`, `maximum`, `minLength`, `maxLength` and `default`. Validation also fills in
//! defaults, so `{}` and `{"lines": 100}` normalise to the same canonical args.

use serde_json::{Map, Value};

/// Validate `args` (null counts as `{}`) against `schema`; returns the args with
/// defaults applied, or a message naming the offending field.
pub fn validate(schema: &Value, args: &Value) -> Result<Value, String> {
    let obj = match args {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => {
            return Err(format!(
                "args must be a JSON object, got {}",
                type_name(other)
            ))
        }
    };
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for k in obj.keys() {
        if !props.contains_key(k) {
            let known: Vec<&str> = props.keys().map(String::as_str).collect();
            return Err(if known.is_empty() {
                format!("unknown argument {k:?}: this verb takes no arguments")
            } else {
                format!(
                    "unknown argument {k:?}; expected one of: {}",
                    known.join(", ")
                )
            });
        }
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, prop) in props {
        let v = match obj.get(name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => match prop.get("default") {
                Some(d) => d.clone(),
                None if required.contains(&name.as_str()) => {
                    return Err(format!("missing required argument {name:?}"))
                }
                None => continue,
            },
        };
        let v = coerce(prop, v);
        check_prop(name, prop, &v)?;
        out.insert(name.clone(), v);
    }
    Ok(Value::Object(out))
}

/// Clients differ in how they type scalars (`ctl --arg lines=50` may send a string, a
/// form may send `"50"`): accept a value that converts losslessly to the declared type,
/// so every client normalises to the same canonical args.
fn coerce(prop: &Value, v: Value) -> Value {
    let ty = prop.get("type").and_then(Value::as_str);
    if ty == Some("string") && v.is_number() {
        // `--arg id=42` arrives as a number; an id is still a string.
        return Value::String(v.to_string());
    }
    let Value::String(s) = &v else { return v };
    let t = s.trim();
    match ty {
        Some("integer") => t.parse::<i64>().map(Value::from).unwrap_or(v),
        Some("number") => t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .unwrap_or(v),
        Some("boolean") => match t {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => v,
        },
        _ => v,
    }
}

fn check_prop(name: &str, prop: &Value, v: &Value) -> Result<(), String> {
    let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
    let ok = match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "argument {name:?} must be of type {ty}, got {}",
            type_name(v)
        ));
    }
    if let Some(allowed) = prop.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!(
                "argument {name:?} must be one of {}, got {v}",
                list.join(", ")
            ));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = prop.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("argument {name:?} must be ≥ {min}, got {v}"));
            }
        }
        if let Some(max) = prop.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("argument {name:?} must be ≤ {max}, got {v}"));
            }
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = prop.get("minLength").and_then(Value::as_u64) {
            if len < min {
                return Err(format!(
                    "argument {name:?} must be at least {min} characters"
                ));
            }
        }
        if let Some(max) = prop.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                return Err(format!(
                    "argument {name:?} must be at most {max} characters"
                ));
            }
        }
        if s.chars().any(char::is_control) {
            return Err(format!(
                "argument {name:?} must not contain control characters"
            ));
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "area": {"type": "string", "enum": ["server", "queue"]},
                "lines": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "id": {"type": "string", "minLength": 1, "maxLength": 8}
            },
            "required": ["area"],
            "additionalProperties": false
        })
    }

    #[test]
    fn fills_defaults_and_checks_types() {
        let s = schema();
        assert_eq!(
            validate(&s, &json!({"area": "server"})).unwrap(),
            json!({"area": "server", "lines": 100})
        );
        assert!(validate(&s, &json!({})).unwrap_err().contains("missing"));
        assert!(validate(&s, &json!({"area": "x"}))
            .unwrap_err()
            .contains("one of"));
        assert!(validate(&s, &json!({"area": "server", "lines": 0}))
            .unwrap_err()
            .contains("≥ 1"));
        assert!(validate(&s, &json!({"area": "server", "lines": "5x"}))
            .unwrap_err()
            .contains("integer"));
        assert_eq!(
            validate(&s, &json!({"area": "server", "lines": "5"})).unwrap()["lines"],
            json!(5)
        );
        assert!(validate(&s, &json!({"area": "server", "nope": 1}))
            .unwrap_err()
            .contains("unknown argument"));
        assert!(validate(&s, &json!({"area": "server", "id": "123456789"}))
            .unwrap_err()
            .contains("at most 8"));
        assert!(validate(&s, &json!([1])).unwrap_err().contains("object"));
        let none = json!({"type": "object", "properties": {}});
        assert_eq!(validate(&none, &Value::Null).unwrap(), json!({}));
        assert!(validate(&none, &json!({"a": 1}))
            .unwrap_err()
            .contains("takes no arguments"));
    }
}
