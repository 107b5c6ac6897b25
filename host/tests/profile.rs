//! Profiles and predicates through the sandbox: the builtin `command` profile's describe,
//! invocation and parse, and components of both supported WIT versions.

use kazi::sandbox::{ProfileRequest, Sandbox};

fn sandbox() -> Sandbox {
    let dir = std::env::var_os("KAZI_CACHE").map(std::path::PathBuf::from);
    Sandbox::new(dir).expect("sandbox starts")
}

#[tokio::test]
async fn command_profile_describes_itself() {
    let sb = sandbox();
    let p = sb
        .load_profile(&kazi::builtins::profile("command").unwrap())
        .await
        .unwrap();
    assert_eq!(p.info.id, "command");
}

#[tokio::test]
async fn command_profile_runs_the_goal_program_with_the_prompt_on_stdin_and_in_a_file() {
    let sb = sandbox();
    let p = sb
        .load_profile(&kazi::builtins::profile("command").unwrap())
        .await
        .unwrap();
    let req = ProfileRequest {
        prompt: "fix the test".into(),
        workspace: "/tmp/ws".into(),
        run: vec!["./fix.sh".into(), "--fast".into()],
        ..ProfileRequest::default()
    };
    let inv = sb.invocation(&p, &req).await.unwrap();
    assert_eq!(inv.program, "./fix.sh");
    assert_eq!(inv.args, vec!["--fast".to_string()]);
    assert_eq!(inv.stdin.as_deref(), Some("fix the test"));
    assert!(inv.prompt_file);
}

#[tokio::test]
async fn command_profile_refuses_an_empty_run() {
    let sb = sandbox();
    let p = sb
        .load_profile(&kazi::builtins::profile("command").unwrap())
        .await
        .unwrap();
    let err = sb
        .invocation(&p, &ProfileRequest::default())
        .await
        .unwrap_err();
    assert!(err.contains("run"), "{err}");
}

#[tokio::test]
async fn command_profile_reports_a_failing_exit_without_inventing_usage() {
    let sb = sandbox();
    let p = sb
        .load_profile(&kazi::builtins::profile("command").unwrap())
        .await
        .unwrap();
    let r = sb
        .parse(&p, Some(3), "partial work\n", "boom: cannot write\n")
        .await
        .unwrap();
    let err = r.error.expect("a non-zero exit is an error");
    assert!(err.contains('3'), "{err}");
    assert!(err.contains("boom"), "{err}");
    assert_eq!(r.tokens_in, None);
    assert_eq!(r.cost_usd, None);

    let ok = sb.parse(&p, Some(0), "done\n", "").await.unwrap();
    assert_eq!(ok.error, None);
    assert_eq!(ok.result.as_deref(), Some("done"));
}

#[tokio::test]
async fn a_profile_is_not_accepted_as_a_predicate_and_vice_versa() {
    let sb = sandbox();
    let err = sb
        .load_predicate(&kazi::builtins::profile("command").unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("is a kazi profile, not a kazi predicate"),
        "{err}"
    );
    let err = sb
        .load_profile(&kazi::builtins::predicate("file").unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("is a kazi predicate, not a kazi profile"),
        "{err}"
    );
}

fn legacy(name: &str) -> kazi::sandbox::Source {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/components")
        .join(name);
    kazi::sandbox::Source::from_file(&path).unwrap()
}

/// A WIT 0.2.0 profile checks `[agent]` options; a 0.1.0 one cannot, and says so by
/// answering `None`, but still translates and parses like any profile.
#[tokio::test]
async fn profiles_of_both_wit_versions_load_and_run() {
    let sb = sandbox();
    let new = sb
        .load_profile(&kazi::builtins::profile("claude").unwrap())
        .await
        .unwrap();
    assert_eq!(new.world, "kazi:profile/profile@0.2.0");
    assert!(new.validates());
    let problems = sb
        .validate_profile(&new, &serde_json::json!({"max_turns": "ten"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].pointer, "/max_turns");
    assert!(
        sb.validate_profile(&new, &serde_json::json!({"max_turns": 10}))
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );

    let old = sb
        .load_profile(&legacy("legacy-profile-0.1.0.wasm"))
        .await
        .unwrap();
    assert_eq!(old.world, "kazi:profile/profile@0.1.0");
    assert!(!old.validates());
    assert_eq!(old.info.options, ["verbose"]);
    assert_eq!(
        sb.validate_profile(&old, &serde_json::json!({}))
            .await
            .unwrap(),
        None
    );
    let inv = sb
        .invocation(
            &old,
            &ProfileRequest {
                prompt: "fix it".into(),
                run: vec!["./fix.sh".into()],
                ..ProfileRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(inv.program, "./fix.sh");
    assert_eq!(inv.stdin.as_deref(), Some("fix it"));
    let report = sb.parse(&old, Some(0), "done\n", "").await.unwrap();
    assert_eq!(report.result.as_deref(), Some("done"));
}

/// A WIT 0.2.0 predicate checks its config (every problem, each with a JSON
/// pointer); a 0.1.0 one cannot (`None`), and still evaluates.
#[tokio::test]
async fn predicates_of_both_wit_versions_load_and_evaluate() {
    let sb = sandbox();
    let new = sb
        .load_predicate(&kazi::builtins::predicate("file").unwrap())
        .await
        .unwrap();
    assert_eq!(new.world, "kazi:predicate/predicate@0.2.0");
    let problems = sb
        .validate_config(
            &new,
            &serde_json::json!({"path": "../x", "matches": ["ok", "("], "contians": 1}),
        )
        .await
        .unwrap()
        .unwrap();
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/contians"],
        "type problems come first: {problems:?}"
    );
    let problems = sb
        .validate_config(
            &new,
            &serde_json::json!({"path": "../x", "matches": ["ok", "("]}),
        )
        .await
        .unwrap()
        .unwrap();
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(pointers, ["/matches/1", "/path"], "{problems:?}");

    let old = sb
        .load_predicate(&legacy("legacy-predicate-0.1.0.wasm"))
        .await
        .unwrap();
    assert_eq!(old.world, "kazi:predicate/predicate@0.1.0");
    assert!(!old.validates());
    assert_eq!(
        sb.validate_config(&old, &serde_json::json!({"path": "a"}))
            .await
            .unwrap(),
        None
    );
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("a.txt"), "x").unwrap();
    let v = sb
        .evaluate(
            &old,
            ws.path(),
            &serde_json::json!({"path": "a.txt"}),
            &kazi::sandbox::EvalOptions::default(),
        )
        .await;
    assert_eq!(v.outcome, kazi::verdict::Outcome::Pass, "{v:?}");
}
