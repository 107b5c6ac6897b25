//! The records of a run: what the loop decides and persists. Shared by the state
//! machine, the read-model and the reports.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// Declares a `Copy` enum with snake_case names: `as_str`, `parse`, `ALL`,
/// `Display`, and serde as the same names.
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in the read-model, `--json` and messages.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The value with this name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// How a run ended (or that it has not).
    pub enum RunStatus {
        Running => "running",
        Converged => "converged",
        Stuck => "stuck",
        OverBudget => "over_budget",
        Tampered => "tampered",
        Interrupted => "interrupted",
        /// The goal cannot be run as it is (vacuous: it all passes at the start).
        Invalid => "invalid",
        Error => "error",
    }
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        self != RunStatus::Running
    }
}

named_enum! {
    /// A predicate's state in one observation, as the loop sees it: the verdict plus
    /// `unknown` (quarantined as flaky, or not evaluated).
    pub enum State {
        Pass => "pass",
        Fail => "fail",
        Error => "error",
        Unknown => "unknown",
    }
}

named_enum! {
    /// Why a run is stuck.
    pub enum Cause {
        /// The same failing set observations in a row with no better score.
        NoProgress => "no_progress",
        /// A code predicate cannot be evaluated at all (bad config, missing program).
        PredicateError => "predicate_error",
        /// A predicate's tool is not installed: no agent edit can fix that.
        MissingTool => "missing_tool",
        /// Only held-out predicates fail, and the agent never hears of them.
        HeldOut => "held_out",
        /// Quarantined flaky predicates never passed enough times in a row.
        Flaky => "flaky",
        /// Live predicates still fail after the code passed and the deploy.
        LiveNotReady => "live_not_ready",
        /// The agent failed the same way twice in a row.
        AgentError => "agent_error",
        /// `[deploy]` failed.
        DeployFailed => "deploy_failed",
        /// Every predicate passed at the first observation: nothing to do.
        Vacuous => "vacuous",
    }
}

named_enum! {
    /// What an event is about.
    pub enum EventKind {
        /// A predicate that passed before fails now.
        Regression => "regression",
        /// A predicate passed on a re-run after failing: quarantined as flaky.
        Quarantine => "quarantine",
        /// A quarantined predicate passed enough times in a row.
        Rehabilitated => "rehabilitated",
        /// The agent changed a protected path or the goal file.
        Gaming => "gaming",
        /// The goal file or a protected path changed: the run can never converge.
        Tamper => "tamper",
        /// The agent changed files outside `writable` (reported, or reverted).
        Scope => "scope",
        /// A ratchet metric went the wrong way.
        Ratchet => "ratchet",
        /// More tests were skipped or deselected than at the first observation.
        Skip => "skip",
        /// The agent could not work.
        AgentError => "agent_error",
        /// `[deploy]` ran.
        Deploy => "deploy",
        /// A dispatch was cut off (interrupt, crash) before it finished.
        Interrupted => "interrupted",
        /// The converged changes were landed, or landing failed.
        Land => "land",
    }
}

/// One predicate in one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredicateResult {
    pub id: String,
    pub state: State,
    pub verdict: Verdict,
    pub duration_ms: u64,
    /// Evaluations made (1 + flake re-runs).
    pub attempts: u32,
    /// Quarantined as flaky in this observation.
    pub quarantined: bool,
}

/// What the loop decided after an observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    Converged,
    Stuck { cause: Cause, reason: String },
    OverBudget { reason: String },
    Tampered { reason: String },
    Dispatch { predicates: Vec<String> },
    Deploy,
    Wait { reason: String },
    Interrupted,
}

impl Decision {
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Converged => "converged",
            Decision::Stuck { .. } => "stuck",
            Decision::OverBudget { .. } => "over_budget",
            Decision::Tampered { .. } => "tampered",
            Decision::Dispatch { .. } => "dispatch",
            Decision::Deploy => "deploy",
            Decision::Wait { .. } => "wait",
            Decision::Interrupted => "interrupted",
        }
    }
}

named_enum! {
    /// How an agent dispatch went.
    pub enum DispatchOutcome {
        /// The agent ran and exited 0.
        Completed => "completed",
        /// The program was not found.
        MissingProgram => "missing_program",
        /// Exited non-zero (not logged in, usage error, crash…).
        Failed => "failed",
        /// Killed at the dispatch timeout.
        TimedOut => "timed_out",
        /// Exited 0 but every tool call was denied: no work could happen.
        PermissionDenied => "permission_denied",
        /// The output could not be read by the profile.
        Unparseable => "unparseable",
        /// Killed because kazi was interrupted, or cut off by a crash of kazi.
        Interrupted => "interrupted",
        /// Recorded before the agent started and not finished yet (a live run, or a
        /// crashed one not resumed yet).
        Running => "running",
    }
}

impl DispatchOutcome {
    /// Whether the agent could not work at all (not progress). An interrupted
    /// dispatch says nothing about the agent.
    pub fn is_agent_error(self) -> bool {
        !matches!(
            self,
            DispatchOutcome::Completed | DispatchOutcome::Interrupted | DispatchOutcome::Running
        )
    }
}

/// One agent invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchRecord {
    pub profile: String,
    pub model: Option<String>,
    pub prompt_sha256: String,
    pub prompt_bytes: u64,
    pub predicates: Vec<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub tokens_cached: Option<u64>,
    pub cost_usd: Option<f64>,
    pub session_id: Option<String>,
    pub outcome: DispatchOutcome,
    /// The agent's own message when it could not work, or its result text (bounded).
    pub message: Option<String>,
    pub permission_denials: Vec<String>,
    /// Files the dispatch changed (workspace-relative).
    pub changed_files: Vec<String>,
    /// Changes kazi reverted after it (task worktrees), each as `path: why`.
    #[serde(default)]
    pub reverted: Vec<String>,
    /// The dispatch's diff as it would land (bounded), when known.
    #[serde(default)]
    pub diff: Option<String>,
}

impl DispatchRecord {
    /// A record with nothing known yet but the prompt and the predicates.
    pub fn new(
        profile: impl Into<String>,
        model: Option<String>,
        prompt: &str,
        predicates: &[String],
    ) -> Self {
        Self {
            profile: profile.into(),
            model,
            prompt_sha256: crate::sha256_hex(prompt.as_bytes()),
            prompt_bytes: prompt.len() as u64,
            predicates: predicates.to_vec(),
            exit_code: None,
            duration_ms: 0,
            tokens_in: None,
            tokens_out: None,
            tokens_cached: None,
            cost_usd: None,
            session_id: None,
            outcome: DispatchOutcome::Failed,
            message: None,
            permission_denials: Vec::new(),
            changed_files: Vec::new(),
            reverted: Vec::new(),
            diff: None,
        }
    }

    /// Tokens in and out together.
    pub fn tokens(&self) -> u64 {
        self.tokens_in.unwrap_or(0) + self.tokens_out.unwrap_or(0)
    }
}

/// Something worth telling: a regression, a quarantine, a gaming attempt, a tamper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub predicate: Option<String>,
    pub message: String,
}

impl Event {
    /// An event about the run as a whole.
    pub fn run(kind: EventKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            predicate: None,
            message: message.into(),
        }
    }

    /// An event about one predicate.
    pub fn predicate(kind: EventKind, id: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            predicate: Some(id.to_owned()),
            message: message.into(),
        }
    }
}

/// Budget counters (persisted, so a resumed run continues them).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Spent {
    pub iterations: u64,
    pub dispatches: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub wall_clock_ms: u64,
    /// Dispatches whose cost is unknown (cut off by a crash of kazi): the budget
    /// counts each as the most expensive dispatch of the run.
    #[serde(default)]
    pub unknown_cost_dispatches: u64,
}

/// Everything one iteration writes, in one transaction, before the loop acts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// 1-based.
    pub index: u64,
    pub results: Vec<PredicateResult>,
    pub decision: Decision,
    pub events: Vec<Event>,
    /// The counters after this iteration.
    pub spent: Spent,
    /// Loop state to resume from (quarantine, ratchet bests, streaks), as JSON.
    pub state: serde_json::Value,
    pub started_at_ms: i64,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub goal_id: String,
    pub goal_path: String,
    pub workspace: String,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub iterations: u64,
    pub spent: Spent,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The run is recorded as `running` but the process that drove it is gone (it was
    /// killed or crashed): `kazi run --resume` continues it after cleaning up.
    #[serde(default)]
    pub abandoned: bool,
}

impl RunSummary {
    /// The status as shown: `abandoned` for a running run whose driver is gone.
    pub fn shown_status(&self) -> &'static str {
        if self.abandoned && self.status == RunStatus::Running {
            "abandoned"
        } else {
            self.status.as_str()
        }
    }
}

/// Verdict states by predicate id, for the loop's pure cores.
pub type Vector = BTreeMap<String, State>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for c in Cause::ALL {
            assert_eq!(Cause::parse(c.as_str()), Some(*c));
            let back: Cause = serde_json::from_value(serde_json::json!(c.as_str())).unwrap();
            assert_eq!(back, *c);
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        for o in DispatchOutcome::ALL {
            assert_eq!(DispatchOutcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(State::parse("unknown"), Some(State::Unknown));
        assert_eq!(RunStatus::parse("nope"), None);
    }

    #[test]
    fn decisions_written_by_earlier_versions_still_read() {
        let d: Decision = serde_json::from_str(
            r#"{"kind":"stuck","cause":"no_progress","reason":"the same predicates failed"}"#,
        )
        .unwrap();
        assert!(matches!(
            d,
            Decision::Stuck {
                cause: Cause::NoProgress,
                ..
            }
        ));
        let s: Spent = serde_json::from_str(
            r#"{"iterations":1,"dispatches":0,"tokens":0,"cost_usd":0.0,"wall_clock_ms":5}"#,
        )
        .unwrap();
        assert_eq!(s.unknown_cost_dispatches, 0);
    }
}
