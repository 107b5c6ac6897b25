//! Test counts read from a test runner's output: `cargo test` (every
//! `test result:` line, summed), `cargo nextest`, `go test` (`-v` result lines,
//! `-json` events, and the `ok`/`FAIL` package lines), `pytest`, `node --test` (TAP
//! and spec reporters), jest and vitest. Counts from several runners in one output
//! (a `make test` running two suites) are added up.

use serde_json::Value;

/// How many tests passed, failed and were skipped. `total` is their sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    /// Skipped, ignored, todo and expected failures: tests that ran or were
    /// declared but count neither way. Tests filtered out (deselected) are left out.
    pub ignored: u64,
    pub total: u64,
    /// Tests collected and then filtered out of the run (pytest's `deselected`): not
    /// in `total`, but a rise means tests stopped running.
    pub deselected: u64,
}

impl Counts {
    fn new(passed: u64, failed: u64, ignored: u64) -> Counts {
        Counts {
            passed,
            failed,
            ignored,
            total: passed + failed + ignored,
            deselected: 0,
        }
    }

    fn add(self, other: Counts) -> Counts {
        Counts {
            deselected: self.deselected + other.deselected,
            ..Counts::new(
                self.passed + other.passed,
                self.failed + other.failed,
                self.ignored + other.ignored,
            )
        }
    }

    /// `3 passed, 1 failed, 2 ignored`: failed only when some failed or none
    /// passed, ignored only when some were.
    pub fn phrase(&self) -> String {
        let mut parts = vec![format!("{} passed", self.passed)];
        if self.failed > 0 || self.passed == 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.ignored > 0 {
            parts.push(format!("{} ignored", self.ignored));
        }
        parts.join(", ")
    }
}

/// What the output says about tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Test counts, when a runner's summary was recognised.
    pub counts: Option<Counts>,
    /// `go test` packages: (ok, failed), when package lines were seen.
    pub go_packages: Option<(u64, u64)>,
    /// The runners recognised, in a fixed order (`cargo`, `nextest`, `go`, …).
    pub runners: Vec<&'static str>,
}

impl Summary {
    fn record(&mut self, runner: &'static str, counts: Option<Counts>) {
        if let Some(c) = counts {
            self.counts = Some(self.counts.map_or(c, |old| old.add(c)));
            self.runners.push(runner);
        }
    }
}

re!(
    CARGO,
    r"(?mR)^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;"
);
re!(
    NEXTEST,
    r"(?mR)^[ \t]*Summary \[[^\]\n]*\][ \t]+\d+ tests? run: (.*)$"
);
re!(ITEM, r"(\d+) ([a-z]+(?: [a-z]+)?)");
re!(GO_RESULT, r"(?mR)^--- (PASS|FAIL|SKIP): \S+");
re!(GO_VERBOSE, r"(?mR)^(?:=== RUN|[ \t]*--- (?:PASS|SKIP):)");
re!(
    GO_PACKAGE,
    r"(?mR)^(ok|FAIL)[ \t]+\S+[ \t]+(?:[\d.]+s|\(cached\)|\[)"
);
re!(
    PYTEST,
    r"(?mR)^=*[ \t]*((?:\d+ (?:passed|failed|skipped|deselected|xfailed|xpassed|errors?|warnings?|rerun)(?:, )?)+|no tests ran) in \d+(?:\.\d+)?s\b"
);
re!(
    NODE,
    r"(?mR)^(?:#|ℹ) (tests|pass|fail|cancelled|skipped|todo) (\d+)[ \t]*$"
);
re!(JEST, r"(?mR)^Tests:[ \t]+(.*?)(\d+) total[ \t]*$");
re!(
    VITEST,
    r"(?mR)^[ \t]*Tests[ \t]{2,}(.+?)[ \t]+\((\d+)\)[ \t]*$"
);

fn num(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

/// Read the counts from a runner's combined output.
pub fn parse(output: &str) -> Summary {
    let mut summary = Summary::default();
    // nextest prints each test's own `test result:` line; its summary wins.
    let nextest = nextest(output);
    if nextest.is_some() {
        summary.record("nextest", nextest);
    } else {
        summary.record("cargo", cargo(output));
    }
    let (go_counts, go_packages) = go(output);
    summary.record("go", go_counts);
    summary.go_packages = go_packages;
    summary.record("pytest", pytest(output));
    summary.record("node", node(output));
    summary.record("jest", jest(output));
    summary.record("vitest", vitest(output));
    summary
}

fn cargo(output: &str) -> Option<Counts> {
    if !output.contains("test result: ") {
        return None;
    }
    CARGO
        .captures_iter(output)
        .map(|c| Counts::new(num(&c[1]), num(&c[2]), num(&c[3])))
        .reduce(Counts::add)
}

fn nextest(output: &str) -> Option<Counts> {
    if !output.contains("Summary [") {
        return None;
    }
    let line = NEXTEST.captures_iter(output).last()?;
    // Drop parenthesised notes such as `(1 slow)` or `(2 leaky)`.
    let mut items = String::new();
    let mut depth = 0usize;
    for ch in line[1].chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => items.push(ch),
            _ => {}
        }
    }
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for c in ITEM.captures_iter(&items) {
        let n = num(&c[1]);
        match &c[2] {
            "passed" => passed += n,
            "failed" | "timed out" | "exec failed" => failed += n,
            "skipped" => ignored += n,
            _ => {}
        }
    }
    Some(Counts::new(passed, failed, ignored))
}

/// Top-level test results (subtests are indented) from `-v` output or `-json`
/// events, and package results. Without `-v` go lists only failing tests, so test
/// counts are known only when the output is verbose.
fn go(output: &str) -> (Option<Counts>, Option<(u64, u64)>) {
    let mut packages = None;
    if output.contains("ok  ") || output.contains("FAIL\t") || output.contains("FAIL ") {
        let (mut ok, mut failed) = (0, 0);
        let mut seen = false;
        for c in GO_PACKAGE.captures_iter(output) {
            seen = true;
            if &c[1] == "ok" {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        if seen {
            packages = Some((ok, failed));
        }
    }
    if output.contains("\"Action\"")
        && let Some(c) = go_json(output)
    {
        return (Some(c), packages.or_else(|| go_json_packages(output)));
    }
    if !output.contains("--- ") || !GO_VERBOSE.is_match(output) {
        return (None, packages);
    }
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for c in GO_RESULT.captures_iter(output) {
        match &c[1] {
            "PASS" => passed += 1,
            "FAIL" => failed += 1,
            _ => ignored += 1,
        }
    }
    (Some(Counts::new(passed, failed, ignored)), packages)
}

/// One `go test -json` event.
pub struct GoEvent<'a> {
    pub action: &'a str,
    pub package: &'a str,
    pub test: Option<&'a str>,
    pub output: Option<&'a str>,
}

/// The `go test -json` events of an output, skipping any other line.
pub fn go_events(output: &str) -> Vec<(Value, usize)> {
    output
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('{') && l.contains("\"Action\""))
        .filter_map(|(i, l)| serde_json::from_str::<Value>(l).ok().map(|v| (v, i)))
        .collect()
}

/// The fields of an event, if it is one.
pub fn go_event(v: &Value) -> Option<GoEvent<'_>> {
    Some(GoEvent {
        action: v.get("Action")?.as_str()?,
        package: v.get("Package").and_then(Value::as_str).unwrap_or(""),
        test: v.get("Test").and_then(Value::as_str),
        output: v.get("Output").and_then(Value::as_str),
    })
}

fn go_json(output: &str) -> Option<Counts> {
    let events = go_events(output);
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let mut seen = false;
    for (v, _) in &events {
        let Some(e) = go_event(v) else { continue };
        let Some(test) = e.test else { continue };
        if test.contains('/') {
            continue;
        }
        match e.action {
            "pass" => passed += 1,
            "fail" => failed += 1,
            "skip" => ignored += 1,
            _ => continue,
        }
        seen = true;
    }
    seen.then(|| Counts::new(passed, failed, ignored))
}

fn go_json_packages(output: &str) -> Option<(u64, u64)> {
    let (mut ok, mut failed) = (0, 0);
    for (v, _) in go_events(output) {
        let Some(e) = go_event(&v) else { continue };
        if e.test.is_none() && !e.package.is_empty() {
            match e.action {
                "pass" => ok += 1,
                "fail" => failed += 1,
                _ => {}
            }
        }
    }
    (ok + failed > 0).then_some((ok, failed))
}

fn pytest(output: &str) -> Option<Counts> {
    if !output.contains(" in ") {
        return None;
    }
    let mut total: Option<Counts> = None;
    for c in PYTEST.captures_iter(output) {
        let (mut passed, mut failed, mut ignored, mut deselected) = (0, 0, 0, 0);
        for item in ITEM.captures_iter(&c[1]) {
            let n = num(&item[1]);
            match &item[2] {
                "passed" | "xpassed" => passed += n,
                "failed" | "error" | "errors" => failed += n,
                "skipped" | "xfailed" => ignored += n,
                "deselected" => deselected += n,
                _ => {}
            }
        }
        let counts = Counts {
            deselected,
            ..Counts::new(passed, failed, ignored)
        };
        total = Some(total.map_or(counts, |t| t.add(counts)));
    }
    total
}

fn node(output: &str) -> Option<Counts> {
    if !output.contains(" pass ") {
        return None;
    }
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let mut seen_pass = false;
    for c in NODE.captures_iter(output) {
        let n = num(&c[2]);
        match &c[1] {
            "pass" => {
                passed += n;
                seen_pass = true;
            }
            "fail" | "cancelled" => failed += n,
            "skipped" | "todo" => ignored += n,
            _ => {}
        }
    }
    seen_pass.then(|| Counts::new(passed, failed, ignored))
}

fn items(list: &str) -> Counts {
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for item in ITEM.captures_iter(list) {
        let n = num(&item[1]);
        match &item[2] {
            "passed" => passed += n,
            "failed" => failed += n,
            "skipped" | "todo" | "pending" => ignored += n,
            _ => {}
        }
    }
    Counts::new(passed, failed, ignored)
}

fn jest(output: &str) -> Option<Counts> {
    if !output.contains("Tests:") {
        return None;
    }
    JEST.captures_iter(output)
        .map(|c| items(&c[1]))
        .reduce(Counts::add)
}

fn vitest(output: &str) -> Option<Counts> {
    if !output.contains("Tests  ") {
        return None;
    }
    VITEST
        .captures_iter(output)
        .map(|c| items(&c[1]))
        .reduce(Counts::add)
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

    fn counts(name: &str) -> Counts {
        parse(&fixture(name))
            .counts
            .unwrap_or_else(|| panic!("no counts in {name}"))
    }

    #[test]
    fn cargo_sums_every_test_result_line() {
        let s = parse(&fixture("cargo_fail"));
        assert_eq!(s.runners, ["cargo"]);
        // cli: 2 passed; core: 2 passed 2 failed 1 ignored; doc-tests: 0 + 2 passed.
        assert_eq!(s.counts, Some(Counts::new(6, 2, 1)));
        assert_eq!(counts("cargo_pass"), Counts::new(8, 0, 1));
        assert_eq!(counts("cargo_fail").total, 9);
    }

    #[test]
    fn cargo_build_error_has_no_counts() {
        assert_eq!(parse(&fixture("cargo_build_error")).counts, None);
    }

    #[test]
    fn nextest_summary_wins_over_per_test_lines() {
        let s = parse(&fixture("nextest_fail"));
        assert_eq!(s.runners, ["nextest"]);
        assert_eq!(s.counts, Some(Counts::new(5, 1, 1)));
        let notes =
            "     Summary [   1.2s] 4 tests run: 3 passed (1 slow), 1 timed out, 2 skipped\n";
        assert_eq!(parse(notes).counts, Some(Counts::new(3, 1, 2)));
    }

    #[test]
    fn go_verbose_counts_top_level_tests() {
        let s = parse(&fixture("go_test_v_fail"));
        assert_eq!(s.runners, ["go"]);
        // TestAdd, TestParseArgs, TestUsage pass; TestSub, TestTable fail; TestNetwork skips.
        assert_eq!(s.counts, Some(Counts::new(3, 2, 1)));
        assert_eq!(s.go_packages, Some((1, 1)));
    }

    #[test]
    fn go_without_verbose_counts_only_packages() {
        let s = parse(&fixture("go_test_fail"));
        assert_eq!(s.counts, None);
        assert_eq!(s.go_packages, Some((1, 1)));
        let s = parse(&fixture("go_test_pass"));
        assert_eq!(s.counts, None);
        assert_eq!(s.go_packages, Some((2, 0)));
    }

    #[test]
    fn go_json_events() {
        let s = parse(&fixture("go_test_json_fail"));
        assert_eq!(s.counts, Some(Counts::new(1, 1, 1)));
        assert_eq!(s.go_packages, Some((0, 1)));
    }

    #[test]
    fn pytest_deselected_tests_are_counted_apart() {
        let c = parse("=== 2 passed, 1 deselected in 0.05s ===\n")
            .counts
            .unwrap();
        assert_eq!((c.passed, c.total, c.deselected), (2, 2, 1));
    }

    #[test]
    fn pytest_summary_lines() {
        // 2 failed, 7 passed, 1 skipped, 1 xfailed, 1 error
        assert_eq!(counts("pytest_fail"), Counts::new(7, 3, 2));
        assert_eq!(counts("pytest_quiet_pass"), Counts::new(2, 0, 0));
        // 1 failed, 6 passed, 1 skipped, 2 deselected, 1 xfailed, 1 error
        assert_eq!(
            counts("pytest_quiet_deselected"),
            Counts {
                deselected: 2,
                ..Counts::new(6, 2, 2)
            }
        );
        for (line, want) in [
            (
                "===== 3 passed, 1 failed, 2 skipped in 0.12s =====",
                Counts::new(3, 1, 2),
            ),
            (
                "==== 3 passed, 2 warnings in 1.20s (0:00:01) ====",
                Counts::new(3, 0, 0),
            ),
            (
                "============ 2 errors in 0.30s ============",
                Counts::new(0, 2, 0),
            ),
            ("1 xpassed, 1 rerun in 0.5s", Counts::new(1, 0, 0)),
            (
                "============ no tests ran in 0.01s ============",
                Counts::new(0, 0, 0),
            ),
        ] {
            assert_eq!(parse(line).counts, Some(want), "{line}");
            assert_eq!(parse(line).runners, ["pytest"], "{line}");
        }
        assert_eq!(parse("built 3 files in 2s").counts, None);
    }

    #[test]
    fn node_tap_and_spec() {
        // tests 6, pass 2, fail 2, skipped 1, todo 1
        let tap = parse(&fixture("node_test_tap"));
        assert_eq!(tap.runners, ["node"]);
        assert_eq!(tap.counts, Some(Counts::new(2, 2, 2)));
        assert_eq!(counts("node_test_spec"), Counts::new(2, 2, 2));
    }

    #[test]
    fn jest_and_vitest() {
        // Tests: 1 failed, 1 skipped, 1 todo, 2 passed, 5 total
        let j = parse(&fixture("jest_fail"));
        assert_eq!(j.runners, ["jest"]);
        assert_eq!(j.counts, Some(Counts::new(2, 1, 2)));
        // Tests  1 failed | 1 passed | 1 skipped (3)
        let v = parse(&fixture("vitest_fail"));
        assert_eq!(v.runners, ["vitest"]);
        assert_eq!(v.counts, Some(Counts::new(1, 1, 1)));
    }

    #[test]
    fn several_runners_add_up() {
        let both = format!(
            "{}\n{}",
            fixture("cargo_pass"),
            fixture("pytest_quiet_pass")
        );
        let s = parse(&both);
        assert_eq!(s.runners, ["cargo", "pytest"]);
        assert_eq!(s.counts, Some(Counts::new(10, 0, 1)));
    }

    #[test]
    fn crlf_line_ends() {
        let out = "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\r\n\
                   Tests:       1 failed, 2 passed, 3 total\r\n";
        assert_eq!(parse(out).counts, Some(Counts::new(5, 1, 0)));
    }

    #[test]
    fn plain_output_has_no_counts() {
        let s = parse("Compiling foo\nall good\nok then\n");
        assert_eq!(s, Summary::default());
    }

    #[test]
    fn phrase() {
        assert_eq!(Counts::new(3, 1, 0).phrase(), "3 passed, 1 failed");
        assert_eq!(Counts::new(3, 0, 2).phrase(), "3 passed, 2 ignored");
        assert_eq!(Counts::new(0, 0, 0).phrase(), "0 passed, 0 failed");
    }
}
