//! Loop overhead per iteration, excluding agent and predicate time but including the
//! SQLite commits (issue: the reconcile loop, item 8). Run with
//! `cargo bench -p kazi --bench reconcile`.
//!
//! The interpreter runs a real goal's plan with a real read-model on disk; the world
//! is an instant fake whose failing set alternates, so the run neither converges nor
//! gets stuck until `max_iterations` ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kazi::reconcile::{
    self, DispatchRequest, Evaluation, Prepared, Reconciler, Stop, Unwatched, World,
};
use kazi::run::{DispatchOutcome, DispatchRecord};
use kazi::store::{NewRun, ProcessRecord, Store};
use kazi::verdict::{Outcome, Verdict};

/// Predicate `a` fails on even observations, `b` and `c` on odd ones; the agent is
/// instant.
struct Alternating(Arc<AtomicU32>);

impl World for Alternating {
    async fn prepare(&mut self) -> Prepared {
        Prepared::default()
    }

    async fn observe(&mut self, ids: &[String], iteration: u32, _attempt: u32) -> Vec<Evaluation> {
        ids.iter()
            .map(|id| {
                self.0.fetch_add(1, Ordering::Relaxed);
                let failing = iteration.is_multiple_of(2) == (id == "a");
                let mut v = Verdict::error(if failing { "failing" } else { "passing" });
                v.outcome = if failing {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                };
                Evaluation {
                    id: id.clone(),
                    verdict: v,
                    duration_ms: 0,
                }
            })
            .collect()
    }

    async fn dispatch(&mut self, req: DispatchRequest<'_>) -> DispatchRecord {
        let mut d = DispatchRecord::new("bench", None, req.prompt, req.predicates);
        d.exit_code = Some(0);
        d.tokens_in = Some(100);
        d.tokens_out = Some(10);
        d.cost_usd = Some(0.001);
        d.outcome = DispatchOutcome::Completed;
        d.message = Some("done".into());
        d
    }

    async fn deploy(&mut self, _run: &[String], _timeout: Duration) -> Result<String, String> {
        Ok(String::new())
    }

    async fn land(&mut self, _results: &[kazi::run::PredicateResult]) -> Result<String, String> {
        Ok(String::new())
    }

    fn settle(&mut self, _process: Option<&ProcessRecord>) -> String {
        String::new()
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
    let evaluations = Arc::new(AtomicU32::new(0));
    let mut world = Alternating(evaluations.clone());
    let machine = Reconciler::new(reconcile::plan(&goal, false, false));
    let t = Instant::now();
    let outcome = rt
        .block_on(reconcile::drive(
            machine,
            &mut world,
            &mut store,
            &run_id,
            &mut Unwatched,
            &Stop::default(),
        ))
        .unwrap();
    let elapsed = t.elapsed();
    assert_eq!(outcome.spent.iterations, ITERATIONS, "{outcome:?}");
    println!(
        "loop overhead per iteration (observe 3 fake predicates with re-runs, decide, 3 SQLite commits, fake dispatch): {:?} \
         (n={ITERATIONS}, {} evaluations, total {elapsed:?})",
        elapsed / ITERATIONS as u32,
        evaluations.load(Ordering::Relaxed)
    );
}
