//! Running a child process the way kazi always does, for the predicates' `exec`
//! import, agent dispatch and `[deploy]`: supervised so that **no process a call
//! started outlives it**.
//!
//! - The child starts a new session (`setsid`), so it leads its own session and
//!   process group; every descendant stays in that session unless it calls `setsid`
//!   itself.
//! - kazi is a Linux *child subreaper* (`PR_SET_CHILD_SUBREAPER`): a descendant whose
//!   parent dies is re-parented to kazi instead of `init`, so a `setsid` daemon cannot
//!   slip away. When a call ends (exit, timeout, cancellation, or its future being
//!   dropped) kazi kills, by scanning `/proc`: the call's session and process group,
//!   every descendant of those processes, and every process re-parented to kazi that
//!   left kazi's own session, started after the call and does not carry another call's
//!   marker (`KAZI_CALL_ID` in its initial environment) — then the descendants of all
//!   of these, repeatedly until two scans in a row find none, reaping the orphans'
//!   zombies. A call that left its process group empty and gave kazi no unknown
//!   child skips the scan.
//! - The leader gets `PR_SET_PDEATHSIG(SIGKILL)`: if kazi itself is killed, so is it.
//!   It is forked from a thread that lives as long as kazi, because the kernel sends
//!   that signal when the *thread* that forked the child ends.
//! - Reading output stops at the deadline: a descendant that keeps stdout open cannot
//!   extend the call.
//! - Every leader is registered as one before it may exec (it waits on a pipe until
//!   kazi has its pid), and a sweep asks the registry when it decides, so a
//!   concurrent call's sweep never takes a program that is just starting — its
//!   marker is unreadable for a moment during exec — for an orphan of its own.
//! - A spawn hook lets the caller record the child's pid, process group and start time
//!   durably *before the child runs its program* (the child waits on a pipe until the
//!   hook returns), and [`kill_recorded`] ends a group left by a crashed kazi only if
//!   its leader's start time still matches (PID-reuse safe).
//!
//! kazi raises its own `RLIMIT_NOFILE` soft limit at start ([`init`]); children get
//! the original soft limit back, so programs that use `select(2)` keep working.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Default cap on each of stdout and stderr.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;

/// The environment variable that marks every process a call started (and, unless
/// they scrub their environment, its descendants), so concurrent calls can tell
/// their orphans apart.
pub const CALL_MARKER: &str = "KAZI_CALL_ID";

/// After the leader exits, how long the output may still be read when the deadline
/// has already passed (the pipes usually close at once: every writer was killed).
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// How many `/proc` scans a sweep makes at most before giving up on a process that
/// cannot be killed (another user's, for example).
const SWEEP_ROUNDS: u32 = 60;

/// A program to run.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// Absolute path of the program (already resolved).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment: nothing else is inherited (kazi adds only
    /// [`CALL_MARKER`]).
    pub env: Vec<(OsString, OsString)>,
    /// Bytes written to stdin before closing it; `None` means stdin is /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Cap for each of stdout and stderr; the rest is read and dropped.
    pub output_cap: usize,
}

/// What the process did.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Exit code; `None` when killed by a signal, at the timeout or on cancellation.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
    pub timed_out: bool,
    /// The caller's cancellation token fired: the tree was killed like at a timeout.
    pub cancelled: bool,
    pub duration: Duration,
    /// Processes other than the leader that were still alive when the call ended and
    /// were killed (0 for a well-behaved program).
    pub killed_descendants: usize,
}

/// The identity of a started leader, for a caller that records it durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
    /// The process group (and session) id: the leader's pid.
    pub pgid: i32,
    /// The leader's start time in clock ticks since boot (`/proc/<pid>/stat`, field
    /// 22): with the pid, it tells the process from a later one that reused the pid.
    pub start_time: u64,
    /// The value of [`CALL_MARKER`] in its environment.
    pub call_id: String,
}

/// Called with the leader's identity after it was forked and before it runs its
/// program. An `Err` kills the child before it ran anything; the call then fails
/// with that message.
pub type SpawnHook = Box<dyn FnOnce(&Started) -> Result<(), String> + Send>;

/// Optional supervision of one run beyond [`Spawn`].
#[derive(Default)]
pub struct Supervision {
    /// When it fires, the call ends like a timeout (the whole tree killed, what was
    /// read so far returned) with [`Finished::cancelled`] set.
    pub cancel: Option<CancellationToken>,
    /// See [`SpawnHook`].
    pub on_spawn: Option<SpawnHook>,
    /// A directory the child changes into (with `fchdir`) instead of [`Spawn::cwd`]:
    /// a directory the caller opened and checked, so a path swapped for a symlink
    /// after the check cannot redirect the child.
    pub cwd_dir: Option<std::fs::File>,
}

/// Run `spec` to completion, timeout or cancellation, supervised (see the module
/// documentation). Errors only when the process cannot be started.
pub async fn run(spec: Spawn) -> std::io::Result<Finished> {
    run_supervised(spec, Supervision::default()).await
}

/// [`run`] with a cancellation token, a spawn hook and a pre-opened working directory.
/// Dropping the returned future kills the whole tree too.
pub async fn run_supervised(spec: Spawn, sup: Supervision) -> std::io::Result<Finished> {
    init();
    crate::guardian::ensure();
    let started_at = Instant::now();
    let deadline = started_at + spec.timeout;
    let call_id = next_call_id();
    tracing::debug!(
        program = %spec.program.display(),
        args = ?spec.args,
        cwd = %spec.cwd.display(),
        timeout = %humantime::format_duration(spec.timeout),
        "spawning"
    );
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(CALL_MARKER, &call_id)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    // The handshake: the child writes its pid, then waits for one byte before it
    // execs. kazi registers it as a call leader in between, so that no concurrent
    // call's sweep can take the freshly exec'd program for an orphan of its own (its
    // environment, and so its marker, is not readable for a moment during exec);
    // the spawn hook, if any, runs there too.
    let handshake = Some(Handshake::new()?);
    let child_side = ChildSetup {
        parent: std::process::id() as i32,
        nofile: *ORIGINAL_NOFILE.get().unwrap_or(&None),
        cwd_fd: sup.cwd_dir.as_ref().map(AsRawFd::as_raw_fd),
        pid_w: handshake.as_ref().map(|h| h.pid_w.as_raw_fd()),
        go_r: handshake.as_ref().map(|h| h.go_r.as_raw_fd()),
        parent_ends: handshake
            .as_ref()
            .map(|h| (h.pid_r.as_raw_fd(), h.go_w.as_raw_fd())),
    };
    install_pre_exec(&mut cmd, child_side);

    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The fds the child needs must stay open in kazi until the fork happened; the
    // spawner closes them once `spawn` returned.
    let (child_ends, parent_ends) = match handshake {
        Some(h) => (Some((h.pid_w, h.go_r)), Some((h.pid_r, h.go_w))),
        None => (None, None),
    };
    let cwd_dir = sup.cwd_dir;
    let marker = call_id.clone();
    spawner().submit(Box::new(move || {
        let _guard = handle.enter();
        // Until the child is registered as a leader, no sweep may reap a zombie: a
        // program that exits at once would otherwise look like an orphan to a
        // concurrent call's sweep, and tokio would lose its exit status.
        SPAWNING.fetch_add(1, Ordering::SeqCst);
        let result = cmd.spawn();
        if let Some(pid) = result.as_ref().ok().and_then(tokio::process::Child::id) {
            leaders().lock().expect("leaders lock").insert(pid as i32);
        }
        SPAWNING.fetch_sub(1, Ordering::SeqCst);
        drop(child_ends);
        drop(cwd_dir);
        if let Err(Ok(child)) = tx.send(result) {
            // The call was dropped while its program was starting, before it could
            // guard it: end what the program started here, as the guard would have.
            if let Some(pid) = child.id().map(|p| p as i32) {
                let call = Call {
                    leader: pid,
                    start_time: proc_stat(pid).map_or(0, |s| s.start_time),
                    marker,
                };
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let mut quiet = 0;
                for round in 0..SWEEP_ROUNDS {
                    if sweep_round(&call, &mut quiet).1 {
                        break;
                    }
                    std::thread::sleep(sweep_pause(round));
                }
                leaders().lock().expect("leaders lock").remove(&pid);
            }
            drop(child);
        }
    }));

    let mut hook_error = None;
    let mut registered = None;
    if let Some((pid_r, go_w)) = parent_ends {
        match read_child_pid(pid_r).await {
            Some(pid) => {
                leaders().lock().expect("leaders lock").insert(pid);
                registered = Some(pid);
                let verdict = match sup.on_spawn {
                    Some(hook) => hook(&Started {
                        pid,
                        pgid: pid,
                        start_time: proc_stat(pid).map_or(0, |s| s.start_time),
                        call_id: call_id.clone(),
                    }),
                    None => Ok(()),
                };
                match verdict {
                    Ok(()) => {
                        let mut go = std::fs::File::from(go_w);
                        let _ = go.write_all(&[1]);
                    }
                    // Dropping `go_w` unwritten makes the child give up before exec.
                    Err(e) => hook_error = Some(e),
                }
            }
            None => drop(go_w),
        }
    }
    let unregister = || {
        if let Some(pid) = registered {
            leaders().lock().expect("leaders lock").remove(&pid);
        }
    };
    let spawned = rx
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawner thread went away")));
    let mut child = match (spawned, hook_error) {
        (Ok(mut child), Some(e)) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            unregister();
            return Err(std::io::Error::other(e));
        }
        (Ok(child), None) => child,
        (Err(e), Some(hook)) => {
            unregister();
            return Err(std::io::Error::other(format!("{hook} ({e})")));
        }
        (Err(e), None) => {
            unregister();
            return Err(e);
        }
    };
    let pid = child.id().map_or(0, |id| id as i32);
    let call = Arc::new(Call {
        leader: pid,
        start_time: proc_stat(pid).map_or(0, |s| s.start_time),
        marker: call_id,
    });
    let mut guard = CallGuard(Some(call.clone()));

    if let (Some(bytes), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A child that never reads its stdin must not block us: write in the background.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }
    let stop_reading = CancellationToken::new();
    let out = tokio::spawn(read_capped(
        child.stdout.take(),
        spec.output_cap,
        stop_reading.clone(),
    ));
    let err = tokio::spawn(read_capped(
        child.stderr.take(),
        spec.output_cap,
        stop_reading.clone(),
    ));

    let cancel = sup.cancel.unwrap_or_default();
    let (status, timed_out, cancelled) = tokio::select! {
        status = child.wait() => (status?.code(), false, false),
        () = tokio::time::sleep_until(deadline.into()) => (None, true, false),
        () = cancel.cancelled() => (None, false, true),
    };
    // The leader is done (or is being stopped): end everything the call left behind,
    // which also closes the pipes a lingering descendant held.
    let killed = if timed_out || cancelled || !nothing_left(&call) {
        sweep(&call).await
    } else {
        0
    };
    if timed_out || cancelled {
        let _ = child.wait().await;
    }
    // Read what is left, but never past the deadline (plus a short grace when the
    // deadline already passed or the call was cancelled): a writer that escaped
    // cannot hold the call open.
    let stop_at = if cancelled {
        Instant::now() + DRAIN_GRACE
    } else {
        deadline.max(Instant::now() + DRAIN_GRACE)
    };
    let stopper = {
        let stop = stop_reading.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(stop_at.into()).await;
            stop.cancel();
        })
    };
    let (stdout, t1) = out.await.unwrap_or_default();
    let (stderr, t2) = err.await.unwrap_or_default();
    stopper.abort();
    guard.finish();
    Ok(Finished {
        status,
        stdout,
        stderr,
        truncated: t1 || t2,
        timed_out,
        cancelled,
        duration: started_at.elapsed(),
        killed_descendants: killed.saturating_sub(usize::from(timed_out || cancelled)),
    })
}

/// Read a stream to its end (or until `stop` fires), keeping at most `cap` bytes.
async fn read_capped<R: AsyncRead + Unpin>(
    stream: Option<R>,
    cap: usize,
    stop: CancellationToken,
) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = stop.cancelled() => break,
        };
        let room = cap.saturating_sub(kept.len());
        if n > room {
            truncated = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    (kept, truncated)
}

/// Find `program` on `path` (a PATH-style list). A name with a `/` is taken relative
/// to `base` instead. Returns the absolute path of an executable regular file.
pub fn resolve_program(
    program: &str,
    path: Option<&std::ffi::OsStr>,
    base: &Path,
) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = base.join(program);
        return is_exec(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
}

// ---------------------------------------------------------------------------
// Process-wide setup.

/// kazi's `RLIMIT_NOFILE` soft limit before [`init`] raised it (`None`: unchanged).
static ORIGINAL_NOFILE: OnceLock<Option<(u64, u64)>> = OnceLock::new();

/// Process-wide supervision setup, idempotent: make kazi a child subreaper and raise
/// its `RLIMIT_NOFILE` soft limit to the hard limit (so one busy predicate cannot
/// exhaust kazi's descriptors). Called by every run; call it early (at start) so
/// processes started by other code are covered too.
pub fn init() {
    ORIGINAL_NOFILE.get_or_init(|| {
        #[cfg(target_os = "linux")]
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!(error = %e, "cannot become a child subreaper");
        }
        raise_nofile()
    });
}

/// Raise the soft descriptor limit to the hard one; returns the original limits if
/// they changed.
fn raise_nofile() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // Some systems report an "unlimited" hard limit that setrlimit refuses as a soft
    // limit; cap the target at what Linux accepts (`fs.nr_open`, 1 Mi by default).
    let target = hard.min(1 << 20);
    if soft >= target {
        return None;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => Some((soft, hard)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot raise RLIMIT_NOFILE");
            None
        }
    }
}

/// The current `RLIMIT_NOFILE` soft limit (for tests and diagnostics).
pub fn nofile_soft_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Unique per call and per kazi process: `<kazi pid>-<kazi start time>-<n>`.
fn next_call_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static ME: OnceLock<String> = OnceLock::new();
    let me = ME.get_or_init(|| {
        let pid = std::process::id();
        let start = proc_stat(pid as i32).map_or(0, |s| s.start_time);
        format!("{pid}-{start}")
    });
    format!("{me}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Spawns between `fork` and the registration of their leader.
static SPAWNING: AtomicUsize = AtomicUsize::new(0);

/// Reap `pid`, a zombie child of kazi found by a sweep, unless it is (or may be) the
/// leader of a call, which tokio reaps.
fn reap_orphan(pid: i32) -> bool {
    let leaders = leaders().lock().expect("leaders lock");
    SPAWNING.load(Ordering::SeqCst) == 0
        && !leaders.contains(&pid)
        && waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
            .is_ok_and(|s| s != nix::sys::wait::WaitStatus::StillAlive)
}

/// Leaders of calls in progress (kazi's own children; never reaped by a sweep).
fn leaders() -> &'static Mutex<HashSet<i32>> {
    static LEADERS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    LEADERS.get_or_init(Default::default)
}

// ---------------------------------------------------------------------------
// Forking from long-lived threads (for PR_SET_PDEATHSIG).

type Job = Box<dyn FnOnce() + Send>;

/// A pool of threads that never exit and only fork children: the kernel delivers a
/// child's parent-death signal when the *thread* that forked it ends, so forking from
/// a tokio blocking thread (which ends after idling) would kill the child early.
struct Spawner {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
    threads: AtomicUsize,
    busy: Arc<AtomicUsize>,
}

fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        Spawner {
            jobs: Mutex::new(tx),
            queue: Arc::new(Mutex::new(rx)),
            threads: AtomicUsize::new(0),
            busy: Arc::new(AtomicUsize::new(0)),
        }
    })
}

impl Spawner {
    /// Run `job` on a spawner thread, starting another thread when all are busy (a
    /// spawn whose hook is slow must not hold up the others).
    fn submit(&self, job: Job) {
        // Count the job as pending before it is queued, so two submissions never both
        // see an idle thread that can take only one of them.
        let pending = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
        if pending > self.threads.load(Ordering::SeqCst) {
            self.threads.fetch_add(1, Ordering::SeqCst);
            let (queue, busy) = (self.queue.clone(), self.busy.clone());
            std::thread::Builder::new()
                .name("kazi-spawner".into())
                .spawn(move || {
                    loop {
                        let job = queue.lock().expect("spawner queue").recv();
                        let Ok(job) = job else { return };
                        // A panicking job must not take the thread (and its count) away.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .expect("start a spawner thread");
        }
        let _ = self.jobs.lock().expect("spawner jobs").send(job);
    }
}

// ---------------------------------------------------------------------------
// The child side: what runs between fork and exec.

/// Pipes for the spawn hook: the child writes its pid on one and waits on the other.
struct Handshake {
    pid_r: OwnedFd,
    pid_w: OwnedFd,
    go_r: OwnedFd,
    go_w: OwnedFd,
}

impl Handshake {
    fn new() -> std::io::Result<Self> {
        let (pid_r, pid_w) = std::io::pipe()?;
        let (go_r, go_w) = std::io::pipe()?;
        Ok(Self {
            pid_r: pid_r.into(),
            pid_w: pid_w.into(),
            go_r: go_r.into(),
            go_w: go_w.into(),
        })
    }
}

/// Everything the child needs, as plain values (the closure runs after `fork`).
#[derive(Clone, Copy)]
struct ChildSetup {
    parent: i32,
    nofile: Option<(u64, u64)>,
    cwd_fd: Option<i32>,
    pid_w: Option<i32>,
    go_r: Option<i32>,
    /// kazi's ends of the handshake pipes, inherited by the fork: the child closes them
    /// so that kazi closing its end (a refused hook) reaches the child as end-of-file.
    parent_ends: Option<(i32, i32)>,
}

#[expect(
    unsafe_code,
    reason = "the child's setup between fork and exec (pre_exec) is unsafe by contract"
)]
fn install_pre_exec(cmd: &mut tokio::process::Command, setup: ChildSetup) {
    // SAFETY: the closure runs in the forked child before `exec` and calls only
    // async-signal-safe functions (prctl, getppid, setsid, setrlimit, fchdir, getpid,
    // write, read, all plain system calls); it allocates nothing and touches no lock.
    // Every fd it uses is owned by the parent until `spawn` returned, so it is open in
    // the child.
    unsafe {
        cmd.pre_exec(move || child_setup(&setup));
    }
}

#[expect(
    unsafe_code,
    reason = "raw system calls in the forked child, where only async-signal-safe calls are allowed"
)]
fn child_setup(s: &ChildSetup) -> std::io::Result<()> {
    let fail = || Err(std::io::Error::last_os_error());
    // SAFETY: each call is a plain system call on values owned by this (single-threaded,
    // freshly forked) process; buffers are on the stack and outlive the calls.
    unsafe {
        #[cfg(target_os = "linux")]
        {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return fail();
            }
            // kazi may have died between fork and prctl: then no signal will come.
            if libc::getppid() != s.parent {
                libc::_exit(127);
            }
        }
        if libc::setsid() < 0 {
            return fail();
        }
        if let Some((soft, hard)) = s.nofile {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        if let Some(fd) = s.cwd_fd
            && libc::fchdir(fd) != 0
        {
            return fail();
        }
        if let (Some(pid_w), Some(go_r)) = (s.pid_w, s.go_r) {
            if let Some((pid_r, go_w)) = s.parent_ends {
                libc::close(pid_r);
                libc::close(go_w);
            }
            let pid = libc::getpid().to_le_bytes();
            if libc::write(pid_w, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return fail();
            }
            let mut go = [0u8; 1];
            loop {
                let n = libc::read(go_r, go.as_mut_ptr().cast(), 1);
                if n == 1 {
                    break;
                }
                if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                // The parent refused (its hook failed) or went away.
                return Err(std::io::Error::from_raw_os_error(libc::ECANCELED));
            }
        }
    }
    Ok(())
}

/// The pid the child wrote on the handshake pipe (`None` if it never did).
async fn read_child_pid(pid_r: OwnedFd) -> Option<i32> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::from(pid_r);
        let mut buf = [0u8; 4];
        f.read_exact(&mut buf)
            .ok()
            .map(|()| i32::from_le_bytes(buf))
    })
    .await
    .ok()
    .flatten()
}

// ---------------------------------------------------------------------------
// The sweep: finding and killing what a call left behind.

/// One call being supervised.
#[derive(Debug)]
struct Call {
    /// The leader's pid, which is also its session and process group id.
    leader: i32,
    start_time: u64,
    marker: String,
}

/// Ends the call's tree if the run future is dropped before it finished.
struct CallGuard(Option<Arc<Call>>);

impl CallGuard {
    fn finish(&mut self) {
        if let Some(call) = self.0.take() {
            leaders().lock().expect("leaders lock").remove(&call.leader);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let Some(call) = self.0.take() else { return };
        // Kill what is visible now, at once; then keep sweeping in the background for
        // what gets re-parented afterwards. The leader is a tokio child (reaped by
        // tokio after `kill_on_drop`), so it leaves the registry only then.
        let _ = killpg(Pid::from_raw(call.leader), Signal::SIGKILL);
        sweep_once(&call);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    sweep(&call).await;
                    leaders().lock().expect("leaders lock").remove(&call.leader);
                });
            }
            Err(_) => {
                leaders().lock().expect("leaders lock").remove(&call.leader);
            }
        }
    }
}

/// The fields of `/proc/<pid>/stat` the sweep needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks since boot.
    pub start_time: u64,
}

/// Parse one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses: fields are counted after the last
/// `)`.
fn parse_stat(pid: i32, line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field N is f[N - 3].
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat` of one process.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &line)
}

/// Every process visible in `/proc`.
fn scan() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// The value of [`CALL_MARKER`] in a process's initial environment, if readable.
fn marker_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{CALL_MARKER}=");
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Whether `pid` runs kazi's own executable (a fork that has not exec'd yet).
fn is_kazi_image(pid: i32) -> bool {
    static ME: OnceLock<Option<PathBuf>> = OnceLock::new();
    let me = ME.get_or_init(|| std::fs::read_link("/proc/self/exe").ok());
    me.as_ref().is_some_and(|me| {
        std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| &exe == me)
    })
}

/// `roots` and every process below them (by current parent).
fn with_descendants(procs: &[ProcStat], roots: HashSet<i32>) -> HashSet<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut all = roots.clone();
    let mut todo: Vec<i32> = roots.into_iter().collect();
    while let Some(pid) = todo.pop() {
        for &c in children.get(&pid).into_iter().flatten() {
            if all.insert(c) {
                todo.push(c);
            }
        }
    }
    all
}

/// Kill every live process whose [`CALL_MARKER`] starts with `prefix`, with
/// everything below it; returns how many were signalled. The guardian uses it to end
/// what a killed kazi left (its markers are `<pid>-<start>-<n>`).
pub fn kill_marked(prefix: &str) -> usize {
    let me = std::process::id() as i32;
    let procs = scan();
    let roots: HashSet<i32> = procs
        .iter()
        .filter(|p| p.pid != me && marker_of(p.pid).is_some_and(|m| m.starts_with(prefix)))
        .map(|p| p.pid)
        .collect();
    let mut targets = with_descendants(&procs, roots);
    targets.remove(&me);
    procs
        .iter()
        .filter(|p| targets.contains(&p.pid) && p.state != 'Z' && p.state != 'X')
        .filter(|p| kill(Pid::from_raw(p.pid), Signal::SIGKILL).is_ok())
        .count()
}

/// The processes `call` is answerable for, among `procs`.
fn attribute(procs: &[ProcStat], call: &Call, me: i32, my_session: i32) -> HashSet<i32> {
    let others = leaders().lock().expect("leaders lock").clone();
    let mut roots: HashSet<i32> = procs
        .iter()
        .filter(|p| p.session == call.leader || p.pgrp == call.leader)
        .map(|p| p.pid)
        .collect();
    for p in procs {
        // An orphan re-parented to kazi that left kazi's session (so it descends from
        // some call's leader, which always starts a new session) and is not a leader
        // of a call in progress.
        let orphan = p.ppid == me
            && p.session != my_session
            && p.pid != call.leader
            && !others.contains(&p.pid)
            && p.start_time >= call.start_time;
        if !orphan {
            continue;
        }
        let ours = match marker_of(p.pid) {
            Some(m) => m == call.marker,
            // No marker: a process that scrubbed its environment, or a child another
            // call is forking right now (until it execs it still runs kazi's own
            // image, with kazi's environment).
            None => !is_kazi_image(p.pid),
        };
        // Asked again now, not from the snapshot above: a leader is registered before
        // it may exec, so one that exec'd since the snapshot (its marker unreadable
        // for a moment) is registered by the time it no longer looks like kazi.
        if ours && leaders().lock().expect("leaders lock").contains(&p.pid) {
            continue;
        }
        if ours {
            roots.insert(p.pid);
        }
    }
    let mut all = with_descendants(procs, roots);
    all.remove(&me);
    all
}

/// The common case, checked without scanning `/proc`: the leader exited and left
/// nothing. Its process group is empty, and kazi has no child it does not know (an
/// orphan is re-parented to kazi's main thread, the thread-group leader, and a live
/// session member outside the group descends from a live group member or from such
/// an orphan). Any doubt answers `false`, and the full sweep runs.
fn nothing_left(call: &Call) -> bool {
    if killpg(Pid::from_raw(call.leader), None::<Signal>) != Err(nix::errno::Errno::ESRCH) {
        return false;
    }
    let me = std::process::id();
    let Ok(children) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) else {
        return false;
    };
    let leaders = leaders().lock().expect("leaders lock");
    children
        .split_whitespace()
        .all(|pid| pid.parse::<i32>().is_ok_and(|pid| leaders.contains(&pid)))
}

/// One round: kill what the call is answerable for; reap the zombies among them that
/// are kazi's orphans. Returns how many live processes it signalled and how many
/// orphans it reaped.
fn sweep_once(call: &Call) -> (usize, usize) {
    let me = std::process::id() as i32;
    let my_session = nix::unistd::getsid(None).map_or(-1, Pid::as_raw);
    let procs = scan();
    let targets = attribute(&procs, call, me, my_session);
    let (mut live, mut dead) = (0, 0);
    for p in procs.iter().filter(|p| targets.contains(&p.pid)) {
        if p.state == 'Z' || p.state == 'X' {
            // The leader is tokio's child: tokio reaps it. Orphans are ours; one that
            // just died may still be handing its children over.
            if p.ppid == me && p.pid != call.leader && reap_orphan(p.pid) {
                dead += 1;
            }
            continue;
        }
        if kill(Pid::from_raw(p.pid), Signal::SIGKILL).is_ok() {
            live += 1;
        }
    }
    (live, dead)
}

/// Kill everything `call` left behind, until two scans in a row find nothing alive and
/// nothing dying (re-parenting the children of a process that dies takes a moment).
/// Returns how many processes it killed in all.
async fn sweep(call: &Call) -> usize {
    let mut killed = 0;
    let mut quiet = 0;
    for round in 0..SWEEP_ROUNDS {
        let (live, done) = sweep_round(call, &mut quiet);
        killed += live;
        if done {
            break;
        }
        tokio::time::sleep(sweep_pause(round)).await;
    }
    killed
}

/// One round of a sweep: how many live processes it signalled, and whether the sweep
/// is over (this round and the one before found nothing alive and nothing dying).
fn sweep_round(call: &Call, quiet: &mut u32) -> (usize, bool) {
    let (live, dead) = sweep_once(call);
    *quiet = if live == 0 && dead == 0 {
        *quiet + 1
    } else {
        0
    };
    (live, *quiet >= 2)
}

/// The pause after sweep round `round`: 1, 2, 4 … 32 ms.
fn sweep_pause(round: u32) -> Duration {
    Duration::from_millis(1u64 << round.min(5))
}

/// What [`kill_recorded`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Nothing of the group is left.
    Gone,
    /// A process now holds that pid but started at another time: it is not ours, and
    /// nothing was signalled.
    Reused,
    /// This many processes of the group, its session or below them were killed.
    Killed(usize),
}

/// End a process group left by a crashed kazi, identified by the `pgid` and
/// `start_time` a [`SpawnHook`] recorded. Safe against PID reuse: if a live process
/// holds that pid with another start time, nothing is signalled. If the leader is
/// gone, the members still in its group or session are killed (the kernel never
/// reuses a pid as a group or session id while members of the old one live), with
/// everything below them, provided they started after the leader.
pub fn kill_recorded(pgid: i32, start_time: u64) -> Recorded {
    if pgid <= 1 {
        return Recorded::Gone;
    }
    let me = std::process::id() as i32;
    // Freeze first (SIGSTOP), rescanning until no new member appears, then kill: a
    // stopped process cannot fork, and the orphans of a killed one would go to init,
    // out of the group's reach.
    let mut stopped: HashSet<i32> = HashSet::new();
    for _ in 0..SWEEP_ROUNDS {
        let procs = scan();
        if let Some(p) = procs.iter().find(|p| p.pid == pgid)
            && p.start_time != start_time
            && !stopped.contains(&p.pid)
        {
            return Recorded::Reused;
        }
        let mut roots: HashSet<i32> = procs
            .iter()
            .filter(|p| (p.pgrp == pgid || p.session == pgid) && p.start_time >= start_time)
            .map(|p| p.pid)
            .collect();
        roots.extend(stopped.iter().copied());
        let mut targets = with_descendants(&procs, roots);
        targets.remove(&me);
        let fresh: Vec<i32> = procs
            .iter()
            .filter(|p| targets.contains(&p.pid) && !stopped.contains(&p.pid))
            .filter(|p| p.state != 'Z' && p.state != 'X')
            .map(|p| p.pid)
            .collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            if kill(Pid::from_raw(pid), Signal::SIGSTOP).is_ok() {
                stopped.insert(pid);
            }
        }
    }
    for &pid in &stopped {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // Reap those that were kazi's own orphans (a resumed kazi is usually not their
    // parent: init reaps them).
    std::thread::sleep(Duration::from_millis(5));
    for p in scan()
        .iter()
        .filter(|p| stopped.contains(&p.pid) && p.ppid == me)
    {
        let _ = reap_orphan(p.pid);
    }
    if stopped.is_empty() {
        Recorded::Gone
    } else {
        Recorded::Killed(stopped.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn sh() -> PathBuf {
        resolve_program("sh", std::env::var_os("PATH").as_deref(), Path::new("/")).unwrap()
    }

    fn spec(args: &[&str], timeout: Duration) -> Spawn {
        Spawn {
            program: sh(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: std::env::temp_dir(),
            env: vec![("PATH".into(), std::env::var_os("PATH").unwrap())],
            stdin: None,
            timeout,
            output_cap: 1024,
        }
    }

    /// A `sleep` argument unique to this test, to find survivors in `/proc`.
    fn marker(tag: &str) -> String {
        // `sleep` accepts a fractional number of seconds: 300.<digits> is unique.
        let mut h: u64 = 1469598103934665603;
        for b in tag.bytes().chain(std::process::id().to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
        }
        format!("300.{}", h % 1_000_000_000)
    }

    /// Pids of live (non-zombie) processes whose command line contains `needle`.
    fn survivors(needle: &str) -> Vec<i32> {
        scan()
            .into_iter()
            .filter(|p| p.state != 'Z' && p.state != 'X')
            .filter(|p| {
                std::fs::read(format!("/proc/{}/cmdline", p.pid))
                    .map(|c| c.split(|&b| b == 0).any(|a| a == needle.as_bytes()))
                    .unwrap_or(false)
            })
            .map(|p| p.pid)
            .collect()
    }

    /// Poll until no process matching `needle` is alive (a killed process may take a
    /// moment to disappear); kill and fail otherwise.
    fn assert_no_survivor(needle: &str) {
        for _ in 0..200 {
            if survivors(needle).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let left = survivors(needle);
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        panic!("processes running {needle} survived: {left:?}");
    }

    #[tokio::test]
    async fn captures_status_and_output() {
        let f = run(spec(
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
        assert_eq!(f.status, Some(3));
        assert_eq!(f.stdout, b"out\n");
        assert_eq!(f.stderr, b"err\n");
        assert!(!f.truncated && !f.timed_out && !f.cancelled);
        assert_eq!(f.killed_descendants, 0);
    }

    #[tokio::test]
    async fn caps_output_and_keeps_draining() {
        let f = run(spec(
            &["-c", "head -c 200000 /dev/zero"],
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
        assert_eq!(f.status, Some(0));
        assert_eq!(f.stdout.len(), 1024);
        assert!(f.truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let m = marker("timeout-group");
        let f = run(spec(
            &["-c", &format!("sleep {m} & sleep {m}")],
            Duration::from_millis(200),
        ))
        .await
        .unwrap();
        assert!(f.timed_out);
        assert_eq!(f.status, None);
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn a_setsid_daemon_holding_stdout_is_killed_and_does_not_extend_the_call() {
        // The leader exits at once; a `setsid` grandchild keeps stdout open forever.
        let m = marker("setsid-stdout");
        let f = run(spec(
            &["-c", &format!("setsid sleep {m} & echo started")],
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
        assert_eq!(f.status, Some(0));
        assert_eq!(f.stdout, b"started\n");
        assert!(!f.timed_out, "the call waited for the daemon");
        assert!(f.killed_descendants >= 1, "{f:?}");
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn at_the_timeout_a_setsid_daemon_holding_stdout_cannot_extend_the_call() {
        // The leader hangs, and a `setsid` grandchild holds stdout: at the timeout both
        // are killed and reading stops, so the call ends (the issue measured 15 s for a
        // 3 s timeout when reading waited for the grandchild).
        let m = marker("timeout-setsid-stdout");
        let f = run(spec(
            &["-c", &format!("echo partial; setsid sleep {m} & sleep {m}")],
            Duration::from_millis(300),
        ))
        .await
        .unwrap();
        assert!(f.timed_out, "{f:?}");
        assert_eq!(
            f.stdout, b"partial\n",
            "what was read before the timeout is kept"
        );
        assert!(f.killed_descendants >= 1, "{f:?}");
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn a_setsid_daemon_that_closed_its_output_is_killed() {
        let m = marker("setsid-closed");
        let f = run(spec(
            &[
                "-c",
                &format!("setsid sleep {m} </dev/null >/dev/null 2>&1 & exit 0"),
            ],
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
        assert_eq!(f.status, Some(0));
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn a_double_fork_in_a_new_session_with_a_scrubbed_environment_is_killed() {
        // The daemon leaves the session, its parent dies (re-parenting it to kazi) and
        // it drops the call marker: only the subreaper rule can find it.
        let m = marker("double-fork-env");
        let script = format!(
            "(setsid env -i /bin/sh -c 'sleep {m} & exit 0' </dev/null >/dev/null 2>&1 &) ; exit 0"
        );
        let f = run(spec(&["-c", &script], Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(f.status, Some(0));
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn a_background_job_in_another_process_group_is_killed() {
        // `set -m` puts background jobs in their own process groups (same session).
        let m = marker("job-control");
        let f = run(spec(
            &["-c", &format!("set -m; sleep {m} >/dev/null 2>&1 & exit 0")],
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
        assert_eq!(f.status, Some(0));
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn cancellation_kills_the_tree_and_returns_what_was_read() {
        let m = marker("cancel");
        let cancel = CancellationToken::new();
        let sup = Supervision {
            cancel: Some(cancel.clone()),
            ..Supervision::default()
        };
        let s = spec(
            &["-c", &format!("echo before; setsid sleep {m} & sleep {m}")],
            Duration::from_secs(60),
        );
        let run = tokio::spawn(run_supervised(s, sup));
        // Cancel once the program is running (its output proves it).
        for _ in 0..500 {
            if !survivors(&m).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        let f = run.await.unwrap().unwrap();
        assert!(f.cancelled && !f.timed_out);
        assert_eq!(f.status, None);
        assert_eq!(f.stdout, b"before\n");
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_tree() {
        let m = marker("drop");
        let s = spec(
            &["-c", &format!("setsid sleep {m} & sleep {m}")],
            Duration::from_secs(60),
        );
        let fut = run(s);
        let dropped = tokio::time::timeout(Duration::from_millis(300), fut).await;
        assert!(dropped.is_err(), "the call should still have been running");
        assert_no_survivor(&m);
    }

    /// Calls running at once never kill each other's programs: a sweep (here forced
    /// by daemons left behind) must not take another call's freshly exec'd leader
    /// for an orphan of its own. A stress test, so not in the default run: it only
    /// bites on a loaded machine (`yes >/dev/null &` twice, then `cargo test -p kazi
    /// --lib concurrent_calls -- --ignored`). Before leaders were registered ahead
    /// of their exec it failed about one run in six that way (a leader killed before
    /// its first line, `status: None`). Registering first was not enough: a sweep
    /// judged a child from a registry snapshot taken before the child was
    /// registered and exec'd, so the registry is asked again at decision time.
    #[ignore = "stress test: run under load with --ignored"]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_calls_never_kill_each_others_programs() {
        let m = marker("concurrent");
        let mut calls = Vec::new();
        for i in 0..48 {
            let script = if i % 2 == 0 {
                format!("setsid sleep {m} </dev/null >/dev/null 2>&1 & exit 0")
            } else {
                "i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; echo ok".to_owned()
            };
            calls.push(tokio::spawn(run(spec(
                &["-c", &script],
                Duration::from_secs(60),
            ))));
        }
        for (i, c) in calls.into_iter().enumerate() {
            let f = c.await.unwrap().unwrap();
            assert_eq!(f.status, Some(0), "call {i}: {f:?}");
            if i % 2 == 1 {
                assert_eq!(f.stdout, b"ok\n", "call {i}: {f:?}");
            }
        }
        assert_no_survivor(&m);
    }

    #[tokio::test]
    async fn the_spawn_hook_runs_before_the_program_and_sees_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let seen = Arc::new(Mutex::new(None));
        let (seen2, flag2) = (seen.clone(), flag.clone());
        let sup = Supervision {
            on_spawn: Some(Box::new(move |s: &Started| {
                // The program has not run yet: the file it creates does not exist.
                assert!(!flag2.exists());
                *seen2.lock().unwrap() = Some((s.clone(), proc_stat(s.pid)));
                Ok(())
            })),
            ..Supervision::default()
        };
        let s = spec(
            &["-c", &format!("touch {}; echo $$", flag.display())],
            Duration::from_secs(30),
        );
        let f = run_supervised(s, sup).await.unwrap();
        assert!(flag.exists());
        let (started, stat) = seen.lock().unwrap().clone().expect("hook called");
        let stat = stat.expect("the child was alive during the hook");
        assert_eq!(
            String::from_utf8_lossy(&f.stdout).trim(),
            started.pid.to_string()
        );
        assert_eq!(started.pgid, started.pid);
        assert_eq!(stat.start_time, started.start_time);
        assert_eq!(stat.session, started.pid, "the child leads its own session");
        assert!(
            started
                .call_id
                .starts_with(&format!("{}-", std::process::id()))
        );
    }

    #[tokio::test]
    async fn a_failing_spawn_hook_means_the_program_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let sup = Supervision {
            on_spawn: Some(Box::new(|_: &Started| Err("database is locked".to_owned()))),
            ..Supervision::default()
        };
        let s = spec(
            &["-c", &format!("touch {}", flag.display())],
            Duration::from_secs(30),
        );
        let e = run_supervised(s, sup).await.unwrap_err();
        assert!(e.to_string().contains("database is locked"), "{e}");
        assert!(!flag.exists(), "the program ran although the hook failed");
    }

    #[tokio::test]
    async fn the_child_runs_in_a_pre_opened_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervision {
            cwd_dir: Some(std::fs::File::open(dir.path()).unwrap()),
            ..Supervision::default()
        };
        let mut s = spec(&["-c", "pwd -P"], Duration::from_secs(30));
        s.cwd = PathBuf::from("/");
        let f = run_supervised(s, sup).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&f.stdout).trim(),
            dir.path().canonicalize().unwrap().to_str().unwrap()
        );
    }

    #[tokio::test]
    async fn environment_is_only_what_was_given_plus_the_call_marker() {
        let mut s = spec(&["-c", "env"], Duration::from_secs(10));
        s.output_cap = 1 << 20;
        let f = run(s).await.unwrap();
        let env = String::from_utf8_lossy(&f.stdout);
        assert!(
            env.lines().all(|l| l.starts_with("PATH=")
                || l.starts_with("PWD=")
                || l.starts_with("SHLVL=")
                || l.starts_with("_=")
                || l.starts_with("KAZI_CALL_ID=")),
            "{env}"
        );
    }

    #[tokio::test]
    async fn children_get_the_original_descriptor_limit_back() {
        init();
        let Some(Some((soft, _))) = ORIGINAL_NOFILE.get().copied() else {
            // Nothing was raised (soft == hard already): nothing to restore.
            return;
        };
        assert!(nofile_soft_limit().unwrap() > soft);
        let f = run(spec(&["-c", "ulimit -n"], Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&f.stdout).trim(), soft.to_string());
    }

    #[tokio::test]
    async fn stdin_is_delivered() {
        let mut s = spec(&["-c", "cat"], Duration::from_secs(10));
        s.stdin = Some(b"prompt".to_vec());
        let f = run(s).await.unwrap();
        assert_eq!(f.stdout, b"prompt");
    }

    #[test]
    fn kill_recorded_kills_a_live_group_and_its_session() {
        init();
        let m = marker("recorded");
        // A group as a crashed kazi would leave it: a session leader with a child that
        // moved to another process group.
        let mut child = std::process::Command::new(sh())
            .args(["-c", &format!("set -m; sleep {m} & sleep {m}")])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut stat = None;
        for _ in 0..500 {
            if survivors(&m).len() == 2 {
                stat = proc_stat(pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let stat = stat.expect("both sleeps started");
        // A wrong start time (the pid was reused): nothing is touched.
        assert_eq!(kill_recorded(pid, stat.start_time + 1), Recorded::Reused);
        assert_eq!(survivors(&m).len(), 2);
        assert!(matches!(kill_recorded(pid, stat.start_time), Recorded::Killed(n) if n >= 2));
        let _ = child.wait();
        assert_no_survivor(&m);
        assert_eq!(kill_recorded(pid, stat.start_time), Recorded::Gone);
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line =
            "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 0";
        let s = parse_stat(42, line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.start_time),
            ('S', 1, 42, 42, 987654)
        );
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn resolve_finds_programs_on_path_only() {
        let path = std::env::var_os("PATH");
        assert!(resolve_program("sh", path.as_deref(), Path::new("/")).is_some());
        assert!(
            resolve_program(
                "definitely-not-a-program-kazi",
                path.as_deref(),
                Path::new("/")
            )
            .is_none()
        );
        assert!(resolve_program("sh", None, Path::new("/")).is_none());
    }
}
