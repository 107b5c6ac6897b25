//! The `log` predicate's config, parsed and checked once without I/O. Every problem
//! here is a config error (an `error` verdict, refused at goal load), never a `fail`.

use std::collections::BTreeMap;
use std::time::Duration;

use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex::{Regex, RegexBuilder};

const RUN_EXAMPLE: [&str; 3] = ["docker", "logs", "app"];
const SINCE_EXAMPLE: &str = "10m";

/// The config of the `log` predicate, as a goal writes it: its JSON Schema, the
/// load-time checks and the parsing all come from this type.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "log",
    description = "A log's health. Lines come from a workspace file (`path`) or from a program's stdout and stderr (`run`), exactly one. At most `max` lines may match `match`, and no line may match `panic`; give at least one of the two."
)]
pub struct LogConfig {
    /// The log file, relative to the workspace root. It is streamed line by line, so
    /// large logs are fine. A missing file is an error unless `missing_ok = true`.
    pub path: Option<String>,
    /// A program whose stdout and stderr are the log, such as ["docker", "logs",
    /// "app"]. Run without a shell; builtins get `run[0]` granted. A non-zero exit is
    /// an error unless the lines already fail.
    #[schemars(example = RUN_EXAMPLE)]
    pub run: Option<Vec<String>>,
    /// Environment variables for the `run` program (the environment is otherwise empty
    /// but for PATH, HOME and granted variables).
    pub env: Option<BTreeMap<String, String>>,
    /// The directory to run the `run` program in, relative to the workspace root
    /// (default: the root).
    pub cwd: Option<String>,
    /// A regex (Rust syntax) tested against each line; more than `max` matching lines
    /// fail. Use (?i) for case-insensitive matching.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    /// How many lines may match `match` before the predicate fails (default 0: any
    /// matching line fails).
    pub max: Option<u64>,
    /// A regex (Rust syntax) tested against each line; any matching line fails, such as
    /// "panicked at|FATAL|Traceback".
    pub panic: Option<String>,
    /// Only entries stamped within this long before now, as a humane duration ("90s",
    /// "10m", "2h", "1d"). A line's leading timestamp (RFC 3339 / ISO 8601,
    /// `2026-11-24 10:00:00`, logfmt time=, a JSON time field) dates it and the lines
    /// after it without one; a zone-less time is UTC. Lines before the first timestamp
    /// are counted.
    #[schemars(example = SINCE_EXAMPLE)]
    pub since: Option<String>,
    /// Only the last N lines of the log (applied before `since`); line numbers stay
    /// those of the whole file.
    #[schemars(range(min = 1))]
    pub tail: Option<u64>,
    /// With `path`: a log file that does not exist passes (nothing was logged) instead
    /// of being an error.
    pub missing_ok: Option<bool>,
}

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

fn regex(key: &str, pattern: &str, errors: &mut Vec<ConfigError>) -> Option<Regex> {
    if pattern.is_empty() {
        errors.push(ConfigError::at(
            key,
            "must not be empty (it would match every line)",
        ));
        return None;
    }
    match RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            let detail = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            errors.push(ConfigError::at(
                key,
                format!("is not a valid regex: {}", truncate(&detail, 300)),
            ));
            None
        }
    }
}

/// A workspace-relative path the config names: not empty, not absolute, not leaving.
fn relative(key: &str, value: &str, errors: &mut Vec<ConfigError>) {
    if value.is_empty() {
        errors.push(ConfigError::at(key, "must not be empty"));
    } else if let Err(e) = Workspace::check_relative(value) {
        let why = if e.message().contains("is absolute") {
            "is absolute"
        } else {
            "leaves the workspace"
        };
        errors.push(
            ConfigError::at(key, format!("{value:?} {why}"))
                .with_hint("write a path relative to the workspace root, such as `logs/app.log`"),
        );
    }
}

impl Spec {
    /// Check a config and turn it into what the evaluation runs: every problem, each
    /// at its key. The component's `validate` reports these at load.
    pub fn build(config: &LogConfig) -> std::result::Result<Spec, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(path) = &config.path {
            relative("path", path, &mut errors);
        }
        if let Some(cwd) = &config.cwd {
            relative("cwd", cwd, &mut errors);
        }
        if let Some(argv) = &config.run {
            match argv.first() {
                None => errors.push(ConfigError::at("run", "must not be empty").with_hint(
                    "give the program and its arguments, such as run = [\"docker\", \"logs\", \"app\"]",
                )),
                Some(p) if p.trim().is_empty() => errors.push(ConfigError::at_path(
                    &["run", "0"],
                    "is an empty program name",
                )),
                Some(_) => {}
            }
            for (i, arg) in argv.iter().enumerate() {
                if arg.contains('\0') {
                    errors.push(ConfigError::at_path(
                        &["run", &i.to_string()],
                        "must not contain a NUL character",
                    ));
                }
            }
        }
        for (k, v) in config.env.iter().flatten() {
            if k.is_empty() || k.contains(['=', '\0']) {
                errors.push(ConfigError::at_path(
                    &["env", k],
                    "is not a variable name: names are non-empty, without `=`",
                ));
            } else if v.contains('\0') {
                errors.push(ConfigError::at_path(
                    &["env", k],
                    "must not contain a NUL character",
                ));
            }
        }
        let matcher = config
            .match_
            .as_deref()
            .and_then(|p| regex("match", p, &mut errors));
        let panic = config
            .panic
            .as_deref()
            .and_then(|p| regex("panic", p, &mut errors));
        let since =
            config
                .since
                .as_deref()
                .and_then(|text| match humantime::parse_duration(text.trim()) {
                    Ok(d) if d.is_zero() => {
                        errors.push(ConfigError::at("since", "must be longer than zero"));
                        None
                    }
                    Ok(d) => Some(d),
                    Err(e) => {
                        errors.push(
                            ConfigError::at("since", format!("{text:?} is not a duration ({e})"))
                                .with_hint("write e.g. \"90s\", \"10m\", \"2h\", \"1d\""),
                        );
                        None
                    }
                });
        let source = match (&config.path, &config.run) {
            (Some(_), Some(_)) => {
                errors.push(
                    ConfigError::at("run", "cannot be combined with `path`")
                        .with_hint("read a log file with `path`, or a program's output with `run`"),
                );
                None
            }
            (None, None) => {
                errors.push(ConfigError::new("needs `path` or `run`").with_hint(
                    "name a log file (`path = \"logs/app.log\"`) or a program whose output is the log (`run = [\"docker\", \"logs\", \"app\"]`)",
                ));
                None
            }
            (Some(path), None) => {
                for key in ["env", "cwd"] {
                    let set = if key == "env" {
                        config.env.is_some()
                    } else {
                        config.cwd.is_some()
                    };
                    if set {
                        errors.push(
                            ConfigError::at(key, "only applies to `run`")
                                .with_hint("drop it, or read the log through `run`"),
                        );
                    }
                }
                Some(Source::Path {
                    path: path.clone(),
                    missing_ok: config.missing_ok.unwrap_or(false),
                })
            }
            (None, Some(argv)) => {
                if config.missing_ok.is_some() {
                    errors.push(
                        ConfigError::at("missing_ok", "only applies to `path`")
                            .with_hint("a program that cannot run is an error"),
                    );
                }
                Some(Source::Run {
                    argv: argv.clone(),
                    env: config
                        .env
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    cwd: config.cwd.clone(),
                })
            }
        };
        if config.match_.is_none() && config.panic.is_none() {
            errors.push(ConfigError::new("has nothing to look for").with_hint(
                "add `match` (a regex, with `max` allowed lines, default 0) or `panic` (a regex that fails on any line)",
            ));
        }
        if config.max.is_some() && config.match_.is_none() {
            errors.push(
                ConfigError::at("max", "needs `match`")
                    .with_hint("`max` is how many lines may match `match`"),
            );
        }
        match source {
            Some(source) if errors.is_empty() => Ok(Spec {
                source,
                matcher: matcher.map(|re| (re, config.max.unwrap_or(0))),
                panic,
                since,
                tail: config.tail,
            }),
            _ => Err(errors),
        }
    }

    /// Read, check and build a config given as JSON (for tests): the first problem as
    /// an error.
    #[cfg(test)]
    pub fn parse(config: &Config) -> Result<Spec> {
        let value = config.value().clone();
        let problems = check_config::<crate::Log, LogConfig>(&value);
        if let Some(e) = problems.into_iter().next() {
            return Err(e.into());
        }
        let config = LogConfig::from_value(value)?;
        Spec::build(&config).map_err(|e| e.into_iter().next().expect("an error").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
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

    /// What kazi reports at load for `config`, rendered.
    fn load_errors(config: Value) -> Vec<String> {
        check_config::<crate::Log, LogConfig>(&config)
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.render()))
            .collect()
    }

    #[test]
    fn every_config_problem_is_a_load_error_at_its_key() {
        let mut mismatches = Vec::new();
        for (config, want) in [
            (
                json!({"match": "x"}),
                ": needs `path` or `run`; hint: name a log file (`path = \"logs/app.log\"`) or a program whose output is the log (`run = [\"docker\", \"logs\", \"app\"]`)",
            ),
            (
                json!({"path": "a", "run": ["b"], "match": "x"}),
                "/run: `run` cannot be combined with `path`; hint: read a log file with `path`, or a program's output with `run`",
            ),
            (
                json!({"path": "a"}),
                ": has nothing to look for; hint: add `match` (a regex, with `max` allowed lines, default 0) or `panic` (a regex that fails on any line)",
            ),
            (
                json!({"path": "a", "panic": "x", "max": 1}),
                "/max: `max` needs `match`; hint: `max` is how many lines may match `match`",
            ),
            (
                json!({"path": "a", "match": "("}),
                "/match: `match` is not a valid regex: regex parse error: ( ^ error: unclosed group",
            ),
            (
                json!({"path": "a", "match": ""}),
                "/match: `match` must not be empty (it would match every line)",
            ),
            (
                json!({"path": "a", "match": "x", "max": -1}),
                "/max: `max` must be at least 0, found -1",
            ),
            (
                json!({"path": "a", "match": "x", "since": "soon"}),
                "/since: `since` \"soon\" is not a duration (expected number at 0); hint: write e.g. \"90s\", \"10m\", \"2h\", \"1d\"",
            ),
            (
                json!({"path": "a", "match": "x", "since": "0s"}),
                "/since: `since` must be longer than zero",
            ),
            (
                json!({"path": "a", "match": "x", "tail": 0}),
                "/tail: `tail` must be at least 1, found 0",
            ),
            (
                json!({"path": "../a", "match": "x"}),
                "/path: `path` \"../a\" leaves the workspace; hint: write a path relative to the workspace root, such as `logs/app.log`",
            ),
            (
                json!({"path": "a", "match": "x", "cwd": "b"}),
                "/cwd: `cwd` only applies to `run`; hint: drop it, or read the log through `run`",
            ),
            (
                json!({"run": ["a"], "match": "x", "missing_ok": true}),
                "/missing_ok: `missing_ok` only applies to `path`; hint: a program that cannot run is an error",
            ),
            (
                json!({"run": "docker logs", "match": "x"}),
                "/run: `run` must be an array of strings, found a string \"docker logs\"; hint: for example: run = [\"docker\",\"logs\",\"app\"]",
            ),
            (
                json!({"run": [], "match": "x"}),
                "/run: `run` must not be empty; hint: give the program and its arguments, such as run = [\"docker\", \"logs\", \"app\"]",
            ),
            (
                json!({"path": "a", "match": "x", "sinse": "1m"}),
                "/sinse: `sinse` is not a known key; hint: did you mean `since`?",
            ),
        ] {
            let got = load_errors(config.clone());
            if got != [want] {
                mismatches.push(format!("{config}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}
