//! The `file` predicate's config: parsed and checked once, without I/O. Every
//! problem here is a config error (an `error` verdict the host refuses at load),
//! never a `fail`.

use std::fmt;

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use kazi_sdk::unknown_key_error;
use regex_lite::{Regex, RegexBuilder};

use crate::glob::Glob;

/// Every config key, in the order the checks run.
pub const KEYS: &[&str] = &[
    "path",
    "glob",
    "exists",
    "absent",
    "count",
    "equals",
    "sha256",
    "contains",
    "not_contains",
    "matches",
    "not_matches",
    "json",
    "toml",
];

/// What to check.
#[derive(Debug)]
pub struct Spec {
    pub target: Target,
    /// `Some(true)`: must exist; `Some(false)`: must be absent; `None`: implied by
    /// the other checks (a missing file fails any content check).
    pub presence: Option<bool>,
    /// Glob only: a condition on the number of matching files.
    pub count: Option<Comparison>,
    /// Content checks, applied to the file (or every matching file).
    pub checks: Vec<Check>,
}

/// The file, or the files, to check.
#[derive(Debug)]
pub enum Target {
    Path(String),
    Glob(Glob),
}

/// One content check.
#[derive(Debug)]
pub enum Check {
    Equals(String),
    /// Lower-case hex digest.
    Sha256(String),
    Contains(String),
    NotContains(String),
    Matches(Regex),
    NotMatches(Regex),
    Json(Vec<(JsonPath, Value)>),
    Toml(Vec<(JsonPath, Value)>),
}

impl Check {
    /// How the check reads in a summary, such as `contains "ok"`.
    pub fn label(&self) -> String {
        match self {
            Check::Equals(text) => format!("equals {}", quote(text)),
            Check::Sha256(hex) => format!("sha256 {}", &hex[..12]),
            Check::Contains(s) => format!("contains {}", quote(s)),
            Check::NotContains(s) => format!("not_contains {}", quote(s)),
            Check::Matches(re) => format!("matches /{}/", truncate(re.as_str(), 60)),
            Check::NotMatches(re) => format!("not_matches /{}/", truncate(re.as_str(), 60)),
            Check::Json(entries) => format!("json {}", entries_label(entries)),
            Check::Toml(entries) => format!("toml {}", entries_label(entries)),
        }
    }
}

fn entries_label(entries: &[(JsonPath, Value)]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|(p, v)| format!("{p} = {}", show_value(v)))
        .collect();
    truncate(&parts.join(", "), 100).into_owned()
}

/// A string quoted for a summary, cut at 60 characters.
pub fn quote(s: &str) -> String {
    let q = format!("{s:?}");
    truncate(&q, 60).into_owned()
}

/// A JSON value for a summary, cut at 60 characters.
pub fn show_value(v: &Value) -> String {
    truncate(&v.to_string(), 60).into_owned()
}

/// `== 3`, `>= 1`, `< 10` …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub op: Op,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Gt,
    Le,
    Lt,
}

impl Comparison {
    /// Parse `"== 0"`, `">=3"`, `"< 10"`, `"!= 2"` or a bare `"3"` (meaning `== 3`).
    pub fn parse(s: &str) -> Result<Comparison, String> {
        let t = s.trim();
        let (op, rest) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(tok, op)| t.strip_prefix(tok).map(|r| (*op, r)))
        .unwrap_or((Op::Eq, t));
        let value = rest.trim().parse::<u64>().map_err(|_| {
            format!(
                "config: `count` must be a non-negative integer or a comparison such as \">= 3\", \"== 0\", \"< 10\"; got {s:?}"
            )
        })?;
        Ok(Comparison { op, value })
    }

    /// Whether `n` satisfies the comparison.
    pub fn holds(&self, n: u64) -> bool {
        match self.op {
            Op::Eq => n == self.value,
            Op::Ne => n != self.value,
            Op::Ge => n >= self.value,
            Op::Gt => n > self.value,
            Op::Le => n <= self.value,
            Op::Lt => n < self.value,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
        };
        write!(f, "{op} {}", self.value)
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(msg)
}

impl Spec {
    /// Parse and check a config.
    pub fn parse(config: &Config) -> Result<Spec> {
        let map = config.object()?;
        let mut path = None;
        let mut glob = None;
        let mut exists = None;
        let mut absent = None;
        let mut count = None;
        let mut checks = Vec::new();
        // Keys come sorted; checks are put in the order of `KEYS` below.
        for (key, value) in map {
            match key.as_str() {
                "path" => path = Some(string(key, value)?),
                "glob" => glob = Some(string(key, value)?),
                "exists" => exists = Some(boolean(key, value)?),
                "absent" => absent = Some(boolean(key, value)?),
                "count" => count = Some(comparison(value)?),
                "equals" => checks.push(Check::Equals(string(key, value)?.to_owned())),
                "sha256" => checks.push(Check::Sha256(sha256(value)?)),
                "contains" => {
                    for s in strings(key, value)? {
                        checks.push(Check::Contains(s));
                    }
                }
                "not_contains" => {
                    for s in strings(key, value)? {
                        checks.push(Check::NotContains(s));
                    }
                }
                "matches" => {
                    for s in strings(key, value)? {
                        checks.push(Check::Matches(regex(key, &s)?));
                    }
                }
                "not_matches" => {
                    for s in strings(key, value)? {
                        checks.push(Check::NotMatches(regex(key, &s)?));
                    }
                }
                "json" => checks.push(Check::Json(entries(key, value)?)),
                "toml" => checks.push(Check::Toml(entries(key, value)?)),
                other => return Err(unknown_key_error(other, KEYS)),
            }
        }
        checks.sort_by_key(check_rank);

        let target = match (path, glob) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "config: `path` and `glob` are exclusive; hint: use `path` for one file, `glob` for many",
                ));
            }
            (None, None) => {
                return Err(err(
                    "config: missing `path` or `glob`; hint: name one file with `path = \"VERSION\"` or several with `glob = \"src/**/*.rs\"`",
                ));
            }
            (Some(p), None) => {
                if p.is_empty() {
                    return Err(err("config: `path` must not be empty"));
                }
                Workspace::check_relative(p).map_err(|e| err(format!("config: {e}")))?;
                Target::Path(p.to_owned())
            }
            (None, Some(g)) => Target::Glob(Glob::parse(g).map_err(err)?),
        };

        let presence = match (exists, absent) {
            (Some(e), Some(a)) if e == a => {
                return Err(err(format!(
                    "config: `exists = {e}` contradicts `absent = {a}`; hint: keep one of them"
                )));
            }
            (Some(e), _) => Some(e),
            (None, Some(a)) => Some(!a),
            (None, None) => None,
        };
        if presence == Some(false) && !checks.is_empty() {
            return Err(err(
                "config: a file that must be absent has no content to check; hint: drop `absent` (or `exists = false`), or the content checks",
            ));
        }
        if count.is_some() {
            if matches!(target, Target::Path(_)) {
                return Err(err(
                    "config: `count` needs `glob`; hint: `count` is the number of files a glob matches",
                ));
            }
            if presence == Some(false) {
                return Err(err(
                    "config: `count` and `absent` (or `exists = false`) overlap; hint: use `count = 0`",
                ));
            }
        }
        Ok(Spec {
            target,
            presence,
            count,
            checks,
        })
    }
}

fn check_rank(c: &Check) -> u8 {
    match c {
        Check::Equals(_) => 0,
        Check::Sha256(_) => 1,
        Check::Contains(_) => 2,
        Check::NotContains(_) => 3,
        Check::Matches(_) => 4,
        Check::NotMatches(_) => 5,
        Check::Json(_) => 6,
        Check::Toml(_) => 7,
    }
}

fn type_error(key: &str, expected: &str, got: &Value) -> Error {
    err(format!(
        "config: `{key}` must be {expected}, got {}",
        show_value(got)
    ))
}

fn string<'v>(key: &str, v: &'v Value) -> Result<&'v str> {
    v.as_str().ok_or_else(|| type_error(key, "a string", v))
}

fn boolean(key: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| type_error(key, "true or false", v))
}

/// A non-empty string or a non-empty list of non-empty strings.
fn strings(key: &str, v: &Value) -> Result<Vec<String>> {
    let expected = "a non-empty string or a list of them";
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| type_error(key, expected, v))?,
        _ => return Err(type_error(key, expected, v)),
    };
    if list.iter().any(String::is_empty) {
        return Err(err(format!(
            "config: `{key}` must not be an empty string (it would hold for every file)"
        )));
    }
    Ok(list)
}

fn comparison(v: &Value) -> Result<Comparison> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|value| Comparison { op: Op::Eq, value })
            .ok_or_else(|| {
                type_error(
                    "count",
                    "a non-negative integer or a comparison such as \">= 3\"",
                    v,
                )
            }),
        Value::String(s) => Comparison::parse(s).map_err(err),
        _ => Err(type_error(
            "count",
            "a non-negative integer or a comparison such as \">= 3\"",
            v,
        )),
    }
}

fn sha256(v: &Value) -> Result<String> {
    let s = string("sha256", v)?.trim();
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!(
            "config: `sha256` must be 64 hex digits, got {}",
            quote(s)
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Regexes are multi-line: `^` and `$` match at line starts and ends.
fn regex(key: &str, pattern: &str) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            err(format!(
                "config: `{key}` is not a valid regex: {}",
                e.to_string().replace('\n', " ")
            ))
        })
}

fn entries(key: &str, v: &Value) -> Result<Vec<(JsonPath, Value)>> {
    let map = v.as_object().ok_or_else(|| {
        type_error(
            key,
            "a table of paths to expected values, such as { \"$.version\" = \"1.0.0\" }",
            v,
        )
    })?;
    if map.is_empty() {
        return Err(err(format!(
            "config: `{key}` is empty; hint: map a path to its expected value, such as {{ \"$.version\" = \"1.0.0\" }}"
        )));
    }
    map.iter()
        .map(|(p, expected)| {
            let path = JsonPath::parse(p).map_err(|e| err(format!("config: `{key}`: {e}")))?;
            Ok((path, expected.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
    }

    fn error(v: Value) -> String {
        parse(v).unwrap_err().message().to_owned()
    }

    #[test]
    fn a_minimal_config() {
        let s = parse(json!({"path": "a.txt", "contains": "ok"})).unwrap();
        assert!(matches!(s.target, Target::Path(ref p) if p == "a.txt"));
        assert_eq!(s.presence, None);
        assert!(matches!(s.checks[..], [Check::Contains(ref c)] if c == "ok"));
    }

    #[test]
    fn checks_run_in_a_fixed_order() {
        let s = parse(json!({
            "path": "a", "toml": {"a": 1}, "contains": ["x", "y"], "equals": "z", "matches": "q"
        }))
        .unwrap();
        let labels: Vec<String> = s.checks.iter().map(Check::label).collect();
        assert_eq!(
            labels,
            [
                "equals \"z\"",
                "contains \"x\"",
                "contains \"y\"",
                "matches /q/",
                "toml a = 1"
            ]
        );
    }

    #[test]
    fn unknown_keys_name_the_key_with_a_hint() {
        assert_eq!(
            error(json!({"path": "a", "contians": "x"})),
            "config: unknown key `contians`; hint: did you mean `contains`?"
        );
        assert!(error(json!({"path": "a", "frobnicate": 1})).contains("the known keys are"));
    }

    #[test]
    fn target_errors() {
        assert!(error(json!({"contains": "x"})).starts_with("config: missing `path` or `glob`"));
        assert!(error(json!({"path": "a", "glob": "*"})).contains("exclusive"));
        assert!(error(json!({"path": "/etc/passwd"})).contains("is absolute"));
        assert!(error(json!({"path": "../x"})).contains("leaves the workspace"));
        assert!(error(json!({"path": ""})).contains("must not be empty"));
        assert!(error(json!({"glob": "[a"})).contains("unclosed `[`"));
        assert!(error(json!({"path": 3})).contains("`path` must be a string, got 3"));
        assert!(error(json!("a.txt")).contains("must be a JSON object"));
    }

    #[test]
    fn value_errors() {
        assert!(error(json!({"path": "a", "exists": "yes"})).contains("true or false"));
        assert!(error(json!({"path": "a", "contains": ""})).contains("empty string"));
        assert!(error(json!({"path": "a", "contains": []})).contains("non-empty string"));
        assert!(error(json!({"path": "a", "contains": [1]})).contains("non-empty string"));
        assert!(error(json!({"path": "a", "matches": "("})).contains("not a valid regex"));
        assert!(error(json!({"path": "a", "sha256": "abc"})).contains("64 hex digits"));
        assert!(error(json!({"path": "a", "json": {}})).contains("`json` is empty"));
        assert!(error(json!({"path": "a", "json": "x"})).contains("table of paths"));
        assert!(error(json!({"path": "a", "toml": {"a..b": 1}})).contains("bad path"));
        assert!(error(json!({"glob": "*", "count": -1})).contains("non-negative"));
        assert!(error(json!({"glob": "*", "count": ">= x"})).contains("comparison"));
        assert!(error(json!({"glob": "*", "count": true})).contains("non-negative"));
    }

    #[test]
    fn contradictions_are_errors() {
        assert!(
            error(json!({"path": "a", "exists": true, "absent": true})).contains("contradicts")
        );
        assert!(error(json!({"path": "a", "absent": true, "contains": "x"})).contains("absent"));
        assert!(error(json!({"path": "a", "exists": false, "equals": ""})).contains("absent"));
        assert!(error(json!({"path": "a", "count": 1})).contains("`count` needs `glob`"));
        assert!(error(json!({"glob": "*", "absent": true, "count": 0})).contains("count = 0"));
    }

    #[test]
    fn presence_from_exists_or_absent() {
        let p = |v| parse(v).unwrap().presence;
        assert_eq!(p(json!({"path": "a", "exists": true})), Some(true));
        assert_eq!(p(json!({"path": "a", "exists": false})), Some(false));
        assert_eq!(p(json!({"path": "a", "absent": true})), Some(false));
        assert_eq!(p(json!({"path": "a", "absent": false})), Some(true));
        assert_eq!(
            p(json!({"path": "a", "absent": false, "exists": true})),
            Some(true)
        );
    }

    #[test]
    fn sha256_is_normalised() {
        let s =
            parse(json!({"path": "a", "sha256": format!("sha256:{}", "AB".repeat(32))})).unwrap();
        assert!(matches!(&s.checks[0], Check::Sha256(h) if *h == "ab".repeat(32)));
    }

    #[test]
    fn comparisons() {
        let c = |s| Comparison::parse(s).unwrap();
        assert_eq!(
            c(">= 3"),
            Comparison {
                op: Op::Ge,
                value: 3
            }
        );
        assert_eq!(
            c("==0"),
            Comparison {
                op: Op::Eq,
                value: 0
            }
        );
        assert_eq!(
            c(" < 10 "),
            Comparison {
                op: Op::Lt,
                value: 10
            }
        );
        assert_eq!(
            c("7"),
            Comparison {
                op: Op::Eq,
                value: 7
            }
        );
        assert_eq!(
            c("= 7"),
            Comparison {
                op: Op::Eq,
                value: 7
            }
        );
        assert_eq!(c("!= 2").to_string(), "!= 2");
        assert!(c(">= 3").holds(3) && !c(">= 3").holds(2));
        assert!(c("< 3").holds(2) && !c("< 3").holds(3));
        assert!(c("> 3").holds(4) && c("<= 3").holds(3) && c("!= 3").holds(4));
        assert!(Comparison::parse("=> 3").is_err());
        assert!(Comparison::parse("").is_err());
        let s = parse(json!({"glob": "*", "count": 2})).unwrap();
        assert_eq!(
            s.count,
            Some(Comparison {
                op: Op::Eq,
                value: 2
            })
        );
    }
}
