//! The builtin `claude` profile: Claude Code in headless mode.
//!
//! The agent runs as `claude -p PROMPT --output-format json --permission-mode MODE
//! [--model M] [--allowedTools T,…] [--max-turns N] [EXTRA…]` with a closed stdin,
//! and prints one JSON result envelope that [`envelope::parse_output`] reads. The
//! default permission mode is `acceptEdits` with `Bash` allowed: a headless run can
//! edit files and run commands, and unlike `bypassPermissions` it also works as root.
//! User documentation: `docs/profiles/claude.md`.

pub mod envelope;

use std::num::NonZeroU64;

use kazi_sdk::prelude::*;
use kazi_sdk::request::{self, Placement};

pub use envelope::parse_output;

/// The program run when the goal names none.
pub const PROGRAM: &str = "claude";

/// The default `--permission-mode`: file edits are accepted without asking, and it
/// is allowed for root (claude refuses `bypassPermissions` as root).
pub const DEFAULT_PERMISSION_MODE: &str = "acceptEdits";

/// The permission modes claude accepts (`claude --help`, 2.1.197).
pub const PERMISSION_MODES: &[&str] = &[
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "default",
    "dontAsk",
    "plan",
];

/// The default `--allowedTools`: `acceptEdits` does not cover shell commands, and a
/// headless run cannot ask, so without this every command would be denied.
pub const DEFAULT_ALLOWED_TOOLS: &[&str] = &["Bash"];

const ALLOWED_TOOLS_EXAMPLE: [&str; 2] = ["Bash", "Edit"];
const EXTRA_ARGS_EXAMPLE: [&str; 1] = ["--verbose"];
const PERMISSION_MODE_EXAMPLE: &str = "acceptEdits";

/// The `[agent]` options of the `claude` profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `--permission-mode`: "acceptEdits" (the default, which also works as root),
    /// "auto", "bypassPermissions", "default", "dontAsk" or "plan".
    #[schemars(example = PERMISSION_MODE_EXAMPLE)]
    pub permission_mode: Option<String>,
    /// `--allowedTools`: permission rules such as "Bash", "Bash(cargo test:*)",
    /// "Edit" (default ["Bash"]); [] passes no flag.
    #[schemars(example = ALLOWED_TOOLS_EXAMPLE)]
    pub allowed_tools: Option<Vec<String>>,
    /// `--max-turns`: the most agent turns per dispatch.
    #[schemars(example = 30)]
    pub max_turns: Option<NonZeroU64>,
    /// More arguments, appended as they are.
    #[schemars(example = EXTRA_ARGS_EXAMPLE)]
    pub extra_args: Option<Vec<String>>,
}

/// The `claude` profile.
pub struct ClaudeProfile;

impl Profile<Options> for ClaudeProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "claude".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Claude Code headless: `claude -p PROMPT --output-format json`, permission mode acceptEdits with Bash allowed".into(),
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

export_profile!(ClaudeProfile);

/// What the option types cannot say: a known permission mode, tool rules without
/// commas, a program in `run`.
pub fn check(run: Option<&[String]>, options: &Options) -> Vec<ConfigError> {
    let mut errors = request::check_run(run, PROGRAM);
    if let Some(mode) = &options.permission_mode
        && !PERMISSION_MODES.contains(&mode.as_str())
    {
        let hint = match text::did_you_mean(mode, PERMISSION_MODES.iter().copied()) {
            Some(m) => format!("did you mean \"{m}\"?"),
            None => format!(
                "claude's modes are {}",
                PERMISSION_MODES
                    .iter()
                    .map(|m| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        errors.push(
            ConfigError::at(
                "permission_mode",
                format!("is not a claude permission mode: {mode:?}"),
            )
            .with_hint(hint),
        );
    }
    for (i, tool) in options.allowed_tools.iter().flatten().enumerate() {
        if tool.trim().is_empty() || tool.contains(',') {
            errors.push(
                ConfigError::at_path(
                    &["allowed_tools", &i.to_string()],
                    format!("must be a single tool rule, found {tool:?}"),
                )
                .with_hint("one rule per entry: allowed_tools = [\"Bash\", \"Edit\"]"),
            );
        }
    }
    errors
}

/// The dispatch request → `claude -p …`.
pub fn build_invocation(req: Request<Options>) -> Result<Invocation, String> {
    if let Some(e) = check(Some(&req.run), &req.options).into_iter().next() {
        return Err(format!("[agent]: {}", e.render()));
    }
    let (program, mut args) = request::program(&req, PROGRAM)?;
    let model = request::model(&req).map(str::to_owned);
    let options = req.options;
    let mode = options
        .permission_mode
        .unwrap_or_else(|| DEFAULT_PERMISSION_MODE.to_owned());
    let tools = options.allowed_tools.unwrap_or_else(|| {
        DEFAULT_ALLOWED_TOOLS
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    });

    let placement = Placement::of(&req.prompt);
    args.push("-p".into());
    if placement == Placement::Argument {
        args.push(req.prompt.clone());
    }
    args.extend(["--output-format".into(), "json".into()]);
    args.extend(["--permission-mode".into(), mode]);
    if let Some(model) = model {
        args.extend(["--model".into(), model]);
    }
    if !tools.is_empty() {
        // One comma-separated value: the flag takes several values, and a separate
        // argument per tool could swallow what follows.
        args.extend(["--allowedTools".into(), tools.join(",")]);
    }
    if let Some(n) = options.max_turns {
        args.extend(["--max-turns".into(), n.to_string()]);
    }
    args.extend(options.extra_args.unwrap_or_default());
    if placement == Placement::AfterDashes {
        args.extend(["--".into(), req.prompt.clone()]);
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

    /// The load-time errors for an `[agent]` table, rendered.
    fn load_errors(agent: Value) -> Vec<String> {
        check_options::<ClaudeProfile, Options>(&agent)
            .iter()
            .map(ConfigError::render)
            .collect()
    }

    #[test]
    fn describe_names_the_program_and_options() {
        let d = ClaudeProfile::describe();
        assert_eq!(d.id, "claude");
        assert_eq!(d.default_program, "claude");
        let schema = Options::schema();
        let mut options: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        options.sort();
        assert_eq!(
            options,
            [
                "allowed_tools",
                "extra_args",
                "max_turns",
                "permission_mode"
            ]
        );
    }

    #[test]
    fn bad_options_are_load_errors_with_their_place() {
        assert!(load_errors(json!({"model": "claude-sonnet-4-5", "max_turns": 3})).is_empty());
        assert_eq!(
            load_errors(json!({"max_turns": "ten"})),
            [
                "`max_turns` must be an integer, found a string \"ten\"; hint: for example: max_turns = 30"
            ]
        );
        assert_eq!(
            load_errors(json!({"max_turns": 0})),
            ["`max_turns` must be at least 1, found 0"]
        );
        assert_eq!(
            load_errors(json!({"permission_mode": "acceptedits"})),
            [
                "`permission_mode` is not a claude permission mode: \"acceptedits\"; hint: did you mean \"acceptEdits\"?"
            ]
        );
        assert_eq!(
            load_errors(json!({"allowed_tools": ["Bash,Edit"]})),
            [
                "`allowed_tools[0]` must be a single tool rule, found \"Bash,Edit\"; hint: one rule per entry: allowed_tools = [\"Bash\", \"Edit\"]"
            ]
        );
        assert_eq!(
            load_errors(json!({"run": [""]})),
            ["`run[0]` is an empty program name; hint: remove `run` to use `claude` from PATH"]
        );
        assert_eq!(
            load_errors(json!({"model": 4})),
            ["`model` must be a string, found 4"]
        );
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(json!({}))).unwrap();
        assert_eq!(inv.program, "claude");
        assert_eq!(
            inv.args,
            [
                "-p",
                "fix the tests",
                "--output-format",
                "json",
                "--permission-mode",
                "acceptEdits",
                "--allowedTools",
                "Bash"
            ]
        );
        assert_eq!(inv.stdin, None, "stdin is closed");
        assert!(!inv.prompt_file);
        assert!(inv.env.is_empty());
    }

    #[test]
    fn every_option() {
        let mut req = request(json!({
            "permission_mode": "dontAsk",
            "allowed_tools": ["Bash(cargo test:*)", "Edit"],
            "max_turns": 12,
            "extra_args": ["--verbose", "--add-dir", "../lib"],
        }));
        req.model = Some("claude-sonnet-4-5".into());
        let inv = build_invocation(req).unwrap();
        assert_eq!(
            inv.args,
            [
                "-p",
                "fix the tests",
                "--output-format",
                "json",
                "--permission-mode",
                "dontAsk",
                "--model",
                "claude-sonnet-4-5",
                "--allowedTools",
                "Bash(cargo test:*),Edit",
                "--max-turns",
                "12",
                "--verbose",
                "--add-dir",
                "../lib"
            ]
        );
    }

    #[test]
    fn an_empty_tool_list_passes_no_flag() {
        let inv = build_invocation(request(json!({"allowed_tools": []}))).unwrap();
        assert!(!inv.args.iter().any(|a| a == "--allowedTools"));
    }

    #[test]
    fn tool_entries_with_commas_are_refused_at_dispatch_too() {
        let err = build_invocation(request(json!({"allowed_tools": ["Bash,Edit"]}))).unwrap_err();
        assert!(
            err.starts_with("[agent]: `allowed_tools[0]` must be a single tool rule"),
            "{err}"
        );
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(json!({}));
        req.run = vec!["npx".into(), "@anthropic-ai/claude-code".into()];
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.program, "npx");
        assert_eq!(
            inv.args[..3],
            ["@anthropic-ai/claude-code", "-p", "fix the tests"]
        );
    }

    #[test]
    fn a_prompt_starting_with_a_dash_goes_after_dashes() {
        let mut req = request(json!({}));
        req.prompt = "- fix `tests`".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[0], "-p");
        assert_eq!(inv.args[1], "--output-format");
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "- fix `tests`"]);
        assert_eq!(inv.stdin, None);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(json!({}));
        req.prompt = "x".repeat(request::ARG_PROMPT_MAX + 1);
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[..3], ["-p", "--output-format", "json"]);
        assert!(inv.args.iter().all(|a| a.len() < 100));
        assert_eq!(
            inv.stdin.map(|s| s.len()),
            Some(request::ARG_PROMPT_MAX + 1)
        );
    }
}
