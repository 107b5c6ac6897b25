//! Reading what `opencode run --format json` prints: one JSON event per line, each
//! `{type, timestamp, sessionID, …}`.
//!
//! Recorded from the real CLI: nothing at all (`opencode run` hung silently until it
//! was killed), which is what an empty stdout means here. From the documented event
//! stream (opencode's `run` command and its message parts; `tests/fixtures/
//! documented-*`): `text` with `part.text`, `step_finish` with `part.cost` and
//! `part.tokens` {`input`, `output`, `reasoning`, `cache` {`read`, `write`}},
//! `tool_use` with `part.tool` and `part.state` {`status`, `input`, `error`}, `error`
//! with `error` {`name`, `data.message`}, and `done` with the `rejected` permissions.
//! On stderr, `permission requested: … ; auto-rejecting` for each refused request.

use kazi_sdk::agent_output::{
    add, denial, error_text, failure, input_summary, json_lines, reason, result_text, strip_ansi,
};
use kazi_sdk::prelude::*;
use kazi_sdk::text::{tail_lines, truncate};

/// The program's name in messages.
const NAME: &str = "opencode";

/// The error when stdout is empty: the silent hang that only the timeout ends.
pub const NO_OUTPUT: &str = "opencode produced no output";

/// How opencode words a refused tool call: a rejection (`run` rejects every request
/// that would need asking) or a rule that denies it.
const REFUSALS: &[&str] = &[
    "The user rejected permission to use this specific tool call",
    "The user has specified a rule which prevents you from using this specific tool call",
];

/// What the event stream said, gathered.
#[derive(Debug, Default)]
struct Stream {
    events: usize,
    session_id: Option<String>,
    /// The last text part: the agent's final words.
    text: Option<String>,
    tokens: Tokens,
    cost: Option<f64>,
    errors: Vec<String>,
    denied_calls: Vec<String>,
    /// Permission names from the `done` event.
    rejected: Vec<String>,
}

fn text<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn object<'a>(
    map: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'a serde_json::Map<String, Value>> {
    map.get(key).and_then(Value::as_object)
}

fn read(stdout: &str) -> Stream {
    let mut s = Stream::default();
    for event in json_lines(stdout) {
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            continue;
        };
        s.events += 1;
        let part = object(&event, "part");
        if s.session_id.is_none() {
            s.session_id = text(&event, "sessionID")
                .or_else(|| part.and_then(|p| text(p, "sessionID")))
                .map(str::to_owned);
        }
        match (kind, part) {
            ("text", Some(part)) => {
                if let Some(t) = text(part, "text") {
                    s.text = Some(t.to_owned());
                }
            }
            ("step_finish", Some(part)) => step_finish(&mut s, part),
            ("tool_use", Some(part)) => tool_use(&mut s, part),
            ("error", _) => s.errors.push(error_message(event.get("error"))),
            ("done", _) => {
                if let Some(Value::Array(items)) = event.get("rejected") {
                    s.rejected
                        .extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                }
            }
            _ => {}
        }
    }
    s
}

/// Usage of one step. kazi's `input` is the tokens read fresh: opencode's `input`
/// (which excludes the cache) plus `cache.write`; `output` includes `reasoning`
/// (billed as output, counted apart by opencode); `cached` is `cache.read`.
fn step_finish(s: &mut Stream, part: &serde_json::Map<String, Value>) {
    if let Some(cost) = part.get("cost").and_then(Value::as_f64)
        && cost.is_finite()
        && cost >= 0.0
    {
        s.cost = Some(s.cost.unwrap_or(0.0) + cost);
    }
    let Some(tokens) = object(part, "tokens") else {
        return;
    };
    let count = |k: &str| tokens.get(k).and_then(Value::as_u64);
    let cache = object(tokens, "cache");
    let cache_count = |k: &str| cache.and_then(|c| c.get(k)).and_then(Value::as_u64);
    let mut input = None;
    add(&mut input, count("input"));
    add(&mut input, cache_count("write"));
    let mut output = None;
    add(&mut output, count("output"));
    add(&mut output, count("reasoning"));
    add(&mut s.tokens.input, input);
    add(&mut s.tokens.output, output);
    add(&mut s.tokens.cached, cache_count("read"));
}

fn tool_use(s: &mut Stream, part: &serde_json::Map<String, Value>) {
    let Some(state) = object(part, "state") else {
        return;
    };
    if text(state, "status") != Some("error") {
        return;
    }
    let refused = text(state, "error").is_some_and(|e| REFUSALS.iter().any(|r| e.starts_with(r)));
    if refused {
        let tool = text(part, "tool").unwrap_or("unknown tool");
        s.denied_calls
            .push(denial(tool, input_summary(state.get("input"))));
    }
}

fn error_message(error: Option<&Value>) -> String {
    let message = match error {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(e)) => object(e, "data")
            .and_then(|d| text(d, "message"))
            .or_else(|| text(e, "message"))
            .or_else(|| text(e, "name"))
            .map(str::to_owned),
        _ => None,
    };
    message.unwrap_or_else(|| format!("{NAME} reported an error without a message"))
}

/// `permission requested: bash (rm -rf /tmp/x); auto-rejecting` lines on stderr, as
/// `bash(rm -rf /tmp/x)`.
fn stderr_refusals(stderr: &str) -> Vec<String> {
    const ASKED: &str = "permission requested: ";
    strip_ansi(stderr)
        .lines()
        .filter_map(|line| {
            let at = line.find(ASKED)?;
            let rest = &line[at + ASKED.len()..];
            let what = rest.split("; auto-rejecting").next()?.trim();
            (!what.is_empty() && rest.contains("auto-rejecting"))
                .then(|| truncate(&what.replacen(" (", "(", 1), 160).into_owned())
        })
        .collect()
}

/// What opencode's output says. Error events decide; without them, a failed exit
/// takes its reason from stderr; an empty stdout is [`NO_OUTPUT`].
pub fn parse_output(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
    let s = read(stdout);
    let error = if stdout.trim().is_empty() {
        Some(match exit_code {
            Some(code) if code != 0 => {
                reason(stderr).unwrap_or_else(|| format!("{NO_OUTPUT} (exit code {code})"))
            }
            _ => NO_OUTPUT.to_owned(),
        })
    } else if !s.errors.is_empty() {
        error_text(&s.errors.join("; "))
    } else if exit_code == Some(0) {
        (s.events == 0).then(|| no_events(stdout))
    } else {
        Some(failure(NAME, exit_code, reason(stderr)))
    };
    // The most telling list of refusals: the calls themselves, else the requests on
    // stderr, else the permission names of the `done` event.
    let permission_denials = if !s.denied_calls.is_empty() {
        s.denied_calls
    } else {
        let from_stderr = stderr_refusals(stderr);
        if from_stderr.is_empty() {
            s.rejected
        } else {
            from_stderr
        }
    };
    Report {
        result: s.text.as_deref().and_then(result_text),
        tokens: s.tokens,
        cost_usd: s.cost,
        session_id: s.session_id,
        unparseable: exit_code == Some(0) && !stdout.trim().is_empty() && s.events == 0,
        permission_denials,
        error,
    }
}

fn no_events(stdout: &str) -> String {
    let tail = tail_lines(stdout, 2, 300);
    format!(
        "{NAME} printed no JSON events (its output ends: {}); hint: do not override `--format` in `[agent] extra_args`",
        truncate(&tail, 300)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Constructed from the documented event stream.
    const SUCCESS: &str = include_str!("../tests/fixtures/documented-success.jsonl");
    const ERROR: &str = include_str!("../tests/fixtures/documented-error.jsonl");
    const DENIED: &str = include_str!("../tests/fixtures/documented-denied.jsonl");
    const DENIED_STDERR: &str = include_str!("../tests/fixtures/documented-denied.stderr");

    #[test]
    fn the_silent_hang_is_no_output() {
        // Recorded: `opencode run "say hi" --format json` printed nothing for 60 s and
        // was killed.
        let r = parse_output(None, "", "");
        assert_eq!(r.error.as_deref(), Some("opencode produced no output"));
        assert_eq!(r.result, None);
        assert_eq!(r.tokens, Tokens::default());
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.session_id, None);
        assert_eq!(
            parse_output(Some(0), " \n", "").error.as_deref(),
            Some(NO_OUTPUT)
        );
    }

    #[test]
    fn no_output_with_a_failed_exit_takes_the_reason_from_stderr() {
        let stderr = "\u{1b}[91m\u{1b}[1mError: \u{1b}[0mSession not found\n";
        let r = parse_output(Some(1), "", stderr);
        assert_eq!(r.error.as_deref(), Some("Error: Session not found"));
        let r = parse_output(Some(1), "", "");
        assert_eq!(
            r.error.as_deref(),
            Some("opencode produced no output (exit code 1)")
        );
    }

    #[test]
    fn success_sums_steps_and_keeps_the_last_text() {
        let r = parse_output(Some(0), SUCCESS, "");
        assert_eq!(r.error, None);
        assert_eq!(
            r.result.as_deref(),
            Some("Fixed the off-by-one in src/range.rs; cargo test passes.")
        );
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(700 + 100 + 400),
                output: Some(120 + 150 + 30),
                cached: Some(9000 + 9500)
            }
        );
        let cost = r.cost_usd.unwrap();
        assert!((cost - 0.0123).abs() < 1e-12, "{cost}");
        assert_eq!(
            r.session_id.as_deref(),
            Some("ses_494719016ffe85dkDMj0FPRbHK")
        );
        assert!(r.permission_denials.is_empty());
    }

    #[test]
    fn an_error_event_is_the_error() {
        let r = parse_output(Some(1), ERROR, "");
        assert_eq!(r.error.as_deref(), Some("invalid x-api-key"));
        assert_eq!(
            r.session_id.as_deref(),
            Some("ses_4a0000000000000000000001")
        );
        assert_eq!(r.result, None);
    }

    #[test]
    fn error_shapes() {
        let line = |e: &str| format!("{{\"type\":\"error\",\"sessionID\":\"s\",\"error\":{e}}}\n");
        let r = parse_output(Some(1), &line("{\"name\":\"UnknownError\"}"), "");
        assert_eq!(r.error.as_deref(), Some("UnknownError"));
        let r = parse_output(Some(1), &line("\"boom\""), "");
        assert_eq!(r.error.as_deref(), Some("boom"));
        let r = parse_output(Some(1), &line("{\"message\":\"m\"}"), "");
        assert_eq!(r.error.as_deref(), Some("m"));
        let r = parse_output(Some(1), &line("null"), "");
        assert_eq!(
            r.error.as_deref(),
            Some("opencode reported an error without a message")
        );
        let two = format!("{}{}", line("\"a\""), line("\"b\""));
        assert_eq!(
            parse_output(Some(1), &two, "").error.as_deref(),
            Some("a; b")
        );
    }

    #[test]
    fn refused_tool_calls_are_denials() {
        let r = parse_output(Some(0), DENIED, DENIED_STDERR);
        assert_eq!(r.error, None);
        assert_eq!(
            r.permission_denials,
            ["bash(rm -rf /tmp/cache)", "edit(/etc/hosts)"]
        );
        assert_eq!(r.tokens.output, Some(80));
    }

    #[test]
    fn without_denied_calls_the_stderr_requests_are_the_denials() {
        let r = parse_output(Some(0), SUCCESS, DENIED_STDERR);
        assert_eq!(
            r.permission_denials,
            ["external_directory(/tmp/*)", "bash(rm -rf /tmp/cache)"]
        );
        let done = "{\"type\":\"done\",\"sessionID\":\"s\",\"reason\":\"idle\",\"rejected\":[\"doom_loop\"]}\n";
        assert_eq!(
            parse_output(Some(0), done, "").permission_denials,
            ["doom_loop"]
        );
    }

    #[test]
    fn other_tool_errors_are_not_denials() {
        let out = "{\"type\":\"tool_use\",\"sessionID\":\"s\",\"part\":{\"type\":\"tool\",\"tool\":\"read\",\"state\":{\"status\":\"error\",\"input\":{\"filePath\":\"/x\"},\"error\":\"File not found: /x\"}}}\n";
        assert!(parse_output(Some(0), out, "").permission_denials.is_empty());
    }

    #[test]
    fn a_killed_run_with_output_says_so() {
        let first = SUCCESS.lines().next().unwrap();
        let r = parse_output(None, first, "");
        assert_eq!(
            r.error.as_deref(),
            Some("opencode was stopped before it finished and gave no reason")
        );
        assert_eq!(
            r.session_id.as_deref(),
            Some("ses_494719016ffe85dkDMj0FPRbHK")
        );
    }

    #[test]
    fn exit_zero_with_text_but_no_events_is_an_error() {
        let r = parse_output(Some(0), "Hello!\n", "");
        assert!(
            r.error
                .unwrap()
                .starts_with("opencode printed no JSON events (its output ends: Hello!)")
        );
    }

    #[test]
    fn steps_without_usage_leave_usage_absent() {
        let out = "{\"type\":\"step_finish\",\"sessionID\":\"s\",\"part\":{\"type\":\"step-finish\",\"reason\":\"stop\"}}\n";
        let r = parse_output(Some(0), out, "");
        assert_eq!(r.tokens, Tokens::default());
        assert_eq!(r.cost_usd, None);
        let out = "{\"type\":\"step_finish\",\"sessionID\":\"s\",\"part\":{\"type\":\"step-finish\",\"cost\":0,\"tokens\":{\"input\":3,\"output\":4}}}\n";
        let r = parse_output(Some(0), out, "");
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(3),
                output: Some(4),
                cached: None
            }
        );
        assert_eq!(r.cost_usd, Some(0.0));
    }
}
