//! `kazi predicate eval`: evaluate one predicate component once.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use super::output::Printer;
use crate::builtins;
use crate::exit;
use crate::sandbox::{EvalOptions, Grants, Sandbox, Source};
use crate::verdict::Outcome;

#[derive(Debug, Subcommand)]
pub enum PredicateCommand {
    /// Evaluate one predicate once against a workspace and print its verdict.
    ///
    /// Exits 0 on pass, 1 on fail or error, 2 on a usage error, 5 when the component
    /// cannot be loaded.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A builtin predicate name (`file`) or a path to a `.wasm` component.
    source: String,
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

/// Parse a humane duration (`90s`, `30m`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `90s`, `30m`, `2h`"))
}

pub async fn run(cmd: PredicateCommand, printer: &Printer) -> Result<u8, CliError> {
    match cmd {
        PredicateCommand::Eval(args) => eval(args, printer).await,
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

async fn eval(args: EvalArgs, printer: &Printer) -> Result<u8, CliError> {
    let config: serde_json::Value = serde_json::from_str(&args.config)
        .map_err(|e| CliError::Usage(format!("--config is not valid JSON: {e}")))?;
    if !config.is_object() {
        return Err(CliError::Usage(format!(
            "--config must be a JSON object, got `{}`",
            args.config
        )));
    }
    let workspace = args.workspace.canonicalize().map_err(|e| {
        CliError::Usage(format!(
            "workspace {} is not usable: {e}",
            args.workspace.display()
        ))
    })?;
    if !workspace.is_dir() {
        return Err(CliError::Usage(format!(
            "workspace {} is not a directory",
            workspace.display()
        )));
    }
    let mut grants = Grants::default();
    for n in &args.allow_net {
        grants
            .allow_net(n)
            .map_err(|e| CliError::Usage(format!("--allow-net {e}")))?;
    }
    grants.exec.extend(args.allow_exec.iter().cloned());
    grants.env.extend(args.allow_env.iter().cloned());
    grants.fs_write = args.allow_write;

    let source = resolve_source(&args.source)?;
    let sandbox = Sandbox::with_default_cache().map_err(|e| CliError::Failed(e.to_string()))?;
    let predicate = sandbox
        .load_predicate(&source)
        .await
        .map_err(|e| CliError::Invalid(format!("failed to load the predicate: {e}")))?;
    let opts = EvalOptions {
        grants,
        timeout: args.timeout,
        memory_bytes: args.memory_mib.saturating_mul(1 << 20),
        predicate_id: predicate.info.name.clone(),
        iteration: 0,
    };
    let verdict = sandbox
        .evaluate(&predicate, &workspace, &config, &opts)
        .await;
    if args.json {
        printer.json(&serde_json::to_value(&verdict).expect("verdicts serialise"));
    } else {
        printer.verdict(&opts.predicate_id, &verdict);
    }
    Ok(if verdict.outcome == Outcome::Pass {
        exit::SUCCESS
    } else {
        exit::NOT_CONVERGED
    })
}
