//! `kazi propose`: from an idea to a drafted goal. One agent call with an authoring
//! prompt ([`prompt`](mod@prompt)) that lists the builtin predicates with the config
//! schemas their components declare; the goal is then taken out of the answer
//! ([`answer`]: [`candidates`]; JSON becomes TOML through [`render`]), validated with
//! the goal loader ([`extract`]), evaluated once (it should fail now:
//! [`vacuous_reason`]) and stored under a deterministic ref ([`proposal_ref`]).
//!
//! Everything here but [`extract`] is pure; the command itself lives in `cli::propose`.

pub mod answer;
pub mod prompt;
pub mod render;

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

pub use answer::{Candidate, candidates};
pub use prompt::prompt;
pub use render::{RenderError, json_to_toml, set_scope_workspace};

use crate::goal::{self, Goal, ResolvedGoal};
use crate::observe::Evaluation;
use crate::sandbox::Sandbox;
use crate::verdict::Outcome;

/// Longest slug in a ref.
pub const SLUG_MAX: usize = 40;
/// Hex digits of the idea's hash in a ref.
pub const HASH_DIGITS: usize = 12;
/// The name a drafted goal goes by in load errors. It is validated as if it were
/// `.kazi/goals/proposal.toml` in the workspace, where `kazi approve` puts it.
pub const DRAFT_NAME: &str = "proposal.toml";

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
) -> Result<String, RenderError> {
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
            Err(e) => {
                rejections.push(Rejection {
                    origin: c.origin,
                    reason: e.to_string(),
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
        text = set_scope_workspace(&text, None).map_err(|e| e.to_string())?;
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
}
