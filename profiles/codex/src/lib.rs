//! The builtin `codex` profile: OpenAI Codex CLI in non-interactive mode.
//!
//! The agent runs as `codex exec --json [--model M] --sandbox S
//! [--skip-git-repo-check] [EXTRA…] PROMPT` with a closed stdin (codex reads stdin
//! to its end when it is not a terminal, so an open one would hang it), and prints
//! JSON Lines events that [`events::parse_output`] reads. The default sandbox is
//! `workspace-write`: `codex exec` is read-only unless told otherwise.
//!
//! `full_auto = true` asks for what codex's former `--full-auto` meant, the
//! `workspace-write` sandbox: codex 0.169 and later have no `--full-auto` (`codex exec
//! --help`, recorded in `tests/fixtures`) and refuse it as an unexpected argument.
//! User documentation: `docs/profiles/codex.md`.

pub mod events;

use kazi_sdk::prelude::*;
use kazi_sdk::request::{self, Placement};

pub use events::parse_output;

/// The program run when the goal names none.
pub const PROGRAM: &str = "codex";

/// The default `--sandbox`: the agent may edit the workspace and run commands in it.
pub const DEFAULT_SANDBOX: &str = "workspace-write";

/// The sandbox policies `codex exec --sandbox` accepts.
pub const SANDBOXES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];

const EXTRA_ARGS_EXAMPLE: [&str; 2] = ["-c", "model_reasoning_effort=high"];
const SANDBOX_EXAMPLE: &str = "workspace-write";

/// The `[agent]` options of the `codex` profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `--sandbox`: "read-only", "workspace-write" (the default) or
    /// "danger-full-access".
    #[schemars(example = SANDBOX_EXAMPLE)]
    pub sandbox: Option<String>,
    /// true: the sandbox of codex's former `--full-auto`, "workspace-write" (codex
    /// 0.169 and later have no such flag; kazi passes `--sandbox workspace-write`).
    #[schemars(example = true)]
    pub full_auto: Option<bool>,
    /// `--skip-git-repo-check`: let codex run outside a git repository.
    #[schemars(example = true)]
    pub skip_git_repo_check: Option<bool>,
    /// More arguments, appended as they are.
    #[schemars(example = EXTRA_ARGS_EXAMPLE)]
    pub extra_args: Option<Vec<String>>,
}

/// The `codex` profile.
pub struct CodexProfile;

impl Profile<Options> for CodexProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "codex".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "OpenAI Codex CLI: `codex exec --json PROMPT`, sandbox workspace-write".into(),
            default_program: PROGRAM.into(),
            options: Vec::new(),
        }
    }

    fn validate(agent: &Agent<Options>) -> Vec<ConfigError> {
        check(agent.run.as_deref(), &agent.options)
    }

    fn invocation(req: Request<Options>) -> Result<Invocation, String> {
        build_invocation(req)
    }

    fn parse(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
        parse_output(exit_code, stdout, stderr)
    }
}

export_profile!(CodexProfile);

/// What the option types cannot say: a sandbox codex knows, `full_auto` that agrees
/// with `sandbox`, a program in `run`.
pub fn check(run: Option<&[String]>, options: &Options) -> Vec<ConfigError> {
    let mut errors = request::check_run(run, PROGRAM);
    if let Some(sandbox) = &options.sandbox
        && !SANDBOXES.contains(&sandbox.as_str())
    {
        let hint = match text::did_you_mean(sandbox, SANDBOXES.iter().copied()) {
            Some(m) => format!("did you mean \"{m}\"?"),
            None => {
                "codex's sandboxes are \"read-only\", \"workspace-write\", \"danger-full-access\""
                    .to_owned()
            }
        };
        errors.push(
            ConfigError::at("sandbox", format!("is not a codex sandbox: {sandbox:?}"))
                .with_hint(hint),
        );
    }
    if options.full_auto == Some(true)
        && let Some(sandbox) = options.sandbox.as_deref().filter(|s| *s != DEFAULT_SANDBOX)
    {
        errors.push(
            ConfigError::at(
                "full_auto",
                format!(
                    "asks for the \"workspace-write\" sandbox, and `sandbox` asks for {sandbox:?}"
                ),
            )
            .with_hint("keep one of them"),
        );
    }
    errors
}

/// The dispatch request → `codex exec --json …`.
pub fn build_invocation(req: Request<Options>) -> Result<Invocation, String> {
    if let Some(e) = check(Some(&req.run), &req.options).into_iter().next() {
        return Err(format!("[agent]: {}", e.render()));
    }
    let (program, mut args) = request::program(&req, PROGRAM)?;
    let model = request::model(&req).map(str::to_owned);
    let options = req.options;

    args.extend(["exec".into(), "--json".into()]);
    if let Some(model) = model {
        args.extend(["--model".into(), model]);
    }
    // `full_auto` means the workspace-write sandbox, which is also the default.
    let sandbox = options
        .sandbox
        .unwrap_or_else(|| DEFAULT_SANDBOX.to_owned());
    args.extend(["--sandbox".into(), sandbox]);
    if options.skip_git_repo_check == Some(true) {
        args.push("--skip-git-repo-check".into());
    }
    args.extend(options.extra_args.unwrap_or_default());
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

    fn request(options: Value) -> Request<Options> {
        Request {
            prompt: "fix the tests".into(),
            workspace: "/ws".into(),
            model: None,
            run: Vec::new(),
            options: Options::from_value(options).unwrap(),
        }
    }

    fn load_errors(agent: Value) -> Vec<String> {
        check_options::<CodexProfile, Options>(&agent)
            .iter()
            .map(ConfigError::render)
            .collect()
    }

    #[test]
    fn describe_names_the_program_and_options() {
        let d = CodexProfile::describe();
        assert_eq!(d.id, "codex");
        assert_eq!(d.default_program, "codex");
        let schema = Options::schema();
        let mut options: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        options.sort();
        assert_eq!(
            options,
            ["extra_args", "full_auto", "sandbox", "skip_git_repo_check"]
        );
    }

    /// codex 0.171's `exec --help`, recorded: every flag the profile passes is in it.
    #[test]
    fn every_flag_is_one_the_real_codex_accepts() {
        const HELP: &str = include_str!("../tests/fixtures/codex-exec-help.txt");
        let inv = build_invocation(request(json!({
            "full_auto": true, "skip_git_repo_check": true
        })))
        .unwrap();
        let mut req = request(json!({"sandbox": "read-only"}));
        req.model = Some("gpt-5-codex".into());
        let more = build_invocation(req).unwrap();
        for flag in inv
            .args
            .iter()
            .chain(&more.args)
            .filter(|a| a.starts_with("--"))
        {
            assert!(
                HELP.contains(&format!("{flag} ")) || HELP.contains(&format!("{flag}\n")),
                "codex exec has no {flag}"
            );
        }
        assert!(!HELP.contains("--full-auto"));
    }

    #[test]
    fn bad_options_are_load_errors_with_their_place() {
        assert!(load_errors(json!({"sandbox": "read-only", "model": "o3"})).is_empty());
        assert!(load_errors(json!({"full_auto": true, "sandbox": "workspace-write"})).is_empty());
        assert_eq!(
            load_errors(json!({"full_auto": true, "sandbox": "read-only"})),
            [
                "`full_auto` asks for the \"workspace-write\" sandbox, and `sandbox` asks for \"read-only\"; hint: keep one of them"
            ]
        );
        assert_eq!(
            load_errors(json!({"sandbox": "workspace_write"})),
            [
                "`sandbox` is not a codex sandbox: \"workspace_write\"; hint: did you mean \"workspace-write\"?"
            ]
        );
        assert_eq!(
            load_errors(json!({"full_auto": "yes"})),
            [
                "`full_auto` must be a boolean, found a string \"yes\"; hint: for example: full_auto = true"
            ]
        );
        assert_eq!(
            load_errors(json!({"skip_git_repo": true})),
            ["`skip_git_repo` is not a known key; hint: did you mean `skip_git_repo_check`?"]
        );
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(json!({}))).unwrap();
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
        let mut req = request(json!({
            "sandbox": "danger-full-access",
            "skip_git_repo_check": true,
            "extra_args": ["-c", "model_reasoning_effort=high"],
        }));
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
    fn full_auto_is_the_workspace_write_sandbox() {
        let inv = build_invocation(request(json!({"full_auto": true}))).unwrap();
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
        let inv = build_invocation(request(json!({"full_auto": false}))).unwrap();
        assert_eq!(inv.args[2..4], ["--sandbox", "workspace-write"]);
        let err = build_invocation(request(json!({"full_auto": true, "sandbox": "read-only"})))
            .unwrap_err();
        assert!(err.contains("hint: keep one of them"), "{err}");
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(json!({}));
        req.run = vec!["npx".into(), "@openai/codex".into()];
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.program, "npx");
        assert_eq!(inv.args[..3], ["@openai/codex", "exec", "--json"]);
    }

    #[test]
    fn a_prompt_starting_with_a_dash_goes_after_dashes() {
        let mut req = request(json!({}));
        req.prompt = "--fix".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "--fix"]);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(json!({}));
        req.prompt = "x".repeat(request::ARG_PROMPT_MAX + 1);
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args.last().map(String::as_str), Some("-"));
        assert_eq!(
            inv.stdin.map(|s| s.len()),
            Some(request::ARG_PROMPT_MAX + 1)
        );
    }
}
