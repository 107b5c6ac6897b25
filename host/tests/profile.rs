//! The builtin `command` profile, through the sandbox: describe, invocation, parse.

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
