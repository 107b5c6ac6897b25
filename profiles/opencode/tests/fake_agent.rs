//! The profile against the fake `opencode` of `tests/fake-agents/`: the argv it builds
//! is accepted, and what the fake prints in each mode reads as intended. The end-to-end
//! tests rely on both.
#![cfg(unix)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kazi_profile_opencode::{Options, build_invocation, parse_output};
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
        model: Some("anthropic/claude-sonnet-4-5".into()),
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
            ("KAZI_FAKE_COST", "0.5"),
            ("KAZI_FAKE_RESULT", "All green."),
            ("KAZI_FAKE_SESSION", "ses_42"),
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
    assert_eq!(r.cost_usd, Some(0.5));
    assert_eq!(r.result.as_deref(), Some("All green."));
    assert_eq!(r.session_id.as_deref(), Some("ses_42"));
}

#[test]
fn failure_modes() {
    let r = default_run("error", &[]);
    assert_eq!(r.error.as_deref(), Some("invalid x-api-key"));
    let r = default_run("garbage", &[]);
    assert!(
        r.error
            .unwrap()
            .starts_with("opencode printed no JSON events")
    );
    let r = default_run("deny-all", &[]);
    assert_eq!(r.error, None);
    assert_eq!(r.permission_denials, ["bash(cargo test)"]);
}

#[test]
fn the_silent_hang_killed_is_no_output() {
    let ws = tempfile::tempdir().unwrap();
    let inv = build_invocation(request(ws.path(), &[])).unwrap();
    let out = Command::new(fakes().join(&inv.program))
        .args(&inv.args)
        .current_dir(ws.path())
        .env("KAZI_FAKE_MODE", "hang")
        .env("KAZI_FAKE_HANG_SECS", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
    let r = parse_output(None, "", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(r.error.as_deref(), Some("opencode produced no output"));
}

#[test]
fn every_option_is_accepted() {
    let ws = tempfile::tempdir().unwrap();
    let req = request(
        ws.path(),
        &[
            ("agent", "\"build\""),
            ("auto", "true"),
            ("extra_args", "[\"--variant\", \"high\"]"),
        ],
    );
    let r = run(&build_invocation(req).unwrap(), ws.path(), &[]);
    assert_eq!(r.error, None);
}

#[test]
fn a_bad_extra_argument_is_a_usage_error() {
    let ws = tempfile::tempdir().unwrap();
    let req = request(ws.path(), &[("extra_args", "[\"--bogus\"]")]);
    let r = run(&build_invocation(req).unwrap(), ws.path(), &[]);
    assert_eq!(r.error.as_deref(), Some("Unknown argument: bogus"));
}

#[test]
fn the_agent_works_in_the_dir_it_is_given() {
    let ws = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let script = elsewhere.path().join("agent.sh");
    std::fs::write(&script, "pwd > where.txt\n").unwrap();
    let script_env = script.display().to_string();
    let inv = build_invocation(request(ws.path(), &[])).unwrap();
    // Started elsewhere, the agent still works in `--dir`.
    let r = run(&inv, elsewhere.path(), &[("KAZI_FAKE_SCRIPT", &script_env)]);
    assert_eq!(r.error, None);
    let seen = std::fs::read_to_string(ws.path().join("where.txt")).unwrap();
    assert_eq!(
        Path::new(seen.trim()).canonicalize().unwrap(),
        ws.path().canonicalize().unwrap()
    );
}

#[test]
fn prompts_arrive_whole_by_argument_dashes_or_stdin() {
    for prompt in [
        "fix `it`\nplease".to_owned(),
        "-starts with a dash".to_owned(),
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
