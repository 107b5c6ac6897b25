//! The `log` predicate's config, parsed and checked once without I/O. Every problem
//! here is a config error (an `error` verdict, refused at goal load), never a `fail`.

use std::time::Duration;

use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use kazi_sdk::unknown_key_error;
use regex::{Regex, RegexBuilder};

/// Every config key.
pub const KEYS: &[&str] = &[
    "path",
    "run",
    "env",
    "cwd",
    "match",
    "max",
    "panic",
    "since",
    "tail",
    "missing_ok",
];

/// The largest regex program the config may compile (bounds memory in the sandbox).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Where the lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A workspace file.
    Path { path: String, missing_ok: bool },
    /// A program whose stdout and stderr are the log.
    Run {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
    },
}

/// What to look for, and where.
#[derive(Debug)]
pub struct Spec {
    pub source: Source,
    /// Lines matching this may appear at most `max` times.
    pub matcher: Option<(Regex, u64)>,
    /// Any line matching this fails.
    pub panic: Option<Regex>,
    /// Only lines stamped within this window before now.
    pub since: Option<Duration>,
    /// Only the last N lines.
    pub tail: Option<u64>,
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

fn regex(key: &str, v: &Value) -> Result<Regex> {
    let pattern = string(key, v)?;
    if pattern.is_empty() {
        return Err(err(format!(
            "config: `{key}` must not be empty (it would match every line)"
        )));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = e.to_string().trim().replace('\n', " ");
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
        let mut path = None;
        let mut run = None;
        let mut env = None;
        let mut cwd = None;
        let mut matcher = None;
        let mut max = None;
        let mut panic = None;
        let mut since = None;
        let mut tail = None;
        let mut missing_ok = None;
        for (key, value) in map {
            match key.as_str() {
                "path" => path = Some(relative(key, value)?),
                "run" => run = Some(argv(value)?),
                "env" => env = Some(environment(value)?),
                "cwd" => cwd = Some(relative(key, value)?),
                "match" => matcher = Some(regex(key, value)?),
                "max" => {
                    max = Some(
                        value
                            .as_u64()
                            .ok_or_else(|| type_error(key, "a non-negative integer", value))?,
                    )
                }
                "panic" => panic = Some(regex(key, value)?),
                "since" => since = Some(duration(value)?),
                "tail" => {
                    let n = value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                        type_error(key, "a positive integer (a number of lines)", value)
                    })?;
                    tail = Some(n);
                }
                "missing_ok" => {
                    missing_ok = Some(
                        value
                            .as_bool()
                            .ok_or_else(|| type_error(key, "true or false", value))?,
                    )
                }
                other => return Err(unknown_key_error(other, KEYS)),
            }
        }
        let source = match (path, run) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "config: `path` and `run` are exclusive; hint: read a log file with `path`, or a program's output with `run`",
                ));
            }
            (None, None) => {
                return Err(err(
                    "config: missing `path` or `run`; hint: name a log file (`path = \"logs/app.log\"`) or a program whose output is the log (`run = [\"docker\", \"logs\", \"app\"]`)",
                ));
            }
            (Some(path), None) => {
                if env.is_some() || cwd.is_some() {
                    let key = if env.is_some() { "env" } else { "cwd" };
                    return Err(err(format!(
                        "config: `{key}` only applies to `run`; hint: drop it, or read the log through `run`"
                    )));
                }
                Source::Path {
                    path,
                    missing_ok: missing_ok.unwrap_or(false),
                }
            }
            (None, Some(argv)) => {
                if missing_ok.is_some() {
                    return Err(err(
                        "config: `missing_ok` only applies to `path`; hint: a program that cannot run is an error",
                    ));
                }
                Source::Run {
                    argv,
                    env: env.unwrap_or_default(),
                    cwd,
                }
            }
        };
        if matcher.is_none() && panic.is_none() {
            return Err(err(
                "config: nothing to look for; hint: add `match` (a regex, with `max` allowed lines, default 0) or `panic` (a regex that fails on any line)",
            ));
        }
        if max.is_some() && matcher.is_none() {
            return Err(err(
                "config: `max` needs `match`; hint: `max` is how many lines may match `match`",
            ));
        }
        Ok(Spec {
            source,
            matcher: matcher.map(|re| (re, max.unwrap_or(0))),
            panic,
            since,
            tail,
        })
    }
}

fn relative(key: &str, v: &Value) -> Result<String> {
    let s = string(key, v)?;
    if s.is_empty() {
        return Err(err(format!("config: `{key}` must not be empty")));
    }
    Workspace::check_relative(s).map_err(|e| err(format!("config: `{key}`: {e}")))?;
    Ok(s.to_owned())
}

fn argv(v: &Value) -> Result<Vec<String>> {
    let hint = "hint: give the program and its arguments as a list, such as `run = [\"docker\", \"logs\", \"app\"]`";
    let items = match v {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => return Err(err(format!("config: `run` must not be empty; {hint}"))),
        Value::String(_) => {
            return Err(err(format!(
                "config: `run` must be a list of strings, not one string; {hint}"
            )));
        }
        _ => return Err(type_error("run", "a list of strings", v)),
    };
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

fn environment(v: &Value) -> Result<Vec<(String, String)>> {
    let map = v
        .as_object()
        .ok_or_else(|| type_error("env", "a table of strings", v))?;
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

fn duration(v: &Value) -> Result<Duration> {
    let text = string("since", v)?;
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        err(format!(
            "config: `since` {text:?} is not a duration ({e}); hint: write e.g. \"90s\", \"10m\", \"2h\", \"1d\""
        ))
    })?;
    if d.is_zero() {
        return Err(err("config: `since` must be longer than zero"));
    }
    Ok(d)
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
    fn path_source() {
        let s = parse(json!({"path": "logs/app.log", "match": "5\\d\\d", "max": 2, "since": "10m", "tail": 500})).unwrap();
        assert_eq!(
            s.source,
            Source::Path {
                path: "logs/app.log".into(),
                missing_ok: false
            }
        );
        let (re, max) = s.matcher.unwrap();
        assert_eq!((re.as_str(), max), ("5\\d\\d", 2));
        assert_eq!(s.since, Some(Duration::from_secs(600)));
        assert_eq!(s.tail, Some(500));
        assert!(s.panic.is_none());
    }

    #[test]
    fn run_source_and_defaults() {
        let s = parse(json!({"run": ["docker", "logs", "app"], "env": {"A": "1"}, "cwd": "ops", "panic": "panicked at"})).unwrap();
        assert_eq!(
            s.source,
            Source::Run {
                argv: vec!["docker".into(), "logs".into(), "app".into()],
                env: vec![("A".into(), "1".into())],
                cwd: Some("ops".into())
            }
        );
        assert!(s.matcher.is_none() && s.panic.is_some() && s.since.is_none() && s.tail.is_none());
        let s = parse(json!({"path": "a.log", "match": "x"})).unwrap();
        assert_eq!(s.matcher.unwrap().1, 0);
    }

    #[test]
    fn config_errors_say_what_and_hint() {
        assert!(message(json!({"match": "x"})).contains("missing `path` or `run`"));
        assert!(message(json!({"path": "a", "run": ["b"], "match": "x"})).contains("exclusive"));
        assert!(message(json!({"path": "a"})).contains("nothing to look for"));
        assert!(
            message(json!({"path": "a", "panic": "x", "max": 1})).contains("`max` needs `match`")
        );
        assert!(message(json!({"path": "a", "match": "("})).contains("not a valid regex"));
        assert!(message(json!({"path": "a", "match": ""})).contains("must not be empty"));
        assert!(
            message(json!({"path": "a", "match": "x", "max": -1})).contains("non-negative integer")
        );
        assert!(
            message(json!({"path": "a", "match": "x", "since": "soon"})).contains("not a duration")
        );
        assert!(
            message(json!({"path": "a", "match": "x", "since": "0s"})).contains("longer than zero")
        );
        assert!(
            message(json!({"path": "a", "match": "x", "tail": 0})).contains("positive integer")
        );
        assert!(message(json!({"path": "../a", "match": "x"})).contains("leaves the workspace"));
        assert!(
            message(json!({"path": "a", "match": "x", "cwd": "b"}))
                .contains("`cwd` only applies to `run`")
        );
        assert!(
            message(json!({"run": ["a"], "match": "x", "missing_ok": true}))
                .contains("only applies to `path`")
        );
        assert!(message(json!({"run": "docker logs", "match": "x"})).contains("not one string"));
        assert!(message(json!({"run": [], "match": "x"})).contains("must not be empty"));
        assert_eq!(
            message(json!({"path": "a", "match": "x", "sinse": "1m"})),
            "config: unknown key `sinse`; hint: did you mean `since`?"
        );
    }
}
