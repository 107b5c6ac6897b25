//! The verdict from what a run produced: pure, so every rule is tested natively
//! without running anything.
//!
//! A run that timed out is `error`, and so is one whose tool is missing ([`missing`]:
//! exit 126/127, "command not found", "No module named …" for what the command
//! names), with a summary that starts `missing tool:` and the metric `missing_tool`.
//! Otherwise the exit code decides first: a code outside `pass_codes` (or death by a
//! signal) is `fail`. With a passing code, each
//! configured rule (`match`, `json`, `junit`) must hold: a rule that does not hold
//! is `fail`, a rule that cannot be evaluated (stdout is not JSON, the report is
//! missing) is `error`.

use std::fmt::Write as _;
use std::time::Duration;

use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;

use crate::config::{Rule, Spec};
use crate::counts::{self, Counts};
use crate::evidence::{command_line, duration, streams};
use crate::failures::{self, Finding};
use crate::junit;
use crate::missing;

/// The summary of a run whose tool is missing starts with this.
pub const MISSING_TOOL: &str = "missing tool:";

/// What the program did.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// Exit code; `None` when killed (by a signal, or at the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// The host cut stdout or stderr at its cap.
    pub truncated: bool,
    pub duration: Duration,
    pub stdout: &'a str,
    pub stderr: &'a str,
}

/// The JUnit report after the run, as read from the workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum JunitFile {
    /// No `junit` in the config.
    NotConfigured,
    Missing,
    /// The file is older than the run: a previous run wrote it.
    Stale,
    Unreadable(String),
    Read(String),
}

/// The verdict and the findings whose files are still to be resolved.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

/// At most this many matching lines are shown for a `match` rule.
const MAX_MATCH_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Holds,
    Fails,
    Errs,
}

/// One rule's result: how bad, and the clause it adds to the summary.
struct Check {
    severity: Severity,
    clause: String,
}

/// Decide the verdict of a finished run.
pub fn decide(spec: &Spec, run: &Run, junit_file: JunitFile) -> Decision {
    let cmd = command_line(&spec.run);
    let mut details = String::new();
    let _ = writeln!(details, "$ {cmd}");
    if let Some(cwd) = &spec.cwd {
        let _ = writeln!(details, "(in {cwd}/)");
    }
    let took = duration(run.duration);

    if run.timed_out {
        let _ = writeln!(
            details,
            "timed out after {took}; the process group was killed"
        );
        details.push('\n');
        details.push_str(&streams(run.stdout, run.stderr));
        return Decision {
            verdict: Verdict::error(format!("`{cmd}` timed out after {took}"))
                .with_details(details)
                .with_metric("duration_ms", run.duration.as_millis() as f64),
            findings: Vec::new(),
        };
    }

    let combined = match (run.stdout.is_empty(), run.stderr.is_empty()) {
        (_, true) => run.stdout.to_owned(),
        (true, false) => run.stderr.to_owned(),
        (false, false) if run.stdout.ends_with('\n') => format!("{}{}", run.stdout, run.stderr),
        (false, false) => format!("{}\n{}", run.stdout, run.stderr),
    };
    let summary = counts::parse(&combined);
    let mut counts = summary.counts;
    let mut findings = failures::parse(&combined);
    let mut metrics: Vec<(String, f64)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();

    // The JUnit report, when configured: its counts and findings win over the output's.
    let report: Option<Result<(String, junit::Report), String>> = match (&spec.junit, junit_file) {
        (None, _) | (_, JunitFile::NotConfigured) => None,
        (Some(path), JunitFile::Read(xml)) => Some(
            junit::parse(&xml)
                .map(|r| (path.clone(), r))
                .map_err(|e| format!("junit report `{path}` is unusable: {e}")),
        ),
        (Some(path), JunitFile::Missing) => {
            Some(Err(format!("the run wrote no junit report at `{path}`")))
        }
        (Some(path), JunitFile::Stale) => Some(Err(format!(
            "junit report `{path}` is older than the run (a previous run wrote it)"
        ))),
        (Some(path), JunitFile::Unreadable(e)) => {
            Some(Err(format!("cannot read junit report `{path}`: {e}")))
        }
    };
    if let Some(Ok((_, r))) = &report {
        counts = Some(r.counts);
        if !r.findings.is_empty() {
            findings = r.findings.clone();
        }
    }

    let (exit_ok, exit_phrase) = match run.status {
        Some(code) => (spec.pass_codes.contains(&code), format!("exited {code}")),
        None => (false, format!("was killed by a signal after {took}")),
    };
    let _ = match run.status {
        Some(code) => writeln!(details, "exit {code} after {took}"),
        None => writeln!(details, "killed by a signal after {took}"),
    };
    if run.truncated {
        notes.push("the output was cut at the host's cap (1 MiB per stream)".into());
    }

    // A tool that could not start is not work for the agent.
    let ran_tests = counts.is_some() || summary.go_packages.is_some();
    if let Some(code) = run.status
        && !exit_ok
        && let Some(m) = missing::detect(&spec.run, code, &combined, ran_tests)
    {
        details.push('\n');
        details.push_str(&streams(run.stdout, run.stderr));
        let mut verdict = Verdict::error(format!(
            "{MISSING_TOOL} {}; `{cmd}` exited {code}; hint: install it where kazi runs, or change `run`",
            m.what
        ))
        .with_details(details)
        .with_metric("missing_tool", 1.0)
        .with_metric("exit_code", f64::from(code))
        .with_metric("duration_ms", run.duration.as_millis() as f64);
        if let Some(name) = m.name {
            verdict = verdict.with_diagnostic(None, None, format!("{MISSING_TOOL} {name}"));
        }
        return Decision {
            verdict,
            findings: Vec::new(),
        };
    }

    if !exit_ok {
        let clause = if spec.pass_codes != [0] && run.status.is_some() {
            format!(
                " (pass_codes: {})",
                spec.pass_codes
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        checks.push(Check {
            severity: Severity::Fails,
            clause,
        });
        if let Some(Err(problem)) = &report {
            notes.push(problem.clone());
        }
    } else {
        match &spec.rule {
            Some(Rule::Match { regex, pass_when }) => {
                let matches: Vec<_> = regex.find_iter(&combined).collect();
                let n = matches.len() as u64;
                metrics.push(("matches".into(), n as f64));
                let what = format!(
                    "{n} {} of /{}/",
                    if n == 1 { "match" } else { "matches" },
                    truncate(regex.as_str(), 60)
                );
                if pass_when.holds_for_count(n) {
                    checks.push(Check {
                        severity: Severity::Holds,
                        clause: format!("; {what} ({pass_when})"),
                    });
                } else {
                    checks.push(Check {
                        severity: Severity::Fails,
                        clause: format!("; {what}, want {pass_when}"),
                    });
                    if n > 0 {
                        notes.push(matching_lines(&combined, &matches));
                    }
                }
            }
            Some(Rule::Json { path, pass_when }) => match parse_json(run.stdout) {
                Err(e) => {
                    let cut = if run.truncated {
                        " (stdout was cut at the host's cap)"
                    } else {
                        ""
                    };
                    checks.push(Check {
                        severity: Severity::Errs,
                        clause: format!(", but its stdout is not JSON{cut}: {e}"),
                    });
                }
                Ok(doc) => match path.lookup(&doc) {
                    None => checks.push(Check {
                        severity: Severity::Errs,
                        clause: format!(", but its JSON output has no `{path}`"),
                    }),
                    Some(value) => {
                        if let Some(n) = value.as_f64() {
                            metrics.push(("json_value".into(), n));
                        }
                        let shown = truncate(&value.to_string(), 60).into_owned();
                        if pass_when.holds_for_value(value) {
                            checks.push(Check {
                                severity: Severity::Holds,
                                clause: format!("; {path} = {shown} ({pass_when})"),
                            });
                        } else {
                            checks.push(Check {
                                severity: Severity::Fails,
                                clause: format!("; {path} = {shown}, want {pass_when}"),
                            });
                        }
                    }
                },
            },
            None => {}
        }
        match &report {
            None => {}
            Some(Err(problem)) => checks.push(Check {
                severity: Severity::Errs,
                clause: format!(", but {problem}"),
            }),
            Some(Ok((path, r))) if r.failures + r.errors > 0 => {
                let mut parts = Vec::new();
                if r.failures > 0 {
                    parts.push(format!("{} failed", r.failures));
                }
                if r.errors > 0 {
                    parts.push(format!(
                        "{} {}",
                        r.errors,
                        if r.errors == 1 { "error" } else { "errors" }
                    ));
                }
                checks.push(Check {
                    severity: Severity::Fails,
                    clause: format!("; {path}: {} of {} tests", parts.join(", "), r.counts.total),
                });
            }
            Some(Ok(_)) => {}
        }
    }

    let severity = checks
        .iter()
        .map(|c| c.severity)
        .max()
        .unwrap_or(Severity::Holds);
    let mut line = format!("`{cmd}` {exit_phrase}");
    match (counts, summary.go_packages) {
        (Some(c), _) => {
            let _ = write!(line, ": {}", c.phrase());
        }
        (None, Some((ok, failed))) => {
            let _ = write!(line, ": {}", packages_phrase(ok, failed));
        }
        (None, None) => {}
    }
    for c in &checks {
        line.push_str(&c.clause);
    }

    for note in &notes {
        let _ = writeln!(details, "note: {note}");
    }
    details.push('\n');
    details.push_str(&streams(run.stdout, run.stderr));

    let mut verdict = match severity {
        Severity::Holds => Verdict::pass(line),
        Severity::Fails => Verdict::fail(line),
        Severity::Errs => Verdict::error(line),
    }
    .with_details(details);
    if let Some(c) = counts {
        verdict = with_counts(verdict, c);
    }
    if let Some((ok, failed)) = summary.go_packages {
        verdict = verdict
            .with_metric("packages_passed", ok as f64)
            .with_metric("packages_failed", failed as f64);
    }
    if let Some(code) = run.status {
        verdict = verdict.with_metric("exit_code", f64::from(code));
    }
    verdict = verdict.with_metric("duration_ms", run.duration.as_millis() as f64);
    for (name, value) in metrics {
        verdict = verdict.with_metric(name, value);
    }
    Decision { verdict, findings }
}

fn with_counts(v: Verdict, c: Counts) -> Verdict {
    let v = v
        .with_metric("tests_passed", c.passed as f64)
        .with_metric("tests_failed", c.failed as f64)
        .with_metric("tests_ignored", c.ignored as f64)
        .with_metric("tests_deselected", c.deselected as f64)
        .with_metric("tests_total", c.total as f64);
    if c.total > 0 {
        v.with_score(c.passed as f64 / c.total as f64)
    } else {
        v
    }
}

fn packages_phrase(ok: u64, failed: u64) -> String {
    let noun = |n: u64| if n == 1 { "package" } else { "packages" };
    match (ok, failed) {
        (ok, 0) => format!("{ok} {} ok", noun(ok)),
        (0, failed) => format!("{failed} {} failed", noun(failed)),
        (ok, failed) => format!("{ok} {} ok, {failed} failed", noun(ok)),
    }
}

/// The lines holding the first matches, for the details.
fn matching_lines(text: &str, matches: &[regex::Match]) -> String {
    let mut out = String::new();
    let mut last_start = usize::MAX;
    let mut shown = 0;
    for m in matches {
        let start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
        if start == last_start {
            continue;
        }
        last_start = start;
        let end = text[m.start()..]
            .find('\n')
            .map_or(text.len(), |i| m.start() + i);
        let _ = write!(out, "\n  {}", truncate(text[start..end].trim_end(), 200));
        shown += 1;
        if shown == MAX_MATCH_LINES {
            break;
        }
    }
    format!("matching lines (first {shown}):{out}")
}

/// stdout as JSON: the whole of it, or else the JSON that starts on a line of its
/// own after some leading noise (a banner, log lines), or else its last line.
pub fn parse_json(stdout: &str) -> Result<Value, String> {
    let trimmed = stdout.trim();
    if trimmed.is_empty() {
        return Err("stdout is empty".into());
    }
    let first_err = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut offset = 0;
    let mut tries = 0;
    for line in stdout.split_inclusive('\n') {
        if line.starts_with('{') || line.starts_with('[') {
            tries += 1;
            if let Ok(v) = serde_json::from_str::<Value>(stdout[offset..].trim()) {
                return Ok(v);
            }
            if tries == 20 {
                break;
            }
        }
        offset += line.len();
    }
    if let Some(last) = stdout.lines().rev().map(str::trim).find(|l| !l.is_empty())
        && let Ok(v) = serde_json::from_str::<Value>(last)
    {
        return Ok(v);
    }
    Err(format!(
        "{first_err} (it begins {})",
        truncate(&format!("{:?}", truncate(trimmed, 40)), 60)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Spec {
        Spec::parse(&Config::new(v)).unwrap()
    }

    fn run<'a>(status: Option<i32>, stdout: &'a str, stderr: &'a str) -> Run<'a> {
        Run {
            status,
            timed_out: false,
            truncated: false,
            duration: Duration::from_millis(1234),
            stdout,
            stderr,
        }
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_default()
    }

    fn metric(v: &Verdict, name: &str) -> Option<f64> {
        v.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    fn decide_plain(config: Value, r: &Run) -> Verdict {
        decide(&spec(config), r, JunitFile::NotConfigured).verdict
    }

    #[test]
    fn exit_zero_passes() {
        let v = decide_plain(json!({"run": ["make", "lint"]}), &run(Some(0), "ok\n", ""));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "`make lint` exited 0");
        assert!(
            v.details
                .starts_with("$ make lint\nexit 0 after 1.2s\n\n--- stdout ---\nok\n")
        );
        assert_eq!(metric(&v, "exit_code"), Some(0.0));
        assert_eq!(metric(&v, "duration_ms"), Some(1234.0));
        assert_eq!(v.score, None);
    }

    #[test]
    fn nonzero_exit_fails() {
        let v = decide_plain(
            json!({"run": ["make", "lint"]}),
            &run(Some(2), "", "boom\n"),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "`make lint` exited 2");
        assert!(v.details.contains("--- stderr ---\nboom\n"));
    }

    #[test]
    fn pass_codes() {
        let cfg = json!({"run": ["grep", "-r", "TODO", "src"], "pass_codes": [0, 1]});
        assert_eq!(
            decide_plain(cfg.clone(), &run(Some(1), "", "")).outcome,
            Outcome::Pass
        );
        let v = decide_plain(
            cfg,
            &run(Some(2), "", "grep: src: No such file or directory\n"),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "`grep -r TODO src` exited 2 (pass_codes: 0, 1)");
        let only_one = json!({"run": ["x"], "pass_codes": [1]});
        assert_eq!(
            decide_plain(only_one, &run(Some(0), "", "")).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn a_signal_fails_and_a_timeout_errs() {
        let v = decide_plain(
            json!({"run": ["./crash"]}),
            &run(None, "", "Segmentation fault\n"),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "`./crash` was killed by a signal after 1.2s");
        assert_eq!(metric(&v, "exit_code"), None);

        let mut r = run(None, "still going\n", "");
        r.timed_out = true;
        r.duration = Duration::from_secs(600);
        let v = decide_plain(json!({"run": ["cargo", "test"]}), &r);
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(v.summary, "`cargo test` timed out after 10m 0s");
        assert!(v.details.contains("still going"));
    }

    #[test]
    fn cargo_test_counts_score_and_findings() {
        let (out, err) = (fixture("cargo_fail.stdout"), fixture("cargo_fail.stderr"));
        let d = decide(
            &spec(json!({"run": ["cargo", "test", "--workspace"]})),
            &run(Some(101), &out, &err),
            JunitFile::NotConfigured,
        );
        let v = &d.verdict;
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "`cargo test --workspace` exited 101: 6 passed, 2 failed, 1 ignored"
        );
        assert_eq!(metric(v, "tests_passed"), Some(6.0));
        assert_eq!(metric(v, "tests_failed"), Some(2.0));
        assert_eq!(metric(v, "tests_ignored"), Some(1.0));
        assert_eq!(metric(v, "tests_total"), Some(9.0));
        assert_eq!(v.score, Some(6.0 / 9.0));
        assert_eq!(d.findings.len(), 2);
        assert!(v.details.contains("--- stdout ---") && v.details.contains("--- stderr ---"));

        let (out, err) = (fixture("cargo_pass.stdout"), fixture("cargo_pass.stderr"));
        let v = decide_plain(json!({"run": ["cargo", "test"]}), &run(Some(0), &out, &err));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "`cargo test` exited 0: 8 passed, 1 ignored");
    }

    #[test]
    fn go_packages_when_tests_are_not_listed() {
        let out = fixture("go_test_fail.stdout");
        let v = decide_plain(
            json!({"run": ["go", "test", "./..."]}),
            &run(Some(1), &out, ""),
        );
        assert_eq!(
            v.summary,
            "`go test ./...` exited 1: 1 package ok, 1 failed"
        );
        assert_eq!(metric(&v, "packages_failed"), Some(1.0));
        assert_eq!(metric(&v, "tests_total"), None);
    }

    #[test]
    fn match_rule() {
        let out = "warning: unused\nok\nwarning: dead code\n";
        let cfg = json!({"run": ["cargo", "build"], "match": "^warning:", "pass_when": "== 0"});
        let v = decide_plain(cfg.clone(), &run(Some(0), "", out));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "`cargo build` exited 0; 2 matches of /^warning:/, want == 0"
        );
        assert_eq!(metric(&v, "matches"), Some(2.0));
        assert!(
            v.details
                .contains("matching lines (first 2):\n  warning: unused\n  warning: dead code"),
            "{}",
            v.details
        );

        let v = decide_plain(cfg.clone(), &run(Some(0), "", "clean\n"));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "`cargo build` exited 0; 0 matches of /^warning:/ (== 0)"
        );

        // The exit code still decides first.
        let v = decide_plain(cfg, &run(Some(101), "", "error: x\n"));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "`cargo build` exited 101");

        // Default: at least one match; counted over stdout and stderr.
        let cfg = json!({"run": ["./check"], "match": "READY"});
        assert_eq!(
            decide_plain(cfg.clone(), &run(Some(0), "a\n", "READY\n")).outcome,
            Outcome::Pass
        );
        let v = decide_plain(cfg, &run(Some(0), "a\n", "b\n"));
        assert_eq!(
            v.summary,
            "`./check` exited 0; 0 matches of /READY/, want >= 1"
        );
    }

    #[test]
    fn json_rule() {
        let cfg = json!({"run": ["./report"], "json": "$.summary.failed", "pass_when": "== 0"});
        let v = decide_plain(
            cfg.clone(),
            &run(Some(0), r#"{"summary": {"failed": 2}}"#, ""),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "`./report` exited 0; $.summary.failed = 2, want == 0"
        );
        assert_eq!(metric(&v, "json_value"), Some(2.0));

        let v = decide_plain(
            cfg.clone(),
            &run(Some(0), "{\"summary\": {\"failed\": 0}}\n", ""),
        );
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "`./report` exited 0; $.summary.failed = 0 (== 0)"
        );

        let v = decide_plain(
            cfg.clone(),
            &run(
                Some(0),
                "Building…\n{\n  \"summary\": {\"failed\": 0}\n}\n",
                "",
            ),
        );
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.summary);

        let v = decide_plain(cfg.clone(), &run(Some(0), "no json here\n", ""));
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.summary
                .starts_with("`./report` exited 0, but its stdout is not JSON: "),
            "{}",
            v.summary
        );

        let v = decide_plain(cfg.clone(), &run(Some(0), "{\"other\": 1}", ""));
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(
            v.summary,
            "`./report` exited 0, but its JSON output has no `$.summary.failed`"
        );

        // A failing exit is a fail, whatever the JSON.
        assert_eq!(
            decide_plain(cfg, &run(Some(1), "junk", "")).outcome,
            Outcome::Fail
        );

        let cfg = json!({"run": ["./status"], "json": "state", "pass_when": "== \"ready\""});
        assert_eq!(
            decide_plain(cfg.clone(), &run(Some(0), r#"{"state": "ready"}"#, "")).outcome,
            Outcome::Pass
        );
        let v = decide_plain(cfg, &run(Some(0), r#"{"state": "starting"}"#, ""));
        assert_eq!(
            v.summary,
            "`./status` exited 0; state = \"starting\", want == \"ready\""
        );

        let cfg = json!({"run": ["./x"], "json": "$.ok", "pass_when": "== true"});
        assert_eq!(
            decide_plain(cfg, &run(Some(0), "{\"log\":1}\n{\"ok\":true}\n", "")).outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn junit_rule() {
        let cfg = json!({"run": ["pytest", "--junitxml=report.xml"], "junit": "report.xml"});
        let s = spec(cfg);
        let xml = fixture("pytest_junit.xml");
        // pytest exits 1 on failures: the exit code fails, and the report gives the findings.
        let d = decide(&s, &run(Some(1), "", ""), JunitFile::Read(xml.clone()));
        assert_eq!(d.verdict.outcome, Outcome::Fail);
        assert_eq!(
            d.verdict.summary,
            "`pytest --junitxml=report.xml` exited 1: 7 passed, 3 failed, 2 ignored"
        );
        assert_eq!(d.findings.len(), 3);
        assert!(
            d.findings[0]
                .message
                .starts_with("tests.test_calc.test_add_wrong failed")
        );

        // A report with failures fails even when the exit code passes.
        let d = decide(&s, &run(Some(0), "", ""), JunitFile::Read(xml));
        assert_eq!(d.verdict.outcome, Outcome::Fail);
        assert_eq!(
            d.verdict.summary,
            "`pytest --junitxml=report.xml` exited 0: 7 passed, 3 failed, 2 ignored; report.xml: 2 failed, 1 error of 12 tests"
        );

        let d = decide(
            &s,
            &run(Some(0), "", ""),
            JunitFile::Read(fixture("pytest_junit_pass.xml")),
        );
        assert_eq!(d.verdict.outcome, Outcome::Pass);
        assert_eq!(metric(&d.verdict, "tests_total"), Some(2.0));

        for (file, want) in [
            (
                JunitFile::Missing,
                "the run wrote no junit report at `report.xml`",
            ),
            (JunitFile::Stale, "is older than the run"),
            (
                JunitFile::Read("<html/>".into()),
                "unusable: the root element is <html>",
            ),
            (
                JunitFile::Unreadable("permission denied".into()),
                "cannot read junit report",
            ),
        ] {
            let d = decide(&s, &run(Some(0), "", ""), file);
            assert_eq!(d.verdict.outcome, Outcome::Error);
            assert!(d.verdict.summary.contains(want), "{}", d.verdict.summary);
        }
        // With a failing exit code a missing report is only a note.
        let d = decide(&s, &run(Some(2), "", "ImportError\n"), JunitFile::Missing);
        assert_eq!(d.verdict.outcome, Outcome::Fail);
        assert!(
            d.verdict
                .details
                .contains("note: the run wrote no junit report")
        );
    }

    /// Issue: a Python repo without pytest, `No module named pytest`, was a `fail`
    /// and kazi would have paid an agent to fix tooling.
    #[test]
    fn a_missing_tool_is_an_error_not_a_fail() {
        let v = decide_plain(
            json!({"run": ["python3", "-m", "pytest", "-q"]}),
            &run(Some(1), "", "/usr/bin/python3: No module named pytest\n"),
        );
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(
            v.summary,
            "missing tool: Python module `pytest` is not installed (/usr/bin/python3: No module named pytest); `python3 -m pytest -q` exited 1; hint: install it where kazi runs, or change `run`"
        );
        assert_eq!(metric(&v, "missing_tool"), Some(1.0));
        assert_eq!(metric(&v, "exit_code"), Some(1.0));
        assert_eq!(v.diagnostics[0].message, "missing tool: pytest");
        assert!(v.details.contains("No module named pytest"));

        // npm whose test script needs a tool that is not installed: exit 127.
        let v = decide_plain(
            json!({"run": ["npm", "test"]}),
            &run(
                Some(127),
                "\n> t\n> pnpm lint && vitest run\n",
                "sh: 1: pnpm: not found\n",
            ),
        );
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.summary
                .starts_with("missing tool: `pnpm` is not installed"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_failing_test_mentioning_a_missing_module_stays_a_fail() {
        let (out, err) = (fixture("pytest_fail.stdout"), fixture("pytest_fail.stderr"));
        let out = format!("{out}\nE   ModuleNotFoundError: No module named 'yaml'\n");
        let v = decide_plain(json!({"run": ["pytest"]}), &run(Some(1), &out, &err));
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.summary);
        assert_eq!(metric(&v, "missing_tool"), None);
        // create mode: the tests import the module the agent is to write.
        let v = decide_plain(
            json!({"run": ["python", "-m", "pytest"]}),
            &run(
                Some(2),
                "E   ModuleNotFoundError: No module named 'calc'\n=== 1 error in 0.04s ===\n",
                "",
            ),
        );
        assert_eq!(v.outcome, Outcome::Fail, "{}", v.summary);
        // The tool is fine when its exit code passes.
        let v = decide_plain(
            json!({"run": ["sh", "-c", "foo || true"], "pass_codes": [0]}),
            &run(Some(0), "", "sh: 1: foo: not found\n"),
        );
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn truncation_is_noted() {
        let mut r = run(Some(0), "x", "");
        r.truncated = true;
        let v = decide_plain(json!({"run": ["x"]}), &r);
        assert!(
            v.details
                .contains("note: the output was cut at the host's cap")
        );
    }

    #[test]
    fn details_stay_bounded() {
        let big: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        let v = decide_plain(json!({"run": ["x"]}), &run(Some(1), &big, &big));
        assert!(v.details.len() < 9 * 1024, "{}", v.details.len());
        assert!(v.details.contains("line 99999"));
    }

    #[test]
    fn cwd_shows_in_details() {
        let v = decide_plain(
            json!({"run": ["npm", "test"], "cwd": "web"}),
            &run(Some(0), "", ""),
        );
        assert!(v.details.starts_with("$ npm test\n(in web/)\n"));
    }
}
