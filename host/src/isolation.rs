//! Isolation (SPEC §5, issue 13): the agent works in a **task worktree** of a
//! snapshot of the user's tree, kazi grades exactly what would land, and a converged
//! run lands as a commit. The user's checkout (its files and its index) is never
//! written, except by `[land] mode = "merge"`, which fast-forwards it when that is
//! safe.
//!
//! The whole API, in the order a run uses it (every call is blocking; call it from
//! `tokio::task::spawn_blocking` in async code):
//!
//! ```text
//! let data = isolation::data_dir(&db_path);                    // $KAZI_DATA_DIR, else the DB's directory
//! let _ws  = WorkspaceLock::acquire(&data, &LockKey::workspace(&ws, goal_id, in_place), &run_id)?;
//! let _run = WorkspaceLock::acquire(&data, &LockKey::Run(run_id.clone()), &run_id)?;
//! let mut iso = Isolation::prepare(&Prepare { workspace, goal_path, goal_id, run_id, data_dir, in_place, setup, carry })?;
//! store.record_worktree(iso.record())?;                         // the read-model knows it (kazi worktrees)
//! //   --resume instead: Isolation::reopen(store.worktree(run_id)?.record, &data, setup, carry)?
//! // the agent runs in iso.workspace(); the seal hashes iso.goal_path() there
//! loop {
//!     dispatch the agent in iso.workspace();
//!     let report = iso.enforce_scope(&writable, &protected)?;    // revert what may not land
//!     store.record_worktree(iso.record())?;                     // the graded commit moved
//!     report.events() / report.agent_notes() / report.dispatch_diff  // events, next prompt, kazi show
//!     report.gaming() non-empty: a gaming attempt (already reverted; repeated ones end as tampered)
//!     report.stop_reason(): Some when a revert did not take -> end the run (tampered)
//!     observe predicates in iso.workspace();                    // they grade what would land
//! }
//! print iso.notices() once after prepare/reopen (in place because not in git, carry, setup)
//! on converged: let landed = iso.land(&LandRequest { mode, branch, message, report })
//!               (message: isolation::landing_message(...)); store.record_landing(run_id, &landed)?;
//! at the end:   iso.release(keep)?  (keep = converged, so `kazi land RUN_ID` can land it later;
//!               an interrupted run keeps its worktree for --resume: do not release it)
//! ```
//!
//! - **Base**: a commit of the user's working tree — tracked files with their
//!   uncommitted changes and untracked files that are not ignored — built through a
//!   private index (a copy of the user's, so unchanged files are not rehashed) and
//!   `git commit-tree`, never touching the user's index or files. When the tree
//!   equals `HEAD`'s, the base *is* `HEAD`. It is kept alive by `refs/kazi/<run>/base`.
//! - **Task worktree**: `git worktree add --detach <data>/worktrees/<run> <base>`;
//!   the workspace may be a subdirectory of the repository (it is the same
//!   subdirectory of the worktree) and the goal file is mapped into it when the base
//!   holds it. `[scope] carry` copies named ignored paths (`.venv`, `target`) from
//!   the user's checkout (copy-on-write where the filesystem allows), then
//!   `[scope] setup` commands run once; changes setup makes to files that are not
//!   ignored are restored, so only the agent's changes are graded.
//! - **Grading** ([`Isolation::enforce_scope`]): the worktree's files are compared
//!   with the base commit through a private index (never the worktree's own index or
//!   `HEAD`, so an agent that `git commit`s hides nothing), with git's ignore rules as
//!   the base had them (an agent's edit to a `.gitignore` cannot hide a file).
//!   Changes outside the workspace, outside `writable` (when set), to `protected`
//!   paths or to the goal file are reverted to the base; the last two are `gaming`.
//!   Ignored files and build products are left alone and never count. The graded
//!   state is committed as `refs/kazi/<run>/graded`.
//! - **In place** (`--in-place`, and every non-git workspace, with a notice):
//!   nothing is reverted; the same report says what would have been.
//! - **Landing** ([`Isolation::land`]): the graded state is committed on a branch
//!   (`kazi/<goal>-<run>`) with the verdicts and a `Kazi-Run:` trailer, then
//!   `[land] mode` applies: `branch`, `merge` (fast-forward when safe, else fall
//!   back to `branch` and say why), `pr` (push + `gh pr create`, else fall back),
//!   `none`. A failure is a [`LandOutcome`], never a panic.

pub mod cmd;
pub mod git;
mod land;
pub mod lock;
mod provision;
mod scope;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use land::{DEFAULT_BRANCH, LandOutcome, LandRequest, LandStatus, can_land, landing_message};
pub use lock::{Holder, LockError, LockKey, WorkspaceLock};
pub use provision::{SETUP_TIMEOUT, is_inner_path};
pub use scope::{Action, ChangeKind, Diff, PathChange, Reason, ScopeReport};

use crate::reconcile::seal::Snapshot;
use git::{Git, GitError};

/// Bytes of unified diff kept per dispatch in a [`ScopeReport`].
pub const DISPATCH_DIFF_BYTES: usize = 64 * 1024;

/// Where the agent works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A task worktree of a snapshot of the user's tree (git workspaces, the default).
    Worktree,
    /// The user's checkout itself (`--in-place`, or a workspace that is not in git).
    InPlace,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Worktree => "worktree",
            Mode::InPlace => "in_place",
        }
    }
}

/// What [`Isolation::prepare`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Prepare<'a> {
    /// The user's workspace (`[scope] workspace` or `--workspace`).
    pub workspace: &'a Path,
    /// The goal file as the user gave it.
    pub goal_path: &'a Path,
    pub goal_id: &'a str,
    pub run_id: &'a str,
    /// kazi's data dir ([`data_dir`]).
    pub data_dir: &'a Path,
    /// `--in-place`.
    pub in_place: bool,
    /// `[scope] setup`: commands run once in a new worktree.
    pub setup: &'a [Vec<String>],
    /// `[scope] carry`: ignored paths copied from the user's checkout.
    pub carry: &'a [String],
}

/// Everything kazi remembers about a run's isolation (persisted in the read-model,
/// enough to reopen, land or remove it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorktreeRecord {
    pub run_id: String,
    pub goal_id: String,
    pub mode: Mode,
    /// The user's workspace (canonical).
    pub user_workspace: PathBuf,
    /// The goal file as the user gave it.
    pub user_goal: PathBuf,
    /// Where the agent works and predicates observe.
    pub workspace: PathBuf,
    /// The goal file the seal hashes (in the worktree when the base holds it).
    pub goal_path: PathBuf,
    /// Git facts; `None` for a workspace that is not in git.
    pub git: Option<GitFacts>,
    pub created_at_ms: i64,
}

/// The git side of a [`WorktreeRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitFacts {
    /// The root of the user's checkout.
    pub toplevel: PathBuf,
    /// The repository's common git directory.
    pub common_dir: PathBuf,
    /// The workspace relative to `toplevel` (`""` or `"sub/dir/"`).
    pub prefix: String,
    /// The base commit and its tree.
    pub base: String,
    pub base_tree: String,
    /// The commit `HEAD` named at the start (`None`: unborn).
    pub start_head: Option<String>,
    /// The branch `HEAD` was on at the start (`refs/heads/…`; `None`: detached).
    pub start_branch: Option<String>,
    /// The base is a snapshot commit on top of `start_head` (the tree had
    /// uncommitted changes or untracked files), not `start_head` itself.
    pub snapshot: bool,
    /// The task worktree's root (`None` in place).
    pub worktree: Option<PathBuf>,
    /// The task worktree's git directory (`<common>/worktrees/<name>`), used
    /// explicitly so that an agent rewriting the worktree's `.git` file changes
    /// nothing.
    #[serde(default)]
    pub worktree_git_dir: Option<PathBuf>,
    /// The task worktree root's identity when kazi made it (see
    /// [`crate::reconcile::seal::root_identity`]): grading refuses a root that was
    /// replaced (by a link to elsewhere, say) instead of writing through it.
    #[serde(default)]
    pub worktree_identity: Option<String>,
    /// The goal file relative to `toplevel`, when the base holds it.
    pub goal_rel: Option<String>,
    /// The last graded state (a commit whose parent is `base`); `None` until a
    /// grading kept a change.
    pub graded: Option<String>,
}

/// Why isolation failed. Every message names the path or command.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("failed to read the workspace {}: {source}", path.display())]
    Workspace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(
        "kazi's data directory {} lies inside the repository {}: task worktrees would land in your checkout; hint: set KAZI_DATA_DIR (or --db) to a directory outside the repository",
        data_dir.display(), repo.display()
    )]
    DataDirInsideRepo { data_dir: PathBuf, repo: PathBuf },
    #[error("the task worktree {} already exists; hint: `kazi worktrees --prune` removes worktrees no live run uses", path.display())]
    WorktreeExists { path: PathBuf },
    #[error("[scope] setup command `{command}` {detail} (its output: {}); hint: fix the command, or run it by hand in the worktree to see why", log.display())]
    Setup {
        command: String,
        detail: String,
        log: PathBuf,
    },
    #[error("[scope] carry of {}: {detail}", path.display())]
    Carry { path: PathBuf, detail: String },
    #[error("the base of run {run_id} is gone from {}: {what}; hint: the run cannot be resumed or landed", repo.display())]
    BaseGone {
        run_id: String,
        repo: PathBuf,
        what: String,
    },
}

/// kazi's data directory for isolation (task worktrees, private indexes, locks):
/// `$KAZI_DATA_DIR`, else the directory of the run database.
pub fn data_dir(db_path: &Path) -> PathBuf {
    if let Some(d) = std::env::var_os("KAZI_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match db_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// A run's isolation: where its agent works and how its changes are graded.
#[derive(Debug)]
pub struct Isolation {
    record: WorktreeRecord,
    data_dir: PathBuf,
    /// A workspace outside git: its snapshot at the start, to report changes against.
    start: Option<Snapshot>,
    notices: Vec<String>,
}

impl Isolation {
    /// Set a run up: a task worktree of a snapshot of the user's tree, or in place
    /// (asked for, or the workspace is not in git: then with a notice).
    pub fn prepare(p: &Prepare<'_>) -> Result<Isolation, IsolationError> {
        let workspace =
            std::fs::canonicalize(p.workspace).map_err(|source| IsolationError::Workspace {
                path: p.workspace.to_owned(),
                source,
            })?;
        if !workspace.is_dir() {
            return Err(IsolationError::Workspace {
                path: p.workspace.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "it is not a directory",
                ),
            });
        }
        let mut notices = Vec::new();
        let repo = discover(&workspace)?;
        let repo = match repo {
            Ok(repo) => repo,
            Err(why) => {
                if !p.in_place {
                    notices.push(why);
                }
                let rec = WorktreeRecord {
                    run_id: p.run_id.to_owned(),
                    goal_id: p.goal_id.to_owned(),
                    mode: Mode::InPlace,
                    user_workspace: workspace.clone(),
                    user_goal: p.goal_path.to_owned(),
                    workspace: workspace.clone(),
                    goal_path: p.goal_path.to_owned(),
                    git: None,
                    created_at_ms: crate::store::now_ms(),
                };
                return Ok(Isolation {
                    start: Some(crate::reconcile::seal::snapshot(&workspace)),
                    record: rec,
                    data_dir: p.data_dir.to_owned(),
                    notices,
                });
            }
        };
        std::fs::create_dir_all(p.data_dir).map_err(|source| IsolationError::Io {
            action: "create kazi's data directory",
            path: p.data_dir.to_owned(),
            source,
        })?;
        let data_dir = std::fs::canonicalize(p.data_dir).map_err(|source| IsolationError::Io {
            action: "read kazi's data directory",
            path: p.data_dir.to_owned(),
            source,
        })?;
        if !p.in_place && data_dir.starts_with(&repo.toplevel) {
            return Err(IsolationError::DataDirInsideRepo {
                data_dir,
                repo: repo.toplevel,
            });
        }
        let private = private_dir(&data_dir, p.run_id);
        std::fs::create_dir_all(&private).map_err(|source| IsolationError::Io {
            action: "create the run's private directory",
            path: private.clone(),
            source,
        })?;
        let result = Self::prepare_git(p, &workspace, repo, &data_dir, &private, &mut notices);
        match result {
            Ok(record) => Ok(Isolation {
                record,
                data_dir,
                start: None,
                notices,
            }),
            Err(e) => {
                cleanup_failed_prepare(&data_dir, p.run_id);
                Err(e)
            }
        }
    }

    fn prepare_git(
        p: &Prepare<'_>,
        workspace: &Path,
        repo: Discovered,
        data_dir: &Path,
        private: &Path,
        notices: &mut Vec<String>,
    ) -> Result<WorktreeRecord, IsolationError> {
        let top = Git::new(&repo.toplevel);
        let exclude = private.join("exclude");
        write_excludes(&top, &repo, &exclude)?;
        let base = scope::snapshot_base(&top, private, &exclude, p.run_id)?;
        for (path, bytes) in &base.too_large {
            notices.push(format!(
                "{path} is untracked and {} MiB: it is not in the run's base (nor in a task worktree); hint: ignore it in .gitignore, or name it in [scope] carry",
                bytes >> 20
            ));
        }
        if !repo.prefix.is_empty()
            && top
                .plain_pathspecs()
                .query([
                    "check-ignore",
                    "-q",
                    "--",
                    repo.prefix.trim_end_matches('/'),
                ])?
                .is_some()
        {
            notices.push(format!(
                "the workspace {} is ignored by git: what the agent changes there is never graded and can never land; hint: run with --in-place, or stop ignoring it",
                workspace.display()
            ));
        }
        let goal_abs = std::fs::canonicalize(p.goal_path).ok();
        let goal_rel = goal_abs
            .as_deref()
            .and_then(|g| g.strip_prefix(&repo.toplevel).ok())
            .map(|r| r.to_string_lossy().into_owned())
            .filter(|r| {
                top.run(["cat-file", "-e", &format!("{}:{r}", base.tree)])
                    .is_ok()
            });
        let mut facts = GitFacts {
            toplevel: repo.toplevel.clone(),
            common_dir: repo.common_dir.clone(),
            prefix: repo.prefix.clone(),
            base: base.commit.clone(),
            base_tree: base.tree.clone(),
            start_head: base.head.clone(),
            start_branch: base.branch.clone(),
            snapshot: base.snapshot,
            worktree: None,
            worktree_git_dir: None,
            worktree_identity: None,
            goal_rel,
            graded: None,
        };
        let record = |facts: GitFacts, mode, ws: PathBuf, goal: PathBuf| WorktreeRecord {
            run_id: p.run_id.to_owned(),
            goal_id: p.goal_id.to_owned(),
            mode,
            user_workspace: workspace.to_owned(),
            user_goal: p.goal_path.to_owned(),
            workspace: ws,
            goal_path: goal,
            git: Some(facts),
            created_at_ms: crate::store::now_ms(),
        };
        if p.in_place {
            // The base index (the user's tree, with fresh stat data) grades in place.
            return Ok(record(
                facts,
                Mode::InPlace,
                workspace.to_owned(),
                p.goal_path.to_owned(),
            ));
        }
        let wt = worktree_dir(data_dir, p.run_id);
        if wt.exists() {
            return Err(IsolationError::WorktreeExists { path: wt });
        }
        std::fs::create_dir_all(wt.parent().expect("worktrees dir")).map_err(|source| {
            IsolationError::Io {
                action: "create the worktrees directory",
                path: wt.clone(),
                source,
            }
        })?;
        add_worktree(&top, &wt, &facts.base)?;
        facts.worktree = Some(wt.clone());
        facts.worktree_git_dir = admin_dir_of(&wt);
        facts.worktree_identity = crate::reconcile::seal::root_identity(&wt);
        scope::init_grade_index(&facts.root_git(), private)?;
        let ws_in_wt = wt.join(&facts.prefix);
        std::fs::create_dir_all(&ws_in_wt).map_err(|source| IsolationError::Io {
            action: "create the workspace in the task worktree",
            path: ws_in_wt.clone(),
            source,
        })?;
        let goal = match &facts.goal_rel {
            Some(rel) => wt.join(rel),
            None => p.goal_path.to_owned(),
        };
        let rec = record(facts, Mode::Worktree, ws_in_wt, goal);
        let mut iso = Isolation {
            record: rec,
            data_dir: data_dir.to_owned(),
            start: None,
            notices: Vec::new(),
        };
        iso.provision(p.carry, p.setup)?;
        notices.append(&mut iso.notices);
        Ok(iso.record)
    }

    /// Carry ignored paths and run setup in a new worktree, then restore what setup
    /// changed outside the ignore rules.
    fn provision(&mut self, carry: &[String], setup: &[Vec<String>]) -> Result<(), IsolationError> {
        let user_ws = self.record.user_workspace.clone();
        let ws = self.record.workspace.clone();
        let private = self.private();
        let facts = self
            .record
            .git
            .clone()
            .expect("worktree mode has git facts");
        let mut notices = provision::carry(&Git::new(&facts.toplevel), &user_ws, &ws, carry)?;
        provision::setup(&ws, setup, &private.join("setup.log"))?;
        if !setup.is_empty() {
            let restored = self.restore_setup_changes()?;
            if !restored.is_empty() {
                notices.push(format!(
                    "[scope] setup changed files that are not ignored ({}); kazi restored them to the base so that only the agent's changes are graded; hint: ignore generated files in .gitignore",
                    restored.join(", ")
                ));
            }
        }
        self.notices.append(&mut notices);
        Ok(())
    }

    /// Reopen a run's isolation for `--resume`. A task worktree that is gone (pruned,
    /// deleted) is made again from the last graded state, with carry and setup.
    pub fn reopen(
        record: WorktreeRecord,
        data_dir: &Path,
        setup: &[Vec<String>],
        carry: &[String],
    ) -> Result<Isolation, IsolationError> {
        let mut iso = Isolation::from_record(record, data_dir);
        let Some(facts) = iso.record.git.clone() else {
            iso.start = Some(crate::reconcile::seal::snapshot(&iso.record.workspace));
            return Ok(iso);
        };
        let top = Git::new(&facts.toplevel);
        if top
            .resolve(&format!("{}^{{commit}}", facts.base))?
            .is_none()
        {
            return Err(IsolationError::BaseGone {
                run_id: iso.record.run_id.clone(),
                repo: facts.toplevel.clone(),
                what: format!("commit {} no longer exists", facts.base),
            });
        }
        let private = iso.private();
        std::fs::create_dir_all(&private).map_err(|source| IsolationError::Io {
            action: "create the run's private directory",
            path: private.clone(),
            source,
        })?;
        let exclude = private.join("exclude");
        if !exclude.exists() {
            let repo = Discovered {
                toplevel: facts.toplevel.clone(),
                common_dir: facts.common_dir.clone(),
                prefix: facts.prefix.clone(),
            };
            write_excludes(&top, &repo, &exclude)?;
        }
        let Some(wt) = facts.worktree.clone() else {
            if !private.join(scope::GRADE_INDEX).exists() {
                scope::rebuild_grade_index(&top, &private, &facts.base)?;
            }
            return Ok(iso);
        };
        if wt.exists() {
            if !private.join(scope::GRADE_INDEX).exists() {
                scope::rebuild_grade_index(&facts.root_git(), &private, &facts.base)?;
            }
            return Ok(iso);
        }
        // Gone: make it again at the last graded state.
        remove_worktree(&facts.common_dir, &wt)?;
        let at = facts.graded.clone().unwrap_or_else(|| facts.base.clone());
        add_worktree(&top, &wt, &at)?;
        let admin = admin_dir_of(&wt);
        if let Some(f) = iso.record.git.as_mut() {
            f.worktree_git_dir = admin.clone();
            f.worktree_identity = crate::reconcile::seal::root_identity(&wt);
        }
        scope::rebuild_grade_index(&Git::pinned(&wt, admin.as_deref()), &private, &facts.base)?;
        std::fs::create_dir_all(&iso.record.workspace).map_err(|source| IsolationError::Io {
            action: "create the workspace in the task worktree",
            path: iso.record.workspace.clone(),
            source,
        })?;
        iso.notices.push(format!(
            "the task worktree {} was gone; kazi made it again from the run's last graded state",
            wt.display()
        ));
        iso.provision(carry, setup)?;
        Ok(iso)
    }

    /// An isolation as recorded, with no checks (to land or remove it).
    pub fn from_record(record: WorktreeRecord, data_dir: &Path) -> Isolation {
        Isolation {
            record,
            data_dir: data_dir.to_owned(),
            start: None,
            notices: Vec::new(),
        }
    }

    /// kazi's data dir this isolation lives under.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the agent works and predicates observe.
    pub fn workspace(&self) -> &Path {
        &self.record.workspace
    }

    /// The goal file the seal should hash (in the worktree when the base holds it).
    pub fn goal_path(&self) -> &Path {
        &self.record.goal_path
    }

    pub fn mode(&self) -> Mode {
        self.record.mode
    }

    pub fn run_id(&self) -> &str {
        &self.record.run_id
    }

    /// What to persist (after `prepare`, and after each grading: the graded commit moves).
    pub fn record(&self) -> &WorktreeRecord {
        &self.record
    }

    /// Notices for the user (in place because not in git, carry skipped, setup restored…).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    fn private(&self) -> PathBuf {
        private_dir(&self.data_dir, &self.record.run_id)
    }

    /// Remove the task worktree and the run's private files; unless `keep`, also
    /// the refs `refs/kazi/<run>/…` (keep them to `kazi land` the run later).
    pub fn release(self, keep: bool) -> Result<(), IsolationError> {
        let mut first_error = None;
        if let Some(facts) = &self.record.git {
            if let Some(wt) = &facts.worktree
                && let Err(e) = remove_worktree(&facts.common_dir, wt)
            {
                first_error.get_or_insert(e);
            }
            if !keep && let Err(e) = delete_refs(&Git::new(&facts.toplevel), &self.record.run_id) {
                first_error.get_or_insert(e);
            }
        }
        let private = self.private();
        if private.exists()
            && let Err(source) = remove_tree(&private)
        {
            first_error.get_or_insert(IsolationError::Io {
                action: "remove the run's private directory",
                path: private,
                source,
            });
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Remove a task worktree directory no record knows: the directory and the git
/// metadata its `.git` file points at (refs stay).
pub fn remove_unrecorded_worktree(wt: &Path) -> Result<(), IsolationError> {
    let common = admin_dir_of(wt)
        .and_then(|admin| admin.parent().and_then(Path::parent).map(Path::to_path_buf));
    match common {
        Some(common) => remove_worktree(&common, wt),
        None => remove_tree(wt).map_err(|source| IsolationError::Io {
            action: "remove the task worktree",
            path: wt.to_owned(),
            source,
        }),
    }
}

impl GitFacts {
    /// git in the tree the agent works in: the task worktree (with its git
    /// directory pinned), or the user's checkout in place.
    pub(crate) fn root_git(&self) -> Git {
        match &self.worktree {
            Some(wt) => Git::pinned(wt, self.worktree_git_dir.as_deref()),
            None => Git::new(&self.toplevel),
        }
    }
}

/// `<data>/worktrees/<run>`: a run's task worktree.
pub fn worktree_dir(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir.join("worktrees").join(run_id)
}

/// `<data>/isolation/<run>`: a run's private files (indexes, captured ignore rules,
/// the setup log).
fn private_dir(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir.join("isolation").join(run_id)
}

/// A workspace inside a git work tree.
#[derive(Debug, Clone)]
struct Discovered {
    toplevel: PathBuf,
    common_dir: PathBuf,
    prefix: String,
}

/// The git work tree `workspace` lies in, if any (not a bare repository, not inside
/// a `.git` directory).
/// `Err(notice)` when the workspace cannot have a task worktree.
fn discover(workspace: &Path) -> Result<Result<Discovered, String>, IsolationError> {
    let not_git = || {
        Ok(Err(format!(
            "{} is not in a git repository: the agent works in place, in your files; hint: `git init` it (and commit) to give agents a task worktree",
            workspace.display()
        )))
    };
    let g = Git::new(workspace);
    let out = g.output(g.cmd([
        "rev-parse",
        "--is-inside-work-tree",
        "--show-toplevel",
        "--git-common-dir",
        "--show-prefix",
    ]));
    let out = match out {
        Ok(o) if o.success() => o,
        Ok(_) => return not_git(),
        Err(e) if e.message.contains("not installed") => {
            return Ok(Err("git is not installed: the agent works in place, in your files; hint: install git to give agents a task worktree".to_owned()));
        }
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&"true") || lines.len() < 3 {
        return not_git();
    }
    let toplevel = PathBuf::from(lines[1]);
    let common = PathBuf::from(lines[2]);
    let common = if common.is_absolute() {
        common
    } else {
        workspace.join(common)
    };
    let canon = |p: &Path, action| {
        std::fs::canonicalize(p).map_err(|source| IsolationError::Io {
            action,
            path: p.to_owned(),
            source,
        })
    };
    Ok(Ok(Discovered {
        toplevel: canon(&toplevel, "read the repository root")?,
        common_dir: canon(&common, "read the git directory")?,
        prefix: lines.get(3).copied().unwrap_or("").to_owned(),
    }))
}

/// The ignore rules outside the tree, as they are now (`.git/info/exclude`, the
/// user's global excludes file) plus kazi's build products, into `path`: grading
/// reads them from there, so an agent editing them later changes nothing.
fn write_excludes(top: &Git, repo: &Discovered, path: &Path) -> Result<(), IsolationError> {
    let mut text = String::new();
    let info = repo.common_dir.join("info").join("exclude");
    if let Ok(t) = std::fs::read_to_string(&info) {
        text.push_str(&t);
        text.push('\n');
    }
    let global = top
        .query(["config", "--path", "core.excludesFile"])?
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(|x| PathBuf::from(x).join("git/ignore"))
                .or_else(|| dirs::home_dir().map(|h| h.join(".config/git/ignore")))
        });
    if let Some(g) = global
        && let Ok(t) = std::fs::read_to_string(&g)
    {
        text.push_str(&t);
        text.push('\n');
    }
    text.push_str("# kazi: build products never graded\n");
    for d in crate::reconcile::seal::BUILD_PRODUCTS {
        text.push_str(d);
        text.push_str("/\n");
    }
    text.push_str("*.pyc\n*.pyo\n");
    std::fs::write(path, text).map_err(|source| IsolationError::Io {
        action: "write the captured ignore rules",
        path: path.to_owned(),
        source,
    })
}

/// `git worktree add --detach <wt> <commit>`, with no hooks (a `post-checkout` hook
/// of the user's is not for kazi's worktrees).
fn add_worktree(top: &Git, wt: &Path, commit: &str) -> Result<(), IsolationError> {
    top.run_cmd(
        top.cmd([
            "-c",
            "core.hooksPath=/dev/null",
            "worktree",
            "add",
            "--detach",
            "--quiet",
        ])
        .arg(wt)
        .arg(commit),
    )?;
    Ok(())
}

/// Remove a task worktree: its directory (whatever the agent left, read-only
/// directories included) and its administrative directory in the repository. Never
/// `git worktree prune`, which would also prune the user's own missing worktrees.
fn remove_worktree(common_dir: &Path, wt: &Path) -> Result<(), IsolationError> {
    let admin = find_admin_dir(common_dir, wt).or_else(|| admin_dir_of(wt));
    if std::fs::symlink_metadata(wt).is_ok() {
        remove_tree(wt).map_err(|source| IsolationError::Io {
            action: "remove the task worktree",
            path: wt.to_owned(),
            source,
        })?;
    }
    if let Some(admin) = admin
        && admin.starts_with(common_dir.join("worktrees"))
        && admin.exists()
    {
        remove_tree(&admin).map_err(|source| IsolationError::Io {
            action: "remove the task worktree's git metadata",
            path: admin.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The administrative directory a worktree's `.git` file points at.
fn admin_dir_of(wt: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(wt.join(".git")).ok()?;
    let dir = text.strip_prefix("gitdir:")?.trim();
    Some(PathBuf::from(dir))
}

/// The administrative directory of the worktree at `wt`, found from the repository
/// side (when the worktree directory is already gone).
fn find_admin_dir(common_dir: &Path, wt: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(common_dir.join("worktrees")).ok()?;
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("gitdir")) else {
            continue;
        };
        if Path::new(text.trim()) == wt.join(".git") {
            return Some(e.path());
        }
    }
    None
}

/// Delete `refs/kazi/<run>/…`.
fn delete_refs(top: &Git, run_id: &str) -> Result<(), IsolationError> {
    let prefix = format!("refs/kazi/{run_id}/");
    let refs = top.run(["for-each-ref", "--format=%(refname)", &prefix])?;
    for r in String::from_utf8_lossy(&refs).lines() {
        if !r.is_empty() {
            top.run(["update-ref", "-d", r])?;
        }
    }
    Ok(())
}

/// What a failed `prepare` left: the worktree, its metadata, the refs, the private
/// directory. Best effort.
fn cleanup_failed_prepare(data_dir: &Path, run_id: &str) {
    let wt = worktree_dir(data_dir, run_id);
    if let Some(admin) = admin_dir_of(&wt) {
        let _ = remove_tree(&wt);
        let _ = remove_tree(&admin);
    }
    let _ = remove_tree(&private_dir(data_dir, run_id));
}

/// Remove a directory tree without following links, making read-only directories
/// writable first (an agent may `chmod -w` a directory).
pub(crate) fn remove_tree(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            std::fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

/// `chmod u+rwx` every directory under `path` (links are not followed).
pub(crate) fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                make_dirs_writable(&e.path());
            }
        }
    }
}
