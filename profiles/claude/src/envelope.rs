//! Reading what `claude -p --output-format json` prints: one JSON result envelope
//! (`"type": "result"`), possibly after noise such as log lines or warnings. With
//! `--output-format stream-json` the envelope is the last of many JSON lines, so the
//! same reader works for both.
//!
//! Shapes: the failing envelope (`is_error: true`, "Not logged in"), the usage error
//! and the refusal of `bypassPermissions` as root are recorded from the real CLI
//! (`tests/fixtures/claude-*`). The success and denial envelopes follow the documented
//! result message (`result`, `usage`, `total_cost_usd`, `session_id`,
//! `permission_denials` of `{tool_name, tool_use_id, tool_input}`) and the recorded
//! envelope's field layout (`tests/fixtures/documented-*`).

use kazi_sdk::agent_output::{
    DENIAL_CHARS, add, denial, error_text, failure, input_summary, reason, result_text,
};
use kazi_sdk::prelude::*;
use kazi_sdk::text::{tail_lines, truncate};

/// The program's name in messages.
const NAME: &str = "claude";

/// What claude says on stderr when asked to skip permissions as root.
const ROOT_REFUSAL: &str = "cannot be used with root/sudo privileges";

/// The last JSON object in `stdout` whose `type` is `result`. Each line is tried
/// from its first `{` or `[`, from the last line up, so noise before or after the
/// envelope and a pretty-printed envelope are all found. With `--verbose`,
/// `--output-format json` prints one JSON array of every event instead of the envelope
/// alone: the array's last `result` event is the envelope.
pub fn find_envelope(stdout: &str) -> Option<serde_json::Map<String, Value>> {
    let starts = std::iter::once(0).chain(stdout.match_indices('\n').map(|(i, _)| i + 1));
    let starts: Vec<usize> = starts.filter(|&s| s < stdout.len()).collect();
    for &start in starts.iter().rev() {
        let end = stdout[start..]
            .find('\n')
            .map_or(stdout.len(), |i| start + i);
        let Some(open) = stdout[start..end].find(['{', '[']) else {
            continue;
        };
        let mut values =
            serde_json::Deserializer::from_str(&stdout[start + open..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(Value::Object(map))) if is_result(&map) => return Some(map),
            Some(Ok(Value::Array(events))) => {
                let last = events.into_iter().rev().find_map(|e| match e {
                    Value::Object(map) if is_result(&map) => Some(map),
                    _ => None,
                });
                if last.is_some() {
                    return last;
                }
            }
            _ => {}
        }
    }
    None
}

fn is_result(map: &serde_json::Map<String, Value>) -> bool {
    map.get("type").and_then(Value::as_str) == Some("result")
}

/// What claude's output says. The envelope decides when there is one; without one,
/// the error comes from stderr (a usage error, a crash) or from the exit.
pub fn parse_output(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
    let mut report = match find_envelope(stdout) {
        Some(envelope) => from_envelope(&envelope, exit_code, stderr),
        None => Report {
            error: Some(without_envelope(exit_code, stdout, stderr)),
            unparseable: exit_code == Some(0) && !stdout.trim().is_empty(),
            ..Report::default()
        },
    };
    if stderr.contains(ROOT_REFUSAL)
        && let Some(error) = &mut report.error
    {
        error.push_str(
            "; hint: claude refuses `bypassPermissions` and `--dangerously-skip-permissions` as root: \
             remove `[agent] permission_mode` to use the default \"acceptEdits\", and drop the flag from `extra_args`",
        );
    }
    report
}

fn from_envelope(
    envelope: &serde_json::Map<String, Value>,
    exit_code: Option<i32>,
    stderr: &str,
) -> Report {
    let text = envelope.get("result").and_then(Value::as_str).unwrap_or("");
    let subtype = envelope
        .get("subtype")
        .and_then(Value::as_str)
        .unwrap_or("");
    let is_error = envelope.get("is_error").and_then(Value::as_bool) == Some(true);
    let mut report = Report {
        tokens: tokens(envelope.get("usage")),
        cost_usd: cost(envelope),
        session_id: envelope
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        permission_denials: denials(envelope.get("permission_denials")),
        ..Report::default()
    };
    if is_error || subtype.starts_with("error") {
        // The text of a failed run is claude's own explanation ("Not logged in · Please
        // run /login"); error subtypes may carry an `errors` list instead.
        report.error = Some(
            error_text(text)
                .or_else(|| error_list(envelope.get("errors")))
                .unwrap_or_else(|| match subtype {
                    "error_max_turns" => format!(
                        "{NAME} reached its turn limit (`error_max_turns`); hint: raise `[agent] max_turns`"
                    ),
                    "" => format!("{NAME} reported an error without a message"),
                    other => format!("{NAME} ended with `{other}`"),
                }),
        );
    } else {
        report.result = result_text(text);
        if exit_code != Some(0) {
            report.error = Some(failure(NAME, exit_code, reason(stderr)));
        }
    }
    report
}

fn without_envelope(exit_code: Option<i32>, stdout: &str, stderr: &str) -> String {
    if exit_code != Some(0) {
        return failure(NAME, exit_code, reason(stderr).or_else(|| reason(stdout)));
    }
    let tail = tail_lines(stdout, 2, 300);
    if tail.is_empty() {
        format!("{NAME} exited 0 but printed nothing; hint: kazi needs `--output-format json`")
    } else {
        format!(
            "{NAME} printed no JSON result (its output ends: {}); hint: do not override `--output-format` in `[agent] extra_args`",
            truncate(&tail, 300)
        )
    }
}

/// Token counts. kazi's `input` is the tokens read fresh, which for claude is
/// `input_tokens` plus `cache_creation_input_tokens` (both billed as new input, the
/// second at a premium); `cached` is `cache_read_input_tokens`, the prompt prefix
/// served from the cache. The three are disjoint.
fn tokens(usage: Option<&Value>) -> Tokens {
    let Some(Value::Object(usage)) = usage else {
        return Tokens::default();
    };
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    let mut input = None;
    add(&mut input, count("input_tokens"));
    add(&mut input, count("cache_creation_input_tokens"));
    Tokens {
        input,
        output: count("output_tokens"),
        cached: count("cache_read_input_tokens"),
    }
}

/// `total_cost_usd` (older releases called it `cost_usd`).
fn cost(envelope: &serde_json::Map<String, Value>) -> Option<f64> {
    ["total_cost_usd", "cost_usd"]
        .iter()
        .find_map(|k| envelope.get(*k).and_then(Value::as_f64))
        .filter(|c| c.is_finite() && *c >= 0.0)
}

/// `permission_denials` rendered as `Tool(what it would have touched)`.
fn denials(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(d) => {
                let tool = d
                    .get("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown tool");
                Some(denial(tool, input_summary(d.get("tool_input"))))
            }
            Value::String(s) => Some(truncate(s, DENIAL_CHARS).into_owned()),
            _ => None,
        })
        .collect()
}

fn error_list(value: Option<&Value>) -> Option<String> {
    let Some(Value::Array(items)) = value else {
        return None;
    };
    let texts: Vec<String> = items
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .collect();
    error_text(&texts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from the real CLI (claude-code 2.1.197).
    const NOT_LOGGED_IN: &str = include_str!("../tests/fixtures/claude-not-logged-in.json");
    const ROOT_BYPASS: &str = include_str!("../tests/fixtures/claude-root-bypass.stderr");
    const UNKNOWN_OPTION: &str = include_str!("../tests/fixtures/claude-unknown-option.stderr");
    // Constructed from the documented result message and the recorded field layout.
    const SUCCESS: &str = include_str!("../tests/fixtures/documented-success.json");
    const DENY_ALL: &str = include_str!("../tests/fixtures/documented-deny-all.json");
    const STREAM: &str = include_str!("../tests/fixtures/documented-stream.jsonl");
    const MAX_TURNS: &str = include_str!("../tests/fixtures/documented-max-turns.json");
    const VERBOSE: &str = include_str!("../tests/fixtures/documented-verbose.json");
    // Recorded from the real CLI, twice: `--output-format json --verbose`, not logged in.
    const VERBOSE_1: &str = include_str!("../tests/fixtures/claude-verbose-not-logged-in-1.json");
    const VERBOSE_2: &str = include_str!("../tests/fixtures/claude-verbose-not-logged-in-2.json");

    #[test]
    fn not_logged_in_is_an_error_with_claudes_message() {
        let r = parse_output(Some(1), NOT_LOGGED_IN, "");
        assert_eq!(
            r.error.as_deref(),
            Some("Not logged in · Please run /login")
        );
        assert_eq!(r.result, None);
        assert_eq!(
            r.session_id.as_deref(),
            Some("6a6b9984-83ee-4918-a2ff-2f835cfb8a93")
        );
        // The envelope carries zeros: they are reported, not invented.
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(0),
                output: Some(0),
                cached: Some(0)
            }
        );
        assert_eq!(r.cost_usd, Some(0.0));
        assert!(r.permission_denials.is_empty());
    }

    #[test]
    fn not_logged_in_is_found_after_noise() {
        let stdout = format!(
            "npm WARN config production Use `--omit=dev` instead.\n[info] starting {{session}}\n{NOT_LOGGED_IN}\n"
        );
        let r = parse_output(Some(1), &stdout, "some warning\n");
        assert_eq!(
            r.error.as_deref(),
            Some("Not logged in · Please run /login")
        );
    }

    #[test]
    fn success_reports_result_tokens_cost_and_session() {
        let r = parse_output(Some(0), SUCCESS, "");
        assert_eq!(r.error, None);
        assert_eq!(
            r.result.as_deref(),
            Some("Fixed the off-by-one in `src/range.rs`; all tests pass.")
        );
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(1200 + 350),
                output: Some(300),
                cached: Some(18_000)
            }
        );
        assert_eq!(r.cost_usd, Some(0.0123));
        assert_eq!(
            r.session_id.as_deref(),
            Some("3f0c2a7e-5b1d-4e8a-9c6f-2d7b8e1a4c90")
        );
        assert!(r.permission_denials.is_empty());
    }

    #[test]
    fn denials_are_listed_and_usage_is_still_reported() {
        let r = parse_output(Some(0), DENY_ALL, "");
        assert_eq!(r.error, None);
        assert_eq!(
            r.permission_denials,
            ["Bash(cargo test)", "Write(/ws/src/range.rs)"]
        );
        assert_eq!(r.tokens.input, Some(2100));
        assert_eq!(r.tokens.output, Some(140));
        assert_eq!(r.cost_usd, Some(0.0071));
        assert!(r.result.unwrap().contains("permission"));
    }

    #[test]
    fn stream_json_reads_the_last_result_line() {
        let r = parse_output(Some(0), STREAM, "");
        assert_eq!(r.error, None);
        assert_eq!(r.result.as_deref(), Some("Done."));
        assert_eq!(r.tokens.output, Some(12));
        assert_eq!(r.session_id.as_deref(), Some("s-stream"));
    }

    /// `extra_args = ["--verbose"]`: one JSON array of every event. The report comes
    /// from its `result` event alone, so two runs that fail the same way read the same.
    #[test]
    fn verbose_output_reads_the_result_event_of_the_array() {
        let r = parse_output(Some(0), VERBOSE, "");
        assert_eq!(r.error, None);
        assert_eq!(
            r.result.as_deref(),
            Some("Fixed the off-by-one; all tests pass.")
        );
        assert_eq!(r.session_id.as_deref(), Some("0b7c3f9e-verbose"));
        assert_eq!(r.cost_usd, Some(0.0211));
        assert_eq!(r.tokens.output, Some(420));
        assert_eq!(r.tokens.input, Some(900 + 100));
        assert!(!r.unparseable);

        // Pretty-printed, and on one line after noise.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(VERBOSE).unwrap()).unwrap();
        assert_eq!(parse_output(Some(0), &pretty, ""), r);
        let one_line = format!("warming up\n{}\n", VERBOSE.trim().replace('\n', ""));
        assert_eq!(parse_output(Some(0), &one_line, ""), r);

        // A failing run: the same error both times, whatever else the events carry.
        let failing = |id: &str| {
            format!(
                "[{{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"{id}\",\"uuid\":\"{id}-u\"}},{NOT_LOGGED_IN}]"
            )
        };
        let a = parse_output(Some(1), &failing("a"), "");
        let b = parse_output(Some(1), &failing("b"), "");
        assert_eq!(
            a.error.as_deref(),
            Some("Not logged in · Please run /login")
        );
        assert_eq!(a.error, b.error);
        assert_eq!(a.result, b.result);
        // An array without a result event is not an envelope.
        let r = parse_output(Some(0), "[{\"type\":\"system\"}]\n", "");
        assert!(
            r.error
                .unwrap()
                .starts_with("claude printed no JSON result")
        );
    }

    /// The recorded `--verbose` arrays differ byte for byte; what the profile reads
    /// from them does not, so "the same failure twice" is seen as such.
    #[test]
    fn recorded_verbose_failures_read_the_same() {
        assert_ne!(VERBOSE_1, VERBOSE_2);
        let a = parse_output(Some(1), VERBOSE_1, "");
        let b = parse_output(Some(1), VERBOSE_2, "");
        assert_eq!(
            a.error.as_deref(),
            Some("Not logged in · Please run /login")
        );
        assert_eq!(a.result, None);
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.cost_usd, Some(0.0));
        assert_eq!(
            (a.error, a.result, a.unparseable),
            (b.error, b.result, b.unparseable)
        );
    }

    #[test]
    fn a_pretty_printed_envelope_is_found() {
        let pretty = "warming up\n{\n  \"type\": \"result\",\n  \"subtype\": \"success\",\n  \"is_error\": false,\n  \"result\": \"ok\",\n  \"usage\": {\n    \"input_tokens\": 5,\n    \"output_tokens\": 6\n  }\n}\n";
        let r = parse_output(Some(0), pretty, "");
        assert_eq!(r.result.as_deref(), Some("ok"));
        assert_eq!(r.tokens.input, Some(5));
        assert_eq!(r.tokens.cached, None, "absent, not zero");
    }

    #[test]
    fn max_turns_is_an_error_with_a_hint() {
        let r = parse_output(Some(1), MAX_TURNS, "");
        assert_eq!(
            r.error.as_deref(),
            Some(
                "claude reached its turn limit (`error_max_turns`); hint: raise `[agent] max_turns`"
            )
        );
        assert_eq!(r.tokens.output, Some(900));
    }

    #[test]
    fn error_subtypes_use_their_errors_list() {
        let out = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["API Error: 529 overloaded"]}"#;
        let r = parse_output(Some(1), out, "");
        assert_eq!(r.error.as_deref(), Some("API Error: 529 overloaded"));
        let out = r#"{"type":"result","subtype":"error_x","is_error":true}"#;
        assert_eq!(
            parse_output(Some(1), out, "").error.as_deref(),
            Some("claude ended with `error_x`")
        );
    }

    #[test]
    fn an_unknown_option_is_a_usage_error_from_stderr() {
        let r = parse_output(Some(1), "", UNKNOWN_OPTION);
        assert_eq!(
            r.error.as_deref(),
            Some("error: unknown option '--bogus-flag'")
        );
        assert_eq!(r.tokens, Tokens::default());
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.session_id, None);
    }

    #[test]
    fn bypass_as_root_is_refused_with_a_hint() {
        let r = parse_output(Some(1), "", ROOT_BYPASS);
        let error = r.error.unwrap();
        assert!(
            error.starts_with(
                "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons; hint: "
            ),
            "{error}"
        );
        assert!(error.contains("\"acceptEdits\""), "{error}");
    }

    #[test]
    fn exit_zero_without_an_envelope_is_an_error() {
        let r = parse_output(Some(0), "Hello! How can I help?\n", "");
        let error = r.error.unwrap();
        assert!(
            error.starts_with(
                "claude printed no JSON result (its output ends: Hello! How can I help?)"
            ),
            "{error}"
        );
        assert_eq!(r.result, None);
        let r = parse_output(Some(0), "", "");
        assert!(
            r.error
                .unwrap()
                .starts_with("claude exited 0 but printed nothing")
        );
        // JSON that is not a result envelope is not one.
        let r = parse_output(Some(0), "{\"type\":\"assistant\"}\n", "");
        assert!(r.error.is_some());
    }

    #[test]
    fn a_killed_run_says_so() {
        let r = parse_output(None, "", "");
        assert_eq!(
            r.error.as_deref(),
            Some("claude was stopped before it finished and gave no reason")
        );
        let r = parse_output(None, "", "Retrying in 30s…\n");
        assert_eq!(
            r.error.as_deref(),
            Some("claude was stopped before it finished; its last message: Retrying in 30s…")
        );
    }

    #[test]
    fn a_success_envelope_with_a_failed_exit_takes_the_reason_from_stderr() {
        let r = parse_output(Some(3), SUCCESS, "Error: EPIPE\n");
        assert_eq!(r.error.as_deref(), Some("Error: EPIPE"));
        assert!(r.result.is_some());
    }

    #[test]
    fn fields_of_the_wrong_type_are_absent() {
        let out = r#"{"type":"result","is_error":false,"result":"ok","total_cost_usd":"free","session_id":"","usage":{"input_tokens":-1,"output_tokens":"x"},"permission_denials":"none"}"#;
        let r = parse_output(Some(0), out, "");
        assert_eq!(r.result.as_deref(), Some("ok"));
        assert_eq!(r.cost_usd, None);
        assert_eq!(r.session_id, None);
        assert_eq!(r.tokens, Tokens::default());
        assert!(r.permission_denials.is_empty());
        let out = r#"{"type":"result","result":"ok","cost_usd":0.5,"usage":{"input_tokens":3}}"#;
        let r = parse_output(Some(0), out, "");
        assert_eq!(r.cost_usd, Some(0.5), "the older field name");
        assert_eq!(r.tokens.input, Some(3));
    }

    #[test]
    fn the_last_envelope_wins() {
        let out = format!("{NOT_LOGGED_IN}\n{}", SUCCESS.trim());
        assert_eq!(parse_output(Some(0), &out, "").error, None);
    }
}
