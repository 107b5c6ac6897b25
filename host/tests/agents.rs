//! `kazi run` with the `claude`, `opencode` and `codex` profiles against fake CLIs
//! (tests/fake-agents) that print the real output formats: tokens and cost reach the
//! budget and the read-model exactly as the output says, and each way an agent can
//! fail is recorded as what it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fakes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fake-agents")
        .canonicalize()
        .unwrap()
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(profile: &str, extra_agent: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("state.txt"), "broken\n").unwrap();
        std::fs::write(
            ws.join("kazi.toml"),
            format!(
                "id = \"t\"\n[agent]\nprofile = \"{profile}\"\ntimeout = \"3s\"\n{extra_agent}\n\
                 [[predicate]]\nid = \"fixed\"\nuse = \"file\"\npath = \"state.txt\"\ncontains = \"fixed\"\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("fix.sh"), "echo fixed > state.txt\n").unwrap();
        Case { dir }
    }

    fn kazi(&self, env: &[(&str, &str)]) -> Command {
        let path = format!("{}:{}", fakes().display(), std::env::var("PATH").unwrap());
        let mut c = Command::new(env!("CARGO_BIN_EXE_kazi"));
        c.env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("KAZI_DB", self.dir.path().join("kazi.db"))
            .env(
                "KAZI_CACHE",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kazi-cache"),
            )
            .env("KAZI_FAKE_CALLS_FILE", self.dir.path().join("calls"))
            .current_dir(self.dir.path().join("ws"))
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, env: &[(&str, &str)]) -> (i32, serde_json::Value) {
        let out = self
            .kazi(env)
            .args(["run", "kazi.toml", "--json"])
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no JSON: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().expect("kazi exits normally"), json)
    }

    fn fix_script(&self) -> String {
        self.dir.path().join("fix.sh").display().to_string()
    }

    fn dispatches(&self, run_id: &str) -> Vec<serde_json::Value> {
        let out = self
            .kazi(&[])
            .args(["show", run_id, "--json"])
            .output()
            .unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        shown["dispatches"].as_array().unwrap().clone()
    }
}

#[test]
fn claude_tokens_and_cost_reach_the_budget_and_the_read_model_exactly() {
    let c = Case::new("claude", "");
    let fix = c.fix_script();
    let (code, json) = c.run(&[
        ("KAZI_FAKE_SCRIPT", &fix),
        ("KAZI_FAKE_TOKENS_IN", "1234"),
        ("KAZI_FAKE_TOKENS_OUT", "567"),
        ("KAZI_FAKE_TOKENS_CACHED", "89"),
        ("KAZI_FAKE_COST", "0.0421"),
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["status"], "converged");
    assert_eq!(
        json["budget_spent"]["tokens"],
        1234 + 567,
        "cache reads are not counted: {json}"
    );
    assert_eq!(json["budget_spent"]["cost_usd"], 0.0421);
    let d = &c.dispatches(json["run_id"].as_str().unwrap())[0];
    assert_eq!(d["profile"], "claude");
    assert_eq!(d["outcome"], "completed");
    assert_eq!(d["tokens_in"], 1234);
    assert_eq!(d["tokens_out"], 567);
    assert_eq!(d["tokens_cached"], 89);
    assert_eq!(d["cost_usd"], 0.0421);
    assert!(
        d["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{d}"
    );
    assert_eq!(d["changed_files"], serde_json::json!(["state.txt"]));
}

#[test]
fn opencode_tokens_and_cost_reach_the_budget_exactly() {
    let c = Case::new("opencode", "");
    let fix = c.fix_script();
    let (code, json) = c.run(&[
        ("KAZI_FAKE_SCRIPT", &fix),
        ("KAZI_FAKE_TOKENS_IN", "2000"),
        ("KAZI_FAKE_TOKENS_OUT", "150"),
        ("KAZI_FAKE_COST", "0.5"),
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["budget_spent"]["tokens"], 2150);
    assert_eq!(json["budget_spent"]["cost_usd"], 0.5);
}

#[test]
fn codex_reports_tokens_and_no_invented_cost() {
    let c = Case::new("codex", "");
    let fix = c.fix_script();
    let (code, json) = c.run(&[
        ("KAZI_FAKE_SCRIPT", &fix),
        ("KAZI_FAKE_TOKENS_IN", "900"),
        ("KAZI_FAKE_TOKENS_OUT", "100"),
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["budget_spent"]["tokens"], 1000);
    assert_eq!(json["budget_spent"]["cost_usd"], 0.0);
    let d = &c.dispatches(json["run_id"].as_str().unwrap())[0];
    assert_eq!(
        d["cost_usd"],
        serde_json::Value::Null,
        "codex prints no cost, so none is recorded"
    );
}

#[test]
fn the_cost_budget_stops_a_run_at_the_reported_cost() {
    let c = Case::new("claude", "");
    let (code, json) = c.run(&[("KAZI_FAKE_COST", "0.3")]);
    // Nothing gets fixed; budget max_cost is absent here, so stuck comes first…
    assert_eq!(code, 1, "{json}");
    let c = Case::new("claude", "");
    let goal = c.dir.path().join("ws/kazi.toml");
    let text = std::fs::read_to_string(&goal).unwrap();
    std::fs::write(
        &goal,
        format!("[budget]\nmax_cost_usd = 0.5\n{text}").replacen(
            "[budget]\nmax_cost_usd = 0.5\nid = \"t\"",
            "id = \"t\"\n[budget]\nmax_cost_usd = 0.5",
            1,
        ),
    )
    .unwrap();
    let (code, json) = c.run(&[("KAZI_FAKE_COST", "0.3")]);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["status"], "over_budget");
    assert_eq!(json["budget_spent"]["cost_usd"], 0.6);
    assert_eq!(json["budget_spent"]["dispatches"], 2);
}

fn assert_agent_error(json: &serde_json::Value, outcome: &str, message: &str) {
    assert_eq!(json["status"], "stuck", "{json}");
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.starts_with("agent_error"), "{reason}");
    assert!(
        reason.contains(outcome),
        "expected outcome {outcome} in: {reason}"
    );
    assert!(
        reason.contains(message),
        "expected {message:?} in: {reason}"
    );
    assert_eq!(
        json["budget_spent"]["dispatches"], 2,
        "two identical failures end the run: {json}"
    );
}

#[test]
fn claude_not_logged_in_ends_as_agent_error_with_its_message() {
    let c = Case::new("claude", "");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "not-logged-in")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "failed", "Not logged in");
}

/// `extra_args = ["--verbose"]` makes claude print one JSON array of every event,
/// different on every run (ids, timings). The profile reads the array's result
/// event, so tokens and cost arrive, and two identical failures still compare equal
/// and end the run after two dispatches, not three with `no_progress`.
#[test]
fn claude_verbose_output_is_read_from_its_result_event() {
    let c = Case::new("claude", "extra_args = [\"--verbose\"]");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "not-logged-in")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "failed", "Not logged in · Please run /login");

    let c = Case::new("claude", "extra_args = [\"--verbose\"]");
    let fix = c.fix_script();
    let (code, json) = c.run(&[
        ("KAZI_FAKE_SCRIPT", &fix),
        ("KAZI_FAKE_TOKENS_IN", "700"),
        ("KAZI_FAKE_TOKENS_OUT", "50"),
        ("KAZI_FAKE_COST", "0.02"),
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["budget_spent"]["tokens"], 750);
    assert_eq!(json["budget_spent"]["cost_usd"], 0.02);
}

/// Issue: options the real CLI rejects cost dispatches and ended `stuck`. They are
/// load errors now, with the `[agent]` key's line, and no agent is started.
#[test]
fn bad_agent_options_are_load_errors_before_any_dispatch() {
    for (profile, extra, want) in [
        (
            "claude",
            "max_turns = \"ten\"",
            "kazi.toml:5:1: [agent] `max_turns` must be an integer",
        ),
        (
            "opencode",
            "model = \"claude-sonnet-4-5\"",
            "kazi.toml:5:1: [agent] `model` is \"claude-sonnet-4-5\", but opencode names models as `provider/model`",
        ),
        (
            "codex",
            "full_auto = true\nsandbox = \"read-only\"",
            "kazi.toml:5:1: [agent] `full_auto` asks for the \"workspace-write\" sandbox",
        ),
        (
            "command",
            "run = []",
            "kazi.toml:5:1: [agent] `run` must name a program, and it is empty",
        ),
    ] {
        let c = Case::new(profile, extra);
        let out = c.kazi(&[]).args(["run", "kazi.toml"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{profile}: {stderr}");
        assert!(stderr.contains(want), "{profile}: {stderr}");
        assert!(
            !c.dir.path().join("calls").exists(),
            "{profile}: no agent may run"
        );
    }
}

/// `full_auto = true` runs codex with `--sandbox workspace-write`, which the real
/// codex accepts (the fake, like codex 0.169 and later, refuses `--full-auto`).
#[test]
fn codex_full_auto_is_accepted_by_codex() {
    let c = Case::new("codex", "full_auto = true");
    let fix = c.fix_script();
    let (code, json) = c.run(&[("KAZI_FAKE_SCRIPT", &fix)]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["status"], "converged");
}

#[test]
fn claude_usage_error_is_an_agent_error() {
    let c = Case::new("claude", "");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "usage-error")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "failed", "unknown option");
}

#[test]
fn every_tool_call_denied_is_not_progress() {
    let c = Case::new("claude", "");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "deny-all")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "permission_denied", "every tool call was denied");
}

#[test]
fn garbage_output_is_an_agent_error() {
    let c = Case::new("claude", "");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "garbage")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "unparseable", "");
}

#[test]
fn a_silent_opencode_hang_is_killed_at_the_dispatch_timeout() {
    let c = Case::new("opencode", "");
    let (code, json) = c.run(&[("KAZI_FAKE_MODE", "hang"), ("KAZI_FAKE_HANG_SECS", "293")]);
    assert_eq!(code, 1);
    assert_agent_error(&json, "timed_out", "dispatch timeout");
}

#[test]
fn codex_offline_retries_are_ended_by_the_dispatch_timeout() {
    let c = Case::new("codex", "");
    let (code, json) = c.run(&[
        ("KAZI_FAKE_MODE", "offline"),
        ("KAZI_FAKE_HANG_SECS", "292"),
    ]);
    assert_eq!(code, 1);
    // The timeout keeps what codex said last (its reconnect attempts).
    assert_agent_error(&json, "timed_out", "Reconnecting");
}

#[test]
fn a_missing_agent_cli_is_refused_before_anything_runs() {
    let c = Case::new("claude", "");
    let mut cmd = c.kazi(&[]);
    cmd.env("PATH", std::env::var("PATH").unwrap()); // no fakes: no `claude` anywhere
    let out = cmd.args(["run", "kazi.toml", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "invalid", "{json}");
    let error = &json["errors"][0];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the agent program `claude` was not found on PATH"),
        "{json}"
    );
    assert!(
        error["hint"].as_str().unwrap().contains("install it"),
        "{json}"
    );
    // Preflight happens before the first observation: no run was recorded.
    let runs = c.kazi(&[]).args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "{runs}");
}

#[test]
fn a_failure_then_a_success_is_not_stuck() {
    let c = Case::new("claude", "");
    let fix = c.fix_script();
    let (code, json) = c.run(&[
        ("KAZI_FAKE_MODE", "not-logged-in,success"),
        ("KAZI_FAKE_SCRIPT", &fix),
    ]);
    // The script runs in every mode, so the first (failed) call already fixed it.
    assert_eq!(code, 0, "{json}");
}

/// Issue: codex outside a git repository failed `kazi propose` with a hint to set an
/// `[agent]` option, which `propose` cannot take. The hint leads with what works
/// there: make the workspace a git repository.
#[test]
fn codex_outside_git_in_propose_hints_at_git_init() {
    let c = Case::new("codex", "");
    let out = c
        .kazi(&[("KAZI_FAKE_MODE", "not-git")])
        .args(["propose", "add a healthz endpoint", "--profile", "codex"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Not inside a trusted directory and --skip-git-repo-check was not specified.; hint: make the workspace a git repository (`git init`)"
        ),
        "{stderr}"
    );
}
