//! Budget: hard ceilings on iterations, wall clock, tokens, cost and dispatches.
//! A limit trips when the spent amount reaches it (`>=`).

use std::time::Duration;

use crate::plan::Budget;
use crate::record::Spent;

/// The cost the budget counts: what the agents reported, plus, for each dispatch
/// whose cost is unknown (cut off by a crash of kazi), `per_unknown` (the most
/// expensive dispatch of the run): conservative, so a crash never buys budget.
pub fn counted_cost(spent: &Spent, per_unknown: f64) -> f64 {
    spent.cost_usd + spent.unknown_cost_dispatches as f64 * per_unknown
}

/// Why the budget is exhausted, or `None` while there is room. `per_unknown` is
/// the cost counted for each dispatch of unknown cost ([`counted_cost`]).
pub fn exhausted(budget: &Budget, spent: &Spent, per_unknown: f64) -> Option<String> {
    if let Some(max) = budget.max_iterations
        && spent.iterations >= max
    {
        return Some(format!("reached max_iterations ({max})"));
    }
    if let Some(max) = budget.max_dispatches
        && spent.dispatches >= max
    {
        return Some(format!("reached max_dispatches ({max})"));
    }
    if let Some(max) = budget.max_tokens
        && spent.tokens >= max
    {
        return Some(format!(
            "spent {} tokens, max_tokens is {max}",
            spent.tokens
        ));
    }
    let cost = counted_cost(spent, per_unknown);
    if let Some(max) = budget.max_cost_usd
        && cost >= max
    {
        let unknown = match spent.unknown_cost_dispatches {
            0 => String::new(),
            n => format!(
                " (counting ${per_unknown:.4} for each of {n} dispatch{} of unknown cost)",
                if n == 1 { "" } else { "es" }
            ),
        };
        return Some(format!(
            "spent ${cost:.4}{unknown}, max_cost_usd is ${max:.4}"
        ));
    }
    if let Some(max) = budget.max_wall_clock
        && Duration::from_millis(spent.wall_clock_ms) >= max
    {
        return Some(format!(
            "ran for {}, max_wall_clock is {}",
            humantime::format_duration(Duration::from_secs(spent.wall_clock_ms / 1000)),
            humantime::format_duration(max)
        ));
    }
    None
}

/// Wall-clock time left, if the budget bounds it.
pub fn remaining_wall_clock(budget: &Budget, spent: &Spent) -> Option<Duration> {
    budget
        .max_wall_clock
        .map(|max| max.saturating_sub(Duration::from_millis(spent.wall_clock_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spent(
        iterations: u64,
        dispatches: u64,
        tokens: u64,
        cost_usd: f64,
        wall_clock_ms: u64,
    ) -> Spent {
        Spent {
            iterations,
            dispatches,
            tokens,
            cost_usd,
            wall_clock_ms,
            unknown_cost_dispatches: 0,
        }
    }

    #[test]
    fn an_empty_budget_never_trips() {
        assert_eq!(
            exhausted(
                &Budget::default(),
                &spent(1_000, 1_000, u64::MAX, 1e9, u64::MAX),
                1.0
            ),
            None
        );
    }

    #[test]
    fn each_dimension_trips_at_its_limit_not_before() {
        let b = Budget {
            max_iterations: Some(3),
            max_wall_clock: Some(Duration::from_secs(60)),
            max_tokens: Some(1000),
            max_cost_usd: Some(1.0),
            max_dispatches: Some(2),
        };
        assert_eq!(exhausted(&b, &spent(2, 1, 999, 0.99, 59_999), 0.0), None);
        assert!(
            exhausted(&b, &spent(3, 1, 0, 0.0, 0), 0.0)
                .unwrap()
                .contains("max_iterations")
        );
        assert!(
            exhausted(&b, &spent(0, 2, 0, 0.0, 0), 0.0)
                .unwrap()
                .contains("max_dispatches")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 1000, 0.0, 0), 0.0)
                .unwrap()
                .contains("max_tokens")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 0, 1.0, 0), 0.0)
                .unwrap()
                .contains("max_cost_usd")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 0, 0.0, 60_000), 0.0)
                .unwrap()
                .contains("max_wall_clock")
        );
    }

    #[test]
    fn dispatches_of_unknown_cost_count_as_the_most_expensive_one() {
        let b = Budget {
            max_cost_usd: Some(2.5),
            ..Budget::default()
        };
        let mut s = spent(0, 3, 0, 1.0, 0);
        s.unknown_cost_dispatches = 1;
        assert_eq!(exhausted(&b, &s, 1.0), None);
        s.unknown_cost_dispatches = 2;
        let why = exhausted(&b, &s, 1.0).unwrap();
        assert!(
            why.contains("$3.0000") && why.contains("2 dispatches of unknown cost"),
            "{why}"
        );
    }

    #[test]
    fn remaining_wall_clock_saturates() {
        let b = Budget {
            max_wall_clock: Some(Duration::from_secs(10)),
            ..Budget::default()
        };
        assert_eq!(
            remaining_wall_clock(&b, &spent(0, 0, 0, 0.0, 4_000)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            remaining_wall_clock(&b, &spent(0, 0, 0, 0.0, 40_000)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            remaining_wall_clock(&Budget::default(), &Spent::default()),
            None
        );
    }
}
