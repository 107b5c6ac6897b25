//! Config schemas: [`schema_for`] derives one from a Rust type (with `schemars`), and
//! [`validate`] checks a JSON value against one, reporting every violation with its
//! place in the value.
//!
//! The validator reads the subset of JSON Schema (draft 2020-12) that config schemas
//! use, including everything `schemars` emits: `type` (a `null` alternative is left
//! out of messages: TOML has no null), `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `propertyNames`, `dependentRequired`, `minProperties`,
//! `items`, `prefixItems`, `minItems`, `maxItems`, `minLength`, `maxLength`,
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `pattern` (with the
//! `regex` feature), `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` and local `$ref`s
//! (`#/$defs/…`). Unknown keywords are ignored, as JSON Schema says. kazi checks goal
//! files with this same code, so a guest and the host never disagree about a config.

use schemars::JsonSchema;
use serde_json::Value;

/// The JSON Schema (draft 2020-12) of `T`, with every subschema inlined (no `$ref`
/// for non-recursive types), doc comments as descriptions.
pub fn schema_for<T: JsonSchema>() -> Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// One violation: where (the keys and indexes leading to the value) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Keys and array indexes from the root of the value; empty for the value itself.
    pub path: Vec<String>,
    /// A fragment that reads after the value's name: `must be a string, found an integer 3`.
    pub message: String,
    pub hint: Option<String>,
}

impl Violation {
    /// The place as a JSON pointer (RFC 6901): `/run/0`; empty for the root.
    pub fn pointer(&self) -> String {
        pointer(&self.path)
    }
}

/// A JSON pointer (RFC 6901) from keys and indexes: `~` and `/` are escaped.
pub fn pointer<S: AsRef<str>>(path: &[S]) -> String {
    path.iter()
        .map(|p| format!("/{}", p.as_ref().replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The keys and indexes of a JSON pointer; `None` when it is not one (a non-empty
/// pointer starts with `/`).
pub fn parse_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// How deep `$ref`s may chain without the value getting deeper (a guard against a
/// schema that refers to itself).
const MAX_REF_DEPTH: usize = 32;

/// Validate `value` against `schema`; an empty list means valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let cx = Cx { root: schema };
    cx.check(schema, value, &mut Vec::new(), &mut out, 0);
    out
}

struct Cx<'s> {
    root: &'s Value,
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

/// A type as a person reads it in a goal file (a JSON object is a TOML table).
fn article(t: &str) -> String {
    match t {
        "integer" | "array" => format!("an {t}"),
        "object" => "a table".into(),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

/// The types a schema allows, `null` left out when there are others.
fn schema_types(s: &serde_json::Map<String, Value>) -> Vec<&str> {
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.len() > 1 {
        types.into_iter().filter(|t| *t != "null").collect()
    } else {
        types
    }
}

/// What a schema's own `type` asks for, for a message: `a string`, `an array of
/// strings`, `an integer or a string`.
fn expectation(schema: &Value) -> Option<String> {
    let s = schema.as_object()?;
    let types = schema_types(s);
    if types.is_empty() {
        return None;
    }
    let items = s
        .get("items")
        .and_then(Value::as_object)
        .map(schema_types)
        .filter(|t| t.len() == 1)
        .map(|t| match t[0] {
            "object" => "tables".to_owned(),
            "null" => "nulls".to_owned(),
            other => format!("{other}s"),
        });
    Some(
        types
            .iter()
            .map(|t| match (*t, &items) {
                ("array", Some(items)) => format!("an array of {items}"),
                _ => article(t),
            })
            .collect::<Vec<_>>()
            .join(" or "),
    )
}

fn short(v: &Value) -> String {
    crate::text::truncate(&v.to_string(), 60).into_owned()
}

fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => format!("{} {}", article(type_of(other)), short(other)),
    }
}

/// The known key closest to `word`, when it is close enough to be a typo: one edit
/// (a transposition counts as one) for a short key, a third of it for a long one.
fn close_key<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (crate::text::edit_distance(word, k), *k))
        .filter(|(d, k)| {
            let len = k.chars().count();
            let limit = if len >= 6 { (len / 3).max(2) } else { 1 };
            *d <= limit && *d < len
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `for example: key = value`, from the schema's first `examples` entry.
fn example_hint(s: &serde_json::Map<String, Value>, path: &[String]) -> Option<String> {
    let example = s.get("examples")?.as_array()?.first()?;
    let key = path.last()?;
    Some(format!("for example: {key} = {example}"))
}

fn push(out: &mut Vec<Violation>, path: &[String], message: String) {
    out.push(Violation {
        path: path.to_vec(),
        message,
        hint: None,
    });
}

impl Cx<'_> {
    /// The schema a local `$ref` (`#/$defs/Name`, `#/definitions/Name`, `#`) points at.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        path: &mut Vec<String>,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        let Value::Object(s) = schema else {
            if schema == &Value::Bool(false) {
                push(out, path, "is not allowed".into());
            }
            return;
        };
        if let Some(Value::String(reference)) = s.get("$ref") {
            match self.resolve(reference) {
                Some(target) if depth < MAX_REF_DEPTH => {
                    self.check(target, value, path, out, depth + 1);
                }
                _ => {}
            }
        }
        let types = schema_types(s);
        // `null` stays out of messages, but a schema that lists it allows it.
        let null_allowed = value.is_null()
            && matches!(s.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "null"));
        if !types.is_empty() && !null_allowed && !types.iter().any(|t| type_matches(t, value)) {
            let expected = expectation(schema).unwrap_or_default();
            out.push(Violation {
                path: path.clone(),
                message: format!("must be {expected}, found {}", found(value)),
                hint: example_hint(s, path),
            });
            return;
        }
        if let Some(Value::Array(options)) = s.get("enum")
            && !options
                .iter()
                .any(|o| crate::json_path::values_equal(o, value))
        {
            let list: Vec<String> = options
                .iter()
                .filter(|o| !o.is_null() || value.is_null())
                .map(|o| o.to_string())
                .collect();
            let mut v = Violation {
                path: path.clone(),
                message: format!("must be one of {}, found {}", list.join(", "), short(value)),
                hint: None,
            };
            if let Value::String(text) = value {
                let names: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
                v.hint = close_key(text, &names).map(|m| format!("did you mean \"{m}\"?"));
            }
            out.push(v);
        }
        if let Some(c) = s.get("const")
            && !crate::json_path::values_equal(c, value)
        {
            push(out, path, format!("must be {c}, found {}", short(value)));
        }
        match value {
            Value::Object(map) => self.check_object(s, map, path, out, depth),
            Value::Array(items) => self.check_array(s, items, path, out, depth),
            Value::String(text) => check_string(s, text, value, path, out),
            Value::Number(n) => check_number(s, n, path, out),
            _ => {}
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, value, path, out, depth);
            }
        }
        if let Some(Value::Array(any)) = s.get("anyOf") {
            let results: Vec<Vec<Violation>> = any
                .iter()
                .map(|sub| self.validate_at(sub, value, path, depth))
                .collect();
            if !results.iter().any(Vec::is_empty) {
                out.extend(explain(any, results, value, path));
            }
        }
        if let Some(Value::Array(one)) = s.get("oneOf") {
            let results: Vec<Vec<Violation>> = one
                .iter()
                .map(|sub| self.validate_at(sub, value, path, depth))
                .collect();
            let passing = results.iter().filter(|r| r.is_empty()).count();
            if passing == 0 {
                out.extend(explain(one, results, value, path));
            } else if passing > 1 {
                push(
                    out,
                    path,
                    "matches more than one of the allowed forms; it is ambiguous".into(),
                );
            }
        }
        if let Some(condition) = s.get("if") {
            let branch = if self.validate_at(condition, value, path, depth).is_empty() {
                s.get("then")
            } else {
                s.get("else")
            };
            if let Some(branch) = branch {
                self.check(branch, value, path, out, depth);
            }
        }
        if let Some(not) = s.get("not")
            && self.validate_at(not, value, path, depth).is_empty()
        {
            let what = not.get("description").and_then(Value::as_str).map_or_else(
                || "uses a combination that is not allowed".to_owned(),
                str::to_owned,
            );
            push(out, path, what);
        }
    }

    fn check_object(
        &self,
        s: &serde_json::Map<String, Value>,
        map: &serde_json::Map<String, Value>,
        path: &mut Vec<String>,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
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
                        .map(|d| format!(" ({})", first_sentence(d)))
                        .unwrap_or_default();
                    push(out, &p, format!("is required{what}"));
                }
            }
        }
        if let Some(Value::Object(deps)) = s.get("dependentRequired") {
            for (key, needs) in deps {
                if !map.contains_key(key) {
                    continue;
                }
                for need in needs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !map.contains_key(need) {
                        let mut p = path.clone();
                        p.push(key.clone());
                        push(out, &p, format!("needs `{need}`"));
                    }
                }
            }
        }
        for (k, v) in map {
            path.push(k.clone());
            if let Some(names) = s.get("propertyNames") {
                for mut violation in self.validate_at(names, &Value::String(k.clone()), path, depth)
                {
                    violation.message = format!("is not an allowed name: {}", violation.message);
                    out.push(violation);
                }
            }
            match props.and_then(|p| p.get(k)) {
                Some(sub) => self.check(sub, v, path, out, depth),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = props
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let hint = close_key(k, &known)
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
                    Some(sub @ Value::Object(_)) => self.check(sub, v, path, out, depth),
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

    fn check_array(
        &self,
        s: &serde_json::Map<String, Value>,
        items: &[Value],
        path: &mut Vec<String>,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            let message = if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must have at least {min} items")
            };
            push(out, path, message);
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            push(out, path, format!("must have at most {max} items"));
        }
        let prefix = s
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (i, item) in items.iter().enumerate() {
            let sub = prefix.get(i).or_else(|| s.get("items"));
            if let Some(sub) = sub {
                path.push(i.to_string());
                self.check(sub, item, path, out, depth);
                path.pop();
            }
        }
    }

    fn validate_at(
        &self,
        schema: &Value,
        value: &Value,
        path: &[String],
        depth: usize,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, value, &mut path.to_vec(), &mut out, depth);
        out
    }
}

/// Why `value` matches none of `branches`: when every branch wants another type,
/// one message naming them all; otherwise the violations of the closest branch.
fn explain(
    branches: &[Value],
    results: Vec<Vec<Violation>>,
    value: &Value,
    path: &[String],
) -> Vec<Violation> {
    // An enum written as one `const` per value (what schemars emits for an enum whose
    // variants have doc comments): say which values are allowed.
    let consts: Option<Vec<&Value>> = branches.iter().map(|b| b.get("const")).collect();
    if let Some(consts) = consts {
        let list: Vec<String> = consts.iter().map(|c| c.to_string()).collect();
        let names: Vec<&str> = consts.iter().filter_map(|c| c.as_str()).collect();
        return vec![Violation {
            path: path.to_vec(),
            message: format!("must be one of {}, found {}", list.join(", "), short(value)),
            hint: value
                .as_str()
                .and_then(|v| close_key(v, &names))
                .map(|m| format!("did you mean \"{m}\"?")),
        }];
    }
    let wrong_type: Vec<bool> = branches.iter().map(|b| !type_admits(b, value)).collect();
    if wrong_type.iter().all(|w| *w) {
        let mut wanted: Vec<String> = Vec::new();
        for b in branches {
            match expectation(b) {
                Some(e) if !wanted.contains(&e) => wanted.push(e),
                Some(_) => {}
                None => return closest(results, &wrong_type),
            }
        }
        let wanted: Vec<String> = wanted.into_iter().filter(|w| w != "null").collect();
        return vec![Violation {
            path: path.to_vec(),
            message: format!("must be {}, found {}", wanted.join(" or "), found(value)),
            hint: None,
        }];
    }
    closest(results, &wrong_type)
}

fn check_string(
    s: &serde_json::Map<String, Value>,
    text: &str,
    value: &Value,
    path: &[String],
    out: &mut Vec<Violation>,
) {
    let len = text.chars().count() as u64;
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        let message = if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters")
        };
        push(out, path, message);
    }
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        push(out, path, format!("must be at most {max} characters"));
    }
    #[cfg(feature = "regex")]
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && let Ok(re) = regex_lite::Regex::new(pattern)
        && !re.is_match(text)
    {
        push(
            out,
            path,
            format!("{} does not match the pattern /{pattern}/", short(value)),
        );
    }
    #[cfg(not(feature = "regex"))]
    let _ = value;
}

fn check_number(
    s: &serde_json::Map<String, Value>,
    n: &serde_json::Number,
    path: &[String],
    out: &mut Vec<Violation>,
) {
    let x = n.as_f64().unwrap_or(0.0);
    if let Some(min) = s.get("minimum").and_then(Value::as_f64)
        && x < min
    {
        push(
            out,
            path,
            format!("must be at least {}, found {n}", num(min)),
        );
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64)
        && x > max
    {
        push(
            out,
            path,
            format!("must be at most {}, found {n}", num(max)),
        );
    }
    if let Some(min) = s.get("exclusiveMinimum").and_then(Value::as_f64)
        && x <= min
    {
        push(
            out,
            path,
            format!("must be more than {}, found {n}", num(min)),
        );
    }
    if let Some(max) = s.get("exclusiveMaximum").and_then(Value::as_f64)
        && x >= max
    {
        push(
            out,
            path,
            format!("must be less than {}, found {n}", num(max)),
        );
    }
}

/// A bound without a needless `.0`.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// The first sentence of a description, on one line, for a short "is required (…)".
fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = text
        .match_indices(". ")
        .find(|(i, _)| text[i + 2..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(text.len(), |(i, _)| i);
    text[..end].trim_end_matches('.').to_owned()
}

/// Whether `schema`'s own `type` (if any) admits `value`: the branch of a `oneOf` or
/// `anyOf` that has the right type explains a failure better than one that does not.
fn type_admits(schema: &Value, value: &Value) -> bool {
    match schema.as_object() {
        Some(s) => {
            let types = schema_types(s);
            types.is_empty() || types.iter().any(|t| type_matches(t, value))
        }
        None => true,
    }
}

/// The violations of the branch that best explains the failure: one of the right
/// type, with the fewest violations.
fn closest(results: Vec<Vec<Violation>>, wrong_type: &[bool]) -> Vec<Violation> {
    results
        .into_iter()
        .zip(wrong_type)
        .min_by_key(|(v, wrong)| (**wrong, v.len()))
        .map(|(v, _)| v)
        .unwrap_or_default()
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
                "url": {"type": "string", "minLength": 1, "description": "the address. More text."},
                "method": {"enum": ["GET", "POST"]},
                "samples": {"type": "integer", "minimum": 1, "examples": [3]},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "run": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "count": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]}
            }
        })
    }

    fn messages(v: Value) -> Vec<String> {
        validate(&schema(), &v)
            .into_iter()
            .map(|v| format!("{}: {}", v.pointer(), v.message))
            .collect()
    }

    #[test]
    fn a_valid_config_passes() {
        assert!(messages(json!({"url": "http://x", "method": "GET", "samples": 3, "headers": {"a": "b"}, "run": ["x"], "count": ">= 2"})).is_empty());
        assert!(messages(json!({"url": "u", "count": 3})).is_empty());
    }

    #[test]
    fn missing_required_names_the_key_and_its_description() {
        assert_eq!(messages(json!({})), vec!["/url: is required (the address)"]);
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean() {
        let v = validate(&schema(), &json!({"url": "u", "metod": "GET"}));
        assert_eq!(v[0].path, vec!["metod"]);
        assert_eq!(v[0].hint.as_deref(), Some("did you mean `method`?"));
        let v = validate(&schema(), &json!({"url": "u", "frobnicate": 1}));
        assert!(v[0].hint.as_deref().unwrap().starts_with("known keys: "));
    }

    #[test]
    fn types_enums_and_bounds() {
        assert_eq!(
            messages(json!({"url": 3})),
            vec!["/url: must be a string, found an integer 3"]
        );
        let v = validate(&schema(), &json!({"url": "u", "method": "GTE"}));
        assert_eq!(v[0].message, r#"must be one of "GET", "POST", found "GTE""#);
        assert_eq!(v[0].hint.as_deref(), Some("did you mean \"GET\"?"));
        let v = validate(&schema(), &json!({"url": "u", "samples": "three"}));
        assert_eq!(v[0].hint.as_deref(), Some("for example: samples = 3"));
        assert_eq!(
            messages(json!({"url": "u", "samples": 0})),
            vec!["/samples: must be at least 1, found 0"]
        );
        assert_eq!(
            messages(json!({"url": "u", "run": []})),
            vec!["/run: must not be empty"]
        );
        assert_eq!(
            messages(json!({"url": "u", "run": [1]})),
            vec!["/run/0: must be a string, found an integer 1"]
        );
        assert_eq!(
            messages(json!({"url": "u", "headers": {"a/b": 1}})),
            vec!["/headers/a~1b: must be a string, found an integer 1"]
        );
        assert_eq!(
            messages(json!({"url": "u", "headers": []})),
            vec!["/headers: must be a table, found an array []"]
        );
        assert_eq!(
            messages(json!({"url": ""})),
            vec!["/url: must not be empty"]
        );
    }

    #[test]
    fn one_of_reports_the_closest_form_or_every_type() {
        let m = messages(json!({"url": "u", "count": "3"}));
        assert_eq!(m, vec!["/count: must be at least 2 characters"]);
        let m = messages(json!({"url": "u", "count": true}));
        assert_eq!(
            m,
            vec!["/count: must be an integer or a string, found a boolean true"]
        );
    }

    #[test]
    fn an_enum_of_consts_lists_its_values() {
        let s = json!({"oneOf": [
            {"type": "string", "const": "stdin", "description": "on stdin"},
            {"type": "string", "const": "file"},
            {"type": "string", "const": "both"}
        ]});
        let v = validate(&s, &json!("fil"));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            r#"must be one of "stdin", "file", "both", found "fil""#
        );
        assert_eq!(v[0].hint.as_deref(), Some("did you mean \"file\"?"));
        assert!(validate(&s, &json!("both")).is_empty());
        // Two edits away from a four-letter value is no typo.
        assert_eq!(validate(&s, &json!("pipe"))[0].hint, None);
    }

    #[test]
    fn integers_are_numbers() {
        let s = json!({"type": "number"});
        assert!(validate(&s, &json!(3)).is_empty());
        assert!(validate(&json!({"type": "integer"}), &json!(3.0)).is_empty());
        assert!(!validate(&json!({"type": "integer"}), &json!(3.5)).is_empty());
    }

    #[test]
    fn if_then_else_applies_the_branch_the_condition_picks() {
        let s = json!({
            "type": "object",
            "if": {"properties": {"use": {"const": "a"}}, "required": ["use"]},
            "then": {"required": ["x"]},
            "else": {"properties": {"x": {"type": "integer"}}}
        });
        assert!(validate(&s, &json!({"use": "a", "x": "s"})).is_empty());
        assert_eq!(validate(&s, &json!({"use": "a"}))[0].message, "is required");
        assert!(validate(&s, &json!({"use": "b"})).is_empty());
        assert!(!validate(&s, &json!({"use": "b", "x": "s"})).is_empty());
    }

    #[test]
    fn null_alternatives_stay_out_of_messages() {
        let s = json!({"type": ["string", "null"]});
        assert!(validate(&s, &Value::Null).is_empty(), "listed, so allowed");
        assert_eq!(
            validate(&s, &json!(1))[0].message,
            "must be a string, found an integer 1"
        );
        let s =
            json!({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]});
        assert_eq!(
            validate(&s, &json!("x"))[0].message,
            "must be an array of strings, found a string \"x\""
        );
    }

    #[test]
    fn local_refs_resolve_and_self_references_end() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}},
            "$defs": {"A": {"type": "integer", "minimum": 0}, "Loop": {"$ref": "#/$defs/Loop"}}
        });
        assert_eq!(
            validate(&s, &json!({"a": -1}))[0].message,
            "must be at least 0, found -1"
        );
        let looping = json!({"$ref": "#/$defs/Loop", "$defs": {"Loop": {"$ref": "#/$defs/Loop"}}});
        assert!(validate(&looping, &json!(1)).is_empty());
    }

    #[test]
    fn prefix_items_dependent_required_and_property_names() {
        let s = json!({
            "type": "object",
            "properties": {
                "run": {"type": "array", "prefixItems": [{"type": "string", "minLength": 1}], "items": {"type": "string"}},
                "env": {"type": "object", "propertyNames": {"minLength": 2}},
                "json": {}, "pass_when": {}
            },
            "dependentRequired": {"json": ["pass_when"]}
        });
        let m: Vec<String> = validate(
            &s,
            &json!({"run": ["", "x"], "env": {"A": "1"}, "json": "a"}),
        )
        .into_iter()
        .map(|v| format!("{}: {}", v.pointer(), v.message))
        .collect();
        assert_eq!(
            m,
            [
                "/json: needs `pass_when`",
                "/env/A: is not an allowed name: must be at least 2 characters",
                "/run/0: must not be empty",
            ]
        );
    }

    #[test]
    fn pointers_escape_and_parse_back() {
        let path = vec!["a/b".to_owned(), "c~d".to_owned(), "0".to_owned()];
        let p = pointer(&path);
        assert_eq!(p, "/a~1b/c~0d/0");
        assert_eq!(parse_pointer(&p), Some(path));
        assert_eq!(parse_pointer(""), Some(vec![]));
        assert_eq!(parse_pointer("a"), None);
    }

    #[cfg(feature = "regex")]
    #[test]
    fn patterns_are_checked() {
        let s = json!({"type": "string", "pattern": "^[a-z]+$"});
        assert!(validate(&s, &json!("abc")).is_empty());
        assert_eq!(
            validate(&s, &json!("A"))[0].message,
            "\"A\" does not match the pattern /^[a-z]+$/"
        );
    }

    #[test]
    fn schemas_derived_from_types_are_inlined() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            /// How many.
            n: u32,
        }
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            inner: Option<Inner>,
            names: Vec<String>,
        }
        let s = schema_for::<Outer>();
        assert!(!s.to_string().contains("$ref"), "{s}");
        let m: Vec<String> = validate(&s, &json!({"inner": {"n": -1, "m": 1}, "names": [1]}))
            .into_iter()
            .map(|v| format!("{}: {}", v.pointer(), v.message))
            .collect();
        assert!(
            m.contains(&"/inner/m: is not a known key".to_owned()),
            "{m:?}"
        );
        assert!(
            m.contains(&"/names/0: must be a string, found an integer 1".to_owned()),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|x| x.starts_with("/inner/n: must be at least 0")),
            "{m:?}"
        );
    }
}
