//! Observation: evaluate predicates of a resolved goal concurrently (bounded), each in
//! its own fresh sandbox store. One [`Observer`] serves `kazi check` (one pass) and
//! `kazi run` (the loop asks for attempts and re-runs by predicate id).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::goal::{ResolvedGoal, ResolvedPredicate};
use crate::sandbox::{DEFAULT_MEMORY_BYTES, DEFAULT_PREDICATE_TIMEOUT, EvalOptions, Sandbox};
use crate::verdict::Verdict;

pub use kazi_core::machine::Evaluation;

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

/// Evaluates the predicates of one goal against one workspace.
#[derive(Clone)]
pub struct Observer {
    sandbox: Arc<Sandbox>,
    predicates: Arc<Vec<ResolvedPredicate>>,
    workspace: PathBuf,
    jobs: usize,
    progress: Arc<dyn Progress>,
}

impl Observer {
    /// An observer of `goal`'s predicates in `workspace`, at most `jobs` at once.
    pub fn new(
        sandbox: Arc<Sandbox>,
        goal: &ResolvedGoal,
        workspace: PathBuf,
        jobs: usize,
    ) -> Self {
        Self {
            sandbox,
            predicates: Arc::new(goal.predicates.clone()),
            workspace,
            jobs: jobs.max(1),
            progress: Arc::new(Silent),
        }
    }

    /// Report each evaluation to `progress` (live lines).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Every predicate id, in goal order.
    pub fn ids(&self) -> Vec<String> {
        self.predicates.iter().map(|p| p.spec.id.clone()).collect()
    }

    /// Evaluate the predicates named by `ids` once (observation `iteration`, as the
    /// guests see it in their context). Results come back in the order of `ids`; an id
    /// the goal does not have is an `error`.
    pub async fn observe(&self, ids: &[String], iteration: u32) -> Vec<Evaluation> {
        let permits = Arc::new(Semaphore::new(self.jobs));
        // One share per call: identical commands run once per observation attempt, and
        // a flake re-run (another call) runs them afresh.
        let share = crate::sandbox::ExecShare::new();
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(p) = self.predicates.iter().find(|p| &p.spec.id == id).cloned() else {
                tasks.push(None);
                continue;
            };
            let (sandbox, permits, progress) =
                (self.sandbox.clone(), permits.clone(), self.progress.clone());
            let workspace = self.workspace.clone();
            let share = share.clone();
            tasks.push(Some(tokio::spawn(async move {
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
                    duration_ms: started.elapsed().as_millis() as u64,
                };
                progress.finished(&e);
                e
            })));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (task, id) in tasks.into_iter().zip(ids) {
            let failed = |why: String| Evaluation {
                id: id.clone(),
                verdict: Verdict::error(format!("predicate `{id}`: {why}")),
                duration_ms: 0,
            };
            out.push(match task {
                Some(task) => task
                    .await
                    .unwrap_or_else(|e| failed(format!("evaluation task failed: {e}"))),
                None => failed("no such predicate in the goal (internal error)".into()),
            });
        }
        for e in &mut out {
            share.annotate(&e.id, &mut e.verdict);
        }
        out
    }

    /// Every predicate once: what `kazi check` shows.
    pub async fn observe_all(&self) -> Vec<Evaluation> {
        self.observe(&self.ids(), 0).await
    }
}

/// The duration of an evaluation.
pub fn duration(e: &Evaluation) -> Duration {
    Duration::from_millis(e.duration_ms)
}
