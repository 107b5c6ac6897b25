//! The plugin runtime: loads predicate and profile components and runs them in a
//! sandbox the host controls. Deny by default: a guest sees the workspace read-only
//! at `/workspace` and nothing else of the host, reaches only granted hosts, runs only
//! granted programs, reads only granted environment variables, and is bounded in
//! memory, CPU time, wall-clock time and output. Every failure of a guest (trap,
//! timeout, limit, denied call) becomes an `error` verdict naming it; none takes the
//! host down.

mod bindings;
mod engine;
mod inspect;
mod mounts;
pub mod policy;
mod share;
mod state;
mod wasi;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

pub use bindings::{ConfigProblem, PREDICATE_EXPORTS, PROFILE_EXPORTS, WIT_VERSION};
pub use engine::{ArtifactCache, digest_hex};
pub use policy::{DEFAULT_MEMORY_BYTES, Grants, NetTarget};
pub use share::ExecShare;
pub use state::{
    GUEST_OUTPUT_CAP, HOSTCALL_FUEL, HTTP_FIELD_SIZE_LIMIT, KV_MAX_BYTES, MAX_COMPONENT_HANDLES,
    MAX_LOG_BYTES, MAX_LOG_MESSAGES, MAX_RESOURCES,
};
pub use wasi::MAX_OPEN_FILES;

use crate::verdict::{Diagnostic, Outcome, Verdict};
use bindings::predicate as pb;
use bindings::{PredicateComponent, ProfileAnswer, ProfileCall, ProfileComponent, ProfileOp};
use state::{Denials, GuestLimit, GuestState, KvScope, Limiter, NetHooks, shown};

/// Default wall-clock limit for one predicate evaluation.
pub const DEFAULT_PREDICATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for a profile call and for `describe`: they only translate data.
pub const DEFAULT_PROFILE_TIMEOUT: Duration = Duration::from_secs(5);
/// Where the workspace is mounted inside the guest.
pub const WORKSPACE_MOUNT: &str = "/workspace";
/// Largest component kazi reads and compiles unless a predicate's `limits.component`
/// says otherwise (compiling takes memory and time in proportion to the size).
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Errors of the runtime itself or of loading a component (exit code 5 territory).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("failed to start the WebAssembly engine: {0}")]
    Engine(String),
    #[error(
        "{label} is not WebAssembly (no `\\0asm` header); hint: pass a component built with `cargo build --target wasm32-wasip2`"
    )]
    NotWasm { label: String },
    #[error(
        "{label} is a core WebAssembly module, not a component; hint: build it for `wasm32-wasip2` (a component), not `wasm32-unknown-unknown` or `wasm32-wasip1`"
    )]
    CoreModule { label: String },
    #[error("{label} is not a valid component: {reason}")]
    Invalid { label: String, reason: String },
    #[error("{label} is {found}, not a {expected}; hint: a {expected} exports `{export}`")]
    WrongWorld {
        label: String,
        expected: &'static str,
        export: &'static str,
        found: String,
    },
    #[error(
        "{label} exports {found}, but this kazi speaks only {supported}; hint: rebuild it against kazi-sdk {version}"
    )]
    UnsupportedVersion {
        label: String,
        found: String,
        supported: String,
        version: &'static str,
    },
    #[error("{label} imports `{import}`, which kazi does not provide to a {kind}")]
    UnknownImport {
        label: String,
        import: String,
        kind: &'static str,
    },
    #[error("{label}: `describe` failed: {reason}")]
    Describe { label: String, reason: String },
    #[error(
        "{label} is {size} bytes, more than the {max}-byte limit for a component; hint: raise `limits.component` for this predicate if it really is that large"
    )]
    TooLarge { label: String, size: u64, max: u64 },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a component came from, for messages, and the limits it is loaded under.
#[derive(Debug, Clone)]
pub struct Source {
    /// How to name it: `builtin file` or a path.
    pub label: String,
    pub bytes: Arc<[u8]>,
    pub limits: LoadLimits,
    /// sha256 of `bytes`, computed once and shared by every clone: a goal of 1,000
    /// predicates on one component hashes it once, not 1,000 times.
    digest: Arc<std::sync::OnceLock<String>>,
}

/// Limits applied when loading a component: its size, and the memory budget and
/// wall-clock deadline of its `describe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    pub max_component_bytes: u64,
    pub memory_bytes: u64,
    pub timeout: Duration,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout: DEFAULT_PROFILE_TIMEOUT,
        }
    }
}

impl Source {
    /// A component from bytes with a label, under the default limits.
    pub fn new(label: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            label: label.into(),
            bytes: bytes.into(),
            limits: LoadLimits::default(),
            digest: Arc::default(),
        }
    }

    /// The sha256 of the component's bytes, in hex.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| digest_hex(&self.bytes))
    }

    /// The same component under other limits.
    pub fn with_limits(mut self, limits: LoadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Read a component from a file, under the default limits.
    pub fn from_file(path: &Path) -> Result<Self, SandboxError> {
        Self::from_file_with_limits(path, LoadLimits::default())
    }

    /// Read a component from a file that is at most `limits.max_component_bytes`
    /// long: the size is checked before reading, the file must be a regular file
    /// (opened without blocking, so a FIFO cannot hang kazi), and reading stops at
    /// the limit whatever the file claims.
    pub fn from_file_with_limits(path: &Path, limits: LoadLimits) -> Result<Self, SandboxError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let read_err = |source| SandboxError::Read {
            path: path.to_owned(),
            source,
        };
        let label = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(read_err(std::io::Error::other(
                "not a regular file; hint: point `use` at a .wasm component file",
            )));
        }
        let max = limits.max_component_bytes;
        if meta.len() > max {
            return Err(SandboxError::TooLarge {
                label,
                size: meta.len(),
                max,
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > max {
            return Err(SandboxError::TooLarge {
                label,
                size: bytes.len() as u64,
                max,
            });
        }
        Ok(Self::new(label, bytes).with_limits(limits))
    }
}

/// What a predicate declares about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PredicateInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// The config JSON Schema, parsed.
    pub config_schema: serde_json::Value,
    pub capabilities: Grants,
}

/// A loaded, checked and pre-linked predicate component.
#[derive(Clone)]
pub struct LoadedPredicate {
    pub label: String,
    pub digest: String,
    /// Shared by every clone: a goal of 1,000 predicates on one component holds its
    /// description (with its config schema) once, and cloning a predicate to evaluate
    /// it copies no JSON.
    pub info: Arc<PredicateInfo>,
    /// The world it targets, such as `kazi:predicate/predicate@0.2.0`.
    pub world: &'static str,
    pre: PredicateComponent,
}

impl LoadedPredicate {
    /// Whether it checks its own config at load (`validate`, WIT 0.2.0 and later); an
    /// older component's config is checked against its schema only.
    pub fn validates(&self) -> bool {
        self.pre.has_validate()
    }
}

/// What a profile declares about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInfo {
    pub id: String,
    pub version: String,
    pub summary: String,
    pub default_program: String,
    pub options: Vec<String>,
}

/// A loaded, checked and pre-linked profile component.
#[derive(Clone)]
pub struct LoadedProfile {
    pub label: String,
    pub digest: String,
    pub info: ProfileInfo,
    /// The world it targets, such as `kazi:profile/profile@0.2.0`.
    pub world: &'static str,
    pre: ProfileComponent,
}

impl LoadedProfile {
    /// Whether it checks `[agent]` options at load (`validate`, WIT 0.2.0 and later).
    pub fn validates(&self) -> bool {
        self.pre.has_validate()
    }
}

/// Limits and grants for one evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub grants: Grants,
    pub timeout: Duration,
    pub memory_bytes: u64,
    /// Id of the predicate in the goal (also scopes its kv store).
    pub predicate_id: String,
    pub iteration: u32,
    /// Share identical exec runs with the other evaluations of the same observation
    /// attempt (see [`ExecShare`]); `None`: every exec call runs its own process.
    pub exec_share: Option<ExecShare>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            timeout: DEFAULT_PREDICATE_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            predicate_id: "predicate".into(),
            iteration: 0,
            exec_share: None,
        }
    }
}

/// A dispatch request for a profile.
#[derive(Debug, Clone, Default)]
pub struct ProfileRequest {
    pub prompt: String,
    pub workspace: String,
    pub model: Option<String>,
    pub run: Vec<String>,
    pub options: Vec<(String, String)>,
}

/// How to run an agent, as a profile decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<String>,
    pub prompt_file: bool,
}

/// What a profile read from an agent's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentReport {
    pub result: Option<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub tokens_cached: Option<u64>,
    pub cost_usd: Option<f64>,
    pub session_id: Option<String>,
    pub permission_denials: Vec<String>,
    pub error: Option<String>,
    /// Exit 0, but the output was not in the format the profile reads.
    pub unparseable: bool,
}

/// The runtime: one engine, linkers for both worlds, the artifact cache and the
/// pre-instantiated components.
pub struct Sandbox {
    engine: Engine,
    cache: ArtifactCache,
    predicate_linker: Linker<GuestState>,
    profile_linker: Linker<GuestState>,
    predicates: Mutex<HashMap<String, LoadedPredicate>>,
    profiles: Mutex<HashMap<String, LoadedProfile>>,
    kv: Mutex<HashMap<String, KvScope>>,
}

/// What kind of guest, for world checks and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Predicate,
    Profile,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Predicate => "kazi predicate",
            Kind::Profile => "kazi profile",
        }
    }
    /// The exports this kind may have, one per supported WIT version, newest first.
    fn exports(self) -> &'static [&'static str] {
        match self {
            Kind::Predicate => bindings::PREDICATE_EXPORTS,
            Kind::Profile => bindings::PROFILE_EXPORTS,
        }
    }
    /// The newest export, for messages.
    fn export(self) -> &'static str {
        self.exports()[0]
    }
}

impl Sandbox {
    /// A runtime caching compiled components in `cache_dir` (`None`: no disk cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, SandboxError> {
        let engine = engine::shared_engine()?;
        let cache = ArtifactCache::new(&engine, cache_dir);
        let link_err =
            |e: wasmtime::Error| SandboxError::Engine(format!("linking host imports: {e}"));

        crate::process::init();
        let mut predicate_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut predicate_linker).map_err(link_err)?;
        wasi::link(&mut predicate_linker).map_err(link_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut predicate_linker)
            .map_err(link_err)?;
        pb::Predicate::add_to_linker::<GuestState, HasSelf<GuestState>>(
            &mut predicate_linker,
            |s| s,
        )
        .map_err(link_err)?;

        let mut profile_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut profile_linker).map_err(link_err)?;
        wasi::link(&mut profile_linker).map_err(link_err)?;
        bindings::profile::Profile::add_to_linker::<GuestState, HasSelf<GuestState>>(
            &mut profile_linker,
            |s| s,
        )
        .map_err(link_err)?;

        Ok(Self {
            engine,
            cache,
            predicate_linker,
            profile_linker,
            predicates: Mutex::new(HashMap::new()),
            profiles: Mutex::new(HashMap::new()),
            kv: Mutex::new(HashMap::new()),
        })
    }

    /// A runtime with the default cache directory (`$KAZI_CACHE` or the user cache dir).
    pub fn with_default_cache() -> Result<Self, SandboxError> {
        Self::new(ArtifactCache::default_dir())
    }

    /// The engine (for benchmarks and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Check and compile (or load from cache) a component of the given kind. Its size
    /// and its world (read with `wasmparser`) are checked *before* compiling, so a
    /// huge file or a component of another world is refused at once.
    fn compile(&self, source: &Source, kind: Kind) -> Result<(String, Component), SandboxError> {
        let label = source.label.clone();
        let bytes = &source.bytes;
        let max = source.limits.max_component_bytes;
        if bytes.len() as u64 > max {
            return Err(SandboxError::TooLarge {
                label,
                size: bytes.len() as u64,
                max,
            });
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(SandboxError::NotWasm { label });
        }
        if bytes.len() >= 8 && bytes[4..8] == [1, 0, 0, 0] {
            return Err(SandboxError::CoreModule { label });
        }
        let surface = inspect::surface(bytes).map_err(|reason| SandboxError::Invalid {
            label: label.clone(),
            reason,
        })?;
        check_world(&surface.exports, &label, kind)?;
        check_imports(&surface.imports, &label, kind)?;
        // The source hashed itself once (load_* looked it up by this digest already).
        let digest = source.digest().to_owned();
        let component =
            self.cache
                .load(&self.engine, &digest, bytes)
                .map_err(|e| SandboxError::Invalid {
                    label: label.clone(),
                    reason: format!("{e:#}"),
                })?;
        Ok((digest, component))
    }

    fn link_error(label: &str, kind: Kind, e: wasmtime::Error) -> SandboxError {
        let text = format!("{e:#}");
        // wasmtime names the missing import as `component imports instance `x`, but a
        // matching implementation was not found in the linker`.
        let import = text
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| text.clone());
        if text.contains("was not found") || text.contains("not found in the linker") {
            SandboxError::UnknownImport {
                label: label.to_owned(),
                import,
                kind: kind.name(),
            }
        } else {
            SandboxError::Invalid {
                label: label.to_owned(),
                reason: text,
            }
        }
    }

    /// Load a predicate: compile or fetch from cache, check its world and version,
    /// pre-link it and call `describe`. Cached by content digest.
    pub async fn load_predicate(&self, source: &Source) -> Result<LoadedPredicate, SandboxError> {
        let digest = source.digest();
        if let Some(p) = self.predicates.lock().expect("cache lock").get(digest) {
            let mut p = p.clone();
            p.label = source.label.clone();
            return Ok(p);
        }
        let (digest, component) = self.compile(source, Kind::Predicate)?;
        let export = bindings::export_of(&self.engine, &component, bindings::PREDICATE_EXPORTS)
            .unwrap_or(bindings::PREDICATE_EXPORTS[0]);
        let instance_pre = self
            .predicate_linker
            .instantiate_pre(&component)
            .map_err(|e| Self::link_error(&source.label, Kind::Predicate, e))?;
        let pre =
            PredicateComponent::new(export, instance_pre).map_err(|e| SandboxError::Invalid {
                label: source.label.clone(),
                reason: format!("{e:#}"),
            })?;
        let limits = source.limits;
        let mut store = self.store(
            &source.label,
            None,
            &EvalOptions {
                timeout: limits.timeout,
                memory_bytes: limits.memory_bytes,
                ..EvalOptions::default()
            },
            None,
        )?;
        let describe_err = |reason: String| SandboxError::Describe {
            label: source.label.clone(),
            reason,
        };
        let instance = run_bounded(limits.timeout, pre.instantiate(&mut store))
            .await
            .map_err(|e| SandboxError::Invalid {
                label: source.label.clone(),
                reason: e.instantiate_message(limits.timeout, &store),
            })?;
        let d = run_bounded(limits.timeout, instance.describe(&mut store))
            .await
            .map_err(|e| describe_err(e.message(limits.timeout, &store)))?;
        check_description(&d).map_err(describe_err)?;
        let config_schema = serde_json::from_str(&d.config_schema)
            .map_err(|e| describe_err(format!("its config schema is not JSON: {e}")))?;
        let mut capabilities = Grants::default();
        capabilities.exec.extend(d.exec);
        for n in &d.net {
            capabilities
                .allow_net(n)
                .map_err(|e| describe_err(format!("it requests an invalid net capability: {e}")))?;
        }
        capabilities.env.extend(d.env);
        capabilities.fs_write = d.fs_write;
        let loaded = LoadedPredicate {
            label: source.label.clone(),
            digest: digest.clone(),
            info: Arc::new(PredicateInfo {
                name: d.name,
                version: d.version,
                summary: d.summary,
                config_schema,
                capabilities,
            }),
            world: pre.world(),
            pre,
        };
        self.predicates
            .lock()
            .expect("cache lock")
            .insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// Ask a predicate whether `config` is valid, in a fresh store with no
    /// capabilities: `Ok(None)` when the component has no `validate` (WIT 0.1.0),
    /// `Ok(Some(problems))` otherwise (empty: valid). `Err` when the call itself failed
    /// (a trap, a timeout), with the reason.
    pub async fn validate_config(
        &self,
        predicate: &LoadedPredicate,
        config: &serde_json::Value,
    ) -> Result<Option<Vec<ConfigProblem>>, String> {
        if !predicate.validates() {
            return Ok(None);
        }
        let opts = EvalOptions {
            timeout: DEFAULT_PROFILE_TIMEOUT,
            ..EvalOptions::default()
        };
        let mut store = self
            .store(&predicate.label, None, &opts, None)
            .map_err(|e| e.to_string())?;
        let config = config.to_string();
        let call = async {
            let instance = predicate.pre.instantiate(&mut store).await?;
            instance.validate(&mut store, &config).await
        };
        run_bounded(opts.timeout, call).await.map_err(|e| {
            format!(
                "{}: `validate` {}",
                predicate.label,
                e.message(opts.timeout, &store)
            )
        })
    }

    /// Build a fresh store for one call, with the whole per-evaluation budget set.
    fn store(
        &self,
        label: &str,
        workspace: Option<&Path>,
        opts: &EvalOptions,
        kv: Option<KvScope>,
    ) -> Result<Store<GuestState>, SandboxError> {
        let grants = Arc::new(opts.grants.clone());
        let denials = Denials::default();
        let stdout = MemoryOutputPipe::new(state::GUEST_OUTPUT_CAP);
        let stderr = MemoryOutputPipe::new(state::GUEST_OUTPUT_CAP);
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_blocking_current_thread(true)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        for name in &grants.env {
            if let Ok(v) = std::env::var(name) {
                wasi.env(name, v);
            }
        }
        if let Some(ws) = workspace {
            let perms = if grants.fs_write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(ws, WORKSPACE_MOUNT, perms)
                .map_err(|e| SandboxError::Invalid {
                    label: label.to_owned(),
                    reason: format!("cannot open the workspace {}: {e}", ws.display()),
                })?;
            wasi.initial_cwd(WORKSPACE_MOUNT);
        }
        let mut table = wasmtime::component::ResourceTable::new();
        table.set_max_capacity(state::MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(state::HTTP_FIELD_SIZE_LIMIT);
        let data = GuestState {
            wasi: wasi.build(),
            table,
            http,
            hooks: NetHooks {
                grants: grants.clone(),
                denials: denials.clone(),
            },
            limiter: Limiter::new(usize::try_from(opts.memory_bytes).unwrap_or(usize::MAX)),
            fs: wasi::FsGuard::new(denials.clone(), grants.fs_write),
            grants,
            denials,
            kv: kv.unwrap_or_default(),
            workspace: workspace.map(Path::to_path_buf),
            deadline: Instant::now() + opts.timeout,
            label: label.to_owned(),
            predicate_id: opts.predicate_id.clone(),
            exec_share: opts.exec_share.clone(),
            stdout,
            stderr,
            deadline_hit: None,
            limit_hit: None,
            logs: Default::default(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(state::HOSTCALL_FUEL);
        store.set_max_component_handles(state::MAX_COMPONENT_HANDLES);
        // At every epoch tick a running guest yields to the executor (so a guest that
        // computes never holds a runtime thread for long, and the wall-clock limit
        // around the call can fire), and traps once its deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|cx| {
            Ok(if Instant::now() >= cx.data().deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        Ok(store)
    }

    fn kv_scope(&self, digest: &str, predicate_id: &str) -> KvScope {
        self.kv
            .lock()
            .expect("kv lock")
            .entry(format!("{digest}/{predicate_id}"))
            .or_default()
            .clone()
    }

    /// Evaluate a loaded predicate once, in a fresh store, against `workspace`.
    /// Never fails: every problem is an `error` verdict that names the predicate.
    ///
    /// The guest runs on one of kazi's guest threads, never on a runtime worker: a
    /// host call that blocks (a file on a hung network mount, say) holds only that
    /// thread, and the wall-clock limit, kept here, ends the evaluation on time.
    pub async fn evaluate(
        &self,
        predicate: &LoadedPredicate,
        workspace: &Path,
        config: &serde_json::Value,
        opts: &EvalOptions,
    ) -> Verdict {
        let inline = mounts::local_only(workspace);
        self.evaluate_placed(predicate, workspace, config, opts, inline)
            .await
    }

    /// [`Sandbox::evaluate`], inline on the runtime or on a guest thread.
    async fn evaluate_placed(
        &self,
        predicate: &LoadedPredicate,
        workspace: &Path,
        config: &serde_json::Value,
        opts: &EvalOptions,
        inline: bool,
    ) -> Verdict {
        let who = format!(
            "predicate `{}` ({})",
            crate::text::line(&opts.predicate_id),
            crate::text::line(&predicate.label)
        );
        let kv = self.kv_scope(&predicate.digest, &opts.predicate_id);
        let mut store = match self.store(&predicate.label, Some(workspace), opts, Some(kv)) {
            Ok(s) => s,
            Err(e) => return Verdict::error(format!("{who}: {e}")),
        };
        let denials = store.data().denials.clone();
        let config = config.to_string();
        let (predicate_id, iteration) = (opts.predicate_id.clone(), opts.iteration);
        let pre = predicate.pre.clone();
        let timeout = opts.timeout;
        let guest_who = who.clone();
        // Dropping this evaluation (the caller was cancelled) stops the guest too, and
        // with it any program it runs.
        let cancel = tokio_util::sync::CancellationToken::new();
        let _stop_guest_on_drop = cancel.clone().drop_guard();
        let job = async move {
            let call = run_bounded(timeout, async {
                let instance = pre.instantiate(&mut store).await?;
                instance
                    .evaluate(
                        &mut store,
                        &config,
                        &predicate_id,
                        WORKSPACE_MOUNT,
                        iteration,
                    )
                    .await
            });
            tokio::select! {
                result = call => conclude(&guest_who, timeout, result, &store),
                () = cancel.cancelled() => Verdict::error(format!("{guest_who} was cancelled")),
            }
        };
        // On a workspace where no host call can block (a local filesystem, nothing
        // mounted inside, special files refused), the guest runs inline: it yields at
        // every epoch tick, so its own wall-clock limit fires. Elsewhere (network or
        // FUSE filesystems, mounts inside) it runs on a guest thread: a read stuck in
        // the kernel then holds only that thread, and the limit below still fires.
        if inline {
            let mut verdict = job.await;
            verdict.details =
                crate::verdict::truncate_middle(&verdict.details, crate::verdict::MAX_DETAILS);
            return verdict;
        }
        // The guest's own wall-clock limit (inside the job) fires first; this one only
        // when its thread is stuck in a host call that cannot be interrupted.
        let outer = timeout + Duration::from_secs(2);
        let mut verdict = match tokio::time::timeout(outer, engine::run_off_thread(job)).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => Verdict::error(format!("{who} failed: its evaluation thread panicked")),
            Err(_) => {
                let v = Verdict::error(format!(
                    "{who} timed out after {} (stuck in a host call that could not be interrupted)",
                    humantime::format_duration(timeout)
                ));
                with_denials(v, &who, &denials)
            }
        };
        verdict.details =
            crate::verdict::truncate_middle(&verdict.details, crate::verdict::MAX_DETAILS);
        verdict
    }

    /// Load a profile: compile or fetch from cache, check its world, call `describe`.
    pub async fn load_profile(&self, source: &Source) -> Result<LoadedProfile, SandboxError> {
        let digest = source.digest();
        if let Some(p) = self.profiles.lock().expect("cache lock").get(digest) {
            return Ok(p.clone());
        }
        let (digest, component) = self.compile(source, Kind::Profile)?;
        let export = bindings::export_of(&self.engine, &component, bindings::PROFILE_EXPORTS)
            .unwrap_or(bindings::PROFILE_EXPORTS[0]);
        let instance_pre = self
            .profile_linker
            .instantiate_pre(&component)
            .map_err(|e| Self::link_error(&source.label, Kind::Profile, e))?;
        let pre =
            ProfileComponent::new(export, instance_pre).map_err(|e| SandboxError::Invalid {
                label: source.label.clone(),
                reason: format!("{e:#}"),
            })?;
        let mut loaded = LoadedProfile {
            label: source.label.clone(),
            digest: digest.clone(),
            info: ProfileInfo {
                id: String::new(),
                version: String::new(),
                summary: String::new(),
                default_program: String::new(),
                options: Vec::new(),
            },
            world: pre.world(),
            pre,
        };
        let ProfileAnswer::Describe(d) = self
            .profile_call(&loaded, ProfileOp::Describe)
            .await
            .map_err(|reason| SandboxError::Describe {
                label: source.label.clone(),
                reason,
            })?
        else {
            unreachable!("describe answers Describe")
        };
        loaded.info = ProfileInfo {
            id: d.id,
            version: d.version,
            summary: d.summary,
            default_program: d.default_program,
            options: d.options,
        };
        self.profiles
            .lock()
            .expect("cache lock")
            .insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// One call into a profile in a fresh store with no capabilities.
    async fn profile_call(
        &self,
        profile: &LoadedProfile,
        op: ProfileOp<'_>,
    ) -> Result<ProfileAnswer, String> {
        let opts = EvalOptions {
            timeout: DEFAULT_PROFILE_TIMEOUT,
            memory_bytes: 64 << 20,
            ..EvalOptions::default()
        };
        let mut store = self
            .store(&profile.label, None, &opts, None)
            .map_err(|e| e.to_string())?;
        let instance = match run_bounded(opts.timeout, profile.pre.instantiate(&mut store)).await {
            Ok(i) => i,
            Err(e) => return Err(e.instantiate_message(opts.timeout, &store)),
        };
        let result = run_bounded(opts.timeout, instance.call(&mut store, op)).await;
        result.map_err(|e| {
            format!(
                "profile {} {}",
                profile.label,
                e.message(opts.timeout, &store)
            )
        })
    }

    /// Ask a profile whether the `[agent]` table `config` (`model`, `run` and its
    /// options, as JSON) is valid: `Ok(None)` when it has no `validate` (WIT 0.1.0),
    /// `Ok(Some(problems))` otherwise (empty: valid).
    pub async fn validate_profile(
        &self,
        profile: &LoadedProfile,
        config: &serde_json::Value,
    ) -> Result<Option<Vec<ConfigProblem>>, String> {
        let config = config.to_string();
        match self
            .profile_call(profile, ProfileOp::Validate(&config))
            .await?
        {
            ProfileAnswer::Validate(v) => Ok(v),
            _ => unreachable!("validate answers Validate"),
        }
    }

    /// Ask a profile how to run its agent for `req`.
    pub async fn invocation(
        &self,
        profile: &LoadedProfile,
        req: &ProfileRequest,
    ) -> Result<Invocation, String> {
        let call = ProfileCall {
            prompt: &req.prompt,
            workspace: &req.workspace,
            model: req.model.as_deref(),
            run: &req.run,
            options: &req.options,
        };
        let ProfileAnswer::Invocation(inv) = self
            .profile_call(profile, ProfileOp::Invocation(call))
            .await?
        else {
            unreachable!("build-invocation answers Invocation")
        };
        let inv = inv?;
        Ok(Invocation {
            program: inv.program,
            args: inv.args,
            env: inv.env,
            stdin: inv.stdin,
            prompt_file: inv.prompt_file,
        })
    }

    /// Ask a profile what an agent's output means.
    pub async fn parse(
        &self,
        profile: &LoadedProfile,
        exit_code: Option<i32>,
        stdout: &str,
        stderr: &str,
    ) -> Result<AgentReport, String> {
        let op = ProfileOp::Parse {
            exit_code,
            stdout,
            stderr,
        };
        let ProfileAnswer::Parse(mut r) = self.profile_call(profile, op).await? else {
            unreachable!("parse answers Parse")
        };
        r.cost_usd = r.cost_usd.filter(|c| c.is_finite() && *c >= 0.0);
        Ok(r)
    }
}

/// Why a guest call did not return.
enum CallError {
    /// The wall-clock limit passed (for example inside a host call).
    WallClock(Duration),
    Wasm(wasmtime::Error),
}

/// Whether the guest filled its stdout or stderr.
fn output_hit(data: &GuestState) -> bool {
    data.stdout.contents().len() >= state::GUEST_OUTPUT_CAP
        || data.stderr.contents().len() >= state::GUEST_OUTPUT_CAP
}

fn output_limit_message() -> String {
    format!(
        "exceeded its output limit: wrote more than {} MiB to its stdout or stderr",
        state::GUEST_OUTPUT_CAP >> 20
    )
}

impl CallError {
    /// A reason that reads after the guest's name: "timed out after 2s", "trapped: …",
    /// "exceeded its memory budget …". Never a wasm backtrace: limits the host
    /// imposed are named in one line.
    fn message(&self, timeout: Duration, store: &Store<GuestState>) -> String {
        let data = store.data();
        let limit = humantime::format_duration(timeout);
        let e = match self {
            CallError::WallClock(d) => {
                return format!("timed out after {}", humantime::format_duration(*d));
            }
            CallError::Wasm(e) => e,
        };
        if data.limiter.hit {
            return format!(
                "exceeded its memory budget of {} MiB (all its linear memories and tables together); hint: raise `limits.memory` if it really needs more",
                data.limiter.budget >> 20
            );
        }
        if output_hit(data) {
            return output_limit_message();
        }
        if let Some(l) = e.chain().find_map(|c| c.downcast_ref::<GuestLimit>()) {
            return l.0.clone();
        }
        if let Some(msg) = &data.fs.limit_hit {
            return msg.clone();
        }
        if e.chain().any(|c| {
            matches!(
                c.downcast_ref(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
        }) {
            return format!(
                "exceeded its limit of {} open host resources (files, streams, HTTP header maps and requests together)",
                state::MAX_RESOURCES
            );
        }
        // The outermost message is often only "error while executing at wasm
        // backtrace: …": name the cause instead.
        let causes: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        let said = |needle: &str| causes.iter().any(|c| c.contains(needle));
        if said("fuel allocated for hostcalls has been exhausted") {
            return format!(
                "exceeded its limit of {} MiB of data passed to the host in one call",
                state::HOSTCALL_FUEL >> 20
            );
        }
        if said("store handle limit exceeded") {
            return format!(
                "exceeded its limit of {} component handles",
                state::MAX_COMPONENT_HANDLES
            );
        }
        if said("total size of fields exceeds limit") || said("too many fields") {
            return format!(
                "exceeded its limit of {} KiB per HTTP header map",
                state::HTTP_FIELD_SIZE_LIMIT >> 10
            );
        }
        let root = e.root_cause().to_string();
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!("timed out after {limit} (CPU time limit)"),
            Some(Trap::StackOverflow) => {
                "trapped: call stack exhausted (unbounded recursion?)".to_owned()
            }
            Some(trap) => format!("trapped: {trap}"),
            // The root cause, never the wasm backtrace around it.
            None => format!("failed: {}", crate::verdict::truncate_middle(&root, 2048)),
        }
    }

    /// Why instantiating a component failed, for a load error.
    fn instantiate_message(&self, timeout: Duration, store: &Store<GuestState>) -> String {
        if let CallError::Wasm(e) = self {
            let text = format!("{e:#}");
            if e.downcast_ref::<Trap>().is_none()
                && !store.data().limiter.hit
                && (text.contains("type mismatch") || text.contains("expected"))
            {
                return format!(
                    "its exports do not have the types this kazi expects ({}); hint: rebuild it against the kazi-sdk this kazi supports",
                    crate::verdict::truncate_middle(&format!("{e}"), 512)
                );
            }
        }
        format!("it could not start: {}", self.message(timeout, store))
    }
}

impl From<wasmtime::Error> for CallError {
    fn from(e: wasmtime::Error) -> Self {
        CallError::Wasm(e)
    }
}

/// Run a guest future with a wall-clock limit on top of the epoch deadline (epochs do
/// not interrupt host calls). Dropping the future on expiry kills any child process
/// tree the guest started.
async fn run_bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, CallError> {
    // A little slack so the epoch trap (which names the CPU limit) usually wins.
    match tokio::time::timeout(timeout + Duration::from_millis(250), fut).await {
        Ok(r) => r.map_err(CallError::Wasm),
        Err(_) => Err(CallError::WallClock(timeout)),
    }
}

/// The verdict of a finished (or failed) evaluation, with everything the host knows
/// better than the guest applied over what the guest said: an output flood, a limit
/// hit, a deadline reached inside a program, and any denied call each make it an
/// `error` whatever the guest reported.
fn conclude(
    who: &str,
    timeout: Duration,
    result: Result<pb::kazi::host::types::Verdict, CallError>,
    store: &Store<GuestState>,
) -> Verdict {
    let data = store.data();
    let stderr_tail = tail_text(&data.stderr.contents(), 4096);
    let mut verdict = match result {
        Ok(v) => from_wit(v).bounded(),
        Err(e) => {
            let v = Verdict::error(format!("{who} {}", e.message(timeout, store)));
            if stderr_tail.is_empty() {
                v
            } else {
                v.with_details(format!("guest stderr:\n{stderr_tail}"))
            }
        }
    };
    let overrule = |verdict: Verdict, reason: String| {
        if verdict.outcome == Outcome::Error && verdict.summary.ends_with(&reason) {
            return verdict;
        }
        Verdict::error(format!("{who} {reason}")).with_details(format!(
            "what the guest reported: {}",
            crate::text::line(&verdict.summary)
        ))
    };
    if output_hit(data) {
        verdict = overrule(verdict, output_limit_message());
    }
    if let Some(limit) = data.limit_hit.as_ref().or(data.fs.limit_hit.as_ref()) {
        verdict = overrule(verdict, limit.clone());
    }
    if let Some(program) = &data.deadline_hit {
        verdict = overrule(
            verdict,
            format!(
                "timed out after {} (waiting for `{program}`)",
                humantime::format_duration(timeout)
            ),
        );
    }
    if data.logs.dropped > 0 {
        tracing::warn!(
            "{who}: {} more log messages were dropped (at most {} lines or {} KiB per evaluation)",
            data.logs.dropped,
            state::MAX_LOG_MESSAGES,
            state::MAX_LOG_BYTES >> 10
        );
    }
    with_denials(verdict, who, &data.denials)
}

/// A denied call is an error whatever the guest made of it (SPEC §3.1): name the
/// first in the summary and all (bounded) in the details.
fn with_denials(mut verdict: Verdict, who: &str, denials: &Denials) -> Verdict {
    if denials.is_empty() {
        return verdict;
    }
    let lines = denials.lines();
    verdict.outcome = Outcome::Error;
    let reported = std::mem::replace(
        &mut verdict.summary,
        crate::verdict::truncate_middle(
            &format!("{who} was denied: {}", lines[0]),
            crate::verdict::MAX_SUMMARY,
        ),
    );
    let mut details = lines.join("\n");
    if !reported.is_empty() {
        details.push_str(&format!("\n\nwhat the guest reported: {reported}"));
    }
    if !verdict.details.is_empty() {
        details.push_str("\n\n");
        details.push_str(&verdict.details);
    }
    verdict.details = crate::verdict::truncate_middle(&details, crate::verdict::MAX_DETAILS);
    verdict
}

fn tail_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Most entries in each capability list of a `describe`, and the longest entry.
const MAX_DECLARED_CAPABILITIES: usize = 64;
const MAX_DECLARED_NAME: usize = 256;
/// Longest config schema a predicate may declare.
const MAX_CONFIG_SCHEMA: usize = 1 << 20;
/// Longest name, version or summary a predicate may declare.
const MAX_DESCRIBE_TEXT: usize = 4096;

/// Refuse a `describe` whose declarations would make kazi build huge messages or
/// structures (200,000 capabilities, a 100 MB schema): a clear, bounded load error.
fn check_description(d: &bindings::PredicateDescription) -> Result<(), String> {
    for (what, text) in [
        ("name", &d.name),
        ("version", &d.version),
        ("summary", &d.summary),
    ] {
        if text.len() > MAX_DESCRIBE_TEXT {
            return Err(format!(
                "its {what} is {} bytes long (at most {MAX_DESCRIBE_TEXT})",
                text.len()
            ));
        }
    }
    if d.config_schema.len() > MAX_CONFIG_SCHEMA {
        return Err(format!(
            "its config schema is {} bytes long (at most {} KiB)",
            d.config_schema.len(),
            MAX_CONFIG_SCHEMA >> 10
        ));
    }
    for (what, list) in [
        ("programs", &d.exec),
        ("hosts", &d.net),
        ("environment variables", &d.env),
    ] {
        if list.len() > MAX_DECLARED_CAPABILITIES {
            return Err(format!(
                "it asks for {} {what} (at most {MAX_DECLARED_CAPABILITIES})",
                list.len()
            ));
        }
        if let Some(long) = list
            .iter()
            .find(|n| n.len() > MAX_DECLARED_NAME || n.contains('\0'))
        {
            return Err(format!(
                "it asks for an invalid capability `{}` (at most {MAX_DECLARED_NAME} bytes, no NUL)",
                shown(long)
            ));
        }
    }
    Ok(())
}

/// Refuse, before compiling, an import no linker of kazi could ever provide: only
/// `wasi:` and `kazi:host/` interfaces exist (and `wasi:http` only for predicates).
/// Finer mismatches (a version, a function) are found when linking.
fn check_imports(imports: &[String], label: &str, kind: Kind) -> Result<(), SandboxError> {
    let provided = |name: &str| {
        (name.starts_with("wasi:") || name.starts_with("kazi:host/"))
            && !(kind == Kind::Profile && name.starts_with("wasi:http/"))
    };
    match imports.iter().find(|i| !provided(i)) {
        Some(import) => Err(SandboxError::UnknownImport {
            label: label.to_owned(),
            import: shown(import),
            kind: kind.name(),
        }),
        None => Ok(()),
    }
}

/// Check that a component exporting `exports` (read before compiling) is the world
/// `kind` expects, at a supported version, with a message that says what it is
/// instead.
fn check_world(exports: &[String], label: &str, kind: Kind) -> Result<(), SandboxError> {
    if exports.iter().any(|e| kind.exports().contains(&e.as_str())) {
        return Ok(());
    }
    let unversioned = kind.export().split('@').next().unwrap_or_default();
    if let Some(found) = exports
        .iter()
        .find(|e| e.split('@').next() == Some(unversioned))
    {
        return Err(SandboxError::UnsupportedVersion {
            label: label.to_owned(),
            found: shown(found),
            supported: kind.exports().join(" and "),
            version: bindings::WIT_VERSION,
        });
    }
    let found = if exports
        .iter()
        .any(|e| e.starts_with("kazi:profile/translator"))
    {
        "a kazi profile".to_owned()
    } else if exports
        .iter()
        .any(|e| e.starts_with("kazi:predicate/evaluator"))
    {
        "a kazi predicate".to_owned()
    } else if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
        "a WASI command (it exports `wasi:cli/run`)".to_owned()
    } else if exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler"))
    {
        "a WASI HTTP proxy".to_owned()
    } else if exports.is_empty() {
        "a component that exports nothing".to_owned()
    } else {
        let mut names: Vec<String> = exports.iter().take(8).map(|e| shown(e)).collect();
        if exports.len() > 8 {
            names.push(format!("and {} more", exports.len() - 8));
        }
        format!("a component exporting {}", names.join(", "))
    };
    Err(SandboxError::WrongWorld {
        label: label.to_owned(),
        expected: kind.name(),
        export: kind.export(),
        found,
    })
}

fn from_wit(v: pb::kazi::host::types::Verdict) -> Verdict {
    use pb::kazi::host::types::Outcome as W;
    Verdict {
        outcome: match v.outcome {
            W::Pass => Outcome::Pass,
            W::Fail => Outcome::Fail,
            W::Error => Outcome::Error,
        },
        summary: v.evidence.summary,
        details: v.evidence.details,
        diagnostics: v
            .evidence
            .diagnostics
            .into_iter()
            .map(|d| Diagnostic {
                file: d.file,
                line: d.line,
                message: d.message,
            })
            .collect(),
        score: v.evidence.score,
        metrics: v
            .evidence
            .metrics
            .into_iter()
            .map(|m| (m.name, m.value))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(exports: &[&str], kind: Kind) -> Result<(), String> {
        let names: Vec<String> = exports.iter().map(|s| (*s).to_owned()).collect();
        check_world(&names, "x.wasm", kind).map_err(|e| e.to_string())
    }

    #[test]
    fn the_world_is_named_from_the_export_names() {
        assert!(world(bindings::PREDICATE_EXPORTS, Kind::Predicate).is_ok());
        assert!(world(bindings::PROFILE_EXPORTS, Kind::Profile).is_ok());
        let e = world(&["wasi:cli/run@0.2.0"], Kind::Predicate).unwrap_err();
        assert!(e.contains("a WASI command"), "{e}");
        let e = world(bindings::PROFILE_EXPORTS, Kind::Predicate).unwrap_err();
        assert!(e.contains("is a kazi profile, not a kazi predicate"), "{e}");
        let e = world(&["kazi:predicate/evaluator@9.0.0"], Kind::Predicate).unwrap_err();
        assert!(
            e.contains("exports kazi:predicate/evaluator@9.0.0, but this kazi speaks only"),
            "{e}"
        );
        let e = world(&[], Kind::Predicate).unwrap_err();
        assert!(e.contains("exports nothing"), "{e}");
    }

    /// Live processes whose command line holds `needle` as an argument.
    fn running(needle: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == needle.as_bytes()))
                    && std::fs::read_to_string(e.path().join("stat"))
                        .is_ok_and(|s| !s.contains(") Z "))
            })
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_an_evaluation_stops_the_program_it_runs() {
        for inline in [true, false] {
            dropping_an_evaluation_stops_the_program(inline).await;
        }
    }

    async fn dropping_an_evaluation_stops_the_program(inline: bool) {
        let sandbox = Sandbox::new(None).unwrap();
        let command = crate::builtins::predicate("command").unwrap();
        let predicate = sandbox.load_predicate(&command).await.unwrap();
        let ws = tempfile::tempdir().unwrap();
        let marker = format!("301.{}{}", std::process::id(), u8::from(inline));
        let mut opts = EvalOptions {
            timeout: Duration::from_secs(120),
            ..EvalOptions::default()
        };
        opts.grants.allow_exec("sleep");
        let config = serde_json::json!({"run": ["sleep", marker]});
        let mut evaluation =
            Box::pin(sandbox.evaluate_placed(&predicate, ws.path(), &config, &opts, inline));
        let mut started = false;
        for _ in 0..600 {
            tokio::select! {
                v = &mut evaluation => panic!("the evaluation ended: {v:?}"),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if running(&marker) > 0 {
                started = true;
                break;
            }
        }
        assert!(started, "the program never started");
        drop(evaluation);
        let mut left = usize::MAX;
        for _ in 0..200 {
            left = running(&marker);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(left, 0, "the program outlived its dropped evaluation");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_placements_give_the_same_verdicts() {
        let sandbox = Sandbox::new(None).unwrap();
        let file = crate::builtins::predicate("file").unwrap();
        let predicate = sandbox.load_predicate(&file).await.unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("a.txt"), "all ok").unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(ws.path().join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        let opts = EvalOptions::default();
        for inline in [true, false] {
            let eval = |config: serde_json::Value| {
                let (sandbox, predicate, ws, opts) = (&sandbox, &predicate, ws.path(), &opts);
                async move {
                    sandbox
                        .evaluate_placed(predicate, ws, &config, opts, inline)
                        .await
                }
            };
            let v = eval(serde_json::json!({"path": "a.txt", "contains": "ok"})).await;
            assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
            let v = eval(serde_json::json!({"path": "pipe", "contains": "ok"})).await;
            assert_eq!(v.outcome, Outcome::Error, "{v:?}");
            assert!(v.summary.contains("it is a FIFO"), "{v:?}");
        }
    }

    #[test]
    fn imports_no_linker_provides_are_refused_before_compiling() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ok = names(&[
            "wasi:cli/environment@0.2.0",
            "kazi:host/exec@0.1.0",
            "wasi:http/types@0.2.0",
        ]);
        assert!(check_imports(&ok, "x", Kind::Predicate).is_ok());
        let e = check_imports(&ok, "x", Kind::Profile)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`wasi:http/types@0.2.0`") && e.contains("kazi profile"),
            "{e}"
        );
        let e = check_imports(&names(&["evil:host/native@1.0.0"]), "x", Kind::Predicate)
            .unwrap_err()
            .to_string();
        assert!(e.contains("imports `evil:host/native@1.0.0`"), "{e}");
    }

    #[test]
    fn a_list_of_odd_exports_is_bounded_and_escaped() {
        let many: Vec<String> = (0..10_000).map(|i| format!("x:y/z{i}\x1b[2J")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = world(&names, Kind::Predicate).unwrap_err();
        assert!(e.len() < 1500, "{} bytes", e.len());
        assert!(e.contains("and 9992 more"), "{e}");
        assert!(!e.contains('\x1b'), "{e}");
    }

    #[test]
    fn a_component_file_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.wasm");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(10 << 20)
            .unwrap();
        let limits = LoadLimits {
            max_component_bytes: 1 << 20,
            ..LoadLimits::default()
        };
        let e = Source::from_file_with_limits(&big, limits).unwrap_err();
        assert!(
            matches!(e, SandboxError::TooLarge { size, max, .. } if size == 10 << 20 && max == 1 << 20)
        );
        assert!(e.to_string().contains("limits.component"), "{e}");
        // Under the limit it is read.
        std::fs::write(&big, b"\0asm").unwrap();
        assert_eq!(
            &*Source::from_file_with_limits(&big, limits).unwrap().bytes,
            b"\0asm"
        );
    }

    #[test]
    fn a_fifo_or_a_directory_is_not_read_as_a_component() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.wasm");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Would block forever if it were opened for reading the usual way.
        let e = Source::from_file(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = Source::from_file(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_description_is_checked_for_size() {
        let d = |exec: Vec<String>, schema: String| bindings::PredicateDescription {
            name: "n".into(),
            version: "1".into(),
            summary: "s".into(),
            config_schema: schema,
            exec,
            net: Vec::new(),
            env: Vec::new(),
            fs_write: false,
        };
        assert!(check_description(&d(vec!["cargo".into()], "{}".into())).is_ok());
        let many = (0..65).map(|i| format!("p{i}")).collect();
        let e = check_description(&d(many, "{}".into())).unwrap_err();
        assert_eq!(e, "it asks for 65 programs (at most 64)");
        let e = check_description(&d(vec!["x".repeat(300)], "{}".into())).unwrap_err();
        assert!(e.contains("invalid capability") && e.len() < 400, "{e}");
        let e = check_description(&d(Vec::new(), " ".repeat(2 << 20))).unwrap_err();
        assert!(e.contains("config schema"), "{e}");
    }
}
