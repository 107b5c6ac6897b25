//! Scope: where the agent may change files. In a task worktree kazi reverts what may
//! not land before every observation and reports it here; in place it only reports.

use serde::{Deserialize, Serialize};

/// Whether `path` (workspace-relative, `/`-separated) lies under `prefix` (a file or a
/// directory, with or without a trailing `/`; `.` or empty means everything).
pub fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_start_matches("./").trim_end_matches('/');
    prefix.is_empty() || prefix == "." || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// Split changed files into those outside `writable` (when it is not empty) and those
/// under `protected`.
pub fn classify(
    changed: &[String],
    writable: &[String],
    protected: &[String],
) -> (Vec<String>, Vec<String>) {
    let outside = changed
        .iter()
        .filter(|f| !writable.is_empty() && !writable.iter().any(|w| under(f, w)))
        .cloned()
        .collect();
    let hits = changed
        .iter()
        .filter(|f| protected.iter().any(|p| under(f, p)))
        .cloned()
        .collect();
    (outside, hits)
}

/// One change kazi undid in the task worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revert {
    pub path: String,
    /// Why, as it reads after "was reverted: " (`it is outside `writable` (`src/`)`).
    pub why: String,
    /// A change to a protected path or to the goal file: an attempt to game the checks.
    pub gaming: bool,
}

impl Revert {
    /// A change outside `writable`.
    pub fn outside_writable(path: &str) -> Self {
        Self {
            path: path.into(),
            why: "it is outside `writable`".into(),
            gaming: false,
        }
    }

    /// A change to a protected path.
    pub fn protected(path: &str) -> Self {
        Self {
            path: path.into(),
            why: "it is protected".into(),
            gaming: true,
        }
    }

    /// A change to the goal file.
    pub fn goal_file(path: &str) -> Self {
        Self {
            path: path.into(),
            why: "it is the goal file".into(),
            gaming: true,
        }
    }
}

/// What preparing the workspace for an observation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The seal is broken (goal file or protected path changed in place, or the
    /// workspace root replaced): the run can never converge. Human lines.
    pub tamper: Vec<String>,
    /// Changes kazi reverted in the task worktree before observing.
    pub reverted: Vec<Revert>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_matches_files_and_directories_by_whole_components() {
        assert!(under("src/a.rs", "src/"));
        assert!(under("src/a.rs", "src"));
        assert!(under("src", "src/"));
        assert!(!under("srcx/a.rs", "src"));
        assert!(under("anything", "."));
        assert!(under("x/y", "./x"));
    }

    #[test]
    fn classify_splits_outside_and_protected() {
        let changed = vec![
            "src/a.rs".to_owned(),
            "conftest.py".into(),
            "tests/t.py".into(),
        ];
        let (outside, hits) = classify(&changed, &["src/".into()], &["tests/".into()]);
        assert_eq!(outside, vec!["conftest.py".to_owned(), "tests/t.py".into()]);
        assert_eq!(hits, vec!["tests/t.py".to_owned()]);
        let (outside, _) = classify(&changed, &[], &[]);
        assert!(
            outside.is_empty(),
            "everything is writable when writable is unset"
        );
    }
}
