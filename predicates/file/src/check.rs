//! Content checks on one file's bytes: pure functions, one [`Finding`] per check.

use kazi_sdk::json_path::{JsonPath, values_equal};
use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex_lite::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Check, quote, show_value};
use crate::diff::line_diff;
use crate::toml_json::table_to_json;

/// Bound on an `equals` diff.
pub const DIFF_BYTES: usize = 4096;
/// At most this many line diagnostics per check and file.
const MAX_LINE_DIAGNOSTICS: usize = 20;

/// The result of one check on one file (or of a presence or count check).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub ok: bool,
    /// One line, naming the file.
    pub message: String,
    /// Longer evidence (a diff), possibly empty.
    pub details: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Occurrences of unwanted text (`not_contains`, `not_matches`).
    pub occurrences: u64,
}

impl Finding {
    pub fn new(ok: bool, message: impl Into<String>) -> Self {
        Finding {
            ok,
            message: message.into(),
            details: String::new(),
            diagnostics: Vec::new(),
            occurrences: 0,
        }
    }

    fn diagnostic(mut self, file: &str, line: Option<u32>, message: impl Into<String>) -> Self {
        self.diagnostics.push(Diagnostic {
            file: Some(file.to_owned()),
            line,
            message: message.into(),
        });
        self
    }
}

/// Run every check on the content of `file`, one finding per check, in order.
pub fn check_file(file: &str, bytes: &[u8], checks: &[Check]) -> Vec<Finding> {
    let text = String::from_utf8_lossy(bytes);
    let mut json_doc: Option<Result<Value, Finding>> = None;
    let mut toml_doc: Option<Result<Value, Finding>> = None;
    checks
        .iter()
        .map(|check| match check {
            Check::Equals(expected) => equals(file, bytes, &text, expected),
            Check::Sha256(expected) => sha256(file, bytes, expected),
            Check::Contains(needle) => contains(file, &text, needle),
            Check::NotContains(needle) => not_contains(file, &text, needle),
            Check::Matches(re) => matches(file, &text, re),
            Check::NotMatches(re) => not_matches(file, &text, re),
            Check::Json(entries) => {
                let doc = json_doc.get_or_insert_with(|| parse_json(file, bytes));
                document(file, "JSON", doc, entries)
            }
            Check::Toml(entries) => {
                let doc = toml_doc.get_or_insert_with(|| parse_toml(file, bytes));
                document(file, "TOML", doc, entries)
            }
        })
        .collect()
}

fn equals(file: &str, bytes: &[u8], text: &str, expected: &str) -> Finding {
    if bytes == expected.as_bytes() {
        return Finding::new(true, format!("{file} equals {}", quote(expected)));
    }
    let diff = line_diff(expected, text, file, DIFF_BYTES);
    let Some(diff) = diff else {
        // Same text after lossy decoding: the file has bytes that are not UTF-8.
        return Finding::new(
            false,
            format!("{file} differs from the expected text (it is not valid UTF-8)"),
        );
    };
    let single_line = |s: &str| s.len() <= 60 && s.trim_end_matches('\n').lines().count() <= 1;
    let message = if single_line(expected) && single_line(text) {
        format!("{file} is {}, expected {}", quote(text), quote(expected))
    } else {
        format!(
            "{file} differs from the expected text at line {}",
            diff.first_line
        )
    };
    let line_message = match (&diff.expected_line, &diff.actual_line) {
        (Some(e), Some(a)) => format!(
            "expected {}, found {}",
            quote(&truncate(e, 80)),
            quote(&truncate(a, 80))
        ),
        (Some(e), None) => format!("missing line {}", quote(&truncate(e, 80))),
        (None, Some(a)) => format!("unexpected line {}", quote(&truncate(a, 80))),
        (None, None) => "differs".to_owned(),
    };
    let mut f = Finding::new(false, message).diagnostic(file, Some(diff.first_line), line_message);
    f.details = diff.text;
    f
}

fn sha256(file: &str, bytes: &[u8], expected: &str) -> Finding {
    let digest = Sha256::digest(bytes);
    let actual: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if actual == expected {
        Finding::new(true, format!("{file} has sha256 {}", &actual[..12]))
    } else {
        Finding::new(
            false,
            format!("{file} has sha256 {actual}, expected {expected}"),
        )
        .diagnostic(
            file,
            None,
            format!("sha256 is {actual}, expected {expected}"),
        )
    }
}

fn contains(file: &str, text: &str, needle: &str) -> Finding {
    if text.contains(needle) {
        Finding::new(true, format!("{file} contains {}", quote(needle)))
    } else {
        Finding::new(false, format!("{file} does not contain {}", quote(needle))).diagnostic(
            file,
            None,
            format!("missing {}", quote(needle)),
        )
    }
}

fn not_contains(file: &str, text: &str, needle: &str) -> Finding {
    let spans = text.match_indices(needle).map(|(i, m)| (i, i + m.len()));
    unwanted(file, text, &quote(needle), spans)
}

fn matches(file: &str, text: &str, re: &Regex) -> Finding {
    let shown = truncate(re.as_str(), 60);
    match re.find(text) {
        Some(m) => {
            let line = line_of(text, m.start());
            Finding::new(true, format!("{file} matches /{shown}/ at line {line}"))
        }
        None => Finding::new(false, format!("{file} does not match /{shown}/")).diagnostic(
            file,
            None,
            format!("no match for /{shown}/"),
        ),
    }
}

fn not_matches(file: &str, text: &str, re: &Regex) -> Finding {
    let spans = re
        .find_iter(text)
        .filter(|m| !m.is_empty())
        .map(|m| (m.start(), m.end()));
    let shown = format!("/{}/", truncate(re.as_str(), 60));
    // An empty match (`^$`, `x*`) is a match too: count it when nothing longer exists.
    let f = unwanted(file, text, &shown, spans);
    if f.ok && re.is_match(text) {
        let m = re.find(text).map_or(0, |m| m.start());
        let line = line_of(text, m);
        let mut f = Finding::new(false, format!("{file} matches {shown} at line {line}"))
            .diagnostic(file, Some(line), format!("matches {shown}"));
        f.occurrences = 1;
        return f;
    }
    f
}

/// A finding for text that must not occur, with the line of each occurrence.
fn unwanted(
    file: &str,
    text: &str,
    shown: &str,
    spans: impl Iterator<Item = (usize, usize)>,
) -> Finding {
    let mut lines = LineCounter::new(text);
    let mut count = 0u64;
    let mut diagnostics = Vec::new();
    let mut first_line = 0;
    for (start, end) in spans {
        count += 1;
        let line = lines.line_at(start);
        if count == 1 {
            first_line = line;
        }
        if diagnostics.len() < MAX_LINE_DIAGNOSTICS {
            diagnostics.push(Diagnostic {
                file: Some(file.to_owned()),
                line: Some(line),
                message: format!(
                    "unwanted {shown}: {}",
                    quote(&truncate(line_text(text, start, end), 80))
                ),
            });
        }
    }
    if count == 0 {
        return Finding::new(true, format!("{file} does not contain {shown}"));
    }
    let times = if count == 1 {
        "once".to_owned()
    } else {
        format!("{count} times")
    };
    let mut f = Finding::new(
        false,
        format!("{file} contains {shown} {times}, first at line {first_line}"),
    );
    if count as usize > diagnostics.len() {
        let more = count as usize - diagnostics.len();
        diagnostics.push(Diagnostic {
            file: Some(file.to_owned()),
            line: None,
            message: format!("and {more} more occurrences of {shown}"),
        });
    }
    f.diagnostics = diagnostics;
    f.occurrences = count;
    f
}

/// The full line(s) around a match, for a diagnostic.
fn line_text(text: &str, start: usize, end: usize) -> &str {
    let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    text[from..to].trim()
}

/// 1-based line numbers of increasing byte offsets, counted incrementally.
struct LineCounter<'t> {
    text: &'t str,
    offset: usize,
    line: u32,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> u32 {
        let newlines = self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.line = self.line.saturating_add(newlines as u32);
        self.offset = offset;
        self.line
    }
}

fn line_of(text: &str, offset: usize) -> u32 {
    LineCounter::new(text).line_at(offset)
}

fn parse_json(file: &str, bytes: &[u8]) -> Result<Value, Finding> {
    serde_json::from_slice(bytes).map_err(|e| {
        let line = u32::try_from(e.line()).ok().filter(|l| *l > 0);
        let why = e.to_string();
        Finding::new(false, format!("{file} is not valid JSON: {why}")).diagnostic(file, line, why)
    })
}

fn parse_toml(file: &str, bytes: &[u8]) -> Result<Value, Finding> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Finding::new(false, format!("{file} is not valid TOML: not UTF-8 ({e})")).diagnostic(
            file,
            None,
            "not UTF-8",
        )
    })?;
    text.parse::<toml::Table>()
        .map(|t| table_to_json(&t))
        .map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start.min(text.len())));
            let why = e.message().trim().to_owned();
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            Finding::new(false, format!("{file} is not valid TOML{at}: {why}"))
                .diagnostic(file, line, why)
        })
}

/// `json`/`toml`: every path must hold its expected value.
fn document(
    file: &str,
    kind: &str,
    doc: &Result<Value, Finding>,
    entries: &[(JsonPath, Value)],
) -> Finding {
    let doc = match doc {
        Ok(doc) => doc,
        Err(parse_failure) => return parse_failure.clone(),
    };
    let mut failures = Vec::new();
    let mut holds = Vec::new();
    for (path, expected) in entries {
        match path.lookup(doc) {
            Some(actual) if values_equal(actual, expected) => {
                holds.push(format!("{path} is {}", show_value(actual)));
            }
            Some(actual) => failures.push(format!(
                "{path} is {}, expected {}",
                show_value(actual),
                show_value(expected)
            )),
            None => failures.push(format!(
                "{path} is missing, expected {}",
                show_value(expected)
            )),
        }
    }
    if failures.is_empty() {
        return Finding::new(true, format!("{file}: {}", holds.join(", ")));
    }
    let mut f = Finding::new(false, format!("{file}: {}", failures.join(", ")));
    for why in &failures {
        f = f.diagnostic(file, None, format!("{kind} {why}"));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Spec;

    fn run(config: Value, content: &str) -> Vec<Finding> {
        let spec = Spec::parse(&Config::new(config)).unwrap();
        check_file("f.txt", content.as_bytes(), &spec.checks)
    }

    fn one(config: Value, content: &str) -> Finding {
        let mut f = run(config, content);
        assert_eq!(f.len(), 1);
        f.remove(0)
    }

    #[test]
    fn contains_and_not() {
        let f = one(json!({"path": "f", "contains": "ok"}), "all ok\n");
        assert!(f.ok);
        assert_eq!(f.message, "f.txt contains \"ok\"");
        let f = one(json!({"path": "f", "contains": "ok"}), "nope\n");
        assert!(!f.ok);
        assert_eq!(f.message, "f.txt does not contain \"ok\"");
    }

    #[test]
    fn not_contains_lists_lines() {
        let f = one(
            json!({"path": "f", "not_contains": "todo!()"}),
            "fn a() {\n    todo!()\n}\nfn b() { todo!() }\n",
        );
        assert!(!f.ok);
        assert_eq!(
            f.message,
            "f.txt contains \"todo!()\" 2 times, first at line 2"
        );
        assert_eq!(f.occurrences, 2);
        let lines: Vec<_> = f.diagnostics.iter().map(|d| d.line).collect();
        assert_eq!(lines, [Some(2), Some(4)]);
        assert_eq!(
            f.diagnostics[0].message,
            "unwanted \"todo!()\": \"todo!()\""
        );
        let f = one(json!({"path": "f", "not_contains": "todo!()"}), "done\n");
        assert!(f.ok);
        assert_eq!(f.message, "f.txt does not contain \"todo!()\"");
    }

    #[test]
    fn many_occurrences_are_bounded() {
        let text = "x\n".repeat(100);
        let f = one(json!({"path": "f", "not_contains": "x"}), &text);
        assert_eq!(f.occurrences, 100);
        assert_eq!(f.diagnostics.len(), MAX_LINE_DIAGNOSTICS + 1);
        assert_eq!(
            f.diagnostics.last().unwrap().message,
            "and 80 more occurrences of \"x\""
        );
    }

    #[test]
    fn regexes_are_multi_line() {
        let f = one(
            json!({"path": "f", "matches": "^version = \"\\d+\""}),
            "[package]\nversion = \"1\"\n",
        );
        assert!(f.ok, "{f:?}");
        assert_eq!(f.message, "f.txt matches /^version = \"\\d+\"/ at line 2");
        let f = one(json!({"path": "f", "matches": "^x$"}), "ax\n");
        assert!(!f.ok);
        assert_eq!(f.message, "f.txt does not match /^x$/");
    }

    #[test]
    fn not_matches_counts_matches() {
        let f = one(
            json!({"path": "f", "not_matches": "(?i)fixme"}),
            "a\nFIXME one\nb\nfixme two\n",
        );
        assert!(!f.ok);
        assert_eq!(f.occurrences, 2);
        assert_eq!(
            f.message,
            "f.txt contains /(?i)fixme/ 2 times, first at line 2"
        );
        let f = one(json!({"path": "f", "not_matches": "^$"}), "a\n\nb");
        assert!(!f.ok, "an empty line is an empty match: {f:?}");
        assert_eq!(f.message, "f.txt matches /^$/ at line 2");
        assert!(one(json!({"path": "f", "not_matches": "^$"}), "a\nb").ok);
    }

    #[test]
    fn equals_is_exact_with_a_diff() {
        assert!(one(json!({"path": "f", "equals": "1.0.0\n"}), "1.0.0\n").ok);
        let f = one(json!({"path": "f", "equals": "1.0.0\n"}), "1.0.0");
        assert!(!f.ok);
        assert_eq!(f.message, "f.txt is \"1.0.0\", expected \"1.0.0\\n\"");
        assert!(f.details.contains("no newline at end of file"));
        assert_eq!(
            f.diagnostics[0].message,
            "expected \"1.0.0\\n\", found \"1.0.0\""
        );
        let f = one(json!({"path": "f", "equals": "1.0.0\n"}), "0.9.0\n");
        assert_eq!(f.message, "f.txt is \"0.9.0\\n\", expected \"1.0.0\\n\"");
        assert_eq!(f.diagnostics[0].line, Some(1));
        assert_eq!(
            f.diagnostics[0].message,
            "expected \"1.0.0\\n\", found \"0.9.0\\n\""
        );
        let f = one(json!({"path": "f", "equals": "a\nb\nc\n"}), "a\nB\nc\n");
        assert_eq!(f.message, "f.txt differs from the expected text at line 2");
        assert_eq!(
            f.details,
            "--- expected\n+++ f.txt\n@@ line 2 @@\n a\n-b\n+B\n c\n"
        );
    }

    #[test]
    fn equals_on_invalid_utf8() {
        let spec = Spec::parse(&Config::new(json!({"path": "f", "equals": "\u{fffd}"}))).unwrap();
        let f = check_file("f", &[0xff], &spec.checks).remove(0);
        assert!(!f.ok);
        assert!(f.message.contains("not valid UTF-8"), "{}", f.message);
    }

    #[test]
    fn sha256_of_content() {
        // sha256("abc")
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let f = one(json!({"path": "f", "sha256": abc}), "abc");
        assert!(f.ok);
        assert_eq!(f.message, "f.txt has sha256 ba7816bf8f01");
        let f = one(json!({"path": "f", "sha256": abc}), "abd");
        assert!(!f.ok);
        assert!(f.message.ends_with(&format!("expected {abc}")));
    }

    #[test]
    fn json_paths() {
        let doc = r#"{"version": "1.0.0", "deps": {"a": 1}, "list": [1, 2]}"#;
        let f = one(
            json!({"path": "f", "json": {"$.version": "1.0.0", "deps.a": 1.0, "list[1]": 2}}),
            doc,
        );
        assert!(f.ok, "{f:?}");
        let f = one(
            json!({"path": "f", "json": {"$.version": "2.0.0", "missing": true}}),
            doc,
        );
        assert!(!f.ok);
        assert_eq!(
            f.message,
            "f.txt: $.version is \"1.0.0\", expected \"2.0.0\", missing is missing, expected true"
        );
        assert_eq!(f.diagnostics.len(), 2);
        let f = one(json!({"path": "f", "json": {"a": 1}}), "{\n  \"a\": 1,\n}");
        assert!(!f.ok);
        assert!(
            f.message.starts_with("f.txt is not valid JSON"),
            "{}",
            f.message
        );
        assert_eq!(f.diagnostics[0].line, Some(3));
    }

    #[test]
    fn toml_paths() {
        let doc = "[package]\nname = \"kazi\"\nversion = \"0.1.0\"\n[[bin]]\nname = \"k\"\n";
        let f = one(
            json!({"path": "f", "toml": {"package.version": "0.1.0", "bin[0].name": "k"}}),
            doc,
        );
        assert!(f.ok, "{f:?}");
        let f = one(
            json!({"path": "f", "toml": {"package.version": "1.0.0"}}),
            doc,
        );
        assert_eq!(
            f.message,
            "f.txt: package.version is \"0.1.0\", expected \"1.0.0\""
        );
        let f = one(json!({"path": "f", "toml": {"a": 1}}), "a = 1\nb = = 2\n");
        assert!(!f.ok);
        assert!(
            f.message.starts_with("f.txt is not valid TOML at line 2"),
            "{}",
            f.message
        );
        assert_eq!(f.diagnostics[0].line, Some(2));
    }

    #[test]
    fn document_and_text_checks_combine() {
        let f = run(
            json!({"path": "f", "json": {"a": 1}, "contains": "a"}),
            "{\"a\": 1}",
        );
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.ok));
    }
}
