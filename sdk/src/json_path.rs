//! Paths into a JSON document, as predicates' configs spell them: `$.a.b`, `a.b`,
//! `a.b[0]`, `items[-1]` (counting from the end), `$["key.with.dots"]` or `['k']`, and
//! `$` for the whole document; and [`values_equal`] to compare what a path finds.

use std::fmt;

use serde_json::Value;

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    source: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl JsonPath {
    /// Parse a path; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<JsonPath, String> {
        let src = source.trim();
        let bad = |why: &str| format!("bad path `{source}`: {why}");
        if src.is_empty() {
            return Err(bad("it is empty; use `$` for the whole document"));
        }
        let mut rest = src;
        let mut steps = Vec::new();
        // A leading key needs no dot (`status`); after `$` or a step, one is required.
        let mut dot_optional = true;
        if let Some(r) = rest.strip_prefix('$') {
            rest = r;
            dot_optional = false;
        }
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let (step, after) = bracket(r).map_err(|why| bad(&why))?;
                steps.push(step);
                rest = after;
            } else {
                let r = match rest.strip_prefix('.') {
                    Some(r) => r,
                    None if dot_optional => rest,
                    None => return Err(bad("expected `.` or `[` between steps")),
                };
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(bad("empty key; quote unusual keys as `[\"key\"]`"));
                }
                steps.push(Step::Key(r[..end].to_owned()));
                rest = &r[end..];
            }
            dot_optional = false;
        }
        Ok(JsonPath {
            source: src.to_owned(),
            steps,
        })
    }

    /// The value at this path, if there is one.
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.steps
            .iter()
            .try_fold(root, |cur, step| match (step, cur) {
                (Step::Key(k), Value::Object(map)) => map.get(k),
                (Step::Index(i), Value::Array(items)) => {
                    let i = if *i < 0 {
                        i.checked_add(items.len() as i64)?
                    } else {
                        *i
                    };
                    items.get(usize::try_from(i).ok()?)
                }
                _ => None,
            })
    }
}

/// One `[…]` step (after its `[`): a quoted key or an index; returns what follows `]`.
fn bracket(r: &str) -> Result<(Step, &str), String> {
    if let Some(q @ ('"' | '\'')) = r.chars().next() {
        let body = &r[1..];
        let end = body
            .find(q)
            .ok_or_else(|| "unclosed quote in `[…]`".to_owned())?;
        let after = body[end + 1..]
            .strip_prefix(']')
            .ok_or_else(|| "expected `]` after a quoted key".to_owned())?;
        return Ok((Step::Key(body[..end].to_owned()), after));
    }
    let end = r.find(']').ok_or_else(|| "unclosed `[`".to_owned())?;
    let index = r[..end].trim();
    let n = index
        .parse::<i64>()
        .map_err(|_| format!("`[{index}]` is not an index; quote keys as `[\"{index}\"]`"))?;
    Ok((Step::Index(n), &r[end + 1..]))
}

/// Equality of JSON values where numbers compare by value (`1 == 1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(path: &str, doc: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().lookup(doc).cloned()
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

        let doc = json!({"status": "ok", "items": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(lookup("$.status", &doc), Some(json!("ok")));
        assert_eq!(lookup("status", &doc), Some(json!("ok")));
        assert_eq!(lookup("$.items[0].name", &doc), Some(json!("a")));
        assert_eq!(lookup("items[-1].name", &doc), Some(json!("b")));
        assert_eq!(lookup("items[2]", &doc), None);
        assert_eq!(lookup("items[-3]", &doc), None);
        assert_eq!(lookup("status.code", &doc), None);
    }

    #[test]
    fn root_arrays() {
        let doc = json!([{"name": "a"}, {"name": "b"}]);
        assert_eq!(lookup("$[1].name", &doc), Some(json!("b")));
        assert_eq!(lookup("[0].name", &doc), Some(json!("a")));
        assert_eq!(lookup("[-9223372036854775808]", &doc), None);
    }

    #[test]
    fn bad_paths() {
        for (p, needle) in [
            ("", "empty"),
            ("a..b", "empty key"),
            ("a[", "unclosed `[`"),
            ("a[x]", "not an index"),
            ("a['x", "unclosed quote"),
            ("a['x'", "expected `]`"),
            ("$version", "expected `.` or `[`"),
            ("a[0]b", "expected `.` or `[`"),
            ("a.", "empty key"),
        ] {
            let err = JsonPath::parse(p).unwrap_err();
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
        assert!(values_equal(
            &json!({"a": [1, 2.0]}),
            &json!({"a": [1.0, 2]})
        ));
        assert!(!values_equal(&json!(1), &json!("1")));
        assert!(!values_equal(&json!([1]), &json!([1, 2])));
        assert!(!values_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(values_equal(&json!(u64::MAX), &json!(u64::MAX)));
    }
}
