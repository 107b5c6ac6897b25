//! The plugin runtime: loads predicate and profile components and runs them in a
//! sandbox the host controls. Deny by default: a guest sees the workspace read-only
//! at `/workspace` and nothing else of the host, reaches only granted hosts, runs only
//! granted programs, reads only granted environment variables, and is bounded in
//! memory, CPU time, wall-clock time and output. Every failure of a guest (trap,
//! timeout, limit, denied call) becomes an `error` verdict naming it; none takes the
//! host down.

mod bindings;
mod engine;
pub mod policy;
mod state;

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

use crate::verdict::{Diagnostic, Outcome, Verdict};
use bindings::predicate as pb;
use bindings::{PredicateComponent, ProfileAnswer, ProfileCall, ProfileComponent, ProfileOp};
use state::{GuestState, KvScope, Limiter, NetHooks};

/// Default wall-clock limit for one predicate evaluation.
pub const DEFAULT_PREDICATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for a profile call and for `describe`: they only translate data.
pub const DEFAULT_PROFILE_TIMEOUT: Duration = Duration::from_secs(5);
/// Where the workspace is mounted inside the guest.
pub const WORKSPACE_MOUNT: &str = "/workspace";

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
        "{label} targets {found}, but this kazi supports only {export}; hint: rebuild it against kazi-sdk {version}"
    )]
    UnsupportedVersion {
        label: String,
        found: String,
        export: &'static str,
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
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a component came from, for messages.
#[derive(Debug, Clone)]
pub struct Source {
    /// How to name it: `builtin file` or a path.
    pub label: String,
    pub bytes: Arc<[u8]>,
    /// sha256 of `bytes`, computed once and shared by every clone: a goal of 1,000
    /// predicates on one component hashes it once, not 1,000 times.
    digest: Arc<std::sync::OnceLock<String>>,
}

impl Source {
    /// A component from bytes with a label.
    pub fn new(label: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            label: label.into(),
            bytes: bytes.into(),
            digest: Arc::default(),
        }
    }

    /// The sha256 of the component's bytes, in hex.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| digest_hex(&self.bytes))
    }

    /// Read a component from a file.
    pub fn from_file(path: &Path) -> Result<Self, SandboxError> {
        let bytes = std::fs::read(path).map_err(|source| SandboxError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(path.display().to_string(), bytes))
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
    pub info: PredicateInfo,
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
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            timeout: DEFAULT_PREDICATE_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            predicate_id: "predicate".into(),
            iteration: 0,
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

        let mut predicate_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut predicate_linker).map_err(link_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut predicate_linker)
            .map_err(link_err)?;
        pb::Predicate::add_to_linker::<GuestState, HasSelf<GuestState>>(
            &mut predicate_linker,
            |s| s,
        )
        .map_err(link_err)?;

        let mut profile_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut profile_linker).map_err(link_err)?;
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

    /// Compile (or load from cache) and check a component of the given kind.
    fn compile(&self, source: &Source, kind: Kind) -> Result<(String, Component), SandboxError> {
        let label = source.label.clone();
        let bytes = &source.bytes;
        if !bytes.starts_with(b"\0asm") {
            return Err(SandboxError::NotWasm { label });
        }
        if bytes.len() >= 8 && bytes[4..8] == [1, 0, 0, 0] {
            return Err(SandboxError::CoreModule { label });
        }
        let digest = digest_hex(bytes);
        let component =
            self.cache
                .load(&self.engine, &digest, bytes)
                .map_err(|e| SandboxError::Invalid {
                    label: label.clone(),
                    reason: format!("{e:#}"),
                })?;
        check_world(&self.engine, &component, &label, kind)?;
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
        let mut store = self.store(
            &source.label,
            None,
            &EvalOptions {
                timeout: DEFAULT_PROFILE_TIMEOUT,
                ..EvalOptions::default()
            },
            None,
        )?;
        let describe_err = |reason: String| SandboxError::Describe {
            label: source.label.clone(),
            reason,
        };
        let d = run_bounded(DEFAULT_PROFILE_TIMEOUT, pre.describe(&mut store))
            .await
            .map_err(|e| describe_err(e.message(&store.data().limiter)))?;
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
            info: PredicateInfo {
                name: d.name,
                version: d.version,
                summary: d.summary,
                config_schema,
                capabilities,
            },
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
        run_bounded(opts.timeout, predicate.pre.validate(&mut store, &config))
            .await
            .map_err(|e| {
                format!(
                    "{}: `validate` {}",
                    predicate.label,
                    e.message(&store.data().limiter)
                )
            })
    }

    /// Build a fresh store for one call.
    fn store(
        &self,
        label: &str,
        workspace: Option<&Path>,
        opts: &EvalOptions,
        kv: Option<KvScope>,
    ) -> Result<Store<GuestState>, SandboxError> {
        let grants = Arc::new(opts.grants.clone());
        let denials = Arc::new(Mutex::new(Vec::new()));
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
        let data = GuestState {
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NetHooks {
                grants: grants.clone(),
                denials: denials.clone(),
            },
            limiter: Limiter {
                max_memory: opts.memory_bytes as usize,
                hit: false,
            },
            grants,
            denials,
            kv: kv.unwrap_or_default(),
            workspace: workspace.map(Path::to_path_buf),
            deadline: Instant::now() + opts.timeout,
            label: label.to_owned(),
            stdout,
            stderr,
            deadline_hit: None,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| &mut s.limiter);
        let ticks = opts
            .timeout
            .as_millis()
            .div_ceil(engine::EPOCH_TICK.as_millis()) as u64
            + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
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
    pub async fn evaluate(
        &self,
        predicate: &LoadedPredicate,
        workspace: &Path,
        config: &serde_json::Value,
        opts: &EvalOptions,
    ) -> Verdict {
        let who = format!("predicate `{}` ({})", opts.predicate_id, predicate.label);
        let kv = self.kv_scope(&predicate.digest, &opts.predicate_id);
        let mut store = match self.store(&predicate.label, Some(workspace), opts, Some(kv)) {
            Ok(s) => s,
            Err(e) => return Verdict::error(format!("{who}: {e}")),
        };
        let config = config.to_string();
        let result = run_bounded(
            opts.timeout,
            predicate.pre.evaluate(
                &mut store,
                &config,
                &opts.predicate_id,
                WORKSPACE_MOUNT,
                opts.iteration,
            ),
        )
        .await;
        let data = store.data();
        let denials = data.denials.lock().expect("denials lock").clone();
        let stderr_tail = tail_text(&data.stderr.contents(), 4096);
        let mut verdict = match result {
            Ok(v) => from_wit(v).bounded(),
            Err(e) => {
                let reason =
                    e.timeout_aware(opts.timeout, &data.limiter, &data.stdout, &data.stderr);
                let v = Verdict::error(format!("{who} {reason}"));
                if stderr_tail.is_empty() {
                    v
                } else {
                    v.with_details(format!("guest stderr:\n{stderr_tail}"))
                }
            }
        };
        let output_hit = data.stdout.contents().len() >= state::GUEST_OUTPUT_CAP
            || data.stderr.contents().len() >= state::GUEST_OUTPUT_CAP;
        if output_hit && !verdict.summary.contains("output limit") {
            // The guest may have handled the refused write and reported anything at all.
            verdict = Verdict::error(format!(
                "{who} exceeded its output limit: wrote more than {} MiB to its stdout or stderr",
                state::GUEST_OUTPUT_CAP >> 20
            ))
            .with_details(format!("what the guest reported: {}", verdict.summary));
        }
        if let Some(program) = &data.deadline_hit {
            verdict = Verdict::error(format!(
                "{who} timed out after {} (waiting for `{program}`)",
                humantime::format_duration(opts.timeout)
            ))
            .with_details(format!("what the guest reported: {}", verdict.summary));
        }
        if !denials.is_empty() {
            // A denied call is an error whatever the guest made of it (SPEC §3.1).
            let first = &denials[0];
            verdict.outcome = Outcome::Error;
            verdict.summary = format!("{who} was denied: {first}");
            let mut details = denials.join("\n");
            if !verdict.details.is_empty() {
                details.push_str("\n\n");
                details.push_str(&verdict.details);
            }
            verdict.details =
                crate::verdict::truncate_middle(&details, crate::verdict::MAX_DETAILS);
        }
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
        let result = run_bounded(opts.timeout, profile.pre.call(&mut store, op)).await;
        result.map_err(|e| {
            format!(
                "profile {} {}",
                profile.label,
                e.message(&store.data().limiter)
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
        let ProfileAnswer::Parse(r) = self.profile_call(profile, op).await? else {
            unreachable!("parse answers Parse")
        };
        Ok(AgentReport {
            result: r.result,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            tokens_cached: r.tokens_cached,
            cost_usd: r.cost_usd.filter(|c| c.is_finite() && *c >= 0.0),
            session_id: r.session_id,
            permission_denials: r.permission_denials,
            error: r.error,
            unparseable: r.unparseable,
        })
    }
}

/// Why a guest call did not return.
enum CallError {
    /// The wall-clock limit passed (for example inside a host call).
    WallClock(Duration),
    Wasm(wasmtime::Error),
}

impl CallError {
    fn message(&self, limiter: &Limiter) -> String {
        self.timeout_aware(
            Duration::ZERO,
            limiter,
            &MemoryOutputPipe::new(0),
            &MemoryOutputPipe::new(0),
        )
    }

    /// A reason that reads after the guest's name: "timed out after 2s", "trapped: …".
    fn timeout_aware(
        &self,
        timeout: Duration,
        limiter: &Limiter,
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
    ) -> String {
        let limit = humantime::format_duration(timeout);
        match self {
            CallError::WallClock(d) => {
                format!("timed out after {}", humantime::format_duration(*d))
            }
            CallError::Wasm(e) => {
                if limiter.hit {
                    return format!(
                        "exceeded its memory limit of {} MiB; hint: raise `limits.memory` if it really needs more",
                        limiter.max_memory >> 20
                    );
                }
                if stdout.contents().len() >= state::GUEST_OUTPUT_CAP
                    || stderr.contents().len() >= state::GUEST_OUTPUT_CAP
                {
                    return format!(
                        "exceeded its output limit: wrote more than {} MiB to its stdout or stderr",
                        state::GUEST_OUTPUT_CAP >> 20
                    );
                }
                match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => format!("timed out after {limit} (CPU time limit)"),
                    Some(Trap::StackOverflow) => {
                        "trapped: call stack exhausted (unbounded recursion?)".to_owned()
                    }
                    Some(trap) => format!("trapped: {trap}"),
                    None => format!("failed: {e:#}"),
                }
            }
        }
    }
}

impl From<wasmtime::Error> for CallError {
    fn from(e: wasmtime::Error) -> Self {
        CallError::Wasm(e)
    }
}

/// Run a guest future with a wall-clock limit on top of the epoch deadline (epochs do
/// not interrupt host calls). Dropping the future on expiry kills any child process
/// group the guest started.
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

/// Check that `component` exports the world `kind` expects, at the supported version,
/// with a message that says what it is instead.
fn check_world(
    engine: &Engine,
    component: &Component,
    label: &str,
    kind: Kind,
) -> Result<(), SandboxError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
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
            found: found.clone(),
            export: kind.export(),
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
        format!("a component exporting {}", exports.join(", "))
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
