//! The decision after an observation: a pure function of the predicate states, the
//! budget and the loop's memory.

use crate::record::{Cause, Decision, State};

/// Waits for quarantined or live predicates before the run is called stuck.
pub const MAX_WAITS: u32 = 10;

/// One predicate as the decision sees it.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub id: &'a str,
    pub state: State,
    pub summary: &'a str,
    pub live: bool,
    pub held_out: bool,
    /// The error is a tool that is not installed (the `command` predicate says so).
    pub missing_tool: bool,
}

/// Everything the decision depends on.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub predicates: Vec<Fact<'a>>,
    /// This is the run's first observation.
    pub first: bool,
    /// Why the budget is exhausted, if it is.
    pub budget: Option<String>,
    /// The failing set has not changed for too long.
    pub stuck: bool,
    pub has_deploy: bool,
    pub deployed: bool,
    /// Consecutive `wait` decisions so far.
    pub waits: u32,
}

/// Decide what to do next.
pub fn decide(f: &Facts<'_>) -> Decision {
    if f.predicates.iter().all(|p| p.state == State::Pass) {
        return Decision::Converged;
    }
    let code: Vec<&Fact<'_>> = f.predicates.iter().filter(|p| !p.live).collect();
    if f.first
        && let Some(p) = code
            .iter()
            .find(|p| p.state == State::Error && p.missing_tool)
    {
        return Decision::Stuck {
            cause: Cause::MissingTool,
            reason: format!(
                "predicate \"{}\" needs a tool that is not installed, and no agent edit can fix that: {}; hint: install it (or fix the command), then run again",
                p.id, p.summary
            ),
        };
    }
    if f.first
        && let Some(p) = code.iter().find(|p| p.state == State::Error)
    {
        return Decision::Stuck {
            cause: Cause::PredicateError,
            reason: format!(
                "predicate \"{}\" cannot be evaluated, and no agent can fix that: {}",
                p.id, p.summary
            ),
        };
    }
    if let Some(reason) = &f.budget {
        return Decision::OverBudget {
            reason: reason.clone(),
        };
    }
    let failing: Vec<&&Fact<'_>> = code
        .iter()
        .filter(|p| matches!(p.state, State::Fail | State::Error))
        .collect();
    if f.stuck {
        let ids: Vec<&str> = failing.iter().map(|p| p.id).collect();
        return Decision::Stuck {
            cause: Cause::NoProgress,
            reason: format!(
                "the same predicates failed {} observations in a row with no better score: {}",
                super::progress::STUCK_AFTER,
                ids.join(", ")
            ),
        };
    }
    let visible: Vec<String> = failing
        .iter()
        .filter(|p| !p.held_out)
        .map(|p| p.id.to_owned())
        .collect();
    if !visible.is_empty() {
        return Decision::Dispatch {
            predicates: visible,
        };
    }
    if !failing.is_empty() {
        let ids: Vec<&str> = failing.iter().map(|p| p.id).collect();
        return Decision::Stuck {
            cause: Cause::HeldOut,
            reason: format!(
                "only held-out predicates fail ({}), and the agent is never told about them",
                ids.join(", ")
            ),
        };
    }
    let unknown: Vec<&str> = code
        .iter()
        .filter(|p| p.state == State::Unknown)
        .map(|p| p.id)
        .collect();
    if !unknown.is_empty() {
        if f.waits >= MAX_WAITS {
            return Decision::Stuck {
                cause: Cause::Flaky,
                reason: format!(
                    "quarantined flaky predicates never passed 3 times in a row: {}",
                    unknown.join(", ")
                ),
            };
        }
        return Decision::Wait {
            reason: format!(
                "waiting for quarantined predicates to pass 3 observations in a row: {}",
                unknown.join(", ")
            ),
        };
    }
    let live: Vec<&str> = f
        .predicates
        .iter()
        .filter(|p| p.live && p.state != State::Pass)
        .map(|p| p.id)
        .collect();
    if f.has_deploy && !f.deployed {
        return Decision::Deploy;
    }
    if f.waits >= MAX_WAITS {
        return Decision::Stuck {
            cause: Cause::LiveNotReady,
            reason: format!(
                "live predicates still fail after the code passed and {} waits: {}",
                f.waits,
                live.join(", ")
            ),
        };
    }
    Decision::Wait {
        reason: format!(
            "code predicates pass; polling live predicates: {}",
            live.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &'static str, state: State) -> Fact<'static> {
        Fact {
            id,
            state,
            summary: "s",
            live: false,
            held_out: false,
            missing_tool: false,
        }
    }

    fn facts(predicates: Vec<Fact<'static>>) -> Facts<'static> {
        Facts {
            predicates,
            first: false,
            budget: None,
            stuck: false,
            has_deploy: false,
            deployed: false,
            waits: 0,
        }
    }

    #[test]
    fn all_pass_converges_even_over_budget() {
        let mut f = facts(vec![fact("a", State::Pass)]);
        f.budget = Some("x".into());
        assert_eq!(decide(&f), Decision::Converged);
    }

    #[test]
    fn unknown_never_counts_as_pass() {
        let f = facts(vec![fact("a", State::Pass), fact("b", State::Unknown)]);
        assert!(matches!(decide(&f), Decision::Wait { .. }));
    }

    #[test]
    fn failing_code_is_dispatched_without_held_out_ones() {
        let mut held = fact("h", State::Fail);
        held.held_out = true;
        let f = facts(vec![
            fact("a", State::Fail),
            held,
            fact("c", State::Error),
            fact("d", State::Pass),
        ]);
        assert_eq!(
            decide(&f),
            Decision::Dispatch {
                predicates: vec!["a".into(), "c".into()]
            }
        );
    }

    #[test]
    fn an_error_at_the_first_observation_is_permanent() {
        let mut f = facts(vec![fact("a", State::Fail), fact("b", State::Error)]);
        f.first = true;
        assert!(
            matches!(decide(&f), Decision::Stuck { cause, .. } if cause == Cause::PredicateError)
        );
        f.first = false;
        assert!(matches!(decide(&f), Decision::Dispatch { .. }));
    }

    #[test]
    fn a_missing_tool_at_the_first_observation_is_its_own_cause() {
        let mut tool = fact("a", State::Error);
        tool.missing_tool = true;
        let mut f = facts(vec![fact("b", State::Error), tool]);
        f.first = true;
        assert!(matches!(decide(&f), Decision::Stuck { cause, .. } if cause == Cause::MissingTool));
    }

    #[test]
    fn budget_then_stuck_then_dispatch() {
        let mut f = facts(vec![fact("a", State::Fail)]);
        f.stuck = true;
        f.budget = Some("reached max_iterations (3)".into());
        assert!(matches!(decide(&f), Decision::OverBudget { .. }));
        f.budget = None;
        assert!(matches!(decide(&f), Decision::Stuck { cause, .. } if cause == Cause::NoProgress));
    }

    #[test]
    fn only_held_out_failing_is_stuck() {
        let mut held = fact("h", State::Fail);
        held.held_out = true;
        assert!(
            matches!(decide(&facts(vec![held])), Decision::Stuck { cause, .. } if cause == Cause::HeldOut)
        );
    }

    #[test]
    fn live_predicates_deploy_then_wait_then_give_up() {
        let mut live = fact("l", State::Error);
        live.live = true;
        let mut f = facts(vec![fact("a", State::Pass), live]);
        f.has_deploy = true;
        assert_eq!(decide(&f), Decision::Deploy);
        f.deployed = true;
        assert!(matches!(decide(&f), Decision::Wait { .. }));
        f.waits = MAX_WAITS;
        assert!(
            matches!(decide(&f), Decision::Stuck { cause, .. } if cause == Cause::LiveNotReady)
        );
    }

    #[test]
    fn live_errors_at_the_start_are_not_permanent() {
        let mut live = fact("l", State::Error);
        live.live = true;
        let mut f = facts(vec![fact("a", State::Fail), live]);
        f.first = true;
        assert!(matches!(decide(&f), Decision::Dispatch { .. }));
    }
}
