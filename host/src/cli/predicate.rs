//! `kazi predicate eval | new | build | test`: evaluate one predicate component once,
//! scaffold a predicate crate, build it into a component, and build-then-evaluate.
//! `eval` and `test` share one evaluation path (`EvalFlags`, `evaluate_loaded`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use super::output::Printer;
use crate::authoring::scaffold::{self, BuildError, ScaffoldError};
use crate::authoring::sdk::{self, Dependency, Sdk, SdkError};
use crate::builtins;
use crate::exit;
use crate::sandbox::{EvalOptions, Grants, LoadedPredicate, Sandbox, SandboxError, Source};
use crate::verdict::Outcome;

#[derive(Debug, Subcommand)]
pub enum PredicateCommand {
    /// Evaluate one predicate once against a workspace and print its verdict.
    ///
    /// Exits 0 on pass, 1 on fail or error, 2 on a usage error, 5 when the component
    /// cannot be loaded.
    Eval(EvalArgs),
    /// Create a predicate crate: an example predicate with its config schema, native
    /// tests, a README, and a copy of kazi-sdk (in kazi-sdk/) that it builds against.
    ///
    /// Exits 0 when created, 1 when the directory is not empty, 2 on a bad name.
    New(NewArgs),
    /// Build a predicate crate into a component (`cargo build --release --target
    /// wasm32-wasip2`) and check that kazi can load it.
    ///
    /// Prints the component's path, size and sha256. Exits 0 when built, 1 when cargo
    /// cannot be run, 2 on a usage error, 5 when the crate does not build into a
    /// predicate kazi can load.
    Build(BuildArgs),
    /// Build a predicate crate, then evaluate it once, exactly like `kazi predicate eval`.
    ///
    /// Build progress goes to stderr; stdout and the exit code are those of `eval`:
    /// 0 on pass, 1 on fail or error, 2 on a usage error, 5 when the crate does not
    /// build into a predicate kazi can load.
    Test(TestArgs),
    /// Compare a crate's copy of kazi-sdk with the one this kazi carries, or replace it.
    ///
    /// A crate keeps the SDK it was created with; a newer kazi never changes it. Exits
    /// 0 when they are the same (or after --update), 1 when they differ, 2 on a usage
    /// error.
    Sdk(SdkArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A builtin predicate name (`file`) or a path to a `.wasm` component.
    source: String,
    #[command(flatten)]
    eval: EvalFlags,
}

/// How to evaluate once: shared by `eval` and `test`.
#[derive(Debug, Args)]
pub struct EvalFlags {
    /// The workspace the predicate reads (mounted read-only at /workspace).
    #[arg(long, short = 'w', default_value = ".")]
    workspace: PathBuf,
    /// The predicate's config, a JSON object.
    #[arg(long, default_value = "{}")]
    config: String,
    /// Grant HTTP access to HOST:PORT (repeatable). localhost, 127.0.0.1 and [::1] are one host.
    #[arg(long = "allow-net", value_name = "HOST:PORT")]
    allow_net: Vec<String>,
    /// Grant running PROGRAM, resolved on PATH (repeatable).
    #[arg(long = "allow-exec", value_name = "PROGRAM")]
    allow_exec: Vec<String>,
    /// Grant reading the environment variable NAME (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    allow_env: Vec<String>,
    /// Mount the workspace writable.
    #[arg(long = "allow-write")]
    allow_write: bool,
    /// Wall-clock and CPU limit for the evaluation, like `30s` or `2m`.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    timeout: Duration,
    /// Memory limit in MiB.
    #[arg(long = "memory-mib", default_value_t = 256)]
    memory_mib: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The predicate's name: a lower-case letter, then lower-case letters, digits and `-`.
    name: String,
    /// Where to create the crate (default: ./NAME); it must be missing or empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The predicate crate's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The predicate crate's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    eval: EvalFlags,
}

#[derive(Debug, Args)]
pub struct SdkArgs {
    /// The predicate crate's directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Replace the crate's copy with this kazi's SDK.
    #[arg(long)]
    update: bool,
}

/// Parse a humane duration (`90s`, `30m`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `90s`, `30m`, `2h`"))
}

pub async fn run(cmd: PredicateCommand, printer: &Printer) -> Result<u8, CliError> {
    match cmd {
        PredicateCommand::Eval(args) => eval(args, printer).await,
        PredicateCommand::New(args) => new(args, printer),
        PredicateCommand::Build(args) => build(args, printer).await,
        PredicateCommand::Test(args) => test(args, printer).await,
        PredicateCommand::Sdk(args) => sdk(args, printer),
    }
}

/// Resolve SOURCE: a builtin name or a component file.
pub fn resolve_source(source: &str) -> Result<Source, CliError> {
    if let Some(s) = builtins::predicate(source) {
        return Ok(s);
    }
    let path = PathBuf::from(source);
    if path.is_file() {
        return Source::from_file(&path).map_err(|e| CliError::Invalid(e.to_string()));
    }
    Err(CliError::Invalid(format!(
        "failed to load predicate `{source}`: it is neither a builtin ({}) nor a file; hint: pass a path to a .wasm component",
        builtins::predicate_names().join(", ")
    )))
}

/// [`EvalFlags`], checked.
struct Prepared {
    config: serde_json::Value,
    workspace: PathBuf,
    grants: Grants,
    timeout: Duration,
    memory_bytes: u64,
    json: bool,
}

impl EvalFlags {
    /// Check the flags (usage errors) before anything is loaded or built.
    fn prepare(&self) -> Result<Prepared, CliError> {
        let config: serde_json::Value = serde_json::from_str(&self.config)
            .map_err(|e| CliError::Usage(format!("--config is not valid JSON: {e}")))?;
        if !config.is_object() {
            return Err(CliError::Usage(format!(
                "--config must be a JSON object, got `{}`",
                self.config
            )));
        }
        let workspace = self.workspace.canonicalize().map_err(|e| {
            CliError::Usage(format!(
                "workspace {} is not usable: {e}",
                self.workspace.display()
            ))
        })?;
        if !workspace.is_dir() {
            return Err(CliError::Usage(format!(
                "workspace {} is not a directory",
                workspace.display()
            )));
        }
        let mut grants = Grants::default();
        for n in &self.allow_net {
            grants
                .allow_net(n)
                .map_err(|e| CliError::Usage(format!("--allow-net {e}")))?;
        }
        grants.exec.extend(self.allow_exec.iter().cloned());
        grants.env.extend(self.allow_env.iter().cloned());
        grants.fs_write = self.allow_write;
        Ok(Prepared {
            config,
            workspace,
            grants,
            timeout: self.timeout,
            memory_bytes: self.memory_mib.saturating_mul(1 << 20),
            json: self.json,
        })
    }
}

fn sandbox() -> Result<Sandbox, CliError> {
    Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))
}

fn load_error(e: SandboxError) -> CliError {
    CliError::Invalid(format!("failed to load the predicate: {e}"))
}

async fn eval(args: EvalArgs, printer: &Printer) -> Result<u8, CliError> {
    let prepared = args.eval.prepare()?;
    // `describe` runs under the same memory budget as the evaluation.
    let source = resolve_source(&args.source)?.with_limits(crate::sandbox::LoadLimits {
        memory_bytes: prepared.memory_bytes,
        ..crate::sandbox::LoadLimits::default()
    });
    let sandbox = sandbox()?;
    let predicate = sandbox.load_predicate(&source).await.map_err(load_error)?;
    Ok(evaluate_loaded(&sandbox, &predicate, &prepared, printer).await)
}

/// Evaluate a loaded predicate once, print the verdict, return the exit code: the
/// one evaluation path of `eval` and `test`.
async fn evaluate_loaded(
    sandbox: &Sandbox,
    predicate: &LoadedPredicate,
    prepared: &Prepared,
    printer: &Printer,
) -> u8 {
    // The config is checked as a goal's would be at load: a bad one is exit 5.
    if let Err(message) =
        crate::goal::check_predicate_config(sandbox, predicate, &prepared.config).await
    {
        printer.error(&message);
        return exit::INVALID;
    }
    let opts = EvalOptions {
        grants: prepared.grants.clone(),
        timeout: prepared.timeout,
        memory_bytes: prepared.memory_bytes,
        predicate_id: predicate.info.name.clone(),
        iteration: 0,
        exec_share: None,
    };
    let verdict = sandbox
        .evaluate(predicate, &prepared.workspace, &prepared.config, &opts)
        .await;
    if prepared.json {
        printer.json(&serde_json::to_value(&verdict).expect("verdicts serialise"));
    } else {
        printer.verdict(&opts.predicate_id, &verdict);
    }
    if verdict.outcome == Outcome::Pass {
        exit::SUCCESS
    } else {
        exit::NOT_CONVERGED
    }
}

fn new(args: NewArgs, printer: &Printer) -> Result<u8, CliError> {
    scaffold::validate_name(&args.name).map_err(|e| CliError::Usage(e.to_string()))?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = Sdk::embedded().map_err(|e| CliError::Failed(e.to_string()))?;
    let files = scaffold::create(&dir, &args.name, &sdk).map_err(|e| match e {
        ScaffoldError::InvalidName { .. } => CliError::Usage(e.to_string()),
        ScaffoldError::NotEmpty { .. } | ScaffoldError::Write { .. } | ScaffoldError::Sdk(_) => {
            CliError::Failed(e.to_string())
        }
    })?;
    printer.out(&format!(
        "created predicate crate `{}` in {}",
        args.name,
        dir.display()
    ));
    printer.out(&format!("  {}", files.join(", ")));
    printer.out(&format!(
        "  {}/: {}, copied from this kazi",
        sdk::DIR,
        sdk.describe()
    ));
    printer.out("next:");
    printer.out(&format!("  cd {}", super::init::shell_word(&dir)));
    printer.out("  cargo test             # the native unit tests");
    printer.out("  kazi predicate build   # the component, checked");
    printer.out(r#"  kazi predicate test -w . --config '{"path":"README.md","text":"kazi"}'"#);
    printer.out("to share it as a package (docs/packages.md):");
    printer.out(r#"  kazi pkg init --namespace NAMESPACE --description "..." --license SPDX"#);
    printer.out("  kazi pkg build");
    Ok(exit::SUCCESS)
}

fn sdk_error(e: SdkError) -> CliError {
    match e {
        SdkError::NoCrate { .. } | SdkError::NotACopy { .. } => CliError::Usage(e.to_string()),
        SdkError::Embedded { .. }
        | SdkError::NotSdk { .. }
        | SdkError::Read { .. }
        | SdkError::Write { .. } => CliError::Failed(e.to_string()),
    }
}

fn sdk(args: SdkArgs, printer: &Printer) -> Result<u8, CliError> {
    let ours = Sdk::embedded().map_err(sdk_error)?;
    if args.update {
        let dir = sdk::replace(&args.dir, &ours).map_err(sdk_error)?;
        printer.out(&format!("wrote {} to {}", ours.describe(), dir.display()));
        printer.progress("review the change with your version control, then `cargo test`");
        return Ok(exit::SUCCESS);
    }
    let (written, dir) = match sdk::dependency(&args.dir).map_err(sdk_error)? {
        Dependency::Path { written, dir } => (written, dir),
        Dependency::Other(entry) => {
            printer.out(&format!("crate      kazi-sdk = {entry}"));
            printer.out(&format!("this kazi  {}", ours.describe()));
            printer.progress("the crate does not use a copy of the SDK; nothing to compare");
            return Ok(exit::SUCCESS);
        }
        Dependency::Missing => {
            return Err(CliError::Usage(format!(
                "{} does not depend on kazi-sdk; hint: pass a predicate crate's directory",
                args.dir.join("Cargo.toml").display()
            )));
        }
    };
    let theirs = match dir.is_dir() {
        true => Some(Sdk::read(&dir).map_err(sdk_error)?),
        false => None,
    };
    printer.out(&format!(
        "crate      {} ({written})",
        theirs
            .as_ref()
            .map_or("kazi-sdk: missing".to_owned(), Sdk::describe)
    ));
    printer.out(&format!("this kazi  {}", ours.describe()));
    if theirs.as_ref().is_some_and(|t| t.digest() == ours.digest()) {
        printer.out("the same");
        return Ok(exit::SUCCESS);
    }
    printer.out("different");
    printer.progress(&format!(
        "the crate keeps its copy until you replace it: `kazi predicate sdk {} --update` writes this kazi's SDK to {}",
        super::init::shell_word(&args.dir),
        dir.display()
    ));
    Ok(exit::NOT_CONVERGED)
}

fn build_error(e: BuildError) -> CliError {
    match e {
        BuildError::NoManifest { .. } | BuildError::NoPackage { .. } => {
            CliError::Usage(e.to_string())
        }
        BuildError::Spawn { .. } | BuildError::Read { .. } => CliError::Failed(e.to_string()),
        BuildError::Metadata { .. }
        | BuildError::NoCdylib { .. }
        | BuildError::Cargo { .. }
        | BuildError::NotComponent { .. } => CliError::Invalid(e.to_string()),
    }
}

/// A built and loaded predicate.
struct Component {
    path: PathBuf,
    size: usize,
    predicate: LoadedPredicate,
}

/// Build the crate in `dir` and load the component: world, WIT version and
/// `describe` are checked by the sandbox, as for any predicate.
async fn build_and_load(
    dir: &Path,
    sandbox: &Sandbox,
    printer: &Printer,
) -> Result<Component, CliError> {
    let krate = scaffold::inspect(dir).map_err(build_error)?;
    if let Ok(ours) = Sdk::embedded()
        && let Some(theirs) = sdk::drift(&krate.dir, &ours)
    {
        printer.notice(&format!(
            "`{}` builds against its own {}; this kazi carries {} (`kazi predicate sdk --update` moves it)",
            krate.package,
            theirs.describe(),
            ours.describe()
        ));
    }
    printer.progress(&format!(
        "building `{}` for {} in {}",
        krate.package,
        scaffold::TARGET,
        krate.dir.display()
    ));
    let built = scaffold::build(&krate).map_err(build_error)?;
    let size = built.bytes.len();
    let source = Source::new(built.path.display().to_string(), built.bytes);
    let predicate = sandbox.load_predicate(&source).await.map_err(load_error)?;
    Ok(Component {
        path: built.path,
        size,
        predicate,
    })
}

/// `1.2 MiB (1234567 bytes)`.
fn human_size(bytes: usize) -> String {
    let b = bytes as f64;
    let short = if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", b / 1024.0)
    };
    format!("{short} ({bytes} bytes)")
}

async fn build(args: BuildArgs, printer: &Printer) -> Result<u8, CliError> {
    let sandbox = sandbox()?;
    let c = build_and_load(&args.dir, &sandbox, printer).await?;
    let info = &c.predicate.info;
    printer.out(&format!(
        "built predicate `{}` {}: {}",
        info.name, info.version, info.summary
    ));
    printer.out(&format!("  component  {}", c.path.display()));
    printer.out(&format!("  size       {}", human_size(c.size)));
    printer.out(&format!("  sha256     {}", c.predicate.digest));
    Ok(exit::SUCCESS)
}

async fn test(args: TestArgs, printer: &Printer) -> Result<u8, CliError> {
    let prepared = args.eval.prepare()?;
    let sandbox = sandbox()?;
    let c = build_and_load(&args.dir, &sandbox, printer).await?;
    printer.progress(&format!(
        "built {}: {} bytes, sha256 {}",
        c.path.display(),
        c.size,
        c.predicate.digest
    ));
    Ok(evaluate_loaded(&sandbox, &c.predicate, &prepared, printer).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_kib_and_mib() {
        assert_eq!(human_size(512), "0.5 KiB (512 bytes)");
        assert_eq!(human_size(3 << 20), "3.0 MiB (3145728 bytes)");
    }
}
