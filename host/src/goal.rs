//! Goal files (SPEC §2): the TOML schema, validation with line:column errors, and
//! the mapping of kazi v0.1.1 goal files onto the builtins. [`load`] reads a file
//! into a [`Goal`]; [`resolve`] then loads each predicate's component, checks its
//! capabilities against the grant and validates its config against the schema the
//! component declares, so a bad config is a load error, never a verdict.

mod compat;
mod parse;
mod resolve;
pub mod schema;
mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use resolve::{
    Position, Positions, ResolvedGoal, ResolvedPredicate, check_predicate_config, implied_grants,
    locate, resolve, resolve_profile,
};

use crate::sandbox::Grants;

/// The goal-file schema version this kazi reads.
pub const SCHEMA_VERSION: i64 = 1;

/// A loaded goal.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// The goal file (as given).
    pub path: PathBuf,
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub mode: Mode,
    pub standing: bool,
    /// How often a standing goal re-observes after convergence.
    pub interval: Option<Duration>,
    pub metadata: BTreeMap<String, String>,
    pub budget: Budget,
    pub scope: Scope,
    pub agent: AgentSpec,
    pub predicates: Vec<PredicateSpec>,
    pub deploy: Option<Deploy>,
    /// Notices for the user (kazi v0.1.1 keys that were mapped, commands split).
    pub notices: Vec<String>,
}

/// `create` builds something new; `repair` fixes something that broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    Create,
    #[default]
    Repair,
}

/// Hard ceilings; each optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Budget {
    pub max_iterations: Option<u64>,
    pub max_wall_clock: Option<Duration>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_dispatches: Option<u64>,
}

/// Where the agent works.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// The workspace, resolved against the goal file's directory.
    pub workspace: PathBuf,
    pub writable: Vec<String>,
    pub protected: Vec<String>,
}

/// Which agent to drive.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub profile: String,
    pub model: Option<String>,
    pub timeout: Option<Duration>,
    pub run: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Profile-specific options (any other key of `[agent]`), as JSON.
    pub options: BTreeMap<String, serde_json::Value>,
    /// Where each key of `[agent]` stands, for load-time messages.
    pub positions: Positions,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            profile: "claude".into(),
            model: None,
            timeout: None,
            run: Vec::new(),
            env: BTreeMap::new(),
            options: BTreeMap::new(),
            positions: Positions::new(),
        }
    }
}

/// `[deploy]`: run after the code predicates pass, before live ones are judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub run: Vec<String>,
    pub timeout: Option<Duration>,
}

/// What a predicate's `use` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseRef {
    Builtin(String),
    /// A `.wasm` component, resolved against the goal file's directory.
    Path(PathBuf),
    /// An installed package, `namespace:name@requirement`, resolved only through the
    /// `kazi.lock` of the goal's workspace.
    Package {
        name: crate::pkg::PackageName,
        req: semver::VersionReq,
    },
}

impl fmt::Display for UseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UseRef::Builtin(n) => write!(f, "{n}"),
            UseRef::Path(p) => write!(f, "{}", p.display()),
            UseRef::Package { name, req } if *req == semver::VersionReq::STAR => {
                write!(f, "{name}")
            }
            UseRef::Package { name, req } => write!(f, "{name}@{req}"),
        }
    }
}

/// Direction of a ratchet guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatchetDirection {
    NoDecrease,
    NoIncrease,
}

/// `ratchet = { metric = "tests_passed", direction = "no-decrease" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratchet {
    pub metric: String,
    pub direction: RatchetDirection,
    /// A stored baseline to start from.
    pub baseline: Option<f64>,
}

/// One `[[predicate]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredicateSpec {
    pub id: String,
    pub use_ref: UseRef,
    pub description: Option<String>,
    pub guard: bool,
    pub live: bool,
    /// Required for convergence but never shown to the agent.
    pub held_out: bool,
    pub ratchet: Option<Ratchet>,
    /// `[predicate.allow]`.
    pub allow: Grants,
    pub timeout: Option<Duration>,
    pub memory_bytes: Option<u64>,
    /// Every other key: the component's config.
    pub config: serde_json::Value,
    /// 1-based line of the `[[predicate]]` table (for messages).
    pub line: usize,
    /// Where each key of the table stands, for load-time messages.
    pub positions: Positions,
}

/// One problem in a goal file, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
    pub source_line: String,
}

/// Why a goal could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum GoalError {
    /// The file could not be read.
    Read { path: PathBuf, reason: String },
    /// One or more located problems.
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl std::error::Error for GoalError {}

impl fmt::Display for GoalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoalError::Read { path, reason } => {
                write!(f, "failed to read goal {}: {reason}", path.display())
            }
            GoalError::Invalid { path, problems } => {
                let n = problems.len();
                write!(
                    f,
                    "failed to load goal {}: {n} problem{}",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                )?;
                for p in problems {
                    write!(
                        f,
                        "\n{}:{}:{}: {}",
                        path.display(),
                        p.line,
                        p.col,
                        p.message
                    )?;
                    if !p.source_line.is_empty() {
                        write!(f, "\n{:>5} | {}", p.line, p.source_line)?;
                    }
                    if let Some(h) = &p.hint {
                        write!(f, "\n  hint: {h}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Read and validate a goal file (syntax, keys, types, values). Components are not
/// loaded here; see [`resolve`].
pub fn load(path: &Path) -> Result<Goal, GoalError> {
    let text = std::fs::read_to_string(path).map_err(|e| GoalError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    load_str(path, &text)
}

/// [`load`] from text already read; `path` names the file in messages and anchors
/// relative paths.
pub fn load_str(path: &Path, text: &str) -> Result<Goal, GoalError> {
    parse::parse_goal(path, text)
}

/// Parse `namespace:name[@requirement]`, a reference to an installed package; the
/// error carries a message and a hint.
pub fn parse_package_ref(
    text: &str,
) -> Result<(crate::pkg::PackageName, semver::VersionReq), (String, String)> {
    match parse::package_ref(text)? {
        UseRef::Package { name, req } => Ok((name, req)),
        _ => unreachable!("package_ref only returns packages"),
    }
}

/// Parse a humane duration (`90s`, `30m`, `2h`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("`{text}` is not a duration; write e.g. `90s`, `30m`, `2h` or `1h 30m`")
    })
}

/// `rel` resolved against `base` without `./` noise (`./a` in `.` stays `a`).
pub fn join_relative(base: &Path, rel: &str) -> PathBuf {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return rel.to_path_buf();
    }
    let rel: PathBuf = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let joined = if base.as_os_str().is_empty() || base == Path::new(".") {
        rel
    } else {
        base.join(rel)
    };
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

/// The closest of `candidates` to `word`, if close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_without_dot_noise() {
        assert_eq!(
            join_relative(Path::new("."), "./a.wasm"),
            PathBuf::from("a.wasm")
        );
        assert_eq!(join_relative(Path::new("."), "."), PathBuf::from("."));
        assert_eq!(
            join_relative(Path::new("goals"), "./x/../y"),
            PathBuf::from("goals/x/../y")
        );
        assert_eq!(
            join_relative(Path::new("goals"), "."),
            PathBuf::from("goals")
        );
        assert_eq!(
            join_relative(Path::new("goals"), "/abs"),
            PathBuf::from("/abs")
        );
    }

    #[test]
    fn did_you_mean_finds_close_words_only() {
        assert_eq!(
            did_you_mean("max_iteration", ["max_iterations", "max_tokens"]),
            Some("max_iterations")
        );
        assert_eq!(did_you_mean("colour", ["description", "guard"]), None);
        assert_eq!(did_you_mean("uss", ["use", "id"]), Some("use"));
    }
}
