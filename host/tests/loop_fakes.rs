//! The loop's time-based and live behaviour, driven with fake observers and agents
//! under paused tokio time (no test here waits for a real clock): deploy before live
//! predicates, polling live predicates, standing goals re-dispatching on drift.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kazi::goal::{ResolvedGoal, ResolvedPredicate};
use kazi::reconcile::{Act, Driver, LoopState, Observe, RunOutcome, Unwatched, seal};
use kazi::run::{DispatchOutcome, DispatchRecord, RunStatus};
use kazi::sandbox::Sandbox;
use kazi::store::{NewRun, Store};
use kazi::verdict::{Outcome, Verdict};

/// The world the fakes share: which predicates pass right now, and what happened.
#[derive(Default)]
struct World {
    passing: Vec<String>,
    dispatches: Vec<Vec<String>>,
    deploys: u32,
    /// After this many observations, `drift` stops passing (standing goals).
    drift_after: Option<(u32, String)>,
    observations: u32,
}

struct FakeObserver(Arc<Mutex<World>>);

impl Observe for FakeObserver {
    async fn evaluate(&self, p: &ResolvedPredicate, _iteration: u32) -> Verdict {
        let w = self.0.lock().unwrap();
        let pass = w.passing.contains(&p.spec.id);
        let mut v = Verdict::error(if pass { "ok" } else { "not yet" });
        v.outcome = if pass {
            Outcome::Pass
        } else if p.spec.live {
            Outcome::Error
        } else {
            Outcome::Fail
        };
        v
    }
}

/// The agent fixes whatever it is asked to; deploying makes live predicates pass.
struct FakeActor {
    world: Arc<Mutex<World>>,
    live: Vec<String>,
}

impl Act for FakeActor {
    async fn dispatch(
        &self,
        prompt: &str,
        predicates: &[String],
        _timeout: Duration,
    ) -> DispatchRecord {
        let mut w = self.world.lock().unwrap();
        w.dispatches.push(predicates.to_vec());
        w.passing.extend(predicates.iter().cloned());
        DispatchRecord {
            profile: "fake".into(),
            model: None,
            prompt_sha256: String::new(),
            prompt_bytes: prompt.len() as u64,
            predicates: predicates.to_vec(),
            exit_code: Some(0),
            duration_ms: 0,
            tokens_in: None,
            tokens_out: None,
            tokens_cached: None,
            cost_usd: None,
            session_id: None,
            outcome: DispatchOutcome::Completed,
            message: None,
            permission_denials: Vec::new(),
            changed_files: Vec::new(),
        }
    }
    async fn deploy(&self, _run: &[String], _timeout: Duration) -> Result<String, String> {
        let mut w = self.world.lock().unwrap();
        w.deploys += 1;
        w.passing.extend(self.live.iter().cloned());
        Ok("deployed".into())
    }
    fn snapshot(&self) -> seal::Snapshot {
        // Standing goals: the world drifts between observations.
        let mut w = self.world.lock().unwrap();
        w.observations += 1;
        seal::Snapshot::new()
    }
    fn seal(&self) -> seal::Seal {
        let mut w = self.world.lock().unwrap();
        w.observations += 1;
        if let Some((after, id)) = w.drift_after.clone()
            && w.observations > after
        {
            w.passing.retain(|p| *p != id);
            w.drift_after = None;
        }
        seal::Seal::default()
    }
}

async fn run(
    text: &str,
    world: Arc<Mutex<World>>,
    live: &[&str],
) -> (RunOutcome, Arc<Mutex<World>>) {
    let dir = tempfile::tempdir().unwrap();
    let goal = kazi::goal::load_str(&dir.path().join("kazi.toml"), text).unwrap();
    let sandbox = Sandbox::new(None).unwrap();
    let component = sandbox
        .load_predicate(&kazi::builtins::predicate("file").unwrap())
        .await
        .unwrap();
    let predicates = goal
        .predicates
        .iter()
        .map(|spec| ResolvedPredicate {
            spec: spec.clone(),
            component: component.clone(),
            grants: Default::default(),
        })
        .collect();
    let mut store = Store::open(&dir.path().join("kazi.db")).unwrap();
    let run_id = store
        .create_run(&NewRun {
            goal_id: goal.id.clone(),
            goal_path: "kazi.toml".into(),
            workspace: "ws".into(),
            goal_sha256: String::new(),
            goal_text: text.into(),
            seal: serde_json::json!({"entries": {}}),
            profile: "fake".into(),
            model: None,
            started_at_ms: 0,
        })
        .unwrap();
    let mut driver = Driver {
        goal: ResolvedGoal { goal, predicates },
        observer: Arc::new(FakeObserver(world.clone())),
        actor: FakeActor {
            world: world.clone(),
            live: live.iter().map(|s| s.to_string()).collect(),
        },
        store,
        run_id,
        state: LoopState::default(),
        spent: Default::default(),
        jobs: 2,
        iteration: 0,
    };
    let outcome = driver.run(&mut Unwatched).await.unwrap();
    (outcome, world)
}

const CODE_AND_LIVE: &str = "id = \"svc\"\n\
    [[predicate]]\nid = \"code\"\nuse = \"file\"\npath = \"x\"\n\
    [[predicate]]\nid = \"healthz\"\nuse = \"file\"\npath = \"y\"\nlive = true\n\
    [deploy]\nrun = [\"./deploy.sh\"]\n";

#[tokio::test(start_paused = true)]
async fn code_first_then_deploy_then_live_predicates_converge() {
    let (outcome, world) = run(CODE_AND_LIVE, Arc::default(), &["healthz"]).await;
    assert_eq!(outcome.status, RunStatus::Converged, "{outcome:?}");
    let w = world.lock().unwrap();
    assert_eq!(
        w.dispatches,
        vec![vec!["code".to_string()]],
        "live predicates are never dispatched"
    );
    assert_eq!(w.deploys, 1);
    assert!(outcome.events.iter().any(|e| e.kind == "deploy"));
}

#[tokio::test(start_paused = true)]
async fn live_predicates_that_never_come_up_are_stuck_after_polling() {
    // Deploying does not bring `healthz` up: kazi polls, then says so.
    let (outcome, world) = run(CODE_AND_LIVE, Arc::default(), &[]).await;
    assert_eq!(outcome.status, RunStatus::Stuck, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("live_not_ready"),
        "{outcome:?}"
    );
    assert_eq!(world.lock().unwrap().deploys, 1);
}

#[tokio::test(start_paused = true)]
async fn a_standing_goal_redispatches_on_drift() {
    let text = "id = \"standing\"\nstanding = true\ninterval = \"5m\"\n\
        [budget]\nmax_iterations = 6\n\
        [[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"x\"\n";
    let world = Arc::new(Mutex::new(World {
        drift_after: Some((4, "a".into())),
        ..World::default()
    }));
    let (outcome, world) = run(text, world, &[]).await;
    // It converged, kept watching, saw `a` drift, fixed it again, and stopped only at
    // its iteration budget, converged (standing goals do not end on convergence).
    let w = world.lock().unwrap();
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
    let world = Arc::new(Mutex::new(World {
        passing: vec!["a".into()],
        ..World::default()
    }));
    let (outcome, _) = run(text, world, &[]).await;
    assert!(!outcome.vacuous);
    assert_eq!(outcome.spent.iterations, 2);
}
