//! The `kazi` binary: parse, run, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    kazi::cli::main()
}
