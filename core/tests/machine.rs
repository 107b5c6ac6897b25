//! The loop's rules, tested by feeding inputs to `Reconciler::step` and reading the
//! effects: table tests for each rule, and property tests over random histories
//! (with crashes and resumes) for the invariants. No wasmtime, no binary, no clock.

use std::collections::BTreeMap;
use std::time::Duration;

use kazi_core::machine::{
    Clock, DispatchRow, Effect, Evaluation, Input, LoopState, Reconciler, Record, RunOutcome,
    Unfinished,
};
use kazi_core::plan::{Budget, Deploy, Plan, PredicatePlan, Ratchet, RatchetDirection};
use kazi_core::record::{
    Cause, Decision, DispatchOutcome, DispatchRecord, EventKind, RunStatus, Spent, State,
};
use kazi_core::scope::{Prepared, Revert};
use kazi_core::verdict::{Outcome, Verdict};

// ---------------------------------------------------------------------------------
// Helpers

fn plan(ids: &[&str]) -> Plan {
    Plan {
        brief: kazi_core::plan::Brief {
            id: "g".into(),
            title: "the goal".into(),
            ..Default::default()
        },
        predicates: ids
            .iter()
            .map(|id| PredicatePlan {
                id: (*id).into(),
                skips_fail: true,
                ..Default::default()
            })
            .collect(),
        agent_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

fn verdict(outcome: Outcome, summary: &str) -> Verdict {
    let mut v = Verdict::error(summary);
    v.outcome = outcome;
    v
}

fn eval(id: &str, outcome: Outcome, summary: &str) -> Evaluation {
    Evaluation {
        id: id.into(),
        verdict: verdict(outcome, summary),
        duration_ms: 1,
    }
}

fn pass(id: &str) -> Evaluation {
    eval(id, Outcome::Pass, "ok")
}

fn fail(id: &str, summary: &str) -> Evaluation {
    eval(id, Outcome::Fail, summary)
}

fn with_metrics(mut e: Evaluation, metrics: &[(&str, f64)]) -> Evaluation {
    e.verdict.metrics = metrics.iter().map(|(k, v)| ((*k).into(), *v)).collect();
    e
}

fn completed(cost: f64) -> DispatchRecord {
    let mut r = DispatchRecord::new("command", None, "p", &["a".into()]);
    r.outcome = DispatchOutcome::Completed;
    r.cost_usd = Some(cost);
    r.tokens_in = Some(10);
    r.tokens_out = Some(5);
    r.exit_code = Some(0);
    r.changed_files = vec!["src/x".into()];
    r
}

fn failed(message: &str) -> DispatchRecord {
    let mut r = DispatchRecord::new("command", None, "p", &["a".into()]);
    r.outcome = DispatchOutcome::Failed;
    r.exit_code = Some(1);
    r.message = Some(message.into());
    r
}

/// Drives a reconciler and keeps every effect it produced.
struct Run {
    r: Reconciler,
    t: u64,
    all: Vec<Effect>,
}

impl Run {
    fn new(plan: Plan) -> Self {
        Self {
            r: Reconciler::new(plan),
            t: 0,
            all: Vec::new(),
        }
    }

    fn step(&mut self, input: Input) -> Vec<Effect> {
        self.t += 10;
        let out = self.r.step(
            Clock {
                elapsed_ms: self.t,
                epoch_ms: 1_700_000_000_000 + self.t as i64,
            },
            input,
        );
        self.all.extend(out.clone());
        out
    }

    fn start(&mut self) -> Vec<Effect> {
        let out = self.step(Input::Start {
            unfinished: Vec::new(),
        });
        assert_eq!(out, vec![Effect::Prepare]);
        self.step(Input::Prepared(Prepared::default()))
    }

    /// Answer observations with `evals` until the machine stops observing.
    fn observe(&mut self, evals: &[Evaluation]) -> Vec<Effect> {
        let mut out = self.step(Input::Observed(evals.to_vec()));
        while let Some(Effect::Observe { predicates, .. }) = out.first() {
            let again: Vec<Evaluation> = evals
                .iter()
                .filter(|e| predicates.contains(&e.id))
                .cloned()
                .collect();
            out = self.step(Input::Observed(again));
        }
        out
    }

    fn observe_count(&self) -> usize {
        self.all
            .iter()
            .filter(|e| matches!(e, Effect::Observe { .. }))
            .count()
    }
}

fn outcome(effects: &[Effect]) -> Option<&RunOutcome> {
    effects.iter().find_map(|e| match e {
        Effect::Finish(o) => Some(o),
        _ => None,
    })
}

fn decision(effects: &[Effect]) -> Option<&Decision> {
    effects.iter().find_map(|e| match e {
        Effect::Persist(Record::Iteration(it)) => Some(&it.decision),
        _ => None,
    })
}

fn iteration_events(effects: &[Effect]) -> Vec<(EventKind, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(Record::Iteration(it)) => Some(it.events.clone()),
            _ => None,
        })
        .flatten()
        .map(|e| (e.kind, e.message))
        .collect()
}

fn prompt(effects: &[Effect]) -> Option<&str> {
    effects.iter().find_map(|e| match e {
        Effect::Dispatch { prompt, .. } => Some(prompt.as_str()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------
// Table tests, one rule each

#[test]
fn a_failure_is_re_run_dispatched_and_a_pass_converges() {
    let mut run = Run::new(plan(&["a"]));
    assert_eq!(
        run.start(),
        vec![Effect::Observe {
            predicates: vec!["a".into()],
            attempt: 1
        }]
    );
    // A new failure is re-run twice before it is believed.
    let out = run.observe(&[fail("a", "1 failed")]);
    assert_eq!(run.observe_count(), 3);
    assert_eq!(
        decision(&out),
        Some(&Decision::Dispatch {
            predicates: vec!["a".into()]
        })
    );
    // Persist the iteration, then the dispatch (write-ahead), then dispatch.
    assert!(matches!(out[0], Effect::Persist(Record::Iteration(_))));
    assert!(matches!(
        &out[1],
        Effect::Persist(Record::DispatchStarted { spent, .. }) if spent.dispatches == 1
    ));
    assert!(matches!(out[2], Effect::Dispatch { .. }));
    assert!(
        prompt(&out)
            .unwrap()
            .contains("## a\nResult: fail — 1 failed")
    );

    let out = run.step(Input::Dispatched(completed(0.5)));
    assert!(matches!(
        &out[0],
        Effect::Persist(Record::DispatchFinished { row: DispatchRow::Current, spent, .. })
            if spent.cost_usd == 0.5 && spent.tokens == 15
    ));
    assert_eq!(out[1], Effect::Prepare);
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("a")]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Converged);
    assert_eq!(o.spent.iterations, 2);
    assert_eq!(o.spent.dispatches, 1);
    assert!(run.r.is_done());
    assert!(run.step(Input::Slept).is_empty(), "nothing after the end");
}

#[test]
fn a_failure_identical_to_the_last_one_is_believed_without_re_running() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.observe(&[fail("a", "1 failed in 0.5s")]);
    assert_eq!(run.observe_count(), 3);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    // Same failure (only the duration differs): one evaluation.
    let out = run.observe(&[fail("a", "1 failed in 0.7s")]);
    assert_eq!(run.observe_count(), 4);
    assert!(matches!(decision(&out), Some(Decision::Dispatch { .. })));
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    // A different failure is new again: re-run.
    run.observe(&[fail("a", "2 failed")]);
    assert_eq!(run.observe_count(), 7);
}

#[test]
fn a_pass_on_a_re_run_quarantines_until_three_passes_in_a_row() {
    let mut run = Run::new(plan(&["a", "b"]));
    run.start();
    let out = run.step(Input::Observed(vec![fail("a", "flaky"), fail("b", "real")]));
    assert!(matches!(&out[0], Effect::Observe { attempt: 2, .. }));
    let out = run.step(Input::Observed(vec![pass("a"), fail("b", "real")]));
    // a passed: no third attempt for it; b is re-run once more.
    assert_eq!(
        out,
        vec![Effect::Observe {
            predicates: vec!["b".into()],
            attempt: 3
        }]
    );
    let out = run.step(Input::Observed(vec![fail("b", "real")]));
    let it = match &out[0] {
        Effect::Persist(Record::Iteration(it)) => it,
        e => panic!("{e:?}"),
    };
    assert_eq!(it.results[0].state, State::Unknown);
    assert!(it.results[0].quarantined);
    assert_eq!(it.results[0].attempts, 2);
    assert_eq!(it.results[1].state, State::Fail);
    assert_eq!(it.results[1].attempts, 3);
    assert!(
        iteration_events(&out)
            .iter()
            .any(|(k, _)| *k == EventKind::Quarantine)
    );
    // The agent is told only about b.
    assert_eq!(
        it.decision,
        Decision::Dispatch {
            predicates: vec!["b".into()]
        }
    );
}

#[test]
fn quarantined_predicates_block_convergence_and_are_waited_for() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.step(Input::Observed(vec![fail("a", "x")]));
    let out = run.step(Input::Observed(vec![pass("a")]));
    assert!(matches!(decision(&out), Some(Decision::Wait { .. })));
    assert_eq!(
        out.last(),
        Some(&Effect::Sleep(kazi_core::machine::WAIT_INTERVAL))
    );
    for round in 1..=3 {
        assert_eq!(run.step(Input::Slept), vec![Effect::Prepare]);
        run.step(Input::Prepared(Prepared::default()));
        let out = run.observe(&[pass("a")]);
        if round < 3 {
            assert!(
                matches!(decision(&out), Some(Decision::Wait { .. })),
                "{out:?}"
            );
        } else {
            assert_eq!(outcome(&out).unwrap().status, RunStatus::Converged);
            assert!(
                iteration_events(&out)
                    .iter()
                    .any(|(k, _)| *k == EventKind::Rehabilitated)
            );
        }
    }
}

#[test]
fn a_goal_that_all_passes_at_the_start_is_vacuous_and_invalid() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    let out = run.observe(&[pass("a")]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Invalid);
    assert_eq!(o.cause, Some(Cause::Vacuous));
    assert!(o.reason.as_deref().unwrap().contains("vacuous"));
}

#[test]
fn a_standing_goal_keeps_watching_after_it_converges() {
    let mut p = plan(&["a"]);
    p.standing = Some(Duration::from_secs(30));
    p.budget.max_iterations = Some(3);
    let mut run = Run::new(p);
    run.start();
    let out = run.observe(&[pass("a")]);
    assert_eq!(out.last(), Some(&Effect::Sleep(Duration::from_secs(30))));
    run.step(Input::Slept);
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("a")]);
    assert_eq!(out.last(), Some(&Effect::Sleep(Duration::from_secs(30))));
    run.step(Input::Slept);
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("a")]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Converged);
    assert!(
        o.reason
            .as_deref()
            .unwrap()
            .contains("standing watch stopped")
    );
}

#[test]
fn a_ratchet_that_falls_fails_the_predicate() {
    let mut p = plan(&["t"]);
    p.predicates[0].ratchets = vec![
        Ratchet {
            metric: "tests_passed".into(),
            direction: RatchetDirection::NoDecrease,
            baseline: None,
        },
        Ratchet {
            metric: "tests_total".into(),
            direction: RatchetDirection::NoDecrease,
            baseline: None,
        },
    ];
    let mut run = Run::new(p);
    run.start();
    run.observe(&[with_metrics(
        fail("t", "1 failed"),
        &[("tests_passed", 9.0), ("tests_total", 10.0)],
    )]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    // The agent deleted the failing test: everything passes, but the total fell.
    let out = run.observe(&[with_metrics(
        pass("t"),
        &[("tests_passed", 9.0), ("tests_total", 9.0)],
    )]);
    assert!(
        matches!(decision(&out), Some(Decision::Dispatch { .. })),
        "{out:?}"
    );
    let evs = iteration_events(&out);
    assert!(
        evs.iter().any(|(k, m)| *k == EventKind::Ratchet
            && m.contains("tests_total fell to 9 from the best 10")),
        "{evs:?}"
    );
    assert!(prompt(&out).unwrap().contains("ratchet: tests_total fell"));
}

#[test]
fn a_ratchet_on_a_passing_predicate_that_reports_no_metric_is_an_error() {
    let mut p = plan(&["t"]);
    p.predicates[0].ratchets = vec![Ratchet {
        metric: "tests_passed".into(),
        direction: RatchetDirection::NoDecrease,
        baseline: None,
    }];
    let mut run = Run::new(p);
    run.start();
    let out = run.observe(&[pass("t")]);
    // error at the first observation: a predicate that cannot be evaluated.
    let o = outcome(&out).unwrap();
    assert_eq!(o.cause, Some(Cause::PredicateError));
    assert!(
        o.last[0]
            .verdict
            .summary
            .contains("did not report the metric")
    );
}

#[test]
fn newly_skipped_tests_are_not_passes() {
    let mut run = Run::new(plan(&["t"]));
    run.start();
    run.observe(&[with_metrics(
        fail("t", "1 failed"),
        &[("tests_passed", 9.0), ("tests_ignored", 1.0)],
    )]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    // The agent marked the failing test skipped: 9 passed, 2 ignored.
    let out = run.observe(&[with_metrics(
        pass("t"),
        &[("tests_passed", 9.0), ("tests_ignored", 2.0)],
    )]);
    assert!(
        matches!(decision(&out), Some(Decision::Dispatch { .. })),
        "{out:?}"
    );
    let evs = iteration_events(&out);
    assert!(
        evs.iter().any(|(k, m)| *k == EventKind::Skip
            && m.contains("1 more test ignored than at the start of the run (1 → 2)")),
        "{evs:?}"
    );
    // Deselected counts too, and the opt-out turns it off.
    let mut p = plan(&["t"]);
    p.predicates[0].skips_fail = false;
    let mut run = Run::new(p);
    run.start();
    run.observe(&[with_metrics(fail("t", "x"), &[("tests_deselected", 0.0)])]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[with_metrics(pass("t"), &[("tests_deselected", 1.0)])]);
    assert_eq!(outcome(&out).unwrap().status, RunStatus::Converged);
}

#[test]
fn a_focused_result_can_fail_but_never_pass() {
    let mut run = Run::new(plan(&["t"]));
    run.start();
    run.observe(&[fail("t", "1 failed")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[with_metrics(pass("t"), &[("focused", 1.0)])]);
    assert_ne!(
        outcome(&out).map(|o| o.status),
        Some(RunStatus::Converged),
        "{out:?}"
    );
}

#[test]
fn the_budget_stops_the_run_after_one_more_observation() {
    let mut p = plan(&["a"]);
    p.budget.max_dispatches = Some(1);
    let mut run = Run::new(p);
    run.start();
    run.observe(&[fail("a", "x")]);
    let out = run.step(Input::Dispatched(completed(1.0)));
    assert_eq!(
        out.last(),
        Some(&Effect::Prepare),
        "observe once more first"
    );
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[fail("a", "x")]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::OverBudget);
    assert!(o.reason.as_deref().unwrap().contains("max_dispatches"));
}

#[test]
fn the_dispatch_timeout_never_exceeds_the_wall_clock_left() {
    let mut p = plan(&["a"]);
    p.budget.max_wall_clock = Some(Duration::from_secs(5));
    let mut run = Run::new(p);
    run.start();
    let out = run.observe(&[fail("a", "x")]);
    let timeout = out
        .iter()
        .find_map(|e| match e {
            Effect::Dispatch { timeout, .. } => Some(*timeout),
            _ => None,
        })
        .unwrap();
    assert!(timeout <= Duration::from_secs(5), "{timeout:?}");
}

#[test]
fn the_same_agent_failure_twice_is_stuck_with_its_message() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.observe(&[fail("a", "x")]);
    let out = run.step(Input::Dispatched(failed("not logged in")));
    assert_eq!(out.last(), Some(&Effect::Prepare));
    run.step(Input::Prepared(Prepared::default()));
    run.observe(&[fail("a", "x")]);
    let out = run.step(Input::Dispatched(failed("not logged in")));
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Stuck);
    assert_eq!(o.cause, Some(Cause::AgentError));
    assert!(o.reason.as_deref().unwrap().contains("not logged in"));
}

#[test]
fn a_timeout_that_left_changes_is_not_an_agent_failure() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    for _ in 0..2 {
        run.observe(&[fail("a", "x")]);
        let mut r = completed(0.0);
        r.outcome = DispatchOutcome::TimedOut;
        let out = run.step(Input::Dispatched(r));
        assert_eq!(out.last(), Some(&Effect::Prepare));
        run.step(Input::Prepared(Prepared::default()));
    }
}

#[test]
fn an_exit_0_with_every_tool_call_denied_is_a_permission_failure() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.observe(&[fail("a", "x")]);
    let mut r = completed(0.0);
    r.changed_files.clear();
    r.permission_denials = vec!["Write(src/x)".into()];
    let out = run.step(Input::Dispatched(r));
    match &out[0] {
        Effect::Persist(Record::DispatchFinished { record, events, .. }) => {
            assert_eq!(record.outcome, DispatchOutcome::PermissionDenied);
            assert!(events.iter().any(|e| e.kind == EventKind::AgentError));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_broken_seal_ends_the_run_as_tampered_after_one_observation_for_the_report() {
    let mut run = Run::new(plan(&["a", "b"]));
    run.start();
    run.observe(&[fail("a", "x"), pass("b")]);
    run.step(Input::Dispatched(completed(0.0)));
    let out = run.step(Input::Prepared(Prepared {
        tamper: vec!["the goal file changed".into()],
        reverted: Vec::new(),
    }));
    // Every predicate once, so the report says what they see now.
    assert!(outcome(&out).is_none());
    assert!(out.iter().any(|e| matches!(
        e,
        Effect::Observe { predicates, attempt: 1 } if predicates.len() == 2
    )));
    // Even an all-pass observation is not a convergence, and a failure is not re-run.
    let out = run.step(Input::Observed(vec![pass("a"), fail("b", "y")]));
    assert!(!out.iter().any(|e| matches!(e, Effect::Observe { .. })));
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Tampered);
    let states: Vec<_> = o.last.iter().map(|r| (r.id.as_str(), r.state)).collect();
    assert_eq!(states, [("a", State::Pass), ("b", State::Fail)]);
    assert_eq!(
        decision(&out),
        Some(&Decision::Tampered {
            reason: "the goal file changed; a tampered run can never converge".into()
        })
    );
    assert!(
        iteration_events(&out)
            .iter()
            .any(|(k, _)| *k == EventKind::Tamper)
    );
}

#[test]
fn reverted_changes_are_recorded_told_and_repeated_gaming_is_tampering() {
    let mut p = plan(&["a"]);
    p.isolated = true;
    let mut run = Run::new(p);
    run.start();
    run.observe(&[fail("a", "x")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared {
        tamper: Vec::new(),
        reverted: vec![
            Revert::outside_writable("conftest.py"),
            Revert::protected("tests/test_x.py"),
        ],
    }));
    let out = run.observe(&[fail("a", "x")]);
    let evs = iteration_events(&out);
    assert!(evs.iter().any(|(k, m)| *k == EventKind::Scope
        && m == "your change to conftest.py was reverted: it is outside `writable`"));
    assert!(evs.iter().any(|(k, _)| *k == EventKind::Gaming));
    let text = prompt(&out).unwrap();
    assert!(
        text.contains("your change to tests/test_x.py was reverted: it is protected"),
        "{text}"
    );
    run.step(Input::Dispatched(completed(0.0)));
    let out = run.step(Input::Prepared(Prepared {
        tamper: Vec::new(),
        reverted: vec![Revert::goal_file("kazi.toml")],
    }));
    assert!(
        outcome(&out).is_none(),
        "one observation for the report first"
    );
    let out = run.observe(&[pass("a")]);
    assert_eq!(outcome(&out).unwrap().status, RunStatus::Tampered);
}

#[test]
fn in_place_scope_is_reported_after_the_dispatch() {
    let mut p = plan(&["a"]);
    p.brief.writable = vec!["src/".into()];
    p.brief.protected = vec!["tests/".into()];
    let mut run = Run::new(p);
    run.start();
    run.observe(&[fail("a", "x")]);
    let mut r = completed(0.0);
    r.changed_files = vec!["src/a".into(), "conftest.py".into(), "tests/t.py".into()];
    let out = run.step(Input::Dispatched(r));
    match &out[0] {
        Effect::Persist(Record::DispatchFinished { events, .. }) => {
            assert!(
                events
                    .iter()
                    .any(|e| e.kind == EventKind::Scope && e.message.contains("conftest.py"))
            );
            assert!(
                events
                    .iter()
                    .any(|e| e.kind == EventKind::Gaming && e.message.contains("tests/t.py"))
            );
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn an_interrupt_during_a_dispatch_records_it_and_ends_interrupted() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.observe(&[fail("a", "x")]);
    let mut partial = completed(0.25);
    partial.message = Some("the agent's last words".into());
    let out = run.step(Input::Interrupted {
        signal: "SIGTERM".into(),
        dispatch: Some(partial),
    });
    match &out[0] {
        Effect::Persist(Record::DispatchFinished { record, spent, .. }) => {
            assert_eq!(record.outcome, DispatchOutcome::Interrupted);
            assert_eq!(record.message.as_deref(), Some("the agent's last words"));
            assert_eq!(spent.cost_usd, 0.25);
        }
        e => panic!("{e:?}"),
    }
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Interrupted);
    assert_eq!(o.reason.as_deref(), Some("interrupted by SIGTERM"));
}

#[test]
fn an_interrupted_observation_does_not_count_toward_stuck() {
    // Two believed failures, then an interrupt while observing, then a resume: the
    // third believed failure is the one that makes the run stuck, not the interrupt.
    let mut run = Run::new(plan(&["a"]));
    run.start();
    run.observe(&[fail("a", "x")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    run.observe(&[fail("a", "x")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    let out = run.step(Input::Interrupted {
        signal: "SIGINT".into(),
        dispatch: None,
    });
    assert_eq!(outcome(&out).unwrap().status, RunStatus::Interrupted);
    let state: LoopState = last_state(&run.all);
    assert_eq!(state.streak.count, 2);
    let spent = run.r.spent();
    let mut resumed = Reconciler::resume(plan(&["a"]), state, spent, run.r.iteration());
    resumed.step(Clock::default(), Input::Start { unfinished: vec![] });
    resumed.step(Clock::default(), Input::Prepared(Prepared::default()));
    let out = resumed.step(Clock::default(), Input::Observed(vec![fail("a", "x")]));
    let o = outcome(&out).unwrap();
    assert_eq!(o.cause, Some(Cause::NoProgress), "{out:?}");
}

fn last_state(effects: &[Effect]) -> LoopState {
    let v = effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Persist(Record::Iteration(it)) => Some(it.state.clone()),
            Effect::Persist(Record::DispatchStarted { state, .. })
            | Effect::Persist(Record::DispatchFinished { state, .. })
            | Effect::Persist(Record::Finished { state, .. }) => Some(state.clone()),
            _ => None,
        })
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// Answer `Observe` effects with `evals` until the reconciler asks for something else.
fn observe_all(r: &mut Reconciler, evals: &[Evaluation]) -> Vec<Effect> {
    let mut out = r.step(Clock::default(), Input::Observed(evals.to_vec()));
    while let Some(Effect::Observe { predicates, .. }) = out.first() {
        let again = evals
            .iter()
            .filter(|e| predicates.contains(&e.id))
            .cloned()
            .collect();
        out = r.step(Clock::default(), Input::Observed(again));
    }
    out
}

#[test]
fn a_resumed_run_settles_unfinished_dispatches_conservatively() {
    let mut p = plan(&["a"]);
    p.budget.max_cost_usd = Some(2.5);
    let state = LoopState {
        max_dispatch_cost: 1.0,
        ..LoopState::default()
    };
    let spent = Spent {
        iterations: 2,
        dispatches: 2,
        cost_usd: 1.0,
        ..Spent::default()
    };
    let mut r = Reconciler::resume(p, state, spent, 2);
    let unfinished = Unfinished {
        row: 7,
        iteration: 2,
        what_happened: "its process group 4242 was still running and was killed".into(),
        record: DispatchRecord::new("command", None, "prompt", &["a".into()]),
    };
    let out = r.step(
        Clock::default(),
        Input::Start {
            unfinished: vec![unfinished],
        },
    );
    match &out[0] {
        Effect::Persist(Record::DispatchFinished {
            row, record, spent, ..
        }) => {
            assert_eq!(*row, DispatchRow::Row(7));
            assert_eq!(record.outcome, DispatchOutcome::Interrupted);
            assert!(record.message.as_deref().unwrap().contains("was killed"));
            assert_eq!(spent.unknown_cost_dispatches, 1);
            assert_eq!(spent.dispatches, 2, "already counted when it started");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(out[1], Effect::Prepare);
    r.step(Clock::default(), Input::Prepared(Prepared::default()));
    // $1 spent + $1 counted for the unknown one = $2 < $2.50: one more dispatch…
    let out = observe_all(&mut r, &[fail("a", "x")]);
    assert!(
        matches!(decision(&out), Some(Decision::Dispatch { .. })),
        "{out:?}"
    );
    r.step(Clock::default(), Input::Dispatched(completed(0.6)));
    r.step(Clock::default(), Input::Prepared(Prepared::default()));
    // …then $1.60 + $1.00 ≥ $2.50: over budget.
    let out = observe_all(&mut r, &[fail("a", "x")]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::OverBudget, "{out:?}");
    assert!(o.reason.as_deref().unwrap().contains("unknown cost"));
}

#[test]
fn deploy_runs_when_code_passes_and_live_predicates_are_polled() {
    let mut p = plan(&["code", "live"]);
    p.predicates[1].live = true;
    p.deploy = Some(Deploy {
        run: vec!["./deploy.sh".into()],
        timeout: Duration::from_secs(9),
    });
    let mut run = Run::new(p);
    run.start();
    let out = run.observe(&[pass("code"), eval("live", Outcome::Error, "refused")]);
    assert_eq!(decision(&out), Some(&Decision::Deploy));
    assert_eq!(
        out.last(),
        Some(&Effect::Deploy {
            run: vec!["./deploy.sh".into()],
            timeout: Duration::from_secs(9)
        })
    );
    assert_eq!(
        run.step(Input::Deployed(Ok("`./deploy.sh` succeeded".into()))),
        vec![Effect::Prepare]
    );
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("code"), eval("live", Outcome::Error, "refused")]);
    assert!(matches!(decision(&out), Some(Decision::Wait { .. })));
    assert!(
        iteration_events(&out)
            .iter()
            .any(|(k, _)| *k == EventKind::Deploy)
    );
    run.step(Input::Slept);
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("code"), pass("live")]);
    assert_eq!(outcome(&out).unwrap().status, RunStatus::Converged);
}

#[test]
fn a_failed_deploy_is_stuck() {
    let mut p = plan(&["code", "live"]);
    p.predicates[1].live = true;
    p.deploy = Some(Deploy {
        run: vec!["./deploy.sh".into()],
        timeout: Duration::from_secs(9),
    });
    let mut run = Run::new(p);
    run.start();
    run.observe(&[pass("code"), fail("live", "down")]);
    let out = run.step(Input::Deployed(Err("exit 3".into())));
    let o = outcome(&out).unwrap();
    assert_eq!(o.cause, Some(Cause::DeployFailed));
}

#[test]
fn convergence_lands_and_a_landing_failure_keeps_it_converged() {
    let mut p = plan(&["a"]);
    p.land = true;
    let mut run = Run::new(p);
    run.start();
    run.observe(&[fail("a", "x")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[pass("a")]);
    match out.last() {
        Some(Effect::Land { results }) => {
            assert_eq!(results.len(), 1);
            assert_eq!(results[0].state, State::Pass);
        }
        e => panic!("{e:?}"),
    }
    let out = run.step(Input::Landed(Err("the branch exists".into())));
    let o = outcome(&out).unwrap();
    assert_eq!(o.status, RunStatus::Converged);
    assert!(
        o.events
            .iter()
            .any(|e| e.kind == EventKind::Land && e.message.contains("landing failed"))
    );
}

#[test]
fn a_missing_tool_stops_before_any_dispatch() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    let out = run.observe(&[with_metrics(
        eval("a", Outcome::Error, "missing tool: No module named pytest"),
        &[("missing_tool", 1.0)],
    )]);
    let o = outcome(&out).unwrap();
    assert_eq!(o.cause, Some(Cause::MissingTool));
    assert!(!run.all.iter().any(|e| matches!(e, Effect::Dispatch { .. })));
}

#[test]
fn regressions_are_attributed_to_the_dispatch_in_between() {
    let mut run = Run::new(plan(&["a", "b"]));
    run.start();
    run.observe(&[pass("a"), fail("b", "x")]);
    run.step(Input::Dispatched(completed(0.0)));
    run.step(Input::Prepared(Prepared::default()));
    let out = run.observe(&[fail("a", "broke"), pass("b")]);
    let evs = iteration_events(&out);
    assert!(
        evs.iter().any(|(k, m)| *k == EventKind::Regression
            && m == "\"a\" passed before and is now fail, after the dispatch of iteration 1"),
        "{evs:?}"
    );
}

#[test]
fn an_input_out_of_order_ends_the_run_as_an_internal_error() {
    let mut run = Run::new(plan(&["a"]));
    let out = run.step(Input::Slept);
    assert_eq!(outcome(&out).unwrap().status, RunStatus::Error);
}

#[test]
fn three_identical_believed_failures_are_stuck() {
    let mut run = Run::new(plan(&["a"]));
    run.start();
    let mut out = Vec::new();
    for _ in 0..3 {
        out = run.observe(&[fail("a", "x")]);
        if outcome(&out).is_some() {
            break;
        }
        run.step(Input::Dispatched(completed(0.0)));
        run.step(Input::Prepared(Prepared::default()));
    }
    assert_eq!(outcome(&out).unwrap().cause, Some(Cause::NoProgress));
}

// ---------------------------------------------------------------------------------
// Property tests: random histories, with crashes and resumes

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A tiny deterministic generator over proptest-chosen bytes.
    struct Dice {
        bytes: Vec<u8>,
        at: usize,
    }

    impl Dice {
        fn roll(&mut self, n: u8) -> u8 {
            // Past the chosen bytes, a fixed cycle keeps the run moving.
            let b = self
                .bytes
                .get(self.at)
                .copied()
                .unwrap_or((self.at % 251) as u8);
            self.at += 1;
            b % n.max(1)
        }

        /// Whether the chosen bytes are not used up (crashes and interrupts happen
        /// only then, so every history ends).
        fn live(&self) -> bool {
            self.at < self.bytes.len()
        }
    }

    /// The read-model as far as a resume needs it.
    #[derive(Default)]
    struct Db {
        spent: Spent,
        state: Option<serde_json::Value>,
        iteration: u64,
        open_dispatch: Option<(u64, DispatchRecord)>,
        finished: Option<RunStatus>,
    }

    impl Db {
        fn write(&mut self, r: &Record) {
            match r {
                Record::Iteration(it) => {
                    self.spent = it.spent;
                    self.state = Some(it.state.clone());
                    self.iteration = it.index;
                }
                Record::DispatchStarted {
                    iteration,
                    record,
                    spent,
                    state,
                    ..
                } => {
                    self.spent = *spent;
                    self.state = Some(state.clone());
                    self.open_dispatch = Some((*iteration, record.clone()));
                }
                Record::DispatchFinished { spent, state, .. } => {
                    self.spent = *spent;
                    self.state = Some(state.clone());
                    self.open_dispatch = None;
                }
                Record::Finished {
                    status,
                    spent,
                    state,
                    ..
                } => {
                    self.spent = *spent;
                    self.state = Some(state.clone());
                    self.finished = Some(*status);
                }
            }
        }
    }

    fn random_plan(d: &mut Dice) -> Plan {
        let n = 1 + d.roll(3) as usize;
        let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut p = plan(&refs);
        for pp in &mut p.predicates {
            pp.held_out = d.roll(5) == 0;
            pp.live = d.roll(6) == 0;
            if d.roll(3) == 0 {
                pp.ratchets.push(Ratchet {
                    metric: "tests_passed".into(),
                    direction: RatchetDirection::NoDecrease,
                    baseline: None,
                });
            }
        }
        if d.roll(2) == 0 {
            p.deploy = Some(Deploy {
                run: vec!["d".into()],
                timeout: Duration::from_secs(1),
            });
        }
        p.isolated = d.roll(2) == 0;
        p.land = p.isolated && d.roll(2) == 0;
        p.budget = Budget {
            max_iterations: Some(1 + d.roll(12) as u64),
            max_dispatches: Some(d.roll(5) as u64),
            max_cost_usd: if d.roll(2) == 0 {
                Some(1.0 + d.roll(4) as f64)
            } else {
                None
            },
            ..Budget::default()
        };
        if p.budget.max_dispatches == Some(0) {
            p.budget.max_dispatches = None;
        }
        p
    }

    fn random_eval(d: &mut Dice, id: &str) -> Evaluation {
        let outcome = match d.roll(3) {
            0 => Outcome::Pass,
            1 => Outcome::Fail,
            _ => Outcome::Error,
        };
        let mut e = eval(id, outcome, ["a", "b"][d.roll(2) as usize]);
        if d.roll(2) == 0 {
            e.verdict
                .metrics
                .insert("tests_passed".into(), d.roll(4) as f64);
        }
        if d.roll(4) == 0 {
            e.verdict
                .metrics
                .insert("tests_ignored".into(), d.roll(3) as f64);
        }
        e
    }

    /// What the world answers to an effect (or a crash / an interrupt instead).
    #[expect(clippy::large_enum_variant, reason = "one at a time")]
    enum Next {
        Input(Input),
        Crash,
    }

    fn answer(d: &mut Dice, effect: &Effect, in_dispatch: bool) -> Next {
        if d.live() && d.roll(40) == 0 {
            return Next::Crash;
        }
        if d.live() && d.roll(60) == 0 {
            return Next::Input(Input::Interrupted {
                signal: "SIGINT".into(),
                dispatch: in_dispatch.then(|| completed(0.1)),
            });
        }
        Next::Input(match effect {
            Effect::Prepare => {
                let mut p = Prepared::default();
                match d.roll(12) {
                    0 => p.tamper.push("the goal file changed".into()),
                    1 => p.reverted.push(Revert::protected("tests/t")),
                    2 => p.reverted.push(Revert::outside_writable("x")),
                    _ => {}
                }
                Input::Prepared(p)
            }
            Effect::Observe { predicates, .. } => {
                Input::Observed(predicates.iter().map(|id| random_eval(d, id)).collect())
            }
            Effect::Dispatch { .. } => Input::Dispatched(match d.roll(4) {
                0 => failed("no"),
                _ => completed(d.roll(3) as f64 * 0.5),
            }),
            Effect::Deploy { .. } => Input::Deployed(if d.roll(4) == 0 {
                Err("x".into())
            } else {
                Ok("ok".into())
            }),
            Effect::Sleep(_) => Input::Slept,
            Effect::Land { .. } => Input::Landed(if d.roll(2) == 0 {
                Ok("landed".into())
            } else {
                Err("no".into())
            }),
            Effect::Persist(_) | Effect::Finish(_) => unreachable!("not answered"),
        })
    }

    /// Drive one run to its end through crashes; check the invariants on the way.
    fn drive(bytes: Vec<u8>) -> Result<(), TestCaseError> {
        let mut d = Dice { bytes, at: 0 };
        let p = random_plan(&mut d);
        let mut db = Db::default();
        let mut launches = 0u64;
        let mut processes = 0;
        'process: loop {
            processes += 1;
            prop_assert!(processes < 200, "too many processes");
            let state: LoopState = match &db.state {
                Some(v) => serde_json::from_value(v.clone()).unwrap(),
                None => LoopState::default(),
            };
            let mut r = Reconciler::resume(p.clone(), state, db.spent, db.iteration);
            let unfinished = db
                .open_dispatch
                .take()
                .map(|(iteration, record)| Unfinished {
                    row: 1,
                    iteration,
                    what_happened: "it was gone".into(),
                    record,
                })
                .into_iter()
                .collect();
            let mut input = Input::Start { unfinished };
            let mut steps = 0;
            loop {
                steps += 1;
                prop_assert!(steps < 2_000, "the run never ends");
                let out = r.step(Clock::default(), input);
                // Invariant: whatever acts is preceded by a persist in the same step.
                for (i, e) in out.iter().enumerate() {
                    if e.acts() {
                        prop_assert!(
                            out[..i].iter().any(|e| matches!(e, Effect::Persist(_))),
                            "{e:?} without a persist before it: {out:?}"
                        );
                    }
                }
                let mut next_effect = None;
                let mut in_dispatch = false;
                for e in &out {
                    match e {
                        Effect::Persist(rec) => db.write(rec),
                        Effect::Dispatch { .. } => {
                            launches += 1;
                            in_dispatch = true;
                            next_effect = Some(e.clone());
                        }
                        Effect::Finish(o) => {
                            check_outcome(&p, o, &db)?;
                            prop_assert!(r.is_done());
                            prop_assert!(
                                r.step(Clock::default(), Input::Slept).is_empty(),
                                "a finished run is terminal"
                            );
                            break 'process;
                        }
                        other => next_effect = Some(other.clone()),
                    }
                }
                // Invariant: launches never exceed max_dispatches, across crashes.
                if let Some(max) = p.budget.max_dispatches {
                    prop_assert!(launches <= max, "{launches} launches, max {max}");
                }
                prop_assert!(db.spent.dispatches >= launches);
                let effect = next_effect.expect("a step that does not finish asks for something");
                match answer(&mut d, &effect, in_dispatch) {
                    Next::Input(i) => input = i,
                    Next::Crash => continue 'process,
                }
            }
        }
        Ok(())
    }

    fn check_outcome(p: &Plan, o: &RunOutcome, db: &Db) -> Result<(), TestCaseError> {
        prop_assert_eq!(db.finished, Some(o.status));
        if o.status == RunStatus::Converged {
            // Never converged while any predicate is not pass.
            prop_assert_eq!(o.last.len(), p.predicates.len());
            for r in &o.last {
                prop_assert_eq!(r.state, State::Pass, "{:?}", o);
            }
        }
        if let Some(max) = p.budget.max_dispatches {
            prop_assert!(o.spent.dispatches <= max);
        }
        if let Some(max) = p.budget.max_iterations {
            // One iteration past the limit at most: the observation that notices it.
            prop_assert!(
                o.spent.iterations <= max + 1,
                "{} > {max}",
                o.spent.iterations
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_histories_keep_every_invariant(bytes in proptest::collection::vec(any::<u8>(), 64..2048)) {
            drive(bytes)?;
        }

        #[test]
        fn the_same_inputs_give_the_same_effects(bytes in proptest::collection::vec(any::<u8>(), 32..512)) {
            let mut d = Dice { bytes: bytes.clone(), at: 0 };
            let p = random_plan(&mut d);
            let mut inputs = vec![Input::Start { unfinished: vec![] }];
            let mut a = Reconciler::new(p.clone());
            let mut effects_a = Vec::new();
            for _ in 0..200 {
                let out = a.step(Clock::default(), inputs.last().unwrap().clone());
                effects_a.push(out.clone());
                let Some(e) = out.iter().rev().find(|e| !matches!(e, Effect::Persist(_))) else { break };
                if matches!(e, Effect::Finish(_)) { break; }
                match answer(&mut d, e, matches!(e, Effect::Dispatch { .. })) {
                    Next::Input(i) => inputs.push(i),
                    Next::Crash => break,
                }
            }
            let mut b = Reconciler::new(p);
            for (input, expected) in inputs.into_iter().zip(effects_a) {
                prop_assert_eq!(b.step(Clock::default(), input), expected);
            }
        }
    }

    #[test]
    fn a_converged_outcome_is_checked_against_the_plan() {
        // The checker itself can fail: a converged outcome with a failing result.
        let p = plan(&["a"]);
        let mut o = RunOutcome {
            status: RunStatus::Converged,
            reason: None,
            cause: None,
            spent: Spent::default(),
            last: vec![],
            events: vec![],
        };
        let db = Db {
            finished: Some(RunStatus::Converged),
            ..Db::default()
        };
        assert!(check_outcome(&p, &o, &db).is_err());
        o.last = vec![kazi_core::record::PredicateResult {
            id: "a".into(),
            state: State::Fail,
            verdict: verdict(Outcome::Fail, "x"),
            duration_ms: 0,
            attempts: 1,
            quarantined: false,
        }];
        assert!(check_outcome(&p, &o, &db).is_err());
        let _ = BTreeMap::<String, f64>::new();
    }
}
