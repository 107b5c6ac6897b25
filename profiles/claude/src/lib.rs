//! The builtin `claude` profile: Claude Code in headless mode.
//!
//! The agent runs as `claude -p PROMPT --output-format json --permission-mode MODE
//! [--model M] [--allowedTools T,…] [--max-turns N] [EXTRA…]` with a closed stdin,
//! and prints one JSON result envelope that [`envelope::parse_output`] reads. The
//! default permission mode is `acceptEdits` with `Bash` allowed: a headless run can
//! edit files and run commands, and unlike `bypassPermissions` it also works as root.
//! User documentation: `docs/profiles/claude.md`.

pub mod envelope;

use kazi_sdk::prelude::*;
use kazi_sdk::request::{self, Placement};

pub use envelope::parse_output;

/// The program run when the goal names none.
pub const PROGRAM: &str = "claude";

/// The options this profile understands under `[agent]`.
pub const OPTIONS: &[&str] = &[
    "permission_mode",
    "allowed_tools",
    "max_turns",
    "extra_args",
];

/// The default `--permission-mode`: file edits are accepted without asking, and it
/// is allowed for root (claude refuses `bypassPermissions` as root).
pub const DEFAULT_PERMISSION_MODE: &str = "acceptEdits";

/// The default `--allowedTools`: `acceptEdits` does not cover shell commands, and a
/// headless run cannot ask, so without this every command would be denied.
pub const DEFAULT_ALLOWED_TOOLS: &[&str] = &["Bash"];

/// The `claude` profile.
pub struct ClaudeProfile;

impl Profile for ClaudeProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "claude".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Claude Code headless: `claude -p PROMPT --output-format json`, permission mode acceptEdits with Bash allowed".into(),
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

export_profile!(ClaudeProfile);

/// The dispatch request → `claude -p …`.
pub fn build_invocation(req: Request) -> Result<Invocation, String> {
    let mode = request::string(&req, "permission_mode", "\"acceptEdits\"")?
        .unwrap_or_else(|| DEFAULT_PERMISSION_MODE.to_owned());
    let tools =
        request::strings(&req, "allowed_tools", "[\"Bash\", \"Edit\"]")?.unwrap_or_else(|| {
            DEFAULT_ALLOWED_TOOLS
                .iter()
                .map(|t| (*t).to_owned())
                .collect()
        });
    if let Some(bad) = tools
        .iter()
        .find(|t| t.trim().is_empty() || t.contains(','))
    {
        return Err(format!(
            "`[agent] allowed_tools` entries are single tool rules, got {bad:?}; hint: allowed_tools = [\"Bash\", \"Edit\"]"
        ));
    }
    let max_turns = request::positive(&req, "max_turns", "30")?;
    let extra = request::strings(&req, "extra_args", "[\"--verbose\"]")?.unwrap_or_default();
    let (program, mut args) = request::program(&req, PROGRAM)?;

    let placement = Placement::of(&req.prompt);
    args.push("-p".into());
    if placement == Placement::Argument {
        args.push(req.prompt.clone());
    }
    args.extend(["--output-format".into(), "json".into()]);
    args.extend(["--permission-mode".into(), mode]);
    if let Some(model) = request::model(&req) {
        args.extend(["--model".into(), model.to_owned()]);
    }
    if !tools.is_empty() {
        // One comma-separated value: the flag takes several values, and a separate
        // argument per tool could swallow what follows.
        args.extend(["--allowedTools".into(), tools.join(",")]);
    }
    if let Some(n) = max_turns {
        args.extend(["--max-turns".into(), n.to_string()]);
    }
    args.extend(extra);
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
        let d = ClaudeProfile::describe();
        assert_eq!(d.id, "claude");
        assert_eq!(d.default_program, "claude");
        assert_eq!(
            d.options,
            [
                "permission_mode",
                "allowed_tools",
                "max_turns",
                "extra_args"
            ]
        );
    }

    #[test]
    fn the_default_invocation() {
        let inv = build_invocation(request(&[])).unwrap();
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
        let mut req = request(&[
            ("permission_mode", "\"dontAsk\""),
            ("allowed_tools", "[\"Bash(cargo test:*)\", \"Edit\"]"),
            ("max_turns", "12"),
            ("extra_args", "[\"--verbose\", \"--add-dir\", \"../lib\"]"),
        ]);
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
        let inv = build_invocation(request(&[("allowed_tools", "[]")])).unwrap();
        assert!(!inv.args.iter().any(|a| a == "--allowedTools"));
    }

    #[test]
    fn tool_entries_with_commas_are_refused() {
        let err = build_invocation(request(&[("allowed_tools", "[\"Bash,Edit\"]")])).unwrap_err();
        assert!(err.contains("single tool rules"), "{err}");
    }

    #[test]
    fn options_of_the_wrong_type_are_config_errors() {
        let err = build_invocation(request(&[("max_turns", "\"many\"")])).unwrap_err();
        assert!(
            err.starts_with("`[agent] max_turns` must be a positive integer"),
            "{err}"
        );
        let err = build_invocation(request(&[("allowed_tools", "\"Bash\"")])).unwrap_err();
        assert!(
            err.starts_with("`[agent] allowed_tools` must be a list of strings"),
            "{err}"
        );
        let err = build_invocation(request(&[("permission_mode", "true")])).unwrap_err();
        assert!(
            err.contains("hint: permission_mode = \"acceptEdits\""),
            "{err}"
        );
    }

    #[test]
    fn run_names_a_wrapper_program() {
        let mut req = request(&[]);
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
        let mut req = request(&[]);
        req.prompt = "- fix `tests`".into();
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.args[0], "-p");
        assert_eq!(inv.args[1], "--output-format");
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "- fix `tests`"]);
        assert_eq!(inv.stdin, None);
    }

    #[test]
    fn a_huge_prompt_goes_to_stdin() {
        let mut req = request(&[]);
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
