//! Failure lines a person would look for first, turned into findings with a file
//! and line where the output carries one: Rust panics and compiler errors, pytest's
//! `FAILED`/`ERROR` summary, `go test`'s `--- FAIL`, jest's `●`, vitest's `FAIL`, and
//! `node --test`'s `not ok` (TAP) or `test at` (spec).

use std::collections::HashMap;

use crate::counts::{go_event, go_events};

/// At most this many findings are kept.
pub const MAX_FINDINGS: usize = 50;

/// One failure, before its file is resolved against the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// As printed: relative to the run's directory, absolute, or a bare file name
    /// (go prints names relative to the package).
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    /// For go: the import path of the failing package, to find the file's directory.
    pub go_package: Option<String>,
}

impl Finding {
    fn new(file: Option<&str>, line: Option<&str>, message: impl Into<String>) -> Finding {
        Finding {
            file: file.map(str::to_owned),
            line: line.and_then(|l| l.parse().ok()),
            message: message.into(),
            go_package: None,
        }
    }
}

re!(
    PANIC,
    r"^thread '([^']*)'(?: \(\d+\))? panicked at (.+?):(\d+):(\d+):$"
);
re!(
    PANIC_OLD,
    r"^thread '([^']*)'(?: \(\d+\))? panicked at '(.*)', (.+?):(\d+):(\d+)$"
);
re!(RUSTC_ERROR, r"^error(?:\[E\d+\])?: (.+)$");
re!(RUSTC_AT, r"^\s*--> (.+?):(\d+):(\d+)$");
re!(
    PYTEST_SUMMARY,
    r"^(FAILED|ERROR) ([^\s:]+)(?:::(\S+))?(?: - (.*))?$"
);
re!(PYTEST_SECTION, r"^_{3,} (.+?) _{3,}$");
re!(PYTEST_AT, r"^([^\s:]+\.py):(\d+): ");
re!(GO_RUN, r"^=== (?:RUN|CONT)\s+(\S+)");
re!(GO_RESULT, r"^\s*--- (FAIL|PASS|SKIP): (\S+)");
re!(GO_AT, r"^\s+([\w.\-]+\.go):(\d+): (.*)$");
re!(GO_PACKAGE_FAIL, r"^FAIL[ \t]+(\S+)[ \t]+(?:[\d.]+s|\[)");
re!(JEST_HEADER, r"^\s*● (.+)$");
re!(STACK_AT, r"^\s*at (?:.*\()?([^()\s]+):(\d+):(\d+)\)?$");
re!(VITEST_FAIL, r"^ FAIL  (.+?) > (.+)$");
re!(VITEST_AT, r"^\s*❯ ([^\s:]+):(\d+):(\d+)");
re!(TAP_NOT_OK, r"^(\s*)not ok \d+ - (.+?)(?: # .*)?$");
re!(TAP_LOCATION, r"^\s*location: '(.+):(\d+):(\d+)'$");
re!(TAP_ERROR, r"^\s*error: (.*)$");
re!(SPEC_AT, r"^test at (.+):(\d+):(\d+)$");
re!(SPEC_FAIL, r"^✖ (.+?) \([\d.]+m?s\)$");

/// Every failure recognised in a combined output, at most [`MAX_FINDINGS`].
pub fn parse(output: &str) -> Vec<Finding> {
    let lines: Vec<&str> = output.lines().collect();
    let mut out = Vec::new();
    if output.contains("panicked at") {
        rust_panics(&lines, &mut out);
    }
    if output.contains("error") && output.contains("--> ") {
        rustc_errors(&lines, &mut out);
    }
    if output.contains("FAILED ") || output.contains("ERROR ") {
        pytest(&lines, &mut out);
    }
    if output.contains("\"Action\"") {
        go_json(output, &mut out);
    } else if output.contains("--- FAIL") {
        go(&lines, &mut out);
    }
    if output.contains('●') {
        jest(&lines, &mut out);
    }
    if output.contains(" FAIL  ") {
        vitest(&lines, &mut out);
    }
    if output.contains("not ok ") {
        tap(&lines, &mut out);
    } else if output.contains("test at ") {
        node_spec(&lines, &mut out);
    }
    out.truncate(MAX_FINDINGS);
    out
}

/// Up to three lines of message after `start`, stopping at a blank line or a note.
fn message_after(lines: &[&str], start: usize) -> String {
    lines
        .iter()
        .skip(start)
        .take_while(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with("note:") && !t.starts_with("stack backtrace:")
        })
        .take(3)
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rust_panics(lines: &[&str], out: &mut Vec<Finding>) {
    for (i, line) in lines.iter().enumerate() {
        if let Some(c) = PANIC.captures(line) {
            let msg = message_after(lines, i + 1);
            let msg = if msg.is_empty() {
                "panicked".to_owned()
            } else {
                msg
            };
            out.push(Finding::new(
                Some(&c[2]),
                Some(&c[3]),
                format!("{} panicked: {msg}", &c[1]),
            ));
        } else if let Some(c) = PANIC_OLD.captures(line) {
            out.push(Finding::new(
                Some(&c[3]),
                Some(&c[4]),
                format!("{} panicked: {}", &c[1], &c[2]),
            ));
        }
    }
}

fn rustc_errors(lines: &[&str], out: &mut Vec<Finding>) {
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = RUSTC_ERROR.captures(line) else {
            continue;
        };
        let Some(at) = lines.get(i + 1).and_then(|l| RUSTC_AT.captures(l)) else {
            continue;
        };
        out.push(Finding::new(
            Some(&at[1]),
            Some(&at[2]),
            format!("error: {}", &c[1]),
        ));
    }
}

fn pytest(lines: &[&str], out: &mut Vec<Finding>) {
    // Where each failure section (`____ test_name ____`) points last.
    let mut located: HashMap<String, (String, String)> = HashMap::new();
    let mut section: Option<String> = None;
    for line in lines {
        if let Some(c) = PYTEST_SECTION.captures(line) {
            let name = c[1].trim();
            let name = [
                "ERROR at setup of ",
                "ERROR at teardown of ",
                "ERROR at call of ",
            ]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
            section = Some(name.to_owned());
        } else if line.starts_with("====") {
            section = None;
        } else if let (Some(name), Some(c)) = (&section, PYTEST_AT.captures(line)) {
            located.insert(name.clone(), (c[1].to_owned(), c[2].to_owned()));
        }
    }
    for line in lines {
        let Some(c) = PYTEST_SUMMARY.captures(line) else {
            continue;
        };
        let file = &c[2];
        if !file.ends_with(".py") {
            continue;
        }
        let test = c.get(3).map(|m| m.as_str());
        let key = test.map(|t| t.replace("::", "."));
        let at = key
            .as_ref()
            .and_then(|k| located.get(k))
            .filter(|(f, _)| f == file);
        let what = match test {
            Some(t) => format!("{file}::{t}"),
            None => file.to_owned(),
        };
        let kind = if &c[1] == "FAILED" { "failed" } else { "error" };
        let message = match c.get(4) {
            Some(m) => format!("{what} {kind}: {}", m.as_str()),
            None => format!("{what} {kind}"),
        };
        out.push(Finding::new(
            Some(file),
            at.map(|(_, l)| l.as_str()),
            message,
        ));
    }
}

/// Leaf failures only: a test whose subtest failed is not reported twice.
fn leaves(failed: Vec<(String, Finding)>) -> impl Iterator<Item = Finding> {
    let names: Vec<String> = failed.iter().map(|(n, _)| n.clone()).collect();
    failed.into_iter().filter_map(move |(name, f)| {
        let prefix = format!("{name}/");
        (!names.iter().any(|n| n.starts_with(&prefix))).then_some(f)
    })
}

fn go(lines: &[&str], out: &mut Vec<Finding>) {
    let mut current: Option<String> = None;
    // First `file.go:N: message` line seen while each test ran (or after its result).
    let mut at: HashMap<String, (String, String, String)> = HashMap::new();
    let mut failed: Vec<(String, Finding)> = Vec::new();
    for line in lines {
        if let Some(c) = GO_RUN.captures(line) {
            current = Some(c[1].to_owned());
        } else if let Some(c) = GO_RESULT.captures(line) {
            if &c[1] == "FAIL" {
                let name = c[2].to_owned();
                failed.push((
                    name.clone(),
                    Finding::new(None, None, format!("{name} failed")),
                ));
                current = Some(name);
            }
        } else if let Some(c) = GO_PACKAGE_FAIL.captures(line) {
            // The package line closes the package: its failures are the unassigned ones.
            for (_, f) in failed.iter_mut().filter(|(_, f)| f.go_package.is_none()) {
                f.go_package = Some(c[1].to_owned());
            }
        } else if let (Some(name), Some(c)) = (&current, GO_AT.captures(line)) {
            at.entry(name.clone())
                .or_insert_with(|| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()));
        }
    }
    for (name, f) in &mut failed {
        if let Some((file, line, msg)) = at.get(name.as_str()) {
            f.file = Some(file.clone());
            f.line = line.parse().ok();
            f.message = format!("{name}: {msg}");
        }
    }
    out.extend(leaves(failed));
}

fn go_json(output: &str, out: &mut Vec<Finding>) {
    let mut at: HashMap<(String, String), (String, String, String)> = HashMap::new();
    let mut failed: Vec<(String, Finding)> = Vec::new();
    for (v, _) in go_events(output) {
        let Some(e) = go_event(&v) else { continue };
        let Some(test) = e.test else { continue };
        let key = (e.package.to_owned(), test.to_owned());
        match e.action {
            "output" => {
                if let Some(c) = e
                    .output
                    .and_then(|o| GO_AT.captures(o.trim_end_matches('\n')))
                {
                    at.entry(key)
                        .or_insert_with(|| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()));
                }
            }
            "fail" => {
                let mut f = match at.get(&key) {
                    Some((file, line, msg)) => {
                        Finding::new(Some(file), Some(line), format!("{test}: {msg}"))
                    }
                    None => Finding::new(None, None, format!("{test} failed")),
                };
                f.go_package = Some(e.package.to_owned());
                failed.push((test.to_owned(), f));
            }
            _ => {}
        }
    }
    out.extend(leaves(failed));
}

/// The first stack location after `start` outside `node_modules` and node itself.
fn stack_location<'a>(lines: &[&'a str], start: usize, end: usize) -> Option<(&'a str, &'a str)> {
    lines[start..end].iter().find_map(|l| {
        let c = STACK_AT.captures(l)?;
        let file = c.get(1)?.as_str();
        (!file.contains("node_modules") && !file.starts_with("node:"))
            .then(|| (file, c.get(2).map_or("", |m| m.as_str())))
    })
}

fn first_text(lines: &[&str], start: usize, end: usize) -> Option<String> {
    lines[start..end]
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

fn jest(lines: &[&str], out: &mut Vec<Finding>) {
    let headers: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| JEST_HEADER.captures(l).map(|c| (i, c[1].trim().to_owned())))
        .filter(|(_, name)| name != "Console")
        .collect();
    for (k, (i, name)) in headers.iter().enumerate() {
        let end = headers
            .get(k + 1)
            .map_or(lines.len(), |(j, _)| *j)
            .min(i + 200)
            .min(lines.len());
        let msg = first_text(lines, i + 1, end).unwrap_or_else(|| "failed".into());
        let at = stack_location(lines, i + 1, end);
        out.push(Finding::new(
            at.map(|(f, _)| f),
            at.map(|(_, l)| l),
            format!("{name}: {msg}"),
        ));
    }
}

fn vitest(lines: &[&str], out: &mut Vec<Finding>) {
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = VITEST_FAIL.captures(line) else {
            continue;
        };
        let end = (i + 40).min(lines.len());
        let msg = first_text(lines, i + 1, end).unwrap_or_else(|| "failed".into());
        let at = lines[i + 1..end].iter().find_map(|l| VITEST_AT.captures(l));
        let name = format!("{} > {}", &c[1], &c[2]);
        match at {
            Some(at) => out.push(Finding::new(
                Some(&at[1]),
                Some(&at[2]),
                format!("{name}: {msg}"),
            )),
            None => out.push(Finding::new(Some(&c[1]), None, format!("{name}: {msg}"))),
        }
    }
}

fn tap(lines: &[&str], out: &mut Vec<Finding>) {
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = TAP_NOT_OK.captures(line) else {
            continue;
        };
        let name = c[2].to_owned();
        // The YAML block: indented `---` … `...` right after the result line.
        let mut location = None;
        let mut error = None;
        let mut suite = false;
        if lines.get(i + 1).is_some_and(|l| l.trim() == "---") {
            let mut j = i + 2;
            while j < lines.len() && lines[j].trim() != "..." {
                let l = lines[j];
                if let Some(loc) = TAP_LOCATION.captures(l) {
                    location = Some((loc[1].to_owned(), loc[2].to_owned()));
                } else if l.trim() == "failureType: 'subtestsFailed'" {
                    suite = true;
                } else if error.is_none()
                    && let Some(e) = TAP_ERROR.captures(l)
                {
                    let v = e[1].trim();
                    error = Some(if v == "|-" || v == "|" || v == ">-" {
                        lines
                            .get(j + 1)
                            .map_or(String::new(), |n| n.trim().to_owned())
                    } else {
                        v.trim_matches('\'').to_owned()
                    });
                }
                j += 1;
            }
        }
        if suite {
            continue;
        }
        let message = match error.filter(|e| !e.is_empty()) {
            Some(e) => format!("{name}: {e}"),
            None => format!("{name} failed"),
        };
        out.push(Finding::new(
            location.as_ref().map(|(f, _)| f.as_str()),
            location.as_ref().map(|(_, l)| l.as_str()),
            message,
        ));
    }
}

fn node_spec(lines: &[&str], out: &mut Vec<Finding>) {
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = SPEC_AT.captures(line) else {
            continue;
        };
        let Some(name) = lines.get(i + 1).and_then(|l| SPEC_FAIL.captures(l)) else {
            continue;
        };
        let end = (i + 10).min(lines.len());
        let msg = first_text(lines, (i + 2).min(end), end).unwrap_or_else(|| "failed".into());
        out.push(Finding::new(
            Some(&at[1]),
            Some(&at[2]),
            format!("{}: {msg}", &name[1]),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
        let read =
            |ext: &str| std::fs::read_to_string(format!("{dir}{name}.{ext}")).unwrap_or_default();
        format!("{}{}", read("stdout"), read("stderr"))
    }

    fn short(f: &[Finding]) -> Vec<(Option<&str>, Option<u32>, &str)> {
        f.iter()
            .map(|f| (f.file.as_deref(), f.line, f.message.as_str()))
            .collect()
    }

    #[test]
    fn cargo_test_panics() {
        let f = parse(&fixture("cargo_fail"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("core/src/lib.rs"),
                    Some(20),
                    "tests::adds_big panicked: assertion `left == right` failed left: 4 right: 5"
                ),
                (
                    Some("core/src/lib.rs"),
                    Some(14),
                    "tests::parses_junk panicked: called `Result::unwrap()` on an `Err` value: ParseIntError { kind: InvalidDigit }"
                ),
            ]
        );
    }

    #[test]
    fn old_panic_format() {
        let f = parse("thread 'main' panicked at 'boom', src/main.rs:3:5\n");
        assert_eq!(
            short(&f),
            [(Some("src/main.rs"), Some(3), "main panicked: boom")]
        );
    }

    #[test]
    fn rustc_errors_point_at_the_source() {
        let f = parse(&fixture("cargo_build_error"));
        assert_eq!(
            short(&f),
            [(
                Some("core/src/lib.rs"),
                Some(12),
                "error: cannot add `&str` to `u32`"
            )]
        );
    }

    #[test]
    fn nextest_panics() {
        let f = parse(&fixture("nextest_fail"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].file.as_deref(), Some("core/src/lib.rs"));
        assert_eq!(f[0].line, Some(20));
    }

    #[test]
    fn pytest_failed_and_error_lines() {
        let f = parse(&fixture("pytest_fail"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("tests/test_calc.py"),
                    Some(10),
                    "tests/test_calc.py::test_add_wrong failed: assert 4 == 5"
                ),
                (
                    Some("tests/test_calc.py"),
                    Some(17),
                    "tests/test_calc.py::TestDiv::test_div_zero failed: ZeroDivisionError: divisi..."
                ),
                (
                    Some("tests/test_calc.py"),
                    Some(29),
                    "tests/test_calc.py::test_uses_broken error: RuntimeError: db down"
                ),
            ]
        );
        let q = parse(&fixture("pytest_quiet_deselected"));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn go_verbose_failures_with_locations_and_packages() {
        let f = parse(&fixture("go_test_v_fail"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("calc_test.go"),
                    Some(14),
                    "TestSub: Sub(3, 1) = 1; want 2"
                ),
                (
                    Some("calc_test.go"),
                    Some(27),
                    "TestTable/one: got 2, want 1"
                ),
            ]
        );
        assert!(
            f.iter()
                .all(|f| f.go_package.as_deref() == Some("example.com/calc/internal/calc"))
        );
    }

    #[test]
    fn go_plain_failures() {
        let f = parse(&fixture("go_test_fail"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("calc_test.go"),
                    Some(14),
                    "TestSub: Sub(3, 1) = 1; want 2"
                ),
                (
                    Some("calc_test.go"),
                    Some(27),
                    "TestTable/one: got 2, want 1"
                ),
            ]
        );
        assert!(
            f.iter()
                .all(|f| f.go_package.as_deref() == Some("example.com/calc/internal/calc"))
        );
    }

    #[test]
    fn go_json_failures() {
        let f = parse(&fixture("go_test_json_fail"));
        assert_eq!(
            short(&f),
            [(
                Some("calc_test.go"),
                Some(14),
                "TestSub: Sub(3, 1) = 1; want 2"
            )]
        );
        assert_eq!(
            f[0].go_package.as_deref(),
            Some("example.com/calc/internal/calc")
        );
    }

    #[test]
    fn jest_failures() {
        let f = parse(&fixture("jest_fail"));
        assert_eq!(
            short(&f),
            [(
                Some("src/sum.test.js"),
                Some(4),
                "sum › adds 2 + 2: expect(received).toBe(expected) // Object.is equality"
            )]
        );
    }

    #[test]
    fn vitest_failures() {
        let f = parse(&fixture("vitest_fail"));
        assert_eq!(
            short(&f),
            [(
                Some("sum.test.mjs"),
                Some(4),
                "sum.test.mjs > sum > adds wrong: AssertionError: expected 4 to be 5 // Object.is equality"
            )]
        );
    }

    #[test]
    fn node_tap_failures_skip_suites() {
        let f = parse(&fixture("node_test_tap"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("/tmp/fx/js/test/math.test.js"),
                    Some(5),
                    "adds wrong: Expected values to be strictly equal:"
                ),
                (
                    Some("/tmp/fx/js/test/math.test.js"),
                    Some(10),
                    "nested fail: boom"
                ),
            ]
        );
    }

    #[test]
    fn node_spec_failures() {
        let f = parse(&fixture("node_test_spec"));
        assert_eq!(
            short(&f),
            [
                (
                    Some("test/math.test.js"),
                    Some(5),
                    "adds wrong: AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:"
                ),
                (
                    Some("test/math.test.js"),
                    Some(10),
                    "nested fail: Error: boom"
                ),
            ]
        );
    }

    #[test]
    fn passing_output_has_no_findings() {
        for name in ["cargo_pass", "pytest_quiet_pass", "go_test_pass"] {
            assert!(parse(&fixture(name)).is_empty(), "{name}");
        }
    }

    #[test]
    fn findings_are_bounded() {
        let many: String = (0..200)
            .map(|i| format!("thread 't{i}' panicked at src/lib.rs:{i}:1:\nboom\n\n"))
            .collect();
        assert_eq!(parse(&many).len(), MAX_FINDINGS);
    }
}
