//! Running helper programs (`git`, `cp`, `gh`, `[scope] setup` commands)
//! synchronously: each in its own process group, with a timeout that kills the whole
//! group, stdin closed or fed, and each output stream capped.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Default cap on each of stdout and stderr.
pub const DEFAULT_CAP: usize = 64 << 20;

/// A program to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Variables to set (`Some`) or remove (`None`) on top of kazi's environment.
    pub env: Vec<(OsString, Option<OsString>)>,
    /// Bytes for stdin; `None` means stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Cap for each of stdout and stderr.
    pub cap: usize,
    /// Kill the program once stdout passes the cap (for output only a head of is wanted).
    pub kill_at_cap: bool,
    /// Send stdout and stderr to this file instead of capturing them.
    pub log: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            stdin: None,
            timeout: Duration::from_secs(600),
            cap: DEFAULT_CAP,
            kill_at_cap: false,
            log: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env.push((k.as_ref().to_owned(), None));
        self
    }

    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The command line as a person reads it.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                let s = a.to_string_lossy();
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("'{}'", s.replace('\'', r"'\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run to completion or timeout. Errors only when the program cannot be started.
    pub fn run(&self) -> std::io::Result<Output> {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args).process_group(0);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if let Some(log) = &self.log {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            c.stdout(f.try_clone()?).stderr(f);
        } else {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = c.spawn()?;
        let pgid = Pid::from_raw(child.id() as i32);
        let writer = match (self.stdin.clone(), child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            })),
            _ => None,
        };
        let (cap, kill_at_cap) = (self.cap, self.kill_at_cap);
        let out = child
            .stdout
            .take()
            .map(|s| std::thread::spawn(move || read_capped(s, cap, kill_at_cap.then_some(pgid))));
        let err = child
            .stderr
            .take()
            .map(|s| std::thread::spawn(move || read_capped(s, cap, None)));
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let (status, timed_out) = match rx.recv_timeout(self.timeout) {
            Ok(status) => (status?.code(), false),
            Err(_) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = rx.recv();
                (None, true)
            }
        };
        // The leader is done: end whatever it left in its group, which also closes
        // the pipes a lingering descendant held.
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = waiter.join();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let (stdout, t1) = out
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let (stderr, t2) = err
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
            truncated: t1 || t2,
            timed_out,
        })
    }
}

/// What a program did.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit code; `None` when killed (by a signal or at the timeout).
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether a stream was cut at the cap.
    pub truncated: bool,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// The last `max` bytes of stderr (or stdout when stderr is empty), trimmed.
    pub fn tail(&self, max: usize) -> String {
        let s = if self.stderr.iter().all(u8::is_ascii_whitespace) {
            &self.stdout
        } else {
            &self.stderr
        };
        let text = String::from_utf8_lossy(s);
        let text = text.trim();
        if text.len() <= max {
            return text.to_owned();
        }
        let mut start = text.len() - max;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &text[start..])
    }
}

/// Read a stream to its end keeping at most `cap` bytes; with `kill`, stop and kill
/// the group once the cap is passed.
fn read_capped(mut stream: impl Read, cap: usize, kill: Option<Pid>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    truncated = true;
                    if let Some(pgid) = kill {
                        let _ = killpg(pgid, Signal::SIGKILL);
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, truncated)
}

/// `name` resolved on `PATH` (a name with a `/` is returned as it is).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_status_and_stdin() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo err >&2; exit 3"])
            .stdin(b"hello".to_vec())
            .run()
            .unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.tail(100), "err");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        // A grandchild holding stdout open must not keep us waiting past the timeout.
        let out = Cmd::new("sh")
            .args(["-c", "sleep 600 & sleep 600"])
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.status, None);
    }

    #[test]
    fn output_is_capped_and_can_stop_the_program() {
        let mut c = Cmd::new("sh").args(["-c", "yes kazi"]);
        c.cap = 1000;
        c.kill_at_cap = true;
        let out = c.run().unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.truncated);
    }

    #[test]
    fn display_quotes_what_needs_it() {
        let c = Cmd::new("git").args(["commit", "-m", "a message", "it's"]);
        assert_eq!(c.display(), r"git commit -m 'a message' 'it'\''s'");
    }
}
