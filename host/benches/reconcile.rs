//! Loop overhead per iteration, excluding agent and predicate time but including the
//! SQLite commits (issue: the reconcile loop, item 8). Run with
//! `cargo bench -p kazi --bench reconcile`.
//!
//! The driver runs a real goal with a real read-model on disk; the observer and the
//! agent are instant fakes whose failing set alternates, so the run neither converges
//! nor gets stuck until `max_iterations` ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kazi::goal::{ResolvedGoal, ResolvedPredicate};
use kazi::reconcile::{Act, Driver, LoopState, Observe, Unwatched, seal};
use kazi::run::{DispatchOutcome, DispatchRecord};
use kazi::sandbox::Sandbox;
use kazi::store::{NewRun, Store};
use kazi::verdict::{Outcome, Verdict};

struct Alternating(AtomicU32);

impl Observe for Alternating {
    async fn evaluate(&self, p: &ResolvedPredicate, iteration: u32) -> Verdict {
        self.0.fetch_add(1, Ordering::Relaxed);
        let failing = iteration.is_multiple_of(2) == (p.spec.id == "a");
        let mut v = Verdict::error(if failing { "failing" } else { "passing" });
        v.outcome = if failing {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        v
    }
}

struct InstantAgent;

impl Act for InstantAgent {
    async fn dispatch(
        &self,
        prompt: &str,
        predicates: &[String],
        _timeout: Duration,
    ) -> DispatchRecord {
        DispatchRecord {
            profile: "bench".into(),
            model: None,
            prompt_sha256: String::new(),
            prompt_bytes: prompt.len() as u64,
            predicates: predicates.to_vec(),
            exit_code: Some(0),
            duration_ms: 0,
            tokens_in: Some(100),
            tokens_out: Some(10),
            tokens_cached: None,
            cost_usd: Some(0.001),
            session_id: None,
            outcome: DispatchOutcome::Completed,
            message: Some("done".into()),
            permission_denials: Vec::new(),
            changed_files: Vec::new(),
        }
    }
    async fn deploy(&self, _run: &[String], _timeout: Duration) -> Result<String, String> {
        Ok(String::new())
    }
    fn snapshot(&self) -> seal::Snapshot {
        seal::Snapshot::new()
    }
    fn seal(&self) -> seal::Seal {
        seal::Seal::default()
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    const ITERATIONS: u64 = 500;
    let text = format!(
        "id = \"bench\"\n[budget]\nmax_iterations = {ITERATIONS}\n\
         [[predicate]]\nid = \"a\"\nuse = \"file\"\npath = \"a\"\n\
         [[predicate]]\nid = \"b\"\nuse = \"file\"\npath = \"b\"\n\
         [[predicate]]\nid = \"c\"\nuse = \"file\"\npath = \"c\"\n"
    );
    let goal = kazi::goal::load_str(&dir.path().join("kazi.toml"), &text).unwrap();
    let sandbox = Sandbox::new(Some(dir.path().join("cache"))).unwrap();
    let component = rt
        .block_on(sandbox.load_predicate(&kazi::builtins::predicate("file").unwrap()))
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
            goal_id: "bench".into(),
            goal_path: "kazi.toml".into(),
            workspace: dir.path().display().to_string(),
            goal_sha256: String::new(),
            goal_text: text.clone(),
            seal: serde_json::json!({"entries": {}}),
            profile: "bench".into(),
            model: None,
            started_at_ms: 0,
        })
        .unwrap();
    let observer = Arc::new(Alternating(AtomicU32::new(0)));
    let mut driver = Driver {
        goal: ResolvedGoal { goal, predicates },
        observer: observer.clone(),
        actor: InstantAgent,
        store,
        run_id,
        state: LoopState::default(),
        spent: Default::default(),
        jobs: 2,
        iteration: 0,
    };
    let t = Instant::now();
    let outcome = rt.block_on(driver.run(&mut Unwatched)).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(outcome.spent.iterations, ITERATIONS, "{outcome:?}");
    println!(
        "loop overhead per iteration (observe 3 fake predicates, decide, 2 SQLite commits, fake dispatch): {:?} \
         (n={ITERATIONS}, {} evaluations, total {elapsed:?})",
        elapsed / ITERATIONS as u32,
        observer.0.load(Ordering::Relaxed)
    );
}
