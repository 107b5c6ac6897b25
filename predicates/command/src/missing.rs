//! A tool that is missing: the program the command ran started, but could not get
//! to work because something it needs is not installed (a shell's `vitest: not
//! found`, exit 127; Python's `No module named pytest` for `python -m pytest`; Node's
//! `Cannot find module 'ts-node/register'`). That is an `error` (kazi must not pay an
//! agent to fix tooling), never a `fail`.
//!
//! The tool's own failure to start is told apart from a test that fails with such a
//! message in its output (a test asserting an import error, a project module the
//! agent has yet to write): the message must name something the command itself names
//! (`-m pytest`, `ts-node/register`, a word of an `sh -c` script); or there must be no
//! test results at all and a shell (or make) that could not find a program, or the
//! shell's exit codes 126/127. A Python or Node module the command does not name is
//! the project's own, and missing it is work for the agent.

use std::sync::LazyLock;

use regex::Regex;

/// What is missing, and how the output said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingTool {
    /// The program or module that is missing, when the output names it.
    pub name: Option<String>,
    /// One line for the summary: `` `vitest` is not installed (sh: 1: vitest: not found) ``.
    pub what: String,
}

/// A missing thing the output reports, with the line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signal {
    kind: Kind,
    name: String,
    line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A shell (or make) could not find a program.
    Program,
    /// A Python module.
    PythonModule,
    /// A Node module or package.
    NodeModule,
}

static SHELL_NOT_FOUND: LazyLock<Regex> = LazyLock::new(|| {
    // sh/dash: `sh: 1: vitest: not found`; bash: `bash: line 1: vitest: command not
    // found` or `vitest: command not found`; zsh: `zsh: command not found: vitest`;
    // env: `/usr/bin/env: 'python': No such file or directory`.
    // make: `make: pytest: No such file or directory` (then `Error 127`).
    Regex::new(
        r"(?m)^(?:.*?: )?(?:line \d+: |\d+: )?([A-Za-z0-9_.+/-]+): (?:command )?not found\s*$|command not found: ([A-Za-z0-9_.+/-]+)\s*$|^(?:/usr)?/bin/env: '?([A-Za-z0-9_.+/-]+)'?: No such file or directory|^make(?:\[\d+\])?: ([A-Za-z0-9_.+/-]+): (?:No such file or directory|Command not found)",
    )
    .expect("valid regex")
});

static PYTHON_NO_MODULE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)No module named ['"]?([A-Za-z0-9_.]+)['"]?"#).expect("valid regex")
});

static NODE_NO_MODULE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)Cannot find (?:module|package) ['"]([^'"]+)['"]"#).expect("valid regex")
});

fn signals(output: &str) -> Vec<Signal> {
    let line_of = |at: usize| {
        let start = output[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = output[at..].find('\n').map_or(output.len(), |i| at + i);
        output[start..end].trim().to_owned()
    };
    let mut out = Vec::new();
    for c in SHELL_NOT_FOUND.captures_iter(output) {
        if let Some(m) = (1..=4).find_map(|i| c.get(i)) {
            out.push(Signal {
                kind: Kind::Program,
                name: m.as_str().to_owned(),
                line: line_of(m.start()),
            });
        }
    }
    for c in PYTHON_NO_MODULE.captures_iter(output) {
        let m = c.get(1).expect("group 1");
        out.push(Signal {
            kind: Kind::PythonModule,
            name: m.as_str().to_owned(),
            line: line_of(m.start()),
        });
    }
    for c in NODE_NO_MODULE.captures_iter(output) {
        let m = c.get(1).expect("group 1");
        let name = m.as_str();
        // A path is a file of the workspace (maybe one the agent must write), not a tool.
        let is_path = name.starts_with(['.', '/', '\\']) || name.chars().nth(1) == Some(':');
        if !is_path {
            out.push(Signal {
                kind: Kind::NodeModule,
                name: name.to_owned(),
                line: line_of(m.start()),
            });
        }
    }
    out
}

/// The words the command names: each argument, the words of an argument that is a
/// script (`sh -c "npm ci && vitest run"`), and the base name of each path.
fn named_words(argv: &[String]) -> Vec<String> {
    let mut words = Vec::new();
    for arg in argv {
        words.push(arg.clone());
        for w in arg.split(|c: char| c.is_whitespace() || ";&|()'\"`=<>$".contains(c)) {
            if w.is_empty() {
                continue;
            }
            words.push(w.to_owned());
            if let Some(base) = w.rsplit('/').next() {
                words.push(base.to_owned());
            }
        }
    }
    words
}

/// Whether the command itself names what `s` says is missing.
fn named_by(s: &Signal, words: &[String]) -> bool {
    let has = |name: &str| words.iter().any(|w| w == name);
    match s.kind {
        Kind::Program => has(&s.name) || s.name.rsplit('/').next().is_some_and(&has),
        // `python -m pytest` names `pytest`; `No module named pytest.__main__` or
        // `pytest_cov.plugin` still is that module (its first part).
        Kind::PythonModule => has(&s.name) || s.name.split('.').next().is_some_and(&has),
        // `-r ts-node/register` names `ts-node/register`; its package is `ts-node`
        // (`@scope/pkg` for a scoped one).
        Kind::NodeModule => {
            let package = if s.name.starts_with('@') {
                s.name.splitn(3, '/').take(2).collect::<Vec<_>>().join("/")
            } else {
                s.name.split('/').next().unwrap_or_default().to_owned()
            };
            has(&s.name) || has(&package)
        }
    }
}

/// Whether the run failed because a tool is missing. `status` is the exit code (a
/// run killed by a signal is never this), `ran_tests` whether the output carried
/// test results.
pub fn detect(argv: &[String], status: i32, output: &str, ran_tests: bool) -> Option<MissingTool> {
    if status == 0 {
        return None;
    }
    let found = signals(output);
    let words = named_words(argv);
    let describe = |s: &Signal| {
        let noun = match s.kind {
            Kind::Program => "",
            Kind::PythonModule => "Python module ",
            Kind::NodeModule => "Node module ",
        };
        MissingTool {
            name: Some(s.name.clone()),
            what: format!(
                "{noun}`{}` is not installed ({})",
                s.name,
                kazi_sdk::text::truncate(&s.line, 160)
            ),
        }
    };
    if let Some(s) = found.iter().find(|s| named_by(s, &words)) {
        return Some(describe(s));
    }
    if ran_tests {
        return None;
    }
    // No test ran: a shell (or make) that could not find a program is the tool's own
    // failure to start, whatever it is called.
    if let Some(s) = found.iter().find(|s| s.kind == Kind::Program) {
        return Some(describe(s));
    }
    // The shell's own codes: 127 "command not found", 126 "found but cannot run".
    if status == 127 || status == 126 {
        let program = argv.first().map_or("the program", String::as_str);
        return Some(MissingTool {
            name: None,
            what: if status == 127 {
                format!("`{program}` exited 127, the shell's \"command not found\"")
            } else {
                format!("`{program}` exited 126, the shell's \"found but cannot be run\"")
            },
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn what(argv_: &[&str], status: i32, output: &str, ran_tests: bool) -> Option<String> {
        detect(&argv(argv_), status, output, ran_tests).map(|m| m.what)
    }

    #[test]
    fn a_shell_that_cannot_find_the_runner() {
        // `npm test` whose script is `vitest run`, vitest not installed.
        let out = "\n> web@1.0.0 test\n> vitest run\n\nsh: 1: vitest: not found\n";
        assert_eq!(
            what(&["npm", "test"], 127, out, false).as_deref(),
            Some("`vitest` is not installed (sh: 1: vitest: not found)")
        );
        // bash spells it differently; named in the script, any exit code.
        let out = "bash: line 1: pytest: command not found\n";
        assert_eq!(
            what(
                &["bash", "-c", "pip install -q . && pytest -q"],
                1,
                out,
                false
            )
            .as_deref(),
            Some("`pytest` is not installed (bash: line 1: pytest: command not found)")
        );
        let out = "zsh: command not found: go\n";
        assert!(what(&["zsh", "-c", "go test ./..."], 127, out, false).is_some());
        let out = "/usr/bin/env: 'python': No such file or directory\n";
        assert_eq!(
            what(&["./run-tests"], 127, out, false).as_deref(),
            Some("`python` is not installed (/usr/bin/env: 'python': No such file or directory)")
        );
    }

    #[test]
    fn exit_127_or_126_without_a_message_names_the_program() {
        assert_eq!(
            what(&["./check.sh"], 127, "", false).as_deref(),
            Some("`./check.sh` exited 127, the shell's \"command not found\"")
        );
        assert!(
            what(&["./check.sh"], 126, "permission denied\n", false)
                .unwrap()
                .contains("exited 126")
        );
    }

    #[test]
    fn python_without_the_module_the_command_names() {
        let out = "/usr/bin/python3: No module named pytest\n";
        assert_eq!(
            what(&["python3", "-m", "pytest", "-q"], 1, out, false).as_deref(),
            Some(
                "Python module `pytest` is not installed (/usr/bin/python3: No module named pytest)"
            )
        );
        let out = "Traceback…\nModuleNotFoundError: No module named 'pytest_cov'\n";
        assert!(what(&["python", "-m", "pytest_cov"], 1, out, false).is_some());
    }

    #[test]
    fn node_without_the_module_the_command_names() {
        let out = "node:internal/modules/cjs/loader:1228\n  throw err;\n  ^\n\nError: Cannot find module 'ts-node/register'\nRequire stack:\n- internal/preloader\n";
        assert_eq!(
            what(&["node", "-r", "ts-node/register", "--test"], 1, out, false).as_deref(),
            Some(
                "Node module `ts-node/register` is not installed (Error: Cannot find module 'ts-node/register')"
            )
        );
        let out =
            "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'vitest' imported from /ws/x.mjs\n";
        assert!(what(&["npx", "vitest", "run"], 1, out, false).is_some());
    }

    /// A test that fails with such a message in its own output is a `fail`: the
    /// module is the project's (work for the agent), or the tests ran.
    #[test]
    fn a_failing_test_that_mentions_a_missing_module_is_not_a_missing_tool() {
        // create mode: the tests import a module the agent has yet to write.
        let out = "E   ModuleNotFoundError: No module named 'calc'\n=========== 1 error in 0.04s ===========\n";
        assert_eq!(what(&["python", "-m", "pytest"], 2, out, true), None);
        // A test asserting an import error, with results.
        let out = "test_imports.py::test_optional_dep FAILED\nNo module named 'yaml'\n1 failed, 3 passed in 0.10s\n";
        assert_eq!(what(&["pytest"], 1, out, true), None);
        // Node: a missing workspace file is the agent's to write.
        let out = "Error: Cannot find module '/ws/src/calc.js'\n";
        assert_eq!(what(&["node", "--test"], 1, out, false), None);
        let out = "Error: Cannot find module './calc'\n";
        assert_eq!(what(&["node", "test.js"], 1, out, false), None);
        // A test script whose own output prints "not found", with results.
        let out = "checking: foo: not found\n1 failed, 2 passed\n";
        assert_eq!(what(&["./test.sh"], 1, out, true), None);
        // 127 after tests ran came from a test, not from the runner.
        assert_eq!(what(&["./test.sh"], 127, "ok 1\nnot ok 2\n", true), None);
        // A passing run is never this.
        assert_eq!(
            what(
                &["python", "-m", "pytest"],
                0,
                "No module named pytest",
                false
            ),
            None
        );
    }

    #[test]
    fn a_message_about_something_else_is_not_enough() {
        // exit 1, the missing module is not named by the command, no results: a fail.
        let out = "ModuleNotFoundError: No module named 'requests'\n";
        assert_eq!(what(&["python", "app_test.py"], 1, out, false), None);
    }

    #[test]
    fn a_program_the_test_script_needs_is_missing_when_no_test_ran() {
        // `make` running a recipe whose tool is missing: make exits 2.
        let out = "pytest -q\nmake: pytest: No such file or directory\nmake: *** [Makefile:2: test] Error 127\n";
        assert_eq!(
            what(&["make", "test"], 2, out, false).as_deref(),
            Some("`pytest` is not installed (make: pytest: No such file or directory)")
        );
        let out = "./test.sh: line 3: jq: command not found\n";
        assert_eq!(
            what(&["./test.sh"], 1, out, false).as_deref(),
            Some("`jq` is not installed (./test.sh: line 3: jq: command not found)")
        );
    }
}
