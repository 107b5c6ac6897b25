//! Pure rules about progress between observations: the stuck verdict, regressions,
//! and ratchet guards.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::plan::{Ratchet, RatchetDirection};
use crate::record::{State, Vector};

/// Observations in a row with the same failing set (and no better score) that make a
/// run stuck.
pub const STUCK_AFTER: u32 = 3;

/// The running record of failing sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Streak {
    pub failing: BTreeSet<String>,
    pub count: u32,
    /// Best score seen per predicate.
    pub best_scores: BTreeMap<String, f64>,
}

impl Streak {
    /// Advance with this observation's failing set and scores; returns whether the run
    /// is now stuck. A score better than any seen for a failing predicate resets the
    /// count: the agent is making measurable progress.
    pub fn observe(&mut self, failing: &BTreeSet<String>, scores: &BTreeMap<String, f64>) -> bool {
        let mut improved = false;
        for (id, s) in scores {
            match self.best_scores.get(id) {
                Some(best) if s <= best => {}
                Some(_) => {
                    improved |= failing.contains(id);
                    self.best_scores.insert(id.clone(), *s);
                }
                None => {
                    self.best_scores.insert(id.clone(), *s);
                }
            }
        }
        if failing.is_empty() {
            self.failing.clear();
            self.count = 0;
            return false;
        }
        if *failing == self.failing && !improved {
            self.count += 1;
        } else {
            self.failing = failing.clone();
            self.count = 1;
        }
        self.count >= STUCK_AFTER
    }
}

/// Predicates that passed before and do not now: `(id, new state)`.
pub fn regressions(before: &Vector, now: &Vector) -> Vec<(String, State)> {
    now.iter()
        .filter(|(id, s)| {
            matches!(s, State::Fail | State::Error) && before.get(*id) == Some(&State::Pass)
        })
        .map(|(id, s)| (id.clone(), *s))
        .collect()
}

/// What a ratchet says about a metric value.
#[derive(Debug, Clone, PartialEq)]
pub enum RatchetCheck {
    /// Holds; the new best to remember.
    Holds { best: f64 },
    /// The value went the wrong way.
    Broken { value: f64, best: f64 },
    /// The predicate did not report the metric.
    Missing,
}

/// Check `value` against the best seen (or the ratchet's baseline).
pub fn ratchet(r: &Ratchet, best: Option<f64>, value: Option<f64>) -> RatchetCheck {
    let Some(value) = value else {
        return RatchetCheck::Missing;
    };
    let best = best.or(r.baseline);
    match (r.direction, best) {
        (_, None) => RatchetCheck::Holds { best: value },
        (RatchetDirection::NoDecrease, Some(b)) if value < b => {
            RatchetCheck::Broken { value, best: b }
        }
        (RatchetDirection::NoIncrease, Some(b)) if value > b => {
            RatchetCheck::Broken { value, best: b }
        }
        (RatchetDirection::NoDecrease, Some(b)) => RatchetCheck::Holds { best: b.max(value) },
        (RatchetDirection::NoIncrease, Some(b)) => RatchetCheck::Holds { best: b.min(value) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_same_failing_set_three_times_is_stuck() {
        let mut s = Streak::default();
        let none = BTreeMap::new();
        assert!(!s.observe(&set(&["a"]), &none));
        assert!(!s.observe(&set(&["a"]), &none));
        assert!(s.observe(&set(&["a"]), &none));
    }

    #[test]
    fn a_changing_set_or_an_empty_set_resets() {
        let mut s = Streak::default();
        let none = BTreeMap::new();
        s.observe(&set(&["a"]), &none);
        s.observe(&set(&["a"]), &none);
        assert!(!s.observe(&set(&["a", "b"]), &none));
        assert_eq!(s.count, 1);
        s.observe(&set(&["a", "b"]), &none);
        assert!(!s.observe(&set(&[]), &none));
        assert_eq!(s.count, 0);
    }

    #[test]
    fn an_improving_score_of_a_failing_predicate_is_progress() {
        let mut s = Streak::default();
        let score = |v: f64| BTreeMap::from([("a".to_string(), v)]);
        s.observe(&set(&["a"]), &score(0.1));
        s.observe(&set(&["a"]), &score(0.2));
        s.observe(&set(&["a"]), &score(0.3));
        assert!(!s.observe(&set(&["a"]), &score(0.4)));
        // No more improvement: three more of the same and it is stuck.
        assert!(!s.observe(&set(&["a"]), &score(0.4)));
        assert!(s.observe(&set(&["a"]), &score(0.4)));
    }

    #[test]
    fn regressions_are_pass_to_fail_or_error_only() {
        let before: Vector = [
            ("a", State::Pass),
            ("b", State::Fail),
            ("c", State::Pass),
            ("d", State::Pass),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let now: Vector = [
            ("a", State::Fail),
            ("b", State::Fail),
            ("c", State::Error),
            ("d", State::Unknown),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            regressions(&before, &now),
            vec![("a".into(), State::Fail), ("c".into(), State::Error)]
        );
    }

    #[test]
    fn ratchets_hold_break_and_remember_the_best() {
        let up = Ratchet {
            metric: "tests_passed".into(),
            direction: RatchetDirection::NoDecrease,
            baseline: None,
        };
        assert_eq!(
            ratchet(&up, None, Some(5.0)),
            RatchetCheck::Holds { best: 5.0 }
        );
        assert_eq!(
            ratchet(&up, Some(5.0), Some(7.0)),
            RatchetCheck::Holds { best: 7.0 }
        );
        assert_eq!(
            ratchet(&up, Some(7.0), Some(6.0)),
            RatchetCheck::Broken {
                value: 6.0,
                best: 7.0
            }
        );
        assert_eq!(ratchet(&up, Some(7.0), None), RatchetCheck::Missing);
        let down = Ratchet {
            metric: "warnings".into(),
            direction: RatchetDirection::NoIncrease,
            baseline: Some(3.0),
        };
        assert_eq!(
            ratchet(&down, None, Some(4.0)),
            RatchetCheck::Broken {
                value: 4.0,
                best: 3.0
            }
        );
        assert_eq!(
            ratchet(&down, None, Some(2.0)),
            RatchetCheck::Holds { best: 2.0 }
        );
    }
}
