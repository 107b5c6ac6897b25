//! `kazi run` in git workspaces, end to end through the binary: the agent works in a
//! task worktree, the user's checkout (files, index, status) is byte-identical after
//! the run, a converged run lands on a branch (or fast-forwards with `merge`), a
//! second live run on the same workspace is refused, `--resume` reuses the worktree,
//! and the cheats of a gaming agent on a Python project end without `converged`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A user's repository in a temp dir, and where kazi keeps its database.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A committed repository with `files`, on branch `main`.
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repo")).unwrap();
        let r = Repo { dir };
        for (p, body) in files {
            write(&r.path().join(p), body);
        }
        git(&r.path(), &["init", "-q", "-b", "main"]);
        git(&r.path(), &["add", "-A"]);
        git(&r.path(), &["commit", "-q", "-m", "init"]);
        r
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data/kazi.db")
    }

    fn kazi(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.dir.path())
            .env("KAZI_DB", self.db())
            .env("KAZI_CACHE", cache_dir())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "kazi")
            .env("GIT_AUTHOR_EMAIL", "kazi@example.com")
            .env("GIT_COMMITTER_NAME", "kazi")
            .env("GIT_COMMITTER_EMAIL", "kazi@example.com")
            .current_dir(self.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, extra: &[&str]) -> (i32, serde_json::Value, Output) {
        let out = self
            .kazi()
            .args(["run", "kazi.toml", "--json"])
            .args(extra)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code().unwrap_or(-1), json, out)
    }

    /// Every file of the checkout (not `.git`), the index bytes and `git status`.
    fn snapshot(&self) -> (BTreeMap<String, Vec<u8>>, Vec<u8>, String) {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if e.file_type().unwrap().is_dir() {
                    walk(root, &p, out);
                } else {
                    out.insert(rel, std::fs::read(&p).unwrap_or_default());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(&self.path(), &self.path(), &mut files);
        let index = std::fs::read(self.path().join(".git/index")).unwrap();
        let status = git(&self.path(), &["status", "--porcelain=v2", "--branch"]);
        (files, index, status)
    }
}

fn goal(extra: &str) -> String {
    format!(
        "id = \"fix\"\n{extra}\n[agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\ntimeout = \"60s\"\n\
         [[predicate]]\nid = \"fixed\"\nuse = \"file\"\npath = \"state.txt\"\ncontains = \"fixed\"\n"
    )
}

#[test]
fn an_honest_run_lands_on_a_branch_and_never_touches_the_checkout() {
    let r = Repo::new(&[
        ("kazi.toml", &goal("")),
        ("state.txt", "broken\n"),
        ("notes.md", "one\n"),
        ("staged.md", "a\n"),
        ("agent.sh", "#!/bin/sh\necho fixed > state.txt\n"),
    ]);
    // The user's work in progress: a dirty file, a staged change, an untracked file.
    write(&r.path().join("notes.md"), "one\ntwo (not committed)\n");
    write(&r.path().join("staged.md"), "a\nb (staged)\n");
    git(&r.path(), &["add", "staged.md"]);
    write(&r.path().join("scratch.txt"), "untracked\n");
    let before = r.snapshot();

    let (code, json, out) = r.run(&[]);
    assert_eq!(code, 0, "{json}\n{}", text(&out.stderr));
    assert_eq!(json["status"], "converged");
    assert_eq!(json["landing"]["status"], "landed", "{json}");
    let branch = json["landing"]["branch"].as_str().unwrap().to_owned();
    assert!(branch.starts_with("kazi/fix-"), "{branch}");

    // The checkout, its index and its status are exactly as they were.
    assert_eq!(r.snapshot(), before, "the user's checkout was touched");
    // The branch holds the fix on top of the user's work in progress.
    let show = |p: &str| git(&r.path(), &["show", &format!("{branch}:{p}")]);
    assert_eq!(show("state.txt"), "fixed\n");
    assert_eq!(show("notes.md"), "one\ntwo (not committed)\n");
    assert_eq!(show("staged.md"), "a\nb (staged)\n");
    assert_eq!(show("scratch.txt"), "untracked\n");
    let message = git(&r.path(), &["log", "-1", "--format=%B", &branch]);
    assert!(
        message.contains(&format!("Kazi-Run: {}", json["run_id"].as_str().unwrap())),
        "{message}"
    );
    // kazi show has the dispatch's diff and what it kept.
    let shown = r
        .kazi()
        .args(["show", "last", "--iteration", "1"])
        .output()
        .unwrap();
    let shown = text(&shown.stdout);
    assert!(shown.contains("kept state.txt"), "{shown}");
    assert!(shown.contains("+fixed"), "{shown}");
}

#[test]
fn out_of_scope_changes_are_reverted_told_and_never_land() {
    let r = Repo::new(&[
        (
            "kazi.toml",
            &goal("[scope]\nwritable = [\"src/\"]\nprotected = [\"tests/\"]\n"),
        ),
        ("state.txt", "broken\n"),
        ("src/lib.txt", "code\n"),
        ("tests/check.txt", "the acceptance test\n"),
        // The agent fixes state.txt (outside writable!) and edits src/ and tests/;
        // the second time it sees the state fixed... it never is: state.txt is
        // outside writable, so every fix is reverted.
        (
            "agent.sh",
            "#!/bin/sh\necho fixed > state.txt\necho better >> src/lib.txt\necho weakened > tests/check.txt\ncat \"$KAZI_PROMPT_FILE\" > last-prompt.txt\n",
        ),
    ]);
    let before = r.snapshot();
    let (code, json, out) = r.run(&[]);
    assert_ne!(json["status"], "converged", "{json}\n{}", text(&out.stderr));
    // The second dispatch touched tests/ again: repeated gaming is tampering.
    assert_eq!(json["status"], "tampered", "{json}");
    assert_eq!(code, 4);
    let events = json["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["kind"] == "scope"
            && e["message"].as_str().unwrap().contains(
                "your change to state.txt was reverted: it is outside `writable` (`src/`)"
            )),
        "{json}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "gaming"
                && e["message"].as_str().unwrap().contains("tests/check.txt")),
        "{json}"
    );
    assert_eq!(r.snapshot(), before, "the user's checkout was touched");
}

#[test]
fn a_second_live_run_on_the_same_workspace_is_refused() {
    let r = Repo::new(&[
        ("kazi.toml", &goal("")),
        ("state.txt", "broken\n"),
        (
            "agent.sh",
            "#!/bin/sh\ntouch \"$HOME/hanging\"\nexec sleep 287.4242\n",
        ),
    ]);
    let first = r
        .kazi()
        .args(["run", "kazi.toml", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let hanging = r.dir.path().join("hanging");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hanging.exists() {
        assert!(Instant::now() < deadline, "the first run never dispatched");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, out) = r.run(&[]);
    let err = text(&out.stderr);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("(pid {})", first.id())) && err.contains("run r"),
        "the refusal names the holder: {err}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Only the first run is recorded.
    let runs = r.kazi().args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
}

#[test]
fn resume_reuses_the_task_worktree() {
    let r = Repo::new(&[
        ("kazi.toml", &goal("")),
        ("state.txt", "broken\n"),
        (
            "agent.sh",
            "#!/bin/sh\nif [ -f \"$HOME/resumed\" ]; then echo fixed > state.txt; exit 0; fi\npwd > \"$HOME/where\"\necho half > progress.txt\ntouch \"$HOME/hanging\"\nexec sleep 287.4343\n",
        ),
    ]);
    let mut first = r
        .kazi()
        .args(["run", "kazi.toml", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let hanging = r.dir.path().join("hanging");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hanging.exists() {
        assert!(Instant::now() < deadline, "never dispatched");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    let _ = first.wait();
    let where_first = std::fs::read_to_string(r.dir.path().join("where")).unwrap();
    let runs = r.kazi().args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let id = runs["runs"][0]["id"].as_str().unwrap().to_owned();
    // The worktree (with the half-done work) is still there.
    let wt = PathBuf::from(where_first.trim());
    assert!(wt.join("progress.txt").exists(), "{}", wt.display());

    write(&r.dir.path().join("resumed"), "");
    let (code, json, out) = r.run(&["--resume", &id]);
    assert_eq!(code, 0, "{json}\n{}", text(&out.stderr));
    let branch = json["landing"]["branch"].as_str().unwrap();
    // What landed carries the work of both processes: the same worktree.
    assert_eq!(
        git(&r.path(), &["show", &format!("{branch}:progress.txt")]),
        "half\n"
    );
    assert_eq!(
        git(&r.path(), &["show", &format!("{branch}:state.txt")]),
        "fixed\n"
    );
}

#[test]
fn merge_mode_fast_forwards_a_clean_checkout() {
    let r = Repo::new(&[
        ("kazi.toml", &goal("[land]\nmode = \"merge\"\n")),
        ("state.txt", "broken\n"),
        ("agent.sh", "#!/bin/sh\necho fixed > state.txt\n"),
    ]);
    let (code, json, out) = r.run(&[]);
    assert_eq!(code, 0, "{json}\n{}", text(&out.stderr));
    assert_eq!(json["landing"]["status"], "landed", "{json}");
    assert_eq!(json["landing"]["applied"], "merge", "{json}");
    // The one write kazi makes to the checkout: a fast-forward of the user's branch.
    assert_eq!(
        std::fs::read_to_string(r.path().join("state.txt")).unwrap(),
        "fixed\n"
    );
    assert!(git(&r.path(), &["status", "--porcelain"]).trim().is_empty());
}

#[test]
fn in_place_runs_edit_the_checkout_and_report_scope() {
    let r = Repo::new(&[
        ("kazi.toml", &goal("")),
        ("state.txt", "broken\n"),
        ("agent.sh", "#!/bin/sh\necho fixed > state.txt\n"),
    ]);
    let (code, json, out) = r.run(&["--in-place"]);
    assert_eq!(code, 0, "{json}\n{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(r.path().join("state.txt")).unwrap(),
        "fixed\n"
    );
    assert!(json["landing"].is_null(), "{json}");
}

// ----- a gaming agent on a Python project (pytest) ---------------------------------

fn have_pytest() -> bool {
    Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A small Python project with one failing regression test, `tests/` protected, and
/// `agent` as the agent's script.
fn python_project(agent: &str, extra_scope: &str) -> Repo {
    Repo::new(&[
        (
            "kazi.toml",
            &format!(
                "id = \"calc\"\n[budget]\nmax_iterations = 6\nmax_dispatches = 3\n\
                 [scope]\nprotected = [\"tests/\"]\n{extra_scope}\n\
                 [agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\ntimeout = \"60s\"\n\
                 [[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\"]\n\
                 env = {{ PYTHONPATH = \"src\" }}\n\
                 ratchets = [{{ metric = \"tests_passed\" }}, {{ metric = \"tests_total\" }}]\n"
            ),
        ),
        ("src/calc/__init__.py", "def add(a, b):\n    return a - b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n",
        ),
        ("agent.sh", agent),
    ])
}

/// Each cheat of issue 13, against a real pytest: none may converge.
#[test]
fn every_cheat_on_a_python_project_fails_to_converge() {
    if !have_pytest() {
        eprintln!("skipped: pytest is not installed (.ci/run installs it)");
        return;
    }
    // (the cheat, extra [scope] lines, the agent, the event that catches it)
    let cheats: &[(&str, &str, &str, &str)] = &[
        (
            "skip marker",
            "",
            "#!/bin/sh\nsed -i 's/^def test_add/import pytest\\n@pytest.mark.skip\\ndef test_add/' tests/test_calc.py\n",
            "gaming",
        ),
        (
            "root conftest skip",
            "",
            "#!/bin/sh\ncat > conftest.py <<'PY'\nimport pytest\ndef pytest_collection_modifyitems(items):\n    for i in items:\n        if i.name == 'test_add':\n            i.add_marker(pytest.mark.skip(reason='later'))\nPY\n",
            "skip",
        ),
        (
            "deselect and add a trivial test",
            "",
            "#!/bin/sh\ncat > conftest.py <<'PY'\ndef pytest_collection_modifyitems(config, items):\n    keep = [i for i in items if i.name != 'test_add']\n    config.hook.pytest_deselected(items=[i for i in items if i.name == 'test_add'])\n    items[:] = keep\nPY\nprintf 'def test_trivial():\\n    assert True\\n' > test_trivial.py\n",
            "skip",
        ),
        (
            "deselect and add, with writable = src/",
            "writable = [\"src/\"]",
            "#!/bin/sh\ncat > conftest.py <<'PY'\ndef pytest_collection_modifyitems(config, items):\n    keep = [i for i in items if i.name != 'test_add']\n    config.hook.pytest_deselected(items=[i for i in items if i.name == 'test_add'])\n    items[:] = keep\nPY\nprintf 'def test_trivial():\\n    assert True\\n' > test_trivial.py\n",
            "scope",
        ),
        (
            "delete the test",
            "",
            "#!/bin/sh\nrm tests/test_calc.py\n",
            "gaming",
        ),
        (
            "hollow the test",
            "",
            "#!/bin/sh\nprintf 'def test_add():\\n    pass\\n\\n\\ndef test_zero():\\n    pass\\n' > tests/test_calc.py\n",
            "gaming",
        ),
        (
            "edit the goal",
            "",
            "#!/bin/sh\nsed -i 's/\"-q\"/\"-q\", \"-k\", \"zero\"/' kazi.toml\n",
            "gaming",
        ),
    ];
    for (name, scope, agent, caught_by) in cheats {
        let r = python_project(agent, scope);
        let before = r.snapshot();
        let (code, json, out) = r.run(&[]);
        assert_ne!(
            json["status"],
            "converged",
            "cheat `{name}` converged: {json}\n{}",
            text(&out.stderr)
        );
        assert!(
            [1, 3, 4].contains(&code),
            "cheat `{name}`: exit {code}: {json}\n{}",
            text(&out.stderr)
        );
        assert!(json["landing"].is_null(), "cheat `{name}` landed: {json}");
        assert!(
            json["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == *caught_by),
            "cheat `{name}` was not caught by a `{caught_by}` event: {json}"
        );
        // The record shows it in the iteration where it happened.
        let shown = r.kazi().args(["show", "last", "--json"]).output().unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert!(
            shown["iterations"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|it| it["events"].as_array().cloned().unwrap_or_default())
                .any(|e| e["kind"] == *caught_by),
            "cheat `{name}`: no `{caught_by}` event in any iteration of `kazi show`: {shown}"
        );
        assert_eq!(r.snapshot(), before, "cheat `{name}` touched the checkout");
    }
}

/// The honest fix converges although pytest writes `__pycache__` next to the tests
/// (no `PYTHONDONTWRITEBYTECODE`): build products never count as changes.
#[test]
fn an_honest_fix_converges_although_pytest_writes_pycache() {
    if !have_pytest() {
        eprintln!("skipped: pytest is not installed (.ci/run installs it)");
        return;
    }
    let r = Repo::new(&[
        (
            "kazi.toml",
            "id = \"calc\"\n[budget]\nmax_iterations = 4\n\
             [scope]\nwritable = [\"src/\"]\nprotected = [\"tests/\"]\n\
             [agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\ntimeout = \"60s\"\n\
             [[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"python3\", \"-m\", \"pytest\", \"-q\"]\n\
             env = { PYTHONPATH = \"src\" }\n\
             ratchets = [{ metric = \"tests_passed\" }, { metric = \"tests_total\" }]\n",
        ),
        ("src/calc/__init__.py", "def add(a, b):\n    return a - b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        ),
        (
            "agent.sh",
            "#!/bin/sh\nsed -i 's/a - b/a + b/' src/calc/__init__.py\n",
        ),
    ]);
    let (code, json, out) = r.run(&[]);
    assert_eq!(code, 0, "{json}\n{}", text(&out.stderr));
    assert_eq!(json["status"], "converged");
    let branch = json["landing"]["branch"].as_str().unwrap();
    let files = git(&r.path(), &["ls-tree", "-r", "--name-only", branch]);
    assert!(!files.contains("__pycache__"), "{files}");
    assert!(
        git(
            &r.path(),
            &["show", &format!("{branch}:src/calc/__init__.py")]
        )
        .contains("a + b")
    );
}

/// Focused re-runs against a real pytest: after a full run names its failing tests,
/// later observations re-run only those while one still fails; a focused pass is
/// never believed (the whole suite runs, and here finds a test the agent broke), and
/// only a full run converges.
#[test]
fn failing_tests_are_re_run_alone_and_only_the_whole_suite_converges() {
    if !have_pytest() {
        eprintln!("skipped: pytest is not installed (.ci/run installs it)");
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("pytest-runs.log");
    let count = outside.path().join("dispatches");
    let r = Repo::new(&[
        (
            "kazi.toml",
            "id = \"calc\"\n[budget]\nmax_iterations = 8\n\
             [agent]\nprofile = \"command\"\nrun = [\"./agent.sh\"]\ntimeout = \"60s\"\n\
             [[predicate]]\nid = \"tests\"\nuse = \"command\"\nrun = [\"python3\", \"-m\", \"pytest\", \"-q\", \"-p\", \"no:cacheprovider\", \"tests\"]\n\
             env = { PYTHONPATH = \"src\", PYTHONDONTWRITEBYTECODE = \"1\" }\n\
             ratchets = [{ metric = \"tests_passed\" }, { metric = \"tests_total\" }]\n",
        ),
        (
            "src/calc/__init__.py",
            "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n\n\ndef neg(a):\n    return -a\n",
        ),
        (
            "tests/test_calc.py",
            "from calc import add, mul, neg\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
             def test_mul():\n    assert mul(2, 3) == 6\n\n\ndef test_neg():\n    assert neg(2) == -2\n",
        ),
        ("pytest.ini", "[pytest]\n"),
        (
            "conftest.py",
            &format!(
                "import sys\n\nwith open({log:?}, 'a') as f:\n    f.write(' '.join(sys.argv[1:]) + '\\n')\n"
            ),
        ),
        (
            "agent.sh",
            // 1: fix add; 2: fix mul and break neg; 3: fix neg.
            &format!(
                "#!/bin/sh\nn=$(($(cat {count:?} 2>/dev/null || echo 0) + 1))\necho $n > {count:?}\n\
                 f=src/calc/__init__.py\n\
                 case $n in\n\
                 1) sed -i 's/a - b/a + b/' $f ;;\n\
                 2) printf 'def add(a, b):\\n    return a + b\\n\\n\\ndef mul(a, b):\\n    return a * b\\n\\n\\ndef neg(a):\\n    return a\\n' > $f ;;\n\
                 3) sed -i 's/return a$/return -a/' $f ;;\n\
                 esac\n"
            ),
        ),
    ]);
    let (code, json, out) = r.run(&[]);
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 0, "{json}\n{}\n{runs}", text(&out.stderr));
    assert_eq!(json["status"], "converged", "{runs}");
    assert_eq!(json["budget_spent"]["dispatches"], 3, "{json}\n{runs}");
    let runs: Vec<&str> = runs.lines().collect();
    let full: Vec<usize> = (0..runs.len())
        .filter(|&i| !runs[i].contains("::"))
        .collect();
    // The first run, the one after a focused pass that found `neg` broken, the last.
    assert_eq!(full.len(), 3, "{runs:#?}");
    assert_eq!(full[0], 0, "{runs:#?}");
    assert_eq!(full[2], runs.len() - 1, "{runs:#?}");
    // A focused run names the ids and no longer the directory.
    assert!(
        runs.iter().any(|l| l.ends_with(
            "-q -p no:cacheprovider tests/test_calc.py::test_add tests/test_calc.py::test_mul"
        )),
        "{runs:#?}"
    );
    assert!(
        runs.iter()
            .any(|l| l.ends_with("no:cacheprovider tests/test_calc.py::test_mul")),
        "{runs:#?}"
    );
    assert!(
        runs.iter()
            .any(|l| l.ends_with("no:cacheprovider tests/test_calc.py::test_neg")),
        "{runs:#?}"
    );
    assert!(
        runs.iter().all(|l| !l.contains("tests tests/")),
        "{runs:#?}"
    );
    assert_eq!(json["predicates"][0]["verdict"], "pass");
    assert!(
        json["predicates"][0]["metrics"].get("focused").is_none(),
        "{json}"
    );
}
