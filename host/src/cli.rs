//! The command line: one file per subcommand, exit codes in [`crate::exit`], all
//! output through [`output::Printer`].

mod check;
mod doctor;
mod init;
mod land;
mod output;
mod pkg;
mod predicate;
mod propose;
mod run;
mod runs;
mod show;
mod trust;
mod worktrees;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit;

/// kazi — the outer loop for coding agents.
///
/// Declare what "done" means as predicates; kazi observes them, drives a coding
/// agent on the failing ones, and stops only when every predicate is objectively
/// true, or says honestly that it is stuck or over budget.
#[derive(Debug, Parser)]
#[command(name = "kazi", version, after_help = exit::HELP, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace); `KAZI_LOG` takes a filter too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress output on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive the agent until every predicate of the goal passes, or stop honestly.
    Run(run::RunArgs),
    /// Observe a goal once, with no agent: exit 0 when every predicate passes (a CI gate).
    Check(check::CheckArgs),
    /// Detect the repository's stack and write a starter goal: the tests pass, and the
    /// test counts never drop.
    Init(init::InitArgs),
    /// Work with predicate components: create, build, test, or evaluate one once.
    #[command(subcommand)]
    Predicate(predicate::PredicateCommand),
    /// Shared packages: build, keygen, sign, publish, add, list, remove, verify, update.
    #[command(subcommand)]
    Pkg(pkg::PkgCommand),
    /// The keys whose package signatures you accept: add, list, remove.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Have an agent draft a goal from an idea, validated and stored as a proposal.
    ///
    /// kazi checks the draft with the goal loader and evaluates it once (it should
    /// fail now). Exits 0 when stored, 1 when the agent failed or gave no goal, 2 on a
    /// usage error, 5 when the goal in the answer does not load.
    Propose(propose::ProposeArgs),
    /// List the proposals (or show one with its goal), most recently updated first.
    Proposals(propose::ProposalsArgs),
    /// Approve a proposal: write its goal file and print the `kazi run` line.
    Approve(propose::ApproveArgs),
    /// Reject a proposal.
    Reject(propose::RejectArgs),
    /// List the recorded runs, newest first.
    Runs(runs::RunsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Show one recorded run: its predicate history, dispatches and events.
    Show(show::ShowArgs),
    /// Report the environment: agent CLIs and their versions, the wasm target, the run
    /// database and the component cache, trusted keys.
    Doctor(doctor::DoctorArgs),
    /// Land a converged run's changes later: commit them on a branch, merge or open a PR.
    Land(land::LandArgs),
    /// List the task worktrees of runs; --prune removes those no live run uses.
    Worktrees(worktrees::WorktreesArgs),
}

/// Errors a subcommand reports; each maps to an exit code in [`CliError::code`].
/// Library errors keep their type (and their causes) up to here.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A goal, profile or predicate that cannot be loaded (exit 5).
    #[error("{0}")]
    Invalid(String),
    /// A goal file that does not load (exit 5).
    #[error(transparent)]
    Goal(#[from] crate::goal::GoalError),
    /// The read-model (exit 1).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Anything else that stops the command (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Invalid(_) | CliError::Goal(_) => exit::INVALID,
            CliError::Store(_) | CliError::Failed(_) => exit::NOT_CONVERGED,
        }
    }

    /// The error as the one JSON object `--json` promises: `status` (`invalid` for a
    /// load-time error, `usage` or `error` otherwise), the message, and for goal files
    /// every problem with its file, line, column and hint.
    pub fn to_json(&self) -> serde_json::Value {
        let status = match self.code() {
            exit::INVALID => "invalid",
            exit::USAGE => "usage",
            _ => "error",
        };
        let errors: Vec<serde_json::Value> = match self {
            CliError::Goal(crate::goal::GoalError::Invalid { path, problems }) => problems
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "file": path,
                        "line": p.line,
                        "column": p.col,
                        "message": p.message,
                        "hint": p.hint,
                    })
                })
                .collect(),
            other => {
                let text = other.to_string();
                let (message, hint) = match text.split_once("; hint: ") {
                    Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
                    None => (text, None),
                };
                vec![serde_json::json!({
                    "file": null, "line": null, "column": null,
                    "message": message,
                    "hint": hint,
                })]
            }
        };
        serde_json::json!({
            "schema_version": 1,
            "type": "result",
            "status": status,
            "exit_code": self.code(),
            "reason": self.to_string(),
            "errors": errors,
        })
    }
}

/// Parse the process arguments, run the command, return its exit code.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(crate::guardian::SUBCOMMAND) {
        return crate::guardian::run(&args[1..]);
    }
    crate::guardian::enable();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            });
        }
    };
    init_logging(cli.verbose);
    let printer = output::Printer::new(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&format!("failed to start the async runtime: {e}"));
            return ExitCode::from(exit::NOT_CONVERGED);
        }
    };
    let json = cli.command.wants_json();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, &printer).await,
            Command::Check(args) => check::run(args, &printer).await,
            Command::Init(args) => init::run(args, &printer),
            Command::Predicate(cmd) => predicate::run(cmd, &printer).await,
            Command::Pkg(cmd) => pkg::run(cmd, &printer).await,
            Command::Trust(cmd) => trust::run(cmd, &printer),
            Command::Propose(args) => propose::propose(args, &printer).await,
            Command::Proposals(args) => propose::list(args, &printer),
            Command::Approve(args) => propose::approve(args, &printer),
            Command::Reject(args) => propose::reject(args, &printer),
            Command::Runs(args) => runs::run(args, &printer),
            Command::Show(args) => show::run(args, &printer),
            Command::Doctor(args) => doctor::run(args, &printer).await,
            Command::Land(args) => land::run(args, &printer),
            Command::Worktrees(args) => worktrees::run(args, &printer),
            Command::Completions { shell } => {
                use clap::CommandFactory;
                let mut cmd = Cli::command();
                clap_complete::generate(shell, &mut cmd, "kazi", &mut std::io::stdout());
                Ok(exit::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                printer.json(&e.to_json());
            }
            printer.error(&error_chain(&e));
            ExitCode::from(e.code())
        }
    }
}

impl Command {
    /// Whether the command promised exactly one JSON object on stdout.
    fn wants_json(&self) -> bool {
        match self {
            Command::Run(a) => a.json_output(),
            Command::Check(a) => a.json_output(),
            Command::Propose(a) => a.json_output(),
            _ => false,
        }
    }
}

/// An error and the causes its message does not already say.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        source = s.source();
    }
    text
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,wasmtime=error,wasmtime_wasi=error,wasmtime_wasi_http=error",
        1 => "kazi=debug,info",
        // kazi's own trace, not cranelift's (millions of lines).
        _ => "kazi=trace,info,cranelift=warn,wasmtime=info",
    };
    let filter = EnvFilter::try_from_env("KAZI_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = output::colour(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
