//! `kazi check`: observe a goal once, no agent. A CI gate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::{LiveLines, Printer};
use crate::exit;
use crate::goal;
use crate::observe::{Evaluation, Observer};
use crate::sandbox::Sandbox;
use crate::verdict::Outcome;

/// Version of the `--json` report of `kazi check`.
pub const CHECK_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The goal file, or a directory holding `kazi.toml` [default: ./kazi.toml, else
    /// the only goal in .kazi/goals/].
    goal: Option<PathBuf>,
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

impl CheckArgs {
    /// `--json`: stdout carries one JSON object, even on failure.
    pub fn json_output(&self) -> bool {
        self.json
    }
}

/// The goal file a command means: the argument (a file, or a directory holding
/// `kazi.toml`), else `./kazi.toml`, else the only goal under `.kazi/goals/`.
pub fn find_goal(arg: Option<&Path>) -> Result<PathBuf, CliError> {
    match arg {
        Some(p) if p.is_dir() => {
            let file = p.join("kazi.toml");
            if file.is_file() {
                return Ok(file);
            }
            let goals = goals_in(&p.join(".kazi").join("goals"));
            match goals.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(CliError::Usage(format!(
                    "{} is a directory with no kazi.toml{}; hint: pass the goal file, or `kazi init {}` writes one",
                    p.display(),
                    several(&goals),
                    p.display()
                ))),
            }
        }
        Some(p) => Ok(p.to_path_buf()),
        None => {
            let here = Path::new("kazi.toml");
            if here.is_file() {
                return Ok(here.to_path_buf());
            }
            let goals = goals_in(Path::new(".kazi/goals"));
            match goals.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(CliError::Usage(format!(
                    "no goal given, and there is no ./kazi.toml{}; hint: pass a goal file, or `kazi init` writes a starter one",
                    several(&goals)
                ))),
            }
        }
    }
}

/// The `.toml` files in `dir`, sorted.
fn goals_in(dir: &Path) -> Vec<PathBuf> {
    let mut goals: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    goals.sort();
    goals
}

fn several(goals: &[PathBuf]) -> String {
    if goals.len() < 2 {
        return String::new();
    }
    format!(
        " and .kazi/goals/ holds several goals ({}): say which",
        goals
            .iter()
            .map(|g| g.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Load, resolve and check the workspace of a goal; shared with `kazi run`.
pub async fn prepare(
    goal_path: &Path,
    workspace: Option<&Path>,
    printer: &Printer,
) -> Result<(Arc<Sandbox>, goal::ResolvedGoal, PathBuf), CliError> {
    let goal = goal::load(goal_path)?;
    for n in &goal.notices {
        printer.notice(n);
    }
    let ws = workspace.map_or_else(|| goal.scope.workspace.clone(), PathBuf::from);
    let problem = |reason: String| -> CliError {
        match (&goal.scope.workspace_at, workspace) {
            // The goal's own `[scope] workspace`: point at it.
            (Some(at), None) => CliError::Goal(goal::GoalError::Invalid {
                path: goal.path.clone(),
                problems: vec![goal::Problem {
                    line: at.line,
                    col: at.col,
                    message: format!("the workspace {} {reason}", ws.display()),
                    hint: Some(
                        "fix `[scope] workspace` (relative to the goal file), or pass --workspace DIR"
                            .into(),
                    ),
                    source_line: at.text.clone(),
                }],
            }),
            _ => CliError::Invalid(format!(
                "failed to open the workspace {}: it {reason}; hint: pass --workspace DIR or fix `[scope] workspace`",
                ws.display()
            )),
        }
    };
    let ws = match ws.canonicalize() {
        Ok(ws) if ws.is_dir() => ws,
        Ok(_) => return Err(problem("is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(problem("does not exist".into()));
        }
        Err(e) => return Err(problem(format!("cannot be opened ({e})"))),
    };
    let sandbox =
        Arc::new(Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))?);
    let printed = goal.notices.len();
    let resolved = goal::resolve(&sandbox, goal).await?;
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
    let goal_path = find_goal(args.goal.as_deref())?;
    let (sandbox, goal, ws) = prepare(&goal_path, args.workspace.as_deref(), printer).await?;
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let live = Arc::new(LiveLines::new(printer, goal.predicates.len()));
    let observer = Observer::new(sandbox, &goal, ws.clone(), jobs).with_progress(live.clone());
    let stop = crate::reconcile::Stop::on_signals()
        .map_err(|e| CliError::Failed(format!("failed to listen for signals: {e}")))?;
    let results = tokio::select! {
        r = observer.observe_all() => r,
        () = stop.fired() => {
            live.clear();
            // Dropping the observation killed every program the predicates ran.
            return Err(CliError::Failed(format!("interrupted by {}: the check did not finish", stop.why())));
        }
    };
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
    Ok(exit::of_check(status == "pass"))
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
        "duration_ms": e.duration_ms,
    })
}
