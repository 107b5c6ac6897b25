//! Turn a [`Goal`] into something that can be evaluated: load every predicate's
//! component, grant builtins what their config implies, refuse a component that asks
//! for more than the goal grants, and check each config — with the component's own
//! `validate` (WIT 0.2.0), then against the schema it declares — and the `[agent]`
//! table with the profile's; all before the first observation. Each problem a
//! component reports carries a JSON pointer, shown here as the goal file's line and
//! column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::tree::{LineIndex, Node, Table, Value as TomlValue};
use super::{Goal, GoalError, PredicateSpec, Problem, UseRef, schema};
use crate::sandbox::{
    ConfigProblem, Grants, LoadedPredicate, LoadedProfile, NetTarget, Sandbox, Source,
};

/// A predicate ready to evaluate.
#[derive(Clone)]
pub struct ResolvedPredicate {
    pub spec: PredicateSpec,
    pub component: LoadedPredicate,
    /// What it may do: `[predicate.allow]` plus what a builtin's config implies.
    pub grants: Grants,
}

/// A goal whose predicates are all loaded and checked (and its `[agent]` table with
/// its profile; [`resolve_profile`] gives the profile itself).
#[derive(Clone)]
pub struct ResolvedGoal {
    pub goal: Goal,
    pub predicates: Vec<ResolvedPredicate>,
}

/// What a builtin may do because of its own config: `command` and `log` may run the
/// program in `run`, `http` may reach the host in `url`.
pub fn implied_grants(builtin: &str, config: &serde_json::Value) -> Grants {
    let mut g = Grants::default();
    match builtin {
        "command" | "log" => {
            if let Some(program) = config
                .get("run")
                .and_then(|r| r.get(0))
                .and_then(|p| p.as_str())
            {
                g.allow_exec(program);
            }
            // The variables its `env` config sets for the program.
            if let Some(env) = config.get("env").and_then(|e| e.as_object()) {
                g.env.extend(env.keys().cloned());
            }
        }
        "http" => {
            if let Some(url) = config.get("url").and_then(|u| u.as_str()) {
                let _ = g.allow_net(url);
            }
        }
        _ => {}
    }
    g
}

/// The limits a predicate's component is loaded under (`[predicate.limits]`).
fn load_limits(spec: &crate::goal::PredicateSpec) -> crate::sandbox::LoadLimits {
    let d = crate::sandbox::LoadLimits::default();
    crate::sandbox::LoadLimits {
        max_component_bytes: spec.component_bytes.unwrap_or(d.max_component_bytes),
        memory_bytes: spec.memory_bytes.unwrap_or(d.memory_bytes),
        ..d
    }
}

fn union(mut a: Grants, b: Grants) -> Grants {
    a.exec.extend(b.exec);
    a.net.extend(b.net);
    a.env.extend(b.env);
    a.fs_write |= b.fs_write;
    a
}

/// The `[predicate.allow]` lines that would grant what is `missing`.
fn allow_hint(missing: &Grants) -> String {
    let list = |items: Vec<String>| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![
        "add under this predicate:".to_owned(),
        "    [predicate.allow]".to_owned(),
    ];
    if !missing.exec.is_empty() {
        lines.push(format!(
            "    exec = [{}]",
            list(missing.exec.iter().cloned().collect())
        ));
    }
    if !missing.net.is_empty() {
        lines.push(format!(
            "    net = [{}]",
            list(missing.net.iter().map(NetTarget::to_string).collect())
        ));
    }
    if !missing.env.is_empty() {
        lines.push(format!(
            "    env = [{}]",
            list(missing.env.iter().cloned().collect())
        ));
    }
    if missing.fs_write {
        lines.push("    fs = \"write\"".to_owned());
    }
    lines.join("\n")
}

/// A problem at the place a JSON pointer names in `positions`, else at `fallback`.
fn problem_at(
    positions: &Positions,
    fallback: &Position,
    pointer: &str,
    message: String,
    hint: Option<String>,
) -> Problem {
    let p = locate(positions, pointer).unwrap_or_else(|| fallback.clone());
    Problem {
        line: p.line.max(1),
        col: p.col.max(1),
        message,
        hint,
        source_line: p.text,
    }
}

/// Where the value a JSON pointer names stands: the deepest recorded place on its
/// path (the value itself, else the key holding it); `None` for the table as a whole
/// or a place not in the file.
pub fn locate(positions: &Positions, pointer: &str) -> Option<Position> {
    let tokens = schema::parse_pointer(pointer).unwrap_or_default();
    (1..=tokens.len()).rev().find_map(|depth| {
        if depth == 1 {
            positions.get(&tokens[0]).cloned()
        } else {
            positions.get(&schema::pointer(&tokens[..depth])).cloned()
        }
    })
}

/// How a problem a component reported reads in a goal error: `` `key` message `` or,
/// for the config as a whole, `its config message`.
fn shown(pointer: &str, message: &str, whole: &str) -> String {
    match schema::parse_pointer(pointer) {
        Some(tokens) if tokens.is_empty() => format!("{whole} {message}"),
        Some(tokens) => format!("`{}` {message}", schema::display_path(&tokens)),
        // Not a JSON pointer (a component's mistake): show it as it came.
        None => format!("{whole} (at {pointer:?}) {message}"),
    }
}

/// Load and check every predicate of `goal`, and its `[agent]` table with its profile.
/// All problems are reported together. What the user should know but that does not
/// stop the goal (a component built against an older WIT version, which cannot check
/// its own config) is added to the goal's notices.
pub async fn resolve(sandbox: &Sandbox, mut goal: Goal) -> Result<ResolvedGoal, GoalError> {
    let mut problems = Vec::new();
    let mut notices = Vec::new();
    let mut noticed = BTreeSet::new();
    let mut out = Vec::new();
    for spec in &goal.predicates {
        let at = |key: &str| spec.positions.get(key).cloned().unwrap_or_default();
        let problem = |key: &str, message: String, hint: Option<String>| {
            let p = at(key);
            Problem {
                line: p.line.max(spec.line),
                col: p.col.max(1),
                message,
                hint,
                source_line: p.text,
            }
        };
        let source = match &spec.use_ref {
            UseRef::Builtin(name) => {
                crate::builtins::predicate(name).expect("builtin names are checked at parse")
            }
            UseRef::Path(path) => match Source::from_file_with_limits(path, load_limits(spec)) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(problem(
                        "use",
                        format!("predicate \"{}\": {e}", spec.id),
                        Some("check the path; it is relative to the goal file".into()),
                    ));
                    continue;
                }
            },
            UseRef::Package { name, req } => match crate::pkg::install::resolve_locked(
                &goal.scope.workspace,
                &crate::pkg::store::Store::open_default(),
                name,
                req,
                crate::pkg::Kind::Predicate,
            ) {
                Ok(r) => r.source,
                Err(e) => {
                    problems.push(problem(
                        "use",
                        format!("predicate \"{}\": {}", spec.id, e.message),
                        e.hint,
                    ));
                    continue;
                }
            },
        };
        let source = source.with_limits(load_limits(spec));
        let component = match sandbox.load_predicate(&source).await {
            Ok(c) => c,
            Err(e) => {
                problems.push(problem(
                    "use",
                    format!("predicate \"{}\": {e}", spec.id),
                    None,
                ));
                continue;
            }
        };
        let implied = match &spec.use_ref {
            UseRef::Builtin(name) => implied_grants(name, &spec.config),
            UseRef::Path(_) | UseRef::Package { .. } => Grants::default(),
        };
        let grants = union(spec.allow.clone(), implied);
        let requested = &component.info.capabilities;
        let missing = Grants {
            exec: requested.exec.difference(&grants.exec).cloned().collect(),
            net: requested.net.difference(&grants.net).cloned().collect(),
            env: requested.env.difference(&grants.env).cloned().collect(),
            fs_write: requested.fs_write && !grants.fs_write,
        };
        if missing != Grants::default() {
            problems.push(problem(
                "use",
                format!(
                    "predicate \"{}\" ({}) asks for capabilities the goal does not grant",
                    spec.id, component.label
                ),
                Some(allow_hint(&missing)),
            ));
        }
        let config_problems = check_config(sandbox, &component, &spec.config).await;
        match config_problems {
            Err(reason) => problems.push(problem(
                "use",
                format!("predicate \"{}\": {reason}", spec.id),
                Some("the component is broken; rebuild it, or ask its author".into()),
            )),
            Ok(found) => {
                for c in found {
                    let message = format!(
                        "predicate \"{}\": {}",
                        spec.id,
                        shown(&c.pointer, &c.message, "its config")
                    );
                    let fallback = Position {
                        line: at("id").line.max(spec.line),
                        ..at("id")
                    };
                    problems.push(problem_at(
                        &spec.positions,
                        &fallback,
                        &c.pointer,
                        message,
                        c.hint,
                    ));
                }
            }
        }
        if !component.validates() && noticed.insert(component.digest.clone()) {
            notices.push(format!(
                "predicate \"{}\" ({}) targets {}, which cannot check its own config: kazi checks it against its schema only; hint: rebuild it against kazi-sdk {} for load-time checks of everything the schema cannot say",
                spec.id,
                component.label,
                component.world,
                crate::sandbox::WIT_VERSION
            ));
        }
        out.push(ResolvedPredicate {
            spec: spec.clone(),
            component,
            grants,
        });
    }
    match resolve_agent(sandbox, &goal, &goal.scope.workspace).await {
        Ok((_, notice)) => notices.extend(notice),
        Err(found) => problems.extend(found),
    }
    if problems.is_empty() {
        goal.notices.extend(notices);
        Ok(ResolvedGoal {
            goal,
            predicates: out,
        })
    } else {
        problems.sort_by_key(|p| (p.line, p.col));
        Err(GoalError::Invalid {
            path: goal.path.clone(),
            problems,
        })
    }
}

/// Check a config given outside a goal (`kazi predicate eval --config`) the way a goal's
/// is checked at load: `Err` with every problem, one per line, when it is refused.
pub async fn check_predicate_config(
    sandbox: &Sandbox,
    predicate: &LoadedPredicate,
    config: &serde_json::Value,
) -> Result<(), String> {
    let found = check_config(sandbox, predicate, config).await?;
    if found.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = found
        .iter()
        .map(|c| {
            let mut line = format!("\n  {}", shown(&c.pointer, &c.message, "the config"));
            if let Some(h) = &c.hint {
                line.push_str(&format!("; hint: {h}"));
            }
            line
        })
        .collect();
    Err(format!(
        "the config of {} is invalid:{}",
        predicate.label,
        lines.concat()
    ))
}

/// Check a predicate's config: the component's own `validate` when it has one, then
/// (when it found nothing) the schema it declares, which binds every component.
async fn check_config(
    sandbox: &Sandbox,
    component: &LoadedPredicate,
    config: &serde_json::Value,
) -> Result<Vec<ConfigProblem>, String> {
    if let Some(found) = sandbox.validate_config(component, config).await?
        && !found.is_empty()
    {
        return Ok(found);
    }
    Ok(schema::validate(&component.info.config_schema, config)
        .into_iter()
        .map(|v| ConfigProblem {
            pointer: v.pointer(),
            message: v.message,
            hint: v.hint,
        })
        .collect())
}

/// The keys of `[agent]` that kazi reads itself; the profile reads `model` and `run`
/// too, and every other key is one of its options.
const AGENT_HOST_KEYS: &[&str] = &["profile", "timeout", "env"];

/// Load the `[agent]` profile of `goal` and check the table with it, reporting each
/// problem at its key's line: a profile that cannot be found or loaded, an option it
/// does not understand, and whatever its `validate` (WIT 0.2.0) refuses.
pub async fn resolve_profile(
    sandbox: &Sandbox,
    goal: &Goal,
    workspace: &Path,
) -> Result<(LoadedProfile, Vec<String>), GoalError> {
    resolve_agent(sandbox, goal, workspace)
        .await
        .map_err(|mut problems| {
            problems.sort_by_key(|p| (p.line, p.col));
            GoalError::Invalid {
                path: goal.path.clone(),
                problems,
            }
        })
}

async fn resolve_agent(
    sandbox: &Sandbox,
    goal: &Goal,
    workspace: &Path,
) -> Result<(LoadedProfile, Vec<String>), Vec<Problem>> {
    let agent = &goal.agent;
    let header = agent.positions.get(HEADER).cloned().unwrap_or(Position {
        line: 1,
        col: 1,
        text: String::new(),
    });
    let at = |pointer: &str, message: String, hint: Option<String>| {
        problem_at(&agent.positions, &header, pointer, message, hint)
    };
    let base = goal
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let source = crate::agent::profile_source(&agent.profile, &base, workspace).map_err(|e| {
        let (message, hint) = match e.split_once("; hint: ") {
            Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
            None => (e, None),
        };
        vec![at("/profile", format!("[agent] {message}"), hint)]
    })?;
    let profile = sandbox.load_profile(&source).await.map_err(|e| {
        vec![at(
            "/profile",
            format!("[agent] failed to load the agent profile: {e}"),
            None,
        )]
    })?;
    let mut problems = Vec::new();
    let mut config = serde_json::Map::new();
    for key in ["model", "run"] {
        if agent.positions.contains_key(key) {
            let value = match key {
                "model" => agent.model.clone().map(serde_json::Value::from),
                _ => Some(agent.run.clone().into()),
            };
            if let Some(v) = value {
                config.insert(key.to_owned(), v);
            }
        }
    }
    let known: Vec<&str> = AGENT_HOST_KEYS
        .iter()
        .copied()
        .chain(["model", "run"])
        .chain(profile.info.options.iter().map(String::as_str))
        .collect();
    for (key, value) in &agent.options {
        if profile.info.options.contains(key) {
            config.insert(key.clone(), value.clone());
            continue;
        }
        let hint = match super::did_you_mean(key, known.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!(
                "the {} profile understands {}",
                profile.info.id,
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        problems.push(at(
            &schema::pointer(&[key]),
            format!(
                "[agent] `{key}` is not an option of the {} profile",
                profile.info.id
            ),
            Some(hint),
        ));
    }
    let mut notices = Vec::new();
    match sandbox
        .validate_profile(&profile, &serde_json::Value::Object(config))
        .await
    {
        Err(reason) => problems.push(at(
            "/profile",
            format!("[agent] {reason}"),
            Some("the profile is broken; rebuild it, or ask its author".into()),
        )),
        Ok(None) => notices.push(format!(
            "agent profile {} targets {}, which cannot check `[agent]` options: they are checked only when the agent runs; hint: rebuild it against kazi-sdk {}",
            profile.label,
            profile.world,
            crate::sandbox::WIT_VERSION
        )),
        Ok(Some(found)) => {
            for c in found {
                let what = shown(&c.pointer, &c.message, "");
                problems.push(at(
                    &c.pointer,
                    format!("[agent] {}", what.trim_start()),
                    c.hint,
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok((profile, notices))
    } else {
        Err(problems)
    }
}

/// The key under which [`Positions`] keeps the table's own header (`[agent]`).
pub const HEADER: &str = "";

/// Where each key of `table` stands, and each nested value under its JSON pointer
/// (`/run/0`, `/headers/Accept`), so that a problem a component reports deep in a
/// config points at its line. `header` is where the table itself starts, if known.
pub(super) fn positions(index: &LineIndex<'_>, table: &Table, header: Option<usize>) -> Positions {
    let at = |offset: usize| {
        let (line, col) = index.line_col(offset);
        Position {
            line,
            col,
            text: index.excerpt(line, col),
        }
    };
    let mut out = Positions::new();
    if let Some(offset) = header {
        // The header line (`[agent]`), from its first column.
        out.insert(
            HEADER.to_owned(),
            Position {
                col: 1,
                ..at(offset)
            },
        );
    }
    fn nested(
        node: &Node,
        path: &mut Vec<String>,
        out: &mut Positions,
        at: &dyn Fn(usize) -> Position,
    ) {
        match &node.value {
            TomlValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    out.insert(schema::pointer(path), at(item.span.start));
                    nested(item, path, out, at);
                    path.pop();
                }
            }
            TomlValue::Table(t) => {
                for (k, v) in &t.entries {
                    path.push(k.name.clone());
                    out.insert(schema::pointer(path), at(k.span.start));
                    nested(v, path, out, at);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    for (k, v) in &table.entries {
        out.insert(k.name.clone(), at(k.span.start));
        nested(v, &mut vec![k.name.clone()], &mut out, &at);
    }
    out
}

/// Where a key of a predicate stands in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
    pub text: String,
}

/// Where the keys of a table stand: each top-level key by name, each nested value by
/// its JSON pointer (`/run/0`), and the table's header under [`HEADER`].
pub type Positions = BTreeMap<String, Position>;

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, col: usize) -> Position {
        Position {
            line,
            col,
            text: format!("line {line}"),
        }
    }

    #[test]
    fn pointers_find_the_deepest_recorded_place() {
        let mut p = Positions::new();
        p.insert("run".into(), pos(3, 1));
        p.insert("/run/1".into(), pos(3, 14));
        p.insert("headers".into(), pos(5, 1));
        p.insert("/headers/a~1b".into(), pos(5, 13));
        assert_eq!(locate(&p, "/run/1"), Some(pos(3, 14)));
        assert_eq!(locate(&p, "/run/7"), Some(pos(3, 1)), "the key holding it");
        assert_eq!(locate(&p, "/headers/a~1b/x"), Some(pos(5, 13)));
        assert_eq!(locate(&p, "/nope"), None);
        assert_eq!(locate(&p, ""), None, "the whole config");
        assert_eq!(locate(&p, "not a pointer"), None);
    }

    #[test]
    fn problems_read_with_their_place() {
        assert_eq!(
            shown("/run/0", "is empty", "its config"),
            "`run[0]` is empty"
        );
        assert_eq!(
            shown("", "needs `path`", "its config"),
            "its config needs `path`"
        );
        assert_eq!(
            shown("run", "is odd", "its config"),
            "its config (at \"run\") is odd",
            "a component's malformed pointer is shown as it came"
        );
    }
}
