//! `kazi worktrees [--prune]`: the task worktrees of runs, and pruning those no live
//! run uses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::Printer;
use super::runs::{failed, table};
use crate::exit;
use crate::isolation::{self, Holder, Isolation, LockKey, Mode, WorkspaceLock};
use crate::run::RunStatus;
use crate::store::{Store, WorktreeRow, WorktreeState};

/// Version of the `--json` report of `kazi worktrees`.
pub const WORKTREES_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct WorktreesArgs {
    /// Remove the worktrees no live run uses: of runs that are gone or ended (a
    /// converged run keeps its refs for `kazi land`), and of runs whose process died
    /// (their refs stay: `--resume` makes the worktree again from the last graded state).
    #[arg(long)]
    prune: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

/// One worktree as listed.
struct Entry {
    run_id: String,
    row: Option<WorktreeRow>,
    /// The run's status in this database (`None`: no such run).
    status: Option<RunStatus>,
    /// The live process driving the run.
    live: Option<Holder>,
    /// The worktree directory (when the run has one).
    path: Option<PathBuf>,
}

impl Entry {
    fn exists(&self) -> bool {
        self.path.as_ref().is_some_and(|p| p.exists())
    }

    fn state(&self) -> &'static str {
        match (&self.row, self.exists()) {
            (None, _) => "unrecorded",
            (Some(r), true) if r.record.mode == Mode::Worktree => "active",
            (Some(r), false)
                if r.record.mode == Mode::Worktree && r.state == WorktreeState::Active =>
            {
                "missing"
            }
            (Some(r), _) if r.record.mode == Mode::InPlace && r.state == WorktreeState::Active => {
                "in place"
            }
            (Some(r), _) => r.state.as_str(),
        }
    }
}

pub fn run(args: WorktreesArgs, printer: &Printer) -> Result<u8, CliError> {
    let db = args.db.clone().unwrap_or_else(Store::default_path);
    let data_dir = isolation::data_dir(&db);
    let mut store = Store::open_existing(&db).map_err(failed)?;
    let entries = collect(store.as_ref(), &data_dir)?;
    // What the worktrees were, before pruning changes them.
    let states: Vec<&'static str> = entries.iter().map(Entry::state).collect();
    let mut actions = Vec::new();
    if args.prune {
        for e in &entries {
            if let Some(a) = prune(e, store.as_mut(), &data_dir)? {
                actions.push(a);
            }
        }
    }
    if args.json {
        let list: Vec<_> = entries
            .iter()
            .zip(&states)
            .map(|(e, state)| {
                json!({
                    "run_id": e.run_id,
                    "goal_id": e.row.as_ref().map(|r| r.record.goal_id.clone()),
                    "run_status": e.status,
                    "state": state,
                    "live_pid": e.live.as_ref().map(|h| h.pid),
                    "path": e.path,
                    "repo": e.row.as_ref().and_then(|r| r.record.git.as_ref().map(|g| g.toplevel.clone())),
                    "workspace": e.row.as_ref().map(|r| r.record.workspace.clone()),
                })
            })
            .collect();
        printer.json(&json!({
            "schema_version": WORKTREES_SCHEMA_VERSION,
            "data_dir": data_dir,
            "worktrees": list,
            "pruned": actions,
        }));
        return Ok(exit::SUCCESS);
    }
    if entries.is_empty() {
        printer.out("no task worktrees");
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .zip(&states)
            .map(|(e, state)| {
                vec![
                    e.run_id.clone(),
                    e.row
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |r| r.record.goal_id.clone()),
                    e.status
                        .map_or_else(|| "gone".to_owned(), |s| s.as_str().to_owned()),
                    (*state).to_owned(),
                    e.live
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |h| h.pid.to_string()),
                    e.path
                        .as_ref()
                        .or(e.row.as_ref().map(|r| &r.record.workspace))
                        .map_or_else(String::new, |p| p.display().to_string()),
                ]
            })
            .collect();
        for line in table(&["RUN", "GOAL", "STATUS", "STATE", "PID", "PATH"], &rows) {
            printer.out(&line);
        }
    }
    for a in &actions {
        printer.out(a);
    }
    if args.prune && actions.is_empty() {
        printer.out("nothing to prune");
    }
    Ok(exit::SUCCESS)
}

/// The recorded worktrees that are not released, and worktree directories in the
/// data dir that this database does not know.
fn collect(store: Option<&Store>, data_dir: &Path) -> Result<Vec<Entry>, CliError> {
    let rows = match store {
        Some(s) => s.list_worktrees().map_err(failed)?,
        None => Vec::new(),
    };
    let live = |run_id: &str| {
        WorkspaceLock::holder(data_dir, &LockKey::Run(run_id.to_owned()))
            .map_err(|e| CliError::Failed(e.to_string()))
    };
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for row in rows {
        seen.insert(row.record.run_id.clone());
        if row.state == WorktreeState::Released {
            continue;
        }
        let run_id = row.record.run_id.clone();
        let status = match store {
            Some(s) => s.run_status(&run_id).map_err(failed)?,
            None => None,
        };
        entries.push(Entry {
            live: live(&run_id)?,
            path: row.record.git.as_ref().and_then(|g| g.worktree.clone()),
            status,
            run_id,
            row: Some(row),
        });
    }
    if let Ok(dirs) = std::fs::read_dir(data_dir.join("worktrees")) {
        let mut dirs: Vec<_> = dirs.flatten().collect();
        dirs.sort_by_key(|d| d.file_name());
        for d in dirs {
            let run_id = d.file_name().to_string_lossy().into_owned();
            if seen.contains(&run_id) {
                continue;
            }
            entries.push(Entry {
                live: live(&run_id)?,
                path: Some(d.path()),
                status: None,
                run_id,
                row: None,
            });
        }
    }
    Ok(entries)
}

/// Prune one entry; a line saying what was done.
fn prune(
    e: &Entry,
    store: Option<&mut Store>,
    data_dir: &Path,
) -> Result<Option<String>, CliError> {
    let existed = e.exists();
    let place = match &e.path {
        Some(p) => p.display().to_string(),
        None => format!("the isolation of run {} (in place)", e.run_id),
    };
    if let Some(h) = &e.live {
        return Ok(
            existed.then(|| format!("kept {place}: run {} is live (pid {})", e.run_id, h.pid))
        );
    }
    let Some(row) = &e.row else {
        // A worktree this database does not know: remove the directory and its git
        // metadata; any refs stay (another database may still know the run).
        let Some(path) = &e.path else { return Ok(None) };
        isolation::remove_unrecorded_worktree(path)
            .map_err(|err| CliError::Failed(err.to_string()))?;
        return Ok(Some(format!(
            "removed {place}: run {} is not in this database",
            e.run_id
        )));
    };
    let id = &e.run_id;
    let (keep_refs, remove_all, why) = match e.status {
        None => (false, true, format!("run {id} is gone")),
        Some(RunStatus::Running) => (
            true,
            false,
            format!("run {id}'s process died; `kazi run --resume {id}` makes the worktree again"),
        ),
        Some(RunStatus::Interrupted) => (
            true,
            false,
            format!("run {id} was interrupted; `kazi run --resume {id}` makes the worktree again"),
        ),
        Some(RunStatus::Converged) => (
            true,
            true,
            format!("run {id} converged; its refs stay for `kazi land {id}`"),
        ),
        Some(s) => (false, true, format!("run {id} ended {s}")),
    };
    if !remove_all && !existed {
        return Ok(None);
    }
    if keep_refs && !existed && row.state == WorktreeState::Kept {
        return Ok(None);
    }
    let iso = Isolation::from_record(row.record.clone(), data_dir);
    iso.release(keep_refs)
        .map_err(|err| CliError::Failed(format!("failed to prune run {id}: {err}")))?;
    if let Some(store) = store {
        let state = if keep_refs {
            WorktreeState::Kept
        } else {
            WorktreeState::Released
        };
        store.set_worktree_state(id, state).map_err(failed)?;
    }
    let verb = if existed { "removed" } else { "released" };
    Ok(Some(format!("{verb} {place}: {why}")))
}
