//! The sandbox, proved end to end: each test runs the real `kazi predicate eval` on an
//! adversarial guest (see `tests/guests/`) and checks that the attack ended as a
//! clear `error` (or a load-time refusal), that the host stayed alive, and that the
//! side effect did not happen. Positive controls show each guest does work when the
//! capability is granted, so a refusal is the sandbox's doing and not a broken guest.
//!
//! Every run gets `KAZI_TEST_SECRET` in kazi's environment; `Kazi::run` fails the
//! test if it ever shows up in the output.

use std::path::Path;
use std::time::Duration;

use kazi_tests::{
    HttpServer, Kazi, SECRET_NAME, SilentListener, guests, kill_processes, processes_matching,
    wait_until,
};
use serde_json::json;
use tempfile::TempDir;

/// A fresh, empty workspace.
fn workspace() -> TempDir {
    tempfile::Builder::new()
        .prefix("kazi-ws-")
        .tempdir()
        .expect("temp workspace")
}

fn write(dir: &Path, rel: &str, contents: &str) {
    let path = dir.join(rel);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Text that only /etc/passwd holds (every Linux passwd file starts with root).
const PASSWD_MARK: &str = "root:";

// ---------------------------------------------------------------------------
// The `file` builtin, as a baseline that the CLI contract works at all.

#[test]
fn file_builtin_passes_when_the_file_contains_the_text() {
    let ws = workspace();
    write(ws.path(), "a.txt", "all ok here\n");
    Kazi::eval("file", ws.path())
        .config(&json!({"path": "a.txt", "contains": "ok"}))
        .run()
        .assert_verdict("pass");
}

#[test]
fn file_builtin_fails_when_the_file_lacks_the_text() {
    let ws = workspace();
    write(ws.path(), "a.txt", "all bad here\n");
    Kazi::eval("file", ws.path())
        .config(&json!({"path": "a.txt", "contains": "ok"}))
        .run()
        .assert_verdict("fail");
}

// ---------------------------------------------------------------------------
// Filesystem: nothing outside the workspace, the workspace read-only.

#[test]
fn reading_etc_passwd_is_refused() {
    let ws = workspace();
    Kazi::eval(guests::READ_ETC_PASSWD, ws.path())
        .run()
        .assert_verdict("error")
        .assert_output_lacks(PASSWD_MARK);
}

#[test]
fn dotdot_cannot_leave_the_workspace() {
    // Every attempt reaches the host, which refuses it and names the refusal.
    let ws = workspace();
    let run = Kazi::eval(guests::DOTDOT_ESCAPE, ws.path()).run();
    run.assert_verdict("error")
        .assert_summary_mentions("was denied")
        .assert_summary_mentions("outside the workspace")
        .assert_output_lacks(PASSWD_MARK);
    assert!(run.details().contains("every escape failed"), "{run}");
}

#[test]
fn symlink_inside_the_workspace_is_readable() {
    // Control: the guest reads through a symlink that stays inside.
    let ws = workspace();
    write(ws.path(), "inside.txt", "inside-marker\n");
    std::os::unix::fs::symlink("inside.txt", ws.path().join("link")).expect("symlink");
    let run = Kazi::eval(guests::SYMLINK_ESCAPE, ws.path()).run();
    run.assert_verdict("pass")
        .assert_summary_mentions("inside-marker");
}

#[test]
fn symlink_to_a_file_outside_the_workspace_is_not_followed() {
    let ws = workspace();
    let outside = tempfile::tempdir().expect("outside dir");
    let marker = "outside-marker-7f3a9c";
    write(outside.path(), "secret.txt", marker);
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), ws.path().join("link"))
        .expect("symlink");
    Kazi::eval(guests::SYMLINK_ESCAPE, ws.path())
        .run()
        .assert_verdict("error")
        .assert_output_lacks(marker);
}

#[test]
fn symlink_to_etc_passwd_is_not_followed() {
    let ws = workspace();
    std::os::unix::fs::symlink("/etc/passwd", ws.path().join("link")).expect("symlink");
    Kazi::eval(guests::SYMLINK_ESCAPE, ws.path())
        .run()
        .assert_verdict("error")
        .assert_output_lacks(PASSWD_MARK);
}

#[test]
fn symlink_to_a_directory_outside_the_workspace_is_not_followed() {
    let ws = workspace();
    std::os::unix::fs::symlink("/etc", ws.path().join("etc")).expect("symlink");
    Kazi::eval(guests::SYMLINK_ESCAPE, ws.path())
        .config(&json!({"path": "/workspace/etc/passwd"}))
        .run()
        .assert_verdict("error")
        .assert_output_lacks(PASSWD_MARK);
}

#[test]
fn workspace_is_read_only_by_default() {
    let ws = workspace();
    Kazi::eval(guests::WRITE_WORKSPACE, ws.path())
        .run()
        .assert_verdict("error");
    assert!(
        !ws.path().join("pwned.txt").exists(),
        "a predicate without allow-write wrote into the workspace"
    );
}

#[test]
fn workspace_is_writable_with_allow_write() {
    // Control: the same guest succeeds once the capability is granted.
    let ws = workspace();
    Kazi::eval(guests::WRITE_WORKSPACE, ws.path())
        .arg("--allow-write")
        .run()
        .assert_verdict("pass");
    let written = std::fs::read_to_string(ws.path().join("pwned.txt")).expect("pwned.txt written");
    assert!(written.contains("pwned by a predicate"), "{written:?}");
}

// ---------------------------------------------------------------------------
// Network: only the granted host:port, loopback names equivalent, refused before
// any connection otherwise.

fn http_get(ws: &TempDir, url: &str) -> Kazi {
    Kazi::eval(guests::HTTP_CLIENT, ws.path())
        .config(&json!({ "url": url }))
        .arg("--timeout")
        .arg("20s")
}

#[test]
fn http_to_the_granted_loopback_port_is_allowed() {
    let server = HttpServer::start();
    let port = server.port();
    let ws = workspace();
    let run = http_get(&ws, &format!("http://127.0.0.1:{port}/healthz"))
        .arg("--allow-net")
        .arg(format!("127.0.0.1:{port}"))
        .run();
    run.assert_verdict("pass")
        .assert_summary_mentions("status 200");
    assert_eq!(server.connections(), 1, "{run}");
    assert!(
        server.requests()[0].starts_with("GET /healthz HTTP/1.1"),
        "{:?}",
        server.requests()
    );
}

#[test]
fn http_localhost_matches_a_127_0_0_1_grant() {
    let server = HttpServer::start();
    let port = server.port();
    let ws = workspace();
    let run = http_get(&ws, &format!("http://localhost:{port}/"))
        .arg("--allow-net")
        .arg(format!("127.0.0.1:{port}"))
        .run();
    run.assert_verdict("pass")
        .assert_summary_mentions("status 200");
    assert_eq!(server.connections(), 1, "{run}");
}

#[test]
fn http_to_another_port_of_a_granted_host_is_refused_before_connecting() {
    let server = HttpServer::start();
    let other = SilentListener::bind();
    let ws = workspace();
    let run = http_get(&ws, &format!("http://127.0.0.1:{}/", other.port()))
        .arg("--allow-net")
        .arg(format!("127.0.0.1:{}", server.port()))
        .run();
    run.assert_verdict("error")
        .assert_summary_mentions("not granted");
    assert!(
        !other.was_contacted(),
        "the host connected to an ungranted port\n{run}"
    );
    assert_eq!(server.connections(), 0, "{run}");
}

#[test]
fn http_without_a_grant_is_refused_before_connecting() {
    let listener = SilentListener::bind();
    let ws = workspace();
    let run = http_get(&ws, &format!("http://127.0.0.1:{}/", listener.port())).run();
    run.assert_verdict("error")
        .assert_summary_mentions("not granted");
    assert!(
        !listener.was_contacted(),
        "the host connected without a grant\n{run}"
    );
}

#[test]
fn http_to_an_ungranted_host_is_refused() {
    // `.invalid` never resolves; the point is that the refusal names the grant,
    // not a DNS failure, so the host refused before trying.
    let server = HttpServer::start();
    let ws = workspace();
    http_get(&ws, "http://example.invalid/")
        .arg("--allow-net")
        .arg(format!("127.0.0.1:{}", server.port()))
        .run()
        .assert_verdict("error")
        .assert_summary_mentions("not granted");
    assert_eq!(server.connections(), 0);
}

// ---------------------------------------------------------------------------
// Exec: only granted programs, argv only, bounded time and output, whole process
// group killed, environment scrubbed.

fn exec(ws: &Path, config: serde_json::Value) -> Kazi {
    Kazi::eval(guests::EXEC, ws).config(&config)
}

/// A `sleep` argument unique to this test process and `tag`, to find leftovers in /proc.
fn sleep_marker(tag: u32) -> String {
    format!("299.{tag}{}", std::process::id())
}

/// Fail (after killing them) if processes matching `marker` outlive a short grace period.
fn assert_no_leftovers(marker: &str) {
    let gone = wait_until(Duration::from_secs(5), || {
        processes_matching(marker).is_empty()
    });
    let left = processes_matching(marker);
    kill_processes(&left);
    assert!(
        gone,
        "processes matching {marker:?} were left behind: pids {left:?}"
    );
}

#[test]
fn exec_of_an_ungranted_program_is_denied() {
    let ws = workspace();
    exec(
        ws.path(),
        json!({"program": "touch", "args": ["pwned-exec"]}),
    )
    .run()
    .assert_verdict("error")
    .assert_summary_mentions("not granted");
    assert!(!ws.path().join("pwned-exec").exists());
}

#[test]
fn exec_denial_is_reported_even_if_the_guest_claims_a_pass() {
    let ws = workspace();
    exec(
        ws.path(),
        json!({"program": "touch", "args": ["pwned-exec"], "ignore_errors": true}),
    )
    .run()
    .assert_verdict("error")
    .assert_summary_mentions("not granted");
    assert!(!ws.path().join("pwned-exec").exists());
}

#[test]
fn exec_by_absolute_path_is_not_covered_by_a_grant_of_another_program() {
    let ws = workspace();
    exec(
        ws.path(),
        json!({"program": "/bin/sh", "args": ["-c", "touch pwned-sh"]}),
    )
    .arg("--allow-exec")
    .arg("echo")
    .run()
    .assert_verdict("error")
    .assert_summary_mentions("not granted");
    assert!(!ws.path().join("pwned-sh").exists());
}

#[test]
fn exec_passes_shell_metacharacters_literally() {
    let ws = workspace();
    let args = [
        "hi; touch pwned",
        "$(touch pwned2)",
        "`touch pwned3`",
        "| touch pwned4",
    ];
    let run = exec(ws.path(), json!({"program": "echo", "args": args}))
        .arg("--allow-exec")
        .arg("echo")
        .run();
    run.assert_verdict("pass").assert_summary_mentions("exit=0");
    assert_eq!(
        run.details(),
        "hi; touch pwned $(touch pwned2) `touch pwned3` | touch pwned4\n",
        "{run}"
    );
    for f in ["pwned", "pwned2", "pwned3", "pwned4"] {
        assert!(
            !ws.path().join(f).exists(),
            "{f} was created: a shell ran\n{run}"
        );
    }
}

#[test]
fn exec_program_is_resolved_on_the_host_path_not_the_guests() {
    // The workspace holds an `echo` that would touch a file; the guest asks for
    // `echo` with PATH pointing at the workspace. Setting PATH needs a grant; with it,
    // the host still resolves the program on its own PATH.
    let ws = workspace();
    let fake = ws.path().join("echo");
    write(ws.path(), "echo", "#!/bin/sh\ntouch hijacked\n");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = json!({"program": "echo", "args": ["real"], "env": {"PATH": "."}});
    let refused = exec(ws.path(), config.clone())
        .arg("--allow-exec")
        .arg("echo")
        .run();
    refused
        .assert_verdict("error")
        .assert_summary_mentions("setting the variable `PATH`");
    let run = exec(ws.path(), config)
        .arg("--allow-exec")
        .arg("echo")
        .arg("--allow-env")
        .arg("PATH")
        .run();
    assert!(
        !ws.path().join("hijacked").exists(),
        "the workspace's echo ran\n{run}"
    );
    run.assert_verdict("pass");
    assert_eq!(run.details(), "real\n", "{run}");
}

#[test]
fn exec_program_environment_is_scrubbed() {
    let ws = workspace();
    let run = exec(ws.path(), json!({"program": "env"}))
        .arg("--allow-exec")
        .arg("env")
        .run();
    run.assert_verdict("pass");
    assert!(
        !run.details().contains(SECRET_NAME),
        "the exec'd program saw kazi's environment\n{run}"
    );
}

#[test]
fn exec_timeout_kills_the_whole_process_group() {
    let ws = workspace();
    let marker = sleep_marker(1);
    let script = format!("sleep {marker} & sleep {marker}");
    let run = exec(
        ws.path(),
        json!({"program": "sh", "args": ["-c", script], "timeout_ms": 1000}),
    )
    .arg("--allow-exec")
    .arg("sh")
    .arg("--timeout")
    .arg("60s")
    .run();
    assert_no_leftovers(&marker);
    run.assert_verdict("pass")
        .assert_summary_mentions("timed_out=true");
}

#[test]
fn exec_hang_is_killed_at_the_evaluation_timeout() {
    // No exec timeout from the guest: only the evaluation's own timeout ends it,
    // and epochs do not interrupt a host call, so the host must cancel the exec.
    let ws = workspace();
    let marker = sleep_marker(2);
    let script = format!("sleep {marker} & sleep {marker}");
    let run = exec(ws.path(), json!({"program": "sh", "args": ["-c", script]}))
        .arg("--allow-exec")
        .arg("sh")
        .arg("--timeout")
        .arg("3s")
        .run();
    assert_no_leftovers(&marker);
    // Either the host cut the exec at the evaluation's deadline and handed the guest
    // a timed-out result, or it ended the whole evaluation as timed out.
    if run.verdict() == "pass" {
        run.assert_verdict("pass")
            .assert_summary_mentions("timed_out=true");
    } else {
        run.assert_verdict("error")
            .assert_summary_mentions("timed out");
    }
}

#[test]
fn exec_huge_output_is_truncated() {
    let ws = workspace();
    let run = exec(
        ws.path(),
        json!({"program": "head", "args": ["-c", "100000000", "/dev/zero"]}),
    )
    .arg("--allow-exec")
    .arg("head")
    .arg("--timeout")
    .arg("120s")
    .run();
    run.assert_verdict("pass")
        .assert_summary_mentions("truncated=true");
    let summary = run.summary();
    let bytes: u64 = summary
        .split("stdout_bytes=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stdout_bytes in {summary:?}"));
    assert!(
        bytes < 100_000_000,
        "the guest got all {bytes} bytes\n{run}"
    );
    assert!(
        run.stdout.len() < 1_000_000,
        "kazi printed {} bytes",
        run.stdout.len()
    );
}

// ---------------------------------------------------------------------------
// Resource limits: time, memory, stack, output.

#[test]
fn infinite_loop_times_out() {
    let ws = workspace();
    Kazi::eval(guests::INFINITE_LOOP, ws.path())
        .arg("--timeout")
        .arg("2s")
        .run()
        .assert_verdict("error")
        .assert_summary_mentions("timed out");
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let ws = workspace();
    Kazi::eval(guests::MEMORY_BOMB, ws.path())
        .arg("--timeout")
        .arg("120s")
        .run()
        .assert_verdict("error")
        .assert_summary_mentions("memory");
}

#[test]
fn deep_recursion_traps() {
    let ws = workspace();
    Kazi::eval(guests::DEEP_RECURSION, ws.path())
        .arg("--timeout")
        .arg("60s")
        .run()
        .assert_verdict("error")
        .assert_summary_mentions_any(&["trap", "stack"]);
}

#[test]
fn stdout_flood_through_print_is_capped() {
    // `print!` panics when the capped stream refuses a write: a trap.
    let ws = workspace();
    let run = Kazi::eval(guests::STDOUT_FLOOD, ws.path())
        .config(&json!({"via": "print"}))
        .arg("--timeout")
        .arg("120s")
        .run();
    run.assert_verdict("error")
        .assert_summary_mentions("output");
    assert!(
        run.stdout.len() < 1_000_000 && run.stderr.len() < 1_000_000,
        "the guest's flood reached kazi's own output ({} + {} bytes)",
        run.stdout.len(),
        run.stderr.len()
    );
}

#[test]
fn stdout_flood_is_capped_even_when_the_guest_handles_the_write_error() {
    // The guest catches the failed write and returns its own error (which does not
    // say "output"); the host must still name the limit that stopped it.
    let ws = workspace();
    let run = Kazi::eval(guests::STDOUT_FLOOD, ws.path())
        .arg("--timeout")
        .arg("120s")
        .run();
    run.assert_verdict("error")
        .assert_summary_mentions("output");
    assert!(
        run.stdout.len() < 1_000_000 && run.stderr.len() < 1_000_000,
        "the guest's flood reached kazi's own output ({} + {} bytes)",
        run.stdout.len(),
        run.stderr.len()
    );
}

#[test]
fn stdout_flood_is_reported_even_if_the_guest_claims_a_pass() {
    let ws = workspace();
    let run = Kazi::eval(guests::STDOUT_FLOOD, ws.path())
        .config(&json!({"ignore_errors": true}))
        .arg("--timeout")
        .arg("120s")
        .run();
    run.assert_verdict("error")
        .assert_summary_mentions("output");
}

// ---------------------------------------------------------------------------
// Environment: nothing unless granted, and only what is granted.

#[test]
fn environment_is_empty_by_default() {
    let ws = workspace();
    Kazi::eval(guests::READ_ENV, ws.path())
        .config(&json!({"name": SECRET_NAME}))
        .run()
        .assert_verdict("error")
        .assert_summary_mentions("no environment visible");
}

#[test]
fn only_granted_environment_variables_are_visible() {
    let ws = workspace();
    let run = Kazi::eval(guests::READ_ENV, ws.path())
        .config(&json!({"name": SECRET_NAME}))
        .env("KAZI_TEST_VISIBLE", "shown-value")
        .arg("--allow-env")
        .arg("KAZI_TEST_VISIBLE")
        .run();
    run.assert_verdict("pass")
        .assert_summary_mentions("KAZI_TEST_VISIBLE=shown-value");
    assert!(!run.summary().contains(SECRET_NAME), "{run}");
}

// ---------------------------------------------------------------------------
// Loading: anything that is not a kazi:predicate@0.1.0 component is refused (exit 5).

#[test]
fn core_module_is_refused_at_load() {
    let ws = workspace();
    let file = ws.path().join("core.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0").expect("write core module");
    Kazi::eval(&file, ws.path()).run().assert_load_error();
}

#[test]
fn committed_core_module_fixture_is_refused_at_load() {
    let ws = workspace();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/core-module.wasm");
    Kazi::eval(&fixture, ws.path()).run().assert_load_error();
}

#[test]
fn random_bytes_are_refused_at_load() {
    let ws = workspace();
    let file = ws.path().join("random.wasm");
    // A fixed xorshift stream: arbitrary bytes, the same on every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&file, bytes).expect("write random bytes");
    Kazi::eval(&file, ws.path()).run().assert_load_error();
}

#[test]
fn truncated_component_is_refused_at_load() {
    let ws = workspace();
    let whole = std::fs::read(guests::READ_ENV).expect("read a built guest");
    let file = ws.path().join("truncated.wasm");
    std::fs::write(&file, &whole[..whole.len() / 2]).expect("write truncated component");
    Kazi::eval(&file, ws.path()).run().assert_load_error();
}

#[test]
fn missing_component_file_is_refused_at_load() {
    let ws = workspace();
    Kazi::eval(ws.path().join("nope.wasm"), ws.path())
        .run()
        .assert_load_error();
}

#[test]
fn command_component_of_the_wrong_world_is_refused_at_load() {
    let ws = workspace();
    let run = Kazi::eval(guests::WRONG_WORLD, ws.path()).run();
    run.assert_load_error();
    assert!(
        run.stderr.contains("kazi:predicate"),
        "the refusal should say which interface is missing\n{run}"
    );
    assert!(
        !run.stdout.contains("i am a command"),
        "the command ran\n{run}"
    );
}

#[test]
fn predicate_of_another_wit_version_is_refused_at_load() {
    let ws = workspace();
    let run = Kazi::eval(guests::WRONG_VERSION, ws.path()).run();
    run.assert_load_error();
    assert!(
        run.stderr.contains("kazi:predicate"),
        "the refusal should name the expected interface\n{run}"
    );
}

#[test]
fn every_guest_has_a_test() {
    // The guests are built from the directory listing; this keeps a new guest from
    // being added without a test that loads it.
    let source = include_str!("sandbox.rs");
    for (name, _) in guests::ALL {
        let konst = format!("guests::{}", name.to_uppercase().replace('-', "_"));
        assert!(
            source.contains(&konst),
            "guest {name} has no test in sandbox.rs"
        );
    }
}
