//! JUnit XML reports (pytest `--junitxml`, Maven Surefire, go-junit-report,
//! `cargo nextest` junit, jest-junit …): test counts from the `<testcase>`
//! elements, and each `<failure>` or `<error>` as a finding with the file and line
//! the report carries.

use std::sync::LazyLock;

use regex::Regex;
use roxmltree::{Document, Node, ParsingOptions};

use crate::counts::Counts;
use crate::failures::{Finding, MAX_FINDINGS};

/// What a report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub counts: Counts,
    /// Failures and errors among the counted tests.
    pub failures: u64,
    pub errors: u64,
    pub findings: Vec<Finding>,
}

static LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*([\w./\\-]+\.[A-Za-z]+):(\d+):").expect("valid regex"));

/// Parse a report; the error says why it is not a JUnit report.
pub fn parse(xml: &str) -> Result<Report, String> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc =
        Document::parse_with_options(xml, options).map_err(|e| format!("not valid XML: {e}"))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(format!(
            "the root element is <{}>, not <testsuites> or <testsuite>",
            root.tag_name().name()
        ));
    }
    let cases: Vec<Node> = root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "testcase")
        .collect();
    if cases.is_empty() {
        return Ok(from_attributes(root));
    }
    let (mut passed, mut failures, mut errors, mut ignored) = (0, 0, 0, 0);
    let mut findings = Vec::new();
    for case in cases {
        let child = |name: &str| {
            case.children()
                .find(|c| c.is_element() && c.tag_name().name() == name)
        };
        let problem = child("failure")
            .map(|n| (n, "failed"))
            .or_else(|| child("error").map(|n| (n, "error")));
        match problem {
            Some((node, kind)) => {
                if kind == "failed" {
                    failures += 1;
                } else {
                    errors += 1;
                }
                if findings.len() < MAX_FINDINGS {
                    findings.push(finding(case, node, kind));
                }
            }
            None if child("skipped").is_some() => ignored += 1,
            None => passed += 1,
        }
    }
    Ok(Report {
        counts: Counts {
            passed,
            failed: failures + errors,
            ignored,
            total: passed + failures + errors + ignored,
            deselected: 0,
        },
        failures,
        errors,
        findings,
    })
}

/// A report without `<testcase>` elements: the root's own counts.
fn from_attributes(root: Node) -> Report {
    let attr = |name: &str| {
        root.attribute(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let tests = attr("tests");
    let failures = attr("failures");
    let errors = attr("errors");
    let ignored = attr("skipped").max(attr("disabled"));
    let passed = tests.saturating_sub(failures + errors + ignored);
    Report {
        counts: Counts {
            passed,
            failed: failures + errors,
            ignored,
            total: passed + failures + errors + ignored,
            deselected: 0,
        },
        failures,
        errors,
        findings: Vec::new(),
    }
}

fn finding(case: Node, problem: Node, kind: &str) -> Finding {
    let name = case.attribute("name").unwrap_or("(unnamed test)");
    let test = match case.attribute("classname").filter(|c| !c.is_empty()) {
        Some(class) => format!("{class}.{name}"),
        None => name.to_owned(),
    };
    let body = problem.text().unwrap_or("");
    let detail = problem
        .attribute("message")
        .filter(|m| !m.trim().is_empty())
        .or_else(|| body.lines().map(str::trim).find(|l| !l.is_empty()))
        .or_else(|| problem.attribute("type"))
        .unwrap_or("");
    let detail: String = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = if detail.is_empty() {
        format!("{test} {kind}")
    } else {
        format!("{test} {kind}: {detail}")
    };
    // The failing line from the body (`tests/test_x.py:10: AssertionError`) is more
    // precise than the test's own `file`/`line` attributes (pytest's are 0-based).
    let file_attr = case.attribute("file").filter(|f| !f.is_empty());
    let from_body = LOCATION
        .captures_iter(body)
        .filter(|c| file_attr.is_none_or(|f| f == &c[1]))
        .last();
    let (file, line) = match (from_body, file_attr) {
        (Some(c), _) => (Some(c[1].to_owned()), c[2].parse().ok()),
        (None, Some(f)) => (
            Some(f.to_owned()),
            case.attribute("line").and_then(|l| l.parse().ok()),
        ),
        (None, None) => (None, None),
    };
    Finding {
        file,
        line,
        message,
        go_package: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn pytest_report() {
        let r = parse(&fixture("pytest_junit.xml")).unwrap();
        // 12 cases: 7 passed, 2 failures, 1 error, 2 skipped (skip + xfail).
        assert_eq!(
            r.counts,
            Counts {
                passed: 7,
                failed: 3,
                ignored: 2,
                total: 12,
                deselected: 0,
            }
        );
        assert_eq!((r.failures, r.errors), (2, 1));
        let short: Vec<_> = r
            .findings
            .iter()
            .map(|f| (f.file.as_deref(), f.line, f.message.as_str()))
            .collect();
        assert_eq!(
            short,
            [
                (
                    Some("tests/test_calc.py"),
                    Some(10),
                    "tests.test_calc.test_add_wrong failed: assert 4 == 5 + where 4 = add(2, 2)"
                ),
                (
                    Some("tests/test_calc.py"),
                    Some(17),
                    "tests.test_calc.TestDiv.test_div_zero failed: ZeroDivisionError: division by zero"
                ),
                (
                    Some("tests/test_calc.py"),
                    Some(29),
                    "tests.test_calc.test_uses_broken error: failed on setup with \"RuntimeError: db down\""
                ),
            ]
        );
    }

    #[test]
    fn xunit1_report_prefers_the_failing_line() {
        let r = parse(&fixture("pytest_junit_xunit1.xml")).unwrap();
        assert_eq!(r.findings[0].file.as_deref(), Some("tests/test_calc.py"));
        assert_eq!(r.findings[0].line, Some(10));
    }

    #[test]
    fn passing_report() {
        let r = parse(&fixture("pytest_junit_pass.xml")).unwrap();
        assert_eq!(
            r.counts,
            Counts {
                passed: 2,
                failed: 0,
                ignored: 0,
                total: 2,
                deselected: 0,
            }
        );
        assert!(r.findings.is_empty());
    }

    #[test]
    fn surefire_report() {
        let r = parse(&fixture("surefire_junit.xml")).unwrap();
        assert_eq!(
            r.counts,
            Counts {
                passed: 1,
                failed: 2,
                ignored: 1,
                total: 4,
                deselected: 0,
            }
        );
        assert_eq!(r.findings.len(), 2);
        assert_eq!(
            r.findings[0].message,
            "com.example.CalcTest.divides failed: expected: <2> but was: <3>"
        );
        assert_eq!(r.findings[0].file, None);
        assert_eq!(
            r.findings[1].message,
            "com.example.CalcTest.parses error: For input string: \"x\""
        );
    }

    #[test]
    fn attribute_only_and_file_attributes() {
        let r = parse(r#"<testsuites tests="5" failures="1" errors="0" skipped="2"/>"#).unwrap();
        assert_eq!(
            r.counts,
            Counts {
                passed: 2,
                failed: 1,
                ignored: 2,
                total: 5,
                deselected: 0,
            }
        );
        let xml = r#"<testsuite><testcase name="t" file="src/a.ts" line="7"><failure>boom</failure></testcase></testsuite>"#;
        let r = parse(xml).unwrap();
        assert_eq!(r.findings[0].file.as_deref(), Some("src/a.ts"));
        assert_eq!(r.findings[0].line, Some(7));
        assert_eq!(r.findings[0].message, "t failed: boom");
    }

    #[test]
    fn not_a_report() {
        assert!(parse("<html/>").unwrap_err().contains("<html>"));
        assert!(parse("not xml").unwrap_err().starts_with("not valid XML"));
    }
}
