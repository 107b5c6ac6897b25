//! Walk the spanned TOML tree into a [`Goal`], collecting every problem with its
//! line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::tree::{self, Key, LineIndex, Node, Table, Value};
use super::{
    AgentSpec, Budget, Deploy, Goal, GoalError, Mode, PredicateSpec, Problem, Ratchet,
    RatchetDirection, Scope, UseRef, did_you_mean, parse_duration,
};
use crate::sandbox::Grants;

const TOP_KEYS: &[&str] = &[
    "schema",
    "id",
    "name",
    "description",
    "mode",
    "standing",
    "interval",
    "metadata",
    "budget",
    "scope",
    "agent",
    "predicate",
    "deploy",
    "land",
];
const BUDGET_KEYS: &[&str] = &[
    "max_iterations",
    "max_wall_clock",
    "max_tokens",
    "max_cost_usd",
    "max_dispatches",
];
const SCOPE_KEYS: &[&str] = &["workspace", "writable", "protected", "setup", "carry"];
const AGENT_KEYS: &[&str] = &["profile", "model", "timeout", "run", "env"];
const LAND_KEYS: &[&str] = &["mode", "branch"];
const DEPLOY_KEYS: &[&str] = &["run", "timeout"];
const ALLOW_KEYS: &[&str] = &["net", "exec", "env", "fs"];
const LIMITS_KEYS: &[&str] = &["memory", "component"];
const RATCHET_KEYS: &[&str] = &["metric", "direction", "baseline"];
/// Keys of `[[predicate]]` that kazi itself reads; every other key is the component's config.
pub const PREDICATE_HOST_KEYS: &[&str] = &[
    "id",
    "use",
    "description",
    "guard",
    "live",
    "held_out",
    "ratchet",
    "ratchets",
    "allow_skips",
    "allow",
    "timeout",
    "limits",
];

/// Every key kazi itself reads, by table (`""` is the top level; `[agent]` also takes
/// the profile's options, `[[predicate]]` the component's config): for the goal's JSON
/// Schema (`docs/schemas/goal.schema.json`) and the test that keeps it whole.
pub fn known_keys() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("", TOP_KEYS),
        ("budget", BUDGET_KEYS),
        ("scope", SCOPE_KEYS),
        ("agent", AGENT_KEYS),
        ("predicate", PREDICATE_HOST_KEYS),
        ("predicate.allow", ALLOW_KEYS),
        ("predicate.limits", LIMITS_KEYS),
        ("predicate.ratchet", RATCHET_KEYS),
        ("deploy", DEPLOY_KEYS),
        ("land", LAND_KEYS),
    ]
}

/// Collects problems while walking.
pub(super) struct Reader<'a> {
    pub index: LineIndex<'a>,
    pub problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            index: LineIndex::new(text),
            problems: Vec::new(),
        }
    }

    pub fn problem(
        &mut self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, col) = self.index.line_col(span.start);
        self.problems.push(Problem {
            line,
            col,
            message: message.into(),
            hint,
            source_line: self.index.excerpt(line, col),
        });
    }

    /// Report keys of `table` not in `known` (with a did-you-mean).
    fn unknown_keys(&mut self, table: &Table, known: &[&str], what: &str) {
        for (k, _) in &table.entries {
            if !known.contains(&k.name.as_str()) {
                let hint = did_you_mean(&k.name, known.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("known keys: {}", known.join(", "))));
                self.problem(&k.span, format!("unknown key `{}` in {what}", k.name), hint);
            }
        }
    }

    fn type_error(&mut self, key: &Key, node: &Node, expected: &str) {
        self.problem(
            &node.span,
            format!(
                "`{}` must be {expected}, found {} {}",
                key.name,
                node.value.type_name(),
                node.value.quote()
            ),
            None,
        );
    }

    fn string(&mut self, table: &Table, name: &str) -> Option<String> {
        let (key, node) = entry(table, name)?;
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(key, node, "a string");
                None
            }
        }
    }

    fn bool(&mut self, table: &Table, name: &str) -> Option<bool> {
        let (key, node) = entry(table, name)?;
        match node.value {
            Value::Boolean(b) => Some(b),
            _ => {
                self.type_error(key, node, "true or false");
                None
            }
        }
    }

    fn strings(&mut self, table: &Table, name: &str) -> Option<Vec<String>> {
        let (key, node) = entry(table, name)?;
        let Value::Array(items) = &node.value else {
            self.type_error(key, node, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Value::String(s) => out.push(s.clone()),
                other => {
                    self.problem(
                        &item.span,
                        format!(
                            "`{}` must hold only strings, found {} {}",
                            key.name,
                            other.type_name(),
                            other.quote()
                        ),
                        None,
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A non-empty argv.
    fn argv(&mut self, table: &Table, name: &str) -> Option<Vec<String>> {
        let argv = self.strings(table, name)?;
        if argv.is_empty() || argv[0].trim().is_empty() {
            let (_, node) = entry(table, name)?;
            self.problem(
                &node.span,
                format!(
                    "`{name}` must name a program: a non-empty array like [\"cargo\", \"test\"]"
                ),
                None,
            );
            return None;
        }
        Some(argv)
    }

    fn string_map(&mut self, table: &Table, name: &str) -> Option<BTreeMap<String, String>> {
        let (key, node) = entry(table, name)?;
        let Value::Table(t) = &node.value else {
            self.type_error(key, node, "a table of strings");
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in &t.entries {
            match &v.value {
                Value::String(s) => {
                    out.insert(k.name.clone(), s.clone());
                }
                other => self.problem(
                    &v.span,
                    format!(
                        "`{}.{}` must be a string, found {} {}",
                        key.name,
                        k.name,
                        other.type_name(),
                        other.quote()
                    ),
                    None,
                ),
            }
        }
        Some(out)
    }

    fn duration(&mut self, table: &Table, name: &str) -> Option<Duration> {
        let (key, node) = entry(table, name)?;
        let Value::String(s) = &node.value else {
            self.problem(
                &node.span,
                format!(
                    "`{}` must be a duration string like \"30m\", found {} {}",
                    key.name,
                    node.value.type_name(),
                    node.value.quote()
                ),
                None,
            );
            return None;
        };
        match parse_duration(s) {
            Ok(d) if d.is_zero() => {
                self.problem(
                    &node.span,
                    format!("`{}` must be longer than zero", key.name),
                    None,
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(&node.span, format!("`{}`: {e}", key.name), None);
                None
            }
        }
    }

    /// A positive integer.
    fn positive(&mut self, table: &Table, name: &str) -> Option<u64> {
        let (key, node) = entry(table, name)?;
        match node.value {
            Value::Integer(i) if i > 0 => Some(i as u64),
            Value::Integer(i) => {
                self.problem(
                    &node.span,
                    format!("`{}` must be at least 1, found {i}", key.name),
                    None,
                );
                None
            }
            _ => {
                self.type_error(key, node, "a positive integer");
                None
            }
        }
    }

    fn table<'t>(&mut self, table: &'t Table, name: &str) -> Option<&'t Table> {
        let (key, node) = entry(table, name)?;
        match &node.value {
            Value::Table(t) => Some(t),
            _ => {
                self.type_error(key, node, "a table");
                None
            }
        }
    }
}

fn entry<'t>(table: &'t Table, name: &str) -> Option<(&'t Key, &'t Node)> {
    table
        .entries
        .iter()
        .find(|(k, _)| k.name == name)
        .map(|(k, v)| (k, v))
}

/// Parse goal text. `path` names the file and anchors relative paths.
pub(super) fn parse_goal(path: &Path, text: &str) -> Result<Goal, GoalError> {
    let mut r = Reader::new(text);
    let root = match tree::parse(text) {
        Ok(t) => t,
        Err((span, message)) => {
            r.problem(
                &span.unwrap_or(0..0),
                format!("invalid TOML: {}", message.trim()),
                None,
            );
            return Err(GoalError::Invalid {
                path: path.to_owned(),
                problems: r.problems,
            });
        }
    };
    let mut notices = Vec::new();
    let root = super::compat::map_v011(&mut r, root, &mut notices);
    let goal = read_goal(&mut r, path, &root, notices);
    if r.problems.is_empty() {
        Ok(goal)
    } else {
        r.problems.sort_by_key(|p| (p.line, p.col));
        Err(GoalError::Invalid {
            path: path.to_owned(),
            problems: r.problems,
        })
    }
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn read_goal(r: &mut Reader<'_>, path: &Path, root: &Table, notices: Vec<String>) -> Goal {
    r.unknown_keys(root, TOP_KEYS, "the goal");
    if let Some((key, node)) = entry(root, "schema") {
        match node.value {
            Value::Integer(super::SCHEMA_VERSION) => {}
            Value::Integer(v) => r.problem(
                &node.span,
                format!(
                    "unsupported goal schema {v}; this kazi reads schema {}",
                    super::SCHEMA_VERSION
                ),
                Some("upgrade kazi, or write the goal for schema 1".into()),
            ),
            _ => r.type_error(key, node, "an integer"),
        }
    }
    let id = match r.string(root, "id") {
        Some(id) if valid_id(&id) => id,
        Some(id) => {
            let span = entry(root, "id")
                .map(|(_, n)| n.span.clone())
                .unwrap_or(0..0);
            r.problem(
                &span,
                format!("goal id \"{id}\" is invalid: use lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit"),
                None,
            );
            id
        }
        None => {
            if entry(root, "id").is_none() {
                r.problem(
                    &(0..0),
                    "the goal has no `id`",
                    Some("add a line like `id = \"healthz\"` at the top".into()),
                );
            }
            String::new()
        }
    };
    let mode = match entry(root, "mode") {
        None => Mode::Repair,
        Some((key, node)) => match &node.value {
            Value::String(s) if s == "create" => Mode::Create,
            Value::String(s) if s == "repair" => Mode::Repair,
            Value::String(s) => {
                r.problem(
                    &node.span,
                    format!("`mode` must be \"create\" or \"repair\", found \"{s}\""),
                    None,
                );
                Mode::Repair
            }
            _ => {
                r.type_error(key, node, "\"create\" or \"repair\"");
                Mode::Repair
            }
        },
    };
    let standing = r.bool(root, "standing").unwrap_or(false);
    let interval = r.duration(root, "interval");
    let metadata = r.string_map(root, "metadata").unwrap_or_default();

    let budget = match r.table(root, "budget") {
        None => Budget::default(),
        Some(t) => {
            r.unknown_keys(t, BUDGET_KEYS, "[budget]");
            let max_cost_usd = match entry(t, "max_cost_usd") {
                None => None,
                Some((key, node)) => match node.value {
                    Value::Float(f) if f.is_finite() && f > 0.0 => Some(f),
                    Value::Integer(i) if i > 0 => Some(i as f64),
                    Value::Float(_) | Value::Integer(_) => {
                        r.problem(
                            &node.span,
                            format!(
                                "`max_cost_usd` must be a finite number more than 0, found {}",
                                node.value.quote()
                            ),
                            None,
                        );
                        None
                    }
                    _ => {
                        r.type_error(key, node, "a number of US dollars");
                        None
                    }
                },
            };
            Budget {
                max_iterations: r.positive(t, "max_iterations"),
                max_wall_clock: r.duration(t, "max_wall_clock"),
                max_tokens: r.positive(t, "max_tokens"),
                max_cost_usd,
                max_dispatches: r.positive(t, "max_dispatches"),
            }
        }
    };

    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        base
    };
    let scope = match r.table(root, "scope") {
        None => Scope {
            workspace: base.clone(),
            ..Scope::default()
        },
        Some(t) => {
            r.unknown_keys(t, SCOPE_KEYS, "[scope]");
            Scope {
                workspace: r
                    .string(t, "workspace")
                    .map_or_else(|| base.clone(), |w| super::join_relative(&base, &w)),
                workspace_at: t.get("workspace").map(|n| {
                    let (line, col) = r.index.line_col(n.span.start);
                    super::Position {
                        line,
                        col,
                        text: r.index.excerpt(line, col),
                    }
                }),
                writable: r.strings(t, "writable").unwrap_or_default(),
                protected: r.strings(t, "protected").unwrap_or_default(),
                setup: read_setup(r, t),
                carry: read_carry(r, t),
            }
        }
    };

    let agent = match r.table(root, "agent") {
        None => AgentSpec::default(),
        Some(t) => {
            let mut a = AgentSpec {
                profile: r.string(t, "profile").unwrap_or_else(|| "claude".into()),
                model: r.string(t, "model"),
                timeout: r.duration(t, "timeout"),
                run: r.strings(t, "run").unwrap_or_default(),
                env: r.string_map(t, "env").unwrap_or_default(),
                options: BTreeMap::new(),
                positions: super::resolve::positions(
                    &r.index,
                    t,
                    root.key("agent").map(|k| k.span.start),
                ),
            };
            for (k, v) in &t.entries {
                if !AGENT_KEYS.contains(&k.name.as_str()) {
                    a.options.insert(k.name.clone(), v.value.to_json());
                }
            }
            a
        }
    };

    let deploy = r.table(root, "deploy").map(|t| {
        r.unknown_keys(t, DEPLOY_KEYS, "[deploy]");
        if entry(t, "run").is_none() {
            let span = root.key("deploy").map(|k| k.span.clone()).unwrap_or(0..0);
            r.problem(
                &span,
                "[deploy] has no `run`",
                Some("add `run = [\"./deploy.sh\"]`".into()),
            );
        }
        Deploy {
            run: r.argv(t, "run").unwrap_or_default(),
            timeout: r.duration(t, "timeout"),
        }
    });

    let land = read_land(r, root);
    let predicates = read_predicates(r, root, &base);
    Goal {
        path: path.to_owned(),
        id,
        name: r.string(root, "name"),
        description: r.string(root, "description"),
        mode,
        standing,
        interval,
        metadata,
        budget,
        scope,
        agent,
        predicates,
        deploy,
        land,
        notices,
    }
}

fn read_predicates(r: &mut Reader<'_>, root: &Table, base: &Path) -> Vec<PredicateSpec> {
    let Some((key, node)) = entry(root, "predicate") else {
        r.problem(
            &(0..0),
            "the goal has no predicates",
            Some("add at least one `[[predicate]]` table with an `id` and a `use`".into()),
        );
        return Vec::new();
    };
    let Value::Array(items) = &node.value else {
        r.problem(
            &node.span,
            format!(
                "`{}` must be an array of tables: write `[[predicate]]`",
                key.name
            ),
            None,
        );
        return Vec::new();
    };
    if items.is_empty() {
        r.problem(
            &node.span,
            "the goal has no predicates",
            Some("add at least one `[[predicate]]`".into()),
        );
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let Value::Table(t) = &item.value else {
            r.problem(
                &item.span,
                "each predicate must be a table: write `[[predicate]]`",
                None,
            );
            continue;
        };
        if let Some(p) = read_predicate(r, t, &item.span, base) {
            if !seen.insert(p.id.clone()) {
                let span = t
                    .get("id")
                    .map(|n| n.span.clone())
                    .unwrap_or(item.span.clone());
                r.problem(
                    &span,
                    format!("duplicate predicate id \"{}\"", p.id),
                    Some("give each predicate its own id".into()),
                );
            }
            out.push(p);
        }
    }
    out
}

/// `namespace:name[@requirement]`: an installed package (SPEC §2 `use`).
pub(crate) fn package_ref(u: &str) -> Result<UseRef, (String, String)> {
    let (name, req) = match u.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (u, None),
    };
    let name = name.parse::<crate::pkg::PackageName>().map_err(|e| {
        (
            format!("\"{u}\" is not a package reference: {e}"),
            "write `use = \"namespace:name@^1\"` for a package installed with `kazi pkg add`"
                .to_owned(),
        )
    })?;
    let req = match req {
        None => semver::VersionReq::STAR,
        Some(r) => r.parse::<semver::VersionReq>().map_err(|e| {
            (
                format!("\"{u}\" has an invalid version requirement `{r}`: {e}"),
                "write a semver requirement such as `^1`, `~1.2` or `=1.2.3`".to_owned(),
            )
        })?,
    };
    Ok(UseRef::Package { name, req })
}

fn read_predicate(
    r: &mut Reader<'_>,
    t: &Table,
    span: &Range<usize>,
    base: &Path,
) -> Option<PredicateSpec> {
    let line = r.index.line_col(span.start).0;
    let id = match r.string(t, "id") {
        Some(id) if valid_id(&id) => id,
        Some(id) => {
            let s = t.get("id").map(|n| n.span.clone()).unwrap_or(span.clone());
            r.problem(&s, format!("predicate id \"{id}\" is invalid: use lower-case letters, digits, `.`, `_` and `-`"), None);
            id
        }
        None => {
            if t.get("id").is_none() {
                r.problem(
                    span,
                    "a predicate has no `id`",
                    Some("add `id = \"tests-pass\"` (unique in the goal)".into()),
                );
            }
            return None;
        }
    };
    let use_ref = match r.string(t, "use") {
        Some(u) if u.ends_with(".wasm") || u.contains('/') => {
            Some(UseRef::Path(super::join_relative(base, &u)))
        }
        Some(u) if u.contains(':') => match package_ref(&u) {
            Ok(p) => Some(p),
            Err((message, hint)) => {
                let s = t.get("use").map(|n| n.span.clone()).unwrap_or(span.clone());
                r.problem(&s, format!("predicate \"{id}\": {message}"), Some(hint));
                None
            }
        },
        Some(u) => {
            let builtins = crate::builtins::predicate_names();
            if builtins.contains(&u.as_str()) {
                Some(UseRef::Builtin(u))
            } else {
                let s = t.get("use").map(|n| n.span.clone()).unwrap_or(span.clone());
                let hint = match did_you_mean(&u, builtins.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`? builtins: {}", builtins.join(", ")),
                    None => format!(
                        "builtins: {}; or a path to a .wasm component",
                        builtins.join(", ")
                    ),
                };
                r.problem(
                    &s,
                    format!("predicate \"{id}\": unknown predicate \"{u}\""),
                    Some(hint),
                );
                None
            }
        }
        None => {
            // A v0.1.1 `provider` the mapping did not know is reported there.
            if t.get("use").is_none() && t.get("provider").is_none() {
                r.problem(
                    span,
                    format!("predicate \"{id}\" has no `use`"),
                    Some(format!(
                        "add `use = \"command\"` (builtins: {})",
                        crate::builtins::predicate_names().join(", ")
                    )),
                );
            }
            None
        }
    };
    let mut ratchets = Vec::new();
    if let Some(rt) = r.table(t, "ratchet") {
        let at = t
            .get("ratchet")
            .map(|n| n.span.clone())
            .unwrap_or(span.clone());
        ratchets.extend(ratchet(r, rt, &id, &at));
    }
    match t.get("ratchets").map(|n| (&n.value, n.span.clone())) {
        None => {}
        Some((Value::Array(items), _)) => {
            for item in items {
                match &item.value {
                    Value::Table(rt) => ratchets.extend(ratchet(r, rt, &id, &item.span)),
                    other => r.problem(
                        &item.span,
                        format!(
                            "each of `ratchets` of predicate \"{id}\" must be a table, found {}",
                            other.quote()
                        ),
                        Some("e.g. `ratchets = [{ metric = \"tests_passed\" }, { metric = \"tests_total\" }]`".into()),
                    ),
                }
            }
        }
        Some((other, at)) => r.problem(
            &at,
            format!(
                "`ratchets` of predicate \"{id}\" must be an array of tables, found {}",
                other.quote()
            ),
            Some(
                "e.g. `ratchets = [{ metric = \"tests_passed\" }, { metric = \"tests_total\" }]`"
                    .into(),
            ),
        ),
    }
    let mut seen = std::collections::BTreeSet::new();
    for rt in &ratchets {
        if !seen.insert(rt.metric.clone()) {
            r.problem(
                span,
                format!(
                    "predicate \"{id}\" ratchets the metric `{}` twice",
                    rt.metric
                ),
                Some("keep one ratchet per metric".into()),
            );
        }
    }
    let mut allow = Grants::default();
    if let Some(at) = r.table(t, "allow") {
        r.unknown_keys(
            at,
            ALLOW_KEYS,
            &format!("the [predicate.allow] of \"{id}\""),
        );
        for n in r.strings(at, "net").unwrap_or_default() {
            if let Err(e) = allow.allow_net(&n) {
                let s = at
                    .get("net")
                    .map(|n| n.span.clone())
                    .unwrap_or(span.clone());
                r.problem(&s, format!("allow.net: {e}"), None);
            }
        }
        allow.exec.extend(r.strings(at, "exec").unwrap_or_default());
        allow.env.extend(r.strings(at, "env").unwrap_or_default());
        match r.string(at, "fs").as_deref() {
            None | Some("read") => {}
            Some("write") => allow.fs_write = true,
            Some(other) => {
                let s = at.get("fs").map(|n| n.span.clone()).unwrap_or(span.clone());
                r.problem(
                    &s,
                    format!("allow.fs must be \"read\" or \"write\", found \"{other}\""),
                    None,
                );
            }
        }
    }
    let limits = r.table(t, "limits");
    if let Some(lt) = limits {
        r.unknown_keys(lt, LIMITS_KEYS, &format!("the limits of \"{id}\""));
    }
    let mut size = |key: &str| {
        let node = limits?.get(key)?;
        match &node.value {
            Value::Integer(mib) if *mib > 0 => Some((*mib as u64) << 20),
            Value::String(s) => {
                match parse_size(s) {
                    Some(b) => Some(b),
                    None => {
                        r.problem(&node.span, format!("limits.{key} \"{s}\" is not a size; write e.g. \"512MiB\" or \"1GiB\""), None);
                        None
                    }
                }
            }
            other => {
                r.problem(
                    &node.span,
                    format!(
                        "limits.{key} must be a size like \"512MiB\", found {}",
                        other.quote()
                    ),
                    None,
                );
                None
            }
        }
    };
    let memory_bytes = size("memory");
    let component_bytes = size("component");
    for (k, v) in &t.entries {
        if !PREDICATE_HOST_KEYS.contains(&k.name.as_str()) {
            non_finite(r, v, &k.name, &id);
        }
    }
    let config = t
        .entries
        .iter()
        .filter(|(k, _)| !PREDICATE_HOST_KEYS.contains(&k.name.as_str()))
        .map(|(k, v)| (k.name.clone(), v.value.to_json()))
        .collect::<serde_json::Map<_, _>>();
    Some(PredicateSpec {
        description: r.string(t, "description"),
        guard: r.bool(t, "guard").unwrap_or(false),
        live: r.bool(t, "live").unwrap_or(false),
        held_out: r.bool(t, "held_out").unwrap_or(false),
        timeout: r.duration(t, "timeout"),
        id,
        use_ref: use_ref?,
        ratchets,
        allow_skips: r.bool(t, "allow_skips").unwrap_or(false),
        allow,
        memory_bytes,
        component_bytes,
        config: serde_json::Value::Object(config),
        line,
        positions: super::resolve::positions(&r.index, t, None),
    })
}

/// `[scope] setup`: one argv (`["npm", "ci"]`) or several (`[["npm", "ci"], ["make"]]`).
fn read_setup(r: &mut Reader<'_>, t: &Table) -> Vec<Vec<String>> {
    let Some((key, node)) = entry(t, "setup") else {
        return Vec::new();
    };
    let Value::Array(items) = &node.value else {
        r.type_error(key, node, "an array of commands like [[\"npm\", \"ci\"]]");
        return Vec::new();
    };
    let nested = items.iter().any(|i| matches!(i.value, Value::Array(_)));
    if !nested {
        return r.argv(t, "setup").map(|a| vec![a]).unwrap_or_default();
    }
    let mut out = Vec::new();
    for item in items {
        let argv: Option<Vec<String>> = match &item.value {
            Value::Array(words) => words
                .iter()
                .map(|w| match &w.value {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match argv {
            Some(a) if !a.is_empty() && !a[0].trim().is_empty() => out.push(a),
            _ => r.problem(
                &item.span,
                "each `setup` command must be a non-empty array of strings naming a program",
                Some("write e.g. `setup = [[\"npm\", \"ci\"], [\"make\", \"deps\"]]`".into()),
            ),
        }
    }
    out
}

/// `[scope] carry`: relative paths inside the workspace.
fn read_carry(r: &mut Reader<'_>, t: &Table) -> Vec<String> {
    let carry = r.strings(t, "carry").unwrap_or_default();
    if let Some((_, node)) = entry(t, "carry")
        && let Value::Array(items) = &node.value
    {
        for item in items {
            let Value::String(c) = &item.value else {
                continue;
            };
            if !crate::isolation::is_inner_path(c.trim_end_matches('/')) {
                r.problem(
                    &item.span,
                    format!("`carry` entry \"{c}\" must be a relative path inside the workspace"),
                    Some("name ignored paths such as \".venv\" or \"target\"".into()),
                );
            }
        }
    }
    carry
}

/// `[land] mode` and `branch`.
fn read_land(r: &mut Reader<'_>, root: &Table) -> super::Land {
    let Some(t) = r.table(root, "land") else {
        return super::Land::default();
    };
    r.unknown_keys(t, LAND_KEYS, "[land]");
    let mode = match entry(t, "mode") {
        None => super::LandMode::default(),
        Some((key, node)) => match &node.value {
            Value::String(s) => super::LandMode::parse(s).unwrap_or_else(|| {
                let names = super::LandMode::NAMES;
                let hint =
                    did_you_mean(s, names.iter().copied()).map(|m| format!("did you mean `{m}`?"));
                r.problem(
                    &node.span,
                    format!(
                        "`mode` must be one of \"{}\", found \"{s}\"",
                        names.join("\", \"")
                    ),
                    hint,
                );
                super::LandMode::default()
            }),
            _ => {
                r.type_error(key, node, "\"branch\", \"merge\", \"pr\" or \"none\"");
                super::LandMode::default()
            }
        },
    };
    let branch = r.string(t, "branch");
    if let (Some(b), Some((_, node))) = (&branch, entry(t, "branch")) {
        let sample = b.replace("{goal}", "goal").replace("{run}", "run");
        if !crate::isolation::git::valid_branch_name(&sample) {
            r.problem(
                &node.span,
                format!("`branch` \"{b}\" is not a valid git branch name"),
                Some(
                    "use letters, digits, `/`, `-`, `_` and `.`; `{goal}` and `{run}` are replaced"
                        .into(),
                ),
            );
        }
    }
    super::Land { mode, branch }
}

/// `512MiB`, `1GiB`, `300MB`, `1048576` → bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// Report every `nan` or `inf` in a predicate's config: JSON (what components read)
/// has no such numbers.
fn non_finite(r: &mut Reader<'_>, node: &Node, key: &str, id: &str) {
    match &node.value {
        Value::Float(f) if !f.is_finite() => r.problem(
            &node.span,
            format!(
                "`{key}` of predicate \"{id}\" must be a finite number, found {}",
                node.value.quote()
            ),
            None,
        ),
        Value::Array(items) => items.iter().for_each(|n| non_finite(r, n, key, id)),
        Value::Table(t) => t
            .entries
            .iter()
            .for_each(|(k, n)| non_finite(r, n, &format!("{key}.{}", k.name), id)),
        _ => {}
    }
}

/// One ratchet table: `{ metric = "tests_passed", direction = "no-decrease", baseline = 3 }`.
fn ratchet(r: &mut Reader<'_>, rt: &Table, id: &str, at: &Range<usize>) -> Option<Ratchet> {
    r.unknown_keys(
        rt,
        RATCHET_KEYS,
        &format!("the ratchet of predicate \"{id}\""),
    );
    let metric = r.string(rt, "metric");
    if metric.is_none() && rt.get("metric").is_none() {
        r.problem(
            at,
            format!("the ratchet of predicate \"{id}\" names no `metric`"),
            Some(
                "e.g. `ratchet = { metric = \"tests_passed\", direction = \"no-decrease\" }`"
                    .into(),
            ),
        );
    }
    let direction = match r.string(rt, "direction").as_deref() {
        None | Some("no-decrease") => Some(RatchetDirection::NoDecrease),
        Some("no-increase") => Some(RatchetDirection::NoIncrease),
        Some(other) => {
            let s = rt
                .get("direction")
                .map(|n| n.span.clone())
                .unwrap_or(at.clone());
            r.problem(
                &s,
                format!("ratchet direction must be \"no-decrease\" or \"no-increase\", found \"{other}\""),
                None,
            );
            None
        }
    };
    let baseline = match rt.get("baseline").map(|n| &n.value) {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Float(f)) if f.is_finite() => Some(*f),
        Some(_) => {
            let s = rt
                .get("baseline")
                .map(|n| n.span.clone())
                .unwrap_or(at.clone());
            r.problem(&s, "ratchet `baseline` must be a finite number", None);
            None
        }
        None => None,
    };
    Some(Ratchet {
        metric: metric?,
        direction: direction?,
        baseline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("0MiB"), None);
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn ids_are_validated() {
        assert!(valid_id("healthz"));
        assert!(valid_id("a1.b_c-d"));
        assert!(!valid_id("Healthz"));
        assert!(!valid_id("-x"));
        assert!(!valid_id(""));
    }

    #[test]
    fn isolation_keys_parse() {
        let goal = |extra: &str| {
            parse_goal(
                Path::new("kazi.toml"),
                &format!(
                    "id = \"g\"\n{extra}\n[[predicate]]\nid = \"p\"\nuse = \"file\"\npath = \"x\"\n"
                ),
            )
        };
        let g = goal("").unwrap();
        assert_eq!(g.land, super::super::Land::default());
        assert_eq!(g.land.mode, super::super::LandMode::Branch);
        assert!(g.scope.setup.is_empty() && g.scope.carry.is_empty());
        let g = goal("[scope]\nsetup = [\"npm\", \"ci\"]\ncarry = [\".venv\"]\n[land]\nmode = \"pr\"\nbranch = \"kazi/{goal}\"").unwrap();
        assert_eq!(g.scope.setup, vec![vec!["npm".to_owned(), "ci".to_owned()]]);
        assert_eq!(g.scope.carry, vec![".venv"]);
        assert_eq!(g.land.mode, super::super::LandMode::Pr);
        assert_eq!(g.land.branch.as_deref(), Some("kazi/{goal}"));
        let g = goal("[scope]\nsetup = [[\"npm\", \"ci\"], [\"make\"]]").unwrap();
        assert_eq!(g.scope.setup.len(), 2);
        let e = goal("[land]\nmode = \"none\"\nbrnch = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kazi.toml:4:1: unknown key `brnch` in [land]")
                && e.contains("did you mean `branch`?"),
            "{e}"
        );
        let e = goal("[land]\nmode = \"fast-forward\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`mode` must be one of \"branch\", \"merge\", \"pr\", \"none\""),
            "{e}"
        );
        let e = goal("[scope]\nsetup = \"npm ci\"").unwrap_err().to_string();
        assert!(e.contains("`setup` must be an array of commands"), "{e}");
        let e = goal("[scope]\ncarry = [\"/abs\"]").unwrap_err().to_string();
        assert!(
            e.contains("`carry` entry \"/abs\" must be a relative path inside the workspace"),
            "{e}"
        );
        let e = goal("[land]\nbranch = \"a..b\"").unwrap_err().to_string();
        assert!(
            e.contains("`branch` \"a..b\" is not a valid git branch name"),
            "{e}"
        );
    }

    #[test]
    fn package_uses_parse_with_or_without_a_requirement() {
        let goal = |u: &str| {
            parse_goal(
                Path::new("kazi.toml"),
                &format!("id = \"g\"\n[[predicate]]\nid = \"p\"\nuse = \"{u}\"\n"),
            )
        };
        let g = goal("acme:coverage@^1.2").unwrap();
        assert_eq!(g.predicates[0].use_ref.to_string(), "acme:coverage@^1.2");
        let g = goal("acme:coverage").unwrap();
        assert_eq!(g.predicates[0].use_ref.to_string(), "acme:coverage");
        let e = goal("acme:Coverage@^1").unwrap_err().to_string();
        assert!(
            e.contains("kazi.toml:4:7") && e.contains("invalid name"),
            "{e}"
        );
        let e = goal("acme:coverage@one").unwrap_err().to_string();
        assert!(
            e.contains("invalid version requirement `one`") && e.contains("`^1`"),
            "{e}"
        );
    }
}
