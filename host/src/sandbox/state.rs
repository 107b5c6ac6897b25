//! The data of one guest `Store`: WASI context, the grant, the limiter, and the
//! implementations of kazi's host imports. A fresh one is built per evaluation.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::predicate::kazi::host::{exec, kv, log, types};
use super::policy::{Grants, NetTarget};
use crate::process;

/// Cap on what a guest may write to its own stdout or stderr.
pub const GUEST_OUTPUT_CAP: usize = 1024 * 1024;
/// kv limits per predicate.
const KV_MAX_KEYS: usize = 1024;
const KV_MAX_VALUE: usize = 64 * 1024;

/// Calls the sandbox refused during one evaluation; shared with the HTTP hooks.
pub type Denials = Arc<Mutex<Vec<String>>>;

/// One predicate's kv store, shared across its evaluations within a process.
pub type KvScope = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Memory limiter that remembers whether it refused a growth.
#[derive(Debug)]
pub struct Limiter {
    pub max_memory: usize,
    pub hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max_memory {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        Ok(desired <= 1_000_000)
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
            other => {
                let what = other.map_or_else(|| uri.to_string(), |t| t.to_string());
                self.denials.lock().expect("denials lock").push(format!(
                    "network access to {what} is not granted; hint: add `net = [\"{what}\"]` under [predicate.allow]"
                ));
                Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
            }
        }
    }
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
    pub kv: KvScope,
    /// Host path of the workspace; programs run inside it.
    pub workspace: Option<PathBuf>,
    /// When the evaluation must be over; exec timeouts never exceed it.
    pub deadline: Instant,
    /// How the guest is named in logs and messages.
    pub label: String,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// Set when a program ran until the evaluation's own deadline: the evaluation
    /// timed out, whatever the guest reports.
    pub deadline_hit: Option<String>,
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
    fn deny(&self, message: String) {
        self.denials.lock().expect("denials lock").push(message);
    }
}

impl types::Host for GuestState {}

impl log::Host for GuestState {
    fn log(&mut self, level: log::Level, message: String) -> Result<()> {
        let message = crate::verdict::truncate_middle(&message, 4096);
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
        let mut kv = self.kv.lock().expect("kv lock");
        if key.len() > 256
            || value.len() > KV_MAX_VALUE
            || (kv.len() >= KV_MAX_KEYS && !kv.contains_key(&key))
        {
            wasmtime::bail!(
                "kv limit exceeded: keys up to 256 bytes, values up to {KV_MAX_VALUE} bytes, at most {KV_MAX_KEYS} keys"
            );
        }
        kv.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<()> {
        self.kv.lock().expect("kv lock").remove(&key);
        Ok(())
    }
}

impl exec::Host for GuestState {
    async fn run(
        &mut self,
        cmd: exec::Command,
    ) -> std::result::Result<exec::Output, exec::ExecError> {
        let program = cmd.program.clone();
        if !self.grants.exec.contains(&program) {
            let msg = format!(
                "running `{program}` is not granted; hint: add `exec = [\"{program}\"]` under [predicate.allow]"
            );
            self.deny(msg.clone());
            return Err(exec::ExecError::Denied(msg));
        }
        let Some(workspace) = self.workspace.clone() else {
            return Err(exec::ExecError::Invalid(
                "this guest has no workspace to run programs in".into(),
            ));
        };
        if cmd
            .args
            .iter()
            .chain(std::iter::once(&program))
            .any(|a| a.contains('\0'))
        {
            return Err(exec::ExecError::Invalid(
                "an argument contains a NUL byte".into(),
            ));
        }
        let cwd = match cmd.cwd.as_deref() {
            None | Some("") | Some(".") => workspace.clone(),
            Some(rel) => match confine(&workspace, rel) {
                Some(p) if p.is_dir() => p,
                Some(_) => {
                    return Err(exec::ExecError::Invalid(format!(
                        "cwd `{rel}` is not a directory in the workspace"
                    )));
                }
                None => {
                    return Err(exec::ExecError::Invalid(format!(
                        "cwd `{rel}` leaves the workspace"
                    )));
                }
            },
        };
        let host_path = std::env::var_os("PATH");
        let Some(resolved) = process::resolve_program(&program, host_path.as_deref(), &workspace)
        else {
            return Err(exec::ExecError::NotFound(format!(
                "`{program}` is not on PATH"
            )));
        };
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
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let asked = cmd.timeout_ms.map(Duration::from_millis);
        let capped_by_deadline = asked.is_none_or(|a| a >= remaining);
        let timeout = asked.map_or(remaining, |a| a.min(remaining));
        let spawn = process::Spawn {
            program: resolved,
            args: cmd.args,
            cwd,
            env,
            stdin: None,
            timeout,
            output_cap: process::DEFAULT_OUTPUT_CAP,
        };
        match process::run(spawn).await {
            Ok(f) => {
                if f.timed_out && capped_by_deadline {
                    self.deadline_hit = Some(program.clone());
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
            Err(e) => Err(exec::ExecError::Io(format!("cannot run `{program}`: {e}"))),
        }
    }
}

/// `base/rel` if `rel` is relative and never climbs above `base`.
fn confine(base: &std::path::Path, rel: &str) -> Option<PathBuf> {
    use std::path::Component;
    let mut depth = 0i32;
    for c in std::path::Path::new(rel).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(base.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_escapes() {
        let base = std::path::Path::new("/w");
        assert_eq!(confine(base, "a/b"), Some(PathBuf::from("/w/a/b")));
        assert_eq!(confine(base, "a/../b"), Some(PathBuf::from("/w/a/../b")));
        assert_eq!(confine(base, "../x"), None);
        assert_eq!(confine(base, "a/../../x"), None);
        assert_eq!(confine(base, "/etc"), None);
    }

    #[test]
    fn limiter_records_a_refused_growth() {
        let mut l = Limiter {
            max_memory: 100,
            hit: false,
        };
        assert!(l.memory_growing(0, 50, None).unwrap());
        assert!(!l.memory_growing(50, 200, None).unwrap());
        assert!(l.hit);
    }
}
