//! The builtin `opencode` profile: `opencode run` in JSON mode.
//!
//! The agent runs as `opencode run PROMPT --format json --dir WORKSPACE
//! [--model provider/model] [--agent A] [--auto] [EXTRA…]` with a closed stdin
//! (`opencode run` reads stdin to its end when it is not a terminal), and prints
//! JSON Lines events that [`events::parse_output`] reads. An empty stdout, the silent
//! hang that only the dispatch timeout ends, is reported as "opencode produced no
//! output". User documentation: `docs/profiles/opencode.md`.

pub mod events;

use kazi_sdk::prelude::*;
use kazi_sdk::request::{self, Placement};

pub use events::parse_output;

/// The program run when the goal names none.
pub const PROGRAM: &str = "opencode";

/// The options this profile understands under `[agent]`.
pub const OPTIONS: &[&str] = &["agent", "auto", "extra_args"];

/// The `opencode` profile.
pub struct OpencodeProfile;

impl Profile for OpencodeProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "opencode".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "opencode: `opencode run PROMPT --format json --dir WORKSPACE`".into(),
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

export_profile!(OpencodeProfile);

/// The dispatch request → `opencode run …`.
pub fn build_invocation(req: Request) -> Result<Invocation, String> {
    let agent = request::string(&req, "agent", "\"build\"")?;
    let auto = request::boolean(&req, "auto")?.unwrap_or(false);
    let extra =
        request::strings(&req, "extra_args", "[\"--variant\", \"high\"]")?.unwrap_or_default();
    let model = request::model(&req);
    if let Some(model) = model {
        let valid = model
            .split_once('/')
            .is_some_and(|(provider, id)| !provider.is_empty() && !id.is_empty());
        if !valid {
            return Err(format!(
                "opencode names models as `provider/model`, and `[agent] model` is {model:?}; hint: model = \"anthropic/claude-sonnet-4-5\""
            ));
        }
    }
    if req.workspace.trim().is_empty() {
        return Err("the dispatch request has no workspace path for `--dir`".to_owned());
    }
    let (program, mut args) = request::program(&req, PROGRAM)?;

    let placement = Placement::of(&req.prompt);
    args.push("run".into());
    if placement == Placement::Argument {
        args.push(req.prompt.clone());
    }
    args.extend(["--format".into(), "json".into()]);
    args.extend(["--dir".into(), req.workspace.clone()]);
    if let Some(model) = model {
        args.extend(["--model".into(), model.to_owned()]);
    }
    if let Some(agent) = agent {
        args.extend(["--agent".into(), agent]);
    }
    if auto {
        args.push("--auto".into());
    }
    args.extend(extra);
    if placement == Placement::AfterDashes {
        args.extend(["--".into(), req.prompt.clone()]);
    }
    Ok(Invocation {
        program,
        args,
        env: Vec::new(),
        // With no message argument, `opencode run` takes the message from stdin.
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
            workspace: "/work/space".into(),
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
        let d = OpencodeProfile::describe();
        assert_eq!(d.id, "opencode");
        assert_eq!(d.default_program, "opencode");
        assert_eq!(d.options, ["agent", "auto", "extra_args"]);
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(&[])).unwrap();
        assert_eq!(inv.program, "opencode");
        assert_eq!(
            inv.args,
            [
                "run",
                "fix the tests",
                "--format",
                "json",
                "--dir",
                "/work/space"
            ]
        );
        assert_eq!(
            inv.stdin, None,
            "stdin is closed: opencode would wait on an open one"
        );
        assert!(!inv.prompt_file);
        assert!(inv.env.is_empty());
    }

    #[test]
    fn every_option() {
        let mut req = request(&[
            ("agent", "\"build\""),
            ("auto", "true"),
            ("extra_args", "[\"--variant\", \"high\"]"),
        ]);
        req.model = Some("anthropic/claude-sonnet-4-5".into());
        let inv = build_invocation(req).unwrap();
        assert_eq!(
            inv.args,
            [
                "run",
                "fix the tests",
                "--format",
                "json",
                "--dir",
                "/work/space",
                "--model",
                "anthropic/claude-sonnet-4-5",
                "--agent",
                "build",
                "--auto",
                "--variant",
                "high"
            ]
        );
        let inv = build_invocation(request(&[("auto", "false")])).unwrap();
        assert!(!inv.args.iter().any(|a| a == "--auto"));
    }

    #[test]
    fn a_model_must_name_its_provider() {
        let mut req = request(&[]);
        req.model = Some("claude-sonnet-4-5".into());
        let err = build_invocation(req.clone()).unwrap_err();
        assert!(err.contains("`provider/model`"), "{err}");
        assert!(
            err.contains("hint: model = \"anthropic/claude-sonnet-4-5\""),
            "{err}"
        );
        req.model = Some("/x".into());
        assert!(build_invocation(req.clone()).is_err());
        req.model = Some("openrouter/meta/llama".into());
        assert!(
            build_invocation(req).is_ok(),
            "the model id may contain `/`"
        );
    }

    #[test]
    fn options_of_the_wrong_type_are_config_errors() {
        let err = build_invocation(request(&[("auto", "1")])).unwrap_err();
        assert!(
            err.starts_with("`[agent] auto` must be true or false"),
            "{err}"
        );
        let err = build_invocation(request(&[("agent", "\"\"")])).unwrap_err();
        assert!(err.contains("hint: agent = \"build\""), "{err}");
    }

    #[test]
    fn a_workspace_is_required() {
        let mut req = request(&[]);
        req.workspace = String::new();
        assert!(build_invocation(req).unwrap_err().contains("--dir"));
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(&[]);
        req.run = vec!["bunx".into(), "opencode-ai".into()];
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.program, "bunx");
        assert_eq!(inv.args[..3], ["opencode-ai", "run", "fix the tests"]);
    }

    #[test]
    fn a_prompt_starting_with_a_dash_goes_after_dashes() {
        let mut req = request(&[]);
        req.prompt = "-x".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[1], "--format");
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "-x"]);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(&[]);
        req.prompt = "x".repeat(request::ARG_PROMPT_MAX + 1);
        let inv = build_invocation(req).unwrap();
        assert_eq!(
            inv.args,
            ["run", "--format", "json", "--dir", "/work/space"]
        );
        assert_eq!(
            inv.stdin.map(|s| s.len()),
            Some(request::ARG_PROMPT_MAX + 1)
        );
    }
}
