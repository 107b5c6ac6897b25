//! Helpers for kazi's end-to-end tests (in `tests/tests/`): locating and running the
//! real `kazi` binary with a scrubbed environment, the adversarial guests built by
//! `build.rs`, a tiny loopback HTTP server, and polling without fixed sleeps.
//!
//! `cargo test -p kazi-tests` (or `cargo test --workspace`) is all it takes: the
//! first test that needs the binary runs `cargo build -p kazi --bin kazi` once, so it
//! is never stale. Set `KAZI_BIN` to test another binary instead.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Component paths of the test guests, built by `build.rs` (`guests::EXEC`, …).
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// A secret every `kazi` run gets in its environment and nothing may ever print.
pub const SECRET_NAME: &str = "KAZI_TEST_SECRET";
/// Its value.
pub const SECRET_VALUE: &str = "hunter2-kazi-secret";

/// How long any single `kazi` run may take before the test gives up on it (the host
/// must end every attack well before this; reaching it means the host hung).
pub const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// `<target>/<profile>`, the directory holding the test executable's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let deps = exe.parent().expect("test executable in deps/");
    deps.parent()
        .expect("deps/ in a profile directory")
        .to_path_buf()
}

/// The `kazi` binary under test: `$KAZI_BIN`, else `<target>/<profile>/kazi`, built
/// (or brought up to date) by `cargo build -p kazi` the first time it is asked for.
pub fn kazi_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("KAZI_BIN") {
            return PathBuf::from(bin);
        }
        let dir = profile_dir();
        let bin = dir.join(format!("kazi{}", std::env::consts::EXE_SUFFIX));
        // `cargo test --workspace` has just built kazi with the workspace's feature set;
        // rebuilding it here with `-p kazi` alone would resolve other features and
        // overwrite the binary while other tests run it. Build only when it is missing
        // or older than the sources (`cargo test -p kazi-tests` on its own).
        if is_fresh(&bin) {
            return bin;
        }
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(repo_root())
            .args(["build", "--quiet", "-p", "kazi", "--bin", "kazi"]);
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("failed to run cargo to build kazi: {e}"));
        assert!(
            out.status.success(),
            "failed to build the kazi binary ({}):\n{}\nhint: run `cargo build -p kazi` first",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = dir.join(format!("kazi{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "{} does not exist; hint: run `cargo build -p kazi` first",
            bin.display()
        );
        bin
    })
}

/// Whether `bin` exists and is newer than every source it is built from.
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    fn newest(dir: &Path, newest_seen: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if path.is_dir() {
                newest(&path, newest_seen);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                *newest_seen = (*newest_seen).max(m);
            }
        }
    }
    let mut latest = std::time::SystemTime::UNIX_EPOCH;
    for dir in ["host", "sdk", "predicates", "profiles", "guest-build"] {
        newest(&repo_root().join(dir), &mut latest);
    }
    built >= latest
}

/// The compiled-component cache shared by every test run (`$KAZI_CACHE`).
pub fn shared_cache() -> PathBuf {
    profile_dir().join("kazi-test-cache")
}

/// One `kazi` invocation being prepared.
#[derive(Debug, Clone)]
pub struct Kazi {
    args: Vec<String>,
    env: Vec<(String, String)>,
    fd_limit: Option<u32>,
}

impl Kazi {
    /// `kazi ARGS…`.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            fd_limit: None,
        }
    }

    /// `kazi predicate eval SOURCE --workspace WORKSPACE --json`.
    pub fn eval(source: impl AsRef<Path>, workspace: impl AsRef<Path>) -> Self {
        Self::new([
            "predicate".to_owned(),
            "eval".to_owned(),
            path_arg(source.as_ref()),
            "--workspace".to_owned(),
            path_arg(workspace.as_ref()),
            "--json".to_owned(),
        ])
    }

    /// `--config JSON`.
    pub fn config(self, config: &Value) -> Self {
        self.arg("--config").arg(config.to_string())
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// A variable in kazi's own environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run kazi with `ulimit -n LIMIT` (soft and hard): it cannot raise it.
    pub fn fd_limit(mut self, limit: u32) -> Self {
        self.fd_limit = Some(limit);
        self
    }

    /// Run it to completion (at most [`RUN_DEADLINE`]) and check the invariants every
    /// run must keep: kazi exited by itself (no signal) and never printed the secret.
    pub fn run(&self) -> Run {
        let mut cmd = match self.fd_limit {
            // `sh` execs kazi: the pid reaped below is kazi's.
            Some(limit) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(kazi_bin());
                c
            }
            None => Command::new(kazi_bin()),
        };
        cmd.args(&self.args)
            .env_clear()
            .env("KAZI_CACHE", shared_cache())
            .env("NO_COLOR", "1")
            .env(SECRET_NAME, SECRET_VALUE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        #[expect(
            clippy::zombie_processes,
            reason = "reaped by wait4 below, which also reads its peak memory"
        )]
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", kazi_bin().display()));
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let (status, max_rss_kib) = loop {
            if let Some(done) = wait_with_rusage(child.id()) {
                break done;
            }
            if started.elapsed() > RUN_DEADLINE {
                let _ = child.kill();
                let _ = wait_with_rusage_blocking(child.id());
                panic!(
                    "kazi {:?} still running after {RUN_DEADLINE:?}: the host hung",
                    self.args
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            args: self.args.clone(),
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
            max_rss_kib,
            elapsed: started.elapsed(),
        };
        run.assert_host_alive();
        assert!(
            !run.stdout.contains(SECRET_VALUE) && !run.stderr.contains(SECRET_VALUE),
            "the secret from kazi's environment leaked into its output\n{run}"
        );
        run
    }
}

/// Reap `pid` if it exited, with its peak resident memory (KiB): `wait4` with
/// `WNOHANG`. `None` while it runs.
fn wait_with_rusage(pid: u32) -> Option<(ExitStatus, u64)> {
    wait4(pid, libc::WNOHANG)
}

/// Reap `pid`, waiting for it.
fn wait_with_rusage_blocking(pid: u32) -> Option<(ExitStatus, u64)> {
    wait4(pid, 0)
}

#[expect(
    unsafe_code,
    reason = "wait4(2) is the only way to read one child's peak memory (ru_maxrss)"
)]
fn wait4(pid: u32, flags: i32) -> Option<(ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; an all-zero value is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid, exclusive pointers for the duration of
    // the call; `pid` is our own child, reaped only here (std's `Child` never waits).
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, flags, &mut usage) };
    if r == pid as libc::pid_t {
        // Linux reports ru_maxrss in KiB.
        Some((ExitStatus::from_raw(status), usage.ru_maxrss as u64))
    } else {
        None
    }
}

fn path_arg(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A finished `kazi` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// kazi's peak resident memory, in KiB (`ru_maxrss` from `wait4`).
    pub max_rss_kib: u64,
    /// How long it ran (reported in messages only: tests never assert on time).
    pub elapsed: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOW: usize = 4000;
        writeln!(f, "kazi {:?}", self.args)?;
        writeln!(
            f,
            "status: {} (peak RSS {} MiB, {:?})",
            self.status,
            self.max_rss_kib >> 10,
            self.elapsed
        )?;
        writeln!(f, "--- stdout ---\n{}", clip(&self.stdout, SHOW))?;
        write!(f, "--- stderr ---\n{}", clip(&self.stderr, SHOW))
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

impl Run {
    /// The exit code; panics if kazi died from a signal (the host went down).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("kazi was killed by a signal, not exited\n{self}"))
    }

    /// kazi exited normally with a code a finished evaluation can have (0, 1) or a
    /// documented failure code (2, 5): never a signal, never a panic's 101.
    pub fn assert_host_alive(&self) {
        let code = self.code();
        assert!(
            matches!(code, 0 | 1 | 2 | 5),
            "kazi exited with unexpected code {code} (a crash?)\n{self}"
        );
    }

    /// Exactly this exit code.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code(), expected, "unexpected exit code\n{self}");
        self
    }

    /// stdout parsed as the one JSON object `--json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object: {e}\n{self}"))
    }

    fn field(&self, key: &str) -> String {
        match self.json().get(key) {
            Some(Value::String(s)) => s.clone(),
            other => panic!("JSON field `{key}` is not a string: {other:?}\n{self}"),
        }
    }

    /// `verdict` from the JSON output.
    pub fn verdict(&self) -> String {
        self.field("verdict")
    }

    /// `summary` from the JSON output.
    pub fn summary(&self) -> String {
        self.field("summary")
    }

    /// `details` from the JSON output.
    pub fn details(&self) -> String {
        self.field("details")
    }

    /// The exit code and verdict of a finished evaluation: 0 with `pass`, 1 with
    /// `fail` or `error`.
    pub fn assert_verdict(&self, verdict: &str) -> &Self {
        let expected_code = if verdict == "pass" { 0 } else { 1 };
        assert_eq!(
            (self.code(), self.verdict().as_str()),
            (expected_code, verdict),
            "unexpected exit code or verdict\n{self}"
        );
        self
    }

    /// The summary contains `needle`, ignoring ASCII case.
    pub fn assert_summary_mentions(&self, needle: &str) -> &Self {
        let summary = self.summary();
        assert!(
            summary.to_lowercase().contains(&needle.to_lowercase()),
            "summary {summary:?} does not mention {needle:?}\n{self}"
        );
        self
    }

    /// The summary contains one of `needles`, ignoring ASCII case.
    pub fn assert_summary_mentions_any(&self, needles: &[&str]) -> &Self {
        let summary = self.summary().to_lowercase();
        assert!(
            needles.iter().any(|n| summary.contains(&n.to_lowercase())),
            "summary {summary:?} mentions none of {needles:?}\n{self}"
        );
        self
    }

    /// Neither stdout nor stderr contains `needle`.
    pub fn assert_output_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "kazi's output contains {needle:?}\n{self}"
        );
        self
    }

    /// kazi's peak resident memory stayed at or under `mib` MiB.
    pub fn assert_peak_rss_under(&self, mib: u64) -> &Self {
        assert!(
            self.max_rss_kib <= mib << 10,
            "kazi's peak RSS was {} MiB, over the {mib} MiB bound\n{self}",
            self.max_rss_kib >> 10
        );
        self
    }

    /// A load-time refusal: exit 5, a message on stderr, no verdict on stdout.
    pub fn assert_load_error(&self) -> &Self {
        self.assert_code(5);
        assert!(
            !self.stderr.trim().is_empty(),
            "exit 5 without a message on stderr\n{self}"
        );
        assert!(
            !self.stdout.contains("\"verdict\""),
            "a component that cannot load still produced a verdict\n{self}"
        );
        self
    }
}

/// Poll `cond` every 25 ms until it holds or `timeout` passes; true if it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Pids of live processes whose command line (arguments joined by spaces) contains
/// `marker`, excluding this test process.
pub fn processes_matching(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    let line: Vec<String> = raw
                        .split(|&b| b == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    line.join(" ").contains(marker)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Kill leftovers this test caused (matched by a marker unique to the test), so a
/// failing test does not leave `sleep`s behind.
pub fn kill_processes(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// A TCP listener on 127.0.0.1 that never accepts: a connection attempt lands in its
/// backlog, so [`SilentListener::was_contacted`] tells whether anyone connected.
#[derive(Debug)]
pub struct SilentListener {
    listener: TcpListener,
}

impl SilentListener {
    /// Bind an ephemeral loopback port.
    pub fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        Self { listener }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound address").port()
    }

    /// Whether a connection is waiting in the backlog (a closed one counts too).
    pub fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1: answers every request with `200 OK` and the
/// body `ok`, counts connections, serves at most [`HttpServer::MAX_REQUESTS`] and
/// stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Requests served before the server stops by itself.
    pub const MAX_REQUESTS: usize = 16;

    /// Start on an ephemeral loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, requests, stop) =
                (connections.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let served = connections.fetch_add(1, Ordering::SeqCst) + 1;
                    if let Some(head) = serve_one(stream) {
                        requests.lock().expect("requests lock").push(head);
                    }
                    if served >= Self::MAX_REQUESTS {
                        break;
                    }
                }
            })
        };
        Self {
            port,
            connections,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The request heads (request line and headers) served so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and leaves.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one request head and answer `200 OK`; returns the head.
fn serve_one(mut stream: TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = "ok";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).ok()?;
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Hand-built WebAssembly binaries for attacks a Rust guest cannot express.
pub mod wasm {
    /// LEB128 of an unsigned number.
    pub fn uleb(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    /// LEB128 of a signed number.
    pub fn sleb(mut n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            let done = (n == 0 && b & 0x40 == 0) || (n == -1 && b & 0x40 != 0);
            out.push(if done { b } else { b | 0x80 });
            if done {
                return out;
            }
        }
    }

    /// A length-prefixed byte vector.
    pub fn bytes(b: &[u8]) -> Vec<u8> {
        let mut out = uleb(b.len() as u64);
        out.extend_from_slice(b);
        out
    }

    /// A section: id, then its length-prefixed body.
    pub fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![id];
        out.extend(bytes(body));
        out
    }

    /// The header of a component binary.
    pub const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";

    /// A core module with one memory of `pages` 64 KiB pages and a start function
    /// that writes one byte into every 4 KiB page of it, so the memory is resident.
    pub fn touching_module(pages: u32) -> Vec<u8> {
        let limit = i64::from(pages) * 65536;
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend(section(1, &[1, 0x60, 0, 0])); // type: () -> ()
        m.extend(section(3, &[1, 0])); // one function of type 0
        let mut mem = vec![1, 0x00];
        mem.extend(uleb(u64::from(pages)));
        m.extend(section(5, &mem)); // memory, min `pages`
        m.extend(section(8, &[0])); // start: function 0
        let mut code = vec![1, 1, 0x7f]; // one local i32
        code.extend([0x03, 0x40]); // loop
        code.extend([0x20, 0x00, 0x41, 0x01, 0x3a, 0x00, 0x00]); // store8 [i] = 1
        code.extend([0x20, 0x00, 0x41]);
        code.extend(sleb(4096));
        code.extend([0x6a, 0x22, 0x00, 0x41]); // i += 4096 (tee)
        code.extend(sleb(limit));
        code.extend([0x49, 0x0d, 0x00, 0x0b, 0x0b]); // br_if i < limit; end; end
        let mut body = bytes(&code);
        let mut code_section = vec![1];
        code_section.append(&mut body);
        m.extend(section(10, &code_section));
        m
    }

    /// Top-level sections of a component: `(id, body)`.
    fn sections(component: &[u8]) -> Vec<(u8, &[u8])> {
        let mut out = Vec::new();
        let mut rest = &component[COMPONENT_HEADER.len()..];
        while let Some((&id, tail)) = rest.split_first() {
            let (len, used) = read_uleb(tail);
            let body = &tail[used..used + len as usize];
            out.push((id, body));
            rest = &tail[used + len as usize..];
        }
        out
    }

    fn read_uleb(b: &[u8]) -> (u64, usize) {
        let (mut n, mut shift) = (0u64, 0);
        for (i, &byte) in b.iter().enumerate() {
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return (n, i + 1);
            }
            shift += 7;
        }
        panic!("truncated LEB128");
    }

    /// `component` with `count` more core instances, each of a module holding a
    /// memory of `pages` pages that its start function makes resident: the attack of
    /// "several core instances, each with its own memory" (every instance is created
    /// when the component is instantiated, before any export is called).
    pub fn with_extra_memories(component: &[u8], count: u32, pages: u32) -> Vec<u8> {
        assert!(component.starts_with(COMPONENT_HEADER), "not a component");
        let modules = sections(component)
            .iter()
            .filter(|(id, _)| *id == 1)
            .count() as u64;
        let mut out = component.to_vec();
        for _ in 0..count {
            out.extend(section(1, &touching_module(pages)));
        }
        let mut instances = uleb(u64::from(count));
        for i in 0..u64::from(count) {
            instances.push(0x00); // instantiate
            instances.extend(uleb(modules + i));
            instances.push(0); // no arguments
        }
        out.extend(section(2, &instances));
        out
    }

    /// A component that says it is a WASI command (`wasi:cli/run@0.2.0` export) and
    /// carries `garbage_len` bytes of nonsense as a core module: refusing it without
    /// compiling proves the world is read first.
    pub fn command_with_garbage(garbage_len: usize) -> Vec<u8> {
        let mut c = COMPONENT_HEADER.to_vec();
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend(std::iter::repeat_n(0xff_u8, garbage_len));
        c.extend(section(1, &module));
        let mut exports = uleb(1);
        exports.push(0x00);
        exports.extend(bytes(b"wasi:cli/run@0.2.0"));
        exports.extend([0x05, 0x00, 0x00]);
        c.extend(section(11, &exports));
        c
    }
}
