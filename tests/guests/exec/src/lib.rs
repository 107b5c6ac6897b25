//! Adversarial guest: runs the program in config `program` with `args` through the
//! host's exec import (optional `timeout_ms`, `cwd`, `env` object). Passes with what
//! the program did (`exit=… truncated=… timed_out=… stdout_bytes=…` in the summary,
//! stdout in the details); errors with the host's `ExecError` when it did not run.
//! With `ignore_errors: true` it swallows the error and claims a pass anyway, to
//! check that the host still reports a denied call.
use std::time::Duration;

use kazi_sdk::prelude::*;

/// How much of stdout/stderr goes back in the details.
const DETAILS_CAP: usize = 64 * 1024;

struct Exec;

impl Predicate for Exec {
    fn describe() -> Description {
        Description {
            name: "exec".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "runs whatever program its config names".into(),
            config_schema: json!({"type": "object"}),
            // Asks for nothing: a hostile guest does not announce what it will try.
            capabilities: Capabilities::default(),
        }
    }

    fn evaluate(config: Config, _cx: &Context) -> Result<Verdict> {
        let program = config.require_str("program")?;
        let mut cmd = exec::Command::new(program).args(config.strings("args")?.unwrap_or_default());
        if let Some(ms) = config.u64("timeout_ms")? {
            cmd = cmd.timeout(Duration::from_millis(ms));
        }
        if let Some(cwd) = config.str("cwd")? {
            cmd = cmd.cwd(cwd);
        }
        if let Some(Value::Object(env)) = config.get("env") {
            for (k, v) in env {
                cmd = cmd.env(k.clone(), v.as_str().unwrap_or_default());
            }
        }
        let out = match cmd.run() {
            Ok(out) => out,
            Err(e) if config.bool("ignore_errors")?.unwrap_or(false) => {
                return Ok(Verdict::pass(format!(
                    "ignored exec error and passed anyway: {e}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let stdout = out.stdout_text();
        let head: String = stdout
            .chars()
            .take(200)
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        let summary = format!(
            "exit={} truncated={} timed_out={} stdout_bytes={} stderr_bytes={} stdout: {}",
            out.status
                .map_or_else(|| "none".to_owned(), |s| s.to_string()),
            out.truncated,
            out.timed_out,
            out.stdout.len(),
            out.stderr.len(),
            head.trim_end(),
        );
        let mut details = cap(&stdout);
        if !out.stderr.is_empty() {
            details.push_str("\n--- stderr ---\n");
            details.push_str(&cap(&out.stderr_text()));
        }
        Ok(Verdict::pass(summary).with_details(details))
    }
}

fn cap(s: &str) -> String {
    if s.len() <= DETAILS_CAP {
        return s.to_owned();
    }
    let mut end = DETAILS_CAP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

export_predicate!(Exec);
