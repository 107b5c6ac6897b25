//! The real world of a run: predicates evaluated in the sandbox, the agent run through
//! its profile, `[deploy]` as a process, and the workspace — a task worktree where
//! kazi grades what would land (reverting what may not), or the user's checkout in
//! place, where the seal and the scope are checked and reported.

use std::path::PathBuf;
use std::time::Duration;

use super::seal::{self, Seal, Snapshot};
use super::{DispatchRequest, Evaluation, Prepared, Revert, World};
use crate::agent::Dispatcher;
use crate::goal::LandMode;
use crate::isolation::{self, Action, Isolation, LandOutcome, LandRequest, Mode, ScopeReport};
use crate::observe::Observer;
use crate::run::{DispatchRecord, PredicateResult};
use crate::store::{ProcessRecord, Store};

/// Reverted paths named one by one to the loop (the rest are counted).
const NAMED_REVERTS: usize = 20;

/// How a converged run lands.
#[derive(Debug, Clone)]
pub struct Landing {
    pub mode: LandMode,
    pub branch: Option<String>,
    pub goal_id: String,
    pub goal_name: Option<String>,
    pub run_id: String,
}

/// The world of one run.
pub struct LiveWorld {
    pub observer: Observer,
    pub dispatcher: Dispatcher,
    /// The goal file the seal hashes (in the task worktree when there is one).
    pub goal_path: PathBuf,
    pub writable: Vec<String>,
    pub protected: Vec<String>,
    /// The seal taken when the run started.
    pub seal: Seal,
    /// Workspace-relative files kazi itself writes (its database when it lives in the
    /// workspace): never the agent's changes.
    pub own_files: Vec<String>,
    /// The run's isolation; `None` runs in place with no git grading (tests).
    pub isolation: Option<Isolation>,
    pub landing: Option<Landing>,
    /// The read-model, to record each grading of the task worktree.
    pub db: Option<PathBuf>,
    /// What the last grading reverted and why it could not go on, for the next
    /// `Prepare`.
    pending: Vec<Revert>,
    pending_tamper: Vec<String>,
    /// How landing went (the caller records and prints it).
    pub landed: Option<LandOutcome>,
}

impl LiveWorld {
    pub fn new(observer: Observer, dispatcher: Dispatcher, goal_path: PathBuf, seal: Seal) -> Self {
        Self {
            observer,
            dispatcher,
            goal_path,
            writable: Vec::new(),
            protected: Vec::new(),
            seal,
            own_files: Vec::new(),
            isolation: None,
            landing: None,
            db: None,
            pending: Vec::new(),
            pending_tamper: Vec::new(),
            landed: None,
        }
    }

    fn workspace(&self) -> &std::path::Path {
        &self.dispatcher.workspace
    }

    fn snapshot(&self) -> Snapshot {
        seal::snapshot(self.workspace())
    }

    fn in_worktree(&self) -> bool {
        self.isolation
            .as_ref()
            .is_some_and(|i| i.mode() == Mode::Worktree)
    }

    /// Grade the task worktree: revert what may not land, and remember what the next
    /// observation must hear about.
    async fn grade(&mut self, rec: &mut DispatchRecord) {
        let Some(iso) = self.isolation.take() else {
            return;
        };
        let (writable, protected) = (self.writable.clone(), self.protected.clone());
        let (iso, result) = tokio::task::spawn_blocking(move || {
            let mut iso = iso;
            let r = iso.enforce_scope(&writable, &protected);
            (iso, r)
        })
        .await
        .expect("the grading task does not panic");
        match result {
            Ok(report) => {
                self.take_report(&report, rec);
                if let Some(db) = &self.db
                    && let Err(e) =
                        Store::open(db).and_then(|mut s| s.record_worktree(iso.record()))
                {
                    tracing::warn!(error = %e, "could not record the graded task worktree");
                }
            }
            Err(e) => self.pending_tamper.push(format!(
                "kazi could not grade the task worktree ({e}): what would land is unknown"
            )),
        }
        self.isolation = Some(iso);
    }

    fn take_report(&mut self, report: &ScopeReport, rec: &mut DispatchRecord) {
        let mut changed: Vec<String> = report.dispatch_diff.files.clone();
        let mut reverts = Vec::new();
        for c in &report.changes {
            if let Action::Reverted { why } = &c.action {
                if !changed.contains(&c.path) {
                    changed.push(c.path.clone());
                }
                let text = why.describe(&report.writable);
                rec.reverted.push(format!("{}: {text}", c.path));
                reverts.push(Revert {
                    path: c.path.clone(),
                    why: text,
                    gaming: why.is_gaming(),
                });
            }
        }
        changed.sort();
        rec.changed_files = changed;
        if !report.dispatch_diff.text.is_empty() {
            let mut diff = report.dispatch_diff.text.clone();
            if report.dispatch_diff.truncated {
                diff.push_str("\n… (cut at the bound)\n");
            }
            rec.diff = Some(diff);
        }
        // Name the first reverts; count the rest (the gaming flag survives the cut).
        if reverts.len() > NAMED_REVERTS {
            let rest = reverts.split_off(NAMED_REVERTS);
            reverts.push(Revert {
                path: format!("{} more files", rest.len()),
                why: "they were out of scope too".into(),
                gaming: rest.iter().any(|r| r.gaming),
            });
        }
        self.pending = reverts;
        self.pending_tamper.extend(report.stop_reason());
    }
}

impl World for LiveWorld {
    async fn prepare(&mut self) -> Prepared {
        let now = seal::compute(&self.goal_path, self.workspace(), &self.protected);
        let mut tamper = seal::diff(&self.seal, &now);
        tamper.append(&mut self.pending_tamper);
        Prepared {
            tamper,
            reverted: std::mem::take(&mut self.pending),
        }
    }

    async fn observe(
        &mut self,
        predicates: &[String],
        iteration: u32,
        _attempt: u32,
    ) -> Vec<Evaluation> {
        self.observer.observe(predicates, iteration).await
    }

    async fn dispatch(&mut self, req: DispatchRequest<'_>) -> DispatchRecord {
        if self.in_worktree() {
            let mut rec = self.dispatcher.dispatch(req).await;
            self.grade(&mut rec).await;
            return rec;
        }
        let before = self.snapshot();
        let mut rec = self.dispatcher.dispatch(req).await;
        let after = self.snapshot();
        rec.changed_files = seal::changed(&before, &after);
        rec.changed_files.retain(|f| !self.own_files.contains(f));
        rec
    }

    async fn deploy(&mut self, run: &[String], timeout: Duration) -> Result<String, String> {
        let ws = self.workspace().to_path_buf();
        let path = std::env::var_os("PATH");
        let program = crate::process::resolve_program(&run[0], path.as_deref(), &ws)
            .ok_or_else(|| format!("deploy program `{}` was not found", run[0]))?;
        let f = crate::process::run(crate::process::Spawn {
            program,
            args: run[1..].to_vec(),
            cwd: ws,
            env: std::env::vars_os().collect(),
            stdin: None,
            timeout,
            output_cap: crate::process::DEFAULT_OUTPUT_CAP,
        })
        .await
        .map_err(|e| format!("cannot run `{}`: {e}", run[0]))?;
        let tail = crate::verdict::truncate_middle(String::from_utf8_lossy(&f.stderr).trim(), 1024);
        match (f.timed_out, f.status) {
            (true, _) => Err(format!(
                "`{}` timed out after {}",
                run.join(" "),
                humantime::format_duration(timeout)
            )),
            (false, Some(0)) => Ok(format!("`{}` succeeded", run.join(" "))),
            (false, code) => Err(format!("`{}` exited with {code:?}: {tail}", run.join(" "))),
        }
    }

    async fn land(&mut self, results: &[PredicateResult]) -> Result<String, String> {
        let (Some(iso), Some(landing)) = (self.isolation.as_ref(), self.landing.clone()) else {
            return Err("landing needs a task worktree; this run works in place".into());
        };
        let verdicts: Vec<(String, String, String)> = results
            .iter()
            .map(|r| (r.id.clone(), r.state.to_string(), r.verdict.summary.clone()))
            .collect();
        let refs: Vec<(&str, &str, &str)> = verdicts
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let message = isolation::landing_message(
            &landing.goal_id,
            landing.goal_name.as_deref(),
            &refs,
            &landing.run_id,
        );
        let record = iso.record().clone();
        let data = iso.data_dir().to_owned();
        let outcome = tokio::task::spawn_blocking(move || {
            Isolation::from_record(record, &data).land(&LandRequest {
                mode: landing.mode,
                branch: landing.branch.as_deref(),
                message: &message,
                report: "",
            })
        })
        .await
        .expect("the landing task does not panic");
        // The event says what happened in one line; the report prints the commands.
        let text = outcome.lines.first().cloned().unwrap_or_default();
        let ok = outcome.ok();
        let reason = outcome.reason.clone();
        self.landed = Some(outcome);
        if ok {
            Ok(text)
        } else {
            Err(reason.unwrap_or(text))
        }
    }

    fn settle(&mut self, process: Option<&ProcessRecord>) -> String {
        settle_process(process)
    }
}

/// End the agent process group a crashed kazi left and say what happened. Safe
/// against PID reuse: nothing is signalled unless the recorded start time matches.
pub fn settle_process(process: Option<&ProcessRecord>) -> String {
    use crate::process::{Recorded, kill_recorded};
    let Some(p) = process else {
        return "its agent never started".into();
    };
    let Some(start) = p.start_ticks else {
        return format!(
            "its agent (process {}) was not recorded with a start time, so it was left alone",
            p.pid
        );
    };
    match kill_recorded(p.pgid, start) {
        Recorded::Gone => format!("its agent (process {}) was already gone", p.pid),
        Recorded::Reused => format!(
            "its agent (process {}) was already gone (the pid now belongs to another program, which was left alone)",
            p.pid
        ),
        Recorded::Killed(n) => format!(
            "its agent (process {}, group {}) was still running: {n} process{} killed",
            p.pid,
            p.pgid,
            if n == 1 { " was" } else { "es were" }
        ),
    }
}
