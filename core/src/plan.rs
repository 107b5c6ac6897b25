//! What the state machine knows of a goal: plain data the host builds from the goal
//! file, so the rules never see TOML, components or paths.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Hard ceilings; every limit optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Budget {
    pub max_iterations: Option<u64>,
    pub max_wall_clock: Option<Duration>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_dispatches: Option<u64>,
}

/// Whether the goal builds something new or repairs something broken (the prompt
/// says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Create,
    #[default]
    Repair,
}

/// Which way a ratcheted metric may not go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RatchetDirection {
    NoDecrease,
    NoIncrease,
}

/// A metric that must not regress against the best value seen in the run (or a
/// stored baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratchet {
    pub metric: String,
    pub direction: RatchetDirection,
    pub baseline: Option<f64>,
}

/// One predicate as the loop sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PredicatePlan {
    pub id: String,
    pub description: Option<String>,
    /// Only expected to pass after `[deploy]` has run.
    pub live: bool,
    /// Required for convergence but never shown to the agent.
    pub held_out: bool,
    pub ratchets: Vec<Ratchet>,
    /// A rise of a skipped/ignored/deselected test count above the first observation
    /// fails the predicate (on by default; `allow_skips = true` turns it off).
    pub skips_fail: bool,
}

/// The goal's words for the prompt.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Brief {
    pub id: String,
    /// The goal's `name`, or its id.
    pub title: String,
    pub description: Option<String>,
    pub mode: Mode,
    pub writable: Vec<String>,
    pub protected: Vec<String>,
}

/// Everything the machine needs to run one goal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub brief: Brief,
    pub predicates: Vec<PredicatePlan>,
    pub budget: Budget,
    /// `Some(interval)` for a standing goal: keep observing after convergence.
    pub standing: Option<Duration>,
    /// `[deploy]`: run after code predicates pass, before live ones are judged.
    pub deploy: Option<Deploy>,
    /// Per-dispatch timeout.
    pub agent_timeout: Duration,
    /// The agent profile's id and the model, as dispatch records name them.
    pub profile: String,
    pub model: Option<String>,
    /// Land the converged changes (task worktrees).
    pub land: bool,
    /// The agent works in a task worktree where kazi reverts what may not land; in
    /// place, scope is only reported.
    pub isolated: bool,
}

/// `[deploy]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub run: Vec<String>,
    pub timeout: Duration,
}

impl Plan {
    /// The predicate with this id.
    pub fn predicate(&self, id: &str) -> Option<&PredicatePlan> {
        self.predicates.iter().find(|p| p.id == id)
    }

    /// Every predicate id, in goal order.
    pub fn ids(&self) -> Vec<String> {
        self.predicates.iter().map(|p| p.id.clone()).collect()
    }
}
