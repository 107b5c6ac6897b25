//! The loop: seal → observe (concurrent, flake policy) → persist → decide → act,
//! until every predicate holds or the run stops honestly. Pure cores live in the
//! submodules; [`Driver`] owns the run state and every effect goes through the
//! [`Observe`] and [`Act`] traits (real ones below, fakes in tests) and the store.

pub mod budget;
pub mod decide;
pub mod flake;
pub mod progress;
pub mod prompt;
pub mod seal;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::{DEFAULT_AGENT_TIMEOUT, Dispatcher};
use crate::goal::{ResolvedGoal, ResolvedPredicate};
use crate::run::{
    Decision, DispatchOutcome, DispatchRecord, Event, IterationRecord, PredicateResult, RunStatus,
    Spent, State, Vector,
};
use crate::sandbox::Sandbox;
use crate::store::{Store, now_ms};
use crate::verdict::{Outcome, Verdict};
use flake::{Classified, Quarantine};
use progress::{RatchetCheck, Streak};
use seal::{Seal, Snapshot};

/// How long a standing goal waits between observations after convergence, by default.
pub const DEFAULT_STANDING_INTERVAL: Duration = Duration::from_secs(60);
/// Pause between observations while waiting on live or quarantined predicates.
pub const WAIT_INTERVAL: Duration = Duration::from_secs(2);

/// Evaluates one predicate once (the real one runs it in the sandbox).
pub trait Observe: Send + Sync + 'static {
    fn evaluate(
        &self,
        p: &ResolvedPredicate,
        iteration: u32,
    ) -> impl Future<Output = Verdict> + Send;
}

/// The loop's effects on the world besides observing.
pub trait Act: Send + Sync {
    /// Run the agent on `prompt`.
    fn dispatch(
        &self,
        prompt: &str,
        predicates: &[String],
        timeout: Duration,
    ) -> impl Future<Output = DispatchRecord> + Send;
    /// Run `[deploy]`; `Err` carries what went wrong.
    fn deploy(
        &self,
        run: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// Content hashes of the workspace, for the scope check.
    fn snapshot(&self) -> Snapshot;
    /// The seal of the goal file and protected paths.
    fn seal(&self) -> Seal;
}

/// What the loop remembers between iterations (persisted with each iteration, so a
/// resumed run continues it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Quarantined predicates and their pass streak.
    pub quarantine: BTreeMap<String, u32>,
    /// Best metric value per ratcheted predicate.
    pub ratchet_best: BTreeMap<String, f64>,
    pub streak: Streak,
    pub last_vector: Vector,
    /// Iteration of the last dispatch (regressions are attributed to it).
    pub last_dispatch: Option<u64>,
    /// The last agent failure and how many times in a row it happened.
    pub agent_failure: Option<(String, u32)>,
    pub deployed: bool,
    pub waits: u32,
    /// The seal taken when the run started.
    pub seal: Seal,
    /// Whether the run has converged once (standing goals).
    pub converged: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub spent: Spent,
    /// The last observation.
    pub last: Vec<PredicateResult>,
    /// Every event of this invocation.
    pub events: Vec<Event>,
    /// The goal passed entirely at its first observation (refused as vacuous).
    pub vacuous: bool,
}

/// Told about each persisted iteration and dispatch (for `--stream` and live lines).
pub trait Watch: Send {
    fn iteration(&mut self, _it: &IterationRecord) {}
    fn dispatching(&mut self, _predicates: &[String]) {}
    fn dispatched(&mut self, _d: &DispatchRecord) {}
}

/// No watching.
pub struct Unwatched;
impl Watch for Unwatched {}

/// Owns one run.
pub struct Driver<O: Observe, A: Act> {
    pub goal: ResolvedGoal,
    pub observer: Arc<O>,
    pub actor: A,
    pub store: Store,
    pub run_id: String,
    pub state: LoopState,
    pub spent: Spent,
    pub jobs: usize,
    /// Iterations already recorded (non-zero when resuming).
    pub iteration: u64,
}

impl<O: Observe, A: Act> Driver<O, A> {
    /// Run until a terminal outcome. Dropping the future (Ctrl-C) is safe: every
    /// iteration is committed before it is acted on, and a running agent's process
    /// group is killed when its future is dropped.
    pub async fn run(
        &mut self,
        watch: &mut dyn Watch,
    ) -> Result<RunOutcome, crate::store::StoreError> {
        let started = tokio::time::Instant::now();
        let base_wall_ms = self.spent.wall_clock_ms;
        let mut events_all = Vec::new();
        loop {
            let iteration_started = now_ms();
            self.spent.wall_clock_ms = base_wall_ms + started.elapsed().as_millis() as u64;
            // Seal check first: a changed goal or protected file ends the run.
            let tamper = seal::diff(&self.state.seal, &self.actor.seal());
            let first = self.iteration == 0;
            let (results, mut events) = if tamper.is_empty() {
                self.observe().await
            } else {
                (Vec::new(), Vec::new())
            };
            self.spent.iterations += 1;
            self.iteration += 1;
            self.spent.wall_clock_ms = base_wall_ms + started.elapsed().as_millis() as u64;

            let decision = if !tamper.is_empty() {
                let reason = format!("{}; a tampered run can never converge", tamper.join(", "));
                events.push(Event {
                    kind: "tamper".into(),
                    predicate: None,
                    message: reason.clone(),
                });
                Decision::Tampered { reason }
            } else {
                self.decide(&results, first, &mut events)
            };
            if first && decision == Decision::Converged && !self.goal.goal.standing {
                let it = self.record(
                    &results,
                    Decision::Stuck {
                        cause: "vacuous".into(),
                        reason: "every predicate already passes".into(),
                    },
                    events.clone(),
                    iteration_started,
                );
                self.store.record_iteration(&self.run_id, &it)?;
                watch.iteration(&it);
                let reason = "the goal is vacuous: every predicate already passes at the start, so there is nothing to build or repair; hint: add a predicate that fails now, or set `standing = true` to keep watching".to_owned();
                self.store.finish_run(
                    &self.run_id,
                    RunStatus::Error,
                    Some(&reason),
                    &self.spent,
                    now_ms(),
                )?;
                return Ok(self.outcome(RunStatus::Error, Some(reason), results, events, true));
            }
            let it = self.record(
                &results,
                decision.clone(),
                events.clone(),
                iteration_started,
            );
            self.store.record_iteration(&self.run_id, &it)?;
            watch.iteration(&it);
            events_all.extend(events);

            let terminal = |status: RunStatus, reason: Option<String>| (status, reason);
            let end = match &decision {
                Decision::Converged if self.goal.goal.standing => {
                    self.state.converged = true;
                    // A standing watch ends only when its budget does, converged.
                    if let Some(reason) = budget::exhausted(&self.goal.goal.budget, &self.spent) {
                        let reason =
                            format!("every predicate passes; the standing watch stopped: {reason}");
                        self.store.finish_run(
                            &self.run_id,
                            RunStatus::Converged,
                            Some(&reason),
                            &self.spent,
                            now_ms(),
                        )?;
                        return Ok(self.outcome(
                            RunStatus::Converged,
                            Some(reason),
                            results,
                            events_all,
                            false,
                        ));
                    }
                    tokio::time::sleep(
                        self.goal.goal.interval.unwrap_or(DEFAULT_STANDING_INTERVAL),
                    )
                    .await;
                    None
                }
                Decision::Converged => Some(terminal(
                    RunStatus::Converged,
                    Some("every predicate passes".into()),
                )),
                Decision::Stuck { cause, reason } => Some(terminal(
                    RunStatus::Stuck,
                    Some(format!("{cause}: {reason}")),
                )),
                Decision::OverBudget { reason } => {
                    Some(terminal(RunStatus::OverBudget, Some(reason.clone())))
                }
                Decision::Tampered { reason } => {
                    Some(terminal(RunStatus::Tampered, Some(reason.clone())))
                }
                Decision::Interrupted => Some(terminal(RunStatus::Interrupted, None)),
                Decision::Wait { .. } => {
                    self.state.waits += 1;
                    tokio::time::sleep(WAIT_INTERVAL).await;
                    None
                }
                Decision::Deploy => {
                    let deploy = self
                        .goal
                        .goal
                        .deploy
                        .clone()
                        .expect("deploy decided only with [deploy]");
                    let timeout = deploy.timeout.unwrap_or(DEFAULT_AGENT_TIMEOUT);
                    match self.actor.deploy(&deploy.run, timeout).await {
                        Ok(msg) => {
                            self.state.deployed = true;
                            events_all.push(Event {
                                kind: "deploy".into(),
                                predicate: None,
                                message: msg,
                            });
                            None
                        }
                        Err(msg) => Some(terminal(
                            RunStatus::Stuck,
                            Some(format!("deploy_failed: {msg}")),
                        )),
                    }
                }
                Decision::Dispatch { predicates } => {
                    self.state.waits = 0;
                    watch.dispatching(predicates);
                    let (rec, events, stop) = self
                        .dispatch(predicates, &results, base_wall_ms, started)
                        .await;
                    self.store.record_dispatch(
                        &self.run_id,
                        self.iteration,
                        &rec,
                        &events,
                        &self.spent,
                    )?;
                    watch.dispatched(&rec);
                    events_all.extend(events);
                    stop.map(|reason| terminal(RunStatus::Stuck, Some(reason)))
                }
            };
            if let Some((status, reason)) = end {
                self.spent.wall_clock_ms = base_wall_ms + started.elapsed().as_millis() as u64;
                self.store.finish_run(
                    &self.run_id,
                    status,
                    reason.as_deref(),
                    &self.spent,
                    now_ms(),
                )?;
                return Ok(self.outcome(status, reason, results, events_all, false));
            }
        }
    }

    fn outcome(
        &self,
        status: RunStatus,
        reason: Option<String>,
        last: Vec<PredicateResult>,
        events: Vec<Event>,
        vacuous: bool,
    ) -> RunOutcome {
        RunOutcome {
            run_id: self.run_id.clone(),
            status,
            reason,
            spent: self.spent,
            last,
            events,
            vacuous,
        }
    }

    fn record(
        &self,
        results: &[PredicateResult],
        decision: Decision,
        events: Vec<Event>,
        started_at_ms: i64,
    ) -> IterationRecord {
        IterationRecord {
            index: self.iteration,
            results: results.to_vec(),
            decision,
            events,
            spent: self.spent,
            state: serde_json::to_value(&self.state).expect("loop state serialises"),
            started_at_ms,
        }
    }

    /// Evaluate every predicate (bounded concurrency), re-running failures, then apply
    /// quarantine and ratchets. Returns the results and the events they raised.
    async fn observe(&mut self) -> (Vec<PredicateResult>, Vec<Event>) {
        let iteration = self.iteration as u32;
        let permits = Arc::new(tokio::sync::Semaphore::new(self.jobs.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in self.goal.predicates.iter().enumerate() {
            let (observer, permits, p) = (self.observer.clone(), permits.clone(), p.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore open");
                let t = tokio::time::Instant::now();
                let first = observer.evaluate(&p, iteration).await;
                let mut reruns = Vec::new();
                let mut last = first.clone();
                if first.outcome != Outcome::Pass {
                    for _ in 0..flake::RERUNS {
                        let v = observer.evaluate(&p, iteration).await;
                        let pass = v.outcome == Outcome::Pass;
                        reruns.push(v.outcome);
                        last = v;
                        if pass {
                            break;
                        }
                    }
                }
                (i, first, reruns, last, t.elapsed())
            });
        }
        let mut raw = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                raw.push(r);
            }
        }
        raw.sort_by_key(|r| r.0);
        let mut results = Vec::new();
        let mut events = Vec::new();
        for (i, first, reruns, last, elapsed) in raw {
            let spec = &self.goal.predicates[i].spec;
            let classified = flake::classify(first.outcome, &reruns);
            // The evidence shown is the first failure's, or the pass that cleared it.
            let mut verdict = if classified == Classified::Flaky {
                last
            } else {
                first
            };
            let held = self.state.quarantine.get(&spec.id).copied();
            let mut quarantined = false;
            let mut state = match flake::quarantine_step(held, classified) {
                Quarantine::Clear(s) => s,
                Quarantine::Entered => {
                    self.state.quarantine.insert(spec.id.clone(), 0);
                    quarantined = true;
                    events.push(Event {
                        kind: "quarantine".into(),
                        predicate: Some(spec.id.clone()),
                        message: format!("\"{}\" passed on a re-run after failing: quarantined as flaky until it passes {} observations in a row", spec.id, flake::REHAB_PASSES),
                    });
                    State::Unknown
                }
                Quarantine::Held { passes } => {
                    self.state.quarantine.insert(spec.id.clone(), passes);
                    quarantined = true;
                    State::Unknown
                }
                Quarantine::Lifted => {
                    self.state.quarantine.remove(&spec.id);
                    events.push(Event {
                        kind: "rehabilitated".into(),
                        predicate: Some(spec.id.clone()),
                        message: format!(
                            "\"{}\" passed {} observations in a row: quarantine lifted",
                            spec.id,
                            flake::REHAB_PASSES
                        ),
                    });
                    State::Pass
                }
            };
            if let Some(r) = &spec.ratchet
                && (state == State::Pass || state == State::Fail)
            {
                let value = verdict.metrics.get(&r.metric).copied();
                match progress::ratchet(r, self.state.ratchet_best.get(&spec.id).copied(), value) {
                    RatchetCheck::Holds { best } => {
                        self.state.ratchet_best.insert(spec.id.clone(), best);
                    }
                    RatchetCheck::Broken { value, best } => {
                        let dir = match r.direction {
                            crate::goal::RatchetDirection::NoDecrease => "fell",
                            crate::goal::RatchetDirection::NoIncrease => "rose",
                        };
                        let msg = format!(
                            "ratchet: {} {dir} to {value} from the best {best} seen in this run",
                            r.metric
                        );
                        events.push(Event {
                            kind: "ratchet".into(),
                            predicate: Some(spec.id.clone()),
                            message: msg.clone(),
                        });
                        verdict.details = format!("{}\n{}", verdict.summary, verdict.details)
                            .trim_end()
                            .to_owned();
                        verdict.summary = msg;
                        verdict.outcome = Outcome::Fail;
                        state = State::Fail;
                    }
                    RatchetCheck::Missing if state == State::Pass => {
                        let msg = format!(
                            "ratchet: the predicate did not report the metric `{}`",
                            r.metric
                        );
                        verdict.details = format!("{}\n{}", verdict.summary, verdict.details)
                            .trim_end()
                            .to_owned();
                        verdict.summary = msg;
                        verdict.outcome = Outcome::Error;
                        state = State::Error;
                    }
                    RatchetCheck::Missing => {}
                }
            }
            results.push(PredicateResult {
                id: spec.id.clone(),
                state,
                verdict,
                duration_ms: elapsed.as_millis() as u64,
                attempts: 1 + reruns.len() as u32,
                quarantined,
            });
        }
        let vector: Vector = results.iter().map(|r| (r.id.clone(), r.state)).collect();
        for (id, s) in progress::regressions(&self.state.last_vector, &vector) {
            let by = self.state.last_dispatch.map_or_else(
                || "no dispatch".to_owned(),
                |i| format!("the dispatch of iteration {i}"),
            );
            events.push(Event {
                kind: "regression".into(),
                predicate: Some(id.clone()),
                message: format!(
                    "\"{id}\" passed before and is now {}, after {by}",
                    s.as_str()
                ),
            });
        }
        self.state.last_vector = vector;
        (results, events)
    }

    fn decide(
        &mut self,
        results: &[PredicateResult],
        first: bool,
        _events: &mut Vec<Event>,
    ) -> Decision {
        let specs: BTreeMap<&str, &crate::goal::PredicateSpec> = self
            .goal
            .predicates
            .iter()
            .map(|p| (p.spec.id.as_str(), &p.spec))
            .collect();
        let failing: BTreeSet<String> = results
            .iter()
            .filter(|r| matches!(r.state, State::Fail | State::Error) && !specs[r.id.as_str()].live)
            .map(|r| r.id.clone())
            .collect();
        let scores: BTreeMap<String, f64> = results
            .iter()
            .filter_map(|r| r.verdict.score.map(|s| (r.id.clone(), s)))
            .collect();
        let stuck = self.state.streak.observe(&failing, &scores);
        let facts = decide::Facts {
            predicates: results
                .iter()
                .map(|r| decide::Fact {
                    id: &r.id,
                    state: r.state,
                    summary: &r.verdict.summary,
                    live: specs[r.id.as_str()].live,
                    held_out: specs[r.id.as_str()].held_out,
                })
                .collect(),
            first,
            budget: budget::exhausted(&self.goal.goal.budget, &self.spent),
            stuck,
            has_deploy: self.goal.goal.deploy.is_some(),
            deployed: self.state.deployed,
            waits: self.state.waits,
        };
        decide::decide(&facts)
    }

    /// Dispatch the agent on the visible failing predicates. Returns the record, the
    /// events it raised, and a stuck reason when agent failures repeat.
    async fn dispatch(
        &mut self,
        predicates: &[String],
        results: &[PredicateResult],
        base_wall_ms: u64,
        started: tokio::time::Instant,
    ) -> (DispatchRecord, Vec<Event>, Option<String>) {
        let specs: BTreeMap<&str, &crate::goal::PredicateSpec> = self
            .goal
            .predicates
            .iter()
            .map(|p| (p.spec.id.as_str(), &p.spec))
            .collect();
        let failing: Vec<prompt::Failing<'_>> = results
            .iter()
            .filter(|r| predicates.contains(&r.id))
            .map(|r| prompt::Failing {
                id: &r.id,
                description: specs[r.id.as_str()].description.as_deref(),
                verdict: &r.verdict,
            })
            .collect();
        let text = prompt::render(&self.goal.goal, &failing);
        let mut timeout = self
            .goal
            .goal
            .agent
            .timeout
            .unwrap_or(DEFAULT_AGENT_TIMEOUT);
        if let Some(left) = budget::remaining_wall_clock(&self.goal.goal.budget, &self.spent) {
            timeout = timeout.min(left.max(Duration::from_secs(1)));
        }
        let before = self.actor.snapshot();
        let mut rec = self.actor.dispatch(&text, predicates, timeout).await;
        let after = self.actor.snapshot();
        rec.changed_files = seal::changed(&before, &after);
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
        self.state.last_dispatch = Some(self.iteration);
        self.spent.dispatches += 1;
        self.spent.tokens += rec.tokens_in.unwrap_or(0) + rec.tokens_out.unwrap_or(0);
        self.spent.cost_usd += rec.cost_usd.unwrap_or(0.0);
        self.spent.wall_clock_ms = base_wall_ms + started.elapsed().as_millis() as u64;

        let mut events = Vec::new();
        let scope = &self.goal.goal.scope;
        let (outside, hits) = seal::classify(&rec.changed_files, &scope.writable, &scope.protected);
        if !outside.is_empty() {
            events.push(Event {
                kind: "scope".into(),
                predicate: None,
                message: format!(
                    "the agent changed files outside `writable`: {}",
                    outside.join(", ")
                ),
            });
        }
        if !hits.is_empty() {
            events.push(Event {
                kind: "gaming".into(),
                predicate: None,
                message: format!("the agent changed protected files: {}", hits.join(", ")),
            });
        }
        // Agent failures are not progress: the same failure twice in a row stops the run.
        // A timeout that left changes behind did some work, so it is not counted.
        let timed_out_with_work =
            rec.outcome == DispatchOutcome::TimedOut && !rec.changed_files.is_empty();
        let failed = rec.outcome.is_agent_error() && !timed_out_with_work;
        let mut stop = None;
        if failed {
            let key = format!(
                "{}: {}",
                rec.outcome.as_str(),
                rec.message.clone().unwrap_or_default()
            );
            let count = match &self.state.agent_failure {
                Some((k, n)) if *k == key => n + 1,
                _ => 1,
            };
            events.push(Event {
                kind: "agent_error".into(),
                predicate: None,
                message: key.clone(),
            });
            if count >= 2 {
                stop = Some(format!(
                    "agent_error: the agent failed the same way twice in a row ({key})"
                ));
            }
            self.state.agent_failure = Some((key, count));
        } else {
            self.state.agent_failure = None;
        }
        (rec, events, stop)
    }
}

/// The real observer: the predicate in the sandbox against the workspace.
pub struct SandboxObserver {
    pub sandbox: Arc<Sandbox>,
    pub workspace: PathBuf,
}

impl Observe for SandboxObserver {
    async fn evaluate(&self, p: &ResolvedPredicate, iteration: u32) -> Verdict {
        let opts = crate::observe::eval_options(p, iteration);
        self.sandbox
            .evaluate(&p.component, &self.workspace, &p.spec.config, &opts)
            .await
    }
}

/// The real effects: an agent through its profile, `[deploy]` as a process, and the
/// workspace on disk.
pub struct LiveActor {
    pub dispatcher: Dispatcher,
    pub goal_path: PathBuf,
    pub protected: Vec<String>,
}

impl Act for LiveActor {
    async fn dispatch(
        &self,
        prompt: &str,
        predicates: &[String],
        timeout: Duration,
    ) -> DispatchRecord {
        self.dispatcher.dispatch(prompt, predicates, timeout).await
    }

    async fn deploy(&self, run: &[String], timeout: Duration) -> Result<String, String> {
        let ws = &self.dispatcher.workspace;
        let path = std::env::var_os("PATH");
        let program = crate::process::resolve_program(&run[0], path.as_deref(), ws)
            .ok_or_else(|| format!("deploy program `{}` was not found", run[0]))?;
        let f = crate::process::run(crate::process::Spawn {
            program,
            args: run[1..].to_vec(),
            cwd: ws.clone(),
            env: std::env::vars_os().collect(),
            stdin: None,
            timeout,
            output_cap: crate::process::DEFAULT_OUTPUT_CAP,
        })
        .await
        .map_err(|e| format!("cannot run `{}`: {e}", run[0]))?;
        let tail = crate::verdict::truncate_middle(String::from_utf8_lossy(&f.stderr).trim(), 1024);
        match (f.timed_out, f.status) {
            (true, _) => Err(format!(
                "`{}` timed out after {}",
                run.join(" "),
                humantime::format_duration(timeout)
            )),
            (false, Some(0)) => Ok(format!("`{}` succeeded", run.join(" "))),
            (false, code) => Err(format!("`{}` exited with {code:?}: {tail}", run.join(" "))),
        }
    }

    fn snapshot(&self) -> Snapshot {
        seal::snapshot(&self.dispatcher.workspace)
    }

    fn seal(&self) -> Seal {
        seal::compute(&self.goal_path, &self.dispatcher.workspace, &self.protected)
    }
}
