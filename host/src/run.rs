//! The records of a run: what the loop decides and persists. Shared by the loop
//! (`reconcile`), the read-model (`store`) and the CLI reports.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Converged,
    Stuck,
    OverBudget,
    Tampered,
    Interrupted,
    Error,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Converged => "converged",
            RunStatus::Stuck => "stuck",
            RunStatus::OverBudget => "over_budget",
            RunStatus::Tampered => "tampered",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "converged" => RunStatus::Converged,
            "stuck" => RunStatus::Stuck,
            "over_budget" => RunStatus::OverBudget,
            "tampered" => RunStatus::Tampered,
            "interrupted" => RunStatus::Interrupted,
            "error" => RunStatus::Error,
            _ => return None,
        })
    }

    /// The process exit code for this outcome (SPEC §6).
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::Converged => crate::exit::SUCCESS,
            RunStatus::OverBudget => crate::exit::OVER_BUDGET,
            RunStatus::Tampered => crate::exit::TAMPERED,
            RunStatus::Running | RunStatus::Stuck | RunStatus::Interrupted | RunStatus::Error => {
                crate::exit::NOT_CONVERGED
            }
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A predicate's state in one observation, as the loop sees it: the verdict plus
/// `unknown` (quarantined as flaky, or not evaluated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pass,
    Fail,
    Error,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Fail => "fail",
            State::Error => "error",
            State::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pass" => State::Pass,
            "fail" => State::Fail,
            "error" => State::Error,
            "unknown" => State::Unknown,
            _ => return None,
        })
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
    Stuck { cause: String, reason: String },
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

/// How an agent dispatch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchOutcome {
    /// The agent ran and exited 0.
    Completed,
    /// The program was not found.
    MissingProgram,
    /// Exited non-zero (not logged in, usage error, crash…).
    Failed,
    /// Killed at the dispatch timeout.
    TimedOut,
    /// Exited 0 but every tool call was denied: no work could happen.
    PermissionDenied,
    /// The output could not be read by the profile.
    Unparseable,
    /// Killed because kazi was interrupted.
    Interrupted,
}

impl DispatchOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchOutcome::Completed => "completed",
            DispatchOutcome::MissingProgram => "missing_program",
            DispatchOutcome::Failed => "failed",
            DispatchOutcome::TimedOut => "timed_out",
            DispatchOutcome::PermissionDenied => "permission_denied",
            DispatchOutcome::Unparseable => "unparseable",
            DispatchOutcome::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "completed" => DispatchOutcome::Completed,
            "missing_program" => DispatchOutcome::MissingProgram,
            "failed" => DispatchOutcome::Failed,
            "timed_out" => DispatchOutcome::TimedOut,
            "permission_denied" => DispatchOutcome::PermissionDenied,
            "unparseable" => DispatchOutcome::Unparseable,
            "interrupted" => DispatchOutcome::Interrupted,
            _ => return None,
        })
    }

    /// Whether the agent could not work at all (not progress).
    pub fn is_agent_error(self) -> bool {
        !matches!(self, DispatchOutcome::Completed)
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
}

/// Something worth telling: a regression, a quarantine, a gaming attempt, a tamper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `regression`, `quarantine`, `rehabilitated`, `gaming`, `tamper`, `scope`,
    /// `ratchet`, `agent_error`, `deploy`.
    pub kind: String,
    pub predicate: Option<String>,
    pub message: String,
}

/// Budget counters (persisted, so a resumed run continues them).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Spent {
    pub iterations: u64,
    pub dispatches: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub wall_clock_ms: u64,
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
}

/// Verdict states by predicate id, for the loop's pure cores.
pub type Vector = BTreeMap<String, State>;
