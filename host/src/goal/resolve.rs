//! Turn a [`Goal`] into something that can be evaluated: load every predicate's
//! component, grant builtins what their config implies, refuse a component that asks
//! for more than the goal grants, and validate each config against the component's
//! declared schema — all before the first observation.

use std::collections::BTreeMap;

use super::{Goal, GoalError, PredicateSpec, Problem, UseRef, schema};
use crate::sandbox::{Grants, LoadedPredicate, NetTarget, Sandbox, Source};

/// A predicate ready to evaluate.
#[derive(Clone)]
pub struct ResolvedPredicate {
    pub spec: PredicateSpec,
    pub component: LoadedPredicate,
    /// What it may do: `[predicate.allow]` plus what a builtin's config implies.
    pub grants: Grants,
}

/// A goal whose predicates are all loaded and checked.
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

/// Load and check every predicate of `goal`. All problems are reported together.
pub async fn resolve(sandbox: &Sandbox, goal: Goal) -> Result<ResolvedGoal, GoalError> {
    let mut problems = Vec::new();
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
        for v in schema::validate(&component.info.config_schema, &spec.config) {
            let key = v.path.first().cloned().unwrap_or_default();
            let shown = if v.path.is_empty() {
                "its config".to_owned()
            } else {
                format!("`{}`", v.path.join("."))
            };
            let (k, message) = if spec.positions.contains_key(&key) {
                (
                    key.as_str(),
                    format!("predicate \"{}\": {shown} {}", spec.id, v.message),
                )
            } else {
                (
                    "id",
                    format!("predicate \"{}\": {shown} {}", spec.id, v.message),
                )
            };
            problems.push(problem(k, message, v.hint));
        }
        out.push(ResolvedPredicate {
            spec: spec.clone(),
            component,
            grants,
        });
    }
    if problems.is_empty() {
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

/// Where a key of a predicate stands in the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
    pub text: String,
}

/// Positions of every key of a predicate table.
pub type Positions = BTreeMap<String, Position>;
