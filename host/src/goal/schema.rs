//! A small JSON Schema validator: the subset predicate components use to declare
//! their config (type, enum, const, properties, required, additionalProperties,
//! items, min/max items and length, minimum/maximum, pattern, oneOf/anyOf/allOf,
//! not). Unknown schema keywords are ignored, as JSON Schema says.

use serde_json::Value;

/// One violation: where (a path of keys and indexes) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// Validate `value` against `schema`; an empty list means valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, value, &mut Vec::new(), &mut out);
    out
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    let actual = type_of(v);
    expected == actual
        || (expected == "number" && actual == "integer")
        || (expected == "integer" && v.as_f64().is_some_and(|f| f.fract() == 0.0))
}

fn article(t: &str) -> String {
    match t {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

fn check(schema: &Value, value: &Value, path: &mut Vec<String>, out: &mut Vec<Violation>) {
    let Value::Object(s) = schema else {
        if schema == &Value::Bool(false) {
            out.push(Violation {
                path: path.clone(),
                message: "is not allowed".into(),
                hint: None,
            });
        }
        return;
    };
    let push = |out: &mut Vec<Violation>, path: &Vec<String>, message: String| {
        out.push(Violation {
            path: path.clone(),
            message,
            hint: None,
        });
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
            let expected: Vec<String> = types.iter().map(|t| article(t)).collect();
            push(
                out,
                path,
                format!(
                    "must be {}, found {} {}",
                    expected.join(" or "),
                    article(type_of(value)),
                    short(value)
                ),
            );
            return;
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        push(
            out,
            path,
            format!("must be one of {}, found {}", list.join(", "), short(value)),
        );
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        push(out, path, format!("must be {c}, found {}", short(value)));
    }
    match value {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(required)) = s.get("required") {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        let mut p = path.clone();
                        p.push(r.to_owned());
                        let what = props
                            .and_then(|p| p.get(r))
                            .and_then(|d| d.get("description"))
                            .and_then(Value::as_str)
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default();
                        out.push(Violation {
                            path: p,
                            message: format!("is required{what}"),
                            hint: None,
                        });
                    }
                }
            }
            for (k, v) in map {
                path.push(k.clone());
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => check(sub, v, path, out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            let known: Vec<&str> = props
                                .map(|p| p.keys().map(String::as_str).collect())
                                .unwrap_or_default();
                            let hint = super::did_you_mean(k, known.iter().copied())
                                .map(|m| format!("did you mean `{m}`?"))
                                .or_else(|| {
                                    (!known.is_empty())
                                        .then(|| format!("known keys: {}", known.join(", ")))
                                });
                            out.push(Violation {
                                path: path.clone(),
                                message: "is not a known key".into(),
                                hint,
                            });
                        }
                        Some(sub @ Value::Object(_)) => check(sub, v, path, out),
                        _ => {}
                    },
                }
                path.pop();
            }
            if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
                && (map.len() as u64) < min
            {
                push(
                    out,
                    path,
                    format!(
                        "must have at least {min} entr{}",
                        if min == 1 { "y" } else { "ies" }
                    ),
                );
            }
        }
        Value::Array(items) => {
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                push(
                    out,
                    path,
                    format!(
                        "must have at least {min} item{}",
                        if min == 1 { "" } else { "s" }
                    ),
                );
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                push(out, path, format!("must have at most {max} items"));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    check(item_schema, item, path, out);
                    path.pop();
                }
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                push(
                    out,
                    path,
                    if min == 1 {
                        "must not be empty".into()
                    } else {
                        format!("must be at least {min} characters")
                    },
                );
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                push(out, path, format!("must be at most {max} characters"));
            }
            if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(text)
            {
                push(
                    out,
                    path,
                    format!("{} does not match the pattern /{pattern}/", short(value)),
                );
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                push(out, path, format!("must be at least {min}, found {n}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                push(out, path, format!("must be at most {max}, found {n}"));
            }
            if let Some(min) = s.get("exclusiveMinimum").and_then(Value::as_f64)
                && x <= min
            {
                push(out, path, format!("must be more than {min}, found {n}"));
            }
        }
        _ => {}
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(sub, value, path, out);
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf")
        && !any
            .iter()
            .any(|sub| validate_at(sub, value, path).is_empty())
    {
        let first = any
            .iter()
            .map(|sub| validate_at(sub, value, path))
            .min_by_key(Vec::len)
            .unwrap_or_default();
        out.extend(first);
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let results: Vec<Vec<Violation>> = one
            .iter()
            .map(|sub| validate_at(sub, value, path))
            .collect();
        let passing = results.iter().filter(|r| r.is_empty()).count();
        if passing == 0 {
            out.extend(closest(one, value, path));
        } else if passing > 1 {
            push(
                out,
                path,
                "matches more than one of the allowed forms; it is ambiguous".into(),
            );
        }
    }
    if let Some(not) = s.get("not")
        && validate_at(not, value, path).is_empty()
    {
        let what = not.get("description").and_then(Value::as_str).map_or_else(
            || "uses a combination that is not allowed".to_owned(),
            str::to_owned,
        );
        push(out, path, what);
    }
}

/// Whether `schema`'s own `type` (if any) admits `value`: the branch of a `oneOf` or
/// `anyOf` that has the right type explains a failure better than one that does not.
fn type_admits(schema: &Value, value: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => type_matches(t, value),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| type_matches(t, value)),
        _ => true,
    }
}

/// The violations of the branch that best explains why `value` matches none.
fn closest(branches: &[Value], value: &Value, path: &[String]) -> Vec<Violation> {
    branches
        .iter()
        .map(|sub| (!type_admits(sub, value), validate_at(sub, value, path)))
        .min_by_key(|(wrong_type, v)| (*wrong_type, v.len()))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn validate_at(schema: &Value, value: &Value, path: &[String]) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, value, &mut path.to_vec(), &mut out);
    out
}

fn short(v: &Value) -> String {
    crate::verdict::truncate_middle(&v.to_string(), 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "minLength": 1, "description": "the address"},
                "method": {"enum": ["GET", "POST"]},
                "samples": {"type": "integer", "minimum": 1},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "run": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "count": {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^(==|>=|<=|<|>|!=) ?\\d+$"}]}
            }
        })
    }

    fn messages(v: Value) -> Vec<String> {
        validate(&schema(), &v)
            .into_iter()
            .map(|v| format!("{}: {}", v.path.join("."), v.message))
            .collect()
    }

    #[test]
    fn a_valid_config_passes() {
        assert!(messages(json!({"url": "http://x", "method": "GET", "samples": 3, "headers": {"a": "b"}, "run": ["x"], "count": ">= 2"})).is_empty());
        assert!(messages(json!({"url": "u", "count": 3})).is_empty());
    }

    #[test]
    fn missing_required_names_the_key_and_its_description() {
        assert_eq!(messages(json!({})), vec!["url: is required (the address)"]);
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean() {
        let v = validate(&schema(), &json!({"url": "u", "metod": "GET"}));
        assert_eq!(v[0].path, vec!["metod"]);
        assert_eq!(v[0].hint.as_deref(), Some("did you mean `method`?"));
    }

    #[test]
    fn types_enums_and_bounds() {
        assert_eq!(
            messages(json!({"url": 3})),
            vec!["url: must be a string, found an integer 3"]
        );
        assert_eq!(
            messages(json!({"url": "u", "method": "PUT"})),
            vec![r#"method: must be one of "GET", "POST", found "PUT""#]
        );
        assert_eq!(
            messages(json!({"url": "u", "samples": 0})),
            vec!["samples: must be at least 1, found 0"]
        );
        assert_eq!(
            messages(json!({"url": "u", "run": []})),
            vec!["run: must have at least 1 item"]
        );
        assert_eq!(
            messages(json!({"url": "u", "run": [1]})),
            vec!["run.0: must be a string, found an integer 1"]
        );
        assert_eq!(
            messages(json!({"url": "u", "headers": {"a": 1}})),
            vec!["headers.a: must be a string, found an integer 1"]
        );
        assert_eq!(messages(json!({"url": ""})), vec!["url: must not be empty"]);
    }

    #[test]
    fn one_of_reports_the_closest_form() {
        let m = messages(json!({"url": "u", "count": "about 3"}));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("pattern"), "{m:?}");
    }

    #[test]
    fn integers_are_numbers() {
        let s = json!({"type": "number"});
        assert!(validate(&s, &json!(3)).is_empty());
        assert!(validate(&json!({"type": "integer"}), &json!(3.0)).is_empty());
        assert!(!validate(&json!({"type": "integer"}), &json!(3.5)).is_empty());
    }
}
