//! The everyday CLI through the binary: finding the goal, `--json` on failure,
//! `--dry-run`, `kazi show last`, `kazi doctor`, and refusing to touch a database that
//! is not kazi's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache")
}

fn kazi(dir: &Path, db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", dir)
        .env("KAZI_DB", db)
        .env("KAZI_CACHE", cache_dir())
        .current_dir(dir)
        .stdin(Stdio::null());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// A workspace with the quickstart's goal: a shell calculator whose `add` subtracts.
fn quickstart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/project");
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

#[test]
fn with_no_goal_kazi_uses_kazi_toml_here_or_in_a_directory() {
    let dir = quickstart();
    let db = dir.path().join("kazi.db");
    let out = kazi(dir.path(), &db)
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(json(&out)["goal_id"], "quickstart");
    // A directory means its kazi.toml.
    let parent = dir.path().parent().unwrap();
    let out = kazi(parent, &db)
        .args(["check", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(json(&out)["goal_id"], "quickstart", "{}", stderr(&out));
    // No kazi.toml: the only goal under .kazi/goals/.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join(".kazi/goals")).unwrap();
    std::fs::write(
        other.path().join(".kazi/goals/only.toml"),
        "id = \"only\"\n[[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\nexists = true\n",
    )
    .unwrap();
    let out = kazi(other.path(), &db)
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["goal_id"], "only", "{}", stderr(&out));
    // Nothing at all: a usage error that says what to do.
    let empty = tempfile::tempdir().unwrap();
    let out = kazi(empty.path(), &db).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no ./kazi.toml") && stderr(&out).contains("kazi init"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_prints_one_object_even_when_the_goal_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kazi.db");
    std::fs::write(
        dir.path().join("kazi.toml"),
        "id = \"x\"\n[budget]\nmax_iteration = 3\n[[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n",
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = kazi(dir.path(), &db)
            .args([cmd, "kazi.toml", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{cmd}: {}", stderr(&out));
        let j = json(&out);
        assert_eq!(j["status"], "invalid", "{cmd}: {j}");
        let e = &j["errors"][0];
        assert_eq!(e["line"], 3, "{j}");
        assert_eq!(e["column"], 1, "{j}");
        assert!(e["file"].as_str().unwrap().ends_with("kazi.toml"), "{j}");
        assert_eq!(e["hint"], "did you mean `max_iterations`?", "{j}");
    }
}

#[test]
fn dry_run_shows_the_prompt_and_the_agent_command_and_records_nothing() {
    let dir = quickstart();
    let db = dir.path().join("kazi.db");
    let out = kazi(dir.path(), &db)
        .args(["run", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL  tests-pass"), "{text}");
    assert!(
        text.contains("would dispatch the command agent on tests-pass"),
        "{text}"
    );
    assert!(text.contains("/fix.sh"), "{text}");
    assert!(text.contains("## tests-pass\nWhat it checks"), "{text}");
    assert!(!db.exists(), "a dry run records nothing");
    let out = kazi(dir.path(), &db)
        .args(["run", "--explain", "--json"])
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(j["type"], "dry_run");
    assert_eq!(j["action"], "dispatch");
    assert!(
        j["dispatch"]["prompt"]
            .as_str()
            .unwrap()
            .contains("## tests-pass")
    );
    assert!(
        j["dispatch"]["program"]
            .as_str()
            .unwrap()
            .ends_with("fix.sh")
    );
    // Nothing was dispatched: the calculator is still broken.
    let calc = std::fs::read_to_string(dir.path().join("calc.sh")).unwrap();
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/project/calc.sh"),
    )
    .unwrap();
    assert_eq!(calc, original);
}

#[test]
fn show_last_is_the_newest_run_with_its_prompt() {
    let dir = quickstart();
    let db = dir.path().join("kazi.db");
    let out = kazi(dir.path(), &db)
        .args(["run", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = json(&out)["run_id"].as_str().unwrap().to_owned();
    let out = kazi(dir.path(), &db)
        .args(["show", "last", "--json"])
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(j["run"]["id"], id.as_str());
    let d = &j["dispatches"][0];
    assert!(
        d["prompt"].as_str().unwrap().contains("## tests-pass"),
        "the prompt is kept: {j}"
    );
    assert_eq!(d["changed_files"], serde_json::json!(["calc.sh"]), "{j}");
}

#[test]
fn doctor_reports_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kazi.db");
    let out = kazi(dir.path(), &db)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j = json(&out);
    let names: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "claude",
        "opencode",
        "codex",
        "wasm32-wasip2",
        "database",
        "cache",
        "trust",
    ] {
        assert!(names.contains(&n), "{n} missing from {j}");
    }
    assert!(!db.exists(), "doctor creates no database");
}

#[test]
fn reading_commands_never_touch_a_database_that_is_not_kazis() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    {
        // An application's own SQLite file.
        let status = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table notes(x)'); c.commit()",
            ])
            .arg(&other)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("skipped: python3 with sqlite3 is not available");
            return;
        }
    }
    let before = std::fs::read(&other).unwrap();
    for args in [
        vec!["runs", "--db"],
        vec!["proposals", "--db"],
        vec!["show", "last", "--db"],
    ] {
        let out = kazi(dir.path(), &dir.path().join("unused.db"))
            .args(&args)
            .arg(&other)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not a kazi run database"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A writing command refuses it too.
    let q = quickstart();
    let out = kazi(q.path(), &other).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "the file is untouched"
    );
    assert!(!other.with_extension("db-wal").exists());
    // A one-byte file is not a database; an empty one (what a kazi killed while
    // creating it leaves) holds no runs. Neither is written.
    std::fs::write(&other, b"x").unwrap();
    let out = kazi(dir.path(), &other).args(["runs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not an SQLite database"),
        "{}",
        stderr(&out)
    );
    let out = kazi(q.path(), &other).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&other).unwrap(),
        b"x",
        "kazi run never overwrites it"
    );
    std::fs::write(&other, b"").unwrap();
    let out = kazi(dir.path(), &other).args(["runs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no runs yet");
    assert_eq!(std::fs::read(&other).unwrap(), b"");
}

#[test]
fn verbose_logs_every_spawned_command_without_colour_codes_in_a_pipe() {
    let dir = quickstart();
    let db = dir.path().join("kazi.db");
    let out = kazi(dir.path(), &db)
        .args(["-v", "run", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    // The predicate's `sh test.sh`, with its arguments and directory.
    let spawn = err
        .lines()
        .find(|l| l.contains("spawning") && l.contains("\"test.sh\""))
        .unwrap_or_else(|| panic!("no spawn line for `sh test.sh` in:\n{err}"));
    assert!(spawn.contains("program="), "{spawn}");
    // stderr is a pipe here: no escape sequences, whatever the log level.
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe:\n{err}");
}
