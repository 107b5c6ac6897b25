//! Reading what `codex exec --json` prints: one JSON event per line.
//!
//! Recorded from the real CLI (`tests/fixtures/codex-*`): `thread.started` with the
//! `thread_id`, `turn.started`, repeated `error` events while codex retries an
//! unreachable service, an `item.completed` whose item is an `error`, and a usage
//! error on stderr after a warning line. From the documented event types (codex's
//! `exec_events.rs`; `tests/fixtures/documented-*`): `item.completed` with an
//! `agent_message` item (`text`), `command_execution` items (status `declined` when
//! a command was refused), `turn.completed` with `usage` {`input_tokens`,
//! `cached_input_tokens`, `output_tokens`}, and `turn.failed` with `error.message`.

use kazi_sdk::agent_output::{add, denial, error_text, failure, json_lines, reason, result_text};
use kazi_sdk::prelude::*;
use kazi_sdk::text::{tail_lines, truncate};

/// The program's name in messages.
const NAME: &str = "codex";

/// What codex says outside a git repository.
const GIT_CHECK: &str = "--skip-git-repo-check";

/// What the event stream said, gathered.
#[derive(Debug, Default)]
struct Stream {
    events: usize,
    thread_id: Option<String>,
    /// The last agent message.
    message: Option<String>,
    tokens: Tokens,
    turns_completed: usize,
    /// The last `turn.failed` message.
    turn_failed: Option<String>,
    /// The last `error` event's message.
    error: Option<String>,
    /// The last `error` item's message (non-fatal notices).
    error_item: Option<String>,
    denials: Vec<String>,
}

fn text<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn read(stdout: &str) -> Stream {
    let mut s = Stream::default();
    for event in json_lines(stdout) {
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            continue;
        };
        s.events += 1;
        match kind {
            "thread.started" => {
                if let Some(id) = text(&event, "thread_id") {
                    s.thread_id = Some(id.to_owned());
                }
            }
            "turn.completed" => {
                s.turns_completed += 1;
                if let Some(Value::Object(usage)) = event.get("usage") {
                    let count = |k: &str| usage.get(k).and_then(Value::as_u64);
                    let cached = count("cached_input_tokens");
                    // codex counts cached tokens inside `input_tokens`; kazi's `input`
                    // is the part read fresh.
                    let fresh =
                        count("input_tokens").map(|i| i.saturating_sub(cached.unwrap_or(0)));
                    add(&mut s.tokens.input, fresh);
                    add(&mut s.tokens.output, count("output_tokens"));
                    add(&mut s.tokens.cached, cached);
                }
            }
            "turn.failed" => {
                let message = match event.get("error") {
                    Some(Value::Object(e)) => text(e, "message").map(str::to_owned),
                    Some(Value::String(e)) => Some(e.clone()),
                    _ => None,
                };
                s.turn_failed = Some(message.unwrap_or_else(|| "the turn failed".to_owned()));
            }
            "error" => {
                if let Some(m) = text(&event, "message") {
                    s.error = Some(m.to_owned());
                }
            }
            "item.completed" => {
                if let Some(Value::Object(item)) = event.get("item") {
                    read_item(&mut s, item);
                }
            }
            _ => {}
        }
    }
    s
}

fn read_item(s: &mut Stream, item: &serde_json::Map<String, Value>) {
    // `item_type` and `assistant_message` are the names of earlier releases.
    let kind = text(item, "type").or_else(|| text(item, "item_type"));
    match kind {
        Some("agent_message" | "assistant_message") => {
            if let Some(t) = text(item, "text") {
                s.message = Some(t.to_owned());
            }
        }
        Some("error") => {
            if let Some(m) = text(item, "message") {
                s.error_item = Some(m.to_owned());
            }
        }
        Some("command_execution") if text(item, "status") == Some("declined") => {
            let command =
                text(item, "command").map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "));
            s.denials.push(denial("command", command));
        }
        _ => {}
    }
}

/// What codex's output says. A completed turn with exit 0 is success, whatever
/// retries it went through; otherwise the error is the failed turn's message, else
/// the last error event, else the line of stderr that says what is wrong.
pub fn parse_output(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Report {
    let s = read(stdout);
    let mut error = if let Some(failed) = &s.turn_failed {
        error_text(failed)
    } else if exit_code == Some(0) {
        if s.turns_completed > 0 {
            None
        } else if let Some(e) = s.error.as_ref().or(s.error_item.as_ref()) {
            error_text(e)
        } else if s.events == 0 {
            Some(no_events(stdout))
        } else {
            Some(format!("{NAME} exited 0 without completing a turn"))
        }
    } else {
        let said = s
            .error
            .as_deref()
            .or(s.error_item.as_deref())
            .and_then(error_text);
        Some(failure(NAME, exit_code, said.or_else(|| reason(stderr))))
    };
    if let Some(e) = &mut error
        && (e.contains(GIT_CHECK) || stderr.contains(GIT_CHECK))
        && !e.contains("hint:")
    {
        e.push_str(
            "; hint: make the workspace a git repository (`git init`); a goal can instead set `[agent] skip_git_repo_check = true`",
        );
    }
    Report {
        result: s.message.as_deref().and_then(result_text),
        tokens: s.tokens,
        // codex reports no cost.
        cost_usd: None,
        session_id: s.thread_id,
        permission_denials: s.denials,
        unparseable: exit_code == Some(0) && !stdout.trim().is_empty() && s.events == 0,
        error,
    }
}

fn no_events(stdout: &str) -> String {
    let tail = tail_lines(stdout, 2, 300);
    if tail.is_empty() {
        format!("{NAME} exited 0 but printed nothing; hint: kazi needs `codex exec --json`")
    } else {
        format!(
            "{NAME} printed no JSON events (its output ends: {}); hint: do not override `--json` in `[agent] extra_args`",
            truncate(&tail, 300)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from the real CLI (codex 0.169.0).
    const OFFLINE: &str = include_str!("../tests/fixtures/codex-exec-offline.jsonl");
    const OFFLINE_STDERR: &str = include_str!("../tests/fixtures/codex-exec-offline.stderr");
    const UNKNOWN_ARGUMENT: &str = include_str!("../tests/fixtures/codex-unknown-argument.stderr");
    // Constructed from the documented event types.
    const SUCCESS: &str = include_str!("../tests/fixtures/documented-success.jsonl");
    const TURN_FAILED: &str = include_str!("../tests/fixtures/documented-turn-failed.jsonl");
    const DECLINED: &str = include_str!("../tests/fixtures/documented-declined.jsonl");

    #[test]
    fn offline_retries_killed_at_the_timeout_report_the_last_error() {
        let r = parse_output(None, OFFLINE, OFFLINE_STDERR);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "codex was stopped before it finished; its last message: Reconnecting... waiting for network (Connection failed: error sending request)"
            )
        );
        assert_eq!(
            r.session_id.as_deref(),
            Some("01a20af5-3739-78f0-ae60-e3974be62825")
        );
        assert_eq!(r.result, None);
        assert_eq!(r.tokens, Tokens::default(), "no turn completed: no usage");
        assert_eq!(r.cost_usd, None);
    }

    #[test]
    fn offline_with_an_exit_code_reports_the_error_event() {
        let r = parse_output(Some(1), OFFLINE, OFFLINE_STDERR);
        assert_eq!(
            r.error.as_deref(),
            Some("Reconnecting... waiting for network (Connection failed: error sending request)")
        );
    }

    #[test]
    fn an_unknown_argument_is_the_error_line_not_the_warning() {
        let r = parse_output(Some(2), "", UNKNOWN_ARGUMENT);
        assert_eq!(
            r.error.as_deref(),
            Some("error: unexpected argument '--bogus' found")
        );
        assert_eq!(r.session_id, None);
        assert_eq!(r.tokens, Tokens::default());
    }

    #[test]
    fn success_reports_the_last_message_and_fresh_input() {
        let r = parse_output(Some(0), SUCCESS, "Reading additional input from stdin...\n");
        assert_eq!(r.error, None);
        assert_eq!(
            r.result.as_deref(),
            Some("Fixed the off-by-one in src/range.rs; cargo test passes.")
        );
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(24_763 - 24_448),
                output: Some(122),
                cached: Some(24_448)
            }
        );
        assert_eq!(r.cost_usd, None, "codex reports no cost");
        assert_eq!(
            r.session_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert!(r.permission_denials.is_empty());
    }

    #[test]
    fn usage_is_summed_over_turns() {
        let out = concat!(
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":100,\"cached_input_tokens\":40,\"output_tokens\":7}}\n",
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":50,\"cached_input_tokens\":0,\"output_tokens\":3}}\n",
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}\n",
        );
        let r = parse_output(Some(0), out, "");
        assert_eq!(
            r.tokens,
            Tokens {
                input: Some(60 + 50 + 10),
                output: Some(11),
                cached: Some(40)
            }
        );
        let out = "{\"type\":\"turn.completed\",\"usage\":{\"output_tokens\":2}}\n";
        let r = parse_output(Some(0), out, "");
        assert_eq!(r.tokens.input, None, "absent, not zero");
        assert_eq!(r.tokens.cached, None);
    }

    #[test]
    fn transient_errors_before_a_completed_turn_are_not_errors() {
        let out = format!(
            "{{\"type\":\"error\",\"message\":\"Reconnecting... 2/5\"}}\n{}",
            SUCCESS
        );
        assert_eq!(parse_output(Some(0), &out, "").error, None);
    }

    #[test]
    fn a_failed_turn_is_the_error() {
        let r = parse_output(Some(1), TURN_FAILED, "");
        assert_eq!(
            r.error.as_deref(),
            Some(
                "unexpected status 401 Unauthorized: Missing bearer or basic authentication in header"
            )
        );
        assert_eq!(
            r.session_id.as_deref(),
            Some("0199a214-0000-7000-8000-000000000001")
        );
    }

    #[test]
    fn declined_commands_are_denials() {
        let r = parse_output(Some(0), DECLINED, "");
        assert_eq!(r.error, None);
        assert_eq!(
            r.permission_denials,
            ["command(bash -lc 'cargo test')", "command(rm -rf target)"]
        );
        assert_eq!(r.tokens.output, Some(60));
    }

    #[test]
    fn exit_zero_without_events_is_an_error() {
        let r = parse_output(Some(0), "hello\n", "");
        assert!(
            r.error
                .unwrap()
                .starts_with("codex printed no JSON events (its output ends: hello)")
        );
        let r = parse_output(Some(0), "", "");
        assert!(
            r.error
                .unwrap()
                .starts_with("codex exited 0 but printed nothing")
        );
        let r = parse_output(
            Some(0),
            "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n",
            "",
        );
        assert_eq!(
            r.error.as_deref(),
            Some("codex exited 0 without completing a turn")
        );
        let r = parse_output(
            Some(0),
            "{\"type\":\"error\",\"message\":\"quota exceeded\"}\n",
            "",
        );
        assert_eq!(r.error.as_deref(), Some("quota exceeded"));
    }

    #[test]
    fn a_killed_silent_run_says_so() {
        let r = parse_output(None, "", "");
        assert_eq!(
            r.error.as_deref(),
            Some("codex was stopped before it finished and gave no reason")
        );
    }

    #[test]
    fn outside_a_git_repository_the_hint_names_the_option() {
        let stderr =
            "Not inside a trusted directory and --skip-git-repo-check was not specified.\n";
        let r = parse_output(Some(1), "", stderr);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "Not inside a trusted directory and --skip-git-repo-check was not specified.; hint: make the workspace a git repository (`git init`); a goal can instead set `[agent] skip_git_repo_check = true`"
            )
        );
    }

    #[test]
    fn earlier_item_names_are_understood() {
        let out = concat!(
            "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_0\",\"item_type\":\"assistant_message\",\"text\":\"done\"}}\n",
            "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":1,\"cached_input_tokens\":0,\"output_tokens\":1}}\n",
        );
        assert_eq!(
            parse_output(Some(0), out, "").result.as_deref(),
            Some("done")
        );
    }
}
