//! Flake policy: a `fail` or `error` is re-run before it is believed; a pass among
//! the re-runs marks the predicate flaky. A quarantined predicate counts as
//! `unknown` until it passes [`REHAB_PASSES`] observations in a row.

use crate::run::State;
use crate::verdict::Outcome;

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
