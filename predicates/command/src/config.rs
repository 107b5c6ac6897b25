//! The `command` predicate's config, parsed and checked once without I/O. Every
//! problem here is a config error (an `error` verdict, refused at goal load), never
//! a `fail`.

use std::collections::BTreeMap;

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex::{Regex, RegexBuilder};

use crate::compare::Comparison;

const RUN_EXAMPLE: [&str; 3] = ["cargo", "test", "--workspace"];
const PASS_CODES_EXAMPLE: [i32; 2] = [0, 1];
const PASS_WHEN_EXAMPLE: &str = "== 0";

/// The config of the `command` predicate, as a goal writes it: its JSON Schema, the
/// load-time checks and the parsing all come from this type.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "command",
    description = "Run a program in the workspace (argv, no shell) and judge it: the exit code must be in `pass_codes` (default [0]); then `match` or `json` with `pass_when`, and `junit`, must hold. A program that cannot be run, or that is killed at the timeout, is an error; so is one that cannot start for want of a tool (exit 126/127, \"command not found\", \"No module named …\"): its summary starts `missing tool:`. Test counts from cargo test, nextest, go test, pytest, node --test, jest and vitest become the metrics tests_passed, tests_failed, tests_ignored and tests_total."
)]
pub struct CommandConfig {
    /// The program and its arguments, such as ["cargo", "test", "--workspace"]. Run
    /// without a shell (to use one, run ["sh", "-c", "…"] and grant `sh`); the program
    /// is resolved on the host's PATH and must be granted (builtins get `run[0]`
    /// granted).
    #[schemars(length(min = 1), example = RUN_EXAMPLE)]
    pub run: Vec<String>,
    /// Environment variables for the program. The environment is otherwise empty but
    /// for PATH, HOME and the variables granted under [predicate.allow] env.
    pub env: Option<BTreeMap<String, String>>,
    /// The directory to run in, relative to the workspace root (default: the root). It
    /// must exist and stay inside the workspace.
    pub cwd: Option<String>,
    /// The exit codes that pass (default [0]), such as [0, 1] for grep, which exits 1
    /// when nothing matches.
    #[schemars(length(min = 1), example = PASS_CODES_EXAMPLE)]
    pub pass_codes: Option<Vec<i32>>,
    /// A regex (Rust syntax, multi-line: ^ and $ match at line ends) counted over stdout
    /// and stderr; the count must satisfy `pass_when` (default ">= 1"). Cannot be
    /// combined with `json`.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    /// A path into stdout parsed as JSON, such as "$.summary.failed" or
    /// "summary.failed" (also a.b[0], items[-1], ["dotted.key"]); the value must satisfy
    /// `pass_when`. Cannot be combined with `match`.
    pub json: Option<String>,
    /// A comparison for `match` (on the match count) or `json` (on the value): "== 0",
    /// ">= 3", "< 2", "!= 0", '== "ready"', "== true", "== null". A bare number means
    /// ==. Arrays and objects compare by length against a number.
    #[schemars(example = PASS_WHEN_EXAMPLE)]
    pub pass_when: Option<PassWhen>,
    /// A JUnit XML report the run writes, relative to the workspace root (not to
    /// `cwd`). A report with failures or errors fails; its test counts become the
    /// metrics and its failures the diagnostics. A report the run did not write
    /// (missing, or older than the run) is an error.
    pub junit: Option<String>,
    /// Re-run only the tests that failed last time, before the whole command (default
    /// true). Applies when `run` invokes pytest, `cargo test`, `go test` or `node
    /// --test` directly and there is no `match` or `json` rule: while one of those
    /// tests still fails, that focused run is the verdict (a `fail` with the metric
    /// `focused`); only the whole command can pass. false always runs the whole command.
    pub focus: Option<bool>,
}

/// `pass_when`: a comparison, or a bare value meaning `==`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PassWhen {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

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
    /// Whether failing tests are re-run alone first ([`crate::focus`]).
    pub focus: bool,
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

/// A message from a helper (`…; hint: …`) as an error at `path`.
fn located(path: &[&str], text: &str) -> ConfigError {
    match text.split_once("; hint: ") {
        Some((message, hint)) => ConfigError::at_path(path, message).with_hint(hint),
        None => ConfigError::at_path(path, text),
    }
}

/// Compile a user regex: multi-line, so `^` and `$` match at line boundaries. The
/// error reads after the key's name.
pub fn compile_regex(pattern: &str) -> std::result::Result<Regex, String> {
    if pattern.is_empty() {
        return Err("must not be empty (it would match everywhere)".to_owned());
    }
    RegexBuilder::new(pattern)
        .multi_line(true)
        .crlf(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("is not a valid regex: {}", truncate(&detail, 300))
        })
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
                .with_hint("write a path relative to the workspace root, such as `backend`"),
        );
    }
}

impl Spec {
    /// Check a config and turn it into what the evaluation runs: every problem, each
    /// at its key. The component's `validate` reports these at load.
    pub fn build(config: &CommandConfig) -> std::result::Result<Spec, Vec<ConfigError>> {
        let mut errors = Vec::new();
        match config.run.first() {
            None => errors.push(ConfigError::at("run", "must not be empty").with_hint(
                "give the program and its arguments, such as run = [\"cargo\", \"test\"]",
            )),
            Some(program) if program.trim().is_empty() => errors.push(
                ConfigError::at_path(&["run", "0"], "is an empty program name").with_hint(
                    "name the program to run first, such as run = [\"cargo\", \"test\"]",
                ),
            ),
            Some(_) => {}
        }
        for (i, arg) in config.run.iter().enumerate() {
            if arg.contains('\0') {
                errors.push(ConfigError::at_path(
                    &["run", &i.to_string()],
                    "must not contain a NUL character",
                ));
            }
        }
        let mut env = Vec::new();
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
            } else {
                env.push((k.clone(), v.clone()));
            }
        }
        if let Some(cwd) = &config.cwd {
            if cwd.is_empty() {
                errors.push(
                    ConfigError::at("cwd", "must not be empty")
                        .with_hint("leave it out to run in the workspace root"),
                );
            } else {
                relative("cwd", cwd, &mut errors);
            }
        }
        if let Some(junit) = &config.junit {
            relative("junit", junit, &mut errors);
        }
        if config.pass_codes.as_ref().is_some_and(Vec::is_empty) {
            errors.push(ConfigError::at("pass_codes", "must not be empty"));
        }
        let regex = config
            .match_
            .as_deref()
            .and_then(|p| match compile_regex(p) {
                Ok(re) => Some(re),
                Err(why) => {
                    errors.push(ConfigError::at("match", why));
                    None
                }
            });
        let json = config
            .json
            .as_deref()
            .and_then(|p| match JsonPath::parse(p) {
                Ok(path) => Some(path),
                Err(why) => {
                    errors.push(ConfigError::at(
                        "json",
                        format!("is not a usable path: {why}"),
                    ));
                    None
                }
            });
        let pass_when = config.pass_when.as_ref().and_then(|v| {
            let text = match v {
                PassWhen::Text(s) => s.clone(),
                // `pass_when = 0` reads as `== 0`.
                PassWhen::Number(n) => format!("== {n}"),
                PassWhen::Bool(b) => format!("== {b}"),
            };
            match Comparison::parse(&text) {
                Ok(c) => Some(c),
                Err(why) => {
                    errors.push(located(&["pass_when"], &why));
                    None
                }
            }
        });
        let rule = match (
            config.match_.is_some(),
            config.json.is_some(),
            config.pass_when.is_some(),
        ) {
            (true, true, _) => {
                errors.push(
                    ConfigError::at(
                        "json",
                        "cannot be combined with `match` (`pass_when` would be ambiguous)",
                    )
                    .with_hint("use two predicates"),
                );
                None
            }
            (true, false, _) => {
                let pass_when = pass_when.clone().unwrap_or_else(Comparison::at_least_one);
                if !pass_when.is_numeric() {
                    errors.push(
                        ConfigError::at(
                            "pass_when",
                            format!("{pass_when} compares a match count with a non-number"),
                        )
                        .with_hint("write a count comparison such as \"== 0\" or \">= 1\""),
                    );
                }
                regex.map(|regex| Rule::Match { regex, pass_when })
            }
            (false, true, true) => json
                .zip(pass_when)
                .map(|(path, pass_when)| Rule::Json { path, pass_when }),
            (false, true, false) => {
                errors.push(
                    ConfigError::at("json", "needs `pass_when`").with_hint(format!(
                        "say what the value at `{}` must be, such as `pass_when = \"== 0\"`",
                        config.json.as_deref().unwrap_or_default()
                    )),
                );
                None
            }
            (false, false, true) => {
                errors.push(ConfigError::at("pass_when", "needs `match` or `json`").with_hint(
                    "`pass_when` compares the match count of `match`, or the value at the `json` path",
                ));
                None
            }
            (false, false, false) => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Spec {
            run: config.run.clone(),
            env,
            cwd: config.cwd.clone(),
            pass_codes: config.pass_codes.clone().unwrap_or_else(|| vec![0]),
            rule,
            junit: config.junit.clone(),
            focus: config.focus.unwrap_or(true),
        })
    }

    /// Read, check and build a config given as JSON (for tests): the first problem as
    /// an error.
    #[cfg(test)]
    pub fn parse(config: &Config) -> Result<Spec> {
        let value = config.value().clone();
        let problems = check_config::<crate::Command, CommandConfig>(&value);
        if let Some(e) = problems.into_iter().next() {
            return Err(e.into());
        }
        let config = CommandConfig::from_value(value)?;
        Spec::build(&config).map_err(|e| e.into_iter().next().expect("an error").into())
    }

    /// The program to run (`run[0]`).
    pub fn program(&self) -> &str {
        &self.run[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
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

    /// What kazi reports at load for `config`, rendered.
    fn load_errors(config: Value) -> Vec<String> {
        check_config::<crate::Command, CommandConfig>(&config)
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.render()))
            .collect()
    }

    #[test]
    fn every_config_problem_is_a_load_error_at_its_key() {
        let mut mismatches = Vec::new();
        for (config, want) in [
            (
                json!({}),
                "/run: `run` is required (The program and its arguments, such as [\"cargo\", \"test\", \"--workspace\"])",
            ),
            (
                json!({"run": "cargo test"}),
                "/run: `run` must be an array of strings, found a string \"cargo test\"; hint: for example: run = [\"cargo\",\"test\",\"--workspace\"]",
            ),
            (json!({"run": []}), "/run: `run` must not be empty"),
            (
                json!({"run": [""]}),
                "/run/0: `run[0]` is an empty program name; hint: name the program to run first, such as run = [\"cargo\", \"test\"]",
            ),
            (
                json!({"run": ["a", 1]}),
                "/run/1: `run[1]` must be a string, found an integer 1",
            ),
            (
                json!({"run": ["a", "b\u{0}"]}),
                "/run/1: `run[1]` must not contain a NUL character",
            ),
            (
                json!({"run": ["a"], "pass_code": [0]}),
                "/pass_code: `pass_code` is not a known key; hint: did you mean `pass_codes`?",
            ),
            (
                json!({"run": ["a"], "timeout": "1m"}),
                "/timeout: `timeout` is not a known key; hint: known keys: cwd, env, focus, json, junit, match, pass_codes, pass_when, run",
            ),
            (
                json!({"run": ["a"], "pass_codes": []}),
                "/pass_codes: `pass_codes` must not be empty",
            ),
            (
                json!({"run": ["a"], "pass_codes": [0.5]}),
                "/pass_codes/0: `pass_codes[0]` must be an integer, found a number 0.5",
            ),
            (
                json!({"run": ["a"], "match": "("}),
                "/match: `match` is not a valid regex: regex parse error: ( ^ error: unclosed group",
            ),
            (
                json!({"run": ["a"], "match": ""}),
                "/match: `match` must not be empty (it would match everywhere)",
            ),
            (
                json!({"run": ["a"], "pass_when": "== 0"}),
                "/pass_when: `pass_when` needs `match` or `json`; hint: `pass_when` compares the match count of `match`, or the value at the `json` path",
            ),
            (
                json!({"run": ["a"], "json": "a.b"}),
                "/json: `json` needs `pass_when`; hint: say what the value at `a.b` must be, such as `pass_when = \"== 0\"`",
            ),
            (
                json!({"run": ["a"], "json": "a", "match": "b", "pass_when": "== 0"}),
                "/json: `json` cannot be combined with `match` (`pass_when` would be ambiguous); hint: use two predicates",
            ),
            (
                json!({"run": ["a"], "match": "b", "pass_when": "== \"x\""}),
                "/pass_when: `pass_when` == \"x\" compares a match count with a non-number; hint: write a count comparison such as \"== 0\" or \">= 1\"",
            ),
            (
                json!({"run": ["a"], "match": "b", "pass_when": ">= many"}),
                "/pass_when: `pass_when` \">= many\" compares with `many`, which is not a number, a quoted text, true, false or null; hint: write a comparison such as \"== 0\", \">= 3\", \"!= 0\", '== \"ok\"' or \"== true\"",
            ),
            (
                json!({"run": ["a"], "json": "a..b", "pass_when": "== 0"}),
                "/json: `json` is not a usable path: bad path `a..b`: empty key; quote unusual keys as `[\"key\"]`",
            ),
            (
                json!({"run": ["a"], "cwd": "../x"}),
                "/cwd: `cwd` \"../x\" leaves the workspace; hint: write a path relative to the workspace root, such as `backend`",
            ),
            (
                json!({"run": ["a"], "cwd": "/tmp"}),
                "/cwd: `cwd` \"/tmp\" is absolute; hint: write a path relative to the workspace root, such as `backend`",
            ),
            (
                json!({"run": ["a"], "cwd": ""}),
                "/cwd: `cwd` must not be empty; hint: leave it out to run in the workspace root",
            ),
            (
                json!({"run": ["a"], "junit": "/r.xml"}),
                "/junit: `junit` \"/r.xml\" is absolute; hint: write a path relative to the workspace root, such as `backend`",
            ),
            (
                json!({"run": ["a"], "env": {"A=B": "c"}}),
                "/env/A=B: `env.\"A=B\"` is not a variable name: names are non-empty, without `=`",
            ),
            (
                json!({"run": ["a"], "env": {"A": 1}}),
                "/env/A: `env.A` must be a string, found an integer 1",
            ),
            (
                json!({"run": ["a"], "env": ["A=1"]}),
                "/env: `env` must be a table, found an array [\"A=1\"]",
            ),
            (json!(["a"]), ": must be a table, found an array [\"a\"]"),
        ] {
            let got = load_errors(config.clone());
            if got != [want] {
                mismatches.push(format!("{config}\n  want {want}\n  got  {got:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }
}
