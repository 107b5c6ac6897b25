//! `kazi land RUN_ID`: land a converged run's graded changes later (after
//! `[land] mode = "none"`, or to try `merge`/`pr` again).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::Printer;
use super::runs::failed;
use crate::exit;
use crate::goal::LandMode;
use crate::isolation::{self, Isolation, LandRequest};
use crate::run::RunStatus;
use crate::store::Store;

/// Version of the `--json` report of `kazi land`.
pub const LAND_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct LandArgs {
    /// The converged run (its id, or a unique prefix of it).
    run_id: String,
    /// How to land: branch, merge or pr [default: the goal's `[land] mode`; branch when it is none].
    #[arg(long, value_parser = ["branch", "merge", "pr"])]
    mode: Option<String>,
    /// The branch to land on (`{goal}` and `{run}` are replaced) [default: the goal's `[land] branch`, else kazi/{goal}-{run}].
    #[arg(long)]
    branch: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

pub fn run(args: LandArgs, printer: &Printer) -> Result<u8, CliError> {
    if let Some(b) = &args.branch {
        let sample = b.replace("{goal}", "goal").replace("{run}", "run");
        if !isolation::git::valid_branch_name(&sample) {
            return Err(CliError::Usage(format!(
                "--branch \"{b}\" is not a valid git branch name"
            )));
        }
    }
    let path = args.db.clone().unwrap_or_else(Store::default_path);
    let Some(mut store) = Store::open_existing(&path).map_err(failed)? else {
        return Err(CliError::Failed(format!(
            "no run database at {}; hint: `kazi runs` lists the runs, --db names another database",
            path.display()
        )));
    };
    let run = store.load_run(&args.run_id).map_err(failed)?;
    let id = run.summary.id.clone();
    if run.summary.status != RunStatus::Converged {
        return Err(CliError::Failed(format!(
            "run {id} ended as {}; only a converged run lands",
            run.summary.status
        )));
    }
    let Some(row) = store.worktree(&id).map_err(failed)? else {
        return Err(CliError::Failed(format!(
            "run {id} has no task worktree record (it ran in place, or before kazi had task worktrees): its changes are in its workspace {}",
            run.summary.workspace
        )));
    };
    isolation::can_land(&row.record)
        .map_err(|why| CliError::Failed(format!("run {id} cannot be landed: {why}")))?;
    let goal = crate::goal::load_str(Path::new(&run.summary.goal_path), &run.goal_text).ok();
    let mode = match args.mode.as_deref() {
        Some(m) => LandMode::parse(m).expect("clap checked the mode"),
        None => match goal.as_ref().map(|g| g.land.mode) {
            Some(LandMode::None) | None => LandMode::Branch,
            Some(m) => m,
        },
    };
    let branch = args
        .branch
        .clone()
        .or_else(|| goal.as_ref().and_then(|g| g.land.branch.clone()));
    let last = run.iterations.last();
    let verdicts: Vec<(&str, &str, &str)> = last
        .map(|it| {
            it.results
                .iter()
                .map(|r| (r.id.as_str(), r.state.as_str(), r.verdict.summary.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let message = isolation::landing_message(
        &run.summary.goal_id,
        goal.as_ref().and_then(|g| g.name.as_deref()),
        &verdicts,
        &id,
    );
    let data_dir = isolation::data_dir(&path);
    let iso = Isolation::from_record(row.record, &data_dir);
    let outcome = iso.land(&LandRequest {
        mode,
        branch: branch.as_deref(),
        message: &message,
        report: &message,
    });
    store.record_landing(&id, &outcome).map_err(failed)?;
    if args.json {
        printer.json(&json!({
            "schema_version": LAND_SCHEMA_VERSION,
            "run_id": id,
            "landing": outcome,
        }));
    } else {
        for line in &outcome.lines {
            printer.out(line);
        }
    }
    Ok(if outcome.ok() {
        exit::SUCCESS
    } else {
        exit::NOT_CONVERGED
    })
}
