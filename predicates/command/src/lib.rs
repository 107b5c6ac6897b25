//! The builtin `command` predicate: a program's outcome in the workspace.
//!
//! Runs `run` (argv, no shell) through the host's `exec` import and judges it: the
//! exit code (`pass_codes`, default `[0]`), then an optional `match` or `json` rule
//! with `pass_when`, and an optional JUnit report. Test counts from `cargo test`,
//! nextest, `go test`, pytest, `node --test`, jest and vitest become metrics
//! (`tests_passed`, `tests_failed`, `tests_ignored`, `tests_total`) and the score;
//! failure lines become diagnostics. The decision itself is pure ([`decide`]); this
//! module only runs the program and reads files. User documentation:
//! `docs/predicates/command.md`.

/// A lazily compiled regex (the patterns are literals: a bad one is a bug).
macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($pattern).expect("valid regex"));
    };
}

mod compare;
mod config;
mod counts;
mod decide;
mod evidence;
mod failures;
mod focus;
mod junit;
mod missing;

use std::time::{Duration, SystemTime};

use kazi_sdk::exec::{self, ExecError};
use kazi_sdk::prelude::*;

pub use config::{CommandConfig, Spec};
pub use decide::{Decision, JunitFile, MISSING_TOOL, Run, decide};
pub use failures::Finding;

/// The `command` predicate.
pub struct Command;

impl Predicate<CommandConfig> for Command {
    fn describe() -> Description {
        Description {
            name: "command".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "a program's outcome in the workspace: exit code, output regex, JSON value, JUnit report; test counts as metrics".into(),
            // The program depends on the config: the host grants `run[0]` to this builtin.
            capabilities: Capabilities::default(),
            ..Description::default()
        }
    }

    fn validate(config: &CommandConfig) -> Vec<ConfigError> {
        Spec::build(config).err().unwrap_or_default()
    }

    fn evaluate(config: CommandConfig, cx: &Context) -> Result<Verdict> {
        let spec = Spec::build(&config)
            .map_err(|e| Error::from(e.into_iter().next().expect("an error")))?;
        let runner = (spec.focus && spec.rule.is_none())
            .then(|| focus::Runner::of(&spec.run))
            .flatten();
        if let Some(runner) = runner
            && let Some(verdict) = focused(runner, &spec, cx)
        {
            return Ok(verdict);
        }
        let (decision, output) = match observe(&spec, cx) {
            Observed::Ran(d, output) => (d, output),
            Observed::NotRun(v) => return Ok(v),
        };
        if let Some(runner) = runner {
            remember(runner, &spec, &decision.verdict, &output);
        }
        Ok(finish(decision, &spec, cx))
    }
}

export_predicate!(Command);

/// A run of the program, judged, with its combined output; or the verdict when it
/// could not be run.
enum Observed {
    Ran(Decision, String),
    NotRun(Verdict),
}

fn observe(spec: &Spec, cx: &Context) -> Observed {
    let started = SystemTime::now();
    let mut cmd = exec::Command::new(spec.program()).args(spec.run[1..].iter().cloned());
    if let Some(cwd) = &spec.cwd {
        cmd = cmd.cwd(cwd.clone());
    }
    for (k, v) in &spec.env {
        cmd = cmd.env(k.clone(), v.clone());
    }
    let output = match cmd.run() {
        Ok(o) => o,
        Err(e) => return Observed::NotRun(exec_error(spec, &e)),
    };
    let junit = match &spec.junit {
        Some(path) => read_junit(cx.workspace(), path, started),
        None => JunitFile::NotConfigured,
    };
    let stdout = output.stdout_text();
    let stderr = output.stderr_text();
    let run = Run {
        status: output.status,
        timed_out: output.timed_out,
        truncated: output.truncated,
        duration: output.duration,
        stdout: &stdout,
        stderr: &stderr,
    };
    let decision = decide(spec, &run, junit);
    Observed::Ran(decision, format!("{stdout}\n{stderr}"))
}

/// The decision as a verdict, its findings resolved against the workspace.
fn finish(decision: Decision, spec: &Spec, cx: &Context) -> Verdict {
    let ws = cx.workspace();
    let exists = |rel: &str| ws.path(rel).is_ok_and(|p| p.is_file());
    let go_module = || {
        let dir = spec.cwd.as_deref().unwrap_or("");
        go_module(&ws.read_to_string(&join(dir, "go.mod")).unwrap_or_default())
    };
    with_diagnostics(decision, spec.cwd.as_deref(), &exists, go_module)
}

/// Re-run only the tests the last full run saw fail. While one of them still fails,
/// that is the verdict: a `fail` with the metric `focused`. `None` (run the whole
/// command) when nothing is remembered, the focused run passed, or it said nothing
/// usable (an error, no test named as failing).
fn focused(runner: focus::Runner, spec: &Spec, cx: &Context) -> Option<Verdict> {
    let mut memory = focus::Memory::recall(&spec.run, cx.iteration)?;
    let ws = cx.workspace();
    let dir = spec.cwd.as_deref().unwrap_or("");
    let is_path = |a: &str| {
        let rel = join(dir, a.trim_end_matches('/'));
        Workspace::check_relative(&rel).is_ok() && ws.path(&rel).is_ok_and(|p| p.exists())
    };
    let run = focus::argv(runner, &spec.run, &memory.ids, &is_path)?;
    let narrow = Spec {
        run,
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        pass_codes: spec.pass_codes.clone(),
        rule: None,
        junit: spec.junit.clone(),
        focus: true,
    };
    let Observed::Ran(decision, output) = observe(&narrow, cx) else {
        return None;
    };
    if decision.verdict.outcome != Outcome::Fail {
        return None;
    }
    let still = focus::ids(runner, &output);
    if still.is_empty() {
        return None;
    }
    let (n, of) = (still.len(), memory.ids.len());
    memory.focused_in(cx.iteration);
    let score = memory.estimated_score(n);
    memory.ids = still;
    memory.keep();
    let mut verdict = finish(decision, &narrow, cx);
    let tests = |n: usize| if n == 1 { "test" } else { "tests" };
    let still_fail = if n == 1 { "still fails" } else { "still fail" };
    let head = match (n, of) {
        (_, 1) => "the test that failed last time still fails".to_owned(),
        (n, of) if n == of => format!("the {of} tests that failed last time still fail"),
        (n, of) => format!("{n} of the {of} tests that failed last time {still_fail}"),
    };
    verdict.summary = format!("{head}: {}", verdict.summary);
    verdict.details = format!(
        "note: focused: this re-ran only the {of} {} that failed in the last full run of `{}`; \
         the whole command runs again once they pass, and only it can make this predicate pass \
         (`focus = false` always runs it)\n{}",
        tests(of),
        evidence::command_line(&spec.run),
        verdict.details
    );
    verdict.score = score;
    Some(verdict.with_metric(focus::METRIC, 1.0))
}

/// After a full run: keep the failing tests for a focused re-run when the output
/// named every one of them, forget them otherwise.
fn remember(runner: focus::Runner, spec: &Spec, verdict: &Verdict, output: &str) {
    let metric = |name: &str| {
        verdict
            .metrics
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v as u64)
    };
    let ids = focus::ids(runner, output);
    let failed = metric("tests_failed").unwrap_or(0);
    let all_named = !ids.is_empty() && ids.len() as u64 == failed && ids.len() <= focus::MAX_IDS;
    if verdict.outcome == Outcome::Fail && all_named {
        focus::Memory {
            run: spec.run.clone(),
            runner,
            ids,
            passed: metric("tests_passed").unwrap_or(0),
            total: metric("tests_total").unwrap_or(0),
            failed,
            in_a_row: 0,
            last_iteration: None,
        }
        .keep();
    } else {
        focus::Memory::forget();
    }
}

/// The verdict when the host could not run the program at all: always `error`. A
/// program that is not on PATH is a missing tool (summary `missing tool: …`, metric
/// `missing_tool`), as when a program it runs is.
pub fn exec_error(spec: &Spec, e: &ExecError) -> Verdict {
    let program = spec.program();
    let summary = match e {
        ExecError::Denied(m) => format!("cannot run `{program}`: {m}"),
        ExecError::NotFound(m) => {
            return Verdict::error(format!(
                "{MISSING_TOOL} {m}; hint: install it on the host, or check that `run[0]` is spelt right"
            ))
            .with_metric("missing_tool", 1.0)
            .with_diagnostic(None, None, format!("{MISSING_TOOL} {program}"));
        }
        ExecError::Invalid(m) => format!("cannot run `{program}`: {m}"),
        ExecError::Io(m) => format!("cannot run `{program}`: {m}"),
    };
    Verdict::error(summary)
}

/// The JUnit report as the run left it; a file older than the run (with two
/// seconds of slack for coarse file times) is stale.
fn read_junit(ws: &Workspace, rel: &str, started: SystemTime) -> JunitFile {
    let Ok(path) = ws.path(rel) else {
        return JunitFile::Unreadable("the path leaves the workspace".into());
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return JunitFile::Missing,
        Err(e) => return JunitFile::Unreadable(e.to_string()),
    };
    if let Ok(modified) = meta.modified()
        && modified + Duration::from_secs(2) < started
    {
        return JunitFile::Stale;
    }
    match std::fs::read(&path) {
        Ok(bytes) => JunitFile::Read(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => JunitFile::Unreadable(e.to_string()),
    }
}

/// `dir/file`, or `file` when `dir` is empty.
fn join(dir: &str, file: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        file.to_owned()
    } else {
        format!("{dir}/{file}")
    }
}

/// The `module` path of a `go.mod`.
fn go_module(go_mod: &str) -> Option<String> {
    go_mod.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("module")?;
        let name = rest.trim().trim_matches('"');
        (!name.is_empty() && rest.starts_with([' ', '\t'])).then(|| name.to_owned())
    })
}

/// Turn findings into diagnostics whose files are workspace-relative and exist: a
/// path printed relative to `cwd` gets `cwd` in front, an absolute path is cut to
/// its longest tail that names a workspace file, a go file is found through its
/// package and `go.mod`. A location that names no workspace file moves into the
/// message instead of pointing somewhere wrong.
pub fn with_diagnostics(
    decision: Decision,
    cwd: Option<&str>,
    exists: &dyn Fn(&str) -> bool,
    go_module: impl FnOnce() -> Option<String>,
) -> Verdict {
    let cwd = cwd.unwrap_or("");
    let mut module: Option<Option<String>> = None;
    let mut go_module = Some(go_module);
    let mut verdict = decision.verdict;
    for f in decision.findings {
        let Some(raw) = f.file.clone() else {
            verdict = verdict.with_diagnostic(None, f.line, f.message);
            continue;
        };
        let printed = raw.replace('\\', "/");
        let printed = printed.strip_prefix("./").unwrap_or(&printed).to_owned();
        let mut candidates = Vec::new();
        if let Some(pkg) = &f.go_package
            && !printed.contains('/')
        {
            let m = module.get_or_insert_with(|| go_module.take().and_then(|g| g()));
            if let Some(m) = m.as_deref()
                && let Some(rest) = pkg.strip_prefix(m)
            {
                candidates.push(join(&join(cwd, rest.trim_start_matches('/')), &printed));
            }
        }
        if printed.starts_with('/') {
            let parts: Vec<&str> = printed.split('/').filter(|p| !p.is_empty()).collect();
            candidates.extend((0..parts.len()).map(|i| parts[i..].join("/")));
        } else {
            candidates.push(join(cwd, &printed));
            candidates.push(printed.clone());
        }
        match candidates
            .into_iter()
            .find(|c| Workspace::check_relative(c).is_ok() && exists(c))
        {
            Some(file) => verdict = verdict.with_diagnostic(Some(&file), f.line, f.message),
            None => {
                let at = match f.line {
                    Some(l) => format!("{printed}:{l}"),
                    None => printed,
                };
                verdict = verdict.with_diagnostic(None, None, format!("{} (at {at})", f.message));
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_comes_from_the_config_type() {
        assert!(Command::describe().config_schema.is_null());
        let schema = CommandConfig::schema();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["run"]));
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 9);
        for (key, prop) in props {
            assert!(
                prop["description"].as_str().is_some_and(|d| d.len() > 40),
                "{key} lacks a description"
            );
        }
    }

    #[test]
    fn pass_when_accepts_every_documented_form() {
        for ok in [
            "== 0",
            ">=3",
            " < 2.5",
            "!= 0",
            "7",
            "== \"ready\"",
            "== 'a b'",
            "== true",
            "== null",
            "= -1",
        ] {
            assert!(compare::Comparison::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "==", ">= ok", "== passed", "== \"open"] {
            assert!(compare::Comparison::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn describe_names_the_predicate() {
        let d = Command::describe();
        assert_eq!(d.name, "command");
        assert!(d.capabilities.exec.is_empty() && !d.capabilities.fs_write);
    }

    #[test]
    fn bad_config_is_an_error_before_anything_runs() {
        let cx = Context::new("t", 0, "/nonexistent");
        let config = CommandConfig::from_value(json!({"run": ["x"], "match": "("})).unwrap();
        let err = Command::evaluate(config, &cx).unwrap_err();
        assert!(
            err.message()
                .starts_with("config: `match` is not a valid regex"),
            "{err}"
        );
    }

    #[test]
    fn exec_errors_are_errors_that_say_what() {
        let spec = Spec::parse(&Config::new(json!({"run": ["cargo", "test"]}))).unwrap();
        let v = exec_error(&spec, &ExecError::NotFound("`cargo` is not on PATH".into()));
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.summary
                .starts_with("missing tool: `cargo` is not on PATH; hint:"),
            "{}",
            v.summary
        );
        assert_eq!(v.metrics, [("missing_tool".to_owned(), 1.0)]);
        let v = exec_error(
            &spec,
            &ExecError::Denied("running `cargo` is not granted; hint: add `exec = [\"cargo\"]` under [predicate.allow]".into()),
        );
        assert_eq!(v.outcome, Outcome::Error);
        assert!(v.summary.contains("not granted"));
        let v = exec_error(
            &spec,
            &ExecError::Invalid("cwd `x` is not a directory in the workspace".into()),
        );
        assert_eq!(
            v.summary,
            "cannot run `cargo`: cwd `x` is not a directory in the workspace"
        );
    }

    #[test]
    fn go_mod_module_path() {
        assert_eq!(
            go_module("// x\nmodule example.com/calc\n\ngo 1.22\n").as_deref(),
            Some("example.com/calc")
        );
        assert_eq!(
            go_module("module \"example.com/q\"\n").as_deref(),
            Some("example.com/q")
        );
        assert_eq!(go_module("modulex y\n"), None);
        assert_eq!(go_module(""), None);
    }

    fn finding(file: &str, line: u32, go_package: Option<&str>) -> Finding {
        Finding {
            file: Some(file.into()),
            line: Some(line),
            message: "boom".into(),
            go_package: go_package.map(str::to_owned),
        }
    }

    fn resolve(
        findings: Vec<Finding>,
        cwd: Option<&str>,
        files: &[&str],
    ) -> Vec<(Option<String>, Option<u32>, String)> {
        let decision = Decision {
            verdict: Verdict::fail("x"),
            findings,
        };
        let exists = |p: &str| files.contains(&p);
        with_diagnostics(decision, cwd, &exists, || Some("example.com/calc".into()))
            .diagnostics
            .into_iter()
            .map(|d| (d.file, d.line, d.message))
            .collect()
    }

    #[test]
    fn diagnostics_point_at_workspace_files() {
        let files = [
            "backend/src/lib.rs",
            "src/lib.rs",
            "web/test/math.test.js",
            "internal/calc/calc_test.go",
        ];
        // Relative to cwd first, then to the root.
        assert_eq!(
            resolve(
                vec![finding("src/lib.rs", 3, None)],
                Some("backend"),
                &files
            ),
            [(Some("backend/src/lib.rs".into()), Some(3), "boom".into())]
        );
        assert_eq!(
            resolve(vec![finding("./src/lib.rs", 3, None)], None, &files),
            [(Some("src/lib.rs".into()), Some(3), "boom".into())]
        );
        // An absolute host path is cut to the workspace file it names.
        assert_eq!(
            resolve(
                vec![finding("/home/ci/ws/web/test/math.test.js", 5, None)],
                None,
                &files
            ),
            [(Some("web/test/math.test.js".into()), Some(5), "boom".into())]
        );
        // go: package path minus the module, from go.mod.
        assert_eq!(
            resolve(
                vec![finding(
                    "calc_test.go",
                    14,
                    Some("example.com/calc/internal/calc")
                )],
                None,
                &files
            ),
            [(
                Some("internal/calc/calc_test.go".into()),
                Some(14),
                "boom".into()
            )]
        );
        // Nothing found: the location moves into the message.
        assert_eq!(
            resolve(
                vec![finding("/rustc/abc/library/core/src/x.rs", 9, None)],
                None,
                &files
            ),
            [(
                None,
                None,
                "boom (at /rustc/abc/library/core/src/x.rs:9)".into()
            )]
        );
        // Paths that would leave the workspace are never used.
        assert_eq!(
            resolve(vec![finding("../src/lib.rs", 1, None)], None, &files)[0].0,
            None
        );
    }
}
