//! Flake policy: a *new* `fail` or `error` (first seen, or its evidence changed since
//! the last observation) is re-run before it is believed; a failure identical to the
//! previous observation's is believed at once, so a persisting failure costs one run
//! of the check, not three. A pass among the re-runs marks the predicate flaky. A
//! quarantined predicate counts as `unknown` until it passes [`REHAB_PASSES`]
//! observations in a row.

use crate::record::State;
use crate::verdict::{Outcome, Verdict};

/// Extra evaluations of a failing predicate before the failure is believed.
pub const RERUNS: u32 = 2;
/// Passing observations in a row that lift a quarantine.
pub const REHAB_PASSES: u32 = 3;

/// The believed outcome of a first evaluation and its re-runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    Stable(Outcome),
    Flaky,
}

/// Classify: a pass first is a pass; a failure confirmed by every re-run stands; a
/// pass among the re-runs is a flake. Mixed fail/error re-runs keep the first outcome.
pub fn classify(first: Outcome, reruns: &[Outcome]) -> Classified {
    if first == Outcome::Pass {
        return Classified::Stable(Outcome::Pass);
    }
    if reruns.contains(&Outcome::Pass) {
        Classified::Flaky
    } else {
        Classified::Stable(first)
    }
}

/// A fingerprint of a failure's evidence, blind to what changes from run to run
/// without meaning anything (durations such as `0.53s` or `12ms`, addresses
/// such as `0x7ffd…`): two failures with the same fingerprint are the same failure.
pub fn fingerprint(v: &Verdict) -> String {
    let mut text = String::new();
    text.push_str(v.outcome.as_str());
    text.push('\n');
    text.push_str(&v.summary);
    for d in &v.diagnostics {
        text.push('\n');
        text.push_str(d.file.as_deref().unwrap_or(""));
        text.push(':');
        if let Some(l) = d.line {
            text.push_str(&l.to_string());
        }
        text.push(':');
        text.push_str(&d.message);
    }
    crate::sha256_hex(normalise(&text).as_bytes())
}

/// Replace durations and hex addresses with placeholders.
fn normalise(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if word_start && c == b'0' && b.get(i + 1) == Some(&b'x') {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j > i + 2 {
                out.push_str("0x_");
                i = j;
                continue;
            }
        }
        if word_start && c.is_ascii_digit() {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let mut k = j;
            while k < b.len() && b[k] == b' ' {
                k += 1;
            }
            let unit_len: usize = text[k..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphabetic() || *ch == 'µ')
                .map(char::len_utf8)
                .sum();
            let unit_end = k + unit_len;
            let unit = &text[k..unit_end];
            if matches!(
                unit,
                "s" | "ms"
                    | "µs"
                    | "us"
                    | "ns"
                    | "sec"
                    | "secs"
                    | "second"
                    | "seconds"
                    | "m"
                    | "min"
                    | "h"
            ) {
                out.push_str("<t>");
                i = unit_end;
                continue;
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        // Copy one whole UTF-8 character.
        let len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + len]);
        i += len;
    }
    out
}

/// Whether a first evaluation must be re-run before it is believed: it failed, and
/// its fingerprint differs from the failure this predicate showed last time. A
/// focused failure (only the tests that failed last time were run, and one failed
/// again) after a failure is believed at once: it is the same failure persisting, and
/// its evidence differs from the full run's only because less ran.
pub fn needs_rerun(first: &Verdict, last_failure: Option<&str>) -> bool {
    if first.outcome == Outcome::Pass {
        return false;
    }
    let focused = first
        .metrics
        .get(crate::machine::FOCUSED_METRIC)
        .is_some_and(|v| *v > 0.0);
    if focused && last_failure.is_some() {
        return false;
    }
    last_failure != Some(fingerprint(first).as_str())
}

/// What quarantine bookkeeping says about one predicate this observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quarantine {
    /// Not quarantined: the state is the verdict's.
    Clear(State),
    /// Newly quarantined this observation.
    Entered,
    /// Still quarantined; `passes` in a row so far.
    Held { passes: u32 },
    /// Passed enough in a row: quarantine lifted, state pass.
    Lifted,
}

/// Advance the quarantine of one predicate. `held` is the pass streak so far when it
/// is quarantined (`None` when it is not).
pub fn quarantine_step(held: Option<u32>, classified: Classified) -> Quarantine {
    match (held, classified) {
        (None, Classified::Flaky) => Quarantine::Entered,
        (None, Classified::Stable(o)) => Quarantine::Clear(state_of(o)),
        (Some(_), Classified::Flaky) => Quarantine::Held { passes: 0 },
        (Some(n), Classified::Stable(Outcome::Pass)) if n + 1 >= REHAB_PASSES => Quarantine::Lifted,
        (Some(n), Classified::Stable(Outcome::Pass)) => Quarantine::Held { passes: n + 1 },
        (Some(_), Classified::Stable(_)) => Quarantine::Held { passes: 0 },
    }
}

/// The state of an outcome outside quarantine.
pub fn state_of(o: Outcome) -> State {
    match o {
        Outcome::Pass => State::Pass,
        Outcome::Fail => State::Fail,
        Outcome::Error => State::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    #[test]
    fn classify_believes_confirmed_failures_only() {
        assert_eq!(classify(Pass, &[]), Classified::Stable(Pass));
        assert_eq!(classify(Fail, &[Fail, Fail]), Classified::Stable(Fail));
        assert_eq!(classify(Error, &[Error, Error]), Classified::Stable(Error));
        assert_eq!(classify(Fail, &[Fail, Pass]), Classified::Flaky);
        assert_eq!(classify(Error, &[Pass]), Classified::Flaky);
        assert_eq!(classify(Fail, &[Error, Fail]), Classified::Stable(Fail));
    }

    fn failing(summary: &str) -> Verdict {
        let mut v = Verdict::error(summary);
        v.outcome = Fail;
        v
    }

    #[test]
    fn fingerprints_ignore_durations_and_addresses_only() {
        let a = failing("1 failed, 276 passed in 3.21s (thread 0x7ffd12ab)");
        let b = failing("1 failed, 276 passed in 12.5s (thread 0x55aa00ff)");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = failing("2 failed, 275 passed in 3.21s (thread 0x7ffd12ab)");
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut d = a.clone();
        d.outcome = Error;
        assert_ne!(fingerprint(&a), fingerprint(&d));
        assert_eq!(
            normalise("took 450 ms, then 2 µs; x1s stays"),
            "took <t>, then <t>; x1s stays"
        );
    }

    #[test]
    fn only_new_failures_are_re_run() {
        let a = failing("1 failed in 1s");
        assert!(needs_rerun(&a, None));
        assert!(!needs_rerun(
            &a,
            Some(&fingerprint(&failing("1 failed in 9s")))
        ));
        assert!(needs_rerun(
            &a,
            Some(&fingerprint(&failing("2 failed in 1s")))
        ));
        let mut pass = a.clone();
        pass.outcome = Pass;
        assert!(!needs_rerun(&pass, None));
        // A focused failure after a failure persists; a first focused one is new.
        let mut focused = failing("the test that failed last time still fails");
        focused
            .metrics
            .insert(crate::machine::FOCUSED_METRIC.into(), 1.0);
        let full = fingerprint(&failing("1 failed, 100 passed in 10s"));
        assert!(!needs_rerun(&focused, Some(&full)));
        assert!(needs_rerun(&focused, None));
    }

    #[test]
    fn quarantine_enters_holds_and_lifts_after_three_passes() {
        assert_eq!(
            quarantine_step(None, Classified::Flaky),
            Quarantine::Entered
        );
        assert_eq!(
            quarantine_step(None, Classified::Stable(Fail)),
            Quarantine::Clear(State::Fail)
        );
        assert_eq!(
            quarantine_step(Some(0), Classified::Stable(Pass)),
            Quarantine::Held { passes: 1 }
        );
        assert_eq!(
            quarantine_step(Some(1), Classified::Stable(Pass)),
            Quarantine::Held { passes: 2 }
        );
        assert_eq!(
            quarantine_step(Some(2), Classified::Stable(Pass)),
            Quarantine::Lifted
        );
        assert_eq!(
            quarantine_step(Some(2), Classified::Flaky),
            Quarantine::Held { passes: 0 }
        );
        assert_eq!(
            quarantine_step(Some(2), Classified::Stable(Fail)),
            Quarantine::Held { passes: 0 }
        );
    }
}
