//! Queries: a run in full, and the list of runs.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row};
use serde::de::DeserializeOwned;

use super::{Store, StoreError, StoredDispatch, StoredRun};
use crate::run::{
    Decision, DispatchOutcome, DispatchRecord, Event, EventKind, IterationRecord, PredicateResult,
    RunStatus, RunSummary, Spent, State,
};
use crate::verdict::{Outcome, Verdict};

const SUMMARY_COLUMNS: &str = "id, goal_id, goal_path, workspace, status, reason, iterations,
     dispatches, tokens, cost_usd, wall_clock_ms, started_at_ms, finished_at_ms,
     unknown_cost_dispatches, driver_pid, driver_start";

/// A value read from a row that still has to be decoded (JSON, an enum name).
/// Decoding happens outside the rusqlite closures so errors can name the database.
struct Raw<T> {
    value: T,
    status: String,
}

impl Store {
    fn corrupt(&self, what: impl Into<String>, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            message: message.to_string(),
        }
    }

    fn json<T: DeserializeOwned>(&self, what: &str, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| self.corrupt(what, e))
    }

    fn summary(&self, raw: Raw<RunSummary>) -> Result<RunSummary, StoreError> {
        let mut summary = raw.value;
        summary.status = RunStatus::parse(&raw.status).ok_or_else(|| {
            self.corrupt(
                format!("status of run `{}`", summary.id),
                format!("unknown status `{}`", raw.status),
            )
        })?;
        Ok(summary)
    }

    /// The schema version, the number of runs, and SQLite's own integrity check.
    pub fn health(&self) -> Result<(i64, u64), StoreError> {
        let err = self.sql("check the database");
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(&err)?;
        if check != "ok" {
            return Err(self.corrupt(
                "database",
                format!("SQLite's integrity check says: {check}"),
            ));
        }
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&err)?;
        let runs: i64 = self
            .conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .map_err(&err)?;
        Ok((version, uint(runs)))
    }

    /// Every run, newest first, at most `limit`.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM runs
                 ORDER BY started_at_ms DESC, id DESC LIMIT ?1"
            ))
            .map_err(self.sql("list the runs"))?;
        let raws = stmt
            .query_map([limit], summary_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("list the runs"))?;
        raws.into_iter().map(|r| self.summary(r)).collect()
    }

    /// A run in full: its summary, the sealed goal, every iteration with its
    /// verdicts and events, every dispatch. `id` may be a unique prefix of a run id.
    pub fn load_run(&self, id: &str) -> Result<StoredRun, StoreError> {
        // One read transaction: a consistent snapshot while another process writes.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(self.sql("read a run"))?;
        let id = self.resolve_run_id(id)?;
        let err = self.sql("read a run");

        let head = tx
            .query_row(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}, goal_sha256, goal_text, seal, profile, model,
                            last_state
                     FROM runs WHERE id = ?1"
                ),
                [&id],
                |r| {
                    Ok((
                        summary_row(r)?,
                        r.get::<_, String>("goal_sha256")?,
                        r.get::<_, String>("goal_text")?,
                        r.get::<_, String>("seal")?,
                        r.get::<_, String>("profile")?,
                        r.get::<_, Option<String>>("model")?,
                        r.get::<_, Option<String>>("last_state")?,
                    ))
                },
            )
            .optional()
            .map_err(&err)?
            .ok_or_else(|| StoreError::UnknownRun {
                path: self.path.clone(),
                id: id.clone(),
            })?;
        let (raw, goal_sha256, goal_text, seal, profile, model, last_state) = head;
        let summary = self.summary(raw)?;
        let seal = self.json("seal", &seal)?;
        let last_state = match last_state {
            Some(s) => self.json("loop state", &s)?,
            None => serde_json::Value::Null,
        };

        // Events: all of them for the run; those recorded with an iteration also go
        // into that iteration's record.
        let mut events = Vec::new();
        let mut iteration_events: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT iteration, source, kind, predicate, message FROM events
                     WHERE run_id = ?1 ORDER BY id",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok((
                        uint(r.get(0)?),
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(&err)?;
            for (iteration, source, kind, predicate, message) in rows {
                let kind = EventKind::parse(&kind).ok_or_else(|| {
                    self.corrupt(
                        format!("event of iteration {iteration}"),
                        format!("unknown kind `{kind}`"),
                    )
                })?;
                let event = Event {
                    kind,
                    predicate,
                    message,
                };
                if source == "iteration" {
                    iteration_events
                        .entry(iteration)
                        .or_default()
                        .push(event.clone());
                }
                events.push((iteration, event));
            }
        }

        // Verdicts, grouped by iteration, in observation order.
        let mut results: BTreeMap<u64, Vec<PredicateResult>> = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT iteration, predicate, state, outcome, summary, details, diagnostics,
                            score, metrics, duration_ms, attempts, quarantined
                     FROM verdicts WHERE run_id = ?1 ORDER BY iteration, position",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok(VerdictRow {
                        iteration: uint(r.get(0)?),
                        predicate: r.get(1)?,
                        state: r.get(2)?,
                        outcome: r.get(3)?,
                        summary: r.get(4)?,
                        details: r.get(5)?,
                        diagnostics: r.get(6)?,
                        score: r.get(7)?,
                        metrics: r.get(8)?,
                        duration_ms: uint(r.get(9)?),
                        attempts: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(u32::MAX),
                        quarantined: r.get(11)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(&err)?;
            for row in rows {
                let what = format!("verdict of `{}`", row.predicate);
                let state = State::parse(&row.state)
                    .ok_or_else(|| self.corrupt(&what, format!("unknown state `{}`", row.state)))?;
                let outcome = parse_outcome(&row.outcome).ok_or_else(|| {
                    self.corrupt(&what, format!("unknown outcome `{}`", row.outcome))
                })?;
                let verdict = Verdict {
                    outcome,
                    summary: row.summary,
                    details: row.details,
                    diagnostics: self.json(&what, &row.diagnostics)?,
                    score: row.score,
                    metrics: self.json(&what, &row.metrics)?,
                };
                results
                    .entry(row.iteration)
                    .or_default()
                    .push(PredicateResult {
                        id: row.predicate,
                        state,
                        verdict,
                        duration_ms: row.duration_ms,
                        attempts: row.attempts,
                        quarantined: row.quarantined,
                    });
            }
        }

        let mut iterations = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT idx, decision_json, state, iterations, dispatches, tokens, cost_usd,
                            wall_clock_ms, started_at_ms
                     FROM iterations WHERE run_id = ?1 ORDER BY idx",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok((
                        uint(r.get(0)?),
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        Spent {
                            iterations: uint(r.get(3)?),
                            dispatches: uint(r.get(4)?),
                            tokens: uint(r.get(5)?),
                            cost_usd: r.get(6)?,
                            wall_clock_ms: uint(r.get(7)?),
                            unknown_cost_dispatches: 0,
                        },
                        r.get::<_, i64>(8)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(&err)?;
            for (index, decision, state, spent, started_at_ms) in rows {
                let decision: Decision =
                    self.json(&format!("decision of iteration {index}"), &decision)?;
                iterations.push(IterationRecord {
                    index,
                    results: results.remove(&index).unwrap_or_default(),
                    decision,
                    events: iteration_events.remove(&index).unwrap_or_default(),
                    spent,
                    state: self.json(&format!("loop state of iteration {index}"), &state)?,
                    started_at_ms,
                });
            }
        }

        let mut dispatches = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT iteration, profile, model, prompt_sha256, prompt_bytes, predicates,
                            exit_code, duration_ms, tokens_in, tokens_out, tokens_cached,
                            cost_usd, session_id, outcome, message, permission_denials,
                            changed_files, prompt, reverted, diff
                     FROM dispatches WHERE run_id = ?1 ORDER BY id",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map([&id], |r| {
                    Ok(DispatchRow {
                        iteration: uint(r.get(0)?),
                        profile: r.get(1)?,
                        model: r.get(2)?,
                        prompt_sha256: r.get(3)?,
                        prompt_bytes: uint(r.get(4)?),
                        predicates: r.get(5)?,
                        exit_code: r.get(6)?,
                        duration_ms: uint(r.get(7)?),
                        tokens_in: r.get::<_, Option<i64>>(8)?.map(uint),
                        tokens_out: r.get::<_, Option<i64>>(9)?.map(uint),
                        tokens_cached: r.get::<_, Option<i64>>(10)?.map(uint),
                        cost_usd: r.get(11)?,
                        session_id: r.get(12)?,
                        outcome: r.get(13)?,
                        message: r.get(14)?,
                        permission_denials: r.get(15)?,
                        changed_files: r.get(16)?,
                        prompt: r.get(17)?,
                        reverted: r.get(18)?,
                        diff: r.get(19)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(&err)?;
            for d in rows {
                let what = format!("dispatch of iteration {}", d.iteration);
                let outcome = DispatchOutcome::parse(&d.outcome).ok_or_else(|| {
                    self.corrupt(&what, format!("unknown outcome `{}`", d.outcome))
                })?;
                dispatches.push(StoredDispatch {
                    iteration: d.iteration,
                    prompt: d.prompt,
                    record: DispatchRecord {
                        profile: d.profile,
                        model: d.model,
                        prompt_sha256: d.prompt_sha256,
                        prompt_bytes: d.prompt_bytes,
                        predicates: self.json(&what, &d.predicates)?,
                        exit_code: d.exit_code,
                        duration_ms: d.duration_ms,
                        tokens_in: d.tokens_in,
                        tokens_out: d.tokens_out,
                        tokens_cached: d.tokens_cached,
                        cost_usd: d.cost_usd,
                        session_id: d.session_id,
                        outcome,
                        message: d.message,
                        permission_denials: self.json(&what, &d.permission_denials)?,
                        changed_files: self.json(&what, &d.changed_files)?,
                        reverted: self.json(&what, &d.reverted)?,
                        diff: d.diff,
                    },
                });
            }
        }
        drop(tx);

        Ok(StoredRun {
            summary,
            goal_sha256,
            goal_text,
            seal,
            profile,
            model,
            last_state,
            iterations,
            dispatches,
            events,
        })
    }
}

struct VerdictRow {
    iteration: u64,
    predicate: String,
    state: String,
    outcome: String,
    summary: String,
    details: String,
    diagnostics: String,
    score: Option<f64>,
    metrics: String,
    duration_ms: u64,
    attempts: u32,
    quarantined: bool,
}

struct DispatchRow {
    iteration: u64,
    profile: String,
    model: Option<String>,
    prompt_sha256: String,
    prompt_bytes: u64,
    predicates: String,
    exit_code: Option<i32>,
    duration_ms: u64,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    tokens_cached: Option<u64>,
    cost_usd: Option<f64>,
    session_id: Option<String>,
    outcome: String,
    message: Option<String>,
    permission_denials: String,
    changed_files: String,
    prompt: Option<String>,
    reverted: String,
    diff: Option<String>,
}

fn summary_row(r: &Row<'_>) -> rusqlite::Result<Raw<RunSummary>> {
    let iterations = uint(r.get("iterations")?);
    Ok(Raw {
        value: RunSummary {
            id: r.get("id")?,
            goal_id: r.get("goal_id")?,
            goal_path: r.get("goal_path")?,
            workspace: r.get("workspace")?,
            status: RunStatus::Running,
            reason: r.get("reason")?,
            iterations,
            spent: Spent {
                iterations,
                dispatches: uint(r.get("dispatches")?),
                tokens: uint(r.get("tokens")?),
                cost_usd: r.get("cost_usd")?,
                wall_clock_ms: uint(r.get("wall_clock_ms")?),
                unknown_cost_dispatches: uint(r.get("unknown_cost_dispatches")?),
            },
            started_at_ms: r.get("started_at_ms")?,
            finished_at_ms: r.get("finished_at_ms")?,
            abandoned: {
                let pid: Option<i32> = r.get("driver_pid")?;
                let start: Option<i64> = r.get("driver_start")?;
                let status: String = r.get("status")?;
                status == "running"
                    && !pid.is_some_and(|p| super::process_alive(p, start.map(uint)))
            },
        },
        status: r.get("status")?,
    })
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    Some(match s {
        "pass" => Outcome::Pass,
        "fail" => Outcome::Fail,
        "error" => Outcome::Error,
        _ => return None,
    })
}

/// Counters are stored as signed integers; a negative one reads as 0.
fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
