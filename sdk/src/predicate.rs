//! The predicate side: [`Predicate`], [`Verdict`], [`Config`], the sandboxed
//! [`Workspace`], and the host's [`exec`] and [`kv`] imports.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::__predicate_bindings::exports::kazi::predicate::evaluator as wit;
use crate::__predicate_bindings::kazi::host::types as wit_types;
use crate::error::{Error, Result};

/// Where the host mounts the workspace inside the sandbox.
pub const WORKSPACE_MOUNT: &str = "/workspace";

/// A predicate component. `describe` is called once at load (for the config schema and
/// the capabilities to grant), `evaluate` once per observation in a fresh instance.
pub trait Predicate {
    /// Name, version, config schema and requested capabilities.
    fn describe() -> Description;
    /// Evaluate once. An `Err` becomes an `error` verdict with its message.
    fn evaluate(config: Config, cx: &Context) -> Result<Verdict>;
}

/// What a predicate declares about itself.
#[derive(Debug, Clone, Default)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// JSON Schema of the config object.
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

/// The predicate's config: the JSON object from the goal.
#[derive(Debug, Clone)]
pub struct Config(Value);

impl Config {
    /// Wrap a JSON value (an object).
    pub fn new(value: Value) -> Self {
        Self(value)
    }

    /// The whole config.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The config as a JSON object; any other JSON value is an error.
    pub fn object(&self) -> Result<&serde_json::Map<String, Value>> {
        self.0.as_object().ok_or_else(|| {
            Error::new(format!(
                "config: must be a JSON object of keys, got {}",
                crate::text::truncate(&self.0.to_string(), 60)
            ))
        })
    }

    /// Refuse keys outside `known`, naming the first unknown key and, when one of
    /// `known` is close, with a `hint: did you mean …`.
    pub fn deny_unknown_keys(&self, known: &[&str]) -> Result<()> {
        for key in self.object()?.keys() {
            if !known.contains(&key.as_str()) {
                return Err(unknown_key_error(key, known));
            }
        }
        Ok(())
    }

    /// A key's raw value, if present and not null.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional string key; a value of another type is an error naming the key.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(key, "a string", other)),
        }
    }

    /// A required string key.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.str(key)?
            .ok_or_else(|| Error::new(format!("config: missing required key `{key}`")))
    }

    /// An optional boolean key.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error(key, "a boolean", other)),
        }
    }

    /// An optional non-negative integer key.
    pub fn u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_error(key, "a non-negative integer", v)),
        }
    }

    /// An optional list of strings.
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| type_error(key, "a list of strings", i))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(type_error(key, "a list of strings", other)),
        }
    }
}

/// The error for a config key outside `known`, with a "did you mean" hint when one is close.
pub fn unknown_key_error(key: &str, known: &[&str]) -> Error {
    match crate::text::did_you_mean(key, known.iter().copied()) {
        Some(close) => Error::new(format!(
            "config: unknown key `{key}`; hint: did you mean `{close}`?"
        )),
        None => Error::new(format!(
            "config: unknown key `{key}`; hint: the known keys are {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn type_error(key: &str, expected: &str, got: &Value) -> Error {
    Error::new(format!("config: `{key}` must be {expected}, got {got}"))
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
    pub use wit::{Context as WitContext, Description as WitDescription};
    pub use wit_types::Verdict as WitVerdict;

    pub fn describe<P: Predicate>() -> WitDescription {
        let d = P::describe();
        WitDescription {
            name: d.name,
            version: d.version,
            summary: d.summary,
            config_schema: d.config_schema.to_string(),
            capabilities: wit::Capabilities {
                exec: d.capabilities.exec,
                net: d.capabilities.net,
                env: d.capabilities.env,
                fs_write: d.capabilities.fs_write,
            },
        }
    }

    pub fn evaluate<P: Predicate>(config: String, cx: WitContext) -> WitVerdict {
        let cx = Context::new(cx.predicate_id, cx.iteration, cx.workspace);
        let verdict = match serde_json::from_str::<Value>(&config) {
            Ok(v) => {
                P::evaluate(Config::new(v), &cx).unwrap_or_else(|e| Verdict::error(e.message()))
            }
            Err(e) => Verdict::error(format!("config is not JSON: {e}")),
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
                $crate::__predicate_private::describe::<$ty>()
            }
            fn evaluate(
                config: ::std::string::String,
                cx: $crate::__predicate_private::WitContext,
            ) -> $crate::__predicate_private::WitVerdict {
                $crate::__predicate_private::evaluate::<$ty>(config, cx)
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
    use serde_json::json;

    #[test]
    fn deny_unknown_keys_names_the_key_and_hints() {
        let cfg = Config::new(json!({"path": "a", "contians": "x"}));
        let err = cfg.deny_unknown_keys(&["path", "contains"]).unwrap_err();
        assert_eq!(
            err.message(),
            "config: unknown key `contians`; hint: did you mean `contains`?"
        );
        let cfg = Config::new(json!({"zzz": 1}));
        let err = cfg.deny_unknown_keys(&["path", "glob"]).unwrap_err();
        assert_eq!(
            err.message(),
            "config: unknown key `zzz`; hint: the known keys are `path`, `glob`"
        );
        assert!(
            Config::new(json!({"path": "a"}))
                .deny_unknown_keys(&["path"])
                .is_ok()
        );
    }

    #[test]
    fn config_must_be_an_object() {
        let err = Config::new(json!([1, 2])).object().unwrap_err();
        assert!(err.message().starts_with("config: must be a JSON object"));
    }

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
