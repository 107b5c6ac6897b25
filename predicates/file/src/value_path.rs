//! Paths into a JSON or TOML document: `$.version`, `version.major`, `a.b[0]`,
//! `items[-1]` (counting from the end), `["key.with.dots"]`, and `$` for the whole
//! document. TOML documents are converted to JSON values first.

use std::fmt;

use serde_json::Value;

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePath {
    source: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl ValuePath {
    /// Parse a path; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<ValuePath, String> {
        let src = source.trim();
        let bad = |why: &str| format!("bad path `{source}`: {why}");
        let mut rest = src;
        let mut steps = Vec::new();
        let mut expect_key = true;
        if let Some(r) = rest.strip_prefix('$') {
            rest = r;
            expect_key = false;
        }
        if src.is_empty() {
            return Err(bad("it is empty; use `$` for the whole document"));
        }
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let close_at;
                if let Some(q @ ('"' | '\'')) = r.chars().next() {
                    let body = &r[1..];
                    let end = body.find(q).ok_or_else(|| bad("unclosed quote in `[…]`"))?;
                    steps.push(Step::Key(body[..end].to_owned()));
                    let after = &body[end + 1..];
                    if !after.starts_with(']') {
                        return Err(bad("expected `]` after a quoted key"));
                    }
                    close_at = 1 + end + 1;
                } else {
                    let end = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
                    let index = r[..end].trim();
                    let n: i64 = index.parse().map_err(|_| {
                        bad(&format!(
                            "`[{index}]` is not an index; quote keys as `[\"{index}\"]`"
                        ))
                    })?;
                    steps.push(Step::Index(n));
                    close_at = end;
                }
                rest = &r[close_at + 1..];
                expect_key = false;
                continue;
            }
            let r = match rest.strip_prefix('.') {
                Some(r) => r,
                None if expect_key => rest,
                None => return Err(bad("expected `.` or `[` between steps")),
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(bad("empty key; quote unusual keys as `[\"key\"]`"));
            }
            steps.push(Step::Key(key.to_owned()));
            rest = &r[end..];
            expect_key = false;
        }
        Ok(ValuePath {
            source: src.to_owned(),
            steps,
        })
    }

    /// The value at this path, if there is one.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut cur = root;
        for step in &self.steps {
            cur = match (step, cur) {
                (Step::Key(k), Value::Object(map)) => map.get(k)?,
                (Step::Index(i), Value::Array(items)) => {
                    let len = items.len() as i64;
                    let i = if *i < 0 { len + i } else { *i };
                    if i < 0 {
                        return None;
                    }
                    items.get(i as usize)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// Equality of JSON values where numbers compare by value (`1 == 1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A TOML value as JSON: datetimes become their TOML text, non-finite floats their
/// TOML spelling (`inf`, `nan`).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

/// A TOML table as a JSON object.
pub fn table_to_json(t: &toml::Table) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(path: &str, doc: &Value) -> Option<Value> {
        ValuePath::parse(path).unwrap().lookup(doc).cloned()
    }

    #[test]
    fn paths_in_every_spelling() {
        let doc = json!({"version": "1.0.0", "a": {"b": [10, 20, {"c": true}]}, "x.y": 1});
        assert_eq!(lookup("$.version", &doc), Some(json!("1.0.0")));
        assert_eq!(lookup("version", &doc), Some(json!("1.0.0")));
        assert_eq!(lookup("a.b[0]", &doc), Some(json!(10)));
        assert_eq!(lookup("$.a.b[2].c", &doc), Some(json!(true)));
        assert_eq!(lookup("a.b[-1].c", &doc), Some(json!(true)));
        assert_eq!(lookup("$[\"x.y\"]", &doc), Some(json!(1)));
        assert_eq!(lookup("['x.y']", &doc), Some(json!(1)));
        assert_eq!(lookup("$", &doc), Some(doc.clone()));
        assert_eq!(lookup("a.b[3]", &doc), None);
        assert_eq!(lookup("a.b[-4]", &doc), None);
        assert_eq!(lookup("version.major", &doc), None);
        assert_eq!(lookup("missing", &doc), None);
    }

    #[test]
    fn root_arrays() {
        let doc = json!([{"name": "a"}, {"name": "b"}]);
        assert_eq!(lookup("$[1].name", &doc), Some(json!("b")));
        assert_eq!(lookup("[0].name", &doc), Some(json!("a")));
    }

    #[test]
    fn bad_paths() {
        for (p, needle) in [
            ("", "empty"),
            ("a..b", "empty key"),
            ("a[", "unclosed `[`"),
            ("a[x]", "not an index"),
            ("a['x", "unclosed quote"),
            ("$version", "expected `.` or `[`"),
            ("a[0]b", "expected `.` or `[`"),
            ("a.", "empty key"),
        ] {
            let err = ValuePath::parse(p).unwrap_err();
            assert!(err.contains(needle), "{p}: {err}");
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(values_equal(&json!(1), &json!(1.0)));
        assert!(values_equal(
            &json!({"a": [1, 2.5]}),
            &json!({"a": [1.0, 2.5]})
        ));
        assert!(!values_equal(&json!(1), &json!("1")));
        assert!(!values_equal(&json!([1]), &json!([1, 2])));
        assert!(values_equal(&json!(u64::MAX), &json!(u64::MAX)));
    }

    #[test]
    fn toml_converts_to_json() {
        let t: toml::Table = "a = 1\nb = 2.5\nc = [true]\nd = 1979-05-27\n[e]\nf = \"g\"\n"
            .parse()
            .unwrap();
        assert_eq!(
            table_to_json(&t),
            json!({"a": 1, "b": 2.5, "c": [true], "d": "1979-05-27", "e": {"f": "g"}})
        );
    }
}
