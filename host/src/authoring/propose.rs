//! `kazi propose`: from an idea to a drafted goal. One agent call with an authoring
//! prompt ([`prompt`]) that lists the builtin predicates with the config schemas their
//! components declare; the goal is then taken out of the answer ([`candidates`],
//! [`extract`]), validated with the goal loader, evaluated once (it should fail now:
//! [`vacuous_reason`]) and stored under a deterministic ref ([`proposal_ref`]).
//!
//! Everything here but [`extract`] is pure; the command itself lives in `cli::propose`.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::goal::{self, Goal, ResolvedGoal};
use crate::observe::Evaluation;
use crate::sandbox::{PredicateInfo, Sandbox};
use crate::verdict::Outcome;

/// Longest slug in a ref.
pub const SLUG_MAX: usize = 40;
/// Hex digits of the idea's hash in a ref.
pub const HASH_DIGITS: usize = 12;
/// The name a drafted goal goes by in load errors. It is validated as if it were
/// `.kazi/goals/proposal.toml` in the workspace, where `kazi approve` puts it.
pub const DRAFT_NAME: &str = "proposal.toml";
/// How many TOML parses the search for a goal inside prose may try.
const EMBEDDED_TRIES: usize = 400;

/// The idea as it is hashed: lower case, whitespace runs collapsed to one space,
/// trimmed. `Add  /healthz` and `add /healthz` are the same idea.
pub fn normalise_idea(idea: &str) -> String {
    idea.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `[a-z0-9-]`, at most [`SLUG_MAX`] characters, cut at a word boundary when one is
/// near; `goal` when the idea has no ASCII letter or digit.
pub fn slug(idea: &str) -> String {
    let mut s = String::new();
    for c in normalise_idea(idea).chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    if s.len() > SLUG_MAX {
        let cut = &s[..SLUG_MAX];
        let at_boundary = s.as_bytes()[SLUG_MAX] == b'-';
        s = match cut.rfind('-') {
            Some(i) if !at_boundary && i >= SLUG_MAX / 2 => cut[..i].to_owned(),
            _ => cut.to_owned(),
        };
    }
    let s = s.trim_matches('-');
    if s.is_empty() {
        "goal".to_owned()
    } else {
        s.to_owned()
    }
}

/// `prop-<slug>-<hash12>`: the hash is the first 12 hex digits of the SHA-256 of the
/// normalised idea, a newline, and the workspace path (canonical, as given). The same
/// idea in the same workspace always gets the same ref.
pub fn proposal_ref(idea: &str, workspace: &Path) -> String {
    let mut h = Sha256::new();
    h.update(normalise_idea(idea).as_bytes());
    h.update(b"\n");
    h.update(workspace.as_os_str().as_encoded_bytes());
    let hex = hex::encode(h.finalize());
    format!("prop-{}-{}", slug(idea), &hex[..HASH_DIGITS])
}

/// The authoring prompt: the idea, what a goal file looks like, every predicate in
/// `predicates` with the config schema its component declares, and what to answer.
pub fn prompt(idea: &str, workspace: &Path, predicates: &[PredicateInfo]) -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        "You are drafting a goal file for kazi. kazi drives a coding agent until every \
         predicate of a goal holds: a predicate is a machine-checked statement about the \
         workspace (the tests pass, a file says the right thing, a command prints the \
         right value, an endpoint answers)."
    );
    let _ = writeln!(p, "\n# The idea\n\n{}", idea.trim());
    let _ = writeln!(
        p,
        "\n# The workspace\n\nThe workspace is your current directory ({}). Look around \
         (read files, list directories, read the build and test setup) to find how the \
         idea can be checked here. Do not change, create or delete any file: your only \
         output is the goal file, in your answer.",
        workspace.display()
    );
    let _ = writeln!(
        p,
        "\n# What to write\n\n\
         ONE goal file whose predicates FAIL in the workspace as it is now and PASS once \
         the idea is built. kazi evaluates every predicate right after you answer: a goal \
         that already passes is rejected as vacuous.\n\n\
         - Check observable outcomes (tests, file contents, command output, HTTP \
         answers), not how the code is written.\n\
         - Prefer a few precise predicates to many vague ones; give each a `description` \
         the coding agent can act on.\n\
         - When the idea needs new tests, say so in the goal's `description` and check \
         them with a `command` predicate (for example a `match` on the test's name in \
         the test runner's output), so the goal fails until they exist and pass.\n\
         - Add a guard (`guard = true`) that the existing tests keep passing when there \
         are tests."
    );
    let _ = writeln!(
        p,
        "\n# Goal file format (TOML)\n\n\
         Top level:\n\
         - `id` (required): `[a-z0-9][a-z0-9._-]*`, names the goal.\n\
         - `name`: one line for people.\n\
         - `description`: what to build, for the coding agent.\n\
         - `mode`: `\"create\"` (something new) or `\"repair\"` (something broken; the default).\n\
         \n\
         `[budget]`, every key optional: `max_iterations` (integer), `max_wall_clock` \
         (`\"30m\"`), `max_tokens` (integer), `max_cost_usd` (number), `max_dispatches` \
         (integer).\n\
         \n\
         `[scope]`: `writable` (paths the agent may change), `protected` (paths it must \
         not change, such as acceptance tests that already exist). Do not set `workspace`: \
         kazi sets it.\n\
         \n\
         Leave out `[agent]`: the person running kazi picks the agent.\n\
         \n\
         `[[predicate]]`, at least one, ids unique:\n\
         - `id` (required), `use` (required: one of the predicates below), `description`.\n\
         - `guard = true`: must never regress. `live = true`: only expected to pass after \
         `[deploy]` ran (then add `[deploy] run = [\"./deploy.sh\"]`). `held_out = true`: \
         never shown to the coding agent.\n\
         - `ratchet = {{ metric = \"tests_passed\", direction = \"no-decrease\" }}`: fails \
         when the metric drops below the best value seen.\n\
         - `timeout = \"10m\"`: evaluation limit (default 60s).\n\
         - Every other key is the predicate's config, checked against its schema below. \
         Unknown keys are errors.\n\
         \n\
         Durations are strings such as `\"90s\"`, `\"30m\"`, `\"2h\"`. Programs in `run` \
         are argv lists run without a shell, in the workspace root, with only PATH and \
         HOME in the environment: write `[\"cargo\", \"test\"]`, or \
         `[\"sh\", \"-c\", \"…\"]` when you need a shell.\n\
         \n\
         Example:\n\
         \n\
         ```toml\n\
         id = \"healthz\"\n\
         name = \"a /healthz endpoint that returns 200\"\n\
         description = \"Add GET /healthz answering 200 with body ok, with a test.\"\n\
         mode = \"create\"\n\
         \n\
         [budget]\n\
         max_iterations = 10\n\
         \n\
         [[predicate]]\n\
         id = \"healthz-test-passes\"\n\
         use = \"command\"\n\
         description = \"the healthz test exists and passes\"\n\
         run = [\"cargo\", \"test\", \"healthz\"]\n\
         match = \"test .*healthz.* \\\\.\\\\.\\\\. ok\"\n\
         \n\
         [[predicate]]\n\
         id = \"tests-pass\"\n\
         use = \"command\"\n\
         guard = true\n\
         run = [\"cargo\", \"test\"]\n\
         ```"
    );
    let _ = writeln!(
        p,
        "\n# Predicates\n\nThe builtin predicates, each with the JSON Schema of its config \
         (the keys of a `[[predicate]]` besides kazi's own), as the component declares it:"
    );
    for info in predicates {
        let mut schema = info.config_schema.clone();
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
        }
        let _ = writeln!(
            p,
            "\n## `{}`: {}\n\n```json\n{}\n```",
            info.name,
            info.summary,
            serde_json::to_string(&schema).expect("JSON values serialise")
        );
    }
    let _ = writeln!(
        p,
        "\n# Your answer\n\nAnswer with the whole goal file in one ```toml fenced block, \
         and nothing after it."
    );
    p
}

/// A goal found in an agent's answer: where, and its TOML text (or why a JSON one
/// could not be turned into TOML).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Where in the answer, for messages: "the ```toml block at line 3".
    pub origin: String,
    pub text: Result<String, String>,
}

/// Every goal-shaped piece of `answer`, in order. Fenced blocks tagged `toml`, `json`
/// or nothing win; without any, the whole answer (TOML or JSON); failing that, a TOML
/// document or a JSON object wrapped in prose. JSON is converted to TOML text.
pub fn candidates(answer: &str) -> Vec<Candidate> {
    let fenced = fenced_blocks(answer);
    if !fenced.is_empty() {
        return fenced
            .into_iter()
            .map(|(lang, line, body)| {
                let json =
                    lang == "json" || (lang.is_empty() && body.trim_start().starts_with('{'));
                let tag = if lang.is_empty() { String::new() } else { lang };
                let origin = format!("the ```{tag} block at line {line}");
                Candidate {
                    origin,
                    text: if json {
                        json_text_to_toml(&body)
                    } else {
                        Ok(body)
                    },
                }
            })
            .collect();
    }
    let trimmed = answer.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        return vec![Candidate {
            origin: "the answer (JSON)".into(),
            text: json_text_to_toml(trimmed),
        }];
    }
    let first = trimmed
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if trimmed.parse::<toml::Table>().is_ok() || first.is_some_and(is_toml_start) {
        return vec![Candidate {
            origin: "the answer".into(),
            text: Ok(format!("{trimmed}\n")),
        }];
    }
    if let Some((from, to, text)) = embedded_toml(answer) {
        return vec![Candidate {
            origin: format!("the TOML at lines {from}-{to}"),
            text: Ok(text),
        }];
    }
    if let (Some(a), Some(b)) = (answer.find('{'), answer.rfind('}'))
        && a < b
        && serde_json::from_str::<serde_json::Value>(&answer[a..=b]).is_ok_and(|v| v.is_object())
    {
        let line = answer[..a].lines().count().max(1);
        return vec![Candidate {
            origin: format!("the JSON object at line {line}"),
            text: json_text_to_toml(&answer[a..=b]),
        }];
    }
    Vec::new()
}

/// Fenced code blocks (``` or ~~~) tagged `toml`, `json` or nothing: (tag, 1-based
/// line of the opening fence, body). An unclosed block runs to the end.
fn fenced_blocks(answer: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        let fence_char = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let Some(fc) = fence_char else {
            i += 1;
            continue;
        };
        let n = t.chars().take_while(|c| *c == fc).count();
        if n < 3 {
            i += 1;
            continue;
        }
        let lang = t[n..]
            .split(|c: char| c.is_whitespace() || c == '{' || c == ',')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() {
            let t = lines[i].trim();
            if t.len() >= n && t.chars().all(|c| c == fc) {
                break;
            }
            let l = lines[i];
            let strip = l.len() - l.trim_start().len();
            body.push(&l[strip.min(indent)..]);
            i += 1;
        }
        i += 1;
        if matches!(lang.as_str(), "toml" | "json" | "") {
            let mut text = body.join("\n");
            text.push('\n');
            out.push((lang, start + 1, text));
        }
    }
    out
}

/// A line that starts a TOML statement: a table header or `key = …`.
fn is_toml_start(line: &str) -> bool {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        let rest = rest.strip_prefix('[').unwrap_or(rest).trim_start();
        return rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '"');
    }
    let key: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    !key.is_empty() && t[key.len()..].trim_start().starts_with('=')
}

/// A goal-shaped TOML document inside prose: from a line that starts a TOML
/// statement to the last line after which the whole still parses and has predicates.
/// Returns the 1-based first and last line and the text.
fn embedded_toml(answer: &str) -> Option<(usize, usize, String)> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut tries = 0;
    let starts = (0..lines.len())
        .filter(|&i| is_toml_start(lines[i]))
        .take(3);
    for s in starts {
        for e in (s..lines.len()).rev() {
            if lines[e].trim().is_empty() {
                continue;
            }
            tries += 1;
            if tries > EMBEDDED_TRIES {
                return None;
            }
            let mut text = lines[s..=e].join("\n");
            text.push('\n');
            if let Ok(t) = text.parse::<toml::Table>()
                && (t.contains_key("predicate") || t.contains_key("predicates"))
            {
                return Some((s + 1, e + 1, text));
            }
        }
    }
    None
}

fn json_text_to_toml(text: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not valid JSON: {e}"))?;
    json_to_toml(&value)
}

/// A JSON goal (an object with the goal file's keys) as TOML text, in the order a
/// goal file is usually written. `null` members are left out.
pub fn json_to_toml(value: &serde_json::Value) -> Result<String, String> {
    let serde_json::Value::Object(_) = value else {
        return Err(format!(
            "a JSON {}, not an object with the goal file's keys",
            json_type(value)
        ));
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

fn to_toml_value(v: &serde_json::Value, at: &str) -> Result<Option<toml::Value>, String> {
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
                    None => return Err(format!("{at} is null, which TOML cannot hold")),
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
pub fn set_scope_workspace(text: &str, workspace: Option<&str>) -> Result<String, String> {
    let doc: toml::Table = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let mut expected = doc.clone();
    match workspace {
        Some(w) => {
            let scope = expected
                .entry("scope")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(scope) = scope.as_table_mut() else {
                return Err("`scope` is not a table".into());
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
        Err("could not set `[scope] workspace`".into())
    }
}

/// The path from directory `from` to `to`, both absolute: `../..`, `sub`, or `.`.
pub fn relative_path(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        rel.display().to_string()
    }
}

/// The goal file `kazi approve` writes at `goal_file` (absolute, its directory
/// canonical) for a goal drafted in `workspace`: the drafted text with
/// `[scope] workspace` pointing from the file's directory back to the workspace.
pub fn approved_text(
    goal_text: &str,
    goal_file: &Path,
    workspace: &Path,
) -> Result<String, String> {
    let dir = goal_file.parent().unwrap_or(Path::new("/"));
    let rel = relative_path(dir, workspace);
    set_scope_workspace(goal_text, (rel != ".").then_some(rel.as_str()))
}

/// The path a draft is validated at: `.kazi/goals/proposal.toml` in the workspace.
pub fn draft_path(workspace: &Path) -> PathBuf {
    workspace.join(".kazi").join("goals").join(DRAFT_NAME)
}

/// The goal chosen from an answer.
pub struct Draft {
    pub goal: ResolvedGoal,
    /// The text to store (without `[scope] workspace`).
    pub text: String,
    pub origin: String,
    /// For the user: loader notices, a removed workspace, other goals in the answer.
    pub notices: Vec<String>,
}

/// A candidate that did not load, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub origin: String,
    pub reason: String,
}

/// Why no goal came out of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtractError {
    /// The answer was blank.
    Empty,
    /// Nothing in it looked like a goal file.
    NoGoal,
    /// Goals were there, and none loads.
    Invalid(Vec<Rejection>),
}

/// Take the goal out of `answer` and validate it for `workspace` the way `kazi run`
/// would (loader, then components and their config schemas). When several goals in
/// the answer load, the last one wins: it is the agent's final word.
pub async fn extract(
    sandbox: &Sandbox,
    workspace: &Path,
    answer: &str,
) -> Result<Draft, ExtractError> {
    if answer.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    let found = candidates(answer);
    if found.is_empty() {
        return Err(ExtractError::NoGoal);
    }
    let mut rejections = Vec::new();
    let mut chosen: Option<Draft> = None;
    let mut loaded = 0;
    for c in found {
        let text = match c.text {
            Ok(t) => t,
            Err(reason) => {
                rejections.push(Rejection {
                    origin: c.origin,
                    reason,
                });
                continue;
            }
        };
        match validate(sandbox, workspace, &text).await {
            Ok((goal, text, notices)) => {
                loaded += 1;
                chosen = Some(Draft {
                    goal,
                    text,
                    origin: c.origin,
                    notices,
                });
            }
            Err(reason) => rejections.push(Rejection {
                origin: c.origin,
                reason,
            }),
        }
    }
    match chosen {
        Some(mut d) => {
            if loaded > 1 {
                d.notices.push(format!(
                    "the answer holds {loaded} goals that load; kazi took the last one ({})",
                    d.origin
                ));
            }
            Ok(d)
        }
        None => Err(ExtractError::Invalid(rejections)),
    }
}

/// Load and resolve one drafted goal; `[scope] workspace` is removed first (a
/// proposal belongs to the workspace it was drafted in).
async fn validate(
    sandbox: &Sandbox,
    workspace: &Path,
    text: &str,
) -> Result<(ResolvedGoal, String, Vec<String>), String> {
    let path = draft_path(workspace);
    let shown = path.display().to_string();
    let tidy = |s: String| s.replace(&shown, DRAFT_NAME);
    let mut notices = Vec::new();
    let mut text = text.to_owned();
    if let Ok(doc) = text.parse::<toml::Table>()
        && let Some(w) = doc.get("scope").and_then(|s| s.get("workspace"))
    {
        text = set_scope_workspace(&text, None)?;
        notices.push(format!(
            "the drafted goal set `[scope] workspace = {w}`; kazi removed it: a proposal belongs to the workspace it was drafted in"
        ));
    }
    let goal = goal::load_str(&path, &text).map_err(|e| tidy(e.to_string()))?;
    notices.extend(goal.notices.iter().map(|n| tidy(n.clone())));
    let resolved = goal::resolve(sandbox, goal)
        .await
        .map_err(|e| tidy(e.to_string()))?;
    Ok((resolved, text, notices))
}

/// Why `goal` is vacuous given one observation: every predicate passes already, so
/// there is nothing to build. A standing goal is never vacuous (`kazi run` accepts
/// one that passes at the start).
pub fn vacuous_reason(goal: &Goal, results: &[Evaluation]) -> Option<String> {
    if goal.standing
        || results.is_empty()
        || results.iter().any(|e| e.verdict.outcome != Outcome::Pass)
    {
        return None;
    }
    let ids: Vec<&str> = results.iter().map(|e| e.id.as_str()).collect();
    Some(format!(
        "every predicate passes already ({}): there is nothing to build",
        ids.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAL: &str = "id = \"hello\"\n\n[[predicate]]\nid = \"hello\"\nuse = \"file\"\npath = \"hello.txt\"\ncontains = \"hello\"\n";

    fn texts(answer: &str) -> Vec<(String, Result<String, String>)> {
        candidates(answer)
            .into_iter()
            .map(|c| (c.origin, c.text))
            .collect()
    }

    #[test]
    fn ideas_normalise_case_and_whitespace() {
        assert_eq!(
            normalise_idea("  Add   a\t/healthz\nEndpoint "),
            "add a /healthz endpoint"
        );
    }

    #[test]
    fn slugs_are_short_lowercase_words() {
        assert_eq!(slug("Add a /healthz endpoint!"), "add-a-healthz-endpoint");
        assert_eq!(slug("  ---  "), "goal");
        assert_eq!(slug("日本語"), "goal");
        assert_eq!(slug("café au lait"), "caf-au-lait");
        let long = slug("make the command line parser accept repeated flags and print them back");
        assert!(long.len() <= SLUG_MAX, "{long}");
        assert_eq!(long, "make-the-command-line-parser-accept");
        let unbroken = slug(&"x".repeat(100));
        assert_eq!(unbroken.len(), SLUG_MAX);
        assert!(
            slug("a b")
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn refs_are_deterministic_per_idea_and_workspace() {
        let ws = Path::new("/tmp/ws");
        let r = proposal_ref("Add a /healthz endpoint", ws);
        assert!(r.starts_with("prop-add-a-healthz-endpoint-"), "{r}");
        let hash = r.rsplit('-').next().unwrap();
        assert_eq!(hash.len(), HASH_DIGITS);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(r, proposal_ref("add a  /healthz ENDPOINT ", ws));
        assert_ne!(
            r,
            proposal_ref("Add a /healthz endpoint", Path::new("/tmp/other"))
        );
        assert_ne!(r, proposal_ref("Add a /ready endpoint", ws));
        // Pinned: changing the recipe would orphan every stored proposal.
        let mut h = Sha256::new();
        h.update(b"add a /healthz endpoint\n/tmp/ws");
        assert_eq!(&hex::encode(h.finalize())[..12], hash);
    }

    #[test]
    fn a_bare_toml_answer_is_one_candidate() {
        let c = texts(&format!("\n{GOAL}\n"));
        assert_eq!(c, [("the answer".to_owned(), Ok(GOAL.to_owned()))]);
    }

    #[test]
    fn fenced_blocks_are_the_candidates_when_there_are_any() {
        let answer = format!(
            "Here is the goal:\n\n```toml\n{GOAL}```\n\nRun it with:\n\n```sh\nkazi run x\n```\n\nOr as JSON:\n~~~json\n{{\"id\": \"j\"}}\n~~~\n```\nid = \"bare\"\n```\n"
        );
        let c = texts(&answer);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(
            c[0],
            (
                "the ```toml block at line 3".to_owned(),
                Ok(GOAL.to_owned())
            )
        );
        assert_eq!(c[1].0, "the ```json block at line 20");
        assert_eq!(c[1].1, Ok("id = \"j\"\n".to_owned()));
        assert_eq!(
            c[2],
            (
                "the ``` block at line 23".to_owned(),
                Ok("id = \"bare\"\n".to_owned())
            )
        );
    }

    #[test]
    fn an_indented_or_unclosed_fence_still_counts() {
        let c = texts("1. the goal:\n   ```toml\n   id = \"a\"\n     x = 1\n   ```\n");
        assert_eq!(c[0].1, Ok("id = \"a\"\n  x = 1\n".to_owned()));
        let c = texts("```TOML\nid = \"a\"\n");
        assert_eq!(c[0].1, Ok("id = \"a\"\n".to_owned()));
    }

    #[test]
    fn toml_wrapped_in_prose_is_found() {
        let answer = format!(
            "Sure. This goal checks the greeting:\n\n{GOAL}\nIt fails now because hello.txt is missing.\n"
        );
        let c = texts(&answer);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "the TOML at lines 3-9");
        assert_eq!(c[0].1, Ok(GOAL.to_owned()));
    }

    #[test]
    fn json_answers_become_toml_in_goal_order() {
        let answer = r#"{"predicate": [{"path": "a.txt", "use": "file", "id": "a", "allow": {"net": ["x:1"]}, "gone": null}],
            "scope": {"writable": ["src/"]}, "id": "g", "name": "the \"g\"", "deploy": {"run": ["./d.sh"]},
            "budget": {"max_iterations": 3, "max_cost_usd": 1.5}}"#;
        let c = texts(answer);
        assert_eq!(c[0].0, "the answer (JSON)");
        let text = c[0].1.clone().unwrap();
        assert_eq!(
            text,
            "id = \"g\"\nname = 'the \"g\"'\n\n[budget]\nmax_cost_usd = 1.5\nmax_iterations = 3\n\n[scope]\nwritable = [\"src/\"]\n\n[[predicate]]\nid = \"a\"\nuse = \"file\"\nallow = { net = [\"x:1\"] }\npath = \"a.txt\"\n\n[deploy]\nrun = [\"./d.sh\"]\n"
        );
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(
            back["predicate"][0]["allow"]["net"][0].as_str(),
            Some("x:1")
        );
    }

    #[test]
    fn json_in_prose_and_bad_json_are_reported() {
        let c = texts("The goal is {\"id\": \"g\", \"predicate\": []} as you asked.");
        assert_eq!(c[0].0, "the JSON object at line 1");
        assert_eq!(c[0].1, Ok("id = \"g\"\npredicate = []\n".to_owned()));
        let c = texts("```json\n{\"id\": \n```");
        assert!(
            c[0].1.as_ref().unwrap_err().starts_with("not valid JSON"),
            "{c:?}"
        );
        let c = texts("```json\n[1, 2]\n```");
        assert_eq!(
            c[0].1,
            Err("a JSON array, not an object with the goal file's keys".to_owned())
        );
        let c = texts("```json\n{\"a\": [null]}\n```");
        assert_eq!(
            c[0].1,
            Err("$.a[0] is null, which TOML cannot hold".to_owned())
        );
    }

    #[test]
    fn prose_alone_has_no_candidate() {
        assert!(texts("I could not find a way to check that. Sorry!").is_empty());
        assert!(texts("   \n").is_empty());
    }

    #[test]
    fn a_broken_bare_toml_answer_stays_whole_so_its_error_shows() {
        let c = texts("id = \"a\"\n[[predicate]\nid = \"b\"\n");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "the answer");
    }

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
    fn relative_paths_lead_back_to_the_workspace() {
        assert_eq!(
            relative_path(Path::new("/w/.kazi/goals"), Path::new("/w")),
            "../.."
        );
        assert_eq!(relative_path(Path::new("/w"), Path::new("/w")), ".");
        assert_eq!(relative_path(Path::new("/tmp"), Path::new("/tmp/w")), "w");
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/c")), "../../c");
        let text = approved_text(
            GOAL,
            Path::new("/w/.kazi/goals/hello.toml"),
            Path::new("/w"),
        )
        .unwrap();
        assert!(text.ends_with("[scope]\nworkspace = \"../..\"\n"), "{text}");
        assert_eq!(
            approved_text(GOAL, Path::new("/w/hello.toml"), Path::new("/w")).unwrap(),
            GOAL
        );
    }

    #[test]
    fn the_prompt_lists_every_predicate_with_its_schema() {
        let info = |name: &str| PredicateInfo {
            name: name.into(),
            version: "1".into(),
            summary: format!("the {name} check"),
            config_schema: serde_json::json!({"$schema": "x", "type": "object", "properties": {"needle": {"type": "string"}}}),
            capabilities: Default::default(),
        };
        let p = prompt(
            "say hello",
            Path::new("/w"),
            &[info("file"), info("command")],
        );
        assert!(p.contains("# The idea\n\nsay hello\n"), "{p}");
        assert!(p.contains("current directory (/w)"));
        assert!(p.contains("## `file`: the file check"));
        assert!(p.contains("## `command`: the command check"));
        assert!(p.contains("\"needle\""));
        assert!(!p.contains("$schema"));
        assert!(p.contains("FAIL in the workspace as it is now and PASS once"));
        assert!(p.ends_with("nothing after it.\n"));
        // The example in the prompt is itself a goal file.
        let example = p
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        assert!(
            goal::load_str(Path::new("/w/x.toml"), example).is_ok(),
            "{example}"
        );
    }
}
