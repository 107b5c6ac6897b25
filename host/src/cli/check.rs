//! `kazi check`: observe a goal once, no agent. A CI gate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::{LiveLines, Printer};
use crate::exit;
use crate::goal;
use crate::observe::{self, Evaluation};
use crate::sandbox::Sandbox;
use crate::verdict::Outcome;

/// Version of the `--json` report of `kazi check`.
pub const CHECK_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The goal file.
    goal: PathBuf,
    /// The workspace (default: `[scope] workspace`, relative to the goal file).
    #[arg(long, short = 'w')]
    workspace: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Evaluate at most N predicates at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// Load, resolve and check the workspace of a goal; shared with `kazi run`.
pub async fn prepare(
    goal_path: &std::path::Path,
    workspace: Option<&std::path::Path>,
    printer: &Printer,
) -> Result<(Arc<Sandbox>, goal::ResolvedGoal, PathBuf), CliError> {
    let goal = goal::load(goal_path).map_err(|e| CliError::Invalid(e.to_string()))?;
    for n in &goal.notices {
        printer.notice(n);
    }
    let ws = workspace.map_or_else(|| goal.scope.workspace.clone(), PathBuf::from);
    let ws = ws.canonicalize().map_err(|e| {
        CliError::Invalid(format!("failed to open the workspace {}: {e}; hint: pass --workspace DIR or fix `[scope] workspace`", ws.display()))
    })?;
    if !ws.is_dir() {
        return Err(CliError::Invalid(format!(
            "the workspace {} is not a directory",
            ws.display()
        )));
    }
    let sandbox =
        Arc::new(Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))?);
    let printed = goal.notices.len();
    let resolved = goal::resolve(&sandbox, goal)
        .await
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    for n in &resolved.goal.notices[printed..] {
        printer.notice(n);
    }
    Ok((sandbox, resolved, ws))
}

/// The number of CPUs, the default concurrency.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub async fn run(args: CheckArgs, printer: &Printer) -> Result<u8, CliError> {
    if args.jobs == Some(0) {
        return Err(CliError::Usage("--jobs must be at least 1".into()));
    }
    let started = Instant::now();
    let (sandbox, goal, ws) = prepare(&args.goal, args.workspace.as_deref(), printer).await?;
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let live = Arc::new(LiveLines::new(printer, goal.predicates.len()));
    let results = observe::observe_goal(&sandbox, &goal, &ws, jobs, live.clone()).await;
    live.clear();
    let status = overall(&results);
    if args.json {
        printer.json(&json!({
            "schema_version": CHECK_SCHEMA_VERSION,
            "goal_id": goal.goal.id,
            "workspace": ws,
            "status": status,
            "predicates": results.iter().map(evaluation_json).collect::<Vec<_>>(),
            "duration_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        let count = |o: Outcome| results.iter().filter(|e| e.verdict.outcome == o).count();
        printer.out(&format!(
            "goal {}: {} predicate{}: {} pass, {} fail, {} error ({:.2}s)",
            goal.goal.id,
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Error),
            started.elapsed().as_secs_f64()
        ));
        for e in &results {
            printer.verdict_line(&e.id, &e.verdict, e.verdict.outcome != Outcome::Pass);
        }
    }
    Ok(if status == "pass" {
        exit::SUCCESS
    } else {
        exit::NOT_CONVERGED
    })
}

/// `pass` when every predicate passes, `error` when any could not be evaluated,
/// otherwise `fail`.
pub fn overall(results: &[Evaluation]) -> &'static str {
    if results.iter().any(|e| e.verdict.outcome == Outcome::Error) {
        "error"
    } else if results.iter().all(|e| e.verdict.outcome == Outcome::Pass) {
        "pass"
    } else {
        "fail"
    }
}

/// One predicate in `--json` output.
pub fn evaluation_json(e: &Evaluation) -> serde_json::Value {
    json!({
        "id": e.id,
        "verdict": e.verdict.outcome,
        "summary": e.verdict.summary,
        "details": e.verdict.details,
        "diagnostics": e.verdict.diagnostics,
        "score": e.verdict.score,
        "metrics": e.verdict.metrics,
        "duration_ms": e.duration.as_millis() as u64,
    })
}
