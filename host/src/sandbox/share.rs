//! Single-flight exec for one observation: identical exec requests (resolved
//! program, arguments, physical working directory, complete environment and
//! requested timeout) made by the predicates of one observation share one process
//! and its output, so three predicates over one `pytest` cost one run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::process::{self, Finished, Spawn, Supervision};
use crate::verdict::Verdict;

/// Most distinct commands one share remembers; further ones run unshared.
const MAX_FLIGHTS: usize = 64;
/// Most output bytes (stdout and stderr) one share keeps; further runs are unshared.
const MAX_SHARED_BYTES: usize = 64 << 20;

/// A handle that makes identical exec requests share one run. Cheap to clone.
///
/// Create one per observation *attempt* and pass it (cloned) in
/// [`EvalOptions::exec_share`](super::EvalOptions) to every evaluation of that
/// attempt; no handle means no sharing. A flake re-run of a failure must get a
/// **fresh** handle: re-reading the cached output would make the re-run pointless.
/// The outputs it keeps (at most 64 commands, 64 MiB) are freed when the last clone
/// is dropped.
#[derive(Clone, Default)]
pub struct ExecShare {
    inner: Arc<Mutex<Flights>>,
}

impl std::fmt::Debug for ExecShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flights = self.inner.lock().expect("share lock");
        f.debug_struct("ExecShare")
            .field("commands", &flights.map.len())
            .finish()
    }
}

#[derive(Default)]
struct Flights {
    map: HashMap<ExecKey, Arc<Flight>>,
    bytes: usize,
}

/// What makes two exec requests identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExecKey {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The physical working directory.
    pub cwd: PathBuf,
    /// The complete environment the program gets, in order.
    pub env: Vec<(OsString, OsString)>,
    /// The timeout the guest asked for (not the one its deadline imposed).
    pub timeout_ms: Option<u64>,
}

type Outcome = Arc<Result<Finished, String>>;

/// One run and the predicates that use it.
struct Flight {
    /// The command as people read it, for evidence.
    shown: String,
    users: Mutex<Vec<String>>,
    /// The latest deadline of any waiting predicate: the run is stopped then.
    deadline: watch::Sender<Instant>,
    done: watch::Sender<Option<Outcome>>,
    waiters: AtomicUsize,
    cancel: CancellationToken,
}

/// Decrements a flight's waiters; the last one to leave an unfinished run stops it.
struct Waiting(Arc<Flight>);

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.0.waiters.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.done.borrow().is_none() {
            self.0.cancel.cancel();
        }
    }
}

impl ExecShare {
    /// A new, empty share (one observation attempt).
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `spawn` for `predicate`, or join the identical run already started in this
    /// share. `deadline` is when this predicate stops waiting; the shared run lasts
    /// until the latest deadline of the predicates waiting for it. `shown` names the
    /// command in evidence.
    pub(crate) async fn run(
        &self,
        key: ExecKey,
        shown: String,
        predicate: &str,
        spawn: Spawn,
        cwd_dir: Option<std::fs::File>,
        deadline: Instant,
    ) -> std::io::Result<Finished> {
        let joined = {
            let mut flights = self.inner.lock().expect("share lock");
            match flights.map.get(&key) {
                Some(f) => Some((f.clone(), false)),
                None if flights.map.len() >= MAX_FLIGHTS || flights.bytes >= MAX_SHARED_BYTES => {
                    None
                }
                None => {
                    let f = Arc::new(Flight {
                        shown,
                        users: Mutex::new(Vec::new()),
                        deadline: watch::Sender::new(deadline),
                        done: watch::Sender::new(None),
                        waiters: AtomicUsize::new(0),
                        cancel: CancellationToken::new(),
                    });
                    flights.map.insert(key, f.clone());
                    Some((f, true))
                }
            }
        };
        let Some((flight, started)) = joined else {
            return run_alone(spawn, cwd_dir, deadline).await;
        };
        {
            let mut users = flight.users.lock().expect("users lock");
            if !users.iter().any(|u| u == predicate) {
                users.push(predicate.to_owned());
            }
        }
        flight.deadline.send_modify(|d| *d = (*d).max(deadline));
        flight.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(flight.clone());
        if started {
            tokio::spawn(fly(flight.clone(), self.inner.clone(), spawn, cwd_dir));
        }
        let mut done = flight.done.subscribe();
        let waited = tokio::time::timeout_at(deadline.into(), done.wait_for(Option::is_some)).await;
        let outcome = match waited {
            Ok(Ok(v)) => v.clone().expect("waited for Some"),
            // This predicate's own deadline passed first: it sees a timed-out run.
            Ok(Err(_)) | Err(_) => {
                return Ok(Finished {
                    timed_out: true,
                    ..Finished::default()
                });
            }
        };
        match &*outcome {
            Ok(f) => {
                let mut f = f.clone();
                if f.cancelled {
                    // Stopped at the latest waiting deadline: a timeout for everyone.
                    f.cancelled = false;
                    f.timed_out = true;
                }
                Ok(f)
            }
            Err(e) => Err(std::io::Error::other(e.clone())),
        }
    }

    /// Lines for the evidence of `predicate`: one per command whose output it shared
    /// with other predicates, naming them all (sorted, so the text does not depend on
    /// which predicate happened to start the run).
    pub fn notes(&self, predicate: &str) -> Vec<String> {
        let flights = self.inner.lock().expect("share lock");
        let mut notes: Vec<String> = flights
            .map
            .values()
            .filter_map(|f| {
                let mut users = f.users.lock().expect("users lock").clone();
                if users.len() < 2 || !users.iter().any(|u| u == predicate) {
                    return None;
                }
                users.sort();
                let names: Vec<String> = users.iter().map(|u| format!("`{u}`")).collect();
                Some(format!(
                    "the output of {} was shared by predicates {} (one run)",
                    f.shown,
                    names.join(", ")
                ))
            })
            .collect();
        notes.sort();
        notes
    }

    /// Append [`ExecShare::notes`] for `predicate` to the verdict's details.
    pub fn annotate(&self, predicate: &str, verdict: &mut Verdict) {
        let notes = self.notes(predicate);
        if notes.is_empty() {
            return;
        }
        if !verdict.details.is_empty() {
            verdict.details.push_str("\n\n");
        }
        verdict.details.push_str(&notes.join("\n"));
    }
}

/// Run the shared process until it ends or the latest waiting deadline passes.
async fn fly(
    flight: Arc<Flight>,
    flights: Arc<Mutex<Flights>>,
    mut spawn: Spawn,
    cwd_dir: Option<std::fs::File>,
) {
    // The deadline can move later while it runs: a watcher stops it at the latest one.
    spawn.timeout = Duration::from_secs(24 * 3600);
    let watcher = {
        let flight = flight.clone();
        tokio::spawn(async move {
            let mut rx = flight.deadline.subscribe();
            loop {
                let d = *rx.borrow_and_update();
                tokio::select! {
                    () = tokio::time::sleep_until(d.into()) => {
                        if *rx.borrow() <= d {
                            flight.cancel.cancel();
                            return;
                        }
                    }
                    changed = rx.changed() => if changed.is_err() { return },
                }
            }
        })
    };
    let sup = Supervision {
        cancel: Some(flight.cancel.clone()),
        cwd_dir,
        ..Supervision::default()
    };
    let result = process::run_supervised(spawn, sup)
        .await
        .map_err(|e| e.to_string());
    watcher.abort();
    if let Ok(f) = &result {
        flights.lock().expect("share lock").bytes += f.stdout.len() + f.stderr.len();
    }
    flight.done.send_replace(Some(Arc::new(result)));
}

/// An unshared run (the share is full).
async fn run_alone(
    mut spawn: Spawn,
    cwd_dir: Option<std::fs::File>,
    deadline: Instant,
) -> std::io::Result<Finished> {
    spawn.timeout = deadline.saturating_duration_since(Instant::now());
    let sup = Supervision {
        cwd_dir,
        ..Supervision::default()
    };
    process::run_supervised(spawn, sup).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn counting(dir: &Path, sleep: &str) -> (ExecKey, Spawn) {
        let sh =
            process::resolve_program("sh", std::env::var_os("PATH").as_deref(), Path::new("/"))
                .unwrap();
        let log = dir.join("runs");
        let args = vec![
            "-c".to_owned(),
            format!("echo run >> {}; sleep {sleep}; echo out", log.display()),
        ];
        let env = vec![("PATH".into(), std::env::var_os("PATH").unwrap())];
        let key = ExecKey {
            program: sh.clone(),
            args: args.clone(),
            cwd: dir.to_path_buf(),
            env: env.clone(),
            timeout_ms: None,
        };
        let spawn = Spawn {
            program: sh,
            args,
            cwd: dir.to_path_buf(),
            env,
            stdin: None,
            timeout: Duration::from_secs(60),
            output_cap: 1024,
        };
        (key, spawn)
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn identical_requests_share_one_run_and_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let share = ExecShare::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (key, spawn) = counting(dir.path(), "0.2");
        let a = share.run(
            key.clone(),
            "`sh`".into(),
            "a",
            spawn.clone(),
            None,
            deadline,
        );
        let b = share.run(
            key.clone(),
            "`sh`".into(),
            "b",
            spawn.clone(),
            None,
            deadline,
        );
        let (a, b) = tokio::join!(a, b);
        // A third predicate arriving after the run ended reuses its output too.
        let c = share
            .run(key, "`sh`".into(), "c", spawn, None, deadline)
            .await
            .unwrap();
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(runs(dir.path()), 1);
        for f in [&a, &b, &c] {
            assert_eq!(f.stdout, b"out\n");
            assert_eq!(f.status, Some(0));
        }
        let note = "the output of `sh` was shared by predicates `a`, `b`, `c` (one run)";
        for p in ["a", "b", "c"] {
            assert_eq!(share.notes(p), vec![note.to_owned()]);
        }
        assert!(share.notes("d").is_empty());
        let mut v = Verdict::error("x").with_details("head");
        share.annotate("b", &mut v);
        assert_eq!(v.details, format!("head\n\n{note}"));
    }

    #[tokio::test]
    async fn different_requests_and_fresh_shares_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let share = ExecShare::new();
        let (key, spawn) = counting(dir.path(), "0");
        share
            .run(
                key.clone(),
                "`sh`".into(),
                "a",
                spawn.clone(),
                None,
                deadline,
            )
            .await
            .unwrap();
        let mut other = key.clone();
        other.env.push(("X".into(), "1".into()));
        share
            .run(other, "`sh`".into(), "b", spawn.clone(), None, deadline)
            .await
            .unwrap();
        assert_eq!(runs(dir.path()), 2);
        assert!(share.notes("a").is_empty(), "nothing was shared");
        // A flake re-run gets a fresh share and really runs the command again.
        ExecShare::new()
            .run(key, "`sh`".into(), "a", spawn, None, deadline)
            .await
            .unwrap();
        assert_eq!(runs(dir.path()), 3);
    }

    #[tokio::test]
    async fn the_run_lasts_until_the_latest_deadline_and_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let share = ExecShare::new();
        let (key, spawn) = counting(dir.path(), "30");
        let now = Instant::now();
        let early = share.run(
            key.clone(),
            "`sh`".into(),
            "early",
            spawn.clone(),
            None,
            now + Duration::from_millis(200),
        );
        let late = share.run(
            key,
            "`sh`".into(),
            "late",
            spawn,
            None,
            now + Duration::from_millis(600),
        );
        let (early, late) = tokio::join!(early, late);
        let (early, late) = (early.unwrap(), late.unwrap());
        assert!(early.timed_out && late.timed_out);
        assert!(!late.cancelled);
        assert_eq!(runs(dir.path()), 1);
    }

    #[tokio::test]
    async fn when_every_waiter_leaves_the_run_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let share = ExecShare::new();
        let (key, spawn) = counting(dir.path(), "30");
        let deadline = Instant::now() + Duration::from_secs(60);
        let waiting = share.run(key, "`sh`".into(), "a", spawn, None, deadline);
        // The evaluation is dropped (its wall-clock limit fired): the run must end.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), waiting)
                .await
                .is_err()
        );
        let flight = share
            .inner
            .lock()
            .unwrap()
            .map
            .values()
            .next()
            .cloned()
            .unwrap();
        let mut done = flight.done.subscribe();
        let ended = tokio::time::timeout(Duration::from_secs(20), done.wait_for(Option::is_some))
            .await
            .expect("the abandoned run was stopped")
            .unwrap()
            .clone()
            .unwrap();
        assert!(ended.as_ref().as_ref().unwrap().cancelled);
    }
}
