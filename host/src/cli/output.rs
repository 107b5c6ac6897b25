//! The one printer: stdout carries data (the report, `--json`), stderr carries
//! progress, logs and errors. Colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use crate::verdict::{Outcome, Verdict};

/// Writes everything kazi shows a person or a program.
#[derive(Debug, Clone)]
pub struct Printer {
    color: bool,
    quiet: bool,
}

/// Whether to colour what goes to `stream`: only a terminal, and never when `NO_COLOR`
/// is set to anything (<https://no-color.org>).
pub fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Printer {
    /// A printer for this process's stdout/stderr.
    pub fn new(quiet: bool) -> Self {
        let color = colour(&std::io::stdout());
        Self { color, quiet }
    }

    /// Print a line of data to stdout, stripped of terminal control sequences (it may
    /// quote a guest or an agent). A closed pipe is not an error.
    pub fn out(&self, text: &str) {
        self.out_raw(&crate::text::lines(text));
    }

    /// Print text kazi composed itself (colours included) to stdout, as is.
    fn out_raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// Print one JSON value to stdout (exact: JSON escapes control characters).
    pub fn json(&self, value: &serde_json::Value) {
        self.out_raw(&serde_json::to_string_pretty(value).expect("JSON values serialise"));
    }

    /// Print a notice to stderr.
    pub fn notice(&self, message: &str) {
        let message = crate::text::lines(message);
        let _ = writeln!(std::io::stderr().lock(), "note: {message}");
    }

    /// Whether live progress belongs on stderr: a terminal, and not `--quiet`.
    pub fn live(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// Print one compact JSON line to stdout (`--stream`).
    pub fn json_line(&self, value: &serde_json::Value) {
        self.out_raw(&value.to_string());
    }

    /// A progress line on stderr, unless `--quiet`.
    pub fn progress(&self, message: &str) {
        if !self.quiet {
            let message = crate::text::lines(message);
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
    }

    /// A predicate's loop state (which may be `unknown`) and summary on one line.
    pub fn state_line(&self, id: &str, state: crate::run::State, verdict: &Verdict) {
        match state {
            crate::run::State::Unknown => {
                let word = if self.color {
                    "\x1b[1;35mUNKN \x1b[0m".to_owned()
                } else {
                    "UNKN ".to_owned()
                };
                self.out_raw(&format!(
                    "{word} {}: quarantined as flaky ({})",
                    crate::text::line(id),
                    crate::text::line(&verdict.summary)
                ));
            }
            _ => self.verdict_line(id, verdict, false),
        }
    }

    /// Print an error to stderr.
    pub fn error(&self, message: &str) {
        let message = crate::text::lines(message);
        let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    }

    fn paint(&self, outcome: Outcome) -> String {
        let (code, word) = match outcome {
            Outcome::Pass => ("32", "PASS "),
            Outcome::Fail => ("31", "FAIL "),
            Outcome::Error => ("33", "ERROR"),
        };
        if self.color {
            format!("\x1b[1;{code}m{word}\x1b[0m")
        } else {
            word.to_owned()
        }
    }

    /// A verdict as a person reads it: the outcome and summary on one line, then the
    /// evidence indented.
    pub fn verdict(&self, id: &str, verdict: &Verdict) {
        self.verdict_line(id, verdict, true);
    }

    /// The outcome and summary on one line, then (with `evidence`) the evidence.
    pub fn verdict_line(&self, id: &str, verdict: &Verdict, evidence: bool) {
        self.out_raw(&format!(
            "{} {}: {}",
            self.paint(verdict.outcome),
            crate::text::line(id),
            crate::text::line(&verdict.summary)
        ));
        if !evidence {
            return;
        }
        for d in &verdict.diagnostics {
            let place = match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            self.out(&format!("      {place}{}", crate::text::line(&d.message)));
        }
        if !verdict.metrics.is_empty() {
            let m: Vec<String> = verdict
                .metrics
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            self.out(&format!("      metrics: {}", m.join(" ")));
        }
        if let Some(s) = verdict.score {
            self.out(&format!("      score: {s}"));
        }
        if !verdict.details.is_empty() {
            // Sanitise before splitting: a `\r` becomes a line of its own, indented.
            for line in crate::text::lines(&verdict.details).lines() {
                self.out(&format!("      {line}"));
            }
        }
    }
}

/// A live line per predicate on stderr while it is evaluated (only on a terminal).
pub struct LiveLines {
    multi: Option<indicatif::MultiProgress>,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl LiveLines {
    /// Live lines for `total` predicates, or nothing when not on a terminal.
    pub fn new(printer: &Printer, total: usize) -> Self {
        let multi = (printer.live() && total > 0).then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        });
        Self {
            multi,
            bars: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Remove every remaining line.
    pub fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

impl crate::observe::Progress for LiveLines {
    fn started(&self, id: &str) {
        let Some(m) = &self.multi else { return };
        let bar = m.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .expect("a valid template"),
        );
        bar.set_message(id.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        self.bars
            .lock()
            .expect("bars lock")
            .insert(id.to_owned(), bar);
    }

    fn finished(&self, e: &crate::observe::Evaluation) {
        if let Some(bar) = self.bars.lock().expect("bars lock").remove(&e.id) {
            bar.finish_and_clear();
        }
    }
}
