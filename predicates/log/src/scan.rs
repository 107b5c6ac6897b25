//! Scanning log lines and the verdict from the scan: pure, so every rule is tested
//! natively. Lines arrive one at a time (a log file is streamed, never held whole).

use std::collections::VecDeque;
use std::fmt::Write as _;

use kazi_sdk::prelude::*;
use kazi_sdk::text::truncate;
use regex::Regex;

use crate::config::Spec;
use crate::timestamp;

/// Matching lines kept from the start and from the end of each rule's matches.
pub const SAMPLE: usize = 20;
/// Longest line shown in evidence, in characters.
const LINE_SHOWN: usize = 300;

/// A matching line: its 1-based number in the source and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub line: u64,
    pub text: String,
}

/// The first and last [`SAMPLE`] hits of a rule, and how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    pub count: u64,
    pub first: Vec<Hit>,
    pub last: VecDeque<Hit>,
}

impl Hits {
    fn push(&mut self, line: u64, text: &str) {
        self.count += 1;
        let hit = Hit {
            line,
            text: truncate(text, LINE_SHOWN).into_owned(),
        };
        if self.first.len() < SAMPLE {
            self.first.push(hit);
        } else {
            if self.last.len() == SAMPLE {
                self.last.pop_front();
            }
            self.last.push_back(hit);
        }
    }

    /// The kept hits in order.
    pub fn kept(&self) -> impl Iterator<Item = &Hit> {
        self.first.iter().chain(self.last.iter())
    }

    /// Hits left out between the first and the last ones.
    pub fn omitted(&self) -> u64 {
        self.count - (self.first.len() + self.last.len()) as u64
    }
}

/// What a scan saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Lines considered (after `tail` and `since`).
    pub lines: u64,
    pub matches: Hits,
    pub panics: Hits,
    /// With `since`: lines before any timestamped line, counted as in the window.
    pub untimed: u64,
    /// With `since`: lines left out as older than the window.
    pub too_old: u64,
    /// With `since`: whether any line carried a timestamp.
    pub timestamped: bool,
}

/// Feeds lines through the rules of a spec.
pub struct Scanner<'a> {
    matcher: Option<&'a Regex>,
    panic: Option<&'a Regex>,
    /// Milliseconds since the epoch before which lines are too old.
    cutoff: Option<i64>,
    /// The timestamp of the entry the current line belongs to (a continuation line
    /// such as a stack frame inherits the time of the line it continues).
    current: Option<i64>,
    scan: Scan,
}

impl<'a> Scanner<'a> {
    /// A scanner for `spec`; `now_ms` is the current time in milliseconds since the epoch.
    pub fn new(spec: &'a Spec, now_ms: i64) -> Scanner<'a> {
        Scanner {
            matcher: spec.matcher.as_ref().map(|(re, _)| re),
            panic: spec.panic.as_ref(),
            cutoff: spec
                .since
                .map(|d| now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
            current: None,
            scan: Scan::default(),
        }
    }

    /// Look at one line (without its line break) with its 1-based number.
    pub fn push(&mut self, number: u64, line: &str) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(cutoff) = self.cutoff {
            if let Some(t) = timestamp::leading(line) {
                self.current = Some(t);
                self.scan.timestamped = true;
            }
            match self.current {
                Some(t) if t < cutoff => {
                    self.scan.too_old += 1;
                    return;
                }
                Some(_) => {}
                None => self.scan.untimed += 1,
            }
        }
        self.scan.lines += 1;
        if let Some(re) = self.panic
            && re.is_match(line)
        {
            self.scan.panics.push(number, line);
        }
        if let Some(re) = self.matcher
            && re.is_match(line)
        {
            self.scan.matches.push(number, line);
        }
    }

    /// The scan so far.
    pub fn finish(self) -> Scan {
        self.scan
    }
}

/// Scan text held in memory (a program's output), honouring `tail`.
pub fn scan_text(spec: &Spec, text: &str, now_ms: i64) -> Scan {
    let lines: Vec<&str> = text.lines().collect();
    let skip = match spec.tail {
        Some(n) => lines
            .len()
            .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX)),
        None => 0,
    };
    let mut scanner = Scanner::new(spec, now_ms);
    for (i, line) in lines.iter().enumerate().skip(skip) {
        scanner.push(i as u64 + 1, line);
    }
    scanner.finish()
}

fn lines_phrase(n: u64, verb_one: &str, verb_many: &str) -> String {
    match n {
        0 => format!("no line {verb_one}"),
        1 => format!("1 line {verb_one}"),
        n => format!("{n} lines {verb_many}"),
    }
}

/// How the source reads in a summary: a path, or a command line.
pub struct SourceLabel {
    /// `logs/app.log`, or ``the output of `docker logs app` ``.
    pub name: String,
    /// The workspace file, for diagnostics (none for a program's output).
    pub file: Option<String>,
}

/// The verdict from a scan. `notes` are added to the details (an exit code, …).
pub fn verdict(spec: &Spec, source: &SourceLabel, scan: &Scan, notes: &[String]) -> Verdict {
    let mut parts = Vec::new();
    let mut failed = false;
    if let Some(re) = &spec.panic {
        let n = scan.panics.count;
        failed |= n > 0;
        parts.push(format!(
            "{} panic /{}/",
            lines_phrase(n, "matches", "match"),
            truncate(re.as_str(), 60)
        ));
    }
    if let Some((re, max)) = &spec.matcher {
        let n = scan.matches.count;
        failed |= n > *max;
        parts.push(format!(
            "{} /{}/ (max {max})",
            lines_phrase(n, "matches", "match"),
            truncate(re.as_str(), 60)
        ));
    }
    let lines = format!(
        "{} {}",
        scan.lines,
        if scan.lines == 1 { "line" } else { "lines" }
    );
    let mut window = Vec::new();
    if let Some(n) = spec.tail {
        window.push(format!("tail {n}"));
    }
    if let Some(d) = spec.since {
        window.push(format!("since {}", humantime::format_duration(d)));
    }
    let scope = std::iter::once(lines.clone())
        .chain(window.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!("{} in {} ({scope})", parts.join("; "), source.name);

    let mut details = String::new();
    let window = if window.is_empty() {
        String::new()
    } else {
        format!(" ({})", window.join(", "))
    };
    let _ = writeln!(details, "{}: scanned {lines}{window}", source.name);
    if spec.since.is_some() {
        if !scan.timestamped && scan.lines > 0 {
            let _ = writeln!(
                details,
                "note: no line carries a timestamp, so `since` had no effect: every line was counted"
            );
        } else if scan.untimed > 0 {
            let _ = writeln!(
                details,
                "note: {} before the first timestamped line {} no timestamp and {} counted",
                if scan.untimed == 1 {
                    "1 line".to_owned()
                } else {
                    format!("{} lines", scan.untimed)
                },
                if scan.untimed == 1 {
                    "carries"
                } else {
                    "carry"
                },
                if scan.untimed == 1 { "was" } else { "were" },
            );
        }
        if scan.too_old > 0 {
            let _ = writeln!(details, "{} older lines left out", scan.too_old);
        }
    }
    for note in notes {
        let _ = writeln!(details, "note: {note}");
    }
    let mut verdict_diags: Vec<(u64, String)> = Vec::new();
    let mut sections = Vec::new();
    if let Some(re) = &spec.panic {
        sections.push((
            "panic",
            re.as_str(),
            &scan.panics,
            scan.panics.count > 0,
            None,
        ));
    }
    if let Some((re, max)) = &spec.matcher {
        sections.push((
            "match",
            re.as_str(),
            &scan.matches,
            scan.matches.count > *max,
            Some(*max),
        ));
    }
    for (key, re, hits, failing, max) in sections {
        if hits.count == 0 {
            continue;
        }
        let limit = max.map_or(String::new(), |m| format!(" (max {m})"));
        let _ = writeln!(
            details,
            "\n{key} /{}/: {}{limit}",
            truncate(re, 60),
            lines_phrase(hits.count, "matches", "match")
        );
        let mut shown_gap = false;
        for (i, hit) in hits.kept().enumerate() {
            if i == hits.first.len() && hits.omitted() > 0 && !shown_gap {
                let _ = writeln!(details, "  [… {} more …]", hits.omitted());
                shown_gap = true;
            }
            let _ = writeln!(details, "  {:>6} | {}", hit.line, hit.text);
            if failing {
                verdict_diags.push((
                    hit.line,
                    format!("{key} /{}/: {}", truncate(re, 60), hit.text),
                ));
            }
        }
    }
    let mut v = if failed {
        Verdict::fail(summary)
    } else {
        Verdict::pass(summary)
    }
    .with_details(details);
    if let Some(file) = &source.file {
        for (line, message) in verdict_diags {
            v = v.with_diagnostic(Some(file), u32::try_from(line).ok(), message);
        }
    }
    if spec.matcher.is_some() {
        v = v.with_metric("matches", scan.matches.count as f64);
    }
    if spec.panic.is_some() {
        v = v.with_metric("panics", scan.panics.count as f64);
    }
    v.with_metric("lines", scan.lines as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T10:00:00Z
    const NOW: i64 = 1_795_514_400_000;

    fn spec(v: Value) -> Spec {
        Spec::parse(&Config::new(v)).unwrap()
    }

    fn file(name: &str) -> SourceLabel {
        SourceLabel {
            name: name.into(),
            file: Some(name.into()),
        }
    }

    fn metric(v: &Verdict, name: &str) -> Option<f64> {
        v.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn counts_matching_lines_against_max() {
        let s = spec(json!({"path": "logs/app.log", "match": " 5\\d\\d "}));
        let log = fixture("access.log");
        let scan = scan_text(&s, &log, NOW);
        assert_eq!(scan.matches.count, 3);
        let v = verdict(&s, &file("logs/app.log"), &scan, &[]);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "3 lines match / 5\\d\\d / (max 0) in logs/app.log (12 lines)"
        );
        assert_eq!(metric(&v, "matches"), Some(3.0));
        assert_eq!(metric(&v, "lines"), Some(12.0));
        assert_eq!(v.diagnostics.len(), 3);
        assert_eq!(v.diagnostics[0].file.as_deref(), Some("logs/app.log"));
        assert_eq!(v.diagnostics[0].line, Some(4));
        assert!(
            v.details
                .contains("match / 5\\d\\d /: 3 lines match (max 0)\n       4 | "),
            "{}",
            v.details
        );

        let s = spec(json!({"path": "logs/app.log", "match": " 5\\d\\d ", "max": 3}));
        let v = verdict(&s, &file("logs/app.log"), &scan_text(&s, &log, NOW), &[]);
        assert_eq!(v.outcome, Outcome::Pass);
        assert!(v.diagnostics.is_empty());
    }

    #[test]
    fn panic_fails_on_any_line() {
        let s = spec(json!({"path": "app.log", "panic": "panicked at|FATAL"}));
        let v = verdict(
            &s,
            &file("app.log"),
            &scan_text(&s, &fixture("app.log"), NOW),
            &[],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "1 line matches panic /panicked at|FATAL/ in app.log (10 lines)"
        );
        assert_eq!(metric(&v, "panics"), Some(1.0));
        assert_eq!(metric(&v, "matches"), None);
        assert_eq!(v.diagnostics[0].line, Some(3));

        let clean = "2026-11-24T09:59:00Z INFO ok\n";
        let v = verdict(&s, &file("app.log"), &scan_text(&s, clean, NOW), &[]);
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "no line matches panic /panicked at|FATAL/ in app.log (1 line)"
        );
    }

    #[test]
    fn both_rules() {
        let s = spec(json!({"path": "app.log", "panic": "panicked", "match": "ERROR", "max": 5}));
        let v = verdict(
            &s,
            &file("app.log"),
            &scan_text(&s, &fixture("app.log"), NOW),
            &[],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "1 line matches panic /panicked/; 2 lines match /ERROR/ (max 5) in app.log (10 lines)"
        );
        // Only the failing rule's lines become diagnostics.
        assert_eq!(v.diagnostics.len(), 1);
    }

    #[test]
    fn since_keeps_recent_entries_and_their_continuation_lines() {
        // app.log: a stale panic at 09:00 (its lines carry no timestamp of their own),
        // a restart at 09:55 and recent lines after it.
        let s = spec(json!({"path": "app.log", "panic": "panicked", "since": "10m"}));
        let scan = scan_text(&s, &fixture("app.log"), NOW);
        assert_eq!(scan.panics.count, 0, "{scan:?}");
        assert_eq!(scan.too_old, 5);
        assert_eq!(scan.lines, 5);
        assert_eq!(scan.untimed, 0);

        let s = spec(json!({"path": "app.log", "panic": "panicked", "since": "2h"}));
        let scan = scan_text(&s, &fixture("app.log"), NOW);
        assert_eq!(scan.panics.count, 1);
        assert_eq!(scan.too_old, 0);
    }

    #[test]
    fn untimed_lines_are_counted_and_said() {
        let s = spec(json!({"path": "a.log", "match": "ERROR", "since": "10m"}));
        let text =
            "ERROR boot\nmore\n2026-11-24T08:00:00Z ERROR old\n2026-11-24T09:58:00Z ERROR new\n";
        let scan = scan_text(&s, text, NOW);
        assert_eq!((scan.untimed, scan.too_old, scan.matches.count), (2, 1, 2));
        let v = verdict(&s, &file("a.log"), &scan, &[]);
        assert!(v.details.contains("note: 2 lines before the first timestamped line carry no timestamp and were counted"), "{}", v.details);
        assert!(v.details.contains("1 older lines left out"));
        assert_eq!(
            v.summary,
            "2 lines match /ERROR/ (max 0) in a.log (3 lines, since 10m)"
        );

        let scan = scan_text(&s, "ERROR a\nERROR b\n", NOW);
        let v = verdict(&s, &file("a.log"), &scan, &[]);
        assert!(
            v.details
                .contains("no line carries a timestamp, so `since` had no effect")
        );
        assert_eq!(scan.matches.count, 2);
    }

    #[test]
    fn tail_keeps_the_last_lines_with_their_numbers() {
        let s = spec(json!({"path": "a.log", "match": "ERROR", "tail": 2}));
        let scan = scan_text(&s, "ERROR 1\nok\nERROR 3\n", NOW);
        assert_eq!(scan.lines, 2);
        assert_eq!(scan.matches.count, 1);
        assert_eq!(scan.matches.first[0].line, 3);
        let v = verdict(&s, &file("a.log"), &scan, &[]);
        assert_eq!(
            v.summary,
            "1 line matches /ERROR/ (max 0) in a.log (2 lines, tail 2)"
        );
    }

    #[test]
    fn evidence_is_bounded_to_first_and_last_hits() {
        let s = spec(json!({"path": "a.log", "match": "ERROR"}));
        let text: String = (1..=1000).map(|i| format!("ERROR number {i}\n")).collect();
        let scan = scan_text(&s, &text, NOW);
        assert_eq!(scan.matches.count, 1000);
        assert_eq!(scan.matches.omitted(), 960);
        let v = verdict(&s, &file("a.log"), &scan, &[]);
        assert!(
            v.details.contains(
                "    20 | ERROR number 20\n  [… 960 more …]\n     981 | ERROR number 981\n"
            ),
            "{}",
            v.details
        );
        assert!(v.details.ends_with("  1000 | ERROR number 1000\n"));
        assert_eq!(v.diagnostics.len(), 40);
        let long = format!("ERROR {}\n", "x".repeat(10_000));
        let scan = scan_text(&s, &long, NOW);
        assert!(scan.matches.first[0].text.chars().count() <= LINE_SHOWN);
    }

    #[test]
    fn program_output_has_no_diagnostics() {
        let s = spec(json!({"run": ["docker", "logs", "app"], "match": "ERROR"}));
        let label = SourceLabel {
            name: "the output of `docker logs app`".into(),
            file: None,
        };
        let v = verdict(
            &s,
            &label,
            &scan_text(&s, "ERROR x\r\n", NOW),
            &["exit 0".into()],
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.diagnostics.is_empty());
        assert_eq!(
            v.summary,
            "1 line matches /ERROR/ (max 0) in the output of `docker logs app` (1 line)"
        );
        assert!(v.details.contains("note: exit 0\n"));
    }
}
