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

/// End the agent process group a crashed kazi left and say what happened. The group
/// is killed only when one of its processes provably belongs to it: the leader itself
/// (same pid and start time), or a member that started after the leader (a process
/// group id is never reused while a member is alive).
pub fn settle_process(process: Option<&ProcessRecord>) -> String {
    let Some(p) = process else {
        return "its agent never started".into();
    };
    let leader = crate::store::process_alive(p.pid, p.start_ticks);
    let members = group_members(p.pgid, p.start_ticks);
    if leader || !members.is_empty() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(p.pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
        format!(
            "its agent (process {}, group {}: {} process{}) was still running and was killed",
            p.pid,
            p.pgid,
            members.len().max(1),
            if members.len() > 1 { "es" } else { "" }
        )
    } else {
        format!("its agent (process {}) was already gone", p.pid)
    }
}

/// Processes in group `pgid` that started no earlier than `since` (clock ticks).
fn group_members(pgid: i32, since: Option<u64>) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the name: state(0) ppid(1) pgrp(2) … starttime(19).
            let pgrp = fields.get(2).and_then(|f| f.parse::<i32>().ok());
            let start = fields.get(19).and_then(|f| f.parse::<u64>().ok());
            pgrp == Some(pgid) && since.is_none_or(|s| start.is_some_and(|t| t >= s))
        })
        .collect()
}
