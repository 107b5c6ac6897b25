//! The builtin `codex` profile: OpenAI Codex CLI in non-interactive mode.
//!
//! The agent runs as `codex exec --json [--model M] [--sandbox S | --full-auto]
//! [--skip-git-repo-check] [EXTRA…] PROMPT` with a closed stdin (codex reads stdin
//! to its end when it is not a terminal, so an open one would hang it), and prints
//! JSON Lines events that [`events::parse_output`] reads. The default sandbox is
//! `workspace-write`: `codex exec` is read-only unless told otherwise.
//! User documentation: `docs/profiles/codex.md`.

pub mod events;

use kazi_sdk::prelude::*;
use kazi_sdk::request::{self, Placement};

pub use events::parse_output;

/// The program run when the goal names none.
pub const PROGRAM: &str = "codex";

/// The options this profile understands under `[agent]`.
pub const OPTIONS: &[&str] = &["sandbox", "full_auto", "skip_git_repo_check", "extra_args"];

/// The default `--sandbox`: the agent may edit the workspace and run commands in it.
pub const DEFAULT_SANDBOX: &str = "workspace-write";

/// The `codex` profile.
pub struct CodexProfile;

impl Profile for CodexProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "codex".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "OpenAI Codex CLI: `codex exec --json PROMPT`, sandbox workspace-write".into(),
            default_program: PROGRAM.into(),
            options: OPTIONS.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    fn invocation(req: Request) -> Result<Invocation, String> {
        build_invocation(req)
    }

    fn parse(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
        parse_output(exit_code, stdout, stderr)
    }
}

export_profile!(CodexProfile);

/// The dispatch request → `codex exec --json …`.
pub fn build_invocation(req: Request) -> Result<Invocation, String> {
    let sandbox = request::string(&req, "sandbox", "\"workspace-write\"")?;
    let full_auto = request::boolean(&req, "full_auto")?.unwrap_or(false);
    let skip_git = request::boolean(&req, "skip_git_repo_check")?.unwrap_or(false);
    let extra = request::strings(
        &req,
        "extra_args",
        "[\"-c\", \"model_reasoning_effort=high\"]",
    )?
    .unwrap_or_default();
    if full_auto && sandbox.is_some() {
        return Err(
            "`[agent] full_auto` and `[agent] sandbox` both choose the sandbox (`--full-auto` means workspace-write); hint: keep one of them"
                .to_owned(),
        );
    }
    let (program, mut args) = request::program(&req, PROGRAM)?;

    args.extend(["exec".into(), "--json".into()]);
    if let Some(model) = request::model(&req) {
        args.extend(["--model".into(), model.to_owned()]);
    }
    if full_auto {
        args.push("--full-auto".into());
    } else {
        let sandbox = sandbox.unwrap_or_else(|| DEFAULT_SANDBOX.to_owned());
        args.extend(["--sandbox".into(), sandbox]);
    }
    if skip_git {
        args.push("--skip-git-repo-check".into());
    }
    args.extend(extra);
    let placement = Placement::of(&req.prompt);
    match placement {
        Placement::Argument => args.push(req.prompt.clone()),
        Placement::AfterDashes => args.extend(["--".into(), req.prompt.clone()]),
        // `-` reads the prompt from stdin.
        Placement::Stdin => args.push("-".into()),
    }
    Ok(Invocation {
        program,
        args,
        env: Vec::new(),
        stdin: (placement == Placement::Stdin).then_some(req.prompt),
        prompt_file: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: &[(&str, &str)]) -> Request {
        Request {
            prompt: "fix the tests".into(),
            workspace: "/ws".into(),
            model: None,
            run: Vec::new(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn describe_names_the_program_and_options() {
        let d = CodexProfile::describe();
        assert_eq!(d.id, "codex");
        assert_eq!(d.default_program, "codex");
        assert_eq!(
            d.options,
            ["sandbox", "full_auto", "skip_git_repo_check", "extra_args"]
        );
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(&[])).unwrap();
        assert_eq!(inv.program, "codex");
        assert_eq!(
            inv.args,
            [
                "exec",
                "--json",
                "--sandbox",
                "workspace-write",
                "fix the tests"
            ]
        );
        assert_eq!(
            inv.stdin, None,
            "stdin is closed: codex would wait on an open one"
        );
        assert!(!inv.prompt_file);
        assert!(inv.env.is_empty());
    }

    #[test]
    fn every_option() {
        let mut req = request(&[
            ("sandbox", "\"danger-full-access\""),
            ("skip_git_repo_check", "true"),
            ("extra_args", "[\"-c\", \"model_reasoning_effort=high\"]"),
        ]);
        req.model = Some("gpt-5-codex".into());
        let inv = build_invocation(req).unwrap();
        assert_eq!(
            inv.args,
            [
                "exec",
                "--json",
                "--model",
                "gpt-5-codex",
                "--sandbox",
                "danger-full-access",
                "--skip-git-repo-check",
                "-c",
                "model_reasoning_effort=high",
                "fix the tests"
            ]
        );
    }

    #[test]
    fn full_auto_replaces_the_sandbox_flag() {
        let inv = build_invocation(request(&[("full_auto", "true")])).unwrap();
        assert_eq!(inv.args, ["exec", "--json", "--full-auto", "fix the tests"]);
        let inv = build_invocation(request(&[("full_auto", "false")])).unwrap();
        assert_eq!(inv.args[2..4], ["--sandbox", "workspace-write"]);
        let err = build_invocation(request(&[
            ("full_auto", "true"),
            ("sandbox", "\"read-only\""),
        ]))
        .unwrap_err();
        assert!(err.contains("hint: keep one of them"), "{err}");
    }

    #[test]
    fn options_of_the_wrong_type_are_config_errors() {
        let err = build_invocation(request(&[("full_auto", "\"yes\"")])).unwrap_err();
        assert!(
            err.starts_with("`[agent] full_auto` must be true or false"),
            "{err}"
        );
        let err = build_invocation(request(&[("sandbox", "[]")])).unwrap_err();
        assert!(err.contains("hint: sandbox = \"workspace-write\""), "{err}");
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(&[]);
        req.run = vec!["npx".into(), "@openai/codex".into()];
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.program, "npx");
        assert_eq!(inv.args[..3], ["@openai/codex", "exec", "--json"]);
    }

    #[test]
    fn a_prompt_starting_with_a_dash_goes_after_dashes() {
        let mut req = request(&[]);
        req.prompt = "--fix".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "--fix"]);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(&[]);
        req.prompt = "x".repeat(request::ARG_PROMPT_MAX + 1);
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args.last().map(String::as_str), Some("-"));
        assert_eq!(
            inv.stdin.map(|s| s.len()),
            Some(request::ARG_PROMPT_MAX + 1)
        );
    }
}
