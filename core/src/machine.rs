//! The loop as a state machine: [`Reconciler::step`] takes one [`Input`] (what the
//! world answered) and returns the [`Effect`]s to perform next. Every rule of the
//! loop lives here — budget, flake and quarantine, ratchets, skipped tests,
//! regressions, stuck, vacuous goals, agent-failure streaks, permission denials,
//! scope and gaming, the seal, waits for live and quarantined predicates, standing
//! goals, landing. It reads no clock, spawns nothing and touches no database: the
//! interpreter (in the host) performs the effects in order and feeds back what
//! happened, so the same inputs always give the same effects.
//!
//! One iteration is: `Prepare` (seal check, or scope enforcement in a task worktree)
//! → `Observe` (attempt 1, then re-runs of new failures) → judge → decide →
//! `Persist(Iteration)` → act (`Dispatch`, `Deploy`, `Sleep`, `Land` or `Finish`).
//! Whatever acts on the world is preceded by the `Persist` that records why.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::budget;
use crate::decide::{self, Fact, Facts};
use crate::flake::{self, Classified, Quarantine};
use crate::plan::{Plan, PredicatePlan, RatchetDirection};
use crate::progress::{self, RatchetCheck, Streak};
use crate::prompt;
use crate::record::{
    Cause, Decision, DispatchOutcome, DispatchRecord, Event, EventKind, IterationRecord,
    PredicateResult, RunStatus, Spent, State, Vector,
};
use crate::scope::{self, Prepared};
use crate::verdict::{Outcome, Verdict};

/// Pause between observations while waiting on live or quarantined predicates.
pub const WAIT_INTERVAL: Duration = Duration::from_secs(2);
/// Dispatches in which the agent changed protected paths or the goal file before
/// the run ends as `tampered` (in a task worktree each attempt is reverted).
pub const GAMING_LIMIT: u32 = 2;
/// Consecutive identical agent failures that end the run as `agent_error`.
pub const AGENT_FAILURE_LIMIT: u32 = 2;
/// Metrics that count skipped, ignored or deselected tests: none may rise above its
/// value at the run's first observation.
pub const SKIP_METRICS: &[&str] = &["tests_ignored", "tests_skipped", "tests_deselected"];
/// A verdict carrying this metric (> 0) was computed on a subset of the checks (for
/// example only the tests that failed last time): it can fail, never pass, and its
/// counts are not compared with the ratchets.
pub const FOCUSED_METRIC: &str = "focused";
/// A verdict carrying this metric (> 0) failed because a tool is not installed.
pub const MISSING_TOOL_METRIC: &str = "missing_tool";
/// Longest prompt kept in the read-model.
pub const RECORDED_PROMPT: usize = 64 * 1024;

/// Time as the interpreter saw it when the input arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Milliseconds since this process started driving the run.
    pub elapsed_ms: u64,
    /// Milliseconds since the Unix epoch (for timestamps in records).
    pub epoch_ms: i64,
}

/// One evaluation of one predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub id: String,
    pub verdict: Verdict,
    pub duration_ms: u64,
}

/// A dispatch a previous process started and never finished (it crashed).
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    /// Its row in the read-model.
    pub row: i64,
    pub iteration: u64,
    /// What the interpreter did about its process (killed it, or found it gone).
    pub what_happened: String,
    /// What is known of it (the prompt digest, the predicates).
    pub record: DispatchRecord,
}

/// What the world answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Begin, or resume after a crash with the dispatches it left unfinished.
    Start { unfinished: Vec<Unfinished> },
    /// The workspace was prepared for an observation.
    Prepared(Prepared),
    /// The evaluations asked for by the last `Observe`.
    Observed(Vec<Evaluation>),
    /// The agent finished (changed files included).
    Dispatched(DispatchRecord),
    /// `[deploy]` ran: `Ok(what happened)` or `Err(why it failed)`.
    Deployed(Result<String, String>),
    /// A `Sleep` is over.
    Slept,
    /// Landing ran: `Ok(what happened)` or `Err(why it failed)`.
    Landed(Result<String, String>),
    /// A signal stopped the run. `dispatch` is the agent run it cut off, if any.
    Interrupted {
        signal: String,
        dispatch: Option<DispatchRecord>,
    },
}

/// Which dispatch a finished record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchRow {
    /// The one this process started last.
    Current,
    /// One a previous process left unfinished.
    Row(i64),
}

/// Something to write to the read-model, in one transaction, before acting. Each
/// carries the counters and the loop state after it, so a resumed run continues from
/// the last record written.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Iteration(IterationRecord),
    /// Written before the agent is spawned; counts against `max_dispatches` at once.
    DispatchStarted {
        iteration: u64,
        /// The prompt, bounded to [`RECORDED_PROMPT`].
        prompt: String,
        record: DispatchRecord,
        spent: Spent,
        state: serde_json::Value,
    },
    DispatchFinished {
        row: DispatchRow,
        iteration: u64,
        record: DispatchRecord,
        events: Vec<Event>,
        spent: Spent,
        state: serde_json::Value,
    },
    Finished {
        status: RunStatus,
        reason: Option<String>,
        events: Vec<Event>,
        spent: Spent,
        state: serde_json::Value,
    },
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a step returns a handful of effects, each consumed at once"
)]
pub enum Effect {
    /// Check the seal (in place) or enforce the scope (task worktree); answer `Prepared`.
    Prepare,
    /// Evaluate these predicates (attempt 1 is the observation, later ones re-runs);
    /// answer `Observed`.
    Observe {
        predicates: Vec<String>,
        attempt: u32,
    },
    Persist(Record),
    /// Run the agent; answer `Dispatched`.
    Dispatch {
        prompt: String,
        predicates: Vec<String>,
        timeout: Duration,
    },
    /// Run `[deploy]`; answer `Deployed`.
    Deploy {
        run: Vec<String>,
        timeout: Duration,
    },
    /// Wait; answer `Slept`.
    Sleep(Duration),
    /// Commit and land the converged changes (the final results go into the
    /// landing commit's message); answer `Landed`.
    Land {
        results: Vec<PredicateResult>,
    },
    /// The run is over.
    Finish(RunOutcome),
}

impl Effect {
    /// Whether this effect acts on the world (and so must follow a `Persist`).
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Effect::Dispatch { .. } | Effect::Deploy { .. } | Effect::Land { .. }
        )
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub reason: Option<String>,
    pub cause: Option<Cause>,
    pub spent: Spent,
    /// The last observation.
    pub last: Vec<PredicateResult>,
    /// Every event of this invocation.
    pub events: Vec<Event>,
}

/// What the loop remembers between iterations (persisted with each iteration, so a
/// resumed run continues it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoopState {
    /// Quarantined predicates and their pass streak.
    pub quarantine: BTreeMap<String, u32>,
    /// Best value per ratcheted metric, by predicate id then metric.
    pub ratchets: BTreeMap<String, BTreeMap<String, f64>>,
    /// Skip counts at the first observation that reported them, by predicate id then metric.
    pub first_skips: BTreeMap<String, BTreeMap<String, f64>>,
    /// Fingerprint of each predicate's last believed failure (the flake policy
    /// re-runs only failures that are new).
    pub last_failures: BTreeMap<String, String>,
    pub streak: Streak,
    pub last_vector: Vector,
    /// Iteration of the last dispatch (regressions are attributed to it).
    pub last_dispatch: Option<u64>,
    /// The last agent failure and how many times in a row it happened.
    pub agent_failure: Option<(String, u32)>,
    /// Dispatches whose changes touched protected paths or the goal file.
    pub gaming: u32,
    /// What to tell the agent about its last changes (reverts), in the next prompt.
    pub notes: Vec<String>,
    /// The most a single dispatch of this run cost (counted for dispatches of
    /// unknown cost).
    pub max_dispatch_cost: f64,
    pub deployed: bool,
    pub waits: u32,
    /// Whether the run has converged once (standing goals).
    pub converged: bool,
}

/// One predicate's evaluations in the current observation.
#[derive(Debug, Clone)]
struct Attempts {
    first: Verdict,
    last: Verdict,
    reruns: Vec<Outcome>,
    duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    New,
    Preparing,
    Observing { attempt: u32 },
    Dispatching,
    Deploying,
    Sleeping,
    Landing { reason: String },
    Done,
}

/// The loop of one run.
#[derive(Debug, Clone)]
pub struct Reconciler {
    plan: Plan,
    state: LoopState,
    spent: Spent,
    /// Iterations recorded so far (the next is `iteration + 1`).
    iteration: u64,
    /// Wall clock spent by earlier processes on this run.
    base_wall_ms: u64,
    clock: Clock,
    phase: Phase,
    /// The current observation's evaluations.
    attempts: BTreeMap<String, Attempts>,
    /// Events of the iteration in progress (reverts, deploys) not yet recorded.
    pending: Vec<Event>,
    started_at_ms: i64,
    last: Vec<PredicateResult>,
    events: Vec<Event>,
    /// Why this iteration ends the run as `tampered`: it still observes once (no
    /// re-runs) so the report shows what the predicates say about the workspace.
    tamper: Option<String>,
}

impl Reconciler {
    /// A new run.
    pub fn new(plan: Plan) -> Self {
        Self::resume(plan, LoopState::default(), Spent::default(), 0)
    }

    /// A run continued from the read-model: its loop state, counters and the number
    /// of iterations already recorded.
    pub fn resume(plan: Plan, state: LoopState, spent: Spent, iteration: u64) -> Self {
        Self {
            plan,
            state,
            base_wall_ms: spent.wall_clock_ms,
            spent,
            iteration,
            clock: Clock::default(),
            phase: Phase::New,
            attempts: BTreeMap::new(),
            pending: Vec::new(),
            started_at_ms: 0,
            last: Vec::new(),
            events: Vec::new(),
            tamper: None,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn state(&self) -> &LoopState {
        &self.state
    }

    pub fn spent(&self) -> Spent {
        self.spent
    }

    /// Iterations recorded so far.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Whether the run is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Advance with one input at time `clock`; returns the effects to perform, in order.
    pub fn step(&mut self, clock: Clock, input: Input) -> Vec<Effect> {
        self.clock = clock;
        self.spent.wall_clock_ms = self.base_wall_ms + clock.elapsed_ms;
        if self.phase == Phase::Done {
            return Vec::new();
        }
        match input {
            Input::Interrupted { signal, dispatch } => self.interrupted(&signal, dispatch),
            Input::Start { unfinished } if self.phase == Phase::New => self.start(unfinished),
            Input::Prepared(p) if self.phase == Phase::Preparing => self.prepared(p),
            Input::Observed(evals) => match self.phase {
                Phase::Observing { attempt } => self.observed(attempt, evals),
                _ => self.unexpected("Observed"),
            },
            Input::Dispatched(rec) if self.phase == Phase::Dispatching => self.dispatched(rec),
            Input::Deployed(r) if self.phase == Phase::Deploying => self.deployed(r),
            Input::Slept if self.phase == Phase::Sleeping => self.begin_iteration(),
            Input::Landed(r) => match &self.phase {
                Phase::Landing { reason } => {
                    let reason = reason.clone();
                    self.landed(reason, r)
                }
                _ => self.unexpected("Landed"),
            },
            other => self.unexpected(input_name(&other)),
        }
    }

    /// An input the machine was not waiting for is a bug in the interpreter: end the
    /// run as an error rather than guess.
    fn unexpected(&mut self, what: &str) -> Vec<Effect> {
        let reason = format!(
            "internal error: the loop got `{what}` while {:?}; the run stops here (please report this)",
            self.phase
        );
        self.finish(RunStatus::Error, Some(reason), None, Vec::new())
    }

    fn start(&mut self, unfinished: Vec<Unfinished>) -> Vec<Effect> {
        let mut out = Vec::new();
        for u in unfinished {
            let mut record = u.record;
            record.outcome = DispatchOutcome::Interrupted;
            record.message = Some(format!(
                "kazi stopped while this agent ran (a crash or a kill); {}; its cost is unknown and counted as the run's most expensive dispatch",
                u.what_happened
            ));
            self.spent.unknown_cost_dispatches += 1;
            let event = Event::run(
                EventKind::Interrupted,
                format!(
                    "the dispatch of iteration {} never finished: {}",
                    u.iteration, u.what_happened
                ),
            );
            self.events.push(event.clone());
            out.push(Effect::Persist(Record::DispatchFinished {
                row: DispatchRow::Row(u.row),
                iteration: u.iteration,
                record,
                events: vec![event],
                spent: self.spent,
                state: self.state_json(),
            }));
        }
        out.extend(self.begin_iteration());
        out
    }

    fn begin_iteration(&mut self) -> Vec<Effect> {
        self.phase = Phase::Preparing;
        self.started_at_ms = self.clock.epoch_ms;
        self.attempts.clear();
        vec![Effect::Prepare]
    }

    fn prepared(&mut self, p: Prepared) -> Vec<Effect> {
        if !p.tamper.is_empty() {
            let reason = format!("{}; a tampered run can never converge", p.tamper.join(", "));
            return self.observe_tampered(reason);
        }
        let mut gaming = false;
        let mut notes = Vec::new();
        for r in &p.reverted {
            gaming |= r.gaming;
            let text = format!("your change to {} was reverted: {}", r.path, r.why);
            let kind = if r.gaming {
                EventKind::Gaming
            } else {
                EventKind::Scope
            };
            self.pending.push(Event::run(kind, text.clone()));
            notes.push(text);
        }
        self.state.notes = notes;
        if gaming {
            self.state.gaming += 1;
            if self.state.gaming >= GAMING_LIMIT {
                let reason = format!(
                    "the agent changed protected paths or the goal file in {} dispatches (each was reverted); a tampered run can never converge",
                    self.state.gaming
                );
                return self.observe_tampered(reason);
            }
        }
        self.phase = Phase::Observing { attempt: 1 };
        vec![Effect::Observe {
            predicates: self.plan.ids(),
            attempt: 1,
        }]
    }

    /// The run is tampered: observe every predicate once, for the report, then end.
    fn observe_tampered(&mut self, reason: String) -> Vec<Effect> {
        self.tamper = Some(reason);
        self.phase = Phase::Observing { attempt: 1 };
        vec![Effect::Observe {
            predicates: self.plan.ids(),
            attempt: 1,
        }]
    }

    /// Record the tampered iteration with what was observed and end the run.
    fn end_tampered(&mut self, reason: String) -> Vec<Effect> {
        let mut events = std::mem::take(&mut self.pending);
        let mut results = Vec::with_capacity(self.plan.predicates.len());
        for p in &self.plan.predicates.clone() {
            let (r, evs) = self.judge(p);
            results.push(r);
            events.extend(evs);
        }
        events.push(Event::run(EventKind::Tamper, reason.clone()));
        self.spent.iterations += 1;
        self.iteration += 1;
        self.last = results.clone();
        let decision = Decision::Tampered { reason };
        let record = self.record(results, decision.clone(), events.clone());
        self.events.extend(events);
        let mut out = vec![Effect::Persist(Record::Iteration(record))];
        let (status, reason, cause) = terminal(&decision).expect("a terminal decision");
        out.extend(self.finish(status, reason, cause, Vec::new()));
        out
    }

    fn observed(&mut self, attempt: u32, evals: Vec<Evaluation>) -> Vec<Effect> {
        for e in evals {
            match self.attempts.get_mut(&e.id) {
                None if attempt == 1 => {
                    self.attempts.insert(
                        e.id.clone(),
                        Attempts {
                            first: e.verdict.clone(),
                            last: e.verdict,
                            reruns: Vec::new(),
                            duration_ms: e.duration_ms,
                        },
                    );
                }
                Some(a) if attempt > 1 => {
                    a.reruns.push(e.verdict.outcome);
                    a.last = e.verdict;
                    a.duration_ms += e.duration_ms;
                }
                _ => {} // an evaluation nobody asked for: ignored
            }
        }
        if let Some(reason) = self.tamper.take() {
            return self.end_tampered(reason);
        }
        if attempt <= flake::RERUNS {
            let again: Vec<String> = self
                .plan
                .predicates
                .iter()
                .filter(|p| {
                    self.attempts.get(&p.id).is_some_and(|a| {
                        if attempt == 1 {
                            flake::needs_rerun(
                                &a.first,
                                self.state.last_failures.get(&p.id).map(String::as_str),
                            )
                        } else {
                            // Still re-running: until one passes or the re-runs are spent.
                            a.last.outcome != Outcome::Pass
                                && a.reruns.len() == attempt as usize - 1
                        }
                    })
                })
                .map(|p| p.id.clone())
                .collect();
            if !again.is_empty() {
                self.phase = Phase::Observing {
                    attempt: attempt + 1,
                };
                return vec![Effect::Observe {
                    predicates: again,
                    attempt: attempt + 1,
                }];
            }
        }
        self.judge_and_decide()
    }

    /// Turn the evaluations into believed states, apply the per-predicate rules, decide
    /// and act.
    fn judge_and_decide(&mut self) -> Vec<Effect> {
        let first = self.iteration == 0;
        let mut events = std::mem::take(&mut self.pending);
        let mut results = Vec::with_capacity(self.plan.predicates.len());
        let predicates = self.plan.predicates.clone();
        for p in &predicates {
            let (r, evs) = self.judge(p);
            results.push(r);
            events.extend(evs);
        }
        let vector: Vector = results.iter().map(|r| (r.id.clone(), r.state)).collect();
        for (id, s) in progress::regressions(&self.state.last_vector, &vector) {
            let by = self.state.last_dispatch.map_or_else(
                || "no dispatch".to_owned(),
                |i| format!("the dispatch of iteration {i}"),
            );
            events.push(Event::predicate(
                EventKind::Regression,
                &id,
                format!("\"{id}\" passed before and is now {s}, after {by}"),
            ));
        }
        self.state.last_vector = vector;
        self.spent.iterations += 1;
        self.iteration += 1;

        let decision = self.decide(&results, first);
        self.last = results.clone();

        // Vacuous: a non-standing goal that all passes at the start has nothing to do.
        if first && decision == Decision::Converged && self.plan.standing.is_none() {
            let decision = Decision::Stuck {
                cause: Cause::Vacuous,
                reason: "every predicate already passes".into(),
            };
            let record = self.record(results, decision, events.clone());
            self.events.extend(events);
            let reason = "the goal is vacuous: every predicate already passes at the start, so there is nothing to build or repair; hint: add a predicate that fails now, or set `standing = true` to keep watching".to_owned();
            let mut out = vec![Effect::Persist(Record::Iteration(record))];
            out.extend(self.finish(
                RunStatus::Invalid,
                Some(reason),
                Some(Cause::Vacuous),
                Vec::new(),
            ));
            return out;
        }

        // State changes the decision implies, before they are recorded.
        match &decision {
            Decision::Converged if self.plan.standing.is_some() => self.state.converged = true,
            Decision::Wait { .. } => self.state.waits += 1,
            Decision::Dispatch { .. } => self.state.waits = 0,
            _ => {}
        }
        let record = self.record(results.clone(), decision.clone(), events.clone());
        self.events.extend(events);
        let mut out = vec![Effect::Persist(Record::Iteration(record))];
        match decision {
            Decision::Converged => {
                if let Some(interval) = self.plan.standing {
                    if let Some(why) = self.budget_exhausted() {
                        let reason =
                            format!("every predicate passes; the standing watch stopped: {why}");
                        out.extend(self.finish(
                            RunStatus::Converged,
                            Some(reason),
                            None,
                            Vec::new(),
                        ));
                    } else {
                        self.phase = Phase::Sleeping;
                        out.push(Effect::Sleep(interval));
                    }
                } else if self.plan.land {
                    self.phase = Phase::Landing {
                        reason: "every predicate passes".into(),
                    };
                    out.push(Effect::Land { results });
                } else {
                    out.extend(self.finish(
                        RunStatus::Converged,
                        Some("every predicate passes".into()),
                        None,
                        Vec::new(),
                    ));
                }
            }
            Decision::Wait { .. } => {
                self.phase = Phase::Sleeping;
                out.push(Effect::Sleep(WAIT_INTERVAL));
            }
            Decision::Deploy => {
                let deploy = self
                    .plan
                    .deploy
                    .clone()
                    .expect("deploy is decided only with [deploy]");
                self.phase = Phase::Deploying;
                out.push(Effect::Deploy {
                    run: deploy.run,
                    timeout: deploy.timeout,
                });
            }
            Decision::Dispatch { predicates } => out.extend(self.dispatch(&results, predicates)),
            other => {
                let (status, reason, cause) = terminal(&other).expect("a terminal decision");
                out.extend(self.finish(status, reason, cause, Vec::new()));
            }
        }
        out
    }

    /// One predicate's believed state from its evaluations, with quarantine, ratchets
    /// and the skip rule applied.
    fn judge(&mut self, p: &PredicatePlan) -> (PredicateResult, Vec<Event>) {
        let mut events = Vec::new();
        let Some(a) = self.attempts.get(&p.id).cloned() else {
            let verdict = Verdict::error(format!(
                "predicate \"{}\" was not evaluated (internal error)",
                p.id
            ));
            let result = PredicateResult {
                id: p.id.clone(),
                state: State::Error,
                verdict,
                duration_ms: 0,
                attempts: 0,
                quarantined: false,
            };
            return (result, events);
        };
        let classified = flake::classify(a.first.outcome, &a.reruns);
        // The evidence shown is the first failure's, or the pass that cleared it.
        let mut verdict = if classified == Classified::Flaky {
            a.last.clone()
        } else {
            a.first.clone()
        };
        match classified {
            Classified::Stable(Outcome::Fail | Outcome::Error) => {
                self.state
                    .last_failures
                    .insert(p.id.clone(), flake::fingerprint(&a.first));
            }
            _ => {
                self.state.last_failures.remove(&p.id);
            }
        }
        let held = self.state.quarantine.get(&p.id).copied();
        let mut quarantined = false;
        let mut state = match flake::quarantine_step(held, classified) {
            Quarantine::Clear(s) => s,
            Quarantine::Entered => {
                self.state.quarantine.insert(p.id.clone(), 0);
                quarantined = true;
                events.push(Event::predicate(
                    EventKind::Quarantine,
                    &p.id,
                    format!(
                        "\"{}\" passed on a re-run after failing: quarantined as flaky until it passes {} observations in a row",
                        p.id,
                        flake::REHAB_PASSES
                    ),
                ));
                State::Unknown
            }
            Quarantine::Held { passes } => {
                self.state.quarantine.insert(p.id.clone(), passes);
                quarantined = true;
                State::Unknown
            }
            Quarantine::Lifted => {
                self.state.quarantine.remove(&p.id);
                events.push(Event::predicate(
                    EventKind::Rehabilitated,
                    &p.id,
                    format!(
                        "\"{}\" passed {} observations in a row: quarantine lifted",
                        p.id,
                        flake::REHAB_PASSES
                    ),
                ));
                State::Pass
            }
        };
        let focused = verdict
            .metrics
            .get(FOCUSED_METRIC)
            .is_some_and(|v| *v > 0.0);
        if focused && state == State::Pass {
            // A subset of the checks can never make a predicate pass.
            demote(
                &mut verdict,
                &mut state,
                Outcome::Error,
                "the predicate passed on a subset of its checks only (focused), which never counts as a pass",
            );
        }
        if !focused && matches!(state, State::Pass | State::Fail) {
            for r in &p.ratchets {
                let best = self
                    .state
                    .ratchets
                    .get(&p.id)
                    .and_then(|m| m.get(&r.metric))
                    .copied();
                let value = verdict.metrics.get(&r.metric).copied();
                match progress::ratchet(r, best, value) {
                    RatchetCheck::Holds { best } => {
                        self.state
                            .ratchets
                            .entry(p.id.clone())
                            .or_default()
                            .insert(r.metric.clone(), best);
                    }
                    RatchetCheck::Broken { value, best } => {
                        let dir = match r.direction {
                            RatchetDirection::NoDecrease => "fell",
                            RatchetDirection::NoIncrease => "rose",
                        };
                        let msg = format!(
                            "ratchet: {} {dir} to {value} from the best {best} seen in this run",
                            r.metric
                        );
                        events.push(Event::predicate(EventKind::Ratchet, &p.id, msg.clone()));
                        demote(&mut verdict, &mut state, Outcome::Fail, &msg);
                    }
                    RatchetCheck::Missing if state == State::Pass => {
                        let msg = format!(
                            "ratchet: the predicate did not report the metric `{}`",
                            r.metric
                        );
                        demote(&mut verdict, &mut state, Outcome::Error, &msg);
                    }
                    RatchetCheck::Missing => {}
                }
            }
            if p.skips_fail {
                for metric in SKIP_METRICS {
                    let Some(now) = verdict.metrics.get(*metric).copied() else {
                        continue;
                    };
                    let firsts = self.state.first_skips.entry(p.id.clone()).or_default();
                    let first = *firsts.entry((*metric).to_owned()).or_insert(now);
                    if now > first {
                        let what = metric.trim_start_matches("tests_");
                        let msg = format!(
                            "{} more test{} {what} than at the start of the run ({first} → {now}): a skipped test is not a passing one",
                            now - first,
                            if now - first == 1.0 { "" } else { "s" },
                        );
                        events.push(Event::predicate(EventKind::Skip, &p.id, msg.clone()));
                        demote(&mut verdict, &mut state, Outcome::Fail, &msg);
                    }
                }
            }
        }
        let result = PredicateResult {
            id: p.id.clone(),
            state,
            verdict,
            duration_ms: a.duration_ms,
            attempts: 1 + a.reruns.len() as u32,
            quarantined,
        };
        (result, events)
    }

    fn decide(&mut self, results: &[PredicateResult], first: bool) -> Decision {
        let plan = &self.plan;
        let meta = |id: &str| plan.predicate(id).cloned().unwrap_or_default();
        let failing: BTreeSet<String> = results
            .iter()
            .filter(|r| matches!(r.state, State::Fail | State::Error) && !meta(&r.id).live)
            .map(|r| r.id.clone())
            .collect();
        let scores: BTreeMap<String, f64> = results
            .iter()
            .filter_map(|r| r.verdict.score.map(|s| (r.id.clone(), s)))
            .collect();
        let stuck = self.state.streak.observe(&failing, &scores);
        let budget = self.budget_exhausted();
        let metas: Vec<PredicatePlan> = results.iter().map(|r| meta(&r.id)).collect();
        let facts = Facts {
            predicates: results
                .iter()
                .zip(&metas)
                .map(|(r, m)| Fact {
                    id: &r.id,
                    state: r.state,
                    summary: &r.verdict.summary,
                    live: m.live,
                    held_out: m.held_out,
                    missing_tool: r
                        .verdict
                        .metrics
                        .get(MISSING_TOOL_METRIC)
                        .is_some_and(|v| *v > 0.0),
                })
                .collect(),
            first,
            budget,
            stuck,
            has_deploy: self.plan.deploy.is_some(),
            deployed: self.state.deployed,
            waits: self.state.waits,
        };
        decide::decide(&facts)
    }

    fn budget_exhausted(&self) -> Option<String> {
        budget::exhausted(&self.plan.budget, &self.spent, self.state.max_dispatch_cost)
    }

    fn dispatch(&mut self, results: &[PredicateResult], predicates: Vec<String>) -> Vec<Effect> {
        let failing: Vec<prompt::Failing<'_>> = results
            .iter()
            .filter(|r| predicates.contains(&r.id))
            .map(|r| prompt::Failing {
                id: &r.id,
                description: self
                    .plan
                    .predicate(&r.id)
                    .and_then(|p| p.description.as_deref()),
                verdict: &r.verdict,
            })
            .collect();
        let text = prompt::render(&self.plan.brief, &failing, &self.state.notes);
        let mut timeout = self.plan.agent_timeout;
        if let Some(left) = budget::remaining_wall_clock(&self.plan.budget, &self.spent) {
            timeout = timeout.min(left.max(Duration::from_secs(1)));
        }
        self.state.last_dispatch = Some(self.iteration);
        self.spent.dispatches += 1;
        self.phase = Phase::Dispatching;
        let record = DispatchRecord::new(
            self.plan.profile.clone(),
            self.plan.model.clone(),
            &text,
            &predicates,
        );
        vec![
            Effect::Persist(Record::DispatchStarted {
                iteration: self.iteration,
                prompt: crate::verdict::truncate_middle(&text, RECORDED_PROMPT),
                record,
                spent: self.spent,
                state: self.state_json(),
            }),
            Effect::Dispatch {
                prompt: text,
                predicates,
                timeout,
            },
        ]
    }

    fn dispatched(&mut self, mut rec: DispatchRecord) -> Vec<Effect> {
        if rec.outcome == DispatchOutcome::Completed
            && !rec.permission_denials.is_empty()
            && rec.changed_files.is_empty()
        {
            rec.outcome = DispatchOutcome::PermissionDenied;
            rec.message = Some(format!(
                "the agent exited 0 but every tool call was denied ({}); it could not change anything. hint: check the profile's permission mode",
                rec.permission_denials.join("; ")
            ));
        }
        self.account(&rec);
        let mut events = Vec::new();
        if !self.plan.isolated {
            let b = &self.plan.brief;
            let (outside, hits) = scope::classify(&rec.changed_files, &b.writable, &b.protected);
            if !outside.is_empty() {
                events.push(Event::run(
                    EventKind::Scope,
                    format!(
                        "the agent changed files outside `writable`: {}",
                        outside.join(", ")
                    ),
                ));
            }
            if !hits.is_empty() {
                events.push(Event::run(
                    EventKind::Gaming,
                    format!("the agent changed protected files: {}", hits.join(", ")),
                ));
            }
        }
        // Agent failures are not progress: the same failure twice in a row stops the
        // run. A timeout that left changes behind did some work, so it is not counted.
        let timed_out_with_work =
            rec.outcome == DispatchOutcome::TimedOut && !rec.changed_files.is_empty();
        let mut stop = None;
        if rec.outcome.is_agent_error() && !timed_out_with_work {
            // The same failure: the same outcome and message (a timeout's message
            // quotes the agent's varying last output, so the outcome alone says it).
            let key = match rec.outcome {
                DispatchOutcome::TimedOut => {
                    format!("{}: killed at the dispatch timeout", rec.outcome)
                }
                _ => format!(
                    "{}: {}",
                    rec.outcome,
                    rec.message.clone().unwrap_or_default()
                ),
            };
            let count = match &self.state.agent_failure {
                Some((k, n)) if *k == key => n + 1,
                _ => 1,
            };
            let said = format!(
                "{}: {}",
                rec.outcome,
                rec.message.clone().unwrap_or_default()
            );
            events.push(Event::run(EventKind::AgentError, said.clone()));
            if count >= AGENT_FAILURE_LIMIT {
                stop = Some(format!(
                    "{}: the agent failed the same way twice in a row ({said})",
                    Cause::AgentError
                ));
            }
            self.state.agent_failure = Some((key, count));
        } else {
            self.state.agent_failure = None;
        }
        self.events.extend(events.clone());
        let mut out = vec![Effect::Persist(Record::DispatchFinished {
            row: DispatchRow::Current,
            iteration: self.iteration,
            record: rec,
            events,
            spent: self.spent,
            state: self.state_json(),
        })];
        match stop {
            Some(reason) => out.extend(self.finish(
                RunStatus::Stuck,
                Some(reason),
                Some(Cause::AgentError),
                Vec::new(),
            )),
            None => out.extend(self.begin_iteration()),
        }
        out
    }

    /// Count what a dispatch spent.
    fn account(&mut self, rec: &DispatchRecord) {
        self.spent.tokens += rec.tokens();
        if let Some(c) = rec.cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            self.spent.cost_usd += c;
            self.state.max_dispatch_cost = self.state.max_dispatch_cost.max(c);
        }
    }

    fn deployed(&mut self, r: Result<String, String>) -> Vec<Effect> {
        match r {
            Ok(msg) => {
                self.state.deployed = true;
                self.pending.push(Event::run(EventKind::Deploy, msg));
                self.begin_iteration()
            }
            Err(msg) => self.finish(
                RunStatus::Stuck,
                Some(format!("{}: {msg}", Cause::DeployFailed)),
                Some(Cause::DeployFailed),
                Vec::new(),
            ),
        }
    }

    fn landed(&mut self, reason: String, r: Result<String, String>) -> Vec<Effect> {
        let event = match r {
            Ok(msg) => Event::run(EventKind::Land, msg),
            // Landing failed: the run still converged; say what went wrong.
            Err(msg) => Event::run(EventKind::Land, format!("landing failed: {msg}")),
        };
        self.finish(RunStatus::Converged, Some(reason), None, vec![event])
    }

    fn interrupted(&mut self, signal: &str, dispatch: Option<DispatchRecord>) -> Vec<Effect> {
        let mut out = Vec::new();
        let reason = format!("interrupted by {signal}");
        if let (Phase::Dispatching, Some(mut rec)) = (&self.phase, dispatch) {
            rec.outcome = DispatchOutcome::Interrupted;
            if rec.message.is_none() {
                rec.message = Some(format!("the agent was stopped: kazi was {reason}"));
            }
            self.account(&rec);
            let event = Event::run(
                EventKind::Interrupted,
                format!(
                    "the dispatch of iteration {} was cut off: {reason}",
                    self.iteration
                ),
            );
            self.events.push(event.clone());
            out.push(Effect::Persist(Record::DispatchFinished {
                row: DispatchRow::Current,
                iteration: self.iteration,
                record: rec,
                events: vec![event],
                spent: self.spent,
                state: self.state_json(),
            }));
        }
        out.extend(self.finish(RunStatus::Interrupted, Some(reason), None, Vec::new()));
        out
    }

    fn finish(
        &mut self,
        status: RunStatus,
        reason: Option<String>,
        cause: Option<Cause>,
        events: Vec<Event>,
    ) -> Vec<Effect> {
        self.phase = Phase::Done;
        self.events.extend(events.clone());
        let outcome = RunOutcome {
            status,
            reason: reason.clone(),
            cause,
            spent: self.spent,
            last: self.last.clone(),
            events: self.events.clone(),
        };
        vec![
            Effect::Persist(Record::Finished {
                status,
                reason,
                events,
                spent: self.spent,
                state: self.state_json(),
            }),
            Effect::Finish(outcome),
        ]
    }

    fn record(
        &self,
        results: Vec<PredicateResult>,
        decision: Decision,
        events: Vec<Event>,
    ) -> IterationRecord {
        IterationRecord {
            index: self.iteration,
            results,
            decision,
            events,
            spent: self.spent,
            state: self.state_json(),
            started_at_ms: self.started_at_ms,
        }
    }

    fn state_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).expect("loop state serialises")
    }
}

/// Replace a verdict's outcome with `outcome`, keeping the old summary as details.
fn demote(verdict: &mut Verdict, state: &mut State, outcome: Outcome, summary: &str) {
    verdict.details = format!("{}\n{}", verdict.summary, verdict.details)
        .trim_end()
        .to_owned();
    verdict.summary = summary.to_owned();
    verdict.outcome = outcome;
    *state = flake::state_of(outcome);
}

/// The run status, reason and cause of a terminal decision.
fn terminal(d: &Decision) -> Option<(RunStatus, Option<String>, Option<Cause>)> {
    Some(match d {
        Decision::Converged => (
            RunStatus::Converged,
            Some("every predicate passes".into()),
            None,
        ),
        Decision::Stuck { cause, reason } => (
            RunStatus::Stuck,
            Some(format!("{cause}: {reason}")),
            Some(*cause),
        ),
        Decision::OverBudget { reason } => (RunStatus::OverBudget, Some(reason.clone()), None),
        Decision::Tampered { reason } => (RunStatus::Tampered, Some(reason.clone()), None),
        Decision::Interrupted => (RunStatus::Interrupted, None, None),
        Decision::Dispatch { .. } | Decision::Deploy | Decision::Wait { .. } => return None,
    })
}

fn input_name(i: &Input) -> &'static str {
    match i {
        Input::Start { .. } => "Start",
        Input::Prepared(_) => "Prepared",
        Input::Observed(_) => "Observed",
        Input::Dispatched(_) => "Dispatched",
        Input::Deployed(_) => "Deployed",
        Input::Slept => "Slept",
        Input::Landed(_) => "Landed",
        Input::Interrupted { .. } => "Interrupted",
    }
}
