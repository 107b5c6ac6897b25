//! The profile against the fake `codex` of `tests/fake-agents/`: the argv it builds
//! is accepted, and what the fake prints in each mode reads as intended. The end-to-end
//! tests rely on both.
#![cfg(unix)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kazi_profile_codex::{Options, build_invocation, parse_output};
use kazi_sdk::prelude::serde_json;
use kazi_sdk::{ConfigType, Invocation, Report, Request, Tokens};

fn fakes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fake-agents")
}

fn request(workspace: &Path, options: &[(&str, &str)]) -> Request<Options> {
    let options: serde_json::Map<String, serde_json::Value> = options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::from_str(v).unwrap()))
        .collect();
    Request {
        prompt: "Make the failing predicate `tests` pass.".into(),
        workspace: workspace.display().to_string(),
        model: Some("gpt-5-codex".into()),
        run: Vec::new(),
        options: Options::from_value(options.into()).unwrap(),
    }
}

/// Run the invocation with the fake as the program, in `workspace`, with a closed
/// (or written-then-closed) stdin, like the host.
fn run(inv: &Invocation, workspace: &Path, env: &[(&str, &str)]) -> Report {
    let mut cmd = Command::new(fakes().join(&inv.program));
    cmd.args(&inv.args)
        .current_dir(workspace)
        .envs(env.iter().copied())
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the fake");
    if let Some(text) = &inv.stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    parse_output(
        out.status.code(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

fn default_run(mode: &str, env: &[(&str, &str)]) -> Report {
    let ws = tempfile::tempdir().unwrap();
    let inv = build_invocation(request(ws.path(), &[])).unwrap();
    let mut env = env.to_vec();
    env.push(("KAZI_FAKE_MODE", mode));
    // The offline mode hangs after its output; here it ends at once, and is read
    // as killed below.
    env.push(("KAZI_FAKE_HANG_SECS", "0"));
    run(&inv, ws.path(), &env)
}

#[test]
fn success_carries_the_configured_usage_exactly() {
    let r = default_run(
        "success",
        &[
            ("KAZI_FAKE_TOKENS_IN", "1234"),
            ("KAZI_FAKE_TOKENS_OUT", "56"),
            ("KAZI_FAKE_TOKENS_CACHED", "7890"),
            ("KAZI_FAKE_RESULT", "All green."),
            ("KAZI_FAKE_SESSION", "t-42"),
        ],
    );
    assert_eq!(r.error, None);
    assert_eq!(
        r.tokens,
        Tokens {
            input: Some(1234),
            output: Some(56),
            cached: Some(7890)
        }
    );
    assert_eq!(r.cost_usd, None, "codex reports no cost");
    assert_eq!(r.result.as_deref(), Some("All green."));
    assert_eq!(r.session_id.as_deref(), Some("t-42"));
}

#[test]
fn failure_modes() {
    let r = default_run("usage-error", &[]);
    assert_eq!(
        r.error.as_deref(),
        Some("error: unexpected argument '--bogus' found")
    );
    let r = default_run("turn-failed", &[]);
    assert!(
        r.error
            .unwrap()
            .starts_with("unexpected status 401 Unauthorized")
    );
    let r = default_run("garbage", &[]);
    assert!(r.error.unwrap().starts_with("codex printed no JSON events"));
    let r = default_run("deny-all", &[]);
    assert_eq!(r.error, None);
    assert_eq!(r.permission_denials, ["command(bash -lc 'cargo test')"]);
    let r = default_run("not-git", &[]);
    assert!(
        r.error
            .unwrap()
            .contains("hint: make the workspace a git repository (`git init`)")
    );
}

#[test]
fn offline_killed_reports_the_last_retry() {
    let ws = tempfile::tempdir().unwrap();
    let inv = build_invocation(request(ws.path(), &[])).unwrap();
    let out = Command::new(fakes().join(&inv.program))
        .args(&inv.args)
        .current_dir(ws.path())
        .env("KAZI_FAKE_MODE", "offline")
        .env("KAZI_FAKE_HANG_SECS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = parse_output(
        None,
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        r.error.as_deref(),
        Some(
            "codex was stopped before it finished; its last message: Reconnecting... waiting for network (Connection failed: error sending request)"
        )
    );
}

#[test]
fn skip_git_repo_check_gets_past_the_check() {
    let ws = tempfile::tempdir().unwrap();
    let req = request(ws.path(), &[("skip_git_repo_check", "true")]);
    let r = run(
        &build_invocation(req).unwrap(),
        ws.path(),
        &[("KAZI_FAKE_MODE", "not-git")],
    );
    assert_eq!(r.error, None);
}

#[test]
fn a_bad_extra_argument_is_a_usage_error() {
    let ws = tempfile::tempdir().unwrap();
    let req = request(ws.path(), &[("extra_args", "[\"--bogus\"]")]);
    let r = run(&build_invocation(req).unwrap(), ws.path(), &[]);
    assert_eq!(
        r.error.as_deref(),
        Some("error: unexpected argument '--bogus' found")
    );
}

#[test]
fn every_option_is_accepted() {
    let ws = tempfile::tempdir().unwrap();
    for options in [
        &[("full_auto", "true"), ("skip_git_repo_check", "true")][..],
        &[
            ("sandbox", "\"danger-full-access\""),
            ("extra_args", "[\"-c\", \"x=1\"]"),
        ][..],
    ] {
        let req = request(ws.path(), options);
        let r = run(&build_invocation(req).unwrap(), ws.path(), &[]);
        assert_eq!(r.error, None, "{options:?}");
    }
}

#[test]
fn prompts_arrive_whole_by_argument_dashes_or_stdin() {
    for prompt in [
        "fix `it`\nplease".to_owned(),
        "--starts with dashes".to_owned(),
        "y".repeat(kazi_sdk::request::ARG_PROMPT_MAX + 10),
    ] {
        let ws = tempfile::tempdir().unwrap();
        let mut req = request(ws.path(), &[]);
        req.prompt = prompt.clone();
        let file = ws.path().join("prompt.seen");
        let file_env = file.display().to_string();
        let r = run(
            &build_invocation(req).unwrap(),
            ws.path(),
            &[("KAZI_FAKE_PROMPT_FILE", &file_env)],
        );
        assert_eq!(r.error, None);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), prompt);
    }
}

/// The fake, like the real codex 0.169 and later, refuses `--full-auto`; kazi never
/// passes it (`full_auto = true` is `--sandbox workspace-write`).
#[test]
fn full_auto_is_refused_by_codex_and_never_passed() {
    let ws = tempfile::tempdir().unwrap();
    let mut inv = build_invocation(request(ws.path(), &[("full_auto", "true")])).unwrap();
    assert!(
        !inv.args.iter().any(|a| a == "--full-auto"),
        "{:?}",
        inv.args
    );
    inv.args.insert(2, "--full-auto".into());
    let r = run(&inv, ws.path(), &[]);
    assert_eq!(
        r.error.as_deref(),
        Some("error: unexpected argument '--full-auto' found")
    );
}
