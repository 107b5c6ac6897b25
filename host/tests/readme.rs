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
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok()
    {
        // The scratch copy is a git repository: the fix lands on a branch.
        assert_eq!(json["landing"]["status"], "landed", "{json}");
    }
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

/// A fake `rustup` that knows one toolchain and adds the wasm target only when asked,
/// logging every call; it stands in for a machine with `RUSTUP_AUTO_INSTALL=0` that
/// has the pinned compiler but not the target.
fn fake_rustup(dir: &Path, channel: &str, has_target: bool) -> PathBuf {
    let state = dir.join("installed-targets");
    let mut targets = String::from("x86_64-unknown-linux-gnu\n");
    if has_target {
        targets.push_str("wasm32-wasip2\n");
    }
    std::fs::write(&state, targets).unwrap();
    let log = dir.join("rustup.log");
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{log}'
case "$1 $2" in
  "toolchain list") echo "{channel}-x86_64-unknown-linux-gnu" ;;
  "target list") cat '{state}' ;;
  "toolchain install") echo "info: syncing channel updates for '{channel}'" >&2 ;;
  "target add") case "$*" in *wasm32-wasip2*) echo wasm32-wasip2 >> '{state}' ;; esac ;;
  *) echo "fake rustup: unexpected $*" >&2; exit 1 ;;
esac
"#,
        log = log.display(),
        state = state.display(),
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let rustup = bin.join("rustup");
    std::fs::write(&rustup, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn pinned_channel() -> String {
    let toml = std::fs::read_to_string(root().join("rust-toolchain.toml")).unwrap();
    let line = toml
        .lines()
        .find(|l| l.trim_start().starts_with("channel"))
        .expect("rust-toolchain.toml pins a channel");
    line.split('"').nth(1).unwrap().to_owned()
}

fn run_toolchain_script(bin: &Path) -> std::process::Output {
    let path = format!("{}:/usr/bin:/bin", bin.display());
    Command::new("bash")
        .arg(root().join("scripts/toolchain.sh"))
        .env("PATH", path)
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .unwrap()
}

#[test]
fn the_toolchain_script_installs_a_missing_wasm_target_and_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let channel = pinned_channel();
    assert!(
        channel.chars().next().unwrap().is_ascii_digit(),
        "rust-toolchain.toml should pin a version, not `{channel}`"
    );
    let bin = fake_rustup(dir.path(), &channel, false);
    let out = run_toolchain_script(&bin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "installing Rust {channel} with the wasm32-wasip2 target"
        )),
        "{stderr}"
    );
    let log = std::fs::read_to_string(dir.path().join("rustup.log")).unwrap();
    assert!(log.contains("toolchain install"), "{log}");
    assert!(
        log.contains(&format!("target add --toolchain {channel} wasm32-wasip2")),
        "{log}"
    );

    // Now that it is there, a second run installs nothing and prints nothing.
    std::fs::remove_file(dir.path().join("rustup.log")).unwrap();
    let out = run_toolchain_script(&bin);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("rustup.log")).unwrap();
    assert!(
        !log.contains("toolchain install") && !log.contains("target add"),
        "{log}"
    );
}

#[test]
fn the_quickstart_and_ci_install_the_toolchain_before_building() {
    for script in ["examples/quickstart/run.sh", ".ci/run"] {
        let text = std::fs::read_to_string(root().join(script)).unwrap();
        let setup = text
            .find("scripts/toolchain.sh")
            .unwrap_or_else(|| panic!("{script} does not run scripts/toolchain.sh"));
        let build = text
            .find("exec cargo")
            .unwrap_or_else(|| panic!("{script} does not run cargo"));
        assert!(
            setup < build,
            "{script} must set up the toolchain before cargo"
        );
    }
}
