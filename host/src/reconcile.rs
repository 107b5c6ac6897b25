//! The loop's interpreter. Every rule lives in the pure state machine
//! ([`kazi_core::machine::Reconciler`]); this module performs the effects it asks
//! for, in order, against a [`World`] (the real one in [`world`], fakes in tests),
//! persists every record *before* acting on it, owns the clock and cancellation
//! (SIGINT, SIGTERM, SIGHUP), and finishes every run itself — interrupts included.

pub mod seal;
pub mod world;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use kazi_core::machine::{
    Clock, DispatchRow, Effect, Evaluation, Input, LoopState, Reconciler, Record, RunOutcome,
    WAIT_INTERVAL,
};
pub use kazi_core::plan::Plan;
pub use kazi_core::scope::{Prepared, Revert};
pub use world::LiveWorld;

use crate::goal::Goal;
use crate::run::{DispatchRecord, IterationRecord, Spent};
use crate::store::{ProcessRecord, Store, StoreError, now_ms};

/// How long a standing goal waits between observations after convergence, by default.
pub const DEFAULT_STANDING_INTERVAL: Duration = Duration::from_secs(60);
/// How long an interrupted agent gets to be killed and read before kazi stops
/// waiting for it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the loop asks the agent to do.
pub struct DispatchRequest<'a> {
    pub prompt: &'a str,
    pub predicates: &'a [String],
    pub timeout: Duration,
    /// Fires when kazi is stopped: the agent is killed and the record says so.
    pub stop: &'a CancellationToken,
    /// Called with the agent's process as soon as it exists, before it runs its
    /// program, so a crash of kazi can never lose track of it; an `Err` kills it
    /// before it ran anything.
    pub spawned: Option<crate::process::SpawnHook>,
}

/// The effects of a run on the world.
pub trait World: Send {
    /// Before an observation: check the seal (in place) or enforce the scope in the
    /// task worktree.
    fn prepare(&mut self) -> impl Future<Output = Prepared> + Send;
    /// Evaluate these predicates once (observation `iteration`, attempt `attempt`).
    fn observe(
        &mut self,
        predicates: &[String],
        iteration: u32,
        attempt: u32,
    ) -> impl Future<Output = Vec<Evaluation>> + Send;
    /// Run the agent (its changed files in the record).
    fn dispatch(&mut self, req: DispatchRequest<'_>)
    -> impl Future<Output = DispatchRecord> + Send;
    /// Run `[deploy]`.
    fn deploy(
        &mut self,
        run: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// Land the converged changes (`results`: the final observation, for the
    /// landing commit's message).
    fn land(
        &mut self,
        results: &[crate::run::PredicateResult],
    ) -> impl Future<Output = Result<String, String>> + Send;
    /// End the process of a dispatch a crashed kazi left behind; say what happened.
    fn settle(&mut self, process: Option<&ProcessRecord>) -> String;
}

/// Told about what the run does (for `--stream` and live lines).
pub trait Watch: Send {
    fn observing(&mut self, _predicates: &[String], _attempt: u32) {}
    fn iteration(&mut self, _it: &IterationRecord) {}
    fn dispatching(&mut self, _predicates: &[String], _spent: &Spent) {}
    fn dispatched(&mut self, _d: &DispatchRecord) {}
    fn deploying(&mut self, _run: &[String]) {}
    fn waiting(&mut self, _for: Duration) {}
}

/// No watching.
pub struct Unwatched;
impl Watch for Unwatched {}

/// Why kazi was asked to stop, and the token that tells every effect.
#[derive(Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    why: Arc<Mutex<Option<String>>>,
}

impl Stop {
    /// A stop that fires on SIGINT, SIGTERM or SIGHUP (Unix).
    pub fn on_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let stop = Self::default();
        for (kind, name) in [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
        ] {
            let mut s = signal(kind)?;
            let stop = stop.clone();
            tokio::spawn(async move {
                if s.recv().await.is_some() {
                    stop.fire(name);
                }
            });
        }
        Ok(stop)
    }

    /// Ask everything to stop, saying why (the first reason wins).
    pub fn fire(&self, why: &str) {
        let mut w = self.why.lock().expect("stop lock");
        if w.is_none() {
            *w = Some(why.to_owned());
        }
        self.token.cancel();
    }

    pub fn is_fired(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason given to [`Stop::fire`].
    pub fn why(&self) -> String {
        self.why
            .lock()
            .expect("stop lock")
            .clone()
            .unwrap_or_else(|| "a stop request".into())
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Resolves when stopped.
    pub async fn fired(&self) {
        self.token.cancelled().await
    }
}

/// The plan of a goal: what the state machine knows of it.
pub fn plan(goal: &Goal, isolated: bool, land: bool) -> Plan {
    use kazi_core::plan::{Brief, Deploy, PredicatePlan};
    Plan {
        brief: Brief {
            id: goal.id.clone(),
            title: goal.name.clone().unwrap_or_else(|| goal.id.clone()),
            description: goal.description.clone(),
            mode: goal.mode,
            writable: goal.scope.writable.clone(),
            protected: goal.scope.protected.clone(),
        },
        predicates: goal
            .predicates
            .iter()
            .map(|p| PredicatePlan {
                id: p.id.clone(),
                description: p.description.clone(),
                live: p.live,
                held_out: p.held_out,
                ratchets: p.ratchets.clone(),
                skips_fail: !p.allow_skips,
            })
            .collect(),
        budget: goal.budget.clone(),
        standing: goal
            .standing
            .then(|| goal.interval.unwrap_or(DEFAULT_STANDING_INTERVAL)),
        deploy: goal.deploy.as_ref().map(|d| Deploy {
            run: d.run.clone(),
            timeout: d.timeout.unwrap_or(crate::agent::DEFAULT_AGENT_TIMEOUT),
        }),
        agent_timeout: goal
            .agent
            .timeout
            .unwrap_or(crate::agent::DEFAULT_AGENT_TIMEOUT),
        profile: goal.agent.profile.clone(),
        model: goal.agent.model.clone(),
        land,
        isolated,
    }
}

/// Drive one run to its end: feed the machine, perform its effects, persist its
/// records (before the effects that follow them), and return how it ended. Only a
/// failure to write the read-model is an error; everything else is an outcome.
pub async fn drive<W: World>(
    mut machine: Reconciler,
    world: &mut W,
    store: &mut Store,
    run_id: &str,
    watch: &mut dyn Watch,
    stop: &Stop,
) -> Result<RunOutcome, StoreError> {
    let started = tokio::time::Instant::now();
    let clock = || Clock {
        elapsed_ms: started.elapsed().as_millis() as u64,
        epoch_ms: now_ms(),
    };
    // Dispatches a crashed process left: end their agents first, then tell the machine.
    let mut unfinished = Vec::new();
    for u in store.unfinished_dispatches(run_id)? {
        let what_happened = world.settle(u.process.as_ref());
        unfinished.push(kazi_core::machine::Unfinished {
            row: u.row,
            iteration: u.iteration,
            what_happened,
            record: u.record,
        });
    }
    let mut current: Option<i64> = None;
    let mut input = Input::Start { unfinished };
    loop {
        let effects = machine.step(clock(), input);
        let mut next = None;
        for effect in effects {
            match effect {
                Effect::Persist(record) => {
                    store.persist(run_id, &record, &mut current)?;
                    if let Record::Iteration(it) = &record {
                        watch.iteration(it);
                    }
                }
                Effect::Finish(outcome) => return Ok(outcome),
                other => next = Some(other),
            }
        }
        let effect = next.expect("the machine asks for something until it finishes");
        input = perform(effect, &machine, world, store, current, watch, stop).await;
    }
}

/// Perform one effect and say what happened. A stop request ends any effect early
/// (an agent is killed and its record kept).
async fn perform<W: World>(
    effect: Effect,
    machine: &Reconciler,
    world: &mut W,
    store: &mut Store,
    current: Option<i64>,
    watch: &mut dyn Watch,
    stop: &Stop,
) -> Input {
    let interrupted = |dispatch| Input::Interrupted {
        signal: stop.why(),
        dispatch,
    };
    if stop.is_fired() {
        return interrupted(None);
    }
    let iteration = machine.iteration() as u32;
    match effect {
        Effect::Prepare => tokio::select! {
            p = world.prepare() => Input::Prepared(p),
            () = stop.fired() => interrupted(None),
        },
        Effect::Observe {
            predicates,
            attempt,
        } => {
            watch.observing(&predicates, attempt);
            tokio::select! {
                e = world.observe(&predicates, iteration, attempt) => Input::Observed(e),
                () = stop.fired() => interrupted(None),
            }
        }
        Effect::Dispatch {
            prompt,
            predicates,
            timeout,
        } => {
            watch.dispatching(&predicates, &machine.spent());
            // The hook runs on the spawner thread before the agent runs its program:
            // it records the process through its own connection.
            let spawned = current.map(|row| {
                let db = store.path().to_owned();
                Box::new(move |s: &crate::process::Started| {
                    let record = ProcessRecord {
                        pid: s.pid,
                        pgid: s.pgid,
                        start_ticks: Some(s.start_time),
                    };
                    Store::open(&db)
                        .and_then(|mut st| st.set_dispatch_process(row, &record))
                        .map_err(|e| {
                            format!("could not record the agent's process before it ran: {e}")
                        })
                }) as crate::process::SpawnHook
            });
            let dispatch = world.dispatch(DispatchRequest {
                prompt: &prompt,
                predicates: &predicates,
                timeout,
                stop: stop.token(),
                spawned,
            });
            tokio::pin!(dispatch);
            // A stopped dispatch still returns (its agent killed); wait a little for it.
            let rec = tokio::select! {
                r = &mut dispatch => Some(r),
                () = async {
                    stop.fired().await;
                    tokio::time::sleep(STOP_GRACE).await;
                } => None,
            };
            if let Some(r) = &rec {
                watch.dispatched(r);
            }
            match rec {
                Some(r) if !stop.is_fired() => Input::Dispatched(r),
                Some(r) => interrupted(Some(r)),
                None => interrupted(Some(DispatchRecord::new(
                    "agent",
                    None,
                    &prompt,
                    &predicates,
                ))),
            }
        }
        Effect::Deploy { run, timeout } => {
            watch.deploying(&run);
            tokio::select! {
                r = world.deploy(&run, timeout) => Input::Deployed(r),
                () = stop.fired() => interrupted(None),
            }
        }
        Effect::Sleep(d) => {
            watch.waiting(d);
            tokio::select! {
                () = tokio::time::sleep(d) => Input::Slept,
                () = stop.fired() => interrupted(None),
            }
        }
        Effect::Land { results } => Input::Landed(world.land(&results).await),
        Effect::Persist(_) | Effect::Finish(_) => unreachable!("handled by drive"),
    }
}
