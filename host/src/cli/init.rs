//! `kazi init`: detect the stack of a repository and write a starter goal.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use super::output::Printer;
use crate::authoring::init::{self, InitError};
use crate::exit;

#[derive(Debug, Args)]
#[command(after_help = "\
Stacks, by marker file (a repository with several gets each, in this order):
  Cargo   Cargo.toml                         cargo test --workspace --no-fail-fast
  Go      go.mod                             go test -v ./...
  Node    package.json with a real `test`    npm test (or its vitest/jest when the
                                             script needs a tool that is missing)
  Python  pyproject.toml, setup.cfg,         python3 -m pytest (or .venv/bin/python)
          setup.py, pytest.ini, tox.ini
  Elixir  mix.exs                            mix test
  Maven   pom.xml                            ./mvnw -B -fae test (or mvn)
  Gradle  build.gradle, build.gradle.kts     ./gradlew test --continue (or gradle)

One predicate per stack: the tests pass, and its ratchets keep the number of
passing tests and of tests from dropping. `writable` and `protected` are the
stack's source and test directories that exist. kazi checks that the test
command can run here and says so when it cannot.

Exits 0 when the goal was written; 1 when no known stack was found or the goal
file exists (pass --force); 2 on a usage error.")]
pub struct InitArgs {
    /// The repository to look at.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Overwrite an existing goal file.
    #[arg(long)]
    force: bool,
    /// Where to write the goal (default: DIR/kazi.toml); its `[scope] workspace`
    /// points back at DIR.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
}

pub fn run(args: InitArgs, printer: &Printer) -> Result<u8, CliError> {
    if !args.dir.is_dir() {
        return Err(CliError::Usage(format!(
            "failed to look at {}: it is not a directory",
            args.dir.display()
        )));
    }
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| crate::goal::join_relative(&args.dir, init::DEFAULT_FILE));
    if !args.force && path.exists() {
        return Err(failed(InitError::Exists { path }));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| {
            failed(InitError::Write {
                path: parent.to_owned(),
                source,
            })
        })?;
    }
    let (starter, text) = init::starter(&args.dir, &path).map_err(failed)?;
    init::write(&path, &text, args.force).map_err(failed)?;
    // Does the chosen test command run here? A missing tool found now is free.
    for d in &starter.stacks {
        if let Some(problem) = init::check_runs(&args.dir, d) {
            printer.notice(&problem);
        }
    }
    let stacks: Vec<&str> = starter.stacks.iter().map(|d| d.stack.title()).collect();
    let shown = shell_word(&path);
    printer.out(&format!(
        "wrote {}: goal `{}` for {}",
        path.display(),
        starter.id,
        stacks.join(", ")
    ));
    printer.out("next:");
    printer.out(&format!(
        "  kazi check {shown}   # observe once, no agent: do the tests pass now?"
    ));
    printer.out(&format!(
        "  kazi run {shown}     # drive the agent until every predicate passes"
    ));
    Ok(exit::SUCCESS)
}

fn failed(e: InitError) -> CliError {
    CliError::Failed(e.to_string())
}

/// `path` as one shell word (single-quoted when it needs to be).
pub(super) fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@%,".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
