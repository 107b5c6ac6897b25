//! The real world of a run: predicates evaluated in the sandbox, the agent run through
//! its profile, `[deploy]` as a process, the seal and the scope on disk.

use std::path::PathBuf;
use std::time::Duration;

use super::seal::{self, Seal, Snapshot};
use super::{DispatchRequest, Evaluation, Prepared, World};
use crate::agent::Dispatcher;
use crate::observe::Observer;
use crate::run::DispatchRecord;
use crate::store::ProcessRecord;

/// The world of a run in place: the agent edits the workspace itself; the seal and
/// the scope are checked, never enforced.
pub struct LiveWorld {
    pub observer: Observer,
    pub dispatcher: Dispatcher,
    pub goal_path: PathBuf,
    pub protected: Vec<String>,
    /// The seal taken when the run started.
    pub seal: Seal,
    /// Workspace-relative files kazi itself writes (its database when it lives in the
    /// workspace): never the agent's changes.
    pub own_files: Vec<String>,
}

impl LiveWorld {
    fn workspace(&self) -> &std::path::Path {
        &self.dispatcher.workspace
    }

    fn snapshot(&self) -> Snapshot {
        seal::snapshot(self.workspace())
    }
}

impl World for LiveWorld {
    async fn prepare(&mut self) -> Prepared {
        let now = seal::compute(&self.goal_path, self.workspace(), &self.protected);
        Prepared {
            tamper: seal::diff(&self.seal, &now),
            reverted: Vec::new(),
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

    async fn land(&mut self, _message: &str) -> Result<String, String> {
        Err("landing needs a task worktree; this run works in place".into())
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
