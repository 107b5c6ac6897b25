//! The predicate side: [`Predicate`], [`Verdict`], the sandboxed [`Workspace`], and
//! the host's [`exec`] and [`kv`] imports. The config is any [`ConfigType`]: a type of
//! your own (its schema and checks come from it) or the untyped [`Config`].

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::__predicate_bindings::exports::kazi::predicate::evaluator as wit;
use crate::__predicate_bindings::kazi::host::types as wit_types;
use crate::config::{Config, ConfigError, ConfigType};
use crate::error::{Error, Result};

/// Where the host mounts the workspace inside the sandbox.
pub const WORKSPACE_MOUNT: &str = "/workspace";

/// A predicate component whose config is `C`: a type of your own deriving
/// `serde::Deserialize` and `schemars::JsonSchema` (`impl Predicate<MyConfig> for
/// MyCheck`), or the untyped [`Config`] (`impl Predicate for MyCheck`).
///
/// `describe` is called once at load (for the config schema and the capabilities to
/// grant); `validate` once at load, after the config matched its schema and was read
/// as `C`; `evaluate` once per observation in a fresh instance.
pub trait Predicate<C: ConfigType = Config> {
    /// Name, version, summary and requested capabilities. Leave `config_schema` out
    /// (null): it comes from `C`.
    fn describe() -> Description;

    /// Checks the type cannot express, without I/O: a regex that does not compile, a
    /// path that leaves the workspace, keys that contradict each other. Each error
    /// names its key ([`ConfigError::at`]) and becomes a load error at that key's line
    /// in the goal file. The default finds nothing wrong.
    fn validate(config: &C) -> Vec<ConfigError> {
        let _ = config;
        Vec::new()
    }

    /// Evaluate once. An `Err` becomes an `error` verdict with its message.
    fn evaluate(config: C, cx: &Context) -> Result<Verdict>;
}

/// Every problem with `config` that kazi reports when it loads a goal: the config's
/// schema, reading it as `C`, then [`Predicate::validate`]. Empty means valid; call it
/// from native tests. (The exported `validate` skips building the schema for a config
/// that reads as `C`, and kazi checks the schema itself, so a goal gets the same
/// problems, the schema's perhaps one round after the predicate's own.)
pub fn check_config<P: Predicate<C>, C: ConfigType>(config: &Value) -> Vec<ConfigError> {
    __predicate_private::check::<P, C>(&config.to_string())
}

/// What a predicate declares about itself.
#[derive(Debug, Clone, Default)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// JSON Schema of the config object. Null (the default) means the schema of the
    /// predicate's config type; set it only for an untyped [`Config`].
    pub config_schema: Value,
    pub capabilities: Capabilities,
}

/// Capabilities a predicate asks the goal to grant.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub exec: Vec<String>,
    pub net: Vec<String>,
    pub env: Vec<String>,
    pub fs_write: bool,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

/// One finding tied to a file and line.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: String,
}

/// The result of an evaluation with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub summary: String,
    pub details: String,
    pub diagnostics: Vec<Diagnostic>,
    pub score: Option<f64>,
    pub metrics: Vec<(String, f64)>,
}

impl Verdict {
    fn new(outcome: Outcome, summary: impl Into<String>) -> Self {
        Self {
            outcome,
            summary: summary.into(),
            details: String::new(),
            diagnostics: Vec::new(),
            score: None,
            metrics: Vec::new(),
        }
    }

    /// The predicate holds.
    pub fn pass(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Pass, summary)
    }

    /// The predicate does not hold.
    pub fn fail(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Fail, summary)
    }

    /// The predicate could not be evaluated.
    pub fn error(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Error, summary)
    }

    /// Longer evidence (output, a diff); the host keeps its head and tail.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Add a finding.
    pub fn with_diagnostic(
        mut self,
        file: Option<&str>,
        line: Option<u32>,
        message: impl Into<String>,
    ) -> Self {
        self.diagnostics.push(Diagnostic {
            file: file.map(str::to_owned),
            line,
            message: message.into(),
        });
        self
    }

    /// A progress score (higher is better).
    pub fn with_score(mut self, score: f64) -> Self {
        self.score = Some(score);
        self
    }

    /// A named measurement, such as `tests_passed`.
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push((name.into(), value));
        self
    }
}

/// What the host tells the predicate about this evaluation.
#[derive(Debug, Clone)]
pub struct Context {
    /// The predicate's id in the goal.
    pub predicate_id: String,
    /// 0-based observation number.
    pub iteration: u32,
    workspace: Workspace,
}

impl Context {
    /// A context over a workspace root; the host passes `/workspace`. Useful in native tests.
    pub fn new(predicate_id: impl Into<String>, iteration: u32, root: impl Into<PathBuf>) -> Self {
        Self {
            predicate_id: predicate_id.into(),
            iteration,
            workspace: Workspace { root: root.into() },
        }
    }

    /// The workspace, read-only unless the goal granted `fs = "write"`.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }
}

/// The workspace as the sandbox shows it. Paths are relative to its root; absolute
/// paths and `..` that would leave it are refused before any I/O (the sandbox refuses
/// them too, this only makes the message clearer).
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The root directory (`/workspace` inside the sandbox).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolve a workspace-relative path.
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        Self::check_relative(rel)?;
        Ok(self.root.join(rel))
    }

    /// Check, without any I/O, that `rel` is relative and stays inside the workspace
    /// (`a/../b` is fine, `../b` and `/etc` are not).
    pub fn check_relative(rel: &str) -> Result<()> {
        let p = Path::new(rel);
        let mut depth: i32 = 0;
        for c in p.components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(Error::new(format!("path `{rel}` leaves the workspace")));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(Error::new(format!(
                        "path `{rel}` is absolute; use a path relative to the workspace"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Read a file as bytes.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.path(rel)?;
        std::fs::read(&p).map_err(|e| Error::new(format!("cannot read `{rel}`: {e}")))
    }

    /// Read a file as UTF-8 text.
    pub fn read_to_string(&self, rel: &str) -> Result<String> {
        let p = self.path(rel)?;
        std::fs::read_to_string(&p).map_err(|e| Error::new(format!("cannot read `{rel}`: {e}")))
    }

    /// Whether a file or directory exists.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        Ok(self.path(rel)?.exists())
    }

    /// Every regular file under the workspace (or under `rel`), as sorted
    /// workspace-relative paths with `/` separators. Symlinks are not followed.
    pub fn files(&self, rel: &str) -> Result<Vec<String>> {
        let start = self.path(rel)?;
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::new(format!("cannot list `{}`: {e}", dir.display()))),
            };
            for entry in entries {
                let entry = entry?;
                let ty = entry.file_type()?;
                let path = entry.path();
                if ty.is_dir() {
                    stack.push(path);
                } else if ty.is_file()
                    && let Ok(rel) = path.strip_prefix(&self.root)
                {
                    let parts: Vec<_> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect();
                    out.push(parts.join("/"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Write a file; only works when the goal granted `fs = "write"`.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        let p = self.path(rel)?;
        std::fs::write(&p, contents).map_err(|e| Error::new(format!("cannot write `{rel}`: {e}")))
    }
}

/// Running a program the goal granted (`[predicate.allow] exec`), through the host.
pub mod exec {
    use std::time::Duration;

    use crate::__predicate_bindings::kazi::host::exec as wit;

    /// A program to run: argv only, never through a shell.
    #[derive(Debug, Clone, Default)]
    pub struct Command {
        program: String,
        args: Vec<String>,
        cwd: Option<String>,
        env: Vec<(String, String)>,
        timeout: Option<Duration>,
    }

    /// What the program did.
    #[derive(Debug, Clone)]
    pub struct Output {
        /// Exit code; `None` when killed (by a signal or at the timeout).
        pub status: Option<i32>,
        pub stdout: Vec<u8>,
        pub stderr: Vec<u8>,
        /// Output was cut at the host's cap.
        pub truncated: bool,
        /// The host killed the process group at the timeout.
        pub timed_out: bool,
        pub duration: Duration,
    }

    impl Output {
        /// Whether the program exited with code 0.
        pub fn success(&self) -> bool {
            self.status == Some(0)
        }
        /// stdout as text (lossy).
        pub fn stdout_text(&self) -> String {
            String::from_utf8_lossy(&self.stdout).into_owned()
        }
        /// stderr as text (lossy).
        pub fn stderr_text(&self) -> String {
            String::from_utf8_lossy(&self.stderr).into_owned()
        }
    }

    /// Why a program did not run.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ExecError {
        /// Not in the goal's grant.
        Denied(String),
        /// Granted but not on PATH.
        NotFound(String),
        /// A bad request (cwd outside the workspace, NUL in an argument).
        Invalid(String),
        /// Spawning or waiting failed.
        Io(String),
    }

    impl std::fmt::Display for ExecError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                ExecError::Denied(m) => write!(f, "exec denied: {m}"),
                ExecError::NotFound(m) => write!(f, "program not found: {m}"),
                ExecError::Invalid(m) => write!(f, "invalid exec request: {m}"),
                ExecError::Io(m) => write!(f, "exec failed: {m}"),
            }
        }
    }

    impl std::error::Error for ExecError {}

    impl From<ExecError> for crate::Error {
        fn from(e: ExecError) -> Self {
            crate::Error::new(e.to_string())
        }
    }

    impl Command {
        /// A command running `program`, resolved on the host's PATH.
        pub fn new(program: impl Into<String>) -> Self {
            Self {
                program: program.into(),
                ..Self::default()
            }
        }
        /// Append one argument.
        pub fn arg(mut self, arg: impl Into<String>) -> Self {
            self.args.push(arg.into());
            self
        }
        /// Append arguments.
        pub fn args<I, S>(mut self, args: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.args.extend(args.into_iter().map(Into::into));
            self
        }
        /// Working directory relative to the workspace root.
        pub fn cwd(mut self, dir: impl Into<String>) -> Self {
            self.cwd = Some(dir.into());
            self
        }
        /// Set an environment variable for the program.
        pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.env.push((key.into(), value.into()));
            self
        }
        /// Wall-clock limit (the host caps it at its own).
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.timeout = Some(timeout);
            self
        }

        /// Run it and wait.
        pub fn run(&self) -> Result<Output, ExecError> {
            let cmd = wit::Command {
                program: self.program.clone(),
                args: self.args.clone(),
                cwd: self.cwd.clone(),
                env: self.env.clone(),
                timeout_ms: self.timeout.map(|d| d.as_millis() as u64),
            };
            match wit::run(&cmd) {
                Ok(o) => Ok(Output {
                    status: o.status,
                    stdout: o.stdout,
                    stderr: o.stderr,
                    truncated: o.truncated,
                    timed_out: o.timed_out,
                    duration: Duration::from_millis(o.duration_ms),
                }),
                Err(wit::ExecError::Denied(m)) => Err(ExecError::Denied(m)),
                Err(wit::ExecError::NotFound(m)) => Err(ExecError::NotFound(m)),
                Err(wit::ExecError::Invalid(m)) => Err(ExecError::Invalid(m)),
                Err(wit::ExecError::Io(m)) => Err(ExecError::Io(m)),
            }
        }
    }
}

/// State that survives between evaluations of one predicate within a run.
pub mod kv {
    use crate::__predicate_bindings::kazi::host::kv as wit;

    /// The stored value, if any.
    pub fn get(key: &str) -> Option<Vec<u8>> {
        wit::get(key)
    }
    /// Store a value.
    pub fn set(key: &str, value: &[u8]) {
        wit::set(key, value)
    }
    /// Forget a value.
    pub fn delete(key: &str) {
        wit::delete(key)
    }
}

#[doc(hidden)]
pub mod __predicate_private {
    use super::*;

    pub use crate::__predicate_bindings::exports::kazi::predicate::evaluator::Guest;
    pub use wit::{
        ConfigError as WitConfigError, Context as WitContext, Description as WitDescription,
    };
    pub use wit_types::Verdict as WitVerdict;

    /// The schema the predicate declares, else its config type's.
    fn schema<C: ConfigType>(declared: Value) -> Value {
        if declared.is_null() {
            C::schema()
        } else {
            declared
        }
    }

    pub fn describe<P: Predicate<C>, C: ConfigType>() -> WitDescription {
        let d = P::describe();
        WitDescription {
            name: d.name,
            version: d.version,
            summary: d.summary,
            config_schema: schema::<C>(d.config_schema).to_string(),
            capabilities: wit::Capabilities {
                exec: d.capabilities.exec,
                net: d.capabilities.net,
                env: d.capabilities.env,
                fs_write: d.capabilities.fs_write,
            },
        }
    }

    /// The checks of a config: its schema, reading it as `C`, then `P::validate`.
    pub fn check<P: Predicate<C>, C: ConfigType>(config: &str) -> Vec<ConfigError> {
        let value = match serde_json::from_str::<Value>(config) {
            Ok(v) => v,
            Err(e) => return vec![ConfigError::new(format!("is not JSON: {e}"))],
        };
        let schema = schema::<C>(P::describe().config_schema);
        match crate::config::check::<C>(&schema, value) {
            Ok(c) => P::validate(&c),
            Err(errors) => errors,
        }
    }

    /// The exported check: a config that reads as `C` goes straight to
    /// `P::validate` (kazi checks it against the schema itself, natively); one that
    /// does not gets the full check, which builds the schema to report every problem
    /// with its place. Building the schema is most of a check's cost, and most
    /// configs are valid.
    fn quick_check<P: Predicate<C>, C: ConfigType>(config: &str) -> Vec<ConfigError> {
        let value = match serde_json::from_str::<Value>(config) {
            Ok(v) => v,
            Err(e) => return vec![ConfigError::new(format!("is not JSON: {e}"))],
        };
        match C::from_value(value) {
            Ok(c) => P::validate(&c),
            Err(_) => check::<P, C>(config),
        }
    }

    pub fn validate<P: Predicate<C>, C: ConfigType>(
        config: String,
    ) -> std::result::Result<(), Vec<WitConfigError>> {
        let errors = quick_check::<P, C>(&config);
        if errors.is_empty() {
            return Ok(());
        }
        Err(errors
            .into_iter()
            .map(|e| WitConfigError {
                pointer: e.pointer,
                message: e.message,
                hint: e.hint,
            })
            .collect())
    }

    pub fn evaluate<P: Predicate<C>, C: ConfigType>(config: String, cx: WitContext) -> WitVerdict {
        let cx = Context::new(cx.predicate_id, cx.iteration, cx.workspace);
        let verdict = match C::from_json(&config) {
            Ok(c) => P::evaluate(c, &cx).unwrap_or_else(|e| Verdict::error(e.message())),
            Err(e) => Verdict::error(e.to_string()),
        };
        to_wit(verdict)
    }

    fn to_wit(v: Verdict) -> WitVerdict {
        WitVerdict {
            outcome: match v.outcome {
                Outcome::Pass => wit_types::Outcome::Pass,
                Outcome::Fail => wit_types::Outcome::Fail,
                Outcome::Error => wit_types::Outcome::Error,
            },
            evidence: wit_types::Evidence {
                summary: v.summary,
                details: v.details,
                diagnostics: v
                    .diagnostics
                    .into_iter()
                    .map(|d| wit_types::Diagnostic {
                        file: d.file,
                        line: d.line,
                        message: d.message,
                    })
                    .collect(),
                score: v.score,
                metrics: v
                    .metrics
                    .into_iter()
                    .map(|(name, value)| wit_types::Metric { name, value })
                    .collect(),
            },
        }
    }
}

/// Export a [`Predicate`] implementation as the component's `kazi:predicate/evaluator`.
#[macro_export]
macro_rules! export_predicate {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __KaziPredicateExport;
        impl $crate::__predicate_private::Guest for __KaziPredicateExport {
            fn describe() -> $crate::__predicate_private::WitDescription {
                $crate::__predicate_private::describe::<$ty, _>()
            }
            fn validate(
                config: ::std::string::String,
            ) -> ::std::result::Result<
                (),
                ::std::vec::Vec<$crate::__predicate_private::WitConfigError>,
            > {
                $crate::__predicate_private::validate::<$ty, _>(config)
            }
            fn evaluate(
                config: ::std::string::String,
                cx: $crate::__predicate_private::WitContext,
            ) -> $crate::__predicate_private::WitVerdict {
                $crate::__predicate_private::evaluate::<$ty, _>(config, cx)
            }
        }
        // Component exports only for wasm: their names (`kazi:predicate/…`) are not valid
        // symbols for a native linker, and native builds exist only for unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::__predicate_bindings::__export_predicate_world!(__KaziPredicateExport);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_relative_refuses_escapes() {
        assert!(Workspace::check_relative("a/b.txt").is_ok());
        assert!(Workspace::check_relative("./a/../b").is_ok());
        let err = Workspace::check_relative("../x").unwrap_err();
        assert_eq!(err.message(), "path `../x` leaves the workspace");
        let err = Workspace::check_relative("/etc/passwd").unwrap_err();
        assert!(err.message().contains("is absolute"));
    }
}
