//! The loop's interpreter driven with a fake world and a real read-model under paused
//! tokio time (no test here waits for a real clock): deploy before live predicates,
//! polling, standing goals re-dispatching on drift, write-ahead dispatches, stops
//! during a dispatch, and resuming a run a crash cut off. The rules themselves are
//! table- and property-tested in `kazi-core` (core/tests/machine.rs).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kazi::reconcile::{
    self, DispatchRequest, Evaluation, Prepared, Reconciler, RunOutcome, Stop, Unwatched, World,
};
use kazi::run::{DispatchOutcome, DispatchRecord, EventKind, RunStatus};
use kazi::store::{NewRun, ProcessRecord, Store};
use kazi::verdict::{Outcome, Verdict};

/// The world the fakes share: which predicates pass right now, and what happened.
#[derive(Default)]
struct State {
    passing: Vec<String>,
    live: Vec<String>,
    dispatches: Vec<Vec<String>>,
    deploys: u32,
    /// After this many observations, the predicate stops passing (standing goals).
    drift_after: Option<(u32, String)>,
    observations: u32,
    /// The agent waits for a stop request instead of fixing anything.
    agent_hangs: bool,
    /// What the read-model said while the agent ran.
    seen_during_dispatch: Vec<(u64, Vec<DispatchOutcome>)>,
    settled: Vec<Option<ProcessRecord>>,
    /// Agent pids the read-model held while the agent ran.
    recorded_processes: Vec<i32>,
}

struct Fake {
    state: Arc<Mutex<State>>,
    db: PathBuf,
    run_id: String,
}

impl World for Fake {
    async fn prepare(&mut self) -> Prepared {
        let mut w = self.state.lock().unwrap();
        w.observations += 1;
        if let Some((after, id)) = w.drift_after.clone()
            && w.observations > after
        {
            w.passing.retain(|p| *p != id);
            w.drift_after = None;
        }
        Prepared::default()
    }

    async fn observe(&mut self, ids: &[String], _iteration: u32, _attempt: u32) -> Vec<Evaluation> {
        let w = self.state.lock().unwrap();
        ids.iter()
            .map(|id| {
                let pass = w.passing.contains(id);
                let mut v = Verdict::error(if pass { "ok" } else { "not yet" });
                v.outcome = if pass {
                    Outcome::Pass
                } else if w.live.contains(id) {
                    Outcome::Error
                } else {
                    Outcome::Fail
                };
                Evaluation {
                    id: id.clone(),
                    verdict: v,
                    duration_ms: 1,
                }
            })
            .collect()
    }

    async fn dispatch(&mut self, req: DispatchRequest<'_>) -> DispatchRecord {
        // Write-ahead: the dispatch is in the read-model, counted, before it runs.
        let run = Store::open_read_only(&self.db)
            .unwrap()
            .unwrap()
            .load_run(&self.run_id)
            .unwrap();
        let hangs = {
            let mut w = self.state.lock().unwrap();
            w.seen_during_dispatch.push((
                run.summary.spent.dispatches,
                run.dispatches.iter().map(|d| d.record.outcome).collect(),
            ));
            w.dispatches.push(req.predicates.to_vec());
            w.agent_hangs
        };
        if let Some(hook) = req.spawned {
            hook(&kazi::process::Started {
                pid: 4242,
                pgid: 4242,
                start_time: 7,
                call_id: "test".into(),
            })
            .unwrap();
            let unfinished = Store::open_read_only(&self.db)
                .unwrap()
                .unwrap()
                .unfinished_dispatches(&self.run_id)
                .unwrap();
            self.state
                .lock()
                .unwrap()
                .recorded_processes
                .extend(unfinished.iter().filter_map(|u| u.process.map(|p| p.pid)));
        }
        let mut rec = DispatchRecord::new("fake", None, req.prompt, req.predicates);
        if hangs {
            req.stop.cancelled().await;
            rec.outcome = DispatchOutcome::Interrupted;
            rec.message = Some("its last words".into());
            return rec;
        }
        self.state
            .lock()
            .unwrap()
            .passing
            .extend(req.predicates.iter().cloned());
        rec.outcome = DispatchOutcome::Completed;
        rec.exit_code = Some(0);
        rec.cost_usd = Some(0.5);
        rec
    }

    async fn deploy(&mut self, _run: &[String], _timeout: Duration) -> Result<String, String> {
        let mut w = self.state.lock().unwrap();
        w.deploys += 1;
        let live = w.live.clone();
        w.passing.extend(live);
        Ok("deployed".into())
    }

    async fn land(&mut self, _results: &[kazi::run::PredicateResult]) -> Result<String, String> {
        Err("no landing in these tests".into())
    }

    fn settle(&mut self, process: Option<&ProcessRecord>) -> String {
        self.state.lock().unwrap().settled.push(process.copied());
        "it was gone".into()
    }
}

fn new_run(store: &mut Store, text: &str) -> String {
    store
        .create_run(&NewRun {
            goal_id: "g".into(),
            goal_path: "kazi.toml".into(),
            workspace: "ws".into(),
            goal_sha256: String::new(),
            goal_text: text.into(),
            seal: serde_json::json!({"entries": {}}),
            profile: "fake".into(),
            model: None,
            started_at_ms: 0,
        })
        .unwrap()
}

async fn drive(
    text: &str,
    state: Arc<Mutex<State>>,
    dir: &Path,
    stop: &Stop,
) -> (RunOutcome, String) {
    let goal = kazi::goal::load_str(&dir.join("kazi.toml"), text).unwrap();
    let db = dir.join("kazi.db");
    let mut store = Store::open(&db).unwrap();
    let run_id = new_run(&mut store, text);
    let mut fake = Fake {
        state,
        db,
        run_id: run_id.clone(),
    };
    let machine = Reconciler::new(reconcile::plan(&goal, false, false));
    let outcome = reconcile::drive(
        machine,
        &mut fake,
        &mut store,
        &run_id,
        &mut Unwatched,
        stop,
    )
    .await
    .unwrap();
    (outcome, run_id)
}

async fn run(text: &str, state: Arc<Mutex<State>>) -> RunOutcome {
    let dir = tempfile::tempdir().unwrap();
    drive(text, state, dir.path(), &Stop::default()).await.0
}

const CODE_AND_LIVE: &str = "id = \"svc\"\n\
    [[predicate]]\nid = \"code\"\nuse = \"file\"\npath = \"x\"\n\
    [[predicate]]\nid = \"healthz\"\nuse = \"file\"\npath = \"y\"\nlive = true\n\
    [deploy]\nrun = [\"./deploy.sh\"]\n";

/// `healthz` is live: it errors until `[deploy]` runs.
fn with_live() -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State {
        live: vec!["healthz".into()],
        ..State::default()
    }))
}

#[tokio::test(start_paused = true)]
async fn code_first_then_deploy_then_live_predicates_converge() {
    let state = with_live();
    let outcome = run(CODE_AND_LIVE, state.clone()).await;
    assert_eq!(outcome.status, RunStatus::Converged, "{outcome:?}");
    let w = state.lock().unwrap();
    assert_eq!(
        w.dispatches,
        vec![vec!["code".to_string()]],
        "live predicates are never dispatched"
    );
    assert_eq!(w.deploys, 1);
    assert!(outcome.events.iter().any(|e| e.kind == EventKind::Deploy));
}

#[tokio::test(start_paused = true)]
async fn live_predicates_that_never_come_up_are_stuck_after_polling() {
    let state = Arc::new(Mutex::new(State::default()));
    // `healthz` errors (connection refused) and deploying does not bring it up.
    state.lock().unwrap().live = vec!["healthz".into()];
    let outcome = {
        let dir = tempfile::tempdir().unwrap();
        let text = CODE_AND_LIVE;
        let goal = kazi::goal::load_str(&dir.path().join("kazi.toml"), text).unwrap();
        let db = dir.path().join("kazi.db");
        let mut store = Store::open(&db).unwrap();
        let run_id = new_run(&mut store, text);
        struct NoDeploy(Fake);
        impl World for NoDeploy {
            async fn prepare(&mut self) -> Prepared {
                self.0.prepare().await
            }
            async fn observe(&mut self, ids: &[String], i: u32, a: u32) -> Vec<Evaluation> {
                self.0.observe(ids, i, a).await
            }
            async fn dispatch(&mut self, req: DispatchRequest<'_>) -> DispatchRecord {
                self.0.dispatch(req).await
            }
            async fn deploy(&mut self, _run: &[String], _t: Duration) -> Result<String, String> {
                self.0.state.lock().unwrap().deploys += 1;
                Ok("deployed, but nothing answers".into())
            }
            async fn land(&mut self, r: &[kazi::run::PredicateResult]) -> Result<String, String> {
                self.0.land(r).await
            }
            fn settle(&mut self, p: Option<&ProcessRecord>) -> String {
                self.0.settle(p)
            }
        }
        let mut world = NoDeploy(Fake {
            state: state.clone(),
            db,
            run_id: run_id.clone(),
        });
        let machine = Reconciler::new(reconcile::plan(&goal, false, false));
        reconcile::drive(
            machine,
            &mut world,
            &mut store,
            &run_id,
            &mut Unwatched,
            &Stop::default(),
        )
        .await
        .unwrap()
    };
    assert_eq!(outcome.status, RunStatus::Stuck, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("live_not_ready"),
        "{outcome:?}"
    );
    assert_eq!(state.lock().unwrap().deploys, 1);
}

#[tokio::test(start_paused = true)]
async fn a_standing_goal_redispatches_on_drift() {
    let text = "id = \"standing\"\nstanding = true\ninterval = \"5m\"\n\
        [budget]\nmax_iterations = 6\n\
        [[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let state = Arc::new(Mutex::new(State {
        drift_after: Some((4, "a".into())),
        ..State::default()
    }));
    let outcome = run(text, state.clone()).await;
    // It converged, kept watching, saw `a` drift, fixed it again, and stopped only at
    // its iteration budget, converged (standing goals do not end on convergence).
    let w = state.lock().unwrap();
    assert_eq!(
        w.dispatches.len(),
        2,
        "one dispatch to converge, one after the drift"
    );
    assert_eq!(outcome.status, RunStatus::Converged, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .contains("standing watch stopped"),
        "{outcome:?}"
    );
    assert_eq!(outcome.spent.iterations, 6);
}

#[tokio::test(start_paused = true)]
async fn a_standing_goal_that_already_passes_is_not_vacuous() {
    let text = "id = \"standing\"\nstanding = true\n[budget]\nmax_iterations = 2\n\
        [[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let state = Arc::new(Mutex::new(State {
        passing: vec!["a".into()],
        ..State::default()
    }));
    let outcome = run(text, state).await;
    assert_eq!(outcome.status, RunStatus::Converged, "{outcome:?}");
    assert_eq!(outcome.spent.iterations, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dispatch_is_recorded_and_counted_before_the_agent_runs() {
    let text = "id = \"g\"\n[[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let state = Arc::new(Mutex::new(State::default()));
    let dir = tempfile::tempdir().unwrap();
    let (outcome, run_id) = drive(text, state.clone(), dir.path(), &Stop::default()).await;
    assert_eq!(outcome.status, RunStatus::Converged);
    assert_eq!(
        state.lock().unwrap().seen_during_dispatch,
        vec![(1, vec![DispatchOutcome::Running])],
        "while the agent ran, its dispatch was already recorded and counted"
    );
    assert_eq!(state.lock().unwrap().recorded_processes, vec![4242]);
    let run = Store::open_read_only(&dir.path().join("kazi.db"))
        .unwrap()
        .unwrap()
        .load_run(&run_id)
        .unwrap();
    assert_eq!(run.dispatches.len(), 1);
    let d = &run.dispatches[0];
    assert_eq!(d.record.outcome, DispatchOutcome::Completed);
    assert_eq!(d.record.cost_usd, Some(0.5));
    assert!(
        d.prompt.as_deref().unwrap().contains("## a"),
        "{:?}",
        d.prompt
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_dispatch_keeps_its_record_and_ends_the_run_interrupted() {
    let text = "id = \"g\"\n[[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let state = Arc::new(Mutex::new(State {
        agent_hangs: true,
        ..State::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    let stop = Stop::default();
    let stopper = {
        let stop = stop.clone();
        let state = state.clone();
        tokio::spawn(async move {
            while state.lock().unwrap().dispatches.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop.fire("SIGTERM");
        })
    };
    let (outcome, run_id) = drive(text, state, dir.path(), &stop).await;
    stopper.await.unwrap();
    assert_eq!(outcome.status, RunStatus::Interrupted);
    assert_eq!(outcome.reason.as_deref(), Some("interrupted by SIGTERM"));
    let run = Store::open_read_only(&dir.path().join("kazi.db"))
        .unwrap()
        .unwrap()
        .load_run(&run_id)
        .unwrap();
    assert_eq!(run.summary.status, RunStatus::Interrupted);
    assert_eq!(run.dispatches.len(), 1);
    assert_eq!(
        run.dispatches[0].record.outcome,
        DispatchOutcome::Interrupted
    );
    assert_eq!(
        run.dispatches[0].record.message.as_deref(),
        Some("its last words")
    );
    assert!(
        run.events
            .iter()
            .any(|(_, e)| e.kind == EventKind::Interrupted)
    );
}

#[tokio::test(start_paused = true)]
async fn resuming_settles_a_dispatch_a_crash_cut_off() {
    let text = "id = \"g\"\n[budget]\nmax_dispatches = 2\n\
        [[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kazi.db");
    let goal = kazi::goal::load_str(&dir.path().join("kazi.toml"), text).unwrap();
    let mut store = Store::open(&db).unwrap();
    let run_id = new_run(&mut store, text);
    // A process began a dispatch, recorded its agent, and died.
    let spent = kazi::run::Spent {
        iterations: 1,
        dispatches: 1,
        ..Default::default()
    };
    let rec = DispatchRecord::new("fake", None, "prompt", &["a".into()]);
    let row = store
        .begin_dispatch(&run_id, 1, "prompt", &rec, &spent, &serde_json::json!({}))
        .unwrap();
    let process = ProcessRecord {
        pid: 99_999_999,
        pgid: 99_999_999,
        start_ticks: Some(1),
    };
    store.set_dispatch_process(row, &process).unwrap();

    let state = Arc::new(Mutex::new(State::default()));
    let mut fake = Fake {
        state: state.clone(),
        db: db.clone(),
        run_id: run_id.clone(),
    };
    let stored = store.load_run(&run_id).unwrap();
    let machine = Reconciler::resume(
        reconcile::plan(&goal, false, false),
        serde_json::from_value(stored.last_state.clone()).unwrap(),
        stored.summary.spent,
        stored.summary.iterations,
    );
    let outcome = reconcile::drive(
        machine,
        &mut fake,
        &mut store,
        &run_id,
        &mut Unwatched,
        &Stop::default(),
    )
    .await
    .unwrap();
    assert_eq!(state.lock().unwrap().settled, vec![Some(process)]);
    assert_eq!(outcome.status, RunStatus::Converged, "{outcome:?}");
    // The crashed dispatch counted: one more launch, two in all (the budget's limit).
    assert_eq!(outcome.spent.dispatches, 2);
    assert_eq!(outcome.spent.unknown_cost_dispatches, 1);
    let run = store.load_run(&run_id).unwrap();
    assert_eq!(
        run.dispatches[0].record.outcome,
        DispatchOutcome::Interrupted
    );
    assert!(
        run.dispatches[0]
            .record
            .message
            .as_deref()
            .unwrap()
            .contains("it was gone")
    );
    assert!(store.unfinished_dispatches(&run_id).unwrap().is_empty());
}
