//! Running a child process the way kazi always does: its own process group, a
//! timeout, capped output, and the whole group killed when it ends, times out or is
//! cancelled (no orphans). Used by the predicates' `exec` import and, later, agent
//! dispatch.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Default cap on each of stdout and stderr.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;

/// A program to run.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// Absolute path of the program (already resolved).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment: nothing else is inherited.
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
    /// Exit code; `None` when killed by a signal or at the timeout.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
    pub timed_out: bool,
    pub duration: Duration,
}

/// Kills the process group when dropped, so a cancelled run leaves nothing behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (group already gone) is fine.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run `spec` to completion or timeout. Errors only when the process cannot be spawned.
pub async fn run(spec: Spawn) -> std::io::Result<Finished> {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));

    if let (Some(bytes), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A child that never reads its stdin must not block us: write in the background.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }
    let out = tokio::spawn(read_capped(child.stdout.take(), spec.output_cap));
    let err = tokio::spawn(read_capped(child.stderr.take(), spec.output_cap));

    let (status, timed_out) = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(status) => (status?.code(), false),
        Err(_) => (None, true),
    };
    // The leader is done (or timed out): end every process it left in its group,
    // which also closes the pipes a lingering grandchild held.
    guard.kill();
    if timed_out {
        let _ = child.wait().await;
    }
    let (stdout, t1) = out.await.unwrap_or_default();
    let (stderr, t2) = err.await.unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
        truncated: t1 || t2,
        timed_out,
        duration: started.elapsed(),
    })
}

/// Read a stream to its end, keeping at most `cap` bytes.
async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str], timeout: Duration) -> Spawn {
        Spawn {
            program: resolve_program("sh", std::env::var_os("PATH").as_deref(), Path::new("/"))
                .unwrap(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: std::env::temp_dir(),
            env: vec![("PATH".into(), std::env::var_os("PATH").unwrap())],
            stdin: None,
            timeout,
            output_cap: 1024,
        }
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
        assert!(!f.truncated && !f.timed_out);
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
        let f = run(spec(
            &["-c", "sleep 30 & sleep 30"],
            Duration::from_millis(200),
        ))
        .await
        .unwrap();
        assert!(f.timed_out);
        assert_eq!(f.status, None);
        assert!(f.duration < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn environment_is_only_what_was_given() {
        let mut s = spec(&["-c", "env"], Duration::from_secs(10));
        s.output_cap = 1 << 20;
        let f = run(s).await.unwrap();
        let env = String::from_utf8_lossy(&f.stdout);
        assert!(
            env.lines().all(|l| l.starts_with("PATH=")
                || l.starts_with("PWD=")
                || l.starts_with("SHLVL=")
                || l.starts_with("_=")),
            "{env}"
        );
    }

    #[tokio::test]
    async fn stdin_is_delivered() {
        let mut s = spec(&["-c", "cat"], Duration::from_secs(10));
        s.stdin = Some(b"prompt".to_vec());
        let f = run(s).await.unwrap();
        assert_eq!(f.stdout, b"prompt");
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
