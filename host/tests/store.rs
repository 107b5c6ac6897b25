//! `kazi runs` and `kazi show`, driving the built binary against a run database
//! written through the library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kazi::run::{
    Decision, DispatchOutcome, DispatchRecord, Event, EventKind, IterationRecord, PredicateResult,
    RunStatus, Spent, State,
};
use kazi::store::{NewRun, Store};
use kazi::verdict::{Diagnostic, Outcome, Verdict};

/// 2025-11-24T16:00:00Z: old enough that `kazi runs` shows a date, not "5m ago".
const T0: i64 = 1_764_000_000_000;

/// Run `kazi` with a scrubbed environment (no `KAZI_DB`, no colour).
fn kazi(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kazi"));
    cmd.args(args).env_clear().env("NO_COLOR", "1");
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the kazi binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn verdict(outcome: Outcome, summary: &str) -> Verdict {
    Verdict {
        outcome,
        summary: summary.into(),
        details: String::new(),
        diagnostics: Vec::new(),
        score: None,
        metrics: BTreeMap::new(),
    }
}

fn result(id: &str, state: State, v: Verdict) -> PredicateResult {
    PredicateResult {
        id: id.into(),
        state,
        verdict: v,
        duration_ms: 1500,
        attempts: 1,
        quarantined: false,
    }
}

fn spent(iterations: u64, dispatches: u64) -> Spent {
    Spent {
        iterations,
        dispatches,
        tokens: 1500 * dispatches,
        cost_usd: 0.25 * dispatches as f64,
        wall_clock_ms: 60_000 * iterations,
        unknown_cost_dispatches: 0,
    }
}

/// A database with two runs: `healthz` (converged after one dispatch) and, started
/// an hour later, `lint` (still running, no iterations).
fn fixture(dir: &Path) -> (PathBuf, String, String) {
    let db = dir.join("kazi.db");
    let mut store = Store::open(&db).unwrap();
    let id = store
        .create_run(&NewRun {
            goal_id: "healthz".into(),
            goal_path: "goals/healthz.toml".into(),
            workspace: "/srv/app".into(),
            goal_sha256: "ab".repeat(32),
            goal_text: "id = \"healthz\"\n".into(),
            seal: serde_json::json!({ "goal": "ab" }),
            profile: "claude".into(),
            model: Some("claude-sonnet-4-5".into()),
            started_at_ms: T0,
        })
        .unwrap();
    let mut failing = verdict(Outcome::Fail, "1 of 42 tests failed");
    failing.details = "thread 'it_works' panicked at src/lib.rs:12".into();
    failing.diagnostics = vec![Diagnostic {
        file: Some("src/lib.rs".into()),
        line: Some(12),
        message: "assertion failed: ok".into(),
    }];
    failing.metrics.insert("tests_passed".into(), 41.0);
    let mut flaky = result("healthz", State::Unknown, verdict(Outcome::Pass, "200 OK"));
    flaky.quarantined = true;
    flaky.attempts = 3;
    store
        .record_iteration(
            &id,
            &IterationRecord {
                index: 1,
                results: vec![result("tests-pass", State::Fail, failing), flaky],
                decision: Decision::Dispatch {
                    predicates: vec!["tests-pass".into()],
                },
                events: vec![Event {
                    kind: EventKind::Quarantine,
                    predicate: Some("healthz".into()),
                    message: "passed on a re-run: quarantined as flaky".into(),
                }],
                spent: spent(1, 0),
                state: serde_json::json!({ "quarantine": ["healthz"] }),
                started_at_ms: T0,
            },
        )
        .unwrap();
    store
        .finish_dispatch(
            &id,
            None,
            1,
            &DispatchRecord {
                profile: "claude".into(),
                model: Some("claude-sonnet-4-5".into()),
                prompt_sha256: "cd".repeat(32),
                prompt_bytes: 812,
                predicates: vec!["tests-pass".into()],
                exit_code: Some(0),
                duration_ms: 63_000,
                tokens_in: Some(1200),
                tokens_out: Some(300),
                tokens_cached: None,
                cost_usd: Some(0.25),
                session_id: Some("sess-1".into()),
                outcome: DispatchOutcome::Completed,
                message: Some("Fixed the assertion in src/lib.rs.\nAll tests pass now.".into()),
                permission_denials: vec![],
                changed_files: vec!["src/lib.rs".into(), "README.md".into()],
                reverted: Vec::new(),
                diff: None,
            },
            &[Event {
                kind: EventKind::Scope,
                predicate: None,
                message: "README.md changed outside `writable`".into(),
            }],
            &spent(1, 1),
            &serde_json::Value::Null,
        )
        .unwrap();
    store
        .record_iteration(
            &id,
            &IterationRecord {
                index: 2,
                results: vec![
                    result(
                        "tests-pass",
                        State::Pass,
                        verdict(Outcome::Pass, "42 passed"),
                    ),
                    result("healthz", State::Pass, verdict(Outcome::Pass, "200 OK")),
                ],
                decision: Decision::Converged,
                events: vec![],
                spent: spent(2, 1),
                state: serde_json::json!({}),
                started_at_ms: T0 + 120_000,
            },
        )
        .unwrap();
    store
        .finish_run(
            &id,
            RunStatus::Converged,
            Some("every predicate passes"),
            &[],
            &spent(2, 1),
            &serde_json::Value::Null,
            T0 + 125_000,
        )
        .unwrap();
    let lint = store
        .create_run(&NewRun {
            goal_id: "lint".into(),
            goal_path: "goals/lint.toml".into(),
            workspace: "/srv/other".into(),
            goal_sha256: "ef".repeat(32),
            goal_text: "id = \"lint\"\n".into(),
            seal: serde_json::json!({}),
            profile: "command".into(),
            model: None,
            started_at_ms: T0 + 3_600_000,
        })
        .unwrap();
    (db, id, lint)
}

#[test]
fn runs_on_a_missing_database_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub").join("kazi.db");
    let out = kazi(&["runs", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no runs yet\n");
    assert!(!db.exists() && !db.parent().unwrap().exists());

    let out = kazi(&["runs", "--json"], &[("KAZI_DB", &db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({ "schema_version": 1, "runs": [] }));
    assert!(!db.exists());
}

#[test]
fn runs_lists_newest_first_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (db, healthz, lint) = fixture(dir.path());
    // `KAZI_DB` names the database when `--db` is absent.
    let out = kazi(&["runs"], &[("KAZI_DB", &db)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let expected = format!(
        "\
ID                     GOAL     STATUS     ITER  DISP  COST   STARTED     WORKSPACE
{lint}  lint     running    0     0     $0.00  2025-11-24  /srv/other
{healthz}  healthz  converged  2     1     $0.25  2025-11-24  /srv/app
"
    );
    assert_eq!(stdout(&out), expected);

    let out = kazi(&["runs", "--limit", "1", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(stdout(&out).lines().count(), 2);
    assert!(stdout(&out).contains(&lint));
}

#[test]
fn runs_json_is_one_versioned_object() {
    let dir = tempfile::tempdir().unwrap();
    let (db, healthz, lint) = fixture(dir.path());
    let out = kazi(&["runs", "--json", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], lint.as_str());
    assert_eq!(runs[1]["id"], healthz.as_str());
    assert_eq!(runs[1]["goal_id"], "healthz");
    assert_eq!(runs[1]["status"], "converged");
    assert_eq!(runs[1]["reason"], "every predicate passes");
    assert_eq!(runs[1]["iterations"], 2);
    assert_eq!(runs[1]["budget_spent"]["dispatches"], 1);
    assert_eq!(runs[1]["budget_spent"]["cost_usd"], 0.25);
    assert_eq!(runs[1]["started_at_ms"], T0);
    assert_eq!(runs[1]["finished_at_ms"], T0 + 125_000);
    assert_eq!(runs[0]["finished_at_ms"], serde_json::Value::Null);
}

#[test]
fn runs_refuses_a_zero_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kazi.db");
    let out = kazi(&["runs", "--limit", "0", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--limit must be at least 1"));
}

#[test]
fn show_prints_the_header_history_dispatches_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id, _) = fixture(dir.path());
    // A unique prefix is enough (the two runs differ in the hour).
    let out = kazi(&["show", &id[..12], "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = format!(
        "\
run        {id}
goal       healthz (goals/healthz.toml)
workspace  /srv/app
agent      claude (model claude-sonnet-4-5)
status     converged: every predicate passes
started    2025-11-24T16:00:00Z, finished 2025-11-24T16:02:05Z after 2m 5s
spent      2 iterations, 1 dispatch, 1500 tokens, $0.25, 2m of wall clock

ITER  DECISION   tests-pass  healthz
1     dispatch   fail        unknown*
2     converged  pass        pass
(* quarantined as flaky)
last decision: converged

dispatches:
ITER  PROFILE  OUTCOME    EXIT  DURATION  TOKENS in/out/cached  COST   MESSAGE
1     claude   completed  0     1m 3s     1200/300/-            $0.25  Fixed the assertion in src/lib.rs.…
  iteration 1: kept src/lib.rs, README.md

events:
ITER  KIND        PREDICATE  MESSAGE
1     quarantine  healthz    passed on a re-run: quarantined as flaky
1     scope       -          README.md changed outside `writable`
"
    );
    assert_eq!(stdout(&out), expected);
}

#[test]
fn show_iteration_prints_the_full_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id, _) = fixture(dir.path());
    let out = kazi(
        &[
            "show",
            &id,
            "--iteration",
            "1",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let evidence = "\
iteration 1, started 2025-11-24T16:00:00Z
decision   dispatch: tests-pass
spent      1 iteration, 0 dispatches, 0 tokens, $0.00, 1m of wall clock

FAIL  tests-pass: 1 of 42 tests failed
      src/lib.rs:12: assertion failed: ok
      metrics: tests_passed=41
      thread 'it_works' panicked at src/lib.rs:12
      (state fail, 1 attempt, 1s)
PASS  healthz: 200 OK
      (state unknown, quarantined as flaky, 3 attempts, 1s)
";
    assert!(text.contains(evidence), "{text}");
    assert!(text.contains("dispatches:\nITER  PROFILE"), "{text}");
    // Iteration 2's verdicts are not shown.
    assert!(!text.contains("42 passed"), "{text}");
}

#[test]
fn show_json_is_one_versioned_object_with_full_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id, _) = fixture(dir.path());
    let out = kazi(&["show", &id, "--json", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["run"]["id"], id.as_str());
    assert_eq!(v["run"]["status"], "converged");
    assert_eq!(v["run"]["profile"], "claude");
    assert_eq!(v["run"]["goal_text"], "id = \"healthz\"\n");
    let its = v["iterations"].as_array().unwrap();
    assert_eq!(its.len(), 2);
    assert_eq!(its[0]["decision"]["kind"], "dispatch");
    assert_eq!(its[0]["decision"]["predicates"][0], "tests-pass");
    let p = &its[0]["predicates"][0];
    assert_eq!(p["id"], "tests-pass");
    assert_eq!(p["state"], "fail");
    assert_eq!(p["verdict"], "fail");
    assert_eq!(p["diagnostics"][0]["line"], 12);
    assert_eq!(p["metrics"]["tests_passed"], 41.0);
    assert_eq!(its[0]["predicates"][1]["quarantined"], true);
    assert_eq!(v["dispatches"][0]["iteration"], 1);
    assert_eq!(v["dispatches"][0]["tokens_cached"], serde_json::Value::Null);
    assert_eq!(v["dispatches"][0]["changed_files"][1], "README.md");
    assert_eq!(v["events"].as_array().unwrap().len(), 2);

    let out = kazi(
        &[
            "show",
            &id,
            "--json",
            "-i",
            "2",
            "--db",
            db.to_str().unwrap(),
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["iterations"].as_array().unwrap().len(), 1);
    assert_eq!(v["iterations"][0]["index"], 2);
    assert_eq!(v["dispatches"], serde_json::json!([]));
    assert_eq!(v["events"], serde_json::json!([]));
}

#[test]
fn show_of_an_unknown_run_names_it_and_points_at_kazi_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = fixture(dir.path());
    let out = kazi(&["show", "r1999", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        format!(
            "error: no run `r1999` in {}; hint: `kazi runs` lists the runs\n",
            db.display()
        )
    );

    // No database at all: the same message, and still no file.
    let missing = dir.path().join("none.db");
    let out = kazi(&["show", "r1", "--db", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("hint: `kazi runs` lists the runs"));
    assert!(!missing.exists());
}

#[test]
fn show_of_an_ambiguous_prefix_lists_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let (db, a, b) = fixture(dir.path());
    let out = kazi(&["show", "r2025", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&a) && err.contains(&b), "{err}");
    assert!(err.contains("hint: give more of the id"), "{err}");
}

#[test]
fn show_of_a_missing_iteration_says_which_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (db, id, lint) = fixture(dir.path());
    let out = kazi(&["show", &id, "-i", "9", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no iteration 9: it has iterations 1 to 2"),
        "{}",
        stderr(&out)
    );

    let out = kazi(&["show", &lint, "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("agent      command\n"));
    assert!(stdout(&out).contains("\nno iterations recorded yet\n"));
}

#[test]
fn a_database_from_a_newer_kazi_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = fixture(dir.path());
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
    }
    let out = kazi(&["runs", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("schema version 999"), "{err}");
    assert!(err.contains("hint: upgrade kazi"), "{err}");
}
