//! Reading an agent's raw output, for profiles: JSON objects among noise, the stderr
//! line that says what went wrong, and bounds on what goes into a [`Report`](crate::Report).

use std::borrow::Cow;

use serde_json::Value;

use crate::text::{head_tail, tail_lines, truncate};

/// Bound on the result text, in bytes (head and tail are kept).
pub const RESULT_BYTES: usize = 16 * 1024;
/// Bound on an error message, in characters.
pub const ERROR_CHARS: usize = 1000;
/// Bound on one rendered permission denial, in characters.
pub const DENIAL_CHARS: usize = 160;

/// The result text, trimmed and bounded; `None` when blank.
pub fn result_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| head_tail(text, RESULT_BYTES).into_owned())
}

/// An error message, trimmed and bounded; `None` when blank.
pub fn error_text(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| truncate(text, ERROR_CHARS).into_owned())
}

/// Every line of `stdout` that is a JSON object, in order; other lines (logs,
/// warnings, a banner) are skipped.
pub fn json_lines(stdout: &str) -> impl Iterator<Item = serde_json::Map<String, Value>> + '_ {
    stdout.lines().filter_map(|line| {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    })
}

/// `text` without ANSI escape sequences (CSI `ESC [ … final` and two-byte `ESC x`):
/// some CLIs color their messages even when stderr is not a terminal.
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\u{1b}') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // A CSI sequence runs to its final byte; a two-byte escape is just dropped.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
    }
    Cow::Owned(out)
}

/// Whether a line is noise around an error: a warning, a usage block, a hint.
fn is_noise(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "warning:",
        "warn:",
        "tip:",
        "usage:",
        "for more information",
        "reading additional input",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// Whether a line states an error: `error: …` (clap, commander), `Error: …`,
/// `TypeError: …`, `fatal: …`.
fn is_error_line(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first.eq_ignore_ascii_case("error:")
        || first.eq_ignore_ascii_case("fatal:")
        || (first.ends_with("Error:") && first.len() > "Error:".len())
}

/// The line of `text` (usually stderr) that says what went wrong: the last line that
/// states an error, else the last few lines that are not warnings or usage help.
/// `None` when there is nothing but noise.
pub fn reason(text: &str) -> Option<String> {
    let clean = strip_ansi(text);
    let lines: Vec<&str> = clean
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(line) = lines.iter().rev().find(|l| is_error_line(l)) {
        return error_text(line);
    }
    let kept: Vec<&str> = lines.into_iter().filter(|l| !is_noise(l)).collect();
    error_text(&tail_lines(&kept.join("\n"), 3, ERROR_CHARS))
}

/// The error for a run that did not end well and whose output carried no message of
/// its own: the `reason`, or what is known about the exit.
pub fn failure(program: &str, exit_code: Option<i32>, reason: Option<String>) -> String {
    match (exit_code, reason) {
        (Some(_), Some(reason)) => reason,
        (Some(code), None) => format!("{program} exited with code {code} and gave no reason"),
        (None, Some(reason)) => {
            format!("{program} was stopped before it finished; its last message: {reason}")
        }
        (None, None) => format!("{program} was stopped before it finished and gave no reason"),
    }
}

/// Add a count to a running total; a count the output does not carry leaves the
/// total as it was (`None` stays `None`).
pub fn add(total: &mut Option<u64>, count: Option<u64>) {
    if let Some(count) = count {
        *total = Some(total.unwrap_or(0).saturating_add(count));
    }
}

/// A short, one-line summary of a tool call's input for a permission denial: the
/// field that says what the call would have touched, else the compact JSON.
pub fn input_summary(input: Option<&Value>) -> Option<String> {
    const KEYS: &[&str] = &[
        "command",
        "file_path",
        "filePath",
        "notebook_path",
        "path",
        "url",
        "pattern",
        "query",
    ];
    let input = input?;
    let text = match input {
        Value::Object(map) if map.is_empty() => return None,
        Value::Object(map) => KEYS
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .map_or_else(|| input.to_string(), str::to_owned),
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

/// A denial rendered as `Tool(summary)`, the shape of a permission rule.
pub fn denial(tool: &str, summary: Option<String>) -> String {
    let text = match summary {
        Some(summary) => format!("{tool}({summary})"),
        None => tool.to_owned(),
    };
    truncate(&text, DENIAL_CHARS).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_lines_skip_noise_and_non_objects() {
        let out = "log: starting\n{\"type\":\"a\"}\n[1,2]\n  {\"type\":\"b\"}  \n{broken\n";
        let types: Vec<String> = json_lines(out)
            .map(|m| m["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["a", "b"]);
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[91m\u{1b}[1mError: \u{1b}[0mboom"),
            "Error: boom"
        );
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("cut \u{1b}"), "cut ");
    }

    #[test]
    fn the_reason_is_the_error_line() {
        let stderr = "WARNING: proceeding\nerror: unexpected argument '--bogus' found\n\n  tip: x\n\nUsage: codex exec\n";
        assert_eq!(
            reason(stderr).as_deref(),
            Some("error: unexpected argument '--bogus' found")
        );
        assert_eq!(
            reason("\u{1b}[91mError: \u{1b}[0mSession not found\n").as_deref(),
            Some("Error: Session not found")
        );
        assert_eq!(
            reason("at x\nTypeError: fetch failed\n    at y (z.js:1)\n").as_deref(),
            Some("TypeError: fetch failed")
        );
    }

    #[test]
    fn without_an_error_line_the_reason_is_the_tail_without_noise() {
        assert_eq!(
            reason("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n").as_deref(),
            Some("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons")
        );
        assert_eq!(
            reason("a\nb\nc\nd\nWARNING: w\n").as_deref(),
            Some("b\nc\nd")
        );
        assert_eq!(reason("WARNING: only a warning\n\n"), None);
        assert_eq!(reason(""), None);
    }

    #[test]
    fn failure_says_what_is_known() {
        assert_eq!(failure("x", Some(2), Some("bad".into())), "bad");
        assert_eq!(
            failure("x", Some(2), None),
            "x exited with code 2 and gave no reason"
        );
        assert_eq!(
            failure("x", None, Some("retrying".into())),
            "x was stopped before it finished; its last message: retrying"
        );
        assert_eq!(
            failure("x", None, None),
            "x was stopped before it finished and gave no reason"
        );
    }

    #[test]
    fn add_keeps_absent_counts_absent() {
        let mut total = None;
        add(&mut total, None);
        assert_eq!(total, None);
        add(&mut total, Some(0));
        assert_eq!(total, Some(0));
        add(&mut total, Some(5));
        add(&mut total, None);
        assert_eq!(total, Some(5));
    }

    #[test]
    fn denials_read_like_permission_rules() {
        let input = json!({"command": "cargo test\n  --all", "description": "Run tests"});
        assert_eq!(
            denial("Bash", input_summary(Some(&input))),
            "Bash(cargo test --all)"
        );
        let input = json!({"file_path": "/ws/src/lib.rs", "content": "x"});
        assert_eq!(
            denial("Write", input_summary(Some(&input))),
            "Write(/ws/src/lib.rs)"
        );
        let input = json!({"a": 1});
        assert_eq!(
            denial("mcp__x", input_summary(Some(&input))),
            "mcp__x({\"a\":1})"
        );
        assert_eq!(denial("Read", input_summary(Some(&json!({})))), "Read");
        assert_eq!(denial("Read", input_summary(None)), "Read");
        let long = json!({"command": "x".repeat(500)});
        assert!(denial("Bash", input_summary(Some(&long))).chars().count() <= DENIAL_CHARS);
    }

    #[test]
    fn results_and_errors_are_bounded() {
        assert_eq!(result_text("  \n"), None);
        assert_eq!(result_text(" done \n").as_deref(), Some("done"));
        assert!(result_text(&"y".repeat(100_000)).unwrap().len() <= RESULT_BYTES + 64);
        assert!(error_text(&"e".repeat(5000)).unwrap().chars().count() <= ERROR_CHARS);
        assert_eq!(error_text(""), None);
    }
}
