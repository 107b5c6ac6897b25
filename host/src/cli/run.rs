//! `kazi run`: drive the agent until every predicate holds, or stop honestly. Wiring
//! only: load the goal, open or resume the run, build the world, hand it to the
//! loop's interpreter, print what happened.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::check::{default_jobs, find_goal, prepare};
use super::output::{LiveLines, Printer};
use crate::agent::Dispatcher;
use crate::exit;
use crate::isolation::{self, Isolation, LockKey, WorkspaceLock};
use crate::observe::Observer;
use crate::reconcile::world::Landing;
use crate::reconcile::{self, LiveWorld, LoopState, Reconciler, RunOutcome, Stop, Watch, seal};
use crate::run::{DispatchRecord, EventKind, IterationRecord, RunStatus, Spent, State};
use crate::store::WorktreeState;
use crate::store::{NewRun, Store, now_ms};

/// Version of the `--json` / `--stream` output of `kazi run`.
pub const RUN_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The goal file, a directory holding `kazi.toml`, or the ref of an approved
    /// proposal [default: ./kazi.toml, else the only goal in .kazi/goals/].
    goal: Option<PathBuf>,
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
    /// Continue an interrupted or abandoned run from the read-model (budget,
    /// quarantine, history, seal).
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// The SQLite read-model (default: $KAZI_DB, else the user data dir).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Evaluate at most N predicates at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Preflight, observe once, and print the exact prompt and agent command the
    /// first dispatch would get; dispatch nothing and record no run.
    #[arg(long, visible_alias = "explain", conflicts_with_all = ["resume", "stream"])]
    dry_run: bool,
    /// Let the agent work in the workspace itself instead of a task worktree (what a
    /// workspace outside git always does): nothing is reverted, scope is reported.
    #[arg(long)]
    in_place: bool,
}

impl RunArgs {
    /// `--json` or `--stream`: stdout carries JSON only, even on failure.
    pub fn json_output(&self) -> bool {
        self.json || self.stream
    }
}

/// Progress on stderr (a terminal) and JSON lines on stdout (`--stream`).
struct RunWatch<'a> {
    printer: &'a Printer,
    stream: bool,
    live: bool,
    max_iterations: Option<u64>,
    lines: Arc<LiveLines>,
    spinner: Option<indicatif::ProgressBar>,
}

impl RunWatch<'_> {
    fn clear(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        self.lines.clear();
    }

    fn of_max(&self, n: u64) -> String {
        match self.max_iterations {
            Some(max) => format!("{n}/{max}"),
            None => n.to_string(),
        }
    }
}

impl Drop for RunWatch<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Counters in words: `1 dispatch, 1.2k tokens, $0.0123, 45.0s`.
fn spent_words(s: &Spent) -> String {
    format!(
        "{} dispatch{}, {} tokens, ${:.4}{}, {:.1}s",
        s.dispatches,
        if s.dispatches == 1 { "" } else { "es" },
        s.tokens,
        s.cost_usd,
        if s.unknown_cost_dispatches > 0 {
            format!(" + {} of unknown cost", s.unknown_cost_dispatches)
        } else {
            String::new()
        },
        s.wall_clock_ms as f64 / 1000.0
    )
}

impl Watch for RunWatch<'_> {
    fn iteration(&mut self, it: &IterationRecord) {
        self.lines.clear();
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
            let what = if it.results.is_empty() {
                it.decision.kind().to_owned()
            } else if failing.is_empty() {
                "every predicate passes".to_owned()
            } else {
                format!(
                    "{} not passing ({}) → {}",
                    failing.len(),
                    failing.join(", "),
                    it.decision.kind()
                )
            };
            self.printer.progress(&format!(
                "iteration {}: {what} · {}",
                self.of_max(it.index),
                spent_words(&it.spent)
            ));
        }
    }

    fn dispatching(&mut self, predicates: &[String], spent: &Spent) {
        if self.live {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .expect("template"),
            );
            bar.set_message(format!(
                "agent working on {} ({} so far)",
                predicates.join(", "),
                spent_words(spent)
            ));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.spinner = Some(bar);
        }
    }

    fn dispatched(&mut self, d: &DispatchRecord) {
        self.clear();
        if self.live {
            self.printer.progress(&format!(
                "  dispatch {}: {} in {:.1}s, {} tokens, ${:.4}, {} file(s) changed",
                d.profile,
                d.outcome,
                d.duration_ms as f64 / 1000.0,
                d.tokens(),
                d.cost_usd.unwrap_or(0.0),
                d.changed_files.len()
            ));
        }
    }

    fn deploying(&mut self, run: &[String]) {
        if self.live {
            self.printer
                .progress(&format!("  deploying: {}", run.join(" ")));
        }
    }
}

pub async fn run(args: RunArgs, printer: &Printer) -> Result<u8, CliError> {
    if args.jobs == Some(0) {
        return Err(CliError::Usage("--jobs must be at least 1".into()));
    }
    let goal_arg = find_goal(args.goal.as_deref())?;
    let goal_path = super::propose::goal_for_run(&goal_arg, args.db.as_deref(), printer)?;
    let (sandbox, mut goal, ws) = prepare(&goal_path, args.workspace.as_deref(), printer).await?;
    if let Some(p) = &args.profile {
        goal.goal.agent.profile = p.clone();
    }
    if let Some(m) = &args.model {
        goal.goal.agent.model = Some(m.clone());
    }
    // Loaded (from the cache) and checked again: `--profile` and `--model` may differ
    // from the goal's.
    let (profile, notices) = crate::goal::resolve_profile(&sandbox, &goal.goal, &ws).await?;
    if args.profile.is_some() {
        for n in &notices {
            printer.notice(n);
        }
    }
    let dispatcher = Dispatcher {
        sandbox: sandbox.clone(),
        profile,
        spec: goal.goal.agent.clone(),
        workspace: ws.clone(),
    };
    // Preflight: the agent can be started, before anything is observed or spent.
    let (program, argv) = dispatcher
        .preflight("(the prompt)")
        .await
        .map_err(|e| CliError::Invalid(format!("failed to prepare the agent: {e}")))?;
    tracing::debug!(program = %program.display(), args = ?argv, "the agent resolves");
    if args.dry_run {
        let mut plan = reconcile::plan(&goal.goal, false, false);
        plan.profile = dispatcher.profile.info.id.clone();
        let jobs = args.jobs.unwrap_or_else(default_jobs);
        let lines = Arc::new(LiveLines::new(printer, goal.predicates.len()));
        let observer =
            Observer::new(sandbox.clone(), &goal, ws.clone(), jobs).with_progress(lines.clone());
        return dry_run(plan, &observer, &dispatcher, &lines, printer, args.json).await;
    }
    let db_path = args.db.clone().unwrap_or_else(Store::default_path);
    let mut store = Store::open(&db_path)?;
    let data = isolation::data_dir(&db_path);
    let scope = goal.goal.scope.clone();

    let (run_id, state, spent, iterations, stored_seal) = match &args.resume {
        Some(id) => {
            let stored = store.load_run(id)?;
            let id = stored.summary.id.clone();
            if stored.summary.goal_id != goal.goal.id {
                return Err(CliError::Usage(format!(
                    "run {id} is for goal \"{}\", not \"{}\"",
                    stored.summary.goal_id, goal.goal.id
                )));
            }
            let driver = store.run_driver(&id)?;
            let live_driver = driver.filter(|(pid, start)| {
                *pid != std::process::id() as i32 && crate::store::process_alive(*pid, *start)
            });
            if let Some((pid, _)) = live_driver
                && stored.summary.status == RunStatus::Running
            {
                return Err(CliError::Usage(format!(
                    "run {id} is being driven by another kazi (process {pid}); only one process may drive a run; hint: wait for it, or stop it (kill {pid}) and resume"
                )));
            }
            if !matches!(
                stored.summary.status,
                RunStatus::Running | RunStatus::Interrupted
            ) {
                return Err(CliError::Usage(format!(
                    "run {id} already ended as {}; only an interrupted or abandoned run can be resumed",
                    stored.summary.status
                )));
            }
            let state: LoopState = if stored.last_state.is_null() {
                LoopState::default()
            } else {
                serde_json::from_value(stored.last_state.clone()).map_err(|e| {
                    CliError::Failed(format!(
                        "run {id} cannot be resumed: its recorded loop state in {} is unreadable ({e}); hint: start a new run",
                        db_path.display()
                    ))
                })?
            };
            let seal: seal::Seal = serde_json::from_value(stored.seal.clone()).map_err(|e| {
                CliError::Failed(format!(
                    "run {id} cannot be resumed: its recorded seal in {} is unreadable ({e}); hint: start a new run",
                    db_path.display()
                ))
            })?;
            if !store.resume_run(&id, driver)? {
                return Err(CliError::Usage(format!(
                    "run {id} was resumed by another kazi at the same moment; hint: `kazi runs` shows who drives it"
                )));
            }
            (
                id,
                state,
                stored.summary.spent,
                stored.summary.iterations,
                Some(seal),
            )
        }
        None => {
            let goal_text = std::fs::read_to_string(&goal.goal.path).unwrap_or_default();
            let id = store.create_run(&NewRun {
                goal_id: goal.goal.id.clone(),
                goal_path: goal.goal.path.display().to_string(),
                workspace: ws.display().to_string(),
                goal_sha256: kazi_core::sha256_hex(goal_text.as_bytes()),
                goal_text,
                seal: serde_json::json!({}),
                profile: dispatcher.profile.info.id.clone(),
                model: goal.goal.agent.model.clone(),
                started_at_ms: now_ms(),
            })?;
            (id, LoopState::default(), Spent::default(), 0, None)
        }
    };
    // One live process per run, one live run per workspace (and goal).
    let in_place = args.in_place;
    let locks = (|| {
        let run = WorkspaceLock::acquire(&data, &LockKey::Run(run_id.clone()), &run_id)?;
        let ws_lock = WorkspaceLock::acquire(
            &data,
            &LockKey::workspace(&ws, &goal.goal.id, in_place),
            &run_id,
        )?;
        Ok::<_, isolation::LockError>((run, ws_lock))
    })();
    let _locks = match locks {
        Ok(l) => l,
        Err(e) => {
            if args.resume.is_none() {
                store.discard_run(&run_id)?;
            }
            return Err(CliError::Usage(e.to_string()));
        }
    };
    // The task worktree (or in place), made or reopened.
    let iso = {
        let (setup, carry) = (scope.setup.clone(), scope.carry.clone());
        let (ws2, goal_path2, goal_id, run_id2, data2) = (
            ws.clone(),
            goal.goal.path.clone(),
            goal.goal.id.clone(),
            run_id.clone(),
            data.clone(),
        );
        let recorded = match &args.resume {
            Some(_) => store.worktree(&run_id)?.map(|row| row.record),
            None => None,
        };
        let resumed = args.resume.is_some();
        let made = tokio::task::spawn_blocking(move || match recorded {
            Some(record) => Isolation::reopen(record, &data2, &setup, &carry).map(Some),
            None if resumed => Ok(None),
            None => Isolation::prepare(&isolation::Prepare {
                workspace: &ws2,
                goal_path: &goal_path2,
                goal_id: &goal_id,
                run_id: &run_id2,
                data_dir: &data2,
                in_place,
                setup: &setup,
                carry: &carry,
            })
            .map(Some),
        })
        .await
        .expect("the isolation task does not panic");
        match made {
            Ok(iso) => iso,
            Err(e) => {
                if args.resume.is_none() {
                    store.discard_run(&run_id)?;
                }
                return Err(CliError::Failed(format!(
                    "failed to prepare the workspace: {e}"
                )));
            }
        }
    };
    let (work_ws, work_goal) = match &iso {
        Some(i) => (i.workspace().to_path_buf(), i.goal_path().to_path_buf()),
        None => (ws.clone(), goal.goal.path.clone()),
    };
    if let Some(i) = &iso {
        store.record_worktree(i.record())?;
        for n in i.notices() {
            printer.notice(n);
        }
    }
    let isolated = iso
        .as_ref()
        .is_some_and(|i| i.mode() == isolation::Mode::Worktree);
    let seal = match stored_seal {
        Some(seal) => seal,
        None => {
            let seal = seal::compute(&work_goal, &work_ws, &scope.protected);
            store.set_run_seal(
                &run_id,
                &serde_json::to_value(&seal).expect("seal serialises"),
            )?;
            seal
        }
    };
    let mut plan = reconcile::plan(&goal.goal, isolated, isolated);
    plan.profile = dispatcher.profile.info.id.clone();
    let machine = match &args.resume {
        Some(_) => Reconciler::resume(plan, state, spent, iterations),
        None => Reconciler::new(plan),
    };
    if !args.json {
        printer.progress(&format!(
            "run {run_id}: goal {} in {}{}",
            goal.goal.id,
            ws.display(),
            if isolated {
                format!(" (task worktree {})", work_ws.display())
            } else {
                String::new()
            }
        ));
    }
    let live = !args.json && !args.stream && printer.live();
    let lines = Arc::new(LiveLines::new(
        printer,
        if live { goal.predicates.len() } else { 0 },
    ));
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let mut dispatcher = dispatcher;
    dispatcher.workspace = work_ws.clone();
    let mut world = LiveWorld::new(
        Observer::new(sandbox.clone(), &goal, work_ws.clone(), jobs).with_progress(lines.clone()),
        dispatcher,
        work_goal,
        seal,
    );
    world.writable = scope.writable.clone();
    world.protected = scope.protected.clone();
    world.own_files = own_files(&db_path, &work_ws);
    world.isolation = iso;
    world.db = Some(db_path.clone());
    world.landing = Some(Landing {
        mode: goal.goal.land.mode,
        branch: goal.goal.land.branch.clone(),
        goal_id: goal.goal.id.clone(),
        goal_name: goal.goal.name.clone(),
        run_id: run_id.clone(),
    });
    let mut watch = RunWatch {
        printer,
        stream: args.stream,
        live,
        max_iterations: goal.goal.budget.max_iterations,
        lines,
        spinner: None,
    };
    let stop = Stop::on_signals()
        .map_err(|e| CliError::Failed(format!("failed to listen for signals: {e}")))?;
    let outcome =
        reconcile::drive(machine, &mut world, &mut store, &run_id, &mut watch, &stop).await?;
    drop(watch);
    let mut outcome = outcome;
    if let Some(landed) = &world.landed {
        store.record_landing(&run_id, landed)?;
    }
    // An interrupted run keeps its worktree for --resume; a converged one keeps its
    // graded state for `kazi land`; others are removed.
    if let Some(iso) = world.isolation.take()
        && outcome.status != RunStatus::Interrupted
    {
        let keep = outcome.status == RunStatus::Converged;
        let released = tokio::task::spawn_blocking(move || iso.release(keep))
            .await
            .expect("the release task does not panic");
        match released {
            Ok(()) => store.set_worktree_state(
                &run_id,
                if keep {
                    WorktreeState::Kept
                } else {
                    WorktreeState::Released
                },
            )?,
            Err(e) => printer.notice(&format!("could not remove the task worktree: {e}")),
        }
    }
    if outcome.status == RunStatus::Interrupted {
        let reason = outcome.reason.take().unwrap_or_default();
        outcome.reason = Some(format!(
            "{reason}; hint: `kazi run {} --resume {run_id}` continues it",
            goal_path.display()
        ));
    }
    report(
        &outcome,
        &run_id,
        &goal.goal.id,
        world.landed.as_ref(),
        printer,
        args.json,
        args.stream,
    );
    Ok(exit::of_run(outcome.status))
}

/// kazi's database files, relative to the workspace when they lie inside it.
fn own_files(db: &std::path::Path, ws: &std::path::Path) -> Vec<String> {
    let db = db.canonicalize().unwrap_or_else(|_| db.to_path_buf());
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
                .strip_prefix(ws)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect()
}

/// `--dry-run`: the loop's own rules up to the first action, with no read-model and
/// no agent. Prints the observation, then what the run would do: the agent's exact
/// command and prompt, `[deploy]`, a wait, or how it would end.
async fn dry_run(
    plan: kazi_core::plan::Plan,
    observer: &Observer,
    dispatcher: &Dispatcher,
    lines: &LiveLines,
    printer: &Printer,
    json: bool,
) -> Result<u8, CliError> {
    use kazi_core::machine::{Clock, Effect, Input, Record};
    let mut machine = Reconciler::new(plan);
    let mut input = Input::Start {
        unfinished: Vec::new(),
    };
    let mut observed: Vec<crate::run::PredicateResult> = Vec::new();
    loop {
        let effects = machine.step(Clock::default(), input);
        let mut next = None;
        for e in effects {
            match e {
                Effect::Persist(Record::Iteration(it)) => observed = it.results,
                Effect::Persist(_) => {}
                other => next = Some(other),
            }
        }
        let predicates = observed
            .iter()
            .map(|r| json!({"id": r.id, "verdict": r.state, "summary": r.verdict.summary}))
            .collect::<Vec<_>>();
        let show_observation = || {
            for r in &observed {
                printer.state_line(&r.id, r.state, &r.verdict);
            }
        };
        let action = match next.expect("the machine asks for something until it finishes") {
            Effect::Prepare => {
                input = Input::Prepared(Default::default());
                continue;
            }
            Effect::Observe { predicates, .. } => {
                input = Input::Observed(observer.observe(&predicates, 0).await);
                lines.clear();
                continue;
            }
            Effect::Dispatch {
                prompt,
                predicates: failing,
                timeout,
            } => {
                let (program, argv) = dispatcher
                    .preflight(&prompt)
                    .await
                    .map_err(|e| CliError::Invalid(format!("failed to prepare the agent: {e}")))?;
                // The prompt may be an argument: show it once, below.
                let shown: Vec<String> = argv
                    .iter()
                    .map(|a| {
                        if *a == prompt {
                            "<PROMPT>".to_owned()
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                if json {
                    printer.json(&json!({
                        "schema_version": RUN_SCHEMA_VERSION,
                        "type": "dry_run",
                        "action": "dispatch",
                        "predicates": predicates,
                        "dispatch": {
                            "predicates": failing,
                            "profile": dispatcher.profile.info.id,
                            "program": program,
                            "args": argv,
                            "timeout_ms": timeout.as_millis() as u64,
                            "prompt": prompt,
                        },
                    }));
                } else {
                    show_observation();
                    printer.out(&format!(
                        "\nwould dispatch the {} agent on {} (timeout {}):",
                        dispatcher.profile.info.id,
                        failing.join(", "),
                        humantime::format_duration(timeout)
                    ));
                    printer.out(&format!("  {} {}", program.display(), shown.join(" ")));
                    printer.out("\nwith this prompt (<PROMPT>, or on stdin / in $KAZI_PROMPT_FILE as the profile says):");
                    printer.out(&"-".repeat(72));
                    printer.out(prompt.trim_end());
                    printer.out(&"-".repeat(72));
                }
                return Ok(exit::SUCCESS);
            }
            Effect::Deploy { run, .. } => format!("run [deploy]: {}", run.join(" ")),
            Effect::Sleep(d) => format!(
                "wait {} and observe again (live or quarantined predicates)",
                humantime::format_duration(d)
            ),
            Effect::Land { .. } => "land the changes".to_owned(),
            Effect::Finish(o) => {
                if json {
                    printer.json(&json!({
                        "schema_version": RUN_SCHEMA_VERSION,
                        "type": "dry_run",
                        "action": "finish",
                        "status": o.status,
                        "cause": o.cause,
                        "reason": o.reason,
                        "predicates": predicates,
                    }));
                } else {
                    show_observation();
                    printer.out(&format!(
                        "\nthe run would end at once: {}{}",
                        o.status,
                        o.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ));
                }
                return Ok(exit::of_run(o.status));
            }
            Effect::Persist(_) => unreachable!("persist effects are skipped"),
        };
        if json {
            printer.json(&json!({
                "schema_version": RUN_SCHEMA_VERSION,
                "type": "dry_run",
                "action": action,
                "predicates": predicates,
            }));
        } else {
            show_observation();
            printer.out(&format!("\nthe run would {action}"));
        }
        return Ok(exit::SUCCESS);
    }
}

fn report(
    o: &RunOutcome,
    run_id: &str,
    goal_id: &str,
    landed: Option<&isolation::LandOutcome>,
    printer: &Printer,
    json: bool,
    stream: bool,
) {
    let regressions: Vec<_> = o
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Regression)
        .collect();
    let value = json!({
        "schema_version": RUN_SCHEMA_VERSION,
        "type": "result",
        "run_id": run_id,
        "goal_id": goal_id,
        "status": o.status,
        "cause": o.cause,
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
            "unknown_cost_dispatches": o.spent.unknown_cost_dispatches,
            "wall_clock_ms": o.spent.wall_clock_ms,
        },
        "regressions": regressions,
        "events": o.events,
        "landing": landed,
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
        "{} after {} iteration{} ({}) — run {}",
        o.status.as_str().replace('_', " "),
        s.iterations,
        if s.iterations == 1 { "" } else { "s" },
        spent_words(s),
        run_id
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
    if let Some(l) = landed {
        for line in l.lines.iter().skip(1) {
            printer.out(line);
        }
    }
}
