//! The builtin `log` predicate: a log's health.
//!
//! Reads lines from a workspace file (`path`, streamed, never held whole) or from a
//! program's stdout and stderr (`run`), optionally only the last `tail` lines and
//! only the entries stamped within `since`, and judges them: at most `max` lines may
//! match `match`, and no line may match `panic`. The scanning and the verdict are
//! pure ([`scan`]); this module only reads the file or runs the program. User
//! documentation: `docs/predicates/log.md`.

mod config;
mod scan;
mod timestamp;

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use kazi_sdk::exec::{self, ExecError};
use kazi_sdk::prelude::*;
use kazi_sdk::text::{tail_lines, truncate};

pub use config::{LogConfig, Source, Spec};
pub use scan::{Scan, Scanner, SourceLabel, scan_text, verdict};

/// The `log` predicate.
pub struct Log;

impl Predicate<LogConfig> for Log {
    fn describe() -> Description {
        Description {
            name: "log".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "a log's health: lines matching a regex (at most `max`), panic lines (none), optionally within a time window".into(),
            // A `run` program depends on the config: the host grants `run[0]` to this builtin.
            capabilities: Capabilities::default(),
            ..Description::default()
        }
    }

    fn validate(config: &LogConfig) -> Vec<ConfigError> {
        Spec::build(config).err().unwrap_or_default()
    }

    fn evaluate(config: LogConfig, cx: &Context) -> Result<Verdict> {
        let spec = Spec::build(&config)
            .map_err(|e| Error::from(e.into_iter().next().expect("an error")))?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match &spec.source {
            Source::Path { path, missing_ok } => {
                from_file(&spec, cx.workspace(), path, *missing_ok, now_ms)
            }
            Source::Run { argv, env, cwd } => {
                let mut cmd = exec::Command::new(argv[0].clone()).args(argv[1..].iter().cloned());
                if let Some(cwd) = cwd {
                    cmd = cmd.cwd(cwd.clone());
                }
                for (k, v) in env {
                    cmd = cmd.env(k.clone(), v.clone());
                }
                let ran = cmd.run().map(|o| Ran {
                    status: o.status,
                    timed_out: o.timed_out,
                    truncated: o.truncated,
                    took_ms: o.duration.as_millis(),
                    stdout: o.stdout_text(),
                    stderr: o.stderr_text(),
                });
                Ok(from_run(&spec, argv, ran, now_ms))
            }
        }
    }
}

export_predicate!(Log);

/// The verdict for a `path` source.
fn from_file(
    spec: &Spec,
    ws: &Workspace,
    rel: &str,
    missing_ok: bool,
    now_ms: i64,
) -> Result<Verdict> {
    let path = ws.path(rel)?;
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(missing(rel, missing_ok)),
        Err(e) => return Err(Error::new(format!("cannot read `{rel}`: {e}"))),
    };
    if meta.is_dir() {
        return Err(Error::new(format!(
            "`{rel}` is a directory, not a log file; hint: name the log file itself in `path`"
        )));
    }
    let open = || File::open(&path).map_err(|e| Error::new(format!("cannot read `{rel}`: {e}")));
    let skip = match spec.tail {
        Some(n) => count_lines(open()?)
            .map_err(|e| Error::new(format!("cannot read `{rel}`: {e}")))?
            .saturating_sub(n),
        None => 0,
    };
    let mut scanner = Scanner::new(spec, now_ms);
    stream_lines(open()?, skip, &mut |n, line| scanner.push(n, line))
        .map_err(|e| Error::new(format!("cannot read `{rel}`: {e}")))?;
    let label = SourceLabel {
        name: rel.to_owned(),
        file: Some(rel.to_owned()),
    };
    Ok(verdict(spec, &label, &scanner.finish(), &[]))
}

/// The verdict for a log file that is not there.
pub fn missing(rel: &str, missing_ok: bool) -> Verdict {
    if missing_ok {
        Verdict::pass(format!("{rel} does not exist (missing_ok)"))
            .with_details(format!(
                "`{rel}` does not exist; with `missing_ok = true` a missing log counts as healthy"
            ))
            .with_metric("lines", 0.0)
    } else {
        Verdict::error(format!(
            "{rel} does not exist; hint: check `path` (relative to the workspace), or set `missing_ok = true` if the log may not exist yet"
        ))
    }
}

/// The number of lines in a file (a last line without a line break counts).
fn count_lines(file: impl Read) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[buf.len() - 1];
        let n = buf.len();
        reader.consume(n);
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

/// Call `f` with each line (1-based number, text without the line break) after the
/// first `skip` lines. Invalid UTF-8 is replaced, never an error.
fn stream_lines(file: impl Read, skip: u64, f: &mut dyn FnMut(u64, &str)) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut buf = Vec::with_capacity(256);
    let mut n = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        n += 1;
        if n <= skip {
            continue;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        f(n, &String::from_utf8_lossy(&buf));
    }
}

/// What a `run` program did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub status: Option<i32>,
    pub timed_out: bool,
    pub truncated: bool,
    pub took_ms: u128,
    pub stdout: String,
    pub stderr: String,
}

/// The verdict for a `run` source. The lines decide: a rule that finds a problem
/// fails whatever the exit code. A program that exits non-zero without such a
/// finding is an error: its output is no trustworthy log (`docker logs` of a
/// container that does not exist prints nothing to match).
pub fn from_run(spec: &Spec, argv: &[String], ran: Result<Ran, ExecError>, now_ms: i64) -> Verdict {
    let cmd = command_line(argv);
    let program = &argv[0];
    let ran = match ran {
        Ok(r) => r,
        Err(ExecError::NotFound(m)) => {
            return Verdict::error(format!(
                "cannot run `{program}`: {m}; hint: install it on the host, or check that `run[0]` is spelt right"
            ));
        }
        Err(ExecError::Denied(m) | ExecError::Invalid(m) | ExecError::Io(m)) => {
            return Verdict::error(format!("cannot run `{program}`: {m}"));
        }
    };
    let tail = tail_lines(&format!("{}\n{}", ran.stdout, ran.stderr), 20, 2048);
    if ran.timed_out {
        return Verdict::error(format!(
            "`{cmd}` timed out after {}",
            humantime::format_duration(std::time::Duration::from_millis(ran.took_ms as u64))
        ))
        .with_details(format!("last output:\n{tail}\n"));
    }
    let text = match (ran.stdout.is_empty(), ran.stderr.is_empty()) {
        (_, true) => ran.stdout.clone(),
        (true, false) => ran.stderr.clone(),
        (false, false) if ran.stdout.ends_with('\n') => format!("{}{}", ran.stdout, ran.stderr),
        (false, false) => format!("{}\n{}", ran.stdout, ran.stderr),
    };
    let scan = scan_text(spec, &text, now_ms);
    let mut notes = Vec::new();
    let exit = match ran.status {
        Some(code) => format!("exited {code}"),
        None => "was killed by a signal".to_owned(),
    };
    notes.push(format!("`{cmd}` {exit}"));
    if ran.truncated {
        notes.push(
            "the output was cut at the host's cap (1 MiB per stream): later lines are missing"
                .into(),
        );
    }
    let label = SourceLabel {
        name: format!("the output of `{cmd}`"),
        file: None,
    };
    let v = verdict(spec, &label, &scan, &notes);
    if v.outcome == Outcome::Pass && ran.status != Some(0) {
        let last = ran
            .stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .or_else(|| {
                ran.stdout
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
            })
            .map(|l| format!(": {}", truncate(l, 120)))
            .unwrap_or_default();
        return Verdict::error(format!(
            "`{cmd}` {exit}, so its output is not a log to trust{last}"
        ))
        .with_details(format!("{}\nlast output:\n{tail}\n", v.details));
    }
    v
}

/// The command line as a person would type it, cut to 80 characters.
fn command_line(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    truncate(&quoted.join(" "), 80).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(dir: &std::path::Path, config: Value) -> Result<Verdict> {
        Log::evaluate(LogConfig::from_value(config)?, &Context::new("t", 0, dir))
    }

    fn metric(v: &Verdict, name: &str) -> Option<f64> {
        v.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    #[test]
    fn the_schema_comes_from_the_config_type() {
        assert!(Log::describe().config_schema.is_null());
        let schema = LogConfig::schema();
        assert_eq!(schema["additionalProperties"], json!(false));
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 10);
        for (key, prop) in props {
            assert!(
                prop["description"].as_str().is_some_and(|d| d.len() > 40),
                "{key} lacks a description"
            );
        }
    }

    #[test]
    fn describe_names_the_predicate() {
        let d = Log::describe();
        assert_eq!(d.name, "log");
        assert!(d.capabilities.exec.is_empty());
    }

    #[test]
    fn reads_a_workspace_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(
            dir.path().join("logs/app.log"),
            "INFO up\nERROR 502 upstream\r\nINFO ok\nERROR 500 boom",
        )
        .unwrap();
        let v = eval(
            dir.path(),
            json!({"path": "logs/app.log", "match": "ERROR 5\\d\\d"}),
        )
        .unwrap();
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "2 lines match /ERROR 5\\d\\d/ (max 0) in logs/app.log (4 lines)"
        );
        assert_eq!(v.diagnostics[0].file.as_deref(), Some("logs/app.log"));
        assert_eq!(v.diagnostics[0].line, Some(2));
        assert_eq!(v.diagnostics[1].line, Some(4));
        assert!(
            v.diagnostics[0].message.ends_with("ERROR 502 upstream"),
            "no \\r: {:?}",
            v.diagnostics[0].message
        );

        let v = eval(
            dir.path(),
            json!({"path": "logs/app.log", "match": "ERROR", "tail": 2}),
        )
        .unwrap();
        assert_eq!(metric(&v, "lines"), Some(2.0));
        assert_eq!(v.diagnostics.len(), 1);
        assert_eq!(v.diagnostics[0].line, Some(4));

        let v = eval(
            dir.path(),
            json!({"path": "logs/app.log", "panic": "panicked"}),
        )
        .unwrap();
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), b"ok \xff\nERROR \xfe x\n").unwrap();
        let v = eval(dir.path(), json!({"path": "a.log", "match": "ERROR"})).unwrap();
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.diagnostics[0].line, Some(2));
    }

    #[test]
    fn a_missing_log_is_an_error_unless_missing_ok() {
        let dir = tempfile::tempdir().unwrap();
        let err = eval(dir.path(), json!({"path": "logs/app.log", "match": "x"})).unwrap();
        assert_eq!(err.outcome, Outcome::Error);
        assert!(
            err.summary
                .starts_with("logs/app.log does not exist; hint:")
        );
        let v = eval(
            dir.path(),
            json!({"path": "logs/app.log", "match": "x", "missing_ok": true}),
        )
        .unwrap();
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "logs/app.log does not exist (missing_ok)");
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let err = eval(dir.path(), json!({"path": "logs", "match": "x"})).unwrap_err();
        assert!(err.message().contains("is a directory"));
    }

    #[test]
    fn line_counting() {
        assert_eq!(count_lines(&b""[..]).unwrap(), 0);
        assert_eq!(count_lines(&b"a"[..]).unwrap(), 1);
        assert_eq!(count_lines(&b"a\n"[..]).unwrap(), 1);
        assert_eq!(count_lines(&b"a\nb"[..]).unwrap(), 2);
        assert_eq!(count_lines(&b"\n\n"[..]).unwrap(), 2);
        let mut seen = Vec::new();
        stream_lines(&b"a\nb\nc"[..], 1, &mut |n, l| seen.push((n, l.to_owned()))).unwrap();
        assert_eq!(seen, [(2, "b".to_owned()), (3, "c".to_owned())]);
    }

    fn spec(v: Value) -> Spec {
        Spec::parse(&Config::new(v)).unwrap()
    }

    fn ran(status: Option<i32>, stdout: &str, stderr: &str) -> Result<Ran, ExecError> {
        Ok(Ran {
            status,
            timed_out: false,
            truncated: false,
            took_ms: 40,
            stdout: stdout.into(),
            stderr: stderr.into(),
        })
    }

    #[test]
    fn run_output_is_the_log() {
        let s = spec(json!({"run": ["docker", "logs", "app"], "panic": "panicked"}));
        let argv: Vec<String> = vec!["docker".into(), "logs".into(), "app".into()];
        let v = from_run(
            &s,
            &argv,
            ran(Some(0), "ok\n", "thread 'main' panicked at x\n"),
            0,
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "1 line matches panic /panicked/ in the output of `docker logs app` (2 lines)"
        );
        assert!(v.details.contains("note: `docker logs app` exited 0"));

        let v = from_run(&s, &argv, ran(Some(0), "all fine\n", ""), 0);
        assert_eq!(v.outcome, Outcome::Pass);

        // A failing reader is no evidence of health …
        let v = from_run(
            &s,
            &argv,
            ran(Some(1), "", "Error: No such container: app\n"),
            0,
        );
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(
            v.summary,
            "`docker logs app` exited 1, so its output is not a log to trust: Error: No such container: app"
        );
        // … but what it did print can still fail.
        let v = from_run(
            &s,
            &argv,
            ran(
                Some(101),
                "thread 'main' panicked at src/main.rs:1:1:\n",
                "",
            ),
            0,
        );
        assert_eq!(v.outcome, Outcome::Fail);
    }

    #[test]
    fn run_errors() {
        let s = spec(json!({"run": ["docker", "logs", "app"], "panic": "panicked"}));
        let argv: Vec<String> = vec!["docker".into(), "logs".into(), "app".into()];
        let v = from_run(
            &s,
            &argv,
            Err(ExecError::NotFound("`docker` is not on PATH".into())),
            0,
        );
        assert_eq!(v.outcome, Outcome::Error);
        assert!(
            v.summary
                .starts_with("cannot run `docker`: `docker` is not on PATH; hint:")
        );
        let v = from_run(
            &s,
            &argv,
            Err(ExecError::Denied("running `docker` is not granted".into())),
            0,
        );
        assert_eq!(
            v.summary,
            "cannot run `docker`: running `docker` is not granted"
        );
        let mut r = ran(None, "line 1\nline 2\n", "").unwrap();
        r.timed_out = true;
        r.took_ms = 30_000;
        let v = from_run(&s, &argv, Ok(r), 0);
        assert_eq!(v.outcome, Outcome::Error);
        assert_eq!(v.summary, "`docker logs app` timed out after 30s");
        assert!(v.details.contains("line 2"));
    }
}
