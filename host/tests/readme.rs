//! The commands the README shows, run as a newcomer would type them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_quickstart_converges_in_two_iterations_and_leaves_the_repository_clean() {
    let db = tempfile::tempdir().unwrap();
    let before =
        std::fs::read_to_string(root().join("examples/quickstart/project/calc.sh")).unwrap();
    let out = Command::new("bash")
        .arg(root().join("examples/quickstart/run.sh"))
        .arg("--json")
        .env("KAZI_DB", db.path().join("kazi.db"))
        // The script's own `cargo run` would rebuild kazi with this package's feature
        // set and overwrite the binary other tests are running; hand it the one built.
        .env("KAZI_BIN", env!("CARGO_BIN_EXE_kazi"))
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "converged", "{json}");
    assert_eq!(json["iterations"], 2, "{json}");
    assert_eq!(json["budget_spent"]["dispatches"], 1);
    let after =
        std::fs::read_to_string(root().join("examples/quickstart/project/calc.sh")).unwrap();
    assert_eq!(before, after, "the quickstart must work on a copy");
}

#[test]
fn the_tour_predicate_eval_line_passes_in_the_repository() {
    let out = Command::new(env!("CARGO_BIN_EXE_kazi"))
        .args([
            "predicate",
            "eval",
            "file",
            "-w",
            ".",
            "--config",
            r#"{"path":"README.md","contains":"kazi"}"#,
        ])
        .current_dir(root())
        .env(
            "KAZI_CACHE",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("PASS"));
}

#[test]
fn help_lists_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_kazi"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  converged",
        "3  over budget",
        "4  tampered",
        "5  invalid",
    ] {
        assert!(help.contains(line), "--help lacks `{line}`:\n{help}");
    }
}

#[test]
fn completions_are_printed_for_bash() {
    let out = Command::new(env!("CARGO_BIN_EXE_kazi"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("_kazi()") && script.contains("predicate"),
        "{script}"
    );
}
