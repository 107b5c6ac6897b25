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

const EXTRA_ARGS_EXAMPLE: [&str; 2] = ["--variant", "high"];
const AGENT_EXAMPLE: &str = "build";

/// The `[agent]` options of the `opencode` profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `--agent`: the opencode agent to use, such as "build".
    #[schemars(example = AGENT_EXAMPLE, length(min = 1))]
    pub agent: Option<String>,
    /// `--auto`: auto-approve permissions that are not explicitly denied.
    #[schemars(example = true)]
    pub auto: Option<bool>,
    /// More arguments, appended as they are.
    #[schemars(example = EXTRA_ARGS_EXAMPLE)]
    pub extra_args: Option<Vec<String>>,
}

/// The `opencode` profile.
pub struct OpencodeProfile;

impl Profile<Options> for OpencodeProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "opencode".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "opencode: `opencode run PROMPT --format json --dir WORKSPACE`".into(),
            default_program: PROGRAM.into(),
            options: Vec::new(),
        }
    }

    fn validate(agent: &Agent<Options>) -> Vec<ConfigError> {
        check(agent.model.as_deref(), agent.run.as_deref())
    }

    fn invocation(req: Request<Options>) -> Result<Invocation, String> {
        build_invocation(req)
    }

    fn parse(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
        parse_output(exit_code, stdout, stderr)
    }
}

export_profile!(OpencodeProfile);

/// What the option types cannot say: opencode names models `provider/model`, and
/// `run` names a program.
pub fn check(model: Option<&str>, run: Option<&[String]>) -> Vec<ConfigError> {
    let mut errors = request::check_run(run, PROGRAM);
    if let Some(model) = model.map(str::trim).filter(|m| !m.is_empty()) {
        let valid = model
            .split_once('/')
            .is_some_and(|(provider, id)| !provider.is_empty() && !id.is_empty());
        if !valid {
            errors.push(
                ConfigError::at(
                    "model",
                    format!("is {model:?}, but opencode names models as `provider/model`"),
                )
                .with_hint(format!(
                    "model = \"anthropic/{}\" (the provider first)",
                    model.trim_matches('/')
                )),
            );
        }
    }
    errors
}

/// The dispatch request → `opencode run …`.
pub fn build_invocation(req: Request<Options>) -> Result<Invocation, String> {
    if let Some(e) = check(req.model.as_deref(), Some(&req.run))
        .into_iter()
        .next()
    {
        return Err(format!("[agent]: {}", e.render()));
    }
    if req.workspace.trim().is_empty() {
        return Err("the dispatch request has no workspace path for `--dir`".to_owned());
    }
    let (program, mut args) = request::program(&req, PROGRAM)?;
    let model = request::model(&req).map(str::to_owned);
    let agent = req.options.agent.clone().filter(|a| !a.trim().is_empty());
    let auto = req.options.auto.unwrap_or(false);
    let extra = req.options.extra_args.clone().unwrap_or_default();

    let placement = Placement::of(&req.prompt);
    args.push("run".into());
    if placement == Placement::Argument {
        args.push(req.prompt.clone());
    }
    args.extend(["--format".into(), "json".into()]);
    args.extend(["--dir".into(), req.workspace.clone()]);
    if let Some(model) = model {
        args.extend(["--model".into(), model]);
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

    fn request(options: Value) -> Request<Options> {
        Request {
            prompt: "fix the tests".into(),
            workspace: "/work/space".into(),
            model: None,
            run: Vec::new(),
            options: Options::from_value(options).unwrap(),
        }
    }

    fn load_errors(agent: Value) -> Vec<String> {
        check_options::<OpencodeProfile, Options>(&agent)
            .iter()
            .map(ConfigError::render)
            .collect()
    }

    #[test]
    fn describe_names_the_program_and_options() {
        let d = OpencodeProfile::describe();
        assert_eq!(d.id, "opencode");
        assert_eq!(d.default_program, "opencode");
        let schema = Options::schema();
        let options: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(options, ["agent", "auto", "extra_args"]);
    }

    #[test]
    fn bad_options_are_load_errors_with_their_place() {
        assert!(
            load_errors(json!({"model": "anthropic/claude-sonnet-4-5", "auto": true})).is_empty()
        );
        assert_eq!(
            load_errors(json!({"model": "claude-sonnet-4-5"})),
            [
                "`model` is \"claude-sonnet-4-5\", but opencode names models as `provider/model`; hint: model = \"anthropic/claude-sonnet-4-5\" (the provider first)"
            ]
        );
        assert_eq!(
            load_errors(json!({"auto": 1})),
            ["`auto` must be a boolean, found an integer 1; hint: for example: auto = true"]
        );
        assert_eq!(
            load_errors(json!({"agent": ""})),
            ["`agent` must not be empty"]
        );
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(json!({}))).unwrap();
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
        let mut req = request(json!({
            "agent": "build",
            "auto": true,
            "extra_args": ["--variant", "high"],
        }));
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
        let inv = build_invocation(request(json!({"auto": false}))).unwrap();
        assert!(!inv.args.iter().any(|a| a == "--auto"));
    }

    #[test]
    fn a_model_must_name_its_provider() {
        let mut req = request(json!({}));
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
    fn a_workspace_is_required() {
        let mut req = request(json!({}));
        req.workspace = String::new();
        assert!(build_invocation(req).unwrap_err().contains("--dir"));
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(json!({}));
        req.run = vec!["bunx".into(), "opencode-ai".into()];
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.program, "bunx");
        assert_eq!(inv.args[..3], ["opencode-ai", "run", "fix the tests"]);
    }

    #[test]
    fn a_prompt_starting_with_a_dash_goes_after_dashes() {
        let mut req = request(json!({}));
        req.prompt = "-x".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[1], "--format");
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "-x"]);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(json!({}));
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
