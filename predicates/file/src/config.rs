//! The `file` predicate's config: parsed and checked once, without I/O. Every
//! problem here is a config error (an `error` verdict the host refuses at load),
//! never a `fail`.

use std::collections::BTreeMap;
use std::fmt;

use kazi_sdk::json_path::JsonPath;
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex_lite::{Regex, RegexBuilder};

use crate::glob::Glob;

/// The config of the `file` predicate, as a goal writes it: its JSON Schema, the
/// load-time checks and the parsing all come from this type.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "file",
    description = "Checks on workspace content. Give `path` or `glob` (exactly one) and any checks; all must hold. With no check, the file must exist (a glob must match at least one file)."
)]
pub struct FileConfig {
    /// One file (or directory, for `exists`/`absent`), relative to the workspace; it
    /// must not be absolute or leave the workspace.
    #[schemars(length(min = 1))]
    pub path: Option<String>,
    /// Every regular file matching this pattern, relative to the workspace: `*` and `?`
    /// within a name, `**` for any number of directories, `[abc]`, `[a-z]`, `[!abc]`,
    /// `{a,b}`, `\` escapes. Content checks apply to every match; `.git` is searched
    /// only when named.
    #[schemars(length(min = 1))]
    pub glob: Option<String>,
    /// true: the file exists (a glob matches at least one file); false: same as
    /// `absent = true`.
    pub exists: Option<bool>,
    /// true: the file does not exist (a glob matches nothing); cannot be combined with
    /// content checks or `count`.
    pub absent: Option<bool>,
    /// The number of files the glob matches: an integer (exactly), or a comparison such
    /// as ">= 3", "== 0", "< 10", "!= 2".
    pub count: Option<CountSpec>,
    /// The file's content is exactly this text, byte for byte (mind the final newline:
    /// "1.0.0\n").
    pub equals: Option<String>,
    /// The SHA-256 of the file's bytes, as 64 hex digits (an optional `sha256:` prefix
    /// is allowed).
    pub sha256: Option<String>,
    /// The file contains this text (or each text of a list).
    pub contains: Option<Texts>,
    /// The file does not contain this text (nor any text of a list); each occurrence is
    /// reported with its line.
    pub not_contains: Option<Texts>,
    /// The file has a match for this regex (or for each regex of a list); multi-line
    /// mode, so `^` and `$` match at line boundaries. Rust regex syntax with ASCII-only
    /// `\d`, `\w`, `\s`, `\b` and `(?i)`, and no `\p{…}` classes.
    pub matches: Option<Texts>,
    /// The file has no match for this regex (nor for any of a list); each match is
    /// reported with its line.
    pub not_matches: Option<Texts>,
    /// The file is JSON; each key is a path into it (`$.version`, `package.version`,
    /// `a.b[0]`, `items[-1]`, `["dotted.key"]`, `$` for the whole document) and its
    /// value the expected value (numbers compare by value).
    pub json: Option<BTreeMap<String, Value>>,
    /// The file is TOML; each key is a path into it, as for `json`, and its value the
    /// expected value.
    pub toml: Option<BTreeMap<String, Value>>,
}

/// One text, or a list of them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    /// Each text with the pointer path to it (the key alone for a single text).
    fn each<'a>(&'a self, key: &'a str) -> Vec<(Vec<String>, &'a str)> {
        match self {
            Texts::One(s) => vec![(vec![key.to_owned()], s.as_str())],
            Texts::Many(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| (vec![key.to_owned(), i.to_string()], s.as_str()))
                .collect(),
        }
    }
}

/// `count`: a number of files, or a comparison.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CountSpec {
    Exactly(u64),
    Compare(String),
}

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
                "is neither a count nor a comparison such as \">= 3\", \"== 0\", \"< 10\": {s:?}"
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

/// A message from a helper (`…; hint: …`) as an error at `path`.
fn located(path: &[&str], text: &str) -> ConfigError {
    match text.split_once("; hint: ") {
        Some((message, hint)) => ConfigError::at_path(path, message).with_hint(hint),
        None => ConfigError::at_path(path, text),
    }
}

impl Spec {
    /// Check a config and turn it into what the evaluation runs: every problem, each
    /// at its key. The component's `validate` reports these at load.
    pub fn build(config: &FileConfig) -> std::result::Result<Spec, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut checks = Vec::new();
        if let Some(text) = &config.equals {
            checks.push(Check::Equals(text.clone()));
        }
        if let Some(text) = &config.sha256 {
            match sha256(text) {
                Ok(hex) => checks.push(Check::Sha256(hex)),
                Err(e) => errors.push(e),
            }
        }
        let texts = |key: &'static str, texts: &Option<Texts>, errors: &mut Vec<ConfigError>| {
            let mut out = Vec::new();
            let Some(texts) = texts else { return out };
            let items = texts.each(key);
            if items.is_empty() {
                errors.push(ConfigError::at(key, "must not be empty").with_hint(format!(
                    "give a text, or a list of texts: {key} = [\"a\", \"b\"]"
                )));
            }
            for (path, text) in items {
                if text.is_empty() {
                    let path: Vec<&str> = path.iter().map(String::as_str).collect();
                    errors.push(ConfigError::at_path(
                        &path,
                        "must not be an empty string (it would hold for every file)",
                    ));
                } else {
                    out.push((path, text.to_owned()));
                }
            }
            out
        };
        for (_, text) in texts("contains", &config.contains, &mut errors) {
            checks.push(Check::Contains(text));
        }
        for (_, text) in texts("not_contains", &config.not_contains, &mut errors) {
            checks.push(Check::NotContains(text));
        }
        for (key, negated, list) in [
            ("matches", false, &config.matches),
            ("not_matches", true, &config.not_matches),
        ] {
            for (path, pattern) in texts(key, list, &mut errors) {
                match regex(&pattern) {
                    Ok(re) if negated => checks.push(Check::NotMatches(re)),
                    Ok(re) => checks.push(Check::Matches(re)),
                    Err(why) => {
                        let path: Vec<&str> = path.iter().map(String::as_str).collect();
                        errors.push(ConfigError::at_path(&path, why));
                    }
                }
            }
        }
        for (key, entries_of) in [("json", &config.json), ("toml", &config.toml)] {
            let Some(map) = entries_of else { continue };
            match entries(key, map) {
                Ok(list) if key == "json" => checks.push(Check::Json(list)),
                Ok(list) => checks.push(Check::Toml(list)),
                Err(e) => errors.extend(e),
            }
        }

        let target = match (&config.path, &config.glob) {
            (Some(_), Some(_)) => {
                errors.push(
                    ConfigError::at("glob", "cannot be combined with `path`")
                        .with_hint("use `path` for one file, `glob` for many"),
                );
                None
            }
            (None, None) => {
                errors.push(ConfigError::new("needs `path` or `glob`").with_hint(
                    "name one file with `path = \"VERSION\"` or several with `glob = \"src/**/*.rs\"`",
                ));
                None
            }
            (Some(p), None) => match Workspace::check_relative(p) {
                _ if p.is_empty() => {
                    errors.push(ConfigError::at("path", "must not be empty"));
                    None
                }
                Ok(()) => Some(Target::Path(p.clone())),
                Err(e) => {
                    let why = e.message();
                    let message = if why.contains("is absolute") {
                        "is absolute"
                    } else {
                        "leaves the workspace"
                    };
                    errors.push(
                        ConfigError::at("path", format!("{p:?} {message}")).with_hint(
                            "write a path relative to the workspace, such as `src/lib.rs`",
                        ),
                    );
                    None
                }
            },
            (None, Some(g)) => match Glob::parse(g) {
                Ok(glob) => Some(Target::Glob(glob)),
                Err(why) => {
                    errors.push(located(&["glob"], &why));
                    None
                }
            },
        };

        let presence = match (config.exists, config.absent) {
            (Some(e), Some(a)) if e == a => {
                errors.push(
                    ConfigError::at("absent", format!("= {a} contradicts `exists = {e}`"))
                        .with_hint("keep one of them"),
                );
                None
            }
            (Some(e), _) => Some(e),
            (None, Some(a)) => Some(!a),
            (None, None) => None,
        };
        let absent_key = if config.absent == Some(true) {
            "absent"
        } else {
            "exists"
        };
        if presence == Some(false) && !checks.is_empty() {
            errors.push(
                ConfigError::at(
                    absent_key,
                    "leaves no content to check, but the config has content checks",
                )
                .with_hint("drop `absent` (or `exists = false`), or the content checks"),
            );
        }
        let count = match &config.count {
            None => None,
            Some(CountSpec::Exactly(n)) => Some(Comparison {
                op: Op::Eq,
                value: *n,
            }),
            Some(CountSpec::Compare(text)) => match Comparison::parse(text) {
                Ok(c) => Some(c),
                Err(why) => {
                    errors.push(ConfigError::at("count", why));
                    None
                }
            },
        };
        if config.count.is_some() {
            if config.path.is_some() && config.glob.is_none() {
                errors.push(
                    ConfigError::at("count", "needs `glob`")
                        .with_hint("`count` is the number of files a glob matches"),
                );
            }
            if presence == Some(false) {
                errors.push(
                    ConfigError::at("count", format!("overlaps `{absent_key}`"))
                        .with_hint("to say that nothing matches, use `count = 0` alone"),
                );
            }
        }
        checks.sort_by_key(check_rank);
        match target {
            Some(target) if errors.is_empty() => Ok(Spec {
                target,
                presence,
                count,
                checks,
            }),
            _ => Err(errors),
        }
    }

    /// Read, check and build a config given as JSON (for tests and tools): the first
    /// problem as an error.
    #[cfg(test)]
    pub fn parse(config: &Config) -> Result<Spec> {
        let value = config.value().clone();
        let problems = check_config::<crate::File, FileConfig>(&value);
        if let Some(e) = problems.into_iter().next() {
            return Err(e.into());
        }
        let config = FileConfig::from_value(value)?;
        Spec::build(&config).map_err(|e| e.into_iter().next().expect("an error").into())
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

fn sha256(text: &str) -> std::result::Result<String, ConfigError> {
    let s = text.trim();
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConfigError::at(
            "sha256",
            format!(
                "must be 64 hex digits (after an optional `sha256:`), found {}",
                quote(s)
            ),
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Regexes are multi-line: `^` and `$` match at line starts and ends.
fn regex(pattern: &str) -> std::result::Result<Regex, String> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| {
            format!(
                "is not a valid regex: {}",
                truncate(&e.to_string().replace('\n', " "), 300)
            )
        })
}

fn entries(
    key: &str,
    map: &BTreeMap<String, Value>,
) -> std::result::Result<Vec<(JsonPath, Value)>, Vec<ConfigError>> {
    if map.is_empty() {
        return Err(vec![ConfigError::at(key, "is empty").with_hint(format!(
            "map a path to its expected value, such as {key} = {{ \"$.version\" = \"1.0.0\" }}"
        ))]);
    }
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (p, expected) in map {
        match JsonPath::parse(p) {
            Ok(path) => out.push((path, expected.clone())),
            Err(why) => errors.push(ConfigError::at_path(
                &[key, p.as_str()],
                format!("is not a usable path: {why}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Spec> {
        Spec::parse(&Config::new(v))
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
