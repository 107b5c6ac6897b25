//! `kazi run`: drive the agent until every predicate holds, or stop honestly.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::check::{default_jobs, prepare};
use super::output::Printer;
use crate::agent::Dispatcher;
use crate::exit;
use crate::reconcile::{Driver, LiveActor, LoopState, RunOutcome, SandboxObserver, Watch, seal};
use crate::run::{DispatchRecord, IterationRecord, RunStatus, State};
use crate::store::{NewRun, Store, now_ms};

/// Version of the `--json` / `--stream` output of `kazi run`.
pub const RUN_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The goal file, or the ref of an approved proposal (`kazi proposals`).
    goal: PathBuf,
    /// The workspace (default: `[scope] workspace`, relative to the goal file).
    #[arg(long, short = 'w')]
    workspace: Option<PathBuf>,
    /// Agent profile to use instead of `[agent] profile` (claude, opencode, codex, command, or a .wasm).
    #[arg(long)]
    profile: Option<String>,
    /// Model to pass to the profile instead of `[agent] model`.
    #[arg(long)]
    model: Option<String>,
    /// Print one JSON object at the end instead of text.
    #[arg(long, conflicts_with = "stream")]
    json: bool,
    /// Print one JSON line per observation, then the result line.
    #[arg(long)]
    stream: bool,
    /// Continue an interrupted run from the read-model (budget, quarantine, history, seal).
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// The SQLite read-model (default: $KAZI_DB, else the user data dir).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Evaluate at most N predicates at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

/// Progress on stderr (a terminal) and JSON lines on stdout (`--stream`).
struct RunWatch<'a> {
    printer: &'a Printer,
    stream: bool,
    live: bool,
    spinner: Option<indicatif::ProgressBar>,
}

impl Watch for RunWatch<'_> {
    fn iteration(&mut self, it: &IterationRecord) {
        if self.stream {
            self.printer.json_line(&json!({
                "schema_version": RUN_SCHEMA_VERSION,
                "type": "observation",
                "iteration": it.index,
                "decision": it.decision,
                "predicates": it.results.iter().map(|r| json!({
                    "id": r.id, "verdict": r.state, "summary": r.verdict.summary, "score": r.verdict.score,
                })).collect::<Vec<_>>(),
                "events": it.events,
                "budget_spent": it.spent,
            }));
        }
        if self.live {
            let failing: Vec<&str> = it
                .results
                .iter()
                .filter(|r| r.state != State::Pass)
                .map(|r| r.id.as_str())
                .collect();
            let line = if failing.is_empty() {
                format!("iteration {}: every predicate passes", it.index)
            } else {
                format!(
                    "iteration {}: {} not passing ({}) → {}",
                    it.index,
                    failing.len(),
                    failing.join(", "),
                    it.decision.kind()
                )
            };
            self.printer.progress(&line);
        }
    }

    fn dispatching(&mut self, predicates: &[String]) {
        if self.live {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .expect("template"),
            );
            bar.set_message(format!("agent working on {}", predicates.join(", ")));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.spinner = Some(bar);
        }
    }

    fn dispatched(&mut self, d: &DispatchRecord) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        if self.live {
            let tokens = d.tokens_in.unwrap_or(0) + d.tokens_out.unwrap_or(0);
            self.printer.progress(&format!(
                "  dispatch {}: {} in {:.1}s, {} tokens, ${:.4}, {} file(s) changed",
                d.profile,
                d.outcome.as_str(),
                d.duration_ms as f64 / 1000.0,
                tokens,
                d.cost_usd.unwrap_or(0.0),
                d.changed_files.len()
            ));
        }
    }
}

pub async fn run(mut args: RunArgs, printer: &Printer) -> Result<u8, CliError> {
    if args.jobs == Some(0) {
        return Err(CliError::Usage("--jobs must be at least 1".into()));
    }
    args.goal = super::propose::goal_for_run(&args.goal, args.db.as_deref(), printer)?;
    let (sandbox, mut goal, ws) = prepare(&args.goal, args.workspace.as_deref(), printer).await?;
    if let Some(p) = &args.profile {
        goal.goal.agent.profile = p.clone();
    }
    if let Some(m) = &args.model {
        goal.goal.agent.model = Some(m.clone());
    }
    // Loaded (from the cache) and checked again: `--profile` and `--model` may differ
    // from the goal's.
    let (profile, notices) = crate::goal::resolve_profile(&sandbox, &goal.goal, &ws)
        .await
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    if args.profile.is_some() {
        for n in &notices {
            printer.notice(n);
        }
    }
    let db_path = args.db.clone().unwrap_or_else(Store::default_path);
    let mut store = Store::open(&db_path).map_err(|e| CliError::Failed(e.to_string()))?;
    let goal_text = std::fs::read_to_string(&goal.goal.path).unwrap_or_default();
    let protected = goal.goal.scope.protected.clone();

    let (run_id, state, spent, iteration) = match &args.resume {
        Some(id) => {
            let stored = store
                .load_run(id)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if !matches!(
                stored.summary.status,
                RunStatus::Running | RunStatus::Interrupted
            ) {
                return Err(CliError::Usage(format!(
                    "run {} already ended as {}; only an interrupted or killed run can be resumed",
                    stored.summary.id, stored.summary.status
                )));
            }
            if stored.summary.goal_id != goal.goal.id {
                return Err(CliError::Usage(format!(
                    "run {} is for goal \"{}\", not \"{}\"",
                    stored.summary.id, stored.summary.goal_id, goal.goal.id
                )));
            }
            let mut state: LoopState =
                serde_json::from_value(stored.last_state.clone()).unwrap_or_default();
            state.seal = serde_json::from_value(stored.seal.clone()).unwrap_or_default();
            (
                stored.summary.id.clone(),
                state,
                stored.summary.spent,
                stored.summary.iterations,
            )
        }
        None => {
            let seal = seal::compute(&goal.goal.path, &ws, &protected);
            let id = store
                .create_run(&NewRun {
                    goal_id: goal.goal.id.clone(),
                    goal_path: goal.goal.path.display().to_string(),
                    workspace: ws.display().to_string(),
                    goal_sha256: seal.entries.get("goal").cloned().unwrap_or_default(),
                    goal_text,
                    seal: serde_json::to_value(&seal).expect("seal serialises"),
                    profile: profile.info.id.clone(),
                    model: goal.goal.agent.model.clone(),
                    started_at_ms: now_ms(),
                })
                .map_err(|e| CliError::Failed(e.to_string()))?;
            (
                id,
                LoopState {
                    seal,
                    ..LoopState::default()
                },
                Default::default(),
                0,
            )
        }
    };
    if !args.json {
        printer.progress(&format!(
            "run {run_id}: goal {} in {}",
            goal.goal.id,
            ws.display()
        ));
    }
    let actor = LiveActor {
        dispatcher: Dispatcher {
            sandbox: sandbox.clone(),
            profile,
            spec: goal.goal.agent.clone(),
            workspace: ws.clone(),
        },
        goal_path: goal.goal.path.clone(),
        protected,
    };
    let mut driver = Driver {
        goal,
        observer: Arc::new(SandboxObserver {
            sandbox,
            workspace: ws,
        }),
        actor,
        store,
        run_id: run_id.clone(),
        state,
        spent,
        jobs: args.jobs.unwrap_or_else(default_jobs),
        iteration,
    };
    let mut watch = RunWatch {
        printer,
        stream: args.stream,
        live: !args.json && !args.stream,
        spinner: None,
    };
    let result = tokio::select! {
        r = driver.run(&mut watch) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(bar) = watch.spinner.take() {
        bar.finish_and_clear();
    }
    let outcome = match result {
        Some(r) => r.map_err(|e| CliError::Failed(e.to_string()))?,
        None => {
            let reason = format!(
                "interrupted; hint: `kazi run {} --resume {run_id}` continues it",
                args.goal.display()
            );
            driver
                .store
                .finish_run(
                    &run_id,
                    RunStatus::Interrupted,
                    Some(&reason),
                    &driver.spent,
                    now_ms(),
                )
                .map_err(|e| CliError::Failed(e.to_string()))?;
            RunOutcome {
                run_id: run_id.clone(),
                status: RunStatus::Interrupted,
                reason: Some(reason),
                spent: driver.spent,
                last: Vec::new(),
                events: Vec::new(),
                vacuous: false,
            }
        }
    };
    report(
        &outcome,
        &driver.goal.goal.id,
        printer,
        args.json,
        args.stream,
    );
    if outcome.vacuous {
        return Ok(exit::INVALID);
    }
    Ok(outcome.status.exit_code())
}

fn report(o: &RunOutcome, goal_id: &str, printer: &Printer, json: bool, stream: bool) {
    let regressions: Vec<_> = o.events.iter().filter(|e| e.kind == "regression").collect();
    let value = json!({
        "schema_version": RUN_SCHEMA_VERSION,
        "type": "result",
        "run_id": o.run_id,
        "goal_id": goal_id,
        "status": o.status,
        "reason": o.reason,
        "iterations": o.spent.iterations,
        "predicates": o.last.iter().map(|r| json!({
            "id": r.id, "verdict": r.state, "summary": r.verdict.summary, "score": r.verdict.score,
        })).collect::<Vec<_>>(),
        "budget_spent": {
            "iterations": o.spent.iterations,
            "tokens": o.spent.tokens,
            "cost_usd": o.spent.cost_usd,
            "dispatches": o.spent.dispatches,
            "wall_clock_ms": o.spent.wall_clock_ms,
        },
        "regressions": regressions,
        "events": o.events,
    });
    if stream {
        printer.json_line(&value);
        return;
    }
    if json {
        printer.json(&value);
        return;
    }
    let s = &o.spent;
    printer.out(&format!(
        "{} after {} iteration{} ({} dispatch{}, {} tokens, ${:.4}, {:.1}s) — run {}",
        o.status.as_str().replace('_', " "),
        s.iterations,
        if s.iterations == 1 { "" } else { "s" },
        s.dispatches,
        if s.dispatches == 1 { "" } else { "es" },
        s.tokens,
        s.cost_usd,
        s.wall_clock_ms as f64 / 1000.0,
        o.run_id
    ));
    if let Some(r) = &o.reason {
        printer.out(&format!("reason: {r}"));
    }
    for r in &o.last {
        printer.state_line(&r.id, r.state, &r.verdict);
    }
    for e in &o.events {
        let who = e
            .predicate
            .as_deref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        printer.out(&format!("event {}{who}: {}", e.kind, e.message));
    }
}
