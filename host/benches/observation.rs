//! What one observation costs on a real-shaped project, against one plain run of its
//! suite (issue: observation costs at most one run of the suite). Run with
//! `cargo bench -p kazi --bench observation` (needs `python3` with pytest; skipped
//! otherwise).
//!
//! A pytest project of 101 tests (~10 s), one of which fails until the agent fixes
//! `src/calc`. `kazi init` writes the goal (one predicate, both ratchets); the agent
//! is a script that does nothing the first time and fixes the bug the second; a
//! `conftest.py` counts how many times a pytest session started. The bench reports
//! one plain run of the suite, how many times the suite started during the run,
//! and per iteration the observation's evaluations, wall time and ratio to the
//! plain run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn kazi_bin() -> PathBuf {
    // The bench binary lives in target/<profile>/deps; kazi in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("kazi");
    assert!(
        bin.exists(),
        "build kazi first: cargo build --release -p kazi ({})",
        bin.display()
    );
    bin
}

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn sh(dir: &Path, cmd: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap()
}

/// One plain run of `cmd` in `dir`: the baseline.
fn plain(dir: &Path, cmd: &str) -> Duration {
    let t = Instant::now();
    sh(dir, cmd);
    t.elapsed()
}

struct Project {
    name: &'static str,
    dir: tempfile::TempDir,
    /// The suite's command, as `kazi init` chose it.
    suite: String,
    /// Where the suite appends a line each time it starts.
    count: PathBuf,
}

/// A pytest project: `tests` slow tests (each sleeps `each`), one of which fails
/// until `src/calc` is fixed.
fn python(tests: usize, each: f64) -> Option<Project> {
    let ok = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("python: skipped (pytest is not installed)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("calc");
    let count = dir.path().join("suite-runs");
    write(&root.join("pyproject.toml"), "[project]\nname = \"calc\"\n");
    write(
        &root.join("src/calc/__init__.py"),
        "def add(a, b):\n    return a - b\n",
    );
    let mut t = String::from("import time\nfrom calc import add\n\n");
    for i in 0..tests {
        t.push_str(&format!(
            "def test_{i}():\n    time.sleep({each})\n    assert add({i}, 0) == {i}\n\n"
        ));
    }
    t.push_str("def test_add():\n    assert add(2, 3) == 5\n");
    write(&root.join("tests/test_calc.py"), &t);
    write(
        &root.join("conftest.py"),
        &format!(
            "def pytest_sessionstart(session):\n    with open({:?}, 'a') as f:\n        f.write('run\\n')\n",
            count.display().to_string()
        ),
    );
    Some(Project {
        name: "python",
        suite: "PYTHONPATH=src python3 -m pytest -q".into(),
        dir,
        count,
    })
}

/// A Cargo crate: `tests` tests (each sleeps `each_ms`), one of which fails until
/// `add` is fixed. The suite's starts are counted by the test `aa_count`, which
/// appends a line whenever the test binary runs it (a focused run does not).
fn cargo(tests: usize, each_ms: u64) -> Option<Project> {
    let ok = Command::new("cargo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("cargo: skipped (cargo is not installed)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("calc");
    let count = dir.path().join("suite-runs");
    write(
        &root.join("Cargo.toml"),
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    let mut t = String::from(
        "pub fn add(a: i64, b: i64) -> i64 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n",
    );
    t.push_str(&format!(
        "    #[test]\n    fn aa_count() {{\n        use std::io::Write;\n        let mut f = std::fs::OpenOptions::new().create(true).append(true).open({:?}).unwrap();\n        writeln!(f, \"run\").unwrap();\n    }}\n\n",
        count.display().to_string()
    ));
    for i in 0..tests {
        t.push_str(&format!(
            "    #[test]\n    fn t{i}() {{\n        std::thread::sleep(std::time::Duration::from_millis({each_ms}));\n        assert_eq!(add({i}, 0), {i});\n    }}\n\n"
        ));
    }
    t.push_str("    #[test]\n    fn adds() {\n        assert_eq!(add(2, 3), 5);\n    }\n}\n");
    write(&root.join("src/lib.rs"), &t);
    // Build once, so the plain run and kazi's first observation both only run.
    sh(&root, "cargo build --tests -q 2>/dev/null");
    Some(Project {
        name: "cargo",
        suite: "cargo test --no-fail-fast".into(),
        dir,
        count,
    })
}

impl Project {
    fn root(&self) -> PathBuf {
        self.dir.path().join("calc")
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.count)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

fn measure(p: &Project) {
    let root = p.root();
    // The goal kazi init writes, driven by a scripted agent: nothing, then the fix.
    let out = Command::new(kazi_bin())
        .args(["init"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let goal = std::fs::read_to_string(root.join("kazi.toml")).unwrap();
    let goal = goal.replace(
        "profile = \"claude\"",
        "profile = \"command\"\nrun = [\"./agent.sh\"]",
    );
    write(&root.join("kazi.toml"), &goal);
    write(
        &root.join("agent.sh"),
        "#!/bin/sh\nif [ -f ../dispatched ]; then\n  for f in src/calc/__init__.py src/lib.rs; do [ -f \"$f\" ] && sed -i 's/a - b/a + b/' \"$f\"; done\nfi\ntouch ../dispatched\n",
    );
    sh(
        &root,
        "git init -q -b main && git add -A && git -c user.name=b -c user.email=b@e commit -qm init",
    );
    let baseline = plain(&root, &p.suite);
    let before = p.runs();
    let db = p.dir.path().join("kazi.db");
    let t = Instant::now();
    let out = Command::new(kazi_bin())
        .args(["run", "--json"])
        .env("KAZI_DB", &db)
        .current_dir(&root)
        .output()
        .unwrap();
    let total = t.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let shown = Command::new(kazi_bin())
        .args(["show", "last", "--json"])
        .env("KAZI_DB", &db)
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap_or_default();
    println!(
        "{}: one plain run of `{}`: {:.2}s; kazi run: {} after {} iterations in {:.1}s, the suite started {} times",
        p.name,
        p.suite,
        baseline.as_secs_f64(),
        json["status"],
        json["iterations"],
        total.as_secs_f64(),
        p.runs() - before
    );
    for it in shown["iterations"].as_array().into_iter().flatten() {
        let r = &it["predicates"][0];
        let ms = r["duration_ms"].as_u64().unwrap_or(0);
        println!(
            "  iteration {}: {} ({}), {} evaluation(s), {:.2}s = {:.2}× one plain suite run{}",
            it["index"],
            r["state"],
            r["summary"].as_str().unwrap_or(""),
            r["attempts"],
            ms as f64 / 1000.0,
            ms as f64 / baseline.as_millis().max(1) as f64,
            if r["metrics"]["focused"].as_f64().unwrap_or(0.0) > 0.0 {
                " (focused)"
            } else {
                ""
            }
        );
    }
}

fn main() {
    // ~10 s of suite: 100 tests of 0.1 s, one failing until the agent fixes it.
    let which = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    if which.as_deref().is_none_or(|w| w == "python")
        && let Some(p) = python(100, 0.1)
    {
        measure(&p);
    }
    // The same in Rust: 200 tests of 100 ms on 2 cores (libtest runs them in parallel).
    if which.as_deref().is_none_or(|w| w == "cargo")
        && let Some(p) = cargo(200, 100)
    {
        measure(&p);
    }
}
