//! Grading what would land: the base snapshot, the changes of a tree against it,
//! the scope rules, the reverts, the graded commit and bounded diffs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::git::{Git, join_z_raw, os, split_z, split_z_raw};
use super::{Isolation, IsolationError, Mode};
use crate::reconcile::seal;
use crate::run::Event;

/// The private index that holds the base, with the stat data of the graded tree.
pub(super) const GRADE_INDEX: &str = "grade.index";
/// A kept change larger than this is reverted (build products belong in
/// `.gitignore`, and nothing this large should land unreviewed).
pub const MAX_KEPT_FILE_BYTES: u64 = 100 << 20;

/// How a path differs from the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    /// A file became a link, or the other way round.
    TypeChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::TypeChanged => "type changed",
        }
    }
}

/// Why a change may not land.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The goal file (gaming).
    GoalFile,
    /// Under a `protected` entry (gaming).
    Protected { entry: String },
    /// In the repository but outside the workspace.
    OutsideWorkspace,
    /// Outside every `writable` entry.
    OutsideWritable,
    /// Larger than [`MAX_KEPT_FILE_BYTES`].
    TooLarge { bytes: u64 },
    /// Reverting another path needs this one gone (a file where a directory was).
    Conflict { with: String },
    /// Made by `[scope] setup`, not by the agent.
    Setup,
}

impl Reason {
    /// A change to a protected path or to the goal file: gaming.
    pub fn is_gaming(&self) -> bool {
        matches!(self, Reason::GoalFile | Reason::Protected { .. })
    }

    /// The reason as it reads after "reverted: ".
    pub fn describe(&self, writable: &[String]) -> String {
        match self {
            Reason::GoalFile => "it is the goal file".into(),
            Reason::Protected { entry } => format!("it is protected (`{entry}`)"),
            Reason::OutsideWorkspace => "it is outside the workspace".into(),
            Reason::OutsideWritable => format!(
                "it is outside `writable` ({})",
                writable
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Reason::TooLarge { bytes } => format!(
                "it is {} MiB, larger than the {} MiB a change may be",
                bytes >> 20,
                MAX_KEPT_FILE_BYTES >> 20
            ),
            Reason::Conflict { with } => format!("reverting {with} needs it gone"),
            Reason::Setup => "[scope] setup made it".into(),
        }
    }
}

/// What kazi did with a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// It stays and would land.
    Kept,
    /// Restored to the base (task worktrees).
    Reverted { why: Reason },
    /// It breaks the scope but stays (in place: kazi never reverts the user's files).
    Reported { why: Reason },
}

/// One path that differs from the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathChange {
    /// Relative to the workspace (`../x` when outside it).
    pub path: String,
    pub kind: ChangeKind,
    #[serde(flatten)]
    pub action: Action,
    /// Relative to the repository root (lossy for names that are not UTF-8).
    #[serde(skip)]
    pub(super) repo_path: String,
    /// Relative to the repository root, exactly (for the filesystem and git).
    #[serde(skip)]
    pub(super) raw: Vec<u8>,
    /// Known to the base (restored with a checkout), or new (removed).
    #[serde(skip)]
    pub(super) tracked: bool,
}

/// A bounded unified diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// `git diff` text (paths relative to the repository root), at most the bytes asked.
    pub text: String,
    /// The text was cut at the bound.
    pub truncated: bool,
    /// The changed files, relative to the workspace.
    pub files: Vec<String>,
}

/// What [`Isolation::enforce_scope`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeReport {
    pub mode: Mode,
    /// Every path that differed from the base before enforcement, sorted by path.
    pub changes: Vec<PathChange>,
    /// The kept changes of this grading against the previous one (the dispatch's
    /// diff), bounded by [`super::DISPATCH_DIFF_BYTES`]; empty outside git.
    pub dispatch_diff: Diff,
    /// The graded commit (`None`: nothing kept, the graded state is the base).
    pub graded: Option<String>,
    /// Reverts that did not take (the path still differs): what would land is not
    /// what is graded.
    pub failures: Vec<(String, String)>,
    /// `writable` as graded (for messages).
    pub writable: Vec<String>,
}

impl ScopeReport {
    pub fn kept(&self) -> Vec<&PathChange> {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Kept)
            .collect()
    }

    /// Changes reverted (worktree) or reported as out of scope (in place).
    pub fn out_of_scope(&self) -> Vec<(&PathChange, &Reason)> {
        self.changes
            .iter()
            .filter_map(|c| match &c.action {
                Action::Reverted { why } | Action::Reported { why } => Some((c, why)),
                Action::Kept => None,
            })
            .collect()
    }

    pub fn reverted(&self) -> Vec<&PathChange> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Reverted { .. }))
            .collect()
    }

    /// Changes to protected paths or the goal file.
    pub fn gaming(&self) -> Vec<&PathChange> {
        self.out_of_scope()
            .into_iter()
            .filter(|(_, why)| why.is_gaming())
            .map(|(c, _)| c)
            .collect()
    }

    /// Events for the read-model: `scope` for reverts outside the rules, `gaming`
    /// for protected paths and the goal file, `tamper` when a revert failed.
    pub fn events(&self) -> Vec<Event> {
        let verb = match self.mode {
            Mode::Worktree => "reverted",
            Mode::InPlace => "left in place",
        };
        let mut events = Vec::new();
        let (gaming, scope): (Vec<_>, Vec<_>) = self
            .out_of_scope()
            .into_iter()
            .partition(|(_, why)| why.is_gaming());
        if !scope.is_empty() {
            events.push(Event {
                kind: crate::run::EventKind::Scope,
                predicate: None,
                message: format!(
                    "changes out of scope ({verb}): {}",
                    bounded_list(
                        scope
                            .iter()
                            .map(|(c, why)| format!(
                                "{} ({})",
                                c.path,
                                why.describe(&self.writable)
                            ))
                            .collect(),
                        "; "
                    )
                ),
            });
        }
        if !gaming.is_empty() {
            events.push(Event {
                kind: crate::run::EventKind::Gaming,
                predicate: None,
                message: format!(
                    "the agent changed what it must not ({verb}): {}",
                    bounded_list(
                        gaming
                            .iter()
                            .map(|(c, why)| format!(
                                "{} ({})",
                                c.path,
                                why.describe(&self.writable)
                            ))
                            .collect(),
                        "; "
                    )
                ),
            });
        }
        if let Some(reason) = self.stop_reason() {
            events.push(Event {
                kind: crate::run::EventKind::Tamper,
                predicate: None,
                message: reason,
            });
        }
        events
    }

    /// One line per change the agent should hear about in its next prompt (at
    /// most [`MAX_NAMED_PATHS`], then a count).
    pub fn agent_notes(&self) -> Vec<String> {
        let out: Vec<(&PathChange, &Reason)> = self
            .out_of_scope()
            .into_iter()
            .filter(|(_, why)| **why != Reason::Setup)
            .collect();
        let more = out.len().saturating_sub(MAX_NAMED_PATHS);
        let mut notes: Vec<String> = out
            .into_iter()
            .take(MAX_NAMED_PATHS)
            .map(|(c, why)| match self.mode {
                Mode::Worktree => format!(
                    "your change to {} was reverted: {}",
                    c.path,
                    why.describe(&self.writable)
                ),
                Mode::InPlace => format!(
                    "your change to {} is out of scope: {}",
                    c.path,
                    why.describe(&self.writable)
                ),
            })
            .collect();
        if more > 0 {
            notes.push(format!(
                "{more} more of your changes were out of scope and {}",
                if self.mode == Mode::Worktree {
                    "reverted"
                } else {
                    "reported"
                }
            ));
        }
        notes
    }

    /// Why the run cannot go on honestly: a revert did not take.
    pub fn stop_reason(&self) -> Option<String> {
        (!self.failures.is_empty()).then(|| {
            format!(
                "kazi could not revert {}: what would land is not what the predicates would grade",
                bounded_list(
                    self.failures
                        .iter()
                        .map(|(p, e)| format!("{p} ({})", crate::verdict::truncate_middle(e, 300)))
                        .collect(),
                    ", "
                )
            )
        })
    }
}

/// Most paths an event or the agent's notes name; the rest are counted.
pub const MAX_NAMED_PATHS: usize = 20;

/// `items` joined with `sep`, at most [`MAX_NAMED_PATHS`] of them, then "and N more".
fn bounded_list(items: Vec<String>, sep: &str) -> String {
    let n = items.len();
    let mut shown: Vec<String> = items.into_iter().take(MAX_NAMED_PATHS).collect();
    if n > MAX_NAMED_PATHS {
        shown.push(format!("and {} more", n - MAX_NAMED_PATHS));
    }
    shown.join(sep)
}

/// The rules a grading applies.
enum Rules<'a> {
    Scope {
        writable: &'a [String],
        protected: &'a [String],
    },
    /// Everything goes back to the base (what `[scope] setup` changed).
    RevertAll,
}

/// The base snapshot's facts.
pub(super) struct Base {
    pub commit: String,
    pub tree: String,
    pub head: Option<String>,
    pub branch: Option<String>,
    pub snapshot: bool,
    /// Untracked files left out for their size (path, bytes).
    pub too_large: Vec<(String, u64)>,
}

/// Copy `from` to `to` keeping its mtime, so git's racy-clean rules judge the copy
/// as they judged the original.
fn copy_index(from: &Path, to: &Path) -> Result<(), IsolationError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| IsolationError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::copy(from, to).map_err(io("copy the index", from))?;
    let mtime = std::fs::metadata(from)
        .and_then(|m| m.modified())
        .map_err(io("read the index", from))?;
    std::fs::File::options()
        .write(true)
        .open(to)
        .and_then(|f| f.set_modified(mtime))
        .map_err(io("write the index copy", to))?;
    Ok(())
}

fn index_path(g: &Git) -> Result<PathBuf, IsolationError> {
    let p = g.line(["rev-parse", "--path-format=absolute", "--git-path", "index"])?;
    Ok(PathBuf::from(p))
}

/// Commit the user's working tree (tracked files as they are on disk, untracked
/// files that are not ignored) through a copy of their index, and pin it as
/// `refs/kazi/<run>/base`. The copy, refreshed, stays as the grade index (used in
/// place; a worktree replaces it).
pub(super) fn snapshot_base(
    top: &Git,
    private: &Path,
    exclude: &Path,
    run_id: &str,
) -> Result<Base, IsolationError> {
    let head = top.resolve("HEAD^{commit}")?;
    let branch = top.query(["symbolic-ref", "-q", "HEAD"])?;
    let user_index = index_path(top)?;
    let grade = private.join(GRADE_INDEX);
    let _ = std::fs::remove_file(&grade);
    if user_index.exists() {
        copy_index(&user_index, &grade)?;
    }
    let idx = top.with_index(&grade);
    idx.run(["add", "--update", "--ignore-errors"])
        .or_else(|_| idx.run(["add", "--update"]))?;
    let mut untracked = untracked_files(&idx, exclude, None)?;
    // A multi-gigabyte untracked file (a dataset, a dump) would be copied into the
    // repository's objects and kept alive by the base ref: leave it out.
    let mut too_large = Vec::new();
    untracked.retain(|raw| {
        let bytes = std::fs::symlink_metadata(top.dir.join(os(raw)))
            .ok()
            .filter(|m| m.is_file())
            .map_or(0, |m| m.len());
        if bytes > MAX_KEPT_FILE_BYTES {
            too_large.push((String::from_utf8_lossy(raw).into_owned(), bytes));
        }
        bytes <= MAX_KEPT_FILE_BYTES
    });
    if !too_large.is_empty() {
        // Ignored for the rest of the run: never graded, never reverted, carried if named.
        let mut rules = std::fs::read_to_string(exclude).unwrap_or_default();
        rules.push_str("# kazi: untracked files too large for the base\n");
        for (path, _) in &too_large {
            rules.push_str(&exclude_pattern(path));
            rules.push('\n');
        }
        std::fs::write(exclude, rules).map_err(|source| IsolationError::Io {
            action: "write the captured ignore rules",
            path: exclude.to_owned(),
            source,
        })?;
    }
    if !untracked.is_empty() {
        idx.run_input(
            ["update-index", "--add", "-z", "--stdin"],
            join_z_raw(untracked.iter().map(Vec::as_slice)),
        )?;
    }
    let tree = idx.line(["write-tree"])?;
    let head_tree = match &head {
        Some(h) => Some(top.line(["rev-parse", &format!("{h}^{{tree}}")])?),
        None => None,
    };
    let (commit, snapshot) = if head_tree.as_deref() == Some(tree.as_str()) {
        (head.clone().expect("a head tree has a head"), false)
    } else {
        let message = format!(
            "kazi: your working tree at the start of run {run_id}\n\nUncommitted changes and untracked files (not ignored) as they were when the run\nstarted: the base the agent worked from.\n"
        );
        let mut args = vec!["commit-tree", "--no-gpg-sign", &tree, "-m", &message];
        if let Some(h) = &head {
            args.push("-p");
            args.push(h);
        }
        (top.as_kazi().line(args)?, true)
    };
    top.run([
        "update-ref",
        "-m",
        "kazi: base",
        &format!("refs/kazi/{run_id}/base"),
        &commit,
    ])?;
    Ok(Base {
        commit,
        tree,
        head,
        branch,
        snapshot,
        too_large,
    })
}

/// An ignore pattern that matches exactly `path` (relative to the repository root).
fn exclude_pattern(path: &str) -> String {
    let mut p = String::from("/");
    for c in path.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | '!' | '#' | ' ') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// The grade index of a new worktree: a copy of the worktree's own index, which the
/// checkout just wrote (the base, with fresh stat data).
pub(super) fn init_grade_index(wt: &Git, private: &Path) -> Result<(), IsolationError> {
    copy_index(&index_path(wt)?, &private.join(GRADE_INDEX))
}

/// Make the grade index again from the base commit (rehashes the tree once).
pub(super) fn rebuild_grade_index(
    g: &Git,
    private: &Path,
    base: &str,
) -> Result<(), IsolationError> {
    let grade = private.join(GRADE_INDEX);
    let idx = g.with_index(&grade);
    idx.run(["read-tree", base])?;
    idx.output(idx.cmd(["update-index", "-q", "--refresh"]))?;
    Ok(())
}

/// Untracked files that are not ignored by the per-directory `.gitignore` files and
/// the captured excludes (nested repositories as `dir`, without the slash).
fn untracked_files(
    idx: &Git,
    exclude: &Path,
    extra_exclude: Option<&str>,
) -> Result<Vec<Vec<u8>>, IsolationError> {
    let mut args = vec![
        "ls-files".to_owned(),
        "-z".into(),
        "--others".into(),
        "--exclude-per-directory=.gitignore".into(),
        format!("--exclude-from={}", exclude.display()),
    ];
    if let Some(x) = extra_exclude {
        args.push(format!("--exclude={x}"));
    }
    let out = idx.run(args)?;
    Ok(split_z_raw(&out)
        .into_iter()
        .map(|mut p| {
            while p.last() == Some(&b'/') {
                p.pop();
            }
            p
        })
        .collect())
}

/// One path that differs from the base, as git lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// Lossy, for the rules and messages.
    path: String,
    raw: Vec<u8>,
    kind: ChangeKind,
    tracked: bool,
}

impl Listed {
    fn new(raw: Vec<u8>, kind: ChangeKind, tracked: bool) -> Self {
        Listed {
            path: String::from_utf8_lossy(&raw).into_owned(),
            raw,
            kind,
            tracked,
        }
    }
}

/// The tracked files that differ from the grade index (the base) and the untracked
/// files that are not ignored. With `two_pass`, ignore rules are the base's: an
/// agent's `.gitignore` edits are set aside while untracked files are listed again.
fn list_changes(
    g: &Git,
    root: &Path,
    exclude: &Path,
    two_pass: bool,
    run_id: &str,
) -> Result<Vec<Listed>, IsolationError> {
    g.output(g.cmd(["update-index", "-q", "--refresh"]))?;
    let raw = g.run([
        "diff-files",
        "-z",
        "--name-status",
        "--no-renames",
        "--ignore-submodules=dirty",
    ])?;
    let fields = split_z_raw(&raw);
    let mut listed = Vec::new();
    for pair in fields.chunks(2) {
        let [status, path] = pair else { continue };
        let kind = match status.first() {
            Some(b'D') => ChangeKind::Deleted,
            Some(b'T') => ChangeKind::TypeChanged,
            _ => ChangeKind::Modified,
        };
        listed.push(Listed::new(path.clone(), kind, true));
    }
    let mut untracked: BTreeSet<Vec<u8>> = untracked_files(g, exclude, None)?.into_iter().collect();
    let ignore_files: Vec<Listed> = listed
        .iter()
        .cloned()
        .chain(
            untracked
                .iter()
                .map(|p| Listed::new(p.clone(), ChangeKind::Added, false)),
        )
        .filter(|l| l.raw == b".gitignore" || l.raw.ends_with(b"/.gitignore"))
        .collect();
    if two_pass && !ignore_files.is_empty() {
        // A name nobody can have made in advance, so nothing hides behind it.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let suffix = format!(".kazi-aside-{run_id}-{}-{nonce:08x}", std::process::id());
        let swap = Swap::new(g, root, &ignore_files, &suffix)?;
        let second = untracked_files(g, exclude, Some(&format!("*{suffix}")));
        drop(swap);
        // What is ignored is what the base ignores: a file the agent's rules hide
        // counts, and a build product the agent's rules expose does not. The
        // agent's own new ignore files count as they are.
        let new_ignore_files: Vec<Vec<u8>> = ignore_files
            .iter()
            .filter(|l| !l.tracked)
            .map(|l| l.raw.clone())
            .collect();
        untracked = second?
            .into_iter()
            .filter(|p| !p.ends_with(suffix.as_bytes()))
            .chain(new_ignore_files)
            .collect();
    }
    listed.extend(
        untracked
            .into_iter()
            .map(|p| Listed::new(p, ChangeKind::Added, false)),
    );
    listed.sort_by(|a, b| a.raw.cmp(&b.raw));
    Ok(listed)
}

/// Changed `.gitignore` files set aside (renamed next to themselves) with the base
/// versions checked out in their place; dropping it puts the agent's versions back.
struct Swap {
    root: PathBuf,
    moved: Vec<(Vec<u8>, Vec<u8>)>,
    written: Vec<Vec<u8>>,
}

impl Swap {
    fn new(g: &Git, root: &Path, files: &[Listed], suffix: &str) -> Result<Swap, IsolationError> {
        let mut swap = Swap {
            root: root.to_owned(),
            moved: Vec::new(),
            written: Vec::new(),
        };
        for f in files {
            let from = root.join(os(&f.raw));
            if std::fs::symlink_metadata(&from).is_ok() {
                let mut aside = f.raw.clone();
                aside.extend_from_slice(suffix.as_bytes());
                std::fs::rename(&from, root.join(os(&aside))).map_err(|source| {
                    IsolationError::Io {
                        action: "set aside the changed ignore file",
                        path: from.clone(),
                        source,
                    }
                })?;
                swap.moved.push((f.raw.clone(), aside));
            }
        }
        let tracked: Vec<&[u8]> = files
            .iter()
            .filter(|f| f.tracked)
            .map(|f| f.raw.as_slice())
            .collect();
        if !tracked.is_empty() {
            g.run_input(
                ["checkout-index", "-f", "-z", "--stdin"],
                join_z_raw(tracked.iter().copied()),
            )?;
            swap.written = tracked.iter().map(|s| s.to_vec()).collect();
        }
        Ok(swap)
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        for w in &self.written {
            let _ = std::fs::remove_file(self.root.join(os(w)));
        }
        for (orig, aside) in &self.moved {
            let _ = std::fs::rename(self.root.join(os(aside)), self.root.join(os(orig)));
        }
    }
}

/// `repo_path` relative to the workspace at `prefix` (`../` steps when outside).
fn workspace_relative(prefix: &str, repo_path: &str) -> (String, bool) {
    if let Some(rest) = repo_path.strip_prefix(prefix) {
        return (rest.to_owned(), true);
    }
    let depth = prefix.trim_end_matches('/').split('/').count();
    (format!("{}{repo_path}", "../".repeat(depth)), false)
}

/// Decide what happens to each change.
fn classify(
    listed: Vec<Listed>,
    rules: &Rules<'_>,
    prefix: &str,
    goal_rel: Option<&str>,
    root: &Path,
    mode: Mode,
) -> Vec<PathChange> {
    listed
        .into_iter()
        .map(|l| {
            let (path, inside) = workspace_relative(prefix, &l.path);
            let why = match rules {
                Rules::RevertAll => Some(Reason::Setup),
                Rules::Scope {
                    writable,
                    protected,
                } => {
                    let protected_by = protected
                        .iter()
                        .find(|p| inside && seal::under(&path, p))
                        .cloned();
                    if goal_rel == Some(l.path.as_str()) {
                        Some(Reason::GoalFile)
                    } else if let Some(entry) = protected_by {
                        Some(Reason::Protected { entry })
                    } else if !inside {
                        Some(Reason::OutsideWorkspace)
                    } else if !writable.is_empty()
                        && !writable.iter().any(|w| seal::under(&path, w))
                    {
                        Some(Reason::OutsideWritable)
                    } else if mode == Mode::Worktree && l.kind != ChangeKind::Deleted {
                        let bytes = std::fs::symlink_metadata(root.join(os(&l.raw)))
                            .ok()
                            .filter(|m| m.is_file())
                            .map_or(0, |m| m.len());
                        (bytes > MAX_KEPT_FILE_BYTES).then_some(Reason::TooLarge { bytes })
                    } else {
                        None
                    }
                }
            };
            let action = match (why, mode) {
                (None, _) => Action::Kept,
                (Some(why), Mode::Worktree) => Action::Reverted { why },
                (Some(why), Mode::InPlace) => Action::Reported { why },
            };
            PathChange {
                path,
                kind: l.kind,
                action,
                repo_path: l.path,
                raw: l.raw,
                tracked: l.tracked,
            }
        })
        .collect()
}

/// A kept new path that stands where a reverted tracked path must be restored (the
/// same path, a directory above it, or a path below it) is reverted too.
fn resolve_conflicts(changes: &mut [PathChange]) {
    let restored: Vec<(Vec<u8>, String)> = changes
        .iter()
        .filter(|c| c.tracked && matches!(c.action, Action::Reverted { .. }))
        .map(|c| (c.raw.clone(), c.path.clone()))
        .collect();
    // `a` is `b`, or a directory above it.
    let above = |a: &[u8], b: &[u8]| b.starts_with(a) && (a.len() == b.len() || b[a.len()] == b'/');
    for c in changes.iter_mut() {
        if c.tracked || c.action != Action::Kept {
            continue;
        }
        let hit = restored
            .iter()
            .find(|(r, _)| above(&c.raw, r) || above(r, &c.raw));
        if let Some((_, shown)) = hit {
            c.action = Action::Reverted {
                why: Reason::Conflict {
                    with: shown.clone(),
                },
            };
        }
    }
}

/// Make every existing directory from `root` down to `rel`'s parent writable, so a
/// `chmod -w` cannot keep a revert out.
fn open_parents(root: &Path, rel: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mut dir = root.to_owned();
    let parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(os(part));
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {
                let mode = m.permissions().mode();
                if mode & 0o700 != 0o700 {
                    let _ = std::fs::set_permissions(
                        &dir,
                        std::fs::Permissions::from_mode(mode | 0o700),
                    );
                }
            }
            _ => return,
        }
    }
    let _ = std::fs::symlink_metadata(root).map(|m| {
        let mode = m.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o700));
        }
    });
}

/// Remove reverted new paths, restore reverted tracked ones from the base. Returns
/// the failures.
fn revert(
    g: &Git,
    root: &Path,
    changes: &[PathChange],
    keep_dirs: &[PathBuf],
) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    let mut emptied = BTreeSet::new();
    for c in changes
        .iter()
        .filter(|c| !c.tracked && matches!(c.action, Action::Reverted { .. }))
    {
        open_parents(root, &c.raw);
        let p = root.join(os(&c.raw));
        match super::remove_tree(&p) {
            Ok(()) => {
                if let Some(parent) = p.parent() {
                    emptied.insert(parent.to_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failures.push((c.path.clone(), e.to_string())),
        }
    }
    // Directories the removals left empty go too (git has no empty directories),
    // up to the root and never the workspace.
    for mut dir in emptied.into_iter().rev() {
        while dir.starts_with(root) && dir != root && !keep_dirs.contains(&dir) {
            if std::fs::remove_dir(&dir).is_err() {
                break;
            }
            if !dir.pop() {
                break;
            }
        }
    }
    let tracked: Vec<&PathChange> = changes
        .iter()
        .filter(|c| c.tracked && matches!(c.action, Action::Reverted { .. }))
        .collect();
    if !tracked.is_empty() {
        for c in &tracked {
            open_parents(root, &c.raw);
        }
        if let Err(e) = g.run_input(
            ["checkout-index", "-f", "-u", "-z", "--stdin"],
            join_z_raw(tracked.iter().map(|c| c.raw.as_slice())),
        ) {
            for c in tracked {
                failures.push((c.path.clone(), e.message.clone()));
            }
        }
    }
    failures
}

/// The tree of the base plus `paths` as they are on disk now.
fn state_tree(g: &Git, private: &Path, paths: &[&[u8]]) -> Result<String, IsolationError> {
    if paths.is_empty() {
        return Ok(g.line(["write-tree"])?);
    }
    let state = private.join("state.index");
    copy_index(&private.join(GRADE_INDEX), &state)?;
    let s = g.with_index(&state);
    let result = s
        .run_input(
            [
                "update-index",
                "--add",
                "--remove",
                "--replace",
                "-z",
                "--stdin",
            ],
            join_z_raw(paths.iter().copied()),
        )
        .and_then(|_| s.line(["write-tree"]));
    let _ = std::fs::remove_file(&state);
    Ok(result?)
}

/// A bounded unified diff between two trees, and the files that differ.
fn diff_trees(
    g: &Git,
    from: &str,
    to: &str,
    max_bytes: usize,
    prefix: &str,
) -> Result<Diff, IsolationError> {
    if from == to {
        return Ok(Diff::default());
    }
    let names = g.run([
        "diff-tree",
        "-r",
        "-z",
        "--name-only",
        "--no-renames",
        from,
        to,
    ])?;
    let files = split_z(&names)
        .into_iter()
        .map(|p| workspace_relative(prefix, &p).0)
        .collect();
    let mut cmd = g.cmd([
        "diff-tree",
        "-r",
        "-p",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        from,
        to,
    ]);
    cmd.cap = max_bytes;
    cmd.kill_at_cap = true;
    let out = g.output(cmd)?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.truncated {
        // Cut at a character boundary within the bound (lossy decoding may grow it).
        let mut end = text.len().min(max_bytes);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Ok(Diff {
        text,
        truncated: out.truncated,
        files,
    })
}

impl Isolation {
    /// Grade the workspace: compare it with the base; in a task worktree, revert
    /// what may not land (outside the workspace, outside `writable` when it is set,
    /// `protected` paths, the goal file, files over [`MAX_KEPT_FILE_BYTES`]) and
    /// commit the rest as the graded state; in place, only report. Call it after
    /// each dispatch, before observing.
    pub fn enforce_scope(
        &mut self,
        writable: &[String],
        protected: &[String],
    ) -> Result<ScopeReport, IsolationError> {
        self.grade(&Rules::Scope {
            writable,
            protected,
        })
    }

    /// Restore everything `[scope] setup` changed that is not ignored; the paths.
    pub(super) fn restore_setup_changes(&mut self) -> Result<Vec<String>, IsolationError> {
        let report = self.grade(&Rules::RevertAll)?;
        if let Some(reason) = report.stop_reason() {
            return Err(IsolationError::Setup {
                command: "(restoring what setup changed)".into(),
                detail: reason,
                log: self.private().join("setup.log"),
            });
        }
        Ok(report.changes.into_iter().map(|c| c.path).collect())
    }

    fn grade(&mut self, rules: &Rules<'_>) -> Result<ScopeReport, IsolationError> {
        let writable = match rules {
            Rules::Scope { writable, .. } => writable.to_vec(),
            Rules::RevertAll => Vec::new(),
        };
        let mode = self.record.mode;
        let Some(facts) = self.record.git.clone() else {
            return Ok(self.grade_outside_git(rules, writable));
        };
        let root = facts
            .worktree
            .clone()
            .unwrap_or_else(|| facts.toplevel.clone());
        let private = self.private();
        if let (Some(wt), Some(id)) = (&facts.worktree, &facts.worktree_identity)
            && seal::root_identity(wt).as_ref() != Some(id)
        {
            // Never grade (or revert) through a root that is not the one kazi made:
            // a link put in its place could point at the user's checkout.
            return Ok(ScopeReport {
                mode,
                changes: Vec::new(),
                dispatch_diff: Diff::default(),
                graded: facts.graded.clone(),
                failures: vec![(
                    wt.display().to_string(),
                    "the task worktree was removed or replaced; it is not the directory kazi made"
                        .to_owned(),
                )],
                writable,
            });
        }
        let g = facts.root_git().with_index(&private.join(GRADE_INDEX));
        let exclude = private.join("exclude");
        let worktree = mode == Mode::Worktree;
        let listed = list_changes(&g, &root, &exclude, worktree, &self.record.run_id)?;
        let mut changes = classify(
            listed,
            rules,
            &facts.prefix,
            facts.goal_rel.as_deref(),
            &root,
            mode,
        );
        let mut failures = Vec::new();
        if worktree {
            resolve_conflicts(&mut changes);
            let reverting = changes
                .iter()
                .any(|c| matches!(c.action, Action::Reverted { .. }));
            if reverting {
                let keep = [root.clone(), self.record.workspace.clone()];
                failures = revert(&g, &root, &changes, &keep);
                // A revert that did not take shows up again.
                let still: BTreeSet<Vec<u8>> =
                    list_changes(&g, &root, &exclude, true, &self.record.run_id)?
                        .into_iter()
                        .map(|l| l.raw)
                        .collect();
                for c in &changes {
                    if matches!(c.action, Action::Reverted { .. })
                        && still.contains(&c.raw)
                        && !failures.iter().any(|(p, _)| p == &c.path)
                    {
                        failures.push((c.path.clone(), "it still differs from the base".into()));
                    }
                }
            }
        }
        let kept: Vec<&[u8]> = changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Reverted { .. }))
            .map(|c| c.raw.as_slice())
            .collect();
        let tree = state_tree(&g, &private, &kept)?;
        let top = Git::new(&facts.toplevel);
        let previous_tree = match &facts.graded {
            Some(c) => top.line(["rev-parse", &format!("{c}^{{tree}}")])?,
            None => facts.base_tree.clone(),
        };
        let graded = if tree == facts.base_tree {
            let _ = top.run([
                "update-ref",
                "-d",
                &format!("refs/kazi/{}/graded", self.record.run_id),
            ]);
            None
        } else if tree == previous_tree {
            facts.graded.clone()
        } else {
            let message = format!("kazi: graded state of run {}", self.record.run_id);
            let commit = top.as_kazi().line([
                "commit-tree",
                "--no-gpg-sign",
                &tree,
                "-p",
                &facts.base,
                "-m",
                &message,
            ])?;
            top.run([
                "update-ref",
                "-m",
                "kazi: graded",
                &format!("refs/kazi/{}/graded", self.record.run_id),
                &commit,
            ])?;
            Some(commit)
        };
        let dispatch_diff = diff_trees(
            &top,
            &previous_tree,
            &tree,
            super::DISPATCH_DIFF_BYTES,
            &facts.prefix,
        )?;
        if let Some(f) = self.record.git.as_mut() {
            f.graded = graded.clone();
        }
        Ok(ScopeReport {
            mode,
            changes,
            dispatch_diff,
            graded,
            failures,
            writable,
        })
    }

    /// A workspace outside git: changes against the snapshot taken at the start,
    /// reported, never reverted.
    fn grade_outside_git(&mut self, rules: &Rules<'_>, writable: Vec<String>) -> ScopeReport {
        let now = seal::snapshot(&self.record.workspace);
        let start = self.start.get_or_insert_with(|| now.clone());
        let listed = seal::changed(start, &now)
            .into_iter()
            .map(|path| {
                let kind = match (start.contains_key(&path), now.contains_key(&path)) {
                    (false, _) => ChangeKind::Added,
                    (true, false) => ChangeKind::Deleted,
                    (true, true) => ChangeKind::Modified,
                };
                Listed::new(path.into_bytes(), kind, false)
            })
            .collect();
        let goal_rel = self
            .record
            .goal_path
            .strip_prefix(&self.record.workspace)
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let changes = classify(
            listed,
            rules,
            "",
            goal_rel.as_deref(),
            &self.record.workspace,
            Mode::InPlace,
        );
        ScopeReport {
            mode: Mode::InPlace,
            dispatch_diff: Diff {
                files: changes.iter().map(|c| c.path.clone()).collect(),
                ..Diff::default()
            },
            changes,
            graded: None,
            failures: Vec::new(),
            writable,
        }
    }

    /// A bounded unified diff of the kept changes against the base, and the changed
    /// files: in a task worktree as of the last grading; in place, as the files are
    /// now. Outside git, only the files (no text).
    pub fn diff(&self, max_bytes: usize) -> Result<Diff, IsolationError> {
        let Some(facts) = &self.record.git else {
            let now = seal::snapshot(&self.record.workspace);
            let files = self
                .start
                .as_ref()
                .map(|s| seal::changed(s, &now))
                .unwrap_or_default();
            return Ok(Diff {
                files,
                ..Diff::default()
            });
        };
        let top = Git::new(&facts.toplevel);
        let to = match (self.record.mode, &facts.graded) {
            (Mode::Worktree, Some(c)) => top.line(["rev-parse", &format!("{c}^{{tree}}")])?,
            (Mode::Worktree, None) => facts.base_tree.clone(),
            (Mode::InPlace, _) => {
                let private = self.private();
                let g = Git::new(&facts.toplevel).with_index(&private.join(GRADE_INDEX));
                let listed = list_changes(
                    &g,
                    &facts.toplevel,
                    &private.join("exclude"),
                    false,
                    &self.record.run_id,
                )?;
                let paths: Vec<&[u8]> = listed.iter().map(|l| l.raw.as_slice()).collect();
                state_tree(&g, &private, &paths)?
            }
        };
        diff_trees(&top, &facts.base_tree, &to, max_bytes, &facts.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_patterns_match_one_path_literally() {
        assert_eq!(exclude_pattern("data/big.bin"), "/data/big.bin");
        assert_eq!(exclude_pattern("a b*[c]?!#"), "/a\\ b\\*\\[c]\\?\\!\\#");
    }

    #[test]
    fn paths_are_shown_relative_to_the_workspace() {
        assert_eq!(workspace_relative("", "a/b"), ("a/b".into(), true));
        assert_eq!(workspace_relative("sub/", "sub/x"), ("x".into(), true));
        assert_eq!(
            workspace_relative("a/b/", "c/d"),
            ("../../c/d".into(), false)
        );
        assert_eq!(
            workspace_relative("sub/", "subx"),
            ("../subx".into(), false)
        );
    }

    fn listed(path: &str, tracked: bool) -> Listed {
        let kind = if tracked {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        Listed::new(path.as_bytes().to_vec(), kind, tracked)
    }

    #[test]
    fn rules_apply_in_order_goal_protected_workspace_writable() {
        let writable = vec!["src/".to_owned()];
        let protected = vec!["tests/".to_owned()];
        let rules = Rules::Scope {
            writable: &writable,
            protected: &protected,
        };
        let changes = classify(
            vec![
                listed("ws/kazi.toml", true),
                listed("ws/tests/test_a.py", true),
                listed("ws/src/a.py", true),
                listed("ws/conftest.py", false),
                listed("other/x", false),
            ],
            &rules,
            "ws/",
            Some("ws/kazi.toml"),
            Path::new("/nonexistent"),
            Mode::Worktree,
        );
        let got: Vec<(&str, Option<Reason>)> = changes
            .iter()
            .map(|c| {
                (
                    c.path.as_str(),
                    match &c.action {
                        Action::Reverted { why } => Some(why.clone()),
                        _ => None,
                    },
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("kazi.toml", Some(Reason::GoalFile)),
                (
                    "tests/test_a.py",
                    Some(Reason::Protected {
                        entry: "tests/".into()
                    })
                ),
                ("src/a.py", None),
                ("conftest.py", Some(Reason::OutsideWritable)),
                ("../other/x", Some(Reason::OutsideWorkspace)),
            ]
        );
        // In place the same changes are reported, not reverted.
        let changes = classify(
            vec![listed("ws/conftest.py", false)],
            &rules,
            "ws/",
            None,
            Path::new("/nonexistent"),
            Mode::InPlace,
        );
        assert_eq!(
            changes[0].action,
            Action::Reported {
                why: Reason::OutsideWritable
            }
        );
    }

    #[test]
    fn a_kept_path_in_the_way_of_a_restore_is_reverted_too() {
        let writable = vec!["x/y".to_owned(), "z".to_owned()];
        let rules = Rules::Scope {
            writable: &writable,
            protected: &[],
        };
        // The agent replaced the file x (not writable) by a directory x/ with a
        // writable file in it: restoring x needs x/ gone.
        let mut changes = classify(
            vec![
                Listed::new(b"x".to_vec(), ChangeKind::Deleted, true),
                listed("x/y", false),
                listed("z", false),
            ],
            &rules,
            "",
            None,
            Path::new("/nonexistent"),
            Mode::Worktree,
        );
        resolve_conflicts(&mut changes);
        assert_eq!(
            changes[1].action,
            Action::Reverted {
                why: Reason::Conflict { with: "x".into() }
            }
        );
        assert_eq!(changes[2].action, Action::Kept);
    }

    #[test]
    fn many_reverts_make_bounded_messages() {
        let changes = (0..1000)
            .map(|i| PathChange {
                path: format!("junk/{i}.txt"),
                kind: ChangeKind::Added,
                action: Action::Reverted {
                    why: Reason::OutsideWritable,
                },
                repo_path: format!("junk/{i}.txt"),
                raw: format!("junk/{i}.txt").into_bytes(),
                tracked: false,
            })
            .collect();
        let report = ScopeReport {
            mode: Mode::Worktree,
            changes,
            dispatch_diff: Diff::default(),
            graded: None,
            failures: Vec::new(),
            writable: vec!["src/".into()],
        };
        let notes = report.agent_notes();
        assert_eq!(notes.len(), MAX_NAMED_PATHS + 1);
        assert_eq!(
            notes.last().unwrap(),
            "980 more of your changes were out of scope and reverted"
        );
        let events = report.events();
        assert!(
            events[0].message.ends_with("; and 980 more"),
            "{}",
            events[0].message
        );
        assert!(events[0].message.len() < 2000);
    }

    #[test]
    fn reports_tell_the_agent_and_the_read_model() {
        let report = ScopeReport {
            mode: Mode::Worktree,
            changes: vec![
                PathChange {
                    path: "conftest.py".into(),
                    kind: ChangeKind::Added,
                    action: Action::Reverted {
                        why: Reason::OutsideWritable,
                    },
                    repo_path: "conftest.py".into(),
                    raw: b"conftest.py".to_vec(),
                    tracked: false,
                },
                PathChange {
                    path: "tests/test_a.py".into(),
                    kind: ChangeKind::Modified,
                    action: Action::Reverted {
                        why: Reason::Protected {
                            entry: "tests/".into(),
                        },
                    },
                    repo_path: "tests/test_a.py".into(),
                    raw: b"tests/test_a.py".to_vec(),
                    tracked: true,
                },
                PathChange {
                    path: "src/a.py".into(),
                    kind: ChangeKind::Modified,
                    action: Action::Kept,
                    repo_path: "src/a.py".into(),
                    raw: b"src/a.py".to_vec(),
                    tracked: true,
                },
            ],
            dispatch_diff: Diff::default(),
            graded: None,
            failures: Vec::new(),
            writable: vec!["src/".into()],
        };
        assert_eq!(
            report.agent_notes(),
            vec![
                "your change to conftest.py was reverted: it is outside `writable` (`src/`)",
                "your change to tests/test_a.py was reverted: it is protected (`tests/`)",
            ]
        );
        let events = report.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, crate::run::EventKind::Scope);
        assert_eq!(
            events[0].message,
            "changes out of scope (reverted): conftest.py (it is outside `writable` (`src/`))"
        );
        assert_eq!(events[1].kind, crate::run::EventKind::Gaming);
        assert!(events[1].message.contains("tests/test_a.py"));
        assert_eq!(report.gaming().len(), 1);
        assert_eq!(report.kept().len(), 1);
        assert_eq!(report.stop_reason(), None);
        let json = serde_json::to_value(&report.changes[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "tests/test_a.py", "kind": "modified", "action": "reverted", "why": {"reason": "protected", "entry": "tests/"}})
        );
    }
}
