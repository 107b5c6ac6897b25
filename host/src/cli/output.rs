//! The one printer: stdout carries data (the report, `--json`), stderr carries
//! progress, logs and errors. Colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::verdict::{Outcome, Verdict};

/// Writes everything kazi shows a person or a program.
#[derive(Debug, Clone)]
pub struct Printer {
    color: bool,
    #[allow(dead_code, reason = "used by progress output of later commands")]
    quiet: bool,
}

impl Printer {
    /// A printer for this process's stdout/stderr.
    pub fn new(quiet: bool) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { color, quiet }
    }

    /// Print a line of data to stdout. A closed pipe is not an error.
    pub fn out(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// Print one JSON value to stdout.
    pub fn json(&self, value: &serde_json::Value) {
        self.out(&serde_json::to_string_pretty(value).expect("JSON values serialise"));
    }

    /// Print an error to stderr.
    pub fn error(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    }

    fn paint(&self, outcome: Outcome) -> String {
        let (code, word) = match outcome {
            Outcome::Pass => ("32", "PASS "),
            Outcome::Fail => ("31", "FAIL "),
            Outcome::Error => ("33", "ERROR"),
        };
        if self.color { format!("\x1b[1;{code}m{word}\x1b[0m") } else { word.to_owned() }
    }

    /// A verdict as a person reads it: the outcome and summary on one line, then the
    /// evidence indented.
    pub fn verdict(&self, id: &str, verdict: &Verdict) {
        self.out(&format!("{} {id}: {}", self.paint(verdict.outcome), verdict.summary));
        for d in &verdict.diagnostics {
            let place = match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            self.out(&format!("      {place}{}", d.message));
        }
        if !verdict.metrics.is_empty() {
            let m: Vec<String> = verdict.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.out(&format!("      metrics: {}", m.join(" ")));
        }
        if let Some(s) = verdict.score {
            self.out(&format!("      score: {s}"));
        }
        if !verdict.details.is_empty() {
            for line in verdict.details.lines() {
                self.out(&format!("      {line}"));
            }
        }
    }
}
