//! kazi's own verdict types: what a predicate evaluation produced. Generated WIT
//! types are converted into these at the sandbox edge, so nothing else imports
//! bindings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome of one evaluation. The host adds `unknown` for predicates that were
/// not evaluated (the loop's concern, not the sandbox's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

impl Outcome {
    /// Lower-case name, as in `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding tied to a file and line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: String,
}

/// The result of one evaluation with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    #[serde(rename = "verdict")]
    pub outcome: Outcome,
    pub summary: String,
    pub details: String,
    pub diagnostics: Vec<Diagnostic>,
    pub score: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
}

/// Longest summary kept, in bytes.
pub const MAX_SUMMARY: usize = 1024;
/// Longest details kept, in bytes: head and tail of this much together.
pub const MAX_DETAILS: usize = 16 * 1024;
/// Most diagnostics kept.
pub const MAX_DIAGNOSTICS: usize = 200;

impl Verdict {
    /// An `error` verdict with this summary and no other evidence.
    pub fn error(summary: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Error,
            summary: summary.into(),
            details: String::new(),
            diagnostics: Vec::new(),
            score: None,
            metrics: BTreeMap::new(),
        }
    }

    /// The same error verdict with details attached.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Bound the evidence a guest returned: one-line summary, head + tail of details,
    /// a capped number of diagnostics, finite numbers only.
    pub fn bounded(mut self) -> Self {
        let first_line = self.summary.lines().next().unwrap_or("").to_owned();
        self.summary = truncate_middle(&first_line, MAX_SUMMARY);
        self.details = truncate_middle(&self.details, MAX_DETAILS);
        self.diagnostics.truncate(MAX_DIAGNOSTICS);
        for d in &mut self.diagnostics {
            d.message = truncate_middle(&d.message, MAX_SUMMARY);
        }
        self.score = self.score.filter(|s| s.is_finite());
        self.metrics.retain(|_, v| v.is_finite());
        self
    }
}

/// Keep the head and tail of `text` so that the result is at most about `max` bytes,
/// with a marker saying how much was left out. Cuts on character boundaries.
pub fn truncate_middle(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let half = max / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let omitted = tail_start - head_end;
    format!(
        "{}\n… [{omitted} bytes omitted] …\n{}",
        &text[..head_end],
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_middle_keeps_short_text() {
        assert_eq!(truncate_middle("abc", 10), "abc");
    }

    #[test]
    fn truncate_middle_keeps_head_and_tail() {
        let text = format!("{}{}{}", "h".repeat(100), "m".repeat(1000), "t".repeat(100));
        let out = truncate_middle(&text, 200);
        assert!(out.starts_with(&"h".repeat(100)));
        assert!(out.ends_with(&"t".repeat(100)));
        assert!(out.contains("[1000 bytes omitted]"));
    }

    #[test]
    fn truncate_middle_respects_char_boundaries() {
        let text = "é".repeat(100);
        let out = truncate_middle(&text, 11);
        assert!(out.contains("omitted"));
    }

    #[test]
    fn bounded_drops_non_finite_numbers_and_extra_lines() {
        let mut metrics = BTreeMap::new();
        metrics.insert("a".to_owned(), f64::NAN);
        metrics.insert("b".to_owned(), 1.0);
        let v = Verdict {
            outcome: Outcome::Pass,
            summary: "one\ntwo".into(),
            details: String::new(),
            diagnostics: vec![],
            score: Some(f64::INFINITY),
            metrics,
        }
        .bounded();
        assert_eq!(v.summary, "one");
        assert_eq!(v.score, None);
        assert_eq!(v.metrics.len(), 1);
    }
}
