//! `kazi show RUN`: one run from the read-model: its header, the predicate vector
//! at every iteration, the dispatches and the events; with `--iteration N` the full
//! evidence of that iteration.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::Printer;
use super::runs::{duration, money, one_line, summary_json, table};
use crate::exit;
use crate::run::{Decision, Event, IterationRecord, PredicateResult, Spent};
use crate::store::{self, Store, StoreError, StoredDispatch, StoredRun};

/// Version of the `--json` report of `kazi show`.
pub const SHOW_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id, a unique prefix of it (see `kazi runs`), or `last` for the newest run.
    run: String,
    /// Show the full evidence of iteration N (1-based).
    #[arg(long, short = 'i', value_name = "N")]
    iteration: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

pub fn run(args: ShowArgs, printer: &Printer) -> Result<u8, CliError> {
    let path = args.db.unwrap_or_else(Store::default_path);
    let store = Store::open_read_only(&path)?.ok_or_else(|| StoreError::UnknownRun {
        path: path.clone(),
        id: args.run.clone(),
    })?;
    let id = if args.run == "last" {
        match store.list_runs(1)?.first() {
            Some(r) => r.id.clone(),
            None => {
                return Err(CliError::Failed(format!(
                    "there are no runs in {} yet; hint: `kazi run` starts one",
                    path.display()
                )));
            }
        }
    } else {
        args.run.clone()
    };
    let run = store.load_run(&id)?;
    if let Some(n) = args.iteration
        && !run.iterations.iter().any(|it| it.index == n)
    {
        let have = match (run.iterations.first(), run.iterations.last()) {
            (Some(a), Some(b)) => format!("it has iterations {} to {}", a.index, b.index),
            _ => "it has no iterations yet".to_owned(),
        };
        return Err(CliError::Failed(format!(
            "run `{}` has no iteration {n}: {have}",
            run.summary.id
        )));
    }
    if args.json {
        printer.json(&run_json(&run, args.iteration));
        return Ok(exit::SUCCESS);
    }
    header(&run, printer);
    match args.iteration {
        Some(n) => iteration_evidence(&run, n, printer),
        None => {
            history(&run, printer);
            dispatches(&run, None, printer);
            events(&run, None, printer);
        }
    }
    Ok(exit::SUCCESS)
}

/// The `--json` report: the run, and its iterations (with full evidence),
/// dispatches and events; only those of iteration `only` when given.
fn run_json(run: &StoredRun, only: Option<u64>) -> serde_json::Value {
    let keep = |i: u64| only.is_none_or(|n| n == i);
    let mut head = summary_json(&run.summary);
    let extra = json!({
        "goal_sha256": run.goal_sha256,
        "goal_text": run.goal_text,
        "profile": run.profile,
        "model": run.model,
    });
    if let (Some(h), Some(e)) = (head.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    json!({
        "schema_version": SHOW_SCHEMA_VERSION,
        "run": head,
        "iterations": run.iterations.iter().filter(|it| keep(it.index)).map(iteration_json).collect::<Vec<_>>(),
        "dispatches": run.dispatches.iter().filter(|d| keep(d.iteration)).map(dispatch_json).collect::<Vec<_>>(),
        "events": run.events.iter().filter(|(i, _)| keep(*i)).map(|(i, e)| event_json(*i, e)).collect::<Vec<_>>(),
    })
}

fn iteration_json(it: &IterationRecord) -> serde_json::Value {
    json!({
        "index": it.index,
        "decision": it.decision,
        "predicates": it.results.iter().map(result_json).collect::<Vec<_>>(),
        "events": it.events,
        "budget_spent": it.spent,
        "started_at_ms": it.started_at_ms,
    })
}

fn result_json(r: &PredicateResult) -> serde_json::Value {
    json!({
        "id": r.id,
        "state": r.state,
        "verdict": r.verdict.outcome,
        "summary": r.verdict.summary,
        "details": r.verdict.details,
        "diagnostics": r.verdict.diagnostics,
        "score": r.verdict.score,
        "metrics": r.verdict.metrics,
        "duration_ms": r.duration_ms,
        "attempts": r.attempts,
        "quarantined": r.quarantined,
    })
}

fn dispatch_json(d: &StoredDispatch) -> serde_json::Value {
    let mut v = serde_json::to_value(&d.record).expect("dispatch records serialise");
    if let Some(o) = v.as_object_mut() {
        o.insert("iteration".into(), d.iteration.into());
        o.insert("prompt".into(), d.prompt.clone().into());
    }
    v
}

fn event_json(iteration: u64, e: &Event) -> serde_json::Value {
    json!({
        "iteration": iteration,
        "kind": e.kind,
        "predicate": e.predicate,
        "message": e.message,
    })
}

fn header(run: &StoredRun, printer: &Printer) {
    let s = &run.summary;
    let status = match &s.reason {
        Some(r) => format!("{}: {r}", s.shown_status()),
        None if s.abandoned && s.status == crate::run::RunStatus::Running => format!(
            "abandoned: the process that drove it is gone; hint: `kazi run {} --resume {}` cleans up and continues it",
            s.goal_path, s.id
        ),
        None => s.status.to_string(),
    };
    let agent = match &run.model {
        Some(m) => format!("{} (model {m})", run.profile),
        None => run.profile.clone(),
    };
    let mut when = store::utc_time(s.started_at_ms);
    if let Some(end) = s.finished_at_ms {
        when.push_str(&format!(
            ", finished {} after {}",
            store::utc_time(end),
            duration(u64::try_from(end - s.started_at_ms).unwrap_or(0))
        ));
    }
    let rows = [
        ("run", s.id.clone()),
        ("goal", format!("{} ({})", s.goal_id, s.goal_path)),
        ("workspace", s.workspace.clone()),
        ("agent", agent),
        ("status", status),
        ("started", when),
        ("spent", spent_text(&s.spent)),
    ];
    for (k, v) in rows {
        printer.out(&format!("{k:<10} {v}"));
    }
}

fn spent_text(s: &Spent) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {}, {}, {}, {} of wall clock",
        plural(s.iterations, "iteration", "iterations"),
        plural(s.dispatches, "dispatch", "dispatches"),
        plural(s.tokens, "token", "tokens"),
        money(s.cost_usd),
        duration(s.wall_clock_ms)
    )
}

/// The decision as a person reads it, with its reason.
fn decision_text(d: &Decision) -> String {
    match d {
        Decision::Converged | Decision::Deploy | Decision::Interrupted => d.kind().to_owned(),
        Decision::Stuck { cause, reason } => format!("stuck ({cause}): {reason}"),
        Decision::OverBudget { reason }
        | Decision::Tampered { reason }
        | Decision::Wait { reason } => format!("{}: {reason}", d.kind()),
        Decision::Dispatch { predicates } => format!("dispatch: {}", predicates.join(", ")),
    }
}

/// One row per iteration: its decision and each predicate's state.
fn history(run: &StoredRun, printer: &Printer) {
    printer.out("");
    if run.iterations.is_empty() {
        printer.out("no iterations recorded yet");
        return;
    }
    // Every predicate seen, in the order first observed.
    let mut ids: Vec<&str> = Vec::new();
    for it in &run.iterations {
        for r in &it.results {
            if !ids.contains(&r.id.as_str()) {
                ids.push(&r.id);
            }
        }
    }
    let mut quarantined = false;
    let rows: Vec<Vec<String>> = run
        .iterations
        .iter()
        .map(|it| {
            let mut row = vec![it.index.to_string(), it.decision.kind().to_owned()];
            for id in &ids {
                row.push(match it.results.iter().find(|r| r.id == *id) {
                    Some(r) if r.quarantined => {
                        quarantined = true;
                        format!("{}*", r.state.as_str())
                    }
                    Some(r) => r.state.as_str().to_owned(),
                    None => "-".to_owned(),
                });
            }
            row
        })
        .collect();
    let mut head = vec!["ITER", "DECISION"];
    head.extend(ids.iter().copied());
    for line in table(&head, &rows) {
        printer.out(&line);
    }
    if quarantined {
        printer.out("(* quarantined as flaky)");
    }
    if let Some(last) = run.iterations.last()
        && !matches!(last.decision, Decision::Dispatch { .. })
    {
        printer.out(&format!("last decision: {}", decision_text(&last.decision)));
    }
}

fn dispatches(run: &StoredRun, only: Option<u64>, printer: &Printer) {
    let rows: Vec<Vec<String>> = run
        .dispatches
        .iter()
        .filter(|d| only.is_none_or(|n| n == d.iteration))
        .map(
            |StoredDispatch {
                 iteration: i,
                 record: d,
                 ..
             }| {
                let opt = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
                vec![
                    i.to_string(),
                    d.profile.clone(),
                    d.outcome.as_str().to_owned(),
                    d.exit_code.map_or("-".to_owned(), |c| c.to_string()),
                    duration(d.duration_ms),
                    format!(
                        "{}/{}/{}",
                        opt(d.tokens_in),
                        opt(d.tokens_out),
                        opt(d.tokens_cached)
                    ),
                    d.cost_usd.map_or("-".to_owned(), money),
                    d.message
                        .as_deref()
                        .map_or(String::new(), |m| one_line(m, 72)),
                ]
            },
        )
        .collect();
    if rows.is_empty() {
        return;
    }
    printer.out("");
    printer.out("dispatches:");
    let head = [
        "ITER",
        "PROFILE",
        "OUTCOME",
        "EXIT",
        "DURATION",
        "TOKENS in/out/cached",
        "COST",
        "MESSAGE",
    ];
    for line in table(&head, &rows) {
        printer.out(&line);
    }
    // What each dispatch changed: kept (it would land) and reverted (it may not).
    for d in run
        .dispatches
        .iter()
        .filter(|d| only.is_none_or(|n| n == d.iteration))
    {
        let kept: Vec<&String> = d
            .record
            .changed_files
            .iter()
            .filter(|f| {
                !d.record
                    .reverted
                    .iter()
                    .any(|r| r.starts_with(&format!("{f}: ")))
            })
            .collect();
        if !kept.is_empty() {
            printer.out(&format!(
                "  iteration {}: kept {}",
                d.iteration,
                kept.iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for r in &d.record.reverted {
            printer.out(&format!("  iteration {}: reverted {r}", d.iteration));
        }
        if only.is_some() {
            if let Some(diff) = &d.record.diff {
                printer.out("");
                printer.out(&format!(
                    "diff of the dispatch of iteration {}:",
                    d.iteration
                ));
                for line in diff.lines() {
                    printer.out(line);
                }
            }
            if let Some(prompt) = &d.prompt {
                printer.out("");
                printer.out(&format!(
                    "prompt of the dispatch of iteration {}:",
                    d.iteration
                ));
                for line in prompt.lines() {
                    printer.out(&format!("  {line}"));
                }
            }
        }
    }
}

fn events(run: &StoredRun, only: Option<u64>, printer: &Printer) {
    let rows: Vec<Vec<String>> = run
        .events
        .iter()
        .filter(|(i, _)| only.is_none_or(|n| n == *i))
        .map(|(i, e)| {
            vec![
                i.to_string(),
                e.kind.to_string(),
                e.predicate.clone().unwrap_or_else(|| "-".to_owned()),
                one_line(&e.message, 100),
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    printer.out("");
    printer.out("events:");
    for line in table(&["ITER", "KIND", "PREDICATE", "MESSAGE"], &rows) {
        printer.out(&line);
    }
}

/// Everything recorded for iteration `n`: the decision, each verdict with its
/// evidence, the dispatch and events that followed.
fn iteration_evidence(run: &StoredRun, n: u64, printer: &Printer) {
    let Some(it) = run.iterations.iter().find(|it| it.index == n) else {
        return;
    };
    printer.out("");
    printer.out(&format!(
        "iteration {n}, started {}",
        store::utc_time(it.started_at_ms)
    ));
    printer.out(&format!("decision   {}", decision_text(&it.decision)));
    printer.out(&format!("spent      {}", spent_text(&it.spent)));
    printer.out("");
    for r in &it.results {
        printer.verdict_line(&r.id, &r.verdict, true);
        let mut facts = vec![format!("state {}", r.state.as_str())];
        if r.quarantined {
            facts.push("quarantined as flaky".into());
        }
        facts.push(format!(
            "{} attempt{}",
            r.attempts,
            if r.attempts == 1 { "" } else { "s" }
        ));
        facts.push(duration(r.duration_ms));
        printer.out(&format!("      ({})", facts.join(", ")));
    }
    dispatches(run, Some(n), printer);
    events(run, Some(n), printer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_with_their_reasons() {
        assert_eq!(decision_text(&Decision::Converged), "converged");
        assert_eq!(
            decision_text(&Decision::Stuck {
                cause: crate::run::Cause::AgentError,
                reason: "not logged in".into()
            }),
            "stuck (agent_error): not logged in"
        );
        assert_eq!(
            decision_text(&Decision::Dispatch {
                predicates: vec!["a".into(), "b".into()]
            }),
            "dispatch: a, b"
        );
        assert_eq!(
            decision_text(&Decision::OverBudget {
                reason: "max_cost_usd".into()
            }),
            "over_budget: max_cost_usd"
        );
    }

    #[test]
    fn spent_reads_in_words() {
        let s = Spent {
            iterations: 1,
            dispatches: 2,
            tokens: 1500,
            cost_usd: 0.5,
            wall_clock_ms: 61_000,
            unknown_cost_dispatches: 0,
        };
        assert_eq!(
            spent_text(&s),
            "1 iteration, 2 dispatches, 1500 tokens, $0.50, 1m 1s of wall clock"
        );
    }
}
