//! JSON goals as TOML text, in the order a goal file is usually written, and the one
//! edit `kazi propose` and `kazi approve` make to a drafted goal's text: setting or
//! removing `[scope] workspace` while keeping the rest as written.

use std::fmt::Write as _;

/// Why a goal could not be turned into (or edited as) TOML text.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not valid JSON: {source}")]
    NotJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("a JSON {kind}, not an object with the goal file's keys")]
    NotAnObject { kind: &'static str },
    #[error("{at} is null, which TOML cannot hold")]
    Null { at: String },
    #[error("not valid TOML: {source}")]
    NotToml {
        #[source]
        source: toml::de::Error,
    },
    #[error("`scope` is not a table")]
    ScopeNotTable,
    #[error("could not set `[scope] workspace`")]
    ScopeUnset,
}

/// JSON text of a goal as TOML text (see [`json_to_toml`]).
pub fn json_text_to_toml(text: &str) -> Result<String, RenderError> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|source| RenderError::NotJson { source })?;
    json_to_toml(&value)
}

/// A JSON goal (an object with the goal file's keys) as TOML text, in the order a
/// goal file is usually written. `null` members are left out.
pub fn json_to_toml(value: &serde_json::Value) -> Result<String, RenderError> {
    let serde_json::Value::Object(_) = value else {
        return Err(RenderError::NotAnObject {
            kind: json_type(value),
        });
    };
    match to_toml_value(value, "$")? {
        Some(toml::Value::Table(t)) => Ok(render(&t)),
        _ => unreachable!("an object converts to a table"),
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn to_toml_value(v: &serde_json::Value, at: &str) -> Result<Option<toml::Value>, RenderError> {
    use serde_json::Value as J;
    Ok(Some(match v {
        J::Null => return Ok(None),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("{at}[{i}]");
                match to_toml_value(item, &at)? {
                    Some(x) => out.push(x),
                    None => return Err(RenderError::Null { at }),
                }
            }
            toml::Value::Array(out)
        }
        J::Object(map) => {
            let mut t = toml::Table::new();
            for (k, item) in map {
                if let Some(x) = to_toml_value(item, &format!("{at}.{k}"))? {
                    t.insert(k.clone(), x);
                }
            }
            toml::Value::Table(t)
        }
    }))
}

/// Top-level keys, in the order a goal file is usually written.
const TOP_ORDER: &[&str] = &[
    "schema",
    "id",
    "name",
    "description",
    "mode",
    "standing",
    "interval",
];
const TABLE_ORDER: &[&str] = &["metadata", "budget", "scope", "agent"];
const PREDICATE_ORDER: &[&str] = &["id", "use", "description"];

fn ordered<'a>(t: &'a toml::Table, first: &[&str]) -> Vec<(&'a String, &'a toml::Value)> {
    let rank = |k: &str| first.iter().position(|f| *f == k).unwrap_or(first.len());
    let mut entries: Vec<_> = t.iter().collect();
    entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    entries
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

fn is_table_array(v: &toml::Value) -> bool {
    matches!(v, toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_table))
}

fn body(out: &mut String, t: &toml::Table, first: &[&str]) {
    for (k, v) in ordered(t, first) {
        let _ = writeln!(out, "{} = {v}", key(k));
    }
}

/// A goal as TOML text: scalars first, then `[metadata]`, `[budget]`, `[scope]`,
/// `[agent]`, other tables, the `[[predicate]]`s, and `[deploy]` last. Values nested
/// deeper are inline.
fn render(t: &toml::Table) -> String {
    let mut out = String::new();
    let mut tables = Vec::new();
    let mut arrays = Vec::new();
    for (k, v) in ordered(t, TOP_ORDER) {
        match v {
            toml::Value::Table(inner) => tables.push((k, inner)),
            _ if is_table_array(v) => arrays.push((k, v)),
            _ => {
                let _ = writeln!(out, "{} = {v}", key(k));
            }
        }
    }
    let rank = |k: &str| match k {
        "deploy" => TABLE_ORDER.len() + 1,
        _ => TABLE_ORDER
            .iter()
            .position(|f| *f == k)
            .unwrap_or(TABLE_ORDER.len()),
    };
    tables.sort_by_key(|(k, _)| rank(k));
    let (last, tables): (Vec<_>, Vec<_>) = tables.into_iter().partition(|(k, _)| *k == "deploy");
    for (k, inner) in tables {
        let _ = writeln!(out, "\n[{}]", key(k));
        body(&mut out, inner, &[]);
    }
    for (k, v) in arrays {
        for item in v.as_array().into_iter().flatten() {
            let _ = writeln!(out, "\n[[{}]]", key(k));
            body(&mut out, item.as_table().expect("checked"), PREDICATE_ORDER);
        }
    }
    for (k, inner) in last {
        let _ = writeln!(out, "\n[{}]", key(k));
        body(&mut out, inner, &[]);
    }
    out.trim_start_matches('\n').to_owned()
}

/// `text` with `[scope] workspace` set to `workspace` (or removed, for `None`),
/// keeping everything else as written where it can: the line under `[scope]` is
/// replaced, or a `[scope]` table appended. A goal that defines `scope` some other
/// way (inline, dotted keys) is rewritten whole, without its comments.
pub fn set_scope_workspace(text: &str, workspace: Option<&str>) -> Result<String, RenderError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|source| RenderError::NotToml { source })?;
    let mut expected = doc.clone();
    match workspace {
        Some(w) => {
            let scope = expected
                .entry("scope")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(scope) = scope.as_table_mut() else {
                return Err(RenderError::ScopeNotTable);
            };
            scope.insert("workspace".into(), toml::Value::String(w.to_owned()));
        }
        None => {
            if let Some(scope) = expected.get_mut("scope").and_then(|s| s.as_table_mut()) {
                scope.remove("workspace");
            }
        }
    }
    if expected == doc {
        return Ok(text.to_owned());
    }
    let same = |t: &str| t.parse::<toml::Table>().is_ok_and(|d| d == expected);
    let line = workspace.map(|w| format!("workspace = {}", toml::Value::String(w.to_owned())));
    let lines: Vec<&str> = text.lines().collect();
    let is_header = |l: &str| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .is_some_and(|inner| !inner.starts_with('[') && inner.trim() == "scope")
    };
    if let Some(h) = lines.iter().position(|l| is_header(l)) {
        let mut out: Vec<String> = lines[..=h].iter().map(|l| (*l).to_owned()).collect();
        out.extend(line.clone());
        let mut in_scope = true;
        for l in &lines[h + 1..] {
            if l.trim_start().starts_with('[') {
                in_scope = false;
            }
            let is_ws = l
                .trim_start()
                .strip_prefix("workspace")
                .is_some_and(|r| r.trim_start().starts_with('='));
            if !(in_scope && is_ws) {
                out.push((*l).to_owned());
            }
        }
        let edited = out.join("\n") + "\n";
        if same(&edited) {
            return Ok(edited);
        }
    } else if !doc.contains_key("scope")
        && let Some(line) = &line
    {
        let edited = format!("{}\n\n[scope]\n{line}\n", text.trim_end());
        if same(&edited) {
            return Ok(edited);
        }
    }
    let rendered = render(&expected);
    if same(&rendered) {
        Ok(rendered)
    } else {
        Err(RenderError::ScopeUnset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAL: &str = "id = \"hello\"\n\n[[predicate]]\nid = \"hello\"\nuse = \"file\"\npath = \"hello.txt\"\ncontains = \"hello\"\n";

    #[test]
    fn the_scope_workspace_is_replaced_in_place_or_appended() {
        let with = "id = \"a\" # the id\n\n[scope]\nworkspace = \".\"\nwritable = [\"src/\"]\n\n[[predicate]]\nid = \"p\"\n";
        assert_eq!(
            set_scope_workspace(with, None).unwrap(),
            "id = \"a\" # the id\n\n[scope]\nwritable = [\"src/\"]\n\n[[predicate]]\nid = \"p\"\n"
        );
        assert_eq!(
            set_scope_workspace(with, Some("../..")).unwrap(),
            "id = \"a\" # the id\n\n[scope]\nworkspace = \"../..\"\nwritable = [\"src/\"]\n\n[[predicate]]\nid = \"p\"\n"
        );
        assert_eq!(
            set_scope_workspace(GOAL, Some("../..")).unwrap(),
            format!("{}\n\n[scope]\nworkspace = \"../..\"\n", GOAL.trim_end())
        );
        assert_eq!(set_scope_workspace(GOAL, None).unwrap(), GOAL);
        let inline = "id = \"a\"\nscope = { writable = [\"src/\"], workspace = \"x\" }\n";
        let out = set_scope_workspace(inline, Some("../..")).unwrap();
        let t: toml::Table = out.parse().unwrap();
        assert_eq!(t["scope"]["workspace"].as_str(), Some("../.."));
        assert_eq!(t["scope"]["writable"][0].as_str(), Some("src/"));
    }

    #[test]
    fn what_cannot_be_rendered_says_why() {
        let e = json_text_to_toml("{\"id\": ").unwrap_err().to_string();
        assert!(e.starts_with("not valid JSON: "), "{e}");
        let e = json_to_toml(&serde_json::json!([1]))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "a JSON array, not an object with the goal file's keys");
        let e = json_to_toml(&serde_json::json!({"a": {"b": [1, null]}}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "$.a.b[1] is null, which TOML cannot hold");
        let e = set_scope_workspace("id = ", None).unwrap_err().to_string();
        assert!(e.starts_with("not valid TOML: "), "{e}");
        let e = set_scope_workspace("scope = 1\n", Some("..")).unwrap_err();
        assert_eq!(e.to_string(), "`scope` is not a table");
    }
}
