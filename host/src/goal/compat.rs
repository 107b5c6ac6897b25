//! Goal files written for the original kazi v0.1.1, mapped onto this kazi's schema
//! and builtins, with one notice saying what was mapped. Where the old format
//! silently produced a check that could never pass, kazi says so: a command line
//! given as one program name is split (with a notice), and an `http_probe` with a
//! `path` but no `url` is refused with a hint.

use std::collections::BTreeMap;

use super::parse::Reader;
use super::tree::{Key, Node, Table, Value};

/// Whether `root` looks like a v0.1.1 goal.
fn is_v011(root: &Table) -> bool {
    let predicates = ["predicate", "predicates"]
        .iter()
        .filter_map(|k| root.get(k))
        .flat_map(|n| match &n.value {
            Value::Array(items) => items.clone(),
            _ => Vec::new(),
        });
    let mut has_provider = false;
    for p in predicates {
        if let Value::Table(t) = &p.value {
            has_provider |= t.get("provider").is_some();
        }
    }
    let old_scope = matches!(root.get("scope").map(|n| &n.value), Some(Value::Table(t)) if t.get("paths").is_some());
    let old_budget = matches!(root.get("budget").map(|n| &n.value), Some(Value::Table(t)) if t.get("max_wall_clock_ms").is_some());
    has_provider || old_scope || old_budget || root.get("harness").is_some()
}

fn string_node(span: &std::ops::Range<usize>, s: impl Into<String>) -> Node {
    Node {
        span: span.clone(),
        value: Value::String(s.into()),
    }
}

fn key(span: &std::ops::Range<usize>, name: &str) -> Key {
    Key {
        span: span.clone(),
        name: name.to_owned(),
    }
}

/// Map a v0.1.1 goal onto the current schema; other goals pass through untouched.
pub(super) fn map_v011(r: &mut Reader<'_>, mut root: Table, notices: &mut Vec<String>) -> Table {
    if !is_v011(&root) {
        return root;
    }
    let mut mapped: BTreeMap<String, usize> = BTreeMap::new();
    let mut note = |what: &str| *mapped.entry(what.to_owned()).or_default() += 1;

    for (k, node) in &mut root.entries {
        match k.name.as_str() {
            "harness" => {
                k.name = "agent".into();
                if let Value::Table(t) = &mut node.value {
                    for (hk, hv) in &mut t.entries {
                        match hk.name.as_str() {
                            "id" => hk.name = "profile".into(),
                            // The harness binary override: the profile's program.
                            "command" => match &hv.value {
                                Value::String(cmd) if !cmd.trim().is_empty() => {
                                    let words: Vec<Node> = cmd
                                        .split_whitespace()
                                        .map(|w| string_node(&hv.span, w))
                                        .collect();
                                    hk.name = "run".into();
                                    hv.value = Value::Array(words);
                                    note("[harness] command → [agent] run");
                                }
                                other => r.problem(
                                    &hv.span,
                                    format!(
                                        "[harness] command must name the agent's program, found {}",
                                        other.quote()
                                    ),
                                    Some("e.g. `command = \"/opt/bin/claude\"`, or remove it to use the profile's own program from PATH".into()),
                                ),
                            },
                            _ => {}
                        }
                    }
                }
                note("[harness] → [agent]");
            }
            "scope" => {
                if let Value::Table(t) = &mut node.value {
                    for (sk, _) in &mut t.entries {
                        if sk.name == "paths" {
                            sk.name = "writable".into();
                            note("[scope] paths → writable");
                        }
                    }
                }
            }
            "budget" => {
                if let Value::Table(t) = &mut node.value {
                    for (bk, bv) in &mut t.entries {
                        if bk.name == "max_wall_clock_ms"
                            && let Value::Integer(ms) = bv.value
                        {
                            bk.name = "max_wall_clock".into();
                            bv.value = Value::String(format!("{ms}ms"));
                            note("max_wall_clock_ms → max_wall_clock");
                        }
                    }
                }
            }
            "predicates" => {
                k.name = "predicate".into();
                note("[[predicates]] → [[predicate]]");
            }
            _ => {}
        }
    }
    if let Some((_, node)) = root.entries.iter_mut().find(|(k, _)| k.name == "predicate")
        && let Value::Array(items) = &mut node.value
    {
        for item in items {
            if let Value::Table(t) = &mut item.value {
                map_predicate(r, t, &item.span, &mut note, notices);
            }
        }
    }
    let list: Vec<String> = mapped
        .iter()
        .map(|(k, n)| {
            if *n > 1 {
                format!("{k} (×{n})")
            } else {
                k.clone()
            }
        })
        .collect();
    notices.insert(
        0,
        format!("this is a kazi v0.1.1 goal; mapped: {}", list.join(", ")),
    );
    root
}

/// The argv of `cmd` + `args`, splitting a whole command line given as `cmd`.
fn argv_of(t: &Table, notices: &mut Vec<String>, id: &str) -> Option<Vec<Node>> {
    let cmd = t.get("cmd")?;
    let Value::String(program) = &cmd.value else {
        return None;
    };
    let mut argv = Vec::new();
    let args: Vec<Node> = match t.get("args").map(|n| &n.value) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    if program.split_whitespace().count() > 1 && args.is_empty() {
        let words: Vec<&str> = program.split_whitespace().collect();
        notices.push(format!(
            "predicate \"{id}\": `cmd = \"{program}\"` is a whole command line, not a program name; split it into run = {:?}",
            words
        ));
        argv.extend(words.iter().map(|w| string_node(&cmd.span, *w)));
    } else {
        argv.push(cmd.clone());
        argv.extend(args);
    }
    Some(argv)
}

fn map_predicate(
    r: &mut Reader<'_>,
    t: &mut Table,
    span: &std::ops::Range<usize>,
    note: &mut impl FnMut(&str),
    notices: &mut Vec<String>,
) {
    let Some(provider) = t.get("provider").cloned() else {
        return;
    };
    let id = match t.get("id").map(|n| &n.value) {
        Some(Value::String(s)) => s.clone(),
        _ => "?".into(),
    };
    let Value::String(kind) = &provider.value else {
        return;
    };
    if t.get("acceptance").is_some() {
        note("`acceptance` dropped (every kazi predicate is required for convergence)");
    }
    let drop = |t: &mut Table, names: &[&str]| {
        t.entries.retain(|(k, _)| !names.contains(&k.name.as_str()))
    };
    match kind.as_str() {
        "test_runner" => {
            let argv = argv_of(t, notices, &id);
            drop(t, &["provider", "cmd", "args", "acceptance"]);
            t.entries.push((
                key(&provider.span, "use"),
                string_node(&provider.span, "command"),
            ));
            if let Some(argv) = argv {
                t.entries.push((
                    key(&provider.span, "run"),
                    Node {
                        span: provider.span.clone(),
                        value: Value::Array(argv),
                    },
                ));
            }
            note("provider = \"test_runner\" → use = \"command\"");
        }
        "http_probe" => {
            if t.get("url").is_none() {
                let s = t
                    .get("path")
                    .map(|n| n.span.clone())
                    .unwrap_or(span.clone());
                let path = match t.get("path").map(|n| &n.value) {
                    Some(Value::String(p)) => p.clone(),
                    _ => "/healthz".into(),
                };
                r.problem(
                    &s,
                    format!("predicate \"{id}\": this http_probe has no `url`, so kazi v0.1.1 could never pass it"),
                    Some(format!("give the full address, e.g. `url = \"http://127.0.0.1:8080{path}\"`")),
                );
            }
            drop(t, &["provider", "path", "acceptance"]);
            t.entries.push((
                key(&provider.span, "use"),
                string_node(&provider.span, "http"),
            ));
            mark_live(t, &provider.span, note);
            note("provider = \"http_probe\" → use = \"http\"");
        }
        "prod_log" => {
            let argv = argv_of(t, notices, &id);
            let max = t.get("max_5xx").cloned();
            let server_error = t.get("server_error_regex").cloned();
            let panic = t.get("panic_regex").cloned();
            drop(
                t,
                &[
                    "provider",
                    "cmd",
                    "args",
                    "max_5xx",
                    "server_error_regex",
                    "panic_regex",
                    "acceptance",
                ],
            );
            t.entries.push((
                key(&provider.span, "use"),
                string_node(&provider.span, "log"),
            ));
            if let Some(argv) = argv {
                t.entries.push((
                    key(&provider.span, "run"),
                    Node {
                        span: provider.span.clone(),
                        value: Value::Array(argv),
                    },
                ));
            }
            let matcher =
                server_error.unwrap_or_else(|| string_node(&provider.span, r#"\b5\d\d\b"#));
            t.entries.push((key(&matcher.span, "match"), matcher));
            if let Some(max) = max {
                t.entries.push((key(&max.span, "max"), max));
            }
            if let Some(panic) = panic {
                t.entries.push((key(&panic.span, "panic"), panic));
            }
            mark_live(t, &provider.span, note);
            note("provider = \"prod_log\" → use = \"log\"");
        }
        other => match LATER_PROVIDERS.iter().find(|(name, _)| *name == other) {
            Some((_, instead)) => r.problem(
                &provider.span,
                format!(
                    "predicate \"{id}\": provider \"{other}\" comes from a later version of the original kazi, not v0.1.1, and is not mapped"
                ),
                Some((*instead).to_owned()),
            ),
            None => r.problem(
                &provider.span,
                format!("predicate \"{id}\": unknown kazi v0.1.1 provider \"{other}\""),
                Some("v0.1.1 providers are test_runner, http_probe and prod_log; or use a builtin with `use`".into()),
            ),
        },
    }
}

/// v0.1.1 judged `http_probe` and `prod_log` predicates as live by their kind: only
/// after a deploy. Say so explicitly, unless the goal already does.
fn mark_live(t: &mut Table, span: &std::ops::Range<usize>, note: &mut impl FnMut(&str)) {
    if t.get("live").is_none() {
        t.entries.push((
            key(span, "live"),
            Node {
                span: span.clone(),
                value: Value::Boolean(true),
            },
        ));
        note("http_probe/prod_log → live = true");
    }
}

/// Providers of later versions of the original kazi (v1.x), with what to write
/// instead.
const LATER_PROVIDERS: &[(&str, &str)] = &[
    (
        "custom_script",
        "write it as `use = \"command\"` with `run = [...]` and `pass_codes` or `match`/`pass_when` (docs/predicates/command.md)",
    ),
    (
        "cli",
        "write it as `use = \"command\"` with `run = [...]` and `match`/`pass_when` (docs/predicates/command.md)",
    ),
    (
        "ratchet",
        "put `ratchet = { metric = \"…\", direction = \"no-decrease\" }` on a `command` predicate that reports the metric",
    ),
    (
        "static",
        "run the analyzer with `use = \"command\"` and ratchet its finding count",
    ),
    (
        "coverage",
        "run the coverage tool with `use = \"command\"` and a `match`/`pass_when` or JSON `path` check",
    ),
    (
        "property",
        "run the property tests with `use = \"command\"`",
    ),
    (
        "mutation",
        "run the mutation tool with `use = \"command\"` and a JSON `path` check",
    ),
    ("cve", "run the scanner with `use = \"command\"`"),
    (
        "swift_test",
        "run the suite with `use = \"command\"` and a `junit` report",
    ),
    (
        "browser",
        "no builtin drives a browser: write a predicate component (sdk/README.md) or check the page with `use = \"http\"`",
    ),
    (
        "metrics",
        "no builtin reads metrics: query them with `use = \"http\"` and `expect_json`, or write a predicate component",
    ),
    (
        "no_stubs",
        "check files with `use = \"file\"` and `matches`, or write a predicate component",
    ),
    (
        "docs_updated",
        "write a predicate component (sdk/README.md)",
    ),
    ("scenario", "write a predicate component (sdk/README.md)"),
    ("gherkin", "run the Gherkin runner with `use = \"command\"`"),
    ("oss_hygiene", "write a predicate component (sdk/README.md)"),
    (
        "plan_expanded",
        "this kazi has no plan read-model; remove the predicate",
    ),
    (
        "spec_coverage",
        "write a predicate component (sdk/README.md)",
    ),
    (
        "render_proof",
        "write a predicate component (sdk/README.md)",
    ),
    (
        "visual_judge",
        "write a predicate component (sdk/README.md)",
    ),
];
