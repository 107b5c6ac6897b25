//! The guardian: a small process that outlives kazi only to clean up after it.
//!
//! Every process kazi starts carries a marker in its environment
//! ([`crate::process::CALL_MARKER`] = `<kazi pid>-<kazi start time>-<n>`), and while
//! kazi lives its supervision ends every process a call started. If kazi itself is
//! killed with SIGKILL, nothing of kazi runs any more: the leader of each call dies with
//! it (parent-death signal), but the leader's own children would live on. So the first
//! time kazi starts a process it also starts `kazi __guardian <pid> <start>` in a process
//! group of its own, holding the read end of a pipe whose write end only kazi has. When
//! kazi dies, however it dies, the pipe closes; the guardian then kills every process
//! that carries this kazi's marker, and everything below them, and exits.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The hidden subcommand the guardian runs as.
pub const SUBCOMMAND: &str = "__guardian";

static ENABLED: AtomicBool = AtomicBool::new(false);
static GUARDIAN: OnceLock<Mutex<Option<Child>>> = OnceLock::new();

/// Allow [`ensure`] to start a guardian: only the `kazi` binary does (a test binary
/// that links the library must not re-execute itself as one).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Start this process's guardian if it is enabled and not started yet. Cheap after
/// the first call; a guardian that cannot be started only costs the protection (it
/// is logged).
pub fn ensure() {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    GUARDIAN.get_or_init(|| {
        let me = std::process::id() as i32;
        let start = crate::process::proc_stat(me).map_or(0, |s| s.start_time);
        let child = std::env::current_exe().and_then(|exe| {
            Command::new(exe)
                .args([SUBCOMMAND, &me.to_string(), &start.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Not in kazi's group: a Ctrl-C for kazi must not end the guardian.
                .process_group(0)
                .spawn()
        });
        match child {
            Ok(c) => Mutex::new(Some(c)),
            Err(e) => {
                tracing::warn!(error = %e, "could not start the guardian process; processes a SIGKILL of kazi leaves behind will not be cleaned up");
                Mutex::new(None)
            }
        }
    });
}

/// The guardian itself (`kazi __guardian PID START`): wait for kazi to die, then kill
/// what it left.
pub fn run(args: &[String]) -> std::process::ExitCode {
    let (Some(pid), Some(start)) = (
        args.first().and_then(|a| a.parse::<i32>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: kazi {SUBCOMMAND} PID START (started by kazi itself)");
        return std::process::ExitCode::from(crate::exit::USAGE);
    };
    // Blocks until every write end is closed: kazi is gone.
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    let prefix = format!("{pid}-{start}-");
    for round in 0..40u32 {
        if crate::process::kill_marked(&prefix) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5u64 << round.min(6)));
    }
    std::process::ExitCode::SUCCESS
}
