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

pub use parse::known_keys;
pub use resolve::{
    Position, Positions, ResolvedGoal, ResolvedPredicate, check_predicate_config, implied_grants,
    locate, resolve, resolve_profile,
};

pub use kazi_core::plan::{Budget, Mode, Ratchet, RatchetDirection};

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
    /// `[land]`: what happens to a converged run's changes.
    pub land: Land,
    /// Notices for the user (kazi v0.1.1 keys that were mapped, commands split).
    pub notices: Vec<String>,
}

/// Where the agent works.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// The workspace, resolved against the goal file's directory.
    pub workspace: PathBuf,
    /// Where `[scope] workspace` is written, when it is (for messages about it).
    pub workspace_at: Option<Position>,
    pub writable: Vec<String>,
    pub protected: Vec<String>,
    /// Commands run once in a new task worktree (`npm ci`), each an argv.
    pub setup: Vec<Vec<String>>,
    /// Ignored paths copied from the user's checkout into a new task worktree.
    pub carry: Vec<String>,
}

/// `[land]`: what happens to a converged run's changes (git workspaces).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Land {
    pub mode: LandMode,
    /// The branch to land on (`{goal}` and `{run}` are replaced); default
    /// `kazi/{goal}-{run}`.
    pub branch: Option<String>,
}

/// `[land] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandMode {
    /// Commit on a branch and print the commands that merge it.
    #[default]
    Branch,
    /// Fast-forward the user's branch when that is safe, else `branch`.
    Merge,
    /// Push the branch and open a pull request with `gh`, else `branch`.
    Pr,
    /// Land nothing; `kazi land RUN_ID` lands it later.
    None,
}

impl LandMode {
    pub const NAMES: &[&str] = &["branch", "merge", "pr", "none"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "branch" => LandMode::Branch,
            "merge" => LandMode::Merge,
            "pr" => LandMode::Pr,
            "none" => LandMode::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LandMode::Branch => "branch",
            LandMode::Merge => "merge",
            LandMode::Pr => "pr",
            LandMode::None => "none",
        }
    }
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
    /// `ratchet = {…}` and `ratchets = [{…}, …]`: metrics that must not regress.
    pub ratchets: Vec<Ratchet>,
    /// `allow_skips = true`: a rise in skipped/ignored/deselected tests does not fail
    /// this predicate (by default it does: a skipped test is not a passing one).
    pub allow_skips: bool,
    /// `[predicate.allow]`.
    pub allow: Grants,
    pub timeout: Option<Duration>,
    pub memory_bytes: Option<u64>,
    /// `limits.component`: the largest component kazi loads for this predicate.
    pub component_bytes: Option<u64>,
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
    if path.is_dir() {
        return Err(GoalError::Read {
            path: path.to_owned(),
            reason: "it is a directory; hint: pass the goal file (e.g. its kazi.toml)".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| GoalError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(not_utf8(path, e.as_bytes(), e.utf8_error().valid_up_to())),
    };
    load_str(path, &text)
}

/// The load error of a goal file that is not UTF-8: where the first bad byte is.
fn not_utf8(path: &Path, bytes: &[u8], valid: usize) -> GoalError {
    let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    let line_end = bytes[valid..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| valid + i);
    let text = String::from_utf8_lossy(&bytes[line_start..line_end]).into_owned();
    GoalError::Invalid {
        path: path.to_owned(),
        problems: vec![Problem {
            line,
            col,
            message: format!(
                "the goal file is not valid UTF-8: byte 0x{:02x} at offset {valid} cannot start a character",
                bytes[valid]
            ),
            hint: Some("save the file as UTF-8".into()),
            source_line: tree::excerpt(&text, col),
        }],
    }
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
