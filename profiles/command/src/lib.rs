//! The builtin `command` profile: any program as the agent.
//!
//! `[agent] run = ["./fix.sh", "--flag"]` names the program and its arguments. The
//! prompt goes to the program's stdin and into a file whose path is in
//! `KAZI_PROMPT_FILE` (`[agent] prompt_via` picks one of the two); the model, when the
//! goal names one, is in `KAZI_MODEL`. The report is the program's stdout (trimmed,
//! bounded) and, for a failed run, the tail of its stderr. Tokens, cost and a session
//! id are reported only when the program prints them as a final JSON line
//! `{"kazi": {...}}`; nothing is ever invented. User documentation: `docs/profiles.md`.

use kazi_sdk::prelude::*;
use kazi_sdk::text::{head_tail, tail_lines, truncate};

/// Bound on the result text, in bytes (head and tail are kept).
pub const RESULT_BYTES: usize = 16 * 1024;
/// The error message keeps at most this many last non-empty lines of output.
pub const ERROR_LINES: usize = 5;
/// Bound on the output quoted in an error, in bytes.
pub const ERROR_BYTES: usize = 1024;

/// Where the prompt goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromptVia {
    /// On the program's stdin.
    Stdin,
    /// In a file whose path is in `KAZI_PROMPT_FILE`.
    File,
    /// Both (the default).
    #[default]
    Both,
}

const PROMPT_VIA_EXAMPLE: &str = "both";

/// The `[agent]` options of the `command` profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Where the prompt goes: "stdin", "file" (its path in `KAZI_PROMPT_FILE`) or
    /// "both" (the default).
    #[schemars(example = PROMPT_VIA_EXAMPLE)]
    pub prompt_via: Option<PromptVia>,
}

/// The `command` profile.
pub struct CommandProfile;

impl Profile<Options> for CommandProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "command".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "any program as the agent: `[agent] run` names it; the prompt on stdin and in $KAZI_PROMPT_FILE".into(),
            // `[agent] run` names the program; there is no default.
            default_program: String::new(),
            options: Vec::new(),
        }
    }

    fn validate(agent: &Agent<Options>) -> Vec<ConfigError> {
        check_run(agent.run.as_deref()).into_iter().collect()
    }

    fn invocation(req: Request<Options>) -> Result<Invocation, String> {
        build_invocation(req)
    }

    fn parse(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
        parse_output(exit_code, stdout, stderr)
    }
}

export_profile!(CommandProfile);

/// `[agent] run` must name a program: this profile has no default.
pub fn check_run(run: Option<&[String]>) -> Option<ConfigError> {
    let hint = "set `[agent] run = [\"./fix.sh\"]`, the program kazi runs as the agent";
    match run.and_then(<[String]>::split_first) {
        None => Some(
            match run {
                // `run = []`: the key is there, but empty.
                Some(_) => ConfigError::at("run", "must name a program, and it is empty"),
                None => ConfigError::new(
                    "has no `run`: the `command` profile runs the program it names",
                ),
            }
            .with_hint(hint),
        ),
        Some((program, _)) if program.trim().is_empty() => {
            Some(ConfigError::at_path(&["run", "0"], "is an empty program name").with_hint(hint))
        }
        Some(_) => None,
    }
}

/// `[agent] run` → program and arguments, with the prompt on stdin and/or in a file.
pub fn build_invocation(req: Request<Options>) -> Result<Invocation, String> {
    if let Some(e) = check_run(Some(&req.run)) {
        return Err(format!("[agent]: {}", e.render()));
    }
    let via = req.options.prompt_via.unwrap_or_default();
    let (program, args) = req.run.split_first().expect("checked above");
    let mut env = Vec::new();
    if let Some(model) = req.model.filter(|m| !m.is_empty()) {
        env.push(("KAZI_MODEL".to_owned(), model));
    }
    Ok(Invocation {
        program: program.clone(),
        args: args.to_vec(),
        env,
        stdin: matches!(via, PromptVia::Stdin | PromptVia::Both).then_some(req.prompt),
        prompt_file: matches!(via, PromptVia::File | PromptVia::Both),
    })
}

/// What the program's output says. The result is stdout (trimmed, bounded, without a
/// final `{"kazi": …}` line); the error is set for a non-zero or missing exit code, or
/// when the `kazi` line carries one.
pub fn parse_output(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
    let (body, footer) = split_footer(stdout);
    let mut report = Report::default();
    let body = body.trim();
    if !body.is_empty() {
        report.result = Some(head_tail(body, RESULT_BYTES).into_owned());
    }
    let failure = match exit_code {
        Some(0) => None,
        Some(code) => Some(format!("exited with code {code}")),
        None => Some("killed (no exit code)".to_owned()),
    };
    if let Some(failure) = failure {
        // Most programs explain a failure on stderr; some only on stdout.
        let mut why = tail_lines(stderr, ERROR_LINES, ERROR_BYTES);
        if why.is_empty() {
            why = tail_lines(body, ERROR_LINES, ERROR_BYTES);
        }
        report.error = Some(if why.is_empty() {
            failure
        } else {
            format!("{failure}: {why}")
        });
    }
    if let Some(footer) = footer {
        apply_footer(&mut report, &footer);
    }
    report
}

/// Split off the last non-empty line of stdout when it is a JSON object with a `kazi`
/// object in it.
fn split_footer(stdout: &str) -> (&str, Option<serde_json::Map<String, Value>>) {
    let trimmed = stdout.trim_end();
    let start = trimmed.rfind('\n').map_or(0, |i| i + 1);
    let last = trimmed[start..].trim();
    if !last.starts_with('{') || !last.contains("\"kazi\"") {
        return (stdout, None);
    }
    match serde_json::from_str::<Value>(last) {
        Ok(Value::Object(mut outer)) => match outer.remove("kazi") {
            Some(Value::Object(fields)) => (&trimmed[..start], Some(fields)),
            _ => (stdout, None),
        },
        _ => (stdout, None),
    }
}

/// Take the fields the program reported about itself; a field of the wrong type is
/// ignored, never guessed.
fn apply_footer(report: &mut Report, fields: &serde_json::Map<String, Value>) {
    let count = |key: &str| fields.get(key).and_then(Value::as_u64);
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    report.tokens.input = count("tokens_in");
    report.tokens.output = count("tokens_out");
    report.tokens.cached = count("tokens_cached");
    report.cost_usd = fields
        .get("cost_usd")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite() && *c >= 0.0);
    report.session_id = text("session_id").map(str::to_owned);
    if let Some(result) = text("result") {
        report.result = Some(head_tail(result, RESULT_BYTES).into_owned());
    }
    if let Some(error) = text("error") {
        let error = truncate(error, ERROR_BYTES);
        report.error = Some(match report.error.take() {
            Some(exit) => format!("{exit}; {error}"),
            None => error.into_owned(),
        });
    }
    if let Some(Value::Array(items)) = fields.get("permission_denials") {
        report.permission_denials = items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| truncate(s, 200).into_owned())
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(run: &[&str]) -> Request<Options> {
        Request {
            prompt: "fix the tests".into(),
            workspace: "/ws".into(),
            model: None,
            run: run.iter().map(|s| (*s).to_owned()).collect(),
            options: Options::default(),
        }
    }

    fn load_errors(agent: Value) -> Vec<String> {
        check_options::<CommandProfile, Options>(&agent)
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.render()))
            .collect()
    }

    #[test]
    fn describe_has_no_default_program() {
        let d = CommandProfile::describe();
        assert_eq!(d.id, "command");
        assert_eq!(d.default_program, "");
        assert_eq!(
            Options::schema()["properties"].as_object().unwrap().len(),
            1
        );
    }

    #[test]
    fn a_missing_or_empty_run_is_a_load_error() {
        assert!(load_errors(json!({"run": ["./fix.sh"], "prompt_via": "file"})).is_empty());
        assert_eq!(
            load_errors(json!({})),
            [
                ": has no `run`: the `command` profile runs the program it names; hint: set `[agent] run = [\"./fix.sh\"]`, the program kazi runs as the agent"
            ]
        );
        assert_eq!(
            load_errors(json!({"run": []})),
            [
                "/run: `run` must name a program, and it is empty; hint: set `[agent] run = [\"./fix.sh\"]`, the program kazi runs as the agent"
            ]
        );
        assert_eq!(
            load_errors(json!({"run": [" "]}))[0],
            "/run/0: `run[0]` is an empty program name; hint: set `[agent] run = [\"./fix.sh\"]`, the program kazi runs as the agent"
        );
        assert_eq!(
            load_errors(json!({"run": ["x"], "prompt_via": "pipe"})),
            [
                "/prompt_via: `prompt_via` must be one of \"stdin\", \"file\", \"both\", found \"pipe\""
            ]
        );
    }

    #[test]
    fn run_becomes_program_and_args_with_the_prompt_twice() {
        let inv = build_invocation(request(&["./fix.sh", "--fast", "x y"])).unwrap();
        assert_eq!(inv.program, "./fix.sh");
        assert_eq!(inv.args, ["--fast", "x y"]);
        assert_eq!(inv.stdin.as_deref(), Some("fix the tests"));
        assert!(inv.prompt_file);
        assert!(inv.env.is_empty());
    }

    #[test]
    fn an_empty_run_says_what_to_write() {
        let err = build_invocation(request(&[])).unwrap_err();
        assert!(err.contains("`run` must name a program"), "{err}");
        assert!(
            err.contains("hint: set `[agent] run = [\"./fix.sh\"]`"),
            "{err}"
        );
        let err = build_invocation(request(&[" "])).unwrap_err();
        assert!(err.contains("empty program name"), "{err}");
    }

    #[test]
    fn the_model_is_passed_in_the_environment() {
        let mut req = request(&["agent"]);
        req.model = Some("m-1".into());
        let inv = build_invocation(req).unwrap();
        assert_eq!(inv.env, [("KAZI_MODEL".to_owned(), "m-1".to_owned())]);
    }

    #[test]
    fn prompt_via_picks_stdin_or_file() {
        let with = |v: PromptVia| {
            let mut req = request(&["agent"]);
            req.options.prompt_via = Some(v);
            build_invocation(req)
        };
        let inv = with(PromptVia::Stdin).unwrap();
        assert!(inv.stdin.is_some() && !inv.prompt_file);
        let inv = with(PromptVia::File).unwrap();
        assert!(inv.stdin.is_none() && inv.prompt_file);
        let inv = with(PromptVia::Both).unwrap();
        assert!(inv.stdin.is_some() && inv.prompt_file);
    }

    #[test]
    fn success_reports_trimmed_stdout_and_nothing_invented() {
        let r = parse_output(Some(0), "\n  fixed 3 files  \n\n", "warning: x\n");
        assert_eq!(r.result.as_deref(), Some("fixed 3 files"));
        assert_eq!(r.error, None);
        assert_eq!(r.tokens, Tokens::default());
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.session_id, None);
        assert!(r.permission_denials.is_empty());
        assert_eq!(parse_output(Some(0), " \n", "").result, None);
    }

    #[test]
    fn failure_quotes_the_end_of_stderr() {
        let stderr = "line 1\nline 2\n\nline 3\nline 4\nline 5\nline 6\n\n";
        let r = parse_output(Some(3), "partial\n", stderr);
        assert_eq!(
            r.error.as_deref(),
            Some("exited with code 3: line 2\nline 3\nline 4\nline 5\nline 6")
        );
        assert_eq!(r.result.as_deref(), Some("partial"));
        let r = parse_output(Some(1), "", "");
        assert_eq!(r.error.as_deref(), Some("exited with code 1"));
        let r = parse_output(Some(2), "only on stdout\n", "");
        assert_eq!(
            r.error.as_deref(),
            Some("exited with code 2: only on stdout")
        );
    }

    #[test]
    fn killed_has_no_exit_code() {
        let r = parse_output(None, "", "");
        assert_eq!(r.error.as_deref(), Some("killed (no exit code)"));
        let r = parse_output(None, "", "Terminated\n");
        assert_eq!(
            r.error.as_deref(),
            Some("killed (no exit code): Terminated")
        );
    }

    #[test]
    fn output_is_bounded() {
        let big = "x".repeat(100_000);
        let r = parse_output(Some(1), &big, &big);
        assert!(r.result.unwrap().len() <= RESULT_BYTES + 64);
        assert!(r.error.unwrap().len() <= ERROR_BYTES + 64);
    }

    #[test]
    fn a_final_kazi_line_reports_usage() {
        let stdout = "did the thing\n{\"kazi\": {\"tokens_in\": 1200, \"tokens_out\": 300, \"tokens_cached\": 50, \"cost_usd\": 0.02, \"session_id\": \"s-1\", \"permission_denials\": [\"Bash(rm)\"]}}\n";
        let r = parse_output(Some(0), stdout, "");
        assert_eq!(r.result.as_deref(), Some("did the thing"));
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(1200),
                output: Some(300),
                cached: Some(50)
            }
        );
        assert_eq!(r.cost_usd, Some(0.02));
        assert_eq!(r.session_id.as_deref(), Some("s-1"));
        assert_eq!(r.permission_denials, ["Bash(rm)"]);
    }

    #[test]
    fn the_kazi_line_fields_are_optional_and_typed() {
        let r = parse_output(
            Some(0),
            "{\"kazi\": {\"tokens_in\": \"many\", \"cost_usd\": -1, \"result\": \"done\"}}",
            "",
        );
        assert_eq!(r.tokens.input, None);
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.result.as_deref(), Some("done"));
        let r = parse_output(Some(0), "{\"kazi\": {\"error\": \"no API key\"}}", "");
        assert_eq!(r.error.as_deref(), Some("no API key"));
        assert_eq!(r.result, None);
        let r = parse_output(Some(4), "{\"kazi\": {\"error\": \"quota\"}}", "boom\n");
        assert_eq!(r.error.as_deref(), Some("exited with code 4: boom; quota"));
    }

    #[test]
    fn other_json_lines_are_plain_output() {
        let stdout = "{\"status\": \"ok\"}\n";
        let r = parse_output(Some(0), stdout, "");
        assert_eq!(r.result.as_deref(), Some("{\"status\": \"ok\"}"));
        let stdout = "{\"kazi\": 3}\n";
        assert_eq!(
            parse_output(Some(0), stdout, "").result.as_deref(),
            Some("{\"kazi\": 3}")
        );
        let stdout = "{\"kazi\": {\"tokens_in\": 1}}\ntrailing text\n";
        let r = parse_output(Some(0), stdout, "");
        assert_eq!(r.tokens.input, None, "only the last line counts");
    }
}
