//! Budget: hard ceilings on iterations, wall clock, tokens, cost and dispatches.
//! A limit trips when the spent amount reaches it (`>=`).

use std::time::Duration;

use crate::goal::Budget;
use crate::run::Spent;

/// Why the budget is exhausted, or `None` while there is room.
pub fn exhausted(budget: &Budget, spent: &Spent) -> Option<String> {
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
    if let Some(max) = budget.max_cost_usd
        && spent.cost_usd >= max
    {
        return Some(format!(
            "spent ${:.4}, max_cost_usd is ${max:.4}",
            spent.cost_usd
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
        }
    }

    #[test]
    fn an_empty_budget_never_trips() {
        assert_eq!(
            exhausted(
                &Budget::default(),
                &spent(1_000, 1_000, u64::MAX, 1e9, u64::MAX)
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
        assert_eq!(exhausted(&b, &spent(2, 1, 999, 0.99, 59_999)), None);
        assert!(
            exhausted(&b, &spent(3, 1, 0, 0.0, 0))
                .unwrap()
                .contains("max_iterations")
        );
        assert!(
            exhausted(&b, &spent(0, 2, 0, 0.0, 0))
                .unwrap()
                .contains("max_dispatches")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 1000, 0.0, 0))
                .unwrap()
                .contains("max_tokens")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 0, 1.0, 0))
                .unwrap()
                .contains("max_cost_usd")
        );
        assert!(
            exhausted(&b, &spent(0, 0, 0, 0.0, 60_000))
                .unwrap()
                .contains("max_wall_clock")
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
