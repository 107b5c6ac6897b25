//! `kazi init` on fixture repositories: every directory under `tests/fixtures/init/`
//! is copied to a temp dir of the same name and initialised there. A success must
//! write exactly `<name>.kazi.toml`, a failure must print exactly `<name>.stderr`
//! (exit 1). `KAZI_BLESS=1 cargo test -p kazi --test init` rewrites the golden files
//! after a deliberate change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/init")
}

fn kazi(cwd: &Path, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("KAZI_DB", home.join("kazi.db"))
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .current_dir(cwd)
        .stdin(Stdio::null());
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the fixture `name` in a fresh temp dir, as `<tmp>/<name>`.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join(name);
    copy_dir(&fixtures().join(name), &repo);
    (tmp, repo)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn init(repo: &Path, home: &Path, args: &[&str]) -> Output {
    kazi(repo, home).arg("init").args(args).output().unwrap()
}

#[test]
fn every_fixture_repository_gives_its_golden_goal() {
    let bless = std::env::var_os("KAZI_BLESS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for stack in [
        "cargo", "go", "node", "python", "elixir", "maven", "gradle", "unknown",
    ] {
        assert!(
            names.iter().any(|n| n == stack),
            "fixture {stack} went missing"
        );
    }
    let mut mismatches = Vec::new();
    for name in &names {
        let (tmp, repo) = fixture_copy(name);
        let out = init(&repo, tmp.path(), &[]);
        let (golden, got) = match out.status.code() {
            Some(0) => {
                let written = repo.join("kazi.toml");
                let goal = kazi::goal::load(&written)
                    .unwrap_or_else(|e| panic!("{name}: the written goal does not load: {e}"));
                assert_eq!(goal.id, *name, "the goal id is the directory name");
                assert_eq!(goal.scope.workspace, repo, "{name}");
                (
                    fixtures().join(format!("{name}.kazi.toml")),
                    std::fs::read_to_string(written).unwrap(),
                )
            }
            Some(1) => (fixtures().join(format!("{name}.stderr")), text(&out.stderr)),
            other => panic!("{name}: exit {other:?}\n{}", text(&out.stderr)),
        };
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != got {
            mismatches.push(format!(
                "--- {}: expected\n{expected}--- got\n{got}",
                golden.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n(rerun with KAZI_BLESS=1 to accept)",
        mismatches.join("\n")
    );
}

#[test]
fn the_same_repository_always_gives_the_same_bytes() {
    let (tmp, repo) = fixture_copy("cargo-node");
    assert_eq!(init(&repo, tmp.path(), &[]).status.code(), Some(0));
    let first = std::fs::read(repo.join("kazi.toml")).unwrap();
    assert_eq!(init(&repo, tmp.path(), &["--force"]).status.code(), Some(0));
    assert_eq!(std::fs::read(repo.join("kazi.toml")).unwrap(), first);
}

#[test]
fn it_prints_the_path_and_what_to_type_next() {
    let (tmp, repo) = fixture_copy("cargo");
    let out = kazi(tmp.path(), tmp.path())
        .args(["init", "cargo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "wrote cargo/kazi.toml: goal `cargo` for Cargo\n\
         next:\n  \
         kazi check cargo/kazi.toml   # observe once, no agent: do the tests pass now?\n  \
         kazi run cargo/kazi.toml     # drive the agent until every predicate passes\n"
    );
    assert!(repo.join("kazi.toml").is_file());
}

#[test]
fn an_existing_goal_is_kept_unless_forced() {
    let (tmp, repo) = fixture_copy("go");
    std::fs::write(repo.join("kazi.toml"), "# mine\n").unwrap();
    let out = init(&repo, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: failed to write kazi.toml: the file exists; hint: pass --force to overwrite it, or --output PATH to write elsewhere\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("kazi.toml")).unwrap(),
        "# mine\n"
    );
    let out = init(&repo, tmp.path(), &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let goal = kazi::goal::load(&repo.join("kazi.toml")).unwrap();
    assert_eq!(goal.predicates[0].id, "tests-pass");
}

#[test]
fn a_goal_written_elsewhere_points_back_at_the_repository() {
    let (tmp, repo) = fixture_copy("python");
    let out = init(&repo, tmp.path(), &["--output", ".kazi/goals/tests.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = repo.join(".kazi/goals/tests.toml");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("workspace = \"../..\"\n"), "{written}");
    let goal = kazi::goal::load(&path).unwrap();
    assert_eq!(goal.scope.workspace.canonicalize().unwrap(), repo);
    assert_eq!(goal.id, "python");
}

#[test]
fn an_unknown_stack_and_a_missing_directory_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = init(&empty, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no marker file"), "{stderr}");
    assert!(stderr.contains("build.gradle.kts (Gradle)"), "{stderr}");
    assert!(!empty.join("kazi.toml").exists());

    let out = init(&empty, tmp.path(), &["missing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing: it is not a directory"));
}
