//! `kazi runs`: the runs in the read-model, newest first. Also the small text
//! helpers `kazi show` shares (tables, money, durations, times).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::output::Printer;
use crate::exit;
use crate::run::RunSummary;
use crate::store::{self, Store};

/// Version of the `--json` report of `kazi runs`.
pub const RUNS_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Show at most N runs.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    limit: usize,
    /// The run database [default: $KAZI_DB, else kazi/kazi.db in the platform data directory].
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

pub fn run(args: RunsArgs, printer: &Printer) -> Result<u8, CliError> {
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let path = args.db.unwrap_or_else(Store::default_path);
    let runs = match Store::open_read_only(&path)? {
        Some(store) => store.list_runs(args.limit)?,
        None => Vec::new(),
    };
    if args.json {
        printer.json(&json!({
            "schema_version": RUNS_SCHEMA_VERSION,
            "runs": runs.iter().map(summary_json).collect::<Vec<_>>(),
        }));
        return Ok(exit::SUCCESS);
    }
    if runs.is_empty() {
        printer.out("no runs yet");
        return Ok(exit::SUCCESS);
    }
    let now = store::now_ms();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.goal_id.clone(),
                r.shown_status().to_owned(),
                r.iterations.to_string(),
                r.spent.dispatches.to_string(),
                money(r.spent.cost_usd),
                ago(r.started_at_ms, now),
                r.workspace.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "GOAL",
        "STATUS",
        "ITER",
        "DISP",
        "COST",
        "STARTED",
        "WORKSPACE",
    ];
    for line in table(&header, &rows) {
        printer.out(&line);
    }
    Ok(exit::SUCCESS)
}

/// A store error as a command failure (exit 1).
pub(super) fn failed(e: store::StoreError) -> CliError {
    CliError::Failed(e.to_string())
}

/// A run as `--json` shows it (`kazi runs` and `kazi show`).
pub(super) fn summary_json(r: &RunSummary) -> serde_json::Value {
    json!({
        "id": r.id,
        "goal_id": r.goal_id,
        "goal_path": r.goal_path,
        "workspace": r.workspace,
        "status": r.shown_status(),
        "reason": r.reason,
        "iterations": r.iterations,
        "budget_spent": r.spent,
        "started_at_ms": r.started_at_ms,
        "finished_at_ms": r.finished_at_ms,
    })
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines
}

/// `$0.13`.
pub(super) fn money(usd: f64) -> String {
    format!("${usd:.2}")
}

/// `850ms`, `1m 3s`, `2h 5m 1s`.
pub(super) fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
    }
}

/// How long ago `ms` was: `42s ago`, `5m ago`, `3h ago`, `2d ago`; older (or in the
/// future) as the UTC date.
pub(super) fn ago(ms: i64, now: i64) -> String {
    let secs = (now - ms) / 1000;
    match secs {
        s if s < 0 => store::utc_time(ms)[..10].to_owned(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s if s < 7 * 86_400 => format!("{}d ago", s / 86_400),
        _ => store::utc_time(ms)[..10].to_owned(),
    }
}

/// The first line of `text`, at most `max` characters (with `…` when cut).
pub(super) fn one_line(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    if first.chars().count() <= max && !text.trim().contains('\n') {
        return first.to_owned();
    }
    let mut cut: String = first.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_leaves_the_last_unpadded() {
        let rows = vec![
            vec!["a".to_owned(), "long cell".to_owned(), "x".to_owned()],
            vec!["bbb".to_owned(), "c".to_owned(), "".to_owned()],
        ];
        assert_eq!(
            table(&["H1", "H2", "H3"], &rows),
            ["H1   H2         H3", "a    long cell  x", "bbb  c"]
        );
    }

    #[test]
    fn ago_is_relative_for_a_week_then_a_date() {
        let now = 1_764_000_000_000;
        assert_eq!(ago(now - 5_000, now), "5s ago");
        assert_eq!(ago(now - 300_000, now), "5m ago");
        assert_eq!(ago(now - 7_200_000, now), "2h ago");
        assert_eq!(ago(now - 2 * 86_400_000, now), "2d ago");
        assert_eq!(ago(now - 30 * 86_400_000, now), "2025-10-25");
        assert_eq!(ago(now + 86_400_000, now), "2025-11-25");
    }

    #[test]
    fn durations_money_and_lines_read_well() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(63_400), "1m 3s");
        assert_eq!(money(0.125), "$0.12");
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(one_line("a long line of text", 6), "a lon…");
        assert_eq!(one_line("two\nlines", 10), "two…");
    }
}
