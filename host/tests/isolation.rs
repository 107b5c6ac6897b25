//! Isolation with real git repositories made in the tests: task worktrees, grading
//! what would land (each revert rule), landing modes and their fallbacks, locks,
//! setup and carry, in-place mode, `kazi land` and `kazi worktrees` through the
//! binary, and bounded snapshots/seals through `kazi run`.
//!
//! The git the tests run themselves ignores the machine's config
//! (`GIT_CONFIG_GLOBAL=/dev/null`) and has a fixed identity.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kazi::goal::LandMode;
use kazi::isolation::{
    Action, Isolation, LandRequest, LandStatus, LockError, LockKey, Mode, Prepare, Reason,
    WorkspaceLock, WorktreeRecord,
};
use kazi::run::{RunStatus, Spent};
use kazi::store::{NewRun, Store, WorktreeState};

fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null());
    c
}

/// Run git in `dir`; its stdout (panics when it fails).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_cmd(dir).args(args).output().unwrap().status.success()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A user's repository (`repo/`), kazi's data dir (`data/`) and a run database in it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A repository on `main` with one commit: src/, tests/, a goal file, .gitignore.
    fn new() -> Self {
        let f = Fixture::empty();
        f.write("src/app.py", "def add(a, b):\n    return a - b\n");
        f.write(
            "tests/test_app.py",
            "from app import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        );
        f.write("kazi.toml", "id = \"calc\"\n");
        f.write("README.md", "calc\n");
        f.write(".gitignore", "build/\n*.log\n");
        f.commit("init");
        f
    }

    /// An empty repository on an unborn `main`.
    fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repo")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        git(&dir.path().join("repo"), &["init", "-q", "-b", "main"]);
        Fixture { dir }
    }

    fn repo(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path().join("repo")).unwrap()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn db(&self) -> PathBuf {
        self.data().join("kazi.db")
    }

    fn write(&self, rel: &str, text: &str) {
        write(&self.repo().join(rel), text);
    }

    fn commit(&self, msg: &str) {
        git(&self.repo(), &["add", "-A"]);
        git(&self.repo(), &["commit", "-q", "-m", msg]);
    }

    fn head(&self) -> String {
        git(&self.repo(), &["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn prepare_with(&self, run_id: &str, ws: &str, goal: &str, in_place: bool) -> Isolation {
        self.prepare_full(run_id, ws, goal, in_place, &[], &[])
    }

    fn prepare(&self, run_id: &str) -> Isolation {
        self.prepare_with(run_id, "", "kazi.toml", false)
    }

    fn prepare_full(
        &self,
        run_id: &str,
        ws: &str,
        goal: &str,
        in_place: bool,
        setup: &[Vec<String>],
        carry: &[String],
    ) -> Isolation {
        let repo = self.repo();
        let goal_path = if Path::new(goal).is_absolute() {
            PathBuf::from(goal)
        } else {
            repo.join(goal)
        };
        Isolation::prepare(&Prepare {
            workspace: &repo.join(ws),
            goal_path: &goal_path,
            goal_id: "calc",
            run_id,
            data_dir: &self.data(),
            in_place,
            setup,
            carry,
        })
        .unwrap_or_else(|e| panic!("prepare: {e}"))
    }

    /// A converged run recorded in the database with this fixture's isolation
    /// prepared, graded and released (refs kept), as `kazi run` would leave it.
    fn converged_run(&self, agent: impl FnOnce(&Path), land: LandMode) -> (String, WorktreeRecord) {
        let mut store = Store::open(&self.db()).unwrap();
        let id = store
            .create_run(&NewRun {
                goal_id: "calc".into(),
                goal_path: self.repo().join("kazi.toml").display().to_string(),
                workspace: self.repo().display().to_string(),
                goal_sha256: "x".into(),
                goal_text: format!("id = \"calc\"\nname = \"add adds\"\n[land]\nmode = \"{}\"\n[[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"pytest\"]\n", land.as_str()),
                seal: serde_json::json!({}),
                profile: "command".into(),
                model: None,
                started_at_ms: kazi::store::now_ms(),
            })
            .unwrap();
        let mut iso = self.prepare(&id);
        store.record_worktree(iso.record()).unwrap();
        agent(iso.workspace());
        iso.enforce_scope(&[], &["tests/".into()]).unwrap();
        store.record_worktree(iso.record()).unwrap();
        store
            .finish_run(
                &id,
                RunStatus::Converged,
                Some("every predicate passes"),
                &[],
                &Spent::default(),
                &serde_json::Value::Null,
                kazi::store::now_ms(),
            )
            .unwrap();
        let rec = iso.record().clone();
        iso.release(true).unwrap();
        store.set_worktree_state(&id, WorktreeState::Kept).unwrap();
        (id, rec)
    }
}

/// Every file of the checkout (outside `.git`) with its mode and content (a link by
/// its target), the index file's bytes, and `git status` (porcelain v2, untracked
/// and ignored files included, read without taking optional locks).
/// Files (mode, content), the index's bytes, `git status`, and HEAD.
type CheckoutState = (BTreeMap<String, (u32, Vec<u8>)>, Vec<u8>, String, String);

fn checkout_state(repo: &Path) -> CheckoutState {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (mode, t.as_os_str().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel.clone(), (mode, b"<dir>".to_vec()));
                walk(root, &p, out);
            } else {
                out.insert(rel, (mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(repo, repo, &mut files);
    let index_path = git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    );
    let index = std::fs::read(index_path.trim()).unwrap();
    let status = git(
        repo,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
            "--ignored",
        ],
    );
    let head = git(repo, &["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"]);
    (files, index, status, head)
}

fn reverted_why(report: &kazi::isolation::ScopeReport, path: &str) -> Option<Reason> {
    report
        .changes
        .iter()
        .find(|c| c.path == path)
        .and_then(|c| match &c.action {
            Action::Reverted { why } | Action::Reported { why } => Some(why.clone()),
            Action::Kept => None,
        })
}

fn kept(report: &kazi::isolation::ScopeReport) -> Vec<String> {
    report.kept().iter().map(|c| c.path.clone()).collect()
}

#[test]
fn the_users_checkout_is_byte_identical_after_prepare_agent_grading_and_landing() {
    let f = Fixture::new();
    let repo = f.repo();
    // A messy checkout: staged and unstaged changes to one file, an untracked file,
    // ignored files, awkward names, a link, an executable.
    f.write("src/app.py", "def add(a, b):\n    return a - b  # staged\n");
    git(&repo, &["add", "src/app.py"]);
    f.write(
        "src/app.py",
        "def add(a, b):\n    return a - b  # staged, then edited\n",
    );
    f.write("notes/todo.txt", "untracked\n");
    f.write("build/out.bin", "ignored\n");
    f.write("debug.log", "ignored too\n");
    f.write("name with spaces.txt", "spaces\n");
    f.write("new\nline.txt", "newline in the name\n");
    std::os::unix::fs::symlink("src/app.py", repo.join("link-to-app")).unwrap();
    f.write("run.sh", "#!/bin/sh\necho hi\n");
    chmod(&repo.join("run.sh"), 0o755);
    let before = checkout_state(&repo);

    let mut iso = f.prepare("r-identical");
    assert_eq!(iso.mode(), Mode::Worktree);
    let ws = iso.workspace().to_owned();
    assert!(
        !ws.starts_with(&repo),
        "the worktree is outside the checkout"
    );
    // The worktree holds the working tree as it was: dirty content, untracked and
    // awkward files, the link and the executable bit; not the ignored files.
    assert_eq!(
        read(&ws.join("src/app.py")),
        "def add(a, b):\n    return a - b  # staged, then edited\n"
    );
    assert_eq!(read(&ws.join("notes/todo.txt")), "untracked\n");
    assert_eq!(read(&ws.join("new\nline.txt")), "newline in the name\n");
    assert_eq!(read(&ws.join("name with spaces.txt")), "spaces\n");
    assert_eq!(
        std::fs::read_link(ws.join("link-to-app")).unwrap(),
        Path::new("src/app.py")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
    assert!(!ws.join("build").exists() && !ws.join("debug.log").exists());

    // The agent: fixes the code, adds a file, edits a protected test, commits.
    write(&ws.join("src/app.py"), "def add(a, b):\n    return a + b\n");
    write(&ws.join("src/util.py"), "X = 1\n");
    write(&ws.join("tests/test_app.py"), "def test_add():\n    pass\n");
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "agent"]);
    let report = iso.enforce_scope(&[], &["tests/".into()]).unwrap();
    assert_eq!(kept(&report), vec!["src/app.py", "src/util.py"]);
    assert!(matches!(
        reverted_why(&report, "tests/test_app.py"),
        Some(Reason::Protected { .. })
    ));
    let outcome = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "kazi: add adds\n\nKazi-Run: r-identical\n",
        report: "",
    });
    assert_eq!(outcome.status, LandStatus::Landed, "{outcome:?}");
    iso.release(true).unwrap();

    let after = checkout_state(&repo);
    assert_eq!(before.0, after.0, "every file of the checkout is as it was");
    assert!(before.1 == after.1, "the index file is byte-identical");
    assert_eq!(before.2, after.2, "git status is the same");
    assert_eq!(before.3, after.3, "HEAD did not move");
    // The landed branch holds exactly what was graded.
    let branch = outcome.branch.unwrap();
    assert_eq!(branch, "kazi/calc-r-identical");
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:src/app.py")]),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:tests/test_app.py")]),
        read(&repo.join("tests/test_app.py"))
    );
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:notes/todo.txt")]),
        "untracked\n"
    );
    assert!(!git_ok(
        &repo,
        &["cat-file", "-e", &format!("{branch}:debug.log")]
    ));
}

#[test]
fn the_base_is_the_working_tree_and_head_itself_when_clean() {
    let f = Fixture::new();
    let iso = f.prepare("r-clean");
    let facts = iso.record().git.clone().unwrap();
    assert_eq!(facts.base, f.head(), "a clean checkout's base is HEAD");
    assert!(!facts.snapshot);
    assert_eq!(facts.start_branch.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        git(&f.repo(), &["rev-parse", "refs/kazi/r-clean/base"]).trim(),
        f.head()
    );
    iso.release(false).unwrap();
    assert!(!git_ok(
        &f.repo(),
        &["rev-parse", "--verify", "-q", "refs/kazi/r-clean/base"]
    ));
    assert!(!kazi::isolation::worktree_dir(&f.data(), "r-clean").exists());
    assert_eq!(
        git(&f.repo(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );

    // Dirty: a snapshot commit on top of HEAD, by kazi, holding the dirty content.
    f.write("README.md", "calc, edited\n");
    f.write("tests/__pycache__/x.pyc", "bytecode, never in the base\n");
    let iso = f.prepare("r-dirty");
    let facts = iso.record().git.clone().unwrap();
    assert!(facts.snapshot);
    assert_eq!(
        git(&f.repo(), &["rev-parse", &format!("{}^", facts.base)]).trim(),
        f.head()
    );
    assert_eq!(
        git(&f.repo(), &["show", &format!("{}:README.md", facts.base)]),
        "calc, edited\n"
    );
    assert!(!git_ok(
        &f.repo(),
        &[
            "cat-file",
            "-e",
            &format!("{}:tests/__pycache__/x.pyc", facts.base)
        ]
    ));
    assert_eq!(
        git(&f.repo(), &["log", "-1", "--format=%an", &facts.base]).trim(),
        "kazi"
    );
    iso.release(false).unwrap();
}

#[test]
fn a_workspace_that_is_itself_a_linked_worktree_works() {
    let f = Fixture::new();
    let linked = f.dir.path().join("linked");
    git(
        &f.repo(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature",
            linked.to_str().unwrap(),
        ],
    );
    write(&linked.join("README.md"), "dirty in the linked worktree\n");
    let before = checkout_state(&linked);
    let mut iso = Isolation::prepare(&Prepare {
        workspace: &linked,
        goal_path: &linked.join("kazi.toml"),
        goal_id: "calc",
        run_id: "r-linked",
        data_dir: &f.data(),
        in_place: false,
        setup: &[],
        carry: &[],
    })
    .unwrap();
    let facts = iso.record().git.clone().unwrap();
    assert_eq!(facts.start_branch.as_deref(), Some("refs/heads/feature"));
    assert!(facts.snapshot);
    assert_eq!(
        read(&iso.workspace().join("README.md")),
        "dirty in the linked worktree\n"
    );
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::Landed, "{out:?}");
    iso.release(false).unwrap();
    assert_eq!(before, checkout_state(&linked));
}

#[test]
fn an_unborn_head_works_and_lands_a_root_commit_below_the_agents() {
    let f = Fixture::empty();
    f.write("src/app.py", "broken\n");
    let mut iso = f.prepare("r-unborn");
    let facts = iso.record().git.clone().unwrap();
    assert_eq!(facts.start_head, None);
    assert!(facts.snapshot);
    write(&iso.workspace().join("src/app.py"), "fixed\n");
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    // Nothing to fast-forward on an unborn branch with files: fall back to a branch.
    assert_eq!(out.status, LandStatus::FellBack, "{out:?}");
    let branch = out.branch.unwrap();
    assert_eq!(
        git(&f.repo(), &["show", &format!("{branch}:src/app.py")]),
        "fixed\n"
    );
    assert_eq!(
        git(&f.repo(), &["rev-list", "--count", &branch]).trim(),
        "2"
    );
    iso.release(false).unwrap();
    assert!(
        !git_ok(&f.repo(), &["rev-parse", "--verify", "-q", "HEAD"]),
        "still unborn"
    );

    // A repository with nothing at all.
    let f = Fixture::empty();
    let iso = f.prepare("r-empty");
    assert!(iso.workspace().is_dir());
    iso.release(false).unwrap();
    // A workspace that holds only ignored files (the base has no such directory).
    let f = Fixture::empty();
    f.write(".gitignore", "ws/\n");
    f.write("ws/cache.bin", "ignored\n");
    let mut iso = f.prepare_with("r-ignored-ws", "ws", "kazi.toml", false);
    assert!(
        iso.workspace().is_dir(),
        "the workspace exists in the worktree"
    );
    assert!(
        iso.notices()[0].contains("is ignored by git"),
        "{:?}",
        iso.notices()
    );
    assert!(!iso.workspace().join("cache.bin").exists());
    write(&iso.workspace().join("new.txt"), "n\n");
    let report = iso.enforce_scope(&[], &[]).unwrap();
    assert!(report.changes.is_empty(), "ws/ is ignored: {report:?}");
    iso.release(false).unwrap();
}

#[test]
fn a_workspace_below_the_root_maps_into_the_worktree_and_outside_edits_are_reverted() {
    let f = Fixture::new();
    f.write("svc/main.py", "print(1)\n");
    f.write("svc/kazi.toml", "id = \"svc\"\n");
    f.commit("svc");
    let mut iso = f.prepare_with("r-sub", "svc", "svc/kazi.toml", false);
    let facts = iso.record().git.clone().unwrap();
    let wt = facts.worktree.clone().unwrap();
    assert_eq!(iso.workspace(), wt.join("svc"));
    assert_eq!(iso.goal_path(), wt.join("svc/kazi.toml"));
    write(&iso.workspace().join("main.py"), "print(2)\n");
    write(&wt.join("README.md"), "changed from below\n");
    write(
        &iso.workspace().join("kazi.toml"),
        "id = \"svc\"\n[budget]\nmax_iterations = 99\n",
    );
    let report = iso.enforce_scope(&[], &[]).unwrap();
    assert_eq!(kept(&report), vec!["main.py"]);
    assert_eq!(
        reverted_why(&report, "../README.md"),
        Some(Reason::OutsideWorkspace)
    );
    assert_eq!(reverted_why(&report, "kazi.toml"), Some(Reason::GoalFile));
    assert_eq!(report.gaming().len(), 1);
    assert_eq!(read(&wt.join("README.md")), "calc\n");
    assert_eq!(read(&iso.workspace().join("kazi.toml")), "id = \"svc\"\n");
    iso.release(false).unwrap();

    // A goal file outside the repository stays where it is.
    let outside = f.dir.path().join("goals/g.toml");
    write(&outside, "id = \"calc\"\n");
    let iso = f.prepare_with("r-outside", "", outside.to_str().unwrap(), false);
    assert_eq!(iso.goal_path(), outside);
    iso.release(false).unwrap();
}

#[test]
fn each_revert_rule_applies_and_ignored_files_are_left_alone() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-rules");
    let ws = iso.workspace().to_owned();
    write(&ws.join("src/app.py"), "def add(a, b):\n    return a + b\n");
    write(
        &ws.join("conftest.py"),
        "import pytest\n# skip everything\n",
    );
    write(&ws.join("README.md"), "rewritten\n");
    std::fs::remove_file(ws.join("tests/test_app.py")).unwrap();
    write(&ws.join("kazi.toml"), "id = \"calc\"\nstanding = true\n");
    // Ignored build products and caches: never changes, never touched.
    write(&ws.join("build/out.bin"), "artifact\n");
    write(
        &ws.join("tests/__pycache__/test_app.cpython-312.pyc"),
        "bytecode\n",
    );
    write(&ws.join("node_modules/x/index.js"), "module\n");
    write(&ws.join("run.log"), "log\n");
    let report = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert_eq!(kept(&report), vec!["src/app.py"]);
    assert_eq!(
        reverted_why(&report, "conftest.py"),
        Some(Reason::OutsideWritable)
    );
    assert_eq!(
        reverted_why(&report, "README.md"),
        Some(Reason::OutsideWritable)
    );
    assert!(matches!(
        reverted_why(&report, "tests/test_app.py"),
        Some(Reason::Protected { .. })
    ));
    assert_eq!(reverted_why(&report, "kazi.toml"), Some(Reason::GoalFile));
    assert!(!ws.join("conftest.py").exists());
    assert_eq!(read(&ws.join("README.md")), "calc\n");
    assert!(read(&ws.join("tests/test_app.py")).contains("assert add(1, 2) == 3"));
    assert_eq!(read(&ws.join("kazi.toml")), "id = \"calc\"\n");
    for ignored in [
        "build/out.bin",
        "tests/__pycache__/test_app.cpython-312.pyc",
        "node_modules/x/index.js",
        "run.log",
    ] {
        assert!(ws.join(ignored).exists(), "{ignored} was left alone");
        assert!(
            !report.changes.iter().any(|c| c.path == ignored),
            "{ignored} is not a change"
        );
    }
    // The events and the agent's notes say what happened.
    let events = report.events();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["scope", "gaming"]);
    assert!(report.agent_notes().contains(
        &"your change to conftest.py was reverted: it is outside `writable` (`src/`)".to_owned()
    ));
    assert!(
        report.dispatch_diff.text.contains("+    return a + b"),
        "{}",
        report.dispatch_diff.text
    );
    assert_eq!(report.dispatch_diff.files, vec!["src/app.py"]);
    // A second grading with nothing new: the same graded state, an empty dispatch diff.
    let again = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert_eq!(again.graded, report.graded);
    assert!(again.dispatch_diff.text.is_empty());
    let full = iso.diff(1 << 20).unwrap();
    assert_eq!(full.files, vec!["src/app.py"]);
    let cut = iso.diff(40).unwrap();
    assert!(cut.truncated && cut.text.len() <= 40);
    iso.release(false).unwrap();
}

#[test]
fn an_agent_that_commits_or_hides_files_cannot_keep_what_may_not_land() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-hide");
    let ws = iso.workspace().to_owned();
    let facts = iso.record().git.clone().unwrap();
    // Committed inside the worktree: HEAD moved, the index is clean; still graded.
    write(&ws.join("tests/test_app.py"), "def test_add():\n    pass\n");
    git(&ws, &["commit", "-q", "-am", "hollow the test"]);
    // Hidden by a new ignore rule (root .gitignore is writable here).
    write(&ws.join(".gitignore"), "build/\n*.log\nconftest.py\n");
    write(
        &ws.join("tests/conftest.py"),
        "collect_ignore = ['test_app.py']\n",
    );
    // Hidden by the repository's info/exclude, written behind kazi's back.
    write(&facts.common_dir.join("info/exclude"), "skipme.py\n");
    write(&ws.join("tests/skipme.py"), "x\n");
    // The worktree's .git file pointed somewhere else: kazi pins its git directory.
    let decoy = f.dir.path().join("decoy");
    git(f.dir.path(), &["init", "-q", decoy.to_str().unwrap()]);
    write(
        &ws.join(".git"),
        &format!("gitdir: {}/.git\n", decoy.display()),
    );
    let report = iso.enforce_scope(&[], &["tests/".into()]).unwrap();
    for p in ["tests/test_app.py", "tests/conftest.py", "tests/skipme.py"] {
        assert!(
            matches!(reverted_why(&report, p), Some(Reason::Protected { .. })),
            "{p}: {report:?}"
        );
    }
    assert_eq!(kept(&report), vec![".gitignore"]);
    assert!(read(&ws.join("tests/test_app.py")).contains("assert add(1, 2) == 3"));
    assert!(!ws.join("tests/conftest.py").exists());
    assert!(!ws.join("tests/skipme.py").exists());
    // The agent's .gitignore edit stays, and nothing was left set aside.
    assert!(read(&ws.join(".gitignore")).contains("conftest.py"));
    let stray: Vec<_> = std::fs::read_dir(&ws)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("kazi-aside"))
        .collect();
    assert!(stray.is_empty());
    iso.release(false).unwrap();
}

#[test]
fn ignore_rules_are_the_bases_both_ways() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-ignore");
    let ws = iso.workspace().to_owned();
    // The agent drops the ignore file: its build products stay build products.
    std::fs::remove_file(ws.join(".gitignore")).unwrap();
    write(&ws.join("build/out.bin"), "artifact\n");
    write(&ws.join("trace.log"), "log\n");
    // A new ignore file of its own, in a new directory, counts as a change.
    write(&ws.join("src/pkg/.gitignore"), "*.tmp\n");
    write(&ws.join("src/pkg/mod.py"), "x = 1\n");
    let report = iso.enforce_scope(&[], &[]).unwrap();
    assert_eq!(
        kept(&report),
        vec![".gitignore", "src/pkg/.gitignore", "src/pkg/mod.py"],
        "{report:?}"
    );
    assert!(ws.join("build/out.bin").exists());
    iso.release(false).unwrap();
}

#[test]
fn links_modes_and_submodules_are_graded_without_breaking() {
    let f = Fixture::new();
    let sub = f.dir.path().join("sub-src");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q", "-b", "main"]);
    write(&sub.join("lib.txt"), "sub\n");
    git(&sub, &["add", "-A"]);
    git(&sub, &["commit", "-q", "-m", "sub"]);
    git(
        &f.repo(),
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub.to_str().unwrap(),
            "vendor/sub",
        ],
    );
    std::os::unix::fs::symlink("src/app.py", f.repo().join("app-link")).unwrap();
    f.write("run.sh", "#!/bin/sh\n");
    chmod(&f.repo().join("run.sh"), 0o755);
    f.commit("submodule, link, script");
    let mut iso = f.prepare("r-links");
    let ws = iso.workspace().to_owned();
    // The submodule is not carried: an empty directory, and no change.
    assert!(ws.join("vendor/sub").is_dir());
    // Outside writable: a repointed link and a dropped executable bit.
    std::fs::remove_file(ws.join("app-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ws.join("app-link")).unwrap();
    chmod(&ws.join("run.sh"), 0o644);
    fix(&ws);
    let report = iso.enforce_scope(&["src/".into()], &[]).unwrap();
    assert_eq!(kept(&report), vec!["src/app.py"], "{report:?}");
    assert_eq!(
        reverted_why(&report, "app-link"),
        Some(Reason::OutsideWritable)
    );
    assert_eq!(
        reverted_why(&report, "run.sh"),
        Some(Reason::OutsideWritable)
    );
    assert_eq!(
        std::fs::read_link(ws.join("app-link")).unwrap(),
        Path::new("src/app.py")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "the executable bit is back");
    }
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::Landed, "{out:?}");
    let branch = out.branch.unwrap();
    // The landed tree keeps the submodule as it was.
    let tree = git(&f.repo(), &["ls-tree", &branch, "vendor/sub"]);
    assert!(tree.starts_with("160000 commit"), "{tree}");
    iso.release(false).unwrap();
}

#[test]
fn names_that_are_not_utf8_are_graded_by_their_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    let mut iso = f.prepare("r-bytes");
    let ws = iso.workspace().to_owned();
    let kept_name = ws
        .join("src")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.py"));
    let reverted_name = ws.join(std::ffi::OsStr::from_bytes(b"notes-\xff.txt"));
    std::fs::write(&kept_name, "x = 1\n").unwrap();
    std::fs::write(&reverted_name, "x\n").unwrap();
    let report = iso.enforce_scope(&["src/".into()], &[]).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(kept_name.exists());
    assert!(!reverted_name.exists());
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "kazi: bytes\n",
        report: "",
    });
    let names = git_cmd(&f.repo())
        .args(["ls-tree", "-r", "-z", "--name-only", &out.branch.unwrap()])
        .output()
        .unwrap()
        .stdout;
    assert!(names.split(|b| *b == 0).any(|n| n == b"src/caf\xe9.py"));
    iso.release(false).unwrap();
}

#[test]
fn reverts_get_past_read_only_directories_type_changes_and_huge_files() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-hard");
    let ws = iso.workspace().to_owned();
    // Outside writable, in a directory the agent made read-only.
    write(&ws.join("docs/cheat.md"), "x\n");
    chmod(&ws.join("docs"), 0o555);
    // A protected file replaced by a directory.
    std::fs::remove_file(ws.join("tests/test_app.py")).unwrap();
    write(&ws.join("tests/test_app.py/inner.py"), "x\n");
    // A file over the size limit (sparse: no disk used).
    std::fs::File::create(ws.join("src/huge.bin"))
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let report = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(!ws.join("docs").exists());
    assert!(read(&ws.join("tests/test_app.py")).contains("assert add"));
    assert!(matches!(
        reverted_why(&report, "src/huge.bin"),
        Some(Reason::TooLarge { .. })
    ));
    assert!(!ws.join("src/huge.bin").exists());
    assert!(report.kept().is_empty());
    assert_eq!(
        report.graded, None,
        "nothing kept: the graded state is the base"
    );
    iso.release(false).unwrap();
}

#[test]
fn a_replaced_worktree_root_is_never_graded_through() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-swap");
    let wt = iso.record().git.clone().unwrap().worktree.unwrap();
    // The agent moves its worktree away and links the user's checkout in its place.
    write(&wt.join("src/app.py"), "agent\n");
    std::fs::rename(&wt, f.dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(f.repo(), &wt).unwrap();
    f.write("README.md", "the user's own edit\n");
    let before = checkout_state(&f.repo());
    let report = iso.enforce_scope(&["src/".into()], &[]).unwrap();
    let reason = report.stop_reason().expect("grading refuses");
    assert!(
        reason.contains("the task worktree was removed or replaced"),
        "{reason}"
    );
    assert!(
        report
            .events()
            .iter()
            .any(|e| e.kind == kazi::run::EventKind::Tamper)
    );
    assert_eq!(
        before,
        checkout_state(&f.repo()),
        "nothing was written through the link"
    );
    std::fs::remove_file(&wt).unwrap();
    std::fs::rename(f.dir.path().join("moved"), &wt).unwrap();
    iso.release(false).unwrap();
}

#[test]
fn reopen_reuses_the_worktree_and_remakes_a_missing_one_from_the_graded_state() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-reopen");
    write(&iso.workspace().join("src/app.py"), "graded\n");
    iso.enforce_scope(&[], &[]).unwrap();
    write(&iso.workspace().join("src/wip.py"), "not graded yet\n");
    let record = iso.record().clone();
    drop(iso); // a crash: nothing released

    let iso = Isolation::reopen(record.clone(), &f.data(), &[], &[]).unwrap();
    assert_eq!(iso.workspace(), record.workspace);
    assert_eq!(
        read(&iso.workspace().join("src/wip.py")),
        "not graded yet\n"
    );
    assert!(iso.notices().is_empty());
    drop(iso);

    // The worktree was deleted (by hand, or pruned): made again at the graded state.
    std::fs::remove_dir_all(&record.workspace).unwrap();
    let mut iso = Isolation::reopen(record.clone(), &f.data(), &[], &[]).unwrap();
    assert_eq!(read(&iso.workspace().join("src/app.py")), "graded\n");
    assert!(!iso.workspace().join("src/wip.py").exists());
    assert!(
        iso.notices()[0].contains("made it again"),
        "{:?}",
        iso.notices()
    );
    let report = iso.enforce_scope(&[], &[]).unwrap();
    assert_eq!(
        kept(&report),
        vec!["src/app.py"],
        "graded against the base, not the graded state"
    );
    assert_eq!(
        git(&f.repo(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
    iso.release(false).unwrap();
}

#[test]
fn setup_runs_once_and_carry_copies_ignored_paths() {
    let f = Fixture::new();
    f.write(".gitignore", "build/\n*.log\n.venv/\n");
    f.commit("ignore venv");
    f.write(".venv/bin/python", "#!/bin/sh\n");
    chmod(&f.repo().join(".venv/bin/python"), 0o755);
    let setup = vec![vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "mkdir -p build && echo deps > build/deps.txt && echo rewritten > README.md".to_owned(),
    ]];
    let carry = vec![".venv".to_owned(), "src".to_owned(), "missing".to_owned()];
    let iso = f.prepare_full("r-setup", "", "kazi.toml", false, &setup, &carry);
    let ws = iso.workspace();
    assert_eq!(read(&ws.join(".venv/bin/python")), "#!/bin/sh\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.join(".venv/bin/python"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "carry keeps modes");
    }
    assert_eq!(
        read(&ws.join("build/deps.txt")),
        "deps\n",
        "setup ran in the worktree"
    );
    assert_eq!(
        read(&ws.join("README.md")),
        "calc\n",
        "what setup changed outside the ignore rules was restored"
    );
    let notices = iso.notices().join("\n");
    assert!(notices.contains("carry: copied .venv"), "{notices}");
    assert!(notices.contains("src is tracked by git"), "{notices}");
    assert!(notices.contains("missing does not exist"), "{notices}");
    assert!(
        notices.contains("[scope] setup changed files that are not ignored (README.md)"),
        "{notices}"
    );
    iso.release(false).unwrap();

    // A failing setup is an error naming the command and its output; nothing is left.
    let bad = vec![vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "echo no lockfile >&2; exit 3".to_owned(),
    ]];
    let err = Isolation::prepare(&Prepare {
        workspace: &f.repo(),
        goal_path: &f.repo().join("kazi.toml"),
        goal_id: "calc",
        run_id: "r-badsetup",
        data_dir: &f.data(),
        in_place: false,
        setup: &bad,
        carry: &[],
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("exited with 3") && err.contains("no lockfile"),
        "{err}"
    );
    assert!(!kazi::isolation::worktree_dir(&f.data(), "r-badsetup").exists());
    assert_eq!(
        git(&f.repo(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
}

#[test]
fn a_huge_untracked_file_stays_out_of_the_base_and_can_be_carried() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.repo().join("data")).unwrap();
    std::fs::File::create(f.repo().join("data/dump [1].bin"))
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let carry = vec!["data/dump [1].bin".to_owned()];
    let mut iso = f.prepare_full("r-huge", "", "kazi.toml", false, &[], &carry);
    let facts = iso.record().git.clone().unwrap();
    assert!(!git_ok(
        &f.repo(),
        &[
            "cat-file",
            "-e",
            &format!("{}:data/dump [1].bin", facts.base)
        ]
    ));
    let notices = iso.notices().join("\n");
    assert!(
        notices.contains("data/dump [1].bin is untracked and 300 MiB: it is not in the run's base"),
        "{notices}"
    );
    assert!(
        notices.contains("carry: copied data/dump [1].bin"),
        "{notices}"
    );
    assert_eq!(
        std::fs::metadata(iso.workspace().join("data/dump [1].bin"))
            .unwrap()
            .len(),
        300 << 20
    );
    // Treated as ignored for the run: not a change, not reverted.
    let report = iso.enforce_scope(&["src/".into()], &[]).unwrap();
    assert!(report.changes.is_empty(), "{report:?}");
    assert!(iso.workspace().join("data/dump [1].bin").exists());
    iso.release(false).unwrap();
}

#[test]
fn in_place_reports_without_reverting_and_a_non_git_workspace_says_so() {
    let f = Fixture::new();
    let mut iso = f.prepare_with("r-inplace", "", "kazi.toml", true);
    assert_eq!(iso.mode(), Mode::InPlace);
    assert_eq!(iso.workspace(), f.repo());
    f.write("src/app.py", "fixed\n");
    f.write("tests/test_app.py", "hollow\n");
    let report = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert_eq!(kept(&report), vec!["src/app.py"]);
    assert!(matches!(
        report
            .changes
            .iter()
            .find(|c| c.path == "tests/test_app.py")
            .unwrap()
            .action,
        Action::Reported {
            why: Reason::Protected { .. }
        }
    ));
    assert_eq!(
        read(&f.repo().join("tests/test_app.py")),
        "hollow\n",
        "nothing reverted in place"
    );
    assert!(
        report
            .events()
            .iter()
            .any(|e| e.kind == kazi::run::EventKind::Gaming && e.message.contains("left in place"))
    );
    assert_eq!(
        iso.diff(1 << 20).unwrap().files,
        vec!["src/app.py", "tests/test_app.py"]
    );
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "m\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::InPlace);
    iso.release(false).unwrap();

    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("ws/a.txt"), "a\n");
    let mut iso = Isolation::prepare(&Prepare {
        workspace: &dir.path().join("ws"),
        goal_path: &dir.path().join("ws/kazi.toml"),
        goal_id: "g",
        run_id: "r-nogit",
        data_dir: &dir.path().join("data"),
        in_place: false,
        setup: &[],
        carry: &[],
    })
    .unwrap();
    assert_eq!(iso.mode(), Mode::InPlace);
    assert!(
        iso.notices()[0].contains("is not in a git repository"),
        "{:?}",
        iso.notices()
    );
    write(&dir.path().join("ws/a.txt"), "b\n");
    let report = iso.enforce_scope(&[], &[]).unwrap();
    assert_eq!(kept(&report), vec!["a.txt"]);
    iso.release(false).unwrap();
}

#[test]
fn the_data_dir_must_not_lie_inside_the_repository() {
    let f = Fixture::new();
    let err = Isolation::prepare(&Prepare {
        workspace: &f.repo(),
        goal_path: &f.repo().join("kazi.toml"),
        goal_id: "calc",
        run_id: "r-inside",
        data_dir: &f.repo().join(".kazi"),
        in_place: false,
        setup: &[],
        carry: &[],
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lies inside the repository") && err.contains("hint: set KAZI_DATA_DIR"),
        "{err}"
    );
}

fn fix(ws: &Path) {
    write(&ws.join("src/app.py"), "def add(a, b):\n    return a + b\n");
}

#[test]
fn landing_on_a_branch_carries_the_message_and_trailers() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-branch");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    let message = kazi::isolation::landing_message(
        "calc",
        Some("add adds"),
        &[("tests", "pass", "1 passed")],
        "r-branch",
    );
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: &message,
        report: "",
    });
    assert_eq!(out.status, LandStatus::Landed, "{out:?}");
    let branch = out.branch.clone().unwrap();
    let repo = f.repo();
    assert_eq!(
        git(
            &repo,
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Kazi-Run,valueonly)",
                &branch
            ]
        )
        .trim(),
        "r-branch"
    );
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%s", &branch]).trim(),
        "kazi: add adds"
    );
    assert_eq!(
        git(&repo, &["rev-parse", &format!("{branch}^")]).trim(),
        f.head()
    );
    assert!(
        out.lines
            .iter()
            .any(|l| l.trim() == format!("git merge {branch}")),
        "{:?}",
        out.lines
    );
    assert!(
        out.lines.iter().any(|l| l.trim() == "git switch main"),
        "{:?}",
        out.lines
    );
    // Landing again is idempotent; a different change on the same branch is refused.
    assert_eq!(
        iso.land(&LandRequest {
            mode: LandMode::Branch,
            branch: None,
            message: &message,
            report: ""
        })
        .commit,
        out.commit
    );
    write(&iso.workspace().join("src/app.py"), "other\n");
    iso.enforce_scope(&[], &[]).unwrap();
    let again = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: &message,
        report: "",
    });
    assert_eq!(again.status, LandStatus::Failed);
    assert!(again.reason.unwrap().contains("already exists"));
    // A custom branch with placeholders.
    let custom = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: Some("fix/{goal}-{run}"),
        message: &message,
        report: "",
    });
    assert_eq!(custom.branch.as_deref(), Some("fix/calc-r-branch"));
    iso.release(false).unwrap();
}

#[test]
fn merge_fast_forwards_a_clean_unmoved_checkout_and_falls_back_otherwise() {
    // Clean and unmoved: fast-forward.
    let f = Fixture::new();
    let mut iso = f.prepare("r-merge");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::Landed, "{out:?}");
    assert_eq!(out.applied, Some(LandMode::Merge));
    assert_eq!(f.head(), out.commit.clone().unwrap());
    assert!(read(&f.repo().join("src/app.py")).contains("a + b"));
    assert!(git(&f.repo(), &["status", "--porcelain"]).is_empty());
    iso.release(false).unwrap();

    // The branch moved since the base.
    let f = Fixture::new();
    let mut iso = f.prepare("r-moved");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    f.write("README.md", "moved on\n");
    f.commit("user work");
    let head = f.head();
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::FellBack);
    assert_eq!(out.applied, Some(LandMode::Branch));
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("main moved since the run started"),
        "{out:?}"
    );
    assert!(
        out.lines[0].starts_with("could not merge: main moved"),
        "{:?}",
        out.lines
    );
    assert_eq!(f.head(), head);
    iso.release(false).unwrap();

    // Uncommitted changes now.
    let f = Fixture::new();
    let mut iso = f.prepare("r-dirtynow");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    f.write("README.md", "editing\n");
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::FellBack);
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("uncommitted changes (README.md)"),
        "{out:?}"
    );
    assert_eq!(read(&f.repo().join("README.md")), "editing\n");
    iso.release(false).unwrap();

    // On another branch now.
    let f = Fixture::new();
    let mut iso = f.prepare("r-switched");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    git(&f.repo(), &["switch", "-q", "-c", "other"]);
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("no longer on main (it is on other)"),
        "{out:?}"
    );
    iso.release(false).unwrap();

    // Dirty at the start: the base is a snapshot; never merged for the user.
    let f = Fixture::new();
    f.write("notes.txt", "mine\n");
    let mut iso = f.prepare("r-dirtystart");
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::Merge,
        branch: None,
        message: "kazi: fix\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::FellBack);
    assert!(
        out.reason
            .as_deref()
            .unwrap()
            .contains("uncommitted changes or untracked files when the run started")
    );
    assert!(
        out.lines
            .iter()
            .any(|l| l.starts_with("note: the first commit on")),
        "{:?}",
        out.lines
    );
    iso.release(false).unwrap();
}

#[test]
fn nothing_kept_lands_nothing_and_none_keeps_it_for_later() {
    let f = Fixture::new();
    let mut iso = f.prepare("r-nothing");
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "m\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::Nothing);
    fix(iso.workspace());
    iso.enforce_scope(&[], &[]).unwrap();
    let out = iso.land(&LandRequest {
        mode: LandMode::None,
        branch: None,
        message: "m\n",
        report: "",
    });
    assert_eq!(out.status, LandStatus::Kept);
    assert!(!git(&f.repo(), &["branch", "--list"]).contains("kazi/"));
    iso.release(true).unwrap();
    assert!(
        git_ok(
            &f.repo(),
            &["rev-parse", "--verify", "-q", "refs/kazi/r-nothing/graded"]
        ),
        "kept for landing"
    );
}

/// A small Python project with no .gitignore: `src/calc.py` is broken, the protected
/// `tests/` check it with unittest.
fn python_project() -> Fixture {
    let f = Fixture::empty();
    f.write("src/calc.py", "def add(a, b):\n    return a - b\n");
    f.write(
        "tests/test_calc.py",
        "import unittest\nfrom calc import add\n\n\nclass Calc(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n",
    );
    f.write("kazi.toml", "id = \"calc\"\n");
    f.commit("calc");
    f
}

/// `python3 -m unittest discover -s tests` in `ws` (sources from `src/`): passed?
fn unittest_passes(ws: &Path) -> bool {
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(ws)
        .env("PYTHONPATH", ws.join("src"))
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // A run where every test was skipped is not a pass.
    out.status.success() && !all.contains("skipped") && all.contains("Ran 1 test")
}

#[test]
fn every_cheat_is_reverted_before_the_tests_run_and_an_honest_fix_is_kept() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 is not installed: skipping");
        return;
    }
    type Cheat = fn(&Path);
    let cheats: [(&str, Cheat); 6] = [
        ("skip marker", |ws| {
            let t = read(&ws.join("tests/test_calc.py")).replace(
                "    def test_add",
                "    @unittest.skip(\"flaky\")\n    def test_add",
            );
            write(&ws.join("tests/test_calc.py"), &t);
        }),
        ("hollow test", |ws| {
            let t = read(&ws.join("tests/test_calc.py"))
                .replace("self.assertEqual(add(1, 2), 3)", "pass");
            write(&ws.join("tests/test_calc.py"), &t);
        }),
        ("delete test", |ws| {
            std::fs::remove_file(ws.join("tests/test_calc.py")).unwrap()
        }),
        ("root conftest skip", |ws| {
            write(
                &ws.join("conftest.py"),
                "import pytest\ncollect_ignore_glob = ['tests/*']\n",
            );
        }),
        ("deselect and add a trivial test", |ws| {
            write(
                &ws.join("conftest.py"),
                "def pytest_collection_modifyitems(items):\n    items[:] = [i for i in items if 'add' not in i.name]\n",
            );
            write(&ws.join("test_trivial.py"), "def test_ok():\n    pass\n");
        }),
        ("edit the goal", |ws| {
            write(
                &ws.join("kazi.toml"),
                "id = \"calc\"\n[budget]\nmax_iterations = 1000\n",
            )
        }),
    ];
    let f = python_project();
    for (i, (name, cheat)) in cheats.iter().enumerate() {
        let mut iso = f.prepare(&format!("r-cheat-{i}"));
        let ws = iso.workspace().to_owned();
        cheat(&ws);
        let report = iso
            .enforce_scope(&["src/".into()], &["tests/".into()])
            .unwrap();
        assert!(report.kept().is_empty(), "{name}: {report:?}");
        assert!(!report.out_of_scope().is_empty(), "{name}");
        assert!(!unittest_passes(&ws), "{name}: the cheat survived grading");
        iso.release(false).unwrap();
    }
    // The honest fix: kept, and the bytecode the test run writes is not a change.
    let mut iso = f.prepare("r-honest");
    let ws = iso.workspace().to_owned();
    write(
        &ws.join("src/calc.py"),
        "def add(a, b):\n    return a + b\n",
    );
    let report = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert_eq!(kept(&report), vec!["src/calc.py"]);
    assert!(unittest_passes(&ws));
    assert!(ws.join("tests/__pycache__").is_dir() || ws.join("src/__pycache__").is_dir());
    let again = iso
        .enforce_scope(&["src/".into()], &["tests/".into()])
        .unwrap();
    assert_eq!(kept(&again), vec!["src/calc.py"]);
    assert!(again.out_of_scope().is_empty(), "{again:?}");
    iso.release(false).unwrap();
}

// ----- locks ---------------------------------------------------------------------

/// Not a test on its own: with `KAZI_TEST_HOLD_LOCK=<dir>` it takes the workspace
/// lock for goal "g" of `<dir>` and holds it until killed.
#[test]
fn lock_holder_helper() {
    let Some(dir) = std::env::var_os("KAZI_TEST_HOLD_LOCK") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let _lock =
        WorkspaceLock::acquire(&dir, &LockKey::workspace(&dir, "g", false), "r-holder").unwrap();
    println!("kazi-test: locked");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_second_run_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KAZI_TEST_HOLD_LOCK", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the helper took the lock").unwrap();
        if line.contains("kazi-test: locked") {
            break;
        }
    }
    let key = LockKey::workspace(dir.path(), "g", false);
    let err = WorkspaceLock::acquire(dir.path(), &key, "r-second").unwrap_err();
    let LockError::Held {
        holder: Some(h), ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(h.pid, child.id());
    assert_eq!(h.run_id, "r-holder");
    assert!(
        err.to_string()
            .contains(&format!("is in use by run r-holder (pid {})", child.id())),
        "{err}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = WorkspaceLock::acquire(dir.path(), &key, "r-second")
        .expect("a dead holder's lock is taken over");
    drop(lock);
}

// ----- through the binary: kazi land, kazi worktrees ----------------------------------

fn kazi(f: &Fixture, args: &[&str], path: &std::ffi::OsStr, extra: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", f.dir.path())
        .env("KAZI_DB", f.db())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .current_dir(f.repo())
        .stdin(Stdio::null());
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directory with a fake `gh` (recording its calls) first on PATH.
fn fake_gh(dir: &Path, authenticated: bool) -> std::ffi::OsString {
    let bin = dir.join("bin");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> "{log}"
case "$1 $2" in
  "auth status")
    {auth}
    ;;
  "pr create")
    prev=""
    for a in "$@"; do
      if [ "$prev" = "--body-file" ]; then cp "$a" "{body}"; fi
      prev="$a"
    done
    echo "Creating pull request"
    echo "https://github.example/acme/calc/pull/7"
    exit 0
    ;;
esac
exit 2
"#,
        log = dir.join("gh.log").display(),
        body = dir.join("gh-body.md").display(),
        auth = if authenticated {
            "echo 'Logged in to github.com'; exit 0"
        } else {
            "echo 'You are not logged into any GitHub hosts. To log in, run: gh auth login' >&2; exit 1"
        },
    );
    write(&bin.join("gh"), &script);
    chmod(&bin.join("gh"), 0o755);
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    std::env::join_paths(paths).unwrap()
}

#[test]
fn kazi_land_lands_a_converged_run_later_and_opens_a_pull_request_with_gh() {
    let f = Fixture::new();
    let remote = f.dir.path().join("remote.git");
    git(
        f.dir.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    git(
        &f.repo(),
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&f.repo(), &["push", "-q", "-u", "origin", "main"]);
    let (id, _) = f.converged_run(fix, LandMode::None);
    assert!(!kazi::isolation::worktree_dir(&f.data(), &id).exists());

    // gh is not logged in: fall back to a branch, say why, exit 0 (it landed somewhere).
    let path = fake_gh(&f.dir.path().join("nologin"), false);
    let out = kazi(&f, &["land", &id, "--mode", "pr"], &path, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("could not open a pull request: gh is not logged in"),
        "{stdout}"
    );
    assert!(stdout.contains("hint: run `gh auth login`"), "{stdout}");
    assert!(
        stdout.contains(&format!("git merge kazi/calc-{id}")),
        "{stdout}"
    );

    // No gh at all.
    let empty = f.dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let git_dir = Path::new(&which_git()).parent().unwrap().to_owned();
    let path_without_gh = std::env::join_paths([empty, git_dir]).unwrap();
    let out = kazi(
        &f,
        &["land", &id, "--mode", "pr", "--json"],
        &path_without_gh,
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["landing"]["status"], "fell_back", "{json}");
    assert!(
        json["landing"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("gh is not installed"),
        "{json}"
    );

    // gh logged in: the branch is pushed to the remote and the PR opened with the report.
    let gh_dir = f.dir.path().join("gh");
    let path = fake_gh(&gh_dir, true);
    let out = kazi(&f, &["land", &id, "--mode", "pr", "--json"], &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["landing"]["status"], "landed", "{json}");
    assert_eq!(
        json["landing"]["pr_url"],
        "https://github.example/acme/calc/pull/7"
    );
    let branch = format!("kazi/calc-{id}");
    let pushed = git(&remote, &["rev-parse", &format!("refs/heads/{branch}")]);
    assert_eq!(pushed.trim(), json["landing"]["commit"].as_str().unwrap());
    let calls = read(&gh_dir.join("gh.log"));
    assert!(
        calls.contains(&format!(
            "pr create --head {branch} --base main --title kazi: add adds --body-file"
        )),
        "{calls}"
    );
    let body = read(&gh_dir.join("gh-body.md"));
    assert!(body.contains(&format!("Kazi-Run: {id}")), "{body}");
    // The landing is recorded.
    let store = Store::open(&f.db()).unwrap();
    let row = store.worktree(&id).unwrap().unwrap();
    assert_eq!(
        row.landing.unwrap().pr_url.as_deref(),
        Some("https://github.example/acme/calc/pull/7")
    );
}

fn which_git() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

#[test]
fn kazi_land_refuses_runs_that_did_not_converge_and_merges_when_asked() {
    let f = Fixture::new();
    let (id, _) = f.converged_run(fix, LandMode::Merge);
    let path = std::env::var_os("PATH").unwrap();
    // The goal says merge: the user's clean, unmoved main fast-forwards.
    let out = kazi(&f, &["land", &id[..id.len() - 2]], &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("fast-forwarded main to kazi/calc-{id}")),
        "{}",
        text(&out.stdout)
    );
    assert!(read(&f.repo().join("src/app.py")).contains("a + b"));

    let mut store = Store::open(&f.db()).unwrap();
    store
        .finish_run(
            &id,
            RunStatus::Stuck,
            Some("stuck"),
            &[],
            &Spent::default(),
            &serde_json::Value::Null,
            kazi::store::now_ms(),
        )
        .unwrap();
    let out = kazi(&f, &["land", &id], &path, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ended as stuck; only a converged run lands"),
        "{}",
        text(&out.stderr)
    );
    let out = kazi(&f, &["land", &id, "--branch", "bad name"], &path, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a valid git branch name"));
}

#[test]
fn kazi_worktrees_lists_them_and_prunes_what_no_live_run_uses() {
    let f = Fixture::new();
    let path = std::env::var_os("PATH").unwrap();
    let out = kazi(&f, &["worktrees"], &path, &[]);
    assert_eq!(text(&out.stdout), "no task worktrees\n");
    let mut store = Store::open(&f.db()).unwrap();
    let mut ids = Vec::new();
    for status in [
        RunStatus::Running,
        RunStatus::Stuck,
        RunStatus::Running,
        RunStatus::Converged,
    ] {
        let id = store
            .create_run(&NewRun {
                goal_id: "calc".into(),
                goal_path: f.repo().join("kazi.toml").display().to_string(),
                workspace: f.repo().display().to_string(),
                goal_sha256: "x".into(),
                goal_text: "id = \"calc\"\n".into(),
                seal: serde_json::json!({}),
                profile: "command".into(),
                model: None,
                started_at_ms: kazi::store::now_ms(),
            })
            .unwrap();
        let mut iso = f.prepare(&id);
        fix(iso.workspace());
        iso.enforce_scope(&[], &[]).unwrap();
        store.record_worktree(iso.record()).unwrap();
        if status != RunStatus::Running {
            store
                .finish_run(
                    &id,
                    status,
                    None,
                    &[],
                    &Spent::default(),
                    &serde_json::Value::Null,
                    kazi::store::now_ms(),
                )
                .unwrap();
        }
        ids.push(id);
    }
    // ids[0]: running and live (this process holds its run lock); ids[2]: running,
    // its process died; ids[1]: stuck; ids[3]: converged.
    let _live = WorkspaceLock::acquire(&f.data(), &LockKey::Run(ids[0].clone()), &ids[0]).unwrap();
    // A worktree directory this database does not know.
    let stray = f.prepare("r-stray");
    let stray_path = stray.record().git.clone().unwrap().worktree.unwrap();
    drop(stray);

    let out = kazi(&f, &["worktrees"], &path, &[]);
    let listing = text(&out.stdout);
    assert!(listing.starts_with("RUN"), "{listing}");
    assert_eq!(listing.lines().count(), 6, "{listing}");
    assert!(
        listing.contains(&std::process::id().to_string()),
        "the live run shows its pid:\n{listing}"
    );
    assert!(listing.contains("unrecorded"), "{listing}");

    let out = kazi(&f, &["worktrees", "--prune"], &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.starts_with("RUN"),
        "the table shows the worktrees before pruning:\n{said}"
    );
    let wt = |i: usize| kazi::isolation::worktree_dir(&f.data(), &ids[i]);
    assert!(wt(0).exists(), "the live run's worktree stays:\n{said}");
    let lines = [
        format!(
            "kept {}: run {} is live (pid {})",
            wt(0).display(),
            ids[0],
            std::process::id()
        ),
        format!("removed {}: run {} ended stuck", wt(1).display(), ids[1]),
        format!(
            "removed {}: run {}'s process died; `kazi run --resume {}` makes the worktree again",
            wt(2).display(),
            ids[2],
            ids[2]
        ),
        format!(
            "removed {}: run {} converged; its refs stay for `kazi land {}`",
            wt(3).display(),
            ids[3],
            ids[3]
        ),
    ];
    for line in lines {
        assert!(said.lines().any(|l| l == line), "{line}\nnot in:\n{said}");
    }
    for i in 1..4 {
        assert!(!wt(i).exists(), "{i}:\n{said}");
    }
    assert!(!stray_path.exists());
    assert!(said.contains("not in this database"), "{said}");
    let refs = |i: usize| {
        git_ok(
            &f.repo(),
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/kazi/{}/base", ids[i]),
            ],
        )
    };
    assert!(!refs(1), "a stuck run's refs go");
    assert!(refs(2), "a dead run's refs stay for --resume");
    assert!(refs(3), "a converged run's refs stay for kazi land");
    let store = Store::open(&f.db()).unwrap();
    assert_eq!(
        store.worktree(&ids[1]).unwrap().unwrap().state,
        WorktreeState::Released
    );
    assert_eq!(
        store.worktree(&ids[3]).unwrap().unwrap().state,
        WorktreeState::Kept
    );
    // Only the live worktree and the user's checkout remain in git's list.
    assert_eq!(
        git(&f.repo(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
    let out = kazi(&f, &["worktrees", "--prune"], &path, &[]);
    assert!(
        text(&out.stdout).contains("nothing to prune") || !text(&out.stdout).contains("removed"),
        "{}",
        text(&out.stdout)
    );
}

// ----- bounded snapshots and seals through kazi run -------------------------------

/// Wait for `child` at most `secs`; a hang kills it and fails the test.
fn wait_or_fail(mut child: std::process::Child, secs: u64) -> Output {
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let t = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        use std::io::Read;
        if let Some(mut s) = stdout {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(mut s) = stderr {
            let _ = s.read_to_end(&mut err);
        }
        let status = child.wait().unwrap();
        let _ = tx.send(Output {
            status,
            stdout: out,
            stderr: err,
        });
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => {
            t.join().unwrap();
            out
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("kazi hung for {secs}s on a hostile workspace");
        }
    }
}

#[test]
fn a_hostile_workspace_neither_hangs_nor_bloats_the_snapshot_and_seal() {
    for git_ws in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        write(&ws.join("state.txt"), "broken\n");
        write(&ws.join("tests/test_a.py"), "ok\n");
        write(
            &ws.join("kazi.toml"),
            "id = \"t\"\n[scope]\nprotected = [\"tests/\"]\n[budget]\nmax_iterations = 3\n[agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\ntimeout = \"60s\"\n[[predicate]]\nid = \"fixed\"\nuse = \"file\"\npath = \"state.txt\"\ncontains = \"fixed\"\n",
        );
        write(
            &ws.join("agent.sh"),
            "#!/bin/sh\nln -s /dev/zero zero\nln -s /dev/zero tests/zero\nmkfifo fifo tests/fifo\nln -s fifo fifo-link\ntruncate -s 2G big.bin\ntruncate -s 2G tests/big.bin\necho fixed > state.txt\n",
        );
        chmod(&ws.join("agent.sh"), 0o755);
        if git_ws {
            git(&ws, &["init", "-q", "-b", "main"]);
            git(&ws, &["add", "-A"]);
            git(&ws, &["commit", "-q", "-m", "init"]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_kazi"))
            .args(["run", "kazi.toml", "--json"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", dir.path())
            .env("KAZI_DB", dir.path().join("kazi.db"))
            .env(
                "KAZI_CACHE",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
            )
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .current_dir(&ws)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_or_fail(child, 300);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("git={git_ws}: {}{}", text(&out.stdout), text(&out.stderr)));
        if git_ws {
            // In a task worktree, new files under tests/ (links, a sparse file) are
            // gaming: reverted without opening them, told to the agent, and kept out
            // of what lands; one such dispatch is not yet tampering.
            assert_eq!(json["status"], "converged", "git={git_ws}: {json}");
            let gaming: Vec<&str> = json["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "gaming")
                .map(|e| e["message"].as_str().unwrap())
                .collect();
            for added in ["tests/zero", "tests/big.bin"] {
                assert!(
                    gaming
                        .iter()
                        .any(|m| m.contains(&format!("your change to {added} was reverted"))),
                    "{json}"
                );
            }
            let branch = json["landing"]["branch"].as_str().unwrap();
            let landed = Command::new("git")
                .args(["ls-tree", "-r", "--name-only", branch])
                .current_dir(&ws)
                .output()
                .unwrap();
            let landed = text(&landed.stdout);
            assert!(landed.contains("state.txt"), "{landed}");
            assert!(
                !landed.contains("tests/zero") && !landed.contains("big.bin"),
                "{landed}"
            );
            assert_eq!(
                std::fs::read_to_string(ws.join("state.txt")).unwrap(),
                "broken\n",
                "the user's checkout is untouched"
            );
            continue;
        }
        // In place, new files under tests/ (links, a FIFO, a sparse file) are
        // tampering, seen without opening any of them.
        assert_eq!(json["status"], "tampered", "git={git_ws}: {json}");
        assert_eq!(out.status.code(), Some(4));
        let reason = json["reason"].as_str().unwrap();
        for added in ["tests/zero", "tests/fifo", "tests/big.bin"] {
            assert!(
                reason.contains(&format!("protected file {added} was added")),
                "git={git_ws}: {reason}"
            );
        }
    }
    // Peak memory of every child this test binary waited for (kazi among them).
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let max_rss_kib = usage.max_rss();
    assert!(
        max_rss_kib < 1024 * 1024,
        "a child peaked at {max_rss_kib} KiB"
    );
}

// ----- measurement (not run by default) -------------------------------------------

/// What the first observation costs in a task worktree against in place, on a small
/// Cargo project with registry dependencies (docs/isolation.md quotes the numbers):
/// `cargo test -p kazi --test isolation -- --ignored first_observation_cost --nocapture`.
/// Needs the dependencies in the local cargo registry (it builds `--offline`).
#[test]
#[ignore = "a measurement: minutes of cargo builds"]
fn first_observation_cost() {
    use std::time::Instant;
    let f = Fixture::empty();
    let repo = f.repo();
    f.write(
        "Cargo.toml",
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\nregex = \"1\"\n",
    );
    f.write(
        "src/lib.rs",
        "use serde::{Deserialize, Serialize};\n\n#[derive(Serialize, Deserialize)]\npub struct Sum { pub a: i64, pub b: i64 }\n\npub fn add(s: &str) -> i64 {\n    let re = regex::Regex::new(r\"^\\d+$\").unwrap();\n    assert!(re.is_match(\"1\"));\n    let s: Sum = serde_json::from_str(s).unwrap();\n    s.a + s.b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(r#\"{\"a\":1,\"b\":2}\"#), 3); }\n}\n",
    );
    f.write(".gitignore", "/target\n");
    let cargo_test = |dir: &Path| {
        let t = Instant::now();
        let out = Command::new("cargo")
            .args(["test", "--offline", "-q"])
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        t.elapsed()
    };
    let cold_in_place = cargo_test(&repo);
    f.commit("calc");
    let warm_in_place = cargo_test(&repo);
    let mut rows = vec![
        (
            "in place, cold target/ (first build)".to_owned(),
            cold_in_place,
        ),
        (
            "in place, warm target/ (a normal first observation)".to_owned(),
            warm_in_place,
        ),
    ];
    for (name, carry) in [
        ("worktree, no carry", vec![]),
        ("worktree, carry = [\"target\"]", vec!["target".to_owned()]),
    ] {
        let run = format!("r-measure-{}", carry.len());
        let t = Instant::now();
        let iso = f.prepare_full(&run, "", "Cargo.toml", false, &[], &carry);
        let prepare = t.elapsed();
        let observe = cargo_test(iso.workspace());
        let again = cargo_test(iso.workspace());
        rows.push((format!("{name}: prepare"), prepare));
        rows.push((format!("{name}: first cargo test"), observe));
        rows.push((format!("{name}: second cargo test"), again));
        iso.release(false).unwrap();
    }
    let du = Command::new("du")
        .args(["-sh", "target"])
        .current_dir(&repo)
        .output()
        .unwrap();
    println!("target/ of the project: {}", text(&du.stdout).trim());
    for (name, d) in rows {
        println!("{name:<55} {:>8.2}s", d.as_secs_f64());
    }
}

/// What preparing, grading and landing cost on a repository of 20,000 files
/// (docs/isolation.md quotes the numbers):
/// `cargo test -p kazi --test isolation -- --ignored grading_cost --nocapture`.
#[test]
#[ignore = "a measurement"]
fn grading_cost() {
    use std::time::Instant;
    let f = Fixture::empty();
    for d in 0..200 {
        for i in 0..100 {
            f.write(
                &format!("src/m{d}/f{i}.txt"),
                &format!("{d} {i}\n").repeat(40),
            );
        }
    }
    f.commit("20k files");
    let mut rows = Vec::new();
    let t = Instant::now();
    let mut iso = f.prepare("r-cost");
    rows.push(("prepare (base = HEAD, worktree checkout)", t.elapsed()));
    let t = Instant::now();
    iso.enforce_scope(&["src/m1/".into()], &[]).unwrap();
    rows.push(("enforce_scope, no change", t.elapsed()));
    write(&iso.workspace().join("src/m1/f1.txt"), "kept\n");
    write(&iso.workspace().join("src/m2/f2.txt"), "reverted\n");
    let t = Instant::now();
    let r = iso.enforce_scope(&["src/m1/".into()], &[]).unwrap();
    rows.push((
        "enforce_scope, one kept and one reverted change",
        t.elapsed(),
    ));
    assert_eq!(kept(&r), vec!["src/m1/f1.txt"]);
    let t = Instant::now();
    iso.enforce_scope(&["src/m1/".into()], &[]).unwrap();
    rows.push(("enforce_scope again, nothing new", t.elapsed()));
    let t = Instant::now();
    let out = iso.land(&LandRequest {
        mode: LandMode::Branch,
        branch: None,
        message: "m\n",
        report: "",
    });
    rows.push(("land on a branch", t.elapsed()));
    assert_eq!(out.status, LandStatus::Landed);
    let t = Instant::now();
    iso.release(false).unwrap();
    rows.push(("release", t.elapsed()));
    f.write("src/m3/f3.txt", "dirty\n");
    let t = Instant::now();
    let iso = f.prepare("r-cost-dirty");
    rows.push(("prepare with one dirty file (snapshot commit)", t.elapsed()));
    iso.release(false).unwrap();
    for (name, d) in rows {
        println!("{name:<50} {:>8.3}s", d.as_secs_f64());
    }
}
