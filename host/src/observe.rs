//! One observation: evaluate every predicate of a resolved goal concurrently
//! (bounded), each in its own fresh sandbox store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::goal::{ResolvedGoal, ResolvedPredicate};
use crate::sandbox::{DEFAULT_MEMORY_BYTES, DEFAULT_PREDICATE_TIMEOUT, EvalOptions, Sandbox};
use crate::verdict::Verdict;

/// One predicate's result in an observation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub id: String,
    pub verdict: Verdict,
    pub duration: Duration,
}

/// Told when a predicate starts and finishes (for live progress lines).
pub trait Progress: Send + Sync {
    fn started(&self, _id: &str) {}
    fn finished(&self, _evaluation: &Evaluation) {}
}

/// No progress output.
pub struct Silent;
impl Progress for Silent {}

/// The evaluation options for one predicate.
pub fn eval_options(p: &ResolvedPredicate, iteration: u32) -> EvalOptions {
    EvalOptions {
        grants: p.grants.clone(),
        timeout: p.spec.timeout.unwrap_or(DEFAULT_PREDICATE_TIMEOUT),
        memory_bytes: p.spec.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES),
        predicate_id: p.spec.id.clone(),
        iteration,
        exec_share: None,
    }
}

/// Evaluate `predicates` (a subset of the goal, or all of it) against `workspace`,
/// at most `jobs` at a time. Results come back in the order given.
pub async fn observe(
    sandbox: &Arc<Sandbox>,
    predicates: &[ResolvedPredicate],
    workspace: &Path,
    jobs: usize,
    iteration: u32,
    progress: Arc<dyn Progress>,
) -> Vec<Evaluation> {
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    // One share per call: identical commands run once per observation attempt, and a
    // flake re-run (another call) runs them afresh.
    let share = crate::sandbox::ExecShare::new();
    let mut tasks = Vec::with_capacity(predicates.len());
    for p in predicates {
        let (sandbox, permits, progress) = (sandbox.clone(), permits.clone(), progress.clone());
        let share = share.clone();
        let p = p.clone();
        let workspace = workspace.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            progress.started(&p.spec.id);
            let started = Instant::now();
            let opts = EvalOptions {
                exec_share: Some(share),
                ..eval_options(&p, iteration)
            };
            let verdict = sandbox
                .evaluate(&p.component, &workspace, &p.spec.config, &opts)
                .await;
            let e = Evaluation {
                id: p.spec.id.clone(),
                verdict,
                duration: started.elapsed(),
            };
            progress.finished(&e);
            e
        }));
    }
    let mut out: Vec<Evaluation> = Vec::with_capacity(tasks.len());
    for (task, p) in tasks.into_iter().zip(predicates) {
        out.push(task.await.unwrap_or_else(|e| Evaluation {
            id: p.spec.id.clone(),
            verdict: Verdict::error(format!(
                "predicate `{}`: evaluation task failed: {e}",
                p.spec.id
            )),
            duration: Duration::ZERO,
        }));
    }
    for e in &mut out {
        share.annotate(&e.id, &mut e.verdict);
    }
    out
}

/// Every predicate of `goal`.
pub async fn observe_goal(
    sandbox: &Arc<Sandbox>,
    goal: &ResolvedGoal,
    workspace: &Path,
    jobs: usize,
    progress: Arc<dyn Progress>,
) -> Vec<Evaluation> {
    observe(sandbox, &goal.predicates, workspace, jobs, 0, progress).await
}
