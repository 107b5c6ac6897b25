//! The `command` predicate's config, parsed and checked once without I/O. Every
//! problem here is a config error (an `error` verdict, refused at goal load), never
//! a `fail`.

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use kazi_sdk::unknown_key_error;
use regex::{Regex, RegexBuilder};

use crate::compare::Comparison;

/// Every config key.
pub const KEYS: &[&str] = &[
    "run",
    "env",
    "cwd",
    "pass_codes",
    "match",
    "pass_when",
    "json",
    "junit",
];

/// The largest regex program the config may compile (bounds memory in the sandbox).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// What to run and how to judge it.
#[derive(Debug)]
pub struct Spec {
    /// Program and arguments; never empty.
    pub run: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory relative to the workspace.
    pub cwd: Option<String>,
    /// Exit codes that pass; `[0]` unless configured.
    pub pass_codes: Vec<i32>,
    /// An extra rule on the output, besides the exit code.
    pub rule: Option<Rule>,
    /// A JUnit XML report the run writes, relative to the workspace.
    pub junit: Option<String>,
}

/// A rule on the output.
#[derive(Debug)]
pub enum Rule {
    /// The number of matches of a regex in stdout + stderr.
    Match { regex: Regex, pass_when: Comparison },
    /// A value in stdout parsed as JSON.
    Json {
        path: JsonPath,
        pass_when: Comparison,
    },
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(msg)
}

fn type_error(key: &str, expected: &str, got: &Value) -> Error {
    err(format!(
        "config: `{key}` must be {expected}, got {}",
        truncate(&got.to_string(), 60)
    ))
}

fn string<'v>(key: &str, v: &'v Value) -> Result<&'v str> {
    v.as_str().ok_or_else(|| type_error(key, "a string", v))
}

/// Compile a user regex: multi-line, so `^` and `$` match at line boundaries.
pub fn compile_regex(key: &str, pattern: &str) -> Result<Regex> {
    if pattern.is_empty() {
        return Err(err(format!(
            "config: `{key}` must not be empty (it would match everywhere)"
        )));
    }
    RegexBuilder::new(pattern)
        .multi_line(true)
        .crlf(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let detail = detail.trim().replace('\n', " ");
            err(format!(
                "config: `{key}` is not a valid regex: {}",
                truncate(&detail, 300)
            ))
        })
}

impl Spec {
    /// Parse and check a config.
    pub fn parse(config: &Config) -> Result<Spec> {
        let map = config.object()?;
        let mut run = None;
        let mut env = Vec::new();
        let mut cwd = None;
        let mut pass_codes = None;
        let mut regex = None;
        let mut pass_when = None;
        let mut json = None;
        let mut junit = None;
        for (key, value) in map {
            match key.as_str() {
                "run" => run = Some(argv(value)?),
                "env" => env = environment(value)?,
                "cwd" => cwd = Some(relative_dir("cwd", value)?),
                "pass_codes" => pass_codes = Some(codes(value)?),
                "match" => regex = Some(compile_regex("match", string("match", value)?)?),
                "pass_when" => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        // `pass_when = 0` reads as `== 0`.
                        Value::Number(n) => format!("== {n}"),
                        Value::Bool(b) => format!("== {b}"),
                        _ => {
                            return Err(type_error(
                                "pass_when",
                                "a comparison string such as \"== 0\"",
                                value,
                            ));
                        }
                    };
                    pass_when = Some(Comparison::parse(&text).map_err(err)?);
                }
                "json" => {
                    let text = string("json", value)?;
                    json = Some(
                        JsonPath::parse(text).map_err(|e| err(format!("config: `json`: {e}")))?,
                    );
                }
                "junit" => junit = Some(relative_file("junit", value)?),
                other => return Err(unknown_key_error(other, KEYS)),
            }
        }
        let run = run.ok_or_else(|| {
            err("config: missing required key `run`; hint: give the program and its arguments as a list, such as `run = [\"cargo\", \"test\"]`")
        })?;
        let rule = match (regex, json, pass_when) {
            (Some(_), Some(_), _) => {
                return Err(err(
                    "config: `match` and `json` cannot be combined (`pass_when` would be ambiguous); hint: use two predicates",
                ));
            }
            (Some(regex), None, pass_when) => {
                let pass_when = pass_when.unwrap_or_else(Comparison::at_least_one);
                if !pass_when.is_numeric() {
                    return Err(err(format!(
                        "config: `pass_when` {pass_when} compares a match count with a non-number; hint: write a count comparison such as \"== 0\" or \">= 1\""
                    )));
                }
                Some(Rule::Match { regex, pass_when })
            }
            (None, Some(path), Some(pass_when)) => Some(Rule::Json { path, pass_when }),
            (None, Some(path), None) => {
                return Err(err(format!(
                    "config: `json` needs `pass_when`; hint: say what the value at `{path}` must be, such as `pass_when = \"== 0\"`"
                )));
            }
            (None, None, Some(_)) => {
                return Err(err(
                    "config: `pass_when` needs `match` or `json`; hint: `pass_when` compares the match count of `match`, or the value at the `json` path",
                ));
            }
            (None, None, None) => None,
        };
        Ok(Spec {
            run,
            env,
            cwd,
            pass_codes: pass_codes.unwrap_or_else(|| vec![0]),
            rule,
            junit,
        })
    }

    /// The program to run (`run[0]`).
    pub fn program(&self) -> &str {
        &self.run[0]
    }
}

fn argv(v: &Value) -> Result<Vec<String>> {
    let hint = "hint: give the program and its arguments as a list, such as `run = [\"cargo\", \"test\", \"--workspace\"]`";
    match v {
        Value::String(s) => Err(err(format!(
            "config: `run` must be a list of strings, got the string {}; {hint} (there is no shell: to use one, run `[\"sh\", \"-c\", \"…\"]` and grant `sh`)",
            truncate(&format!("{s:?}"), 60)
        ))),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(err(format!("config: `run` must not be empty; {hint}")));
            }
            let argv = items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| type_error("run", "a list of strings", v))?;
            if argv[0].trim().is_empty() {
                return Err(err("config: `run[0]` (the program) must not be empty"));
            }
            if argv.iter().any(|a| a.contains('\0')) {
                return Err(err("config: `run` must not contain NUL characters"));
            }
            Ok(argv)
        }
        _ => Err(type_error("run", "a list of strings", v)),
    }
}

fn environment(v: &Value) -> Result<Vec<(String, String)>> {
    let map = v.as_object().ok_or_else(|| {
        type_error(
            "env",
            "a table of strings, such as `{ RUST_LOG = \"debug\" }`",
            v,
        )
    })?;
    map.iter()
        .map(|(k, val)| {
            if k.is_empty() || k.contains(['=', '\0']) {
                return Err(err(format!(
                    "config: `env` has the variable name {k:?}; names must be non-empty without `=`"
                )));
            }
            match val {
                Value::String(s) if !s.contains('\0') => Ok((k.clone(), s.clone())),
                _ => Err(type_error(&format!("env.{k}"), "a string", val)),
            }
        })
        .collect()
}

fn relative_dir(key: &str, v: &Value) -> Result<String> {
    let s = string(key, v)?;
    if s.is_empty() {
        return Err(err(format!(
            "config: `{key}` must not be empty; hint: leave it out to run in the workspace root"
        )));
    }
    Workspace::check_relative(s).map_err(|e| err(format!("config: `{key}`: {e}")))?;
    Ok(s.to_owned())
}

fn relative_file(key: &str, v: &Value) -> Result<String> {
    let s = string(key, v)?;
    if s.is_empty() {
        return Err(err(format!("config: `{key}` must not be empty")));
    }
    Workspace::check_relative(s).map_err(|e| err(format!("config: `{key}`: {e}")))?;
    Ok(s.to_owned())
}

fn codes(v: &Value) -> Result<Vec<i32>> {
    let expected = "a non-empty list of exit codes, such as `[0, 1]`";
    let items = v
        .as_array()
        .ok_or_else(|| type_error("pass_codes", expected, v))?;
    if items.is_empty() {
        return Err(type_error("pass_codes", expected, v));
    }
    items
        .iter()
        .map(|i| {
            i.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| type_error("pass_codes", expected, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
    }

    fn message(v: Value) -> String {
        parse(v).unwrap_err().message().to_owned()
    }

    #[test]
    fn minimal_config() {
        let s = parse(json!({"run": ["cargo", "test"]})).unwrap();
        assert_eq!(s.run, ["cargo", "test"]);
        assert_eq!(s.program(), "cargo");
        assert_eq!(s.pass_codes, [0]);
        assert!(s.rule.is_none() && s.junit.is_none() && s.cwd.is_none() && s.env.is_empty());
    }

    #[test]
    fn full_config() {
        let s = parse(json!({
            "run": ["make", "lint"],
            "env": {"RUST_LOG": "debug", "CI": "1"},
            "cwd": "backend",
            "pass_codes": [0, 1],
            "match": "warning",
            "pass_when": "== 0",
            "junit": "target/junit.xml"
        }))
        .unwrap();
        assert_eq!(s.env.len(), 2);
        assert_eq!(s.cwd.as_deref(), Some("backend"));
        assert_eq!(s.pass_codes, [0, 1]);
        assert_eq!(s.junit.as_deref(), Some("target/junit.xml"));
        match s.rule {
            Some(Rule::Match { regex, pass_when }) => {
                assert_eq!(regex.as_str(), "warning");
                assert_eq!(pass_when.to_string(), "== 0");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn match_defaults_to_at_least_one() {
        let s = parse(json!({"run": ["x"], "match": "ok"})).unwrap();
        match s.rule {
            Some(Rule::Match { pass_when, .. }) => assert_eq!(pass_when.to_string(), ">= 1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_rule_and_numeric_shorthand() {
        let s = parse(json!({"run": ["x"], "json": "$.summary.failed", "pass_when": 0})).unwrap();
        match s.rule {
            Some(Rule::Json { path, pass_when }) => {
                assert_eq!(path.to_string(), "$.summary.failed");
                assert_eq!(pass_when.to_string(), "== 0");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_errors_say_what_and_hint() {
        assert!(message(json!({})).contains("missing required key `run`"));
        assert!(message(json!({"run": "cargo test"})).contains("must be a list of strings"));
        assert!(message(json!({"run": []})).contains("must not be empty"));
        assert!(message(json!({"run": [""]})).contains("`run[0]`"));
        assert!(message(json!({"run": ["a", 1]})).contains("a list of strings"));
        assert_eq!(
            message(json!({"run": ["a"], "pass_code": [0]})),
            "config: unknown key `pass_code`; hint: did you mean `pass_codes`?"
        );
        assert!(message(json!({"run": ["a"], "timeout": "1m"})).contains("unknown key `timeout`"));
        assert!(message(json!({"run": ["a"], "pass_codes": []})).contains("non-empty list"));
        assert!(message(json!({"run": ["a"], "pass_codes": [0.5]})).contains("non-empty list"));
        assert!(message(json!({"run": ["a"], "match": "("})).contains("not a valid regex"));
        assert!(message(json!({"run": ["a"], "match": ""})).contains("must not be empty"));
        assert!(
            message(json!({"run": ["a"], "pass_when": "== 0"})).contains("needs `match` or `json`")
        );
        assert!(message(json!({"run": ["a"], "json": "a.b"})).contains("`json` needs `pass_when`"));
        assert!(
            message(json!({"run": ["a"], "json": "a", "match": "b", "pass_when": "== 0"}))
                .contains("cannot be combined")
        );
        assert!(
            message(json!({"run": ["a"], "match": "b", "pass_when": "== \"x\""}))
                .contains("non-number")
        );
        assert!(
            message(json!({"run": ["a"], "json": "a..b", "pass_when": "== 0"}))
                .contains("`json`: bad path")
        );
        assert!(message(json!({"run": ["a"], "cwd": "../x"})).contains("leaves the workspace"));
        assert!(message(json!({"run": ["a"], "cwd": "/tmp"})).contains("absolute"));
        assert!(message(json!({"run": ["a"], "junit": "/r.xml"})).contains("absolute"));
        assert!(message(json!({"run": ["a"], "env": {"A=B": "c"}})).contains("without `=`"));
        assert!(
            message(json!({"run": ["a"], "env": {"A": 1}})).contains("`env.A` must be a string")
        );
        assert!(message(json!({"run": ["a"], "env": ["A=1"]})).contains("a table of strings"));
        assert!(message(json!(["a"])).contains("must be a JSON object"));
    }
}
