//! The data of one guest `Store`: WASI context, the grant, the per-evaluation
//! resource budget, and the implementations of kazi's host imports. A fresh one is
//! built per evaluation.
//!
//! Everything a guest can make the host hold is bounded here: its linear memories
//! and tables together ([`Limiter`]), host resources ([`MAX_RESOURCES`],
//! [`super::wasi::MAX_OPEN_FILES`], [`MAX_COMPONENT_HANDLES`]), data copied from it in
//! one call ([`HOSTCALL_FUEL`]), its stdout/stderr ([`GUEST_OUTPUT_CAP`]), log lines
//! ([`MAX_LOG_MESSAGES`], [`MAX_LOG_BYTES`]), kv state ([`KV_MAX_BYTES`]) and text the
//! host builds from guest data (denials: [`MAX_DENIALS`] messages of at most
//! [`SHOWN_MAX`] bytes of guest data each).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::predicate::kazi::host::{exec, kv, log, types};
use super::policy::{Grants, NetTarget};
use super::share::{ExecKey, ExecShare};
use super::wasi::FsGuard;
use crate::process;

/// Cap on what a guest may write to its own stdout or stderr.
pub const GUEST_OUTPUT_CAP: usize = 1024 * 1024;
/// Most bytes the host copies out of a guest in one call (a host call's arguments,
/// or the result of `describe`/`evaluate`), counted in host memory.
pub const HOSTCALL_FUEL: usize = 16 << 20;
/// Most host resources (open files, streams, pollables, HTTP header maps, requests…)
/// one evaluation may hold at once.
pub const MAX_RESOURCES: usize = 1024;
/// Most component-model handles one evaluation may hold at once.
pub const MAX_COMPONENT_HANDLES: usize = 10_000;
/// Most bytes of names and values in one `wasi:http` header map.
pub const HTTP_FIELD_SIZE_LIMIT: usize = 32 * 1024;
/// Log lines forwarded to kazi's log per evaluation; the rest are counted.
pub const MAX_LOG_MESSAGES: usize = 64;
/// Log bytes forwarded to kazi's log per evaluation.
pub const MAX_LOG_BYTES: usize = 16 * 1024;
/// Longest single log line kept.
const MAX_LOG_LINE: usize = 1024;
/// kv limits per predicate: key length, value length, number of keys, and all keys
/// and values together.
pub const KV_MAX_KEY: usize = 256;
pub const KV_MAX_VALUE: usize = 64 * 1024;
pub const KV_MAX_KEYS: usize = 1024;
pub const KV_MAX_BYTES: usize = 1024 * 1024;
/// Denial messages kept per evaluation (further ones are counted).
pub const MAX_DENIALS: usize = 16;
/// Most bytes of one guest-provided value quoted in a message.
pub const SHOWN_MAX: usize = 120;
/// Bytes charged per table element (a function reference).
const TABLE_ELEMENT_BYTES: usize = 8;

/// `value` as it may appear in a message: at most [`SHOWN_MAX`] bytes, control
/// characters escaped, with the full length when it was cut.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if out.len() >= SHOWN_MAX {
            out.push_str(&format!("… ({} bytes)", value.len()));
            return out;
        }
        if c.is_control() || ('\u{80}'..='\u{9f}').contains(&c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first `max` bytes of `text` (on a character boundary), saying how long it was
/// when it was cut. Stays on one line.
fn head(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Calls the sandbox refused during one evaluation: the first [`MAX_DENIALS`]
/// messages and a count of the rest. Shared with the HTTP hooks and the WASI
/// wrappers.
#[derive(Debug, Clone, Default)]
pub struct Denials(Arc<Mutex<DenialLog>>);

#[derive(Debug, Default)]
struct DenialLog {
    kept: Vec<String>,
    more: usize,
}

impl Denials {
    /// Record a refused call (its message must already quote guest data through
    /// [`shown`]).
    pub fn push(&self, message: String) {
        let mut log = self.0.lock().expect("denials lock");
        if log.kept.len() < MAX_DENIALS && !log.kept.contains(&message) {
            log.kept.push(message);
        } else if !log.kept.contains(&message) {
            log.more += 1;
        }
    }

    /// The kept messages, plus a line counting the others.
    pub fn lines(&self) -> Vec<String> {
        let log = self.0.lock().expect("denials lock");
        let mut lines = log.kept.clone();
        if log.more > 0 {
            lines.push(format!("… and {} more refused calls", log.more));
        }
        lines
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().expect("denials lock").kept.is_empty()
    }
}

/// One predicate's kv store, shared across its evaluations within a process.
pub type KvScope = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A limit the guest hit in a host call; the call traps with this message (and no
/// wasm backtrace is shown).
#[derive(Debug)]
pub struct GuestLimit(pub String);

impl std::fmt::Display for GuestLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GuestLimit {}

/// The memory budget of one evaluation: every linear memory and table of every
/// instance in the store, summed (a component with several core instances cannot
/// multiply it). Remembers whether it refused a growth.
#[derive(Debug)]
pub struct Limiter {
    /// Bytes allowed in all.
    pub budget: usize,
    /// Bytes granted so far.
    pub used: usize,
    pub hit: bool,
    /// The last growth granted, taken back if it then failed.
    last: usize,
}

impl Limiter {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            hit: false,
            last: 0,
        }
    }

    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let delta = desired.saturating_sub(current);
        match self.used.checked_add(delta) {
            Some(total) if total <= self.budget => {
                self.used = total;
                self.last = delta;
                true
            }
            _ => {
                self.hit = true;
                self.last = 0;
                false
            }
        }
    }

    fn undo_last(&mut self) {
        self.used = self.used.saturating_sub(self.last);
        self.last = 0;
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.undo_last();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.undo_last();
        Ok(())
    }

    fn instances(&self) -> usize {
        100
    }

    fn tables(&self) -> usize {
        100
    }

    fn memories(&self) -> usize {
        100
    }
}

/// The `wasi:http` hooks: every request is checked against the grant before any
/// connection is made.
pub struct NetHooks {
    pub grants: Arc<Grants>,
    pub denials: Denials,
}

impl wasmtime_wasi_http::WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let target = uri
            .host()
            .map(|h| NetTarget::new(h, uri.port_u16().unwrap_or(default_port)));
        match target {
            Some(t) if self.grants.net_allows(&t) => {
                let _ = fut;
                Box::new(async move {
                    use http_body_util::BodyExt;
                    let (res, io) =
                        wasmtime_wasi_http::default_send_request(request, options).await?;
                    Ok((
                        res.map(BodyExt::boxed_unsync),
                        Box::new(io) as Box<dyn Future<Output = _> + Send>,
                    ))
                })
            }
            _ => {
                // Say what was asked (`127.0.0.1.:8080` is not `127.0.0.1:8080`), and
                // the grant that would allow it, in the words of the request.
                let asked = uri
                    .authority()
                    .map_or_else(|| uri.to_string(), |a| a.to_string());
                let grant = uri.host().map_or_else(
                    || asked.clone(),
                    |h| format!("{h}:{}", uri.port_u16().unwrap_or(default_port)),
                );
                self.denials.push(format!(
                    "network access to {} is not granted; hint: add `net = [\"{}\"]` under [predicate.allow]",
                    shown(&asked),
                    shown(&grant)
                ));
                Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
            }
        }
    }
}

/// Log lines of one evaluation: forwarded until the budget is spent, then counted.
#[derive(Debug, Default)]
pub struct LogBudget {
    pub messages: usize,
    pub bytes: usize,
    pub dropped: usize,
}

/// Everything one guest instance may touch.
pub struct GuestState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub hooks: NetHooks,
    pub limiter: Limiter,
    pub grants: Arc<Grants>,
    pub denials: Denials,
    pub fs: FsGuard,
    pub kv: KvScope,
    /// Host path of the workspace; programs run inside it.
    pub workspace: Option<PathBuf>,
    /// When the evaluation must be over; exec timeouts never exceed it.
    pub deadline: Instant,
    /// How the guest is named in logs and messages.
    pub label: String,
    /// The predicate's id in the goal (for shared exec evidence).
    pub predicate_id: String,
    pub exec_share: Option<ExecShare>,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// Set when a program ran until the evaluation's own deadline: the evaluation
    /// timed out, whatever the guest reports.
    pub deadline_hit: Option<String>,
    /// A resource limit the guest hit (kv): an error whatever the guest reports.
    pub limit_hit: Option<String>,
    pub logs: LogBudget,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl GuestState {
    fn limit(&mut self, message: String) -> wasmtime::Error {
        self.limit_hit.get_or_insert_with(|| message.clone());
        GuestLimit(message).into()
    }
}

impl types::Host for GuestState {}

impl log::Host for GuestState {
    fn log(&mut self, level: log::Level, message: String) -> Result<()> {
        let b = &mut self.logs;
        if b.messages >= MAX_LOG_MESSAGES || b.bytes >= MAX_LOG_BYTES {
            b.dropped += 1;
            return Ok(());
        }
        let message = head(&crate::text::line(&message), MAX_LOG_LINE);
        b.messages += 1;
        b.bytes += message.len();
        let guest = self.label.as_str();
        match level {
            log::Level::Trace => tracing::trace!(guest, "{message}"),
            log::Level::Debug => tracing::debug!(guest, "{message}"),
            log::Level::Info => tracing::info!(guest, "{message}"),
            log::Level::Warn => tracing::warn!(guest, "{message}"),
            log::Level::Error => tracing::error!(guest, "{message}"),
        }
        Ok(())
    }
}

impl kv::Host for GuestState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.lock().expect("kv lock").get(&key).cloned())
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<()> {
        let problem = {
            let kv = self.kv.lock().expect("kv lock");
            let used: usize = kv.iter().map(|(k, v)| k.len() + v.len()).sum();
            let replaced = kv.get(&key).map_or(0, |v| key.len() + v.len());
            if key.len() > KV_MAX_KEY {
                Some(format!(
                    "a kv key of {} bytes (at most {KV_MAX_KEY})",
                    key.len()
                ))
            } else if value.len() > KV_MAX_VALUE {
                Some(format!(
                    "a kv value of {} bytes (at most {KV_MAX_VALUE})",
                    value.len()
                ))
            } else if kv.len() >= KV_MAX_KEYS && !kv.contains_key(&key) {
                Some(format!("more than {KV_MAX_KEYS} kv keys"))
            } else if used - replaced + key.len() + value.len() > KV_MAX_BYTES {
                Some(format!(
                    "more than {} KiB of kv state in all",
                    KV_MAX_BYTES >> 10
                ))
            } else {
                None
            }
        };
        if let Some(p) = problem {
            return Err(self.limit(format!("exceeded its kv limit: it stored {p}")));
        }
        self.kv.lock().expect("kv lock").insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<()> {
        self.kv.lock().expect("kv lock").remove(&key);
        Ok(())
    }
}

/// Variables the dynamic loader reads to run code: a guest may set one only when the
/// grant names it exactly.
fn is_loader_variable(name: &str) -> bool {
    name.starts_with("LD_") || name.starts_with("DYLD_")
}

impl GuestState {
    fn deny_exec(&self, message: String) -> exec::ExecError {
        self.denials.push(message.clone());
        exec::ExecError::Denied(message)
    }

    /// The physical working directory for `cwd` (relative to the workspace), opened,
    /// and checked to lie inside the workspace *after* opening it (so a path swapped
    /// for a symlink in between cannot redirect the program).
    fn working_dir(
        &self,
        workspace: &Path,
        program: &str,
        cwd: Option<&str>,
    ) -> std::result::Result<(PathBuf, std::fs::File), exec::ExecError> {
        let root = workspace.canonicalize().map_err(|e| {
            exec::ExecError::Io(format!("the workspace {}: {e}", workspace.display()))
        })?;
        let rel = cwd.unwrap_or("");
        if Path::new(rel).is_absolute() {
            return Err(self.deny_exec(format!(
                "running `{}` in `{}` is refused: the working directory must be inside the workspace",
                shown(program),
                shown(rel)
            )));
        }
        let asked = root.join(rel);
        let dir = match std::fs::File::open(&asked) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(exec::ExecError::Invalid(format!(
                    "cwd `{}` does not exist in the workspace",
                    shown(rel)
                )));
            }
            Err(e) => {
                return Err(exec::ExecError::Io(format!(
                    "cannot open cwd `{}`: {e}",
                    shown(rel)
                )));
            }
        };
        let physical = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        ))
        .or_else(|_| asked.canonicalize())
        .map_err(|e| exec::ExecError::Io(format!("cannot resolve cwd `{}`: {e}", shown(rel))))?;
        if !physical.starts_with(&root) {
            return Err(self.deny_exec(format!(
                "running `{}` in `{}` is refused: it resolves to {}, outside the workspace",
                shown(program),
                shown(rel),
                shown(&physical.display().to_string())
            )));
        }
        if !dir.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(exec::ExecError::Invalid(format!(
                "cwd `{}` is not a directory in the workspace",
                shown(rel)
            )));
        }
        Ok((physical, dir))
    }
}

impl exec::Host for GuestState {
    async fn run(
        &mut self,
        cmd: exec::Command,
    ) -> std::result::Result<exec::Output, exec::ExecError> {
        let program = cmd.program;
        if !self.grants.exec.contains(&program) {
            return Err(self.deny_exec(format!(
                "running `{0}` is not granted; hint: add `exec = [\"{0}\"]` under [predicate.allow]",
                shown(&program)
            )));
        }
        let Some(workspace) = self.workspace.clone() else {
            return Err(exec::ExecError::Invalid(
                "this guest has no workspace to run programs in".into(),
            ));
        };
        let nul = |s: &str| s.contains('\0');
        if nul(&program)
            || cmd.args.iter().any(|a| nul(a))
            || cmd.cwd.as_deref().is_some_and(nul)
            || cmd.env.iter().any(|(k, v)| nul(k) || nul(v))
        {
            return Err(exec::ExecError::Invalid(
                "an argument, the cwd or an environment variable contains a NUL byte".into(),
            ));
        }
        for (name, _) in &cmd.env {
            if name.is_empty() || name.contains('=') {
                return Err(exec::ExecError::Invalid(format!(
                    "`{}` is not a valid environment variable name",
                    shown(name)
                )));
            }
            if !self.grants.env.contains(name) {
                let why = if is_loader_variable(name) {
                    " (the dynamic loader runs code it names)"
                } else {
                    ""
                };
                return Err(self.deny_exec(format!(
                    "setting the variable `{0}` for `{1}` is not granted{why}; hint: add `env = [\"{0}\"]` under [predicate.allow]",
                    shown(name),
                    shown(&program)
                )));
            }
        }
        let (cwd, cwd_dir) = self.working_dir(&workspace, &program, cmd.cwd.as_deref())?;
        let host_path = std::env::var_os("PATH");
        let Some(resolved) = process::resolve_program(&program, host_path.as_deref(), &workspace)
        else {
            return Err(exec::ExecError::NotFound(format!(
                "`{}` is not on PATH",
                shown(&program)
            )));
        };
        if program.contains('/') {
            // A workspace program: it must physically stay in the workspace.
            let root = workspace
                .canonicalize()
                .unwrap_or_else(|_| workspace.clone());
            if !resolved.canonicalize().is_ok_and(|p| p.starts_with(&root)) {
                return Err(self.deny_exec(format!(
                    "running `{}` is refused: it resolves outside the workspace",
                    shown(&program)
                )));
            }
        }
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        for name in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(name) {
                env.push((name.into(), v));
            }
        }
        for name in &self.grants.env {
            if let Some(v) = std::env::var_os(name) {
                env.push((name.into(), v));
            }
        }
        env.extend(cmd.env.iter().map(|(k, v)| (k.into(), v.into())));
        let now = Instant::now();
        let asked = cmd.timeout_ms.map(Duration::from_millis);
        let own_deadline = match asked {
            Some(a) => (now + a).min(self.deadline),
            None => self.deadline,
        };
        let capped_by_deadline = own_deadline >= self.deadline;
        let spawn = process::Spawn {
            program: resolved.clone(),
            args: cmd.args.clone(),
            cwd: cwd.clone(),
            env: env.clone(),
            stdin: None,
            timeout: own_deadline.saturating_duration_since(now),
            output_cap: process::DEFAULT_OUTPUT_CAP,
        };
        let result = match &self.exec_share {
            Some(share) => {
                let key = ExecKey {
                    program: resolved,
                    args: cmd.args.clone(),
                    cwd,
                    env,
                    timeout_ms: cmd.timeout_ms,
                };
                let mut words = vec![program.clone()];
                words.extend(cmd.args.iter().cloned());
                let shown_cmd = format!("`{}`", shown(&words.join(" ")));
                share
                    .run(
                        key,
                        shown_cmd,
                        &self.predicate_id,
                        spawn,
                        Some(cwd_dir),
                        own_deadline,
                    )
                    .await
            }
            None => {
                let sup = process::Supervision {
                    cwd_dir: Some(cwd_dir),
                    ..process::Supervision::default()
                };
                process::run_supervised(spawn, sup).await
            }
        };
        match result {
            Ok(f) => {
                if f.timed_out && capped_by_deadline {
                    self.deadline_hit = Some(shown(&program));
                }
                Ok(exec::Output {
                    status: f.status,
                    stdout: f.stdout,
                    stderr: f.stderr,
                    truncated: f.truncated,
                    timed_out: f.timed_out,
                    duration_ms: f.duration.as_millis() as u64,
                })
            }
            Err(e) => {
                let hint = if e.raw_os_error() == Some(libc::EMFILE) {
                    "; hint: kazi ran out of file descriptors: lower --jobs or raise `ulimit -n`"
                } else {
                    ""
                };
                Err(exec::ExecError::Io(format!(
                    "cannot run `{}`: {e}{hint}",
                    shown(&program)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_sums_every_memory_and_table() {
        let mut l = Limiter::new(100);
        assert!(l.memory_growing(0, 50, None).unwrap());
        // A second memory of 40: 90 in all.
        assert!(l.memory_growing(0, 40, None).unwrap());
        // Growing the first by 20 would make 110: refused, although each memory is
        // under 100 on its own.
        assert!(!l.memory_growing(50, 70, None).unwrap());
        assert!(l.hit);
        // Tables count too (8 bytes per element): one element still fits.
        assert!(l.table_growing(0, 1, None).unwrap());
        assert!(!l.table_growing(1, 3, None).unwrap());
        assert_eq!(l.used, 98);
    }

    #[test]
    fn a_growth_that_fails_later_is_taken_back() {
        let mut l = Limiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        l.memory_grow_failed(wasmtime::format_err!("beyond the memory's maximum"))
            .unwrap();
        assert_eq!(l.used, 0);
        assert!(l.memory_growing(0, 100, None).unwrap());
    }

    #[test]
    fn shown_bounds_and_escapes_guest_text() {
        assert_eq!(shown("cargo"), "cargo");
        assert_eq!(shown("a\0b\x1b[2Jc"), "a\\u{0}b\\u{1b}[2Jc");
        let long = "x".repeat(30 << 20);
        let s = shown(&long);
        assert!(s.len() < SHOWN_MAX + 40, "{}", s.len());
        assert!(s.ends_with(&format!("({} bytes)", 30 << 20)));
    }

    #[test]
    fn denials_keep_a_bounded_number_of_messages() {
        let d = Denials::default();
        for i in 0..1000 {
            d.push(format!("denial {i}"));
        }
        d.push("denial 0".into());
        let lines = d.lines();
        assert_eq!(lines.len(), MAX_DENIALS + 1);
        assert_eq!(lines[0], "denial 0");
        assert_eq!(lines[MAX_DENIALS], "… and 984 more refused calls");
    }

    #[test]
    fn loader_variables_are_recognised() {
        assert!(is_loader_variable("LD_PRELOAD"));
        assert!(is_loader_variable("LD_LIBRARY_PATH"));
        assert!(is_loader_variable("DYLD_INSERT_LIBRARIES"));
        assert!(!is_loader_variable("OLD_PATH"));
    }
}
