//! The seal and the scope check. The seal hashes the goal file and every file under
//! `[scope] protected` at the start; any change before an observation ends the run
//! as `tampered`. The scope check snapshots the workspace around a dispatch and
//! compares the files the agent changed with `writable` and `protected`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most files a snapshot hashes; beyond this the scope check says it is partial.
pub const MAX_SNAPSHOT_FILES: usize = 50_000;
/// Directories a snapshot of a non-git workspace skips.
const SKIP_DIRS: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    ".kazi",
    "__pycache__",
    ".venv",
    "_build",
    "deps",
];

/// Content hashes by label (`goal` or a workspace-relative path); `absent` when missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub entries: BTreeMap<String, String>,
}

fn hash_file(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(_) => "absent".to_owned(),
    }
}

/// Hash the goal file and the protected paths.
pub fn compute(goal_path: &Path, workspace: &Path, protected: &[String]) -> Seal {
    let mut entries = BTreeMap::new();
    entries.insert("goal".to_owned(), hash_file(goal_path));
    for p in protected {
        let root = workspace.join(p);
        if root.is_dir() {
            let mut files = Vec::new();
            walk(&root, workspace, &mut files, &[]);
            if files.is_empty() {
                entries.insert(p.clone(), "empty".into());
            }
            for rel in files {
                entries.insert(rel.clone(), hash_file(&workspace.join(&rel)));
            }
        } else {
            entries.insert(p.trim_end_matches('/').to_owned(), hash_file(&root));
        }
    }
    Seal { entries }
}

/// What differs between two seals, as human lines.
pub fn diff(before: &Seal, after: &Seal) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in &before.entries {
        match after.entries.get(k) {
            None => out.push(format!("{} was removed", label(k))),
            Some(w) if w != v => out.push(format!("{} changed", label(k))),
            _ => {}
        }
    }
    for k in after.entries.keys() {
        if !before.entries.contains_key(k) {
            out.push(format!("{} was added", label(k)));
        }
    }
    out
}

fn label(k: &str) -> String {
    if k == "goal" {
        "the goal file".into()
    } else {
        format!("protected file {k}")
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>, skip: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= MAX_SNAPSHOT_FILES {
            return;
        }
        let Ok(ty) = e.file_type() else { continue };
        let path = e.path();
        if ty.is_dir() {
            if skip.iter().any(|s| e.file_name() == *s) {
                continue;
            }
            walk(&path, root, out, skip);
        } else if (ty.is_file() || ty.is_symlink())
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Content hashes of the workspace's files (git: tracked and untracked-not-ignored;
/// otherwise every file outside build and VCS directories).
pub type Snapshot = BTreeMap<String, String>;

/// Take a snapshot of `workspace`.
pub fn snapshot(workspace: &Path) -> Snapshot {
    let files = git_files(workspace).unwrap_or_else(|| {
        let mut files = Vec::new();
        walk(workspace, workspace, &mut files, SKIP_DIRS);
        files
    });
    files
        .into_iter()
        .take(MAX_SNAPSHOT_FILES)
        .map(|rel| {
            let h = hash_file(&workspace.join(&rel));
            (rel, h)
        })
        .collect()
}

fn git_files(workspace: &Path) -> Option<Vec<String>> {
    if !workspace.join(".git").exists() {
        return None;
    }
    let out = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(workspace)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut files: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    files.sort();
    files.dedup();
    Some(files)
}

/// Files that differ between two snapshots (changed, added or removed).
pub fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(after.keys().filter(|k| !before.contains_key(*k)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `path` lies under the scope entry `prefix` (a file or a directory).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seal_sees_goal_and_protected_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(ws.join("goal.toml"), "id = \"x\"").unwrap();
        std::fs::create_dir_all(ws.join("tests/golden")).unwrap();
        std::fs::write(ws.join("tests/golden/a.txt"), "1").unwrap();
        let protected = vec!["tests/golden/".to_string(), "LICENSE".to_string()];
        let s1 = compute(&ws.join("goal.toml"), ws, &protected);
        assert!(diff(&s1, &compute(&ws.join("goal.toml"), ws, &protected)).is_empty());
        std::fs::write(ws.join("tests/golden/a.txt"), "2").unwrap();
        std::fs::write(ws.join("tests/golden/b.txt"), "new").unwrap();
        std::fs::write(ws.join("LICENSE"), "mine").unwrap();
        std::fs::write(ws.join("goal.toml"), "id = \"y\"").unwrap();
        let d = diff(&s1, &compute(&ws.join("goal.toml"), ws, &protected));
        assert_eq!(
            d,
            vec![
                "protected file LICENSE changed",
                "the goal file changed",
                "protected file tests/golden/a.txt changed",
                "protected file tests/golden/b.txt was added"
            ]
        );
    }

    #[test]
    fn snapshots_find_changed_added_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(ws.join("target")).unwrap();
        std::fs::write(ws.join("src/a.rs"), "a").unwrap();
        std::fs::write(ws.join("src/b.rs"), "b").unwrap();
        std::fs::write(ws.join("target/out"), "x").unwrap();
        let before = snapshot(ws);
        assert!(!before.contains_key("target/out"));
        std::fs::write(ws.join("src/a.rs"), "A").unwrap();
        std::fs::remove_file(ws.join("src/b.rs")).unwrap();
        std::fs::write(ws.join("new.txt"), "n").unwrap();
        std::fs::write(ws.join("target/out"), "y").unwrap();
        assert_eq!(
            changed(&before, &snapshot(ws)),
            vec!["new.txt", "src/a.rs", "src/b.rs"]
        );
    }

    #[test]
    fn scope_classification() {
        let changed = vec![
            "src/lib.rs".to_string(),
            "README.md".to_string(),
            "tests/golden/x".to_string(),
        ];
        let (outside, hits) = classify(
            &changed,
            &["src/".into(), "tests/".into()],
            &["tests/golden".into()],
        );
        assert_eq!(outside, vec!["README.md"]);
        assert_eq!(hits, vec!["tests/golden/x"]);
        let (outside, _) = classify(&changed, &[], &[]);
        assert!(outside.is_empty());
        assert!(under("src/a", "./src"));
        assert!(!under("srcx/a", "src"));
    }
}
