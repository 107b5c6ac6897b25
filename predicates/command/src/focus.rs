//! Focused re-runs: when the last full run of a test command named its failing tests,
//! the next evaluation first runs only those (`pytest ID…`, `cargo test -- --exact
//! NAME…`, `go test -run '^(A|B)$'`, `node --test --test-name-pattern`). While any of
//! them still fails, that focused result is the verdict — a `fail` marked with the
//! metric `focused`, which can never pass. Only when they all pass (or the focused run
//! says nothing usable) does the full command run, and only the full command can make
//! the predicate pass.
//!
//! What the last full run found is kept in the host's kv store (per predicate, for
//! the length of one `kazi` process); nothing is focused in a fresh process.
//!
//! The argv rewriting is pure ([`argv`]), as is reading failing test ids ([`ids`]).

use serde::{Deserialize, Serialize};

use crate::counts::{go_event, go_events};

/// The metric that marks a focused verdict (the loop never lets it pass).
pub const METRIC: &str = "focused";
/// The kv key of the memory.
const KEY: &str = "focus";
/// At most this many focused observations in a row; the next one runs the whole
/// command, so a test that only fails when run alone, or a test that broke elsewhere,
/// is seen within a bounded number of iterations.
pub const MAX_IN_A_ROW: u32 = 4;
/// At most this many failing tests are focused on; more run the whole command.
pub const MAX_IDS: usize = 50;

/// A test runner whose failing tests can be re-run by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Runner {
    Pytest,
    Cargo,
    Go,
    Node,
}

impl Runner {
    /// The runner `run` invokes directly (not through a shell or a script), if it
    /// is one kazi can focus, and the command does not already filter by name in a
    /// way a focus would fight with.
    pub fn of(run: &[String]) -> Option<Runner> {
        let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
        let program = base(run.first()?);
        if pytest_at(run).is_some() {
            return Some(Runner::Pytest);
        }
        match program.as_str() {
            "cargo" => {
                let sub = run[1..]
                    .iter()
                    .find(|a| !a.starts_with('-') && !a.starts_with('+'))?;
                (sub == "test").then_some(Runner::Cargo)
            }
            "go" => {
                let filters = run[2..].iter().any(|a| {
                    let a = a.trim_start_matches('-');
                    a == "run" || a.starts_with("run=")
                });
                (run.get(1).is_some_and(|s| s == "test") && !filters).then_some(Runner::Go)
            }
            "node" => {
                let test = run.iter().any(|a| a == "--test");
                let filters = run
                    .iter()
                    .any(|a| a.starts_with("--test-name-pattern") || a.starts_with("--test-only"));
                (test && !filters).then_some(Runner::Node)
            }
            _ => None,
        }
    }
}

/// Where pytest itself is in `run`: the `pytest`/`py.test` word (`uv run pytest`,
/// `.venv/bin/pytest`) or the word after `-m` (`python3 -m pytest`).
fn pytest_at(run: &[String]) -> Option<usize> {
    run.iter().enumerate().find_map(|(i, a)| {
        let base = a.rsplit('/').next().unwrap_or(a);
        let direct = base == "pytest" || base == "py.test";
        let module = a == "pytest" && i > 0 && run[i - 1] == "-m";
        (direct || module).then_some(i)
    })
}

re!(PYTEST_ID, r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$");
re!(CARGO_FAILED, r"^test (\S+) \.\.\. FAILED$");
re!(CARGO_STDOUT, r"^---- (\S+) stdout ----$");
re!(GO_FAIL, r"^\s*--- FAIL: (\S+)");
re!(TAP_NOT_OK, r"^(\s*)not ok \d+ - (.+?)(?: # .*)?$");
re!(SPEC_FAIL, r"^\s*✖ (.+?) \([\d.]+m?s\)$");

/// The failing tests a run's combined output names, each once, in order: pytest node
/// ids, cargo test paths, go top-level test names, node test names.
pub fn ids(runner: Runner, output: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        if !id.is_empty() && !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    };
    match runner {
        Runner::Pytest => {
            for c in output.lines().filter_map(|l| PYTEST_ID.captures(l)) {
                push(&c[1]);
            }
        }
        Runner::Cargo => {
            for l in output.lines() {
                if let Some(c) = CARGO_FAILED
                    .captures(l)
                    .or_else(|| CARGO_STDOUT.captures(l))
                {
                    push(&c[1]);
                }
            }
        }
        Runner::Go => {
            if output.contains("\"Action\"") {
                for (v, _) in go_events(output) {
                    if let Some(e) = go_event(&v)
                        && e.action == "fail"
                        && let Some(t) = e.test
                    {
                        push(t.split('/').next().unwrap_or(t));
                    }
                }
            } else {
                for c in output.lines().filter_map(|l| GO_FAIL.captures(l)) {
                    push(c[1].split('/').next().unwrap_or(&c[1]));
                }
            }
        }
        Runner::Node => {
            let lines: Vec<&str> = output.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if let Some(c) = TAP_NOT_OK.captures(l) {
                    // A suite that failed because a test in it did is not a test.
                    let suite = lines[i + 1..]
                        .iter()
                        .take_while(|n| n.trim() != "...")
                        .take(40)
                        .any(|n| n.trim() == "failureType: 'subtestsFailed'");
                    if !suite {
                        push(c[2].trim());
                    }
                } else if let Some(c) = SPEC_FAIL.captures(l) {
                    push(c[1].trim());
                }
            }
        }
    }
    out
}

/// The argv that re-runs only `ids` of the command `run`, or `None` when it cannot
/// be built. `is_path` says whether an argument names a file or directory (relative
/// to the run's directory): pytest's positional paths are replaced by the ids.
pub fn argv(
    runner: Runner,
    run: &[String],
    ids: &[String],
    is_path: &dyn Fn(&str) -> bool,
) -> Option<Vec<String>> {
    if ids.is_empty() || ids.len() > MAX_IDS {
        return None;
    }
    let mut out = run.to_vec();
    match runner {
        Runner::Pytest => {
            let at = pytest_at(run)?;
            let mut kept = run[..=at].to_vec();
            let mut takes_value = false;
            for a in &run[at + 1..] {
                let positional = !a.starts_with('-') && !takes_value && is_path(a);
                if !positional {
                    kept.push(a.clone());
                }
                takes_value = a.starts_with('-') && !a.contains('=') && option_takes_value(a);
            }
            kept.extend(ids.iter().cloned());
            out = kept;
        }
        Runner::Cargo => {
            if !out.iter().any(|a| a == "--") {
                out.push("--".into());
            }
            let after = out.iter().position(|a| a == "--").expect("pushed") + 1;
            if !out[after..].iter().any(|a| a == "--exact") {
                out.push("--exact".into());
            }
            out.extend(ids.iter().cloned());
        }
        Runner::Go => {
            let names: Vec<String> = ids.iter().map(|i| regex::escape(i)).collect();
            out.splice(
                2..2,
                ["-run".to_owned(), format!("^({})$", names.join("|"))],
            );
        }
        Runner::Node => {
            let names: Vec<String> = ids.iter().map(|i| regex::escape(i)).collect();
            out.insert(1, format!("--test-name-pattern=^(?:{})$", names.join("|")));
        }
    }
    Some(out)
}

/// pytest options whose value is the next argument (so it is not a test path).
fn option_takes_value(a: &str) -> bool {
    const WITH_VALUE: &[&str] = &[
        "-k",
        "-m",
        "-p",
        "-c",
        "-o",
        "-W",
        "-n",
        "-r",
        "--junitxml",
        "--junit-xml",
        "--rootdir",
        "--basetemp",
        "--confcutdir",
        "--ignore",
        "--ignore-glob",
        "--deselect",
        "--cov",
        "--cov-report",
        "--cov-config",
        "--tb",
        "--maxfail",
        "--durations",
        "--log-level",
        "--log-file",
        "--override-ini",
        "--config-file",
        "--dist",
        "--import-mode",
        "--capture",
        "--timeout",
    ];
    WITH_VALUE.contains(&a)
}

/// What the last full run found, as kept between evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// The command it was found for (a different command forgets it).
    pub run: Vec<String>,
    pub runner: Runner,
    /// The tests that still fail.
    pub ids: Vec<String>,
    /// The full run's counts, to estimate a comparable score.
    pub passed: u64,
    pub total: u64,
    /// How many failing tests the full run had.
    pub failed: u64,
    /// Focused observations since the last full run (re-runs within one observation
    /// count once).
    pub in_a_row: u32,
    /// The observation of the last focused run.
    pub last_iteration: Option<u32>,
}

impl Memory {
    /// The memory for `run`, if one is kept and it may be used in observation
    /// `iteration`.
    pub fn recall(run: &[String], iteration: u32) -> Option<Memory> {
        let bytes = kazi_sdk::prelude::kv::get(KEY)?;
        let m: Memory = serde_json::from_slice(&bytes).ok()?;
        m.usable(run, iteration).then_some(m)
    }

    /// Whether it may focus `run` in observation `iteration`: the same command, and
    /// fewer than [`MAX_IN_A_ROW`] focused observations in a row, or a re-run within
    /// the last focused one.
    pub fn usable(&self, run: &[String], iteration: u32) -> bool {
        self.run == run
            && !self.ids.is_empty()
            && (self.in_a_row < MAX_IN_A_ROW || self.last_iteration == Some(iteration))
    }

    /// Count a focused run in observation `iteration`.
    pub fn focused_in(&mut self, iteration: u32) {
        if self.last_iteration != Some(iteration) {
            self.in_a_row += 1;
            self.last_iteration = Some(iteration);
        }
    }

    pub fn keep(&self) {
        if let Ok(bytes) = serde_json::to_vec(self) {
            kazi_sdk::prelude::kv::set(KEY, &bytes);
        }
    }

    pub fn forget() {
        kazi_sdk::prelude::kv::delete(KEY);
    }

    /// The score a full run would have if only `still` of the focused tests failed
    /// and everything else stayed as the full run left it: comparable with the full
    /// run's `passed / total`, so fixing one test of three is progress.
    pub fn estimated_score(&self, still: usize) -> Option<f64> {
        let fixed = self.failed.saturating_sub(still as u64);
        (self.total > 0).then(|| (self.passed + fixed).min(self.total) as f64 / self.total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn runners_are_recognised_only_when_run_directly() {
        for (run, want) in [
            (&["pytest", "-q"][..], Some(Runner::Pytest)),
            (&["python3", "-m", "pytest"], Some(Runner::Pytest)),
            (
                &[".venv/bin/python", "-m", "pytest", "tests"],
                Some(Runner::Pytest),
            ),
            (&["uv", "run", "pytest"], Some(Runner::Pytest)),
            (&["cargo", "test", "--workspace"], Some(Runner::Cargo)),
            (&["cargo", "+nightly", "test"], Some(Runner::Cargo)),
            (&["cargo", "nextest", "run"], None),
            (&["cargo", "build"], None),
            (&["go", "test", "./..."], Some(Runner::Go)),
            (&["go", "test", "-run", "TestA", "./..."], None),
            (&["go", "test", "-run=TestA"], None),
            (&["go", "vet"], None),
            (&["node", "--test"], Some(Runner::Node)),
            (&["node", "--test", "--test-name-pattern=x"], None),
            (&["node", "app.js"], None),
            (&["sh", "-c", "pytest -q"], None),
            (&["make", "test"], None),
        ] {
            assert_eq!(Runner::of(&v(run)), want, "{run:?}");
        }
    }

    #[test]
    fn failing_ids_are_read_per_runner() {
        let pytest = "F.\n=== short test summary info ===\nFAILED tests/test_calc.py::test_add - assert 3 == 4\nFAILED tests/test_calc.py::TestX::test_p[1-2]\nERROR tests/test_broken.py - ImportError: x\n1 failed";
        assert_eq!(
            ids(Runner::Pytest, pytest),
            v(&[
                "tests/test_calc.py::test_add",
                "tests/test_calc.py::TestX::test_p[1-2]",
                "tests/test_broken.py"
            ])
        );
        let cargo = "running 2 tests\ntest tests::a ... ok\ntest tests::b ... FAILED\n\nfailures:\n\n---- tests::b stdout ----\nthread 'tests::b' panicked at src/lib.rs:9:5:\n\n---- it::c stdout ----\n";
        assert_eq!(ids(Runner::Cargo, cargo), v(&["tests::b", "it::c"]));
        let go = "=== RUN   TestA\n--- FAIL: TestA (0.00s)\n    --- FAIL: TestA/sub (0.00s)\n--- PASS: TestB (0.00s)\n--- FAIL: TestC (0.00s)\nFAIL\n";
        assert_eq!(ids(Runner::Go, go), v(&["TestA", "TestC"]));
        let go_json = "{\"Action\":\"fail\",\"Package\":\"m/p\",\"Test\":\"TestA/x\"}\n{\"Action\":\"fail\",\"Package\":\"m/p\",\"Test\":\"TestA\"}\n{\"Action\":\"fail\",\"Package\":\"m/p\"}\n";
        assert_eq!(ids(Runner::Go, go_json), v(&["TestA"]));
        let tap = "TAP version 13\n# Subtest: math\n    not ok 1 - adds\n      ---\n      duration_ms: 1\n      ...\nnot ok 1 - math\n  ---\n  failureType: 'subtestsFailed'\n  ...\nnot ok 2 - top (x)\n";
        assert_eq!(ids(Runner::Node, tap), v(&["adds", "top (x)"]));
        let spec = "✖ adds (1.2ms)\n✖ failing tests:\n\n✖ adds (1.2ms)\n";
        assert_eq!(ids(Runner::Node, spec), v(&["adds"]));
    }

    #[test]
    fn focused_argv_per_runner() {
        let no_paths = |_: &str| false;
        let ids2 = v(&["a::b", "c"]);
        assert_eq!(
            argv(
                Runner::Cargo,
                &v(&["cargo", "test", "--workspace"]),
                &ids2,
                &no_paths
            ),
            Some(v(&[
                "cargo",
                "test",
                "--workspace",
                "--",
                "--exact",
                "a::b",
                "c"
            ]))
        );
        assert_eq!(
            argv(
                Runner::Cargo,
                &v(&["cargo", "test", "--", "--test-threads=1", "--exact"]),
                &ids2,
                &no_paths
            ),
            Some(v(&[
                "cargo",
                "test",
                "--",
                "--test-threads=1",
                "--exact",
                "a::b",
                "c"
            ]))
        );
        assert_eq!(
            argv(
                Runner::Go,
                &v(&["go", "test", "-v", "./..."]),
                &v(&["TestA", "Test.B"]),
                &no_paths
            ),
            Some(v(&[
                "go",
                "test",
                "-run",
                "^(TestA|Test\\.B)$",
                "-v",
                "./..."
            ]))
        );
        assert_eq!(
            argv(
                Runner::Node,
                &v(&["node", "--test"]),
                &v(&["adds (x)"]),
                &no_paths
            ),
            Some(v(&[
                "node",
                "--test-name-pattern=^(?:adds \\(x\\))$",
                "--test"
            ]))
        );
        // pytest: positional paths give way to the ids; option values stay.
        let paths = |a: &str| ["tests", "report.xml"].contains(&a);
        assert_eq!(
            argv(
                Runner::Pytest,
                &v(&[
                    "python3",
                    "-m",
                    "pytest",
                    "-q",
                    "tests",
                    "--junitxml",
                    "report.xml",
                    "-k",
                    "tests"
                ]),
                &v(&["tests/t.py::a"]),
                &paths
            ),
            Some(v(&[
                "python3",
                "-m",
                "pytest",
                "-q",
                "--junitxml",
                "report.xml",
                "-k",
                "tests",
                "tests/t.py::a"
            ]))
        );
        assert_eq!(
            argv(Runner::Cargo, &v(&["cargo", "test"]), &[], &no_paths),
            None
        );
        let many: Vec<String> = (0..=MAX_IDS).map(|i| format!("t{i}")).collect();
        assert_eq!(
            argv(Runner::Cargo, &v(&["cargo", "test"]), &many, &no_paths),
            None
        );
    }

    #[test]
    fn the_estimated_score_is_comparable_with_a_full_run() {
        let m = Memory {
            run: v(&["pytest"]),
            runner: Runner::Pytest,
            ids: v(&["a", "b"]),
            passed: 8,
            total: 10,
            failed: 2,
            in_a_row: 0,
            last_iteration: None,
        };
        assert_eq!(m.estimated_score(2), Some(0.8));
        assert_eq!(m.estimated_score(1), Some(0.9));
    }

    #[test]
    fn re_runs_within_an_observation_count_once_and_the_streak_is_bounded() {
        let run = v(&["pytest"]);
        let mut m = Memory {
            run: run.clone(),
            runner: Runner::Pytest,
            ids: v(&["a"]),
            passed: 0,
            total: 1,
            failed: 1,
            in_a_row: 0,
            last_iteration: None,
        };
        for iteration in 1..=MAX_IN_A_ROW {
            assert!(m.usable(&run, iteration), "{iteration}");
            m.focused_in(iteration);
            m.focused_in(iteration); // a flake re-run
            assert!(m.usable(&run, iteration), "{iteration}");
        }
        assert_eq!(m.in_a_row, MAX_IN_A_ROW);
        assert!(!m.usable(&run, MAX_IN_A_ROW + 1), "the whole command runs");
        assert!(
            !m.usable(&v(&["pytest", "-x"]), MAX_IN_A_ROW),
            "another command"
        );
    }
}
