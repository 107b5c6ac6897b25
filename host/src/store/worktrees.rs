//! Task worktrees in the read-model: what `kazi worktrees` lists and prunes, what
//! `--resume` reopens and what `kazi land` lands. One row per run that prepared an
//! isolation; the full record is JSON so the isolation module owns its shape.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_ms};
use crate::isolation::{LandOutcome, WorktreeRecord};
use crate::run::RunStatus;

/// The migration that adds the `worktrees` table (appended to `schema::MIGRATIONS`).
pub(super) const MIGRATION: &str = r#"
CREATE TABLE worktrees (
    run_id          TEXT PRIMARY KEY,
    mode            TEXT NOT NULL CHECK (mode IN ('worktree', 'in_place')),
    repo            TEXT,                       -- the user's checkout root; NULL outside git
    path            TEXT,                       -- the task worktree; NULL in place
    state           TEXT NOT NULL CHECK (state IN ('active', 'kept', 'released')),
    record          TEXT NOT NULL,              -- JSON: the isolation record
    landing         TEXT,                       -- JSON: the last landing outcome
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX worktrees_by_state ON worktrees (state, created_at_ms DESC);
"#;

/// Where a run's isolation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorktreeState {
    /// The worktree exists (a live run, or one that can be resumed).
    Active,
    /// The worktree is gone; the refs are kept so the run can be landed later.
    Kept,
    /// Everything is gone.
    Released,
}

impl WorktreeState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorktreeState::Active => "active",
            WorktreeState::Kept => "kept",
            WorktreeState::Released => "released",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => WorktreeState::Active,
            "kept" => WorktreeState::Kept,
            "released" => WorktreeState::Released,
            _ => return None,
        })
    }
}

/// A recorded isolation.
#[derive(Debug, Clone, PartialEq)]
pub struct WorktreeRow {
    pub record: WorktreeRecord,
    pub state: WorktreeState,
    /// The last landing, if the run was landed.
    pub landing: Option<LandOutcome>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

type RawRow = (String, String, String, Option<String>, i64, i64);

impl Store {
    /// Record (or update) a run's isolation as `active`: after `prepare`, after
    /// `reopen`, and after each grading (the graded commit moves).
    pub fn record_worktree(&mut self, rec: &WorktreeRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(rec).expect("isolation records serialise");
        let facts = rec.git.as_ref();
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO worktrees (run_id, mode, repo, path, state, record, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7)
                 ON CONFLICT (run_id) DO UPDATE SET
                    mode = excluded.mode, repo = excluded.repo, path = excluded.path,
                    state = 'active', record = excluded.record, updated_at_ms = excluded.updated_at_ms",
                params![
                    rec.run_id,
                    rec.mode.as_str(),
                    facts.map(|f| f.toplevel.display().to_string()),
                    facts
                        .and_then(|f| f.worktree.as_ref())
                        .map(|p| p.display().to_string()),
                    json,
                    rec.created_at_ms,
                    now,
                ],
            )
            .map_err(self.sql("record a task worktree"))?;
        Ok(())
    }

    /// Mark a run's isolation `kept` or `released` (after `Isolation::release`).
    pub fn set_worktree_state(
        &mut self,
        run_id: &str,
        state: WorktreeState,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE worktrees SET state = ?2, updated_at_ms = ?3 WHERE run_id = ?1",
                params![run_id, state.as_str(), now_ms()],
            )
            .map_err(self.sql("update a task worktree"))?;
        if n == 0 {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Remember how a run landed.
    pub fn record_landing(
        &mut self,
        run_id: &str,
        outcome: &LandOutcome,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(outcome).expect("landing outcomes serialise");
        let n = self
            .conn
            .execute(
                "UPDATE worktrees SET landing = ?2, updated_at_ms = ?3 WHERE run_id = ?1",
                params![run_id, json, now_ms()],
            )
            .map_err(self.sql("record a landing"))?;
        if n == 0 {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// The isolation of run `run_id` (a full id), if it had one.
    pub fn worktree(&self, run_id: &str) -> Result<Option<WorktreeRow>, StoreError> {
        let raw = self
            .conn
            .query_row(
                "SELECT run_id, state, record, landing, created_at_ms, updated_at_ms
                 FROM worktrees WHERE run_id = ?1",
                [run_id],
                raw_row,
            )
            .optional()
            .map_err(self.sql("read a task worktree"))?;
        raw.map(|r| self.worktree_row(r)).transpose()
    }

    /// Every recorded isolation, newest first.
    pub fn list_worktrees(&self) -> Result<Vec<WorktreeRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, state, record, landing, created_at_ms, updated_at_ms
                 FROM worktrees ORDER BY created_at_ms DESC, run_id DESC",
            )
            .map_err(self.sql("list the task worktrees"))?;
        let raws = stmt
            .query_map([], raw_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("list the task worktrees"))?;
        raws.into_iter().map(|r| self.worktree_row(r)).collect()
    }

    /// The status of run `run_id`, or `None` when the database has no such run.
    pub fn run_status(&self, run_id: &str) -> Result<Option<RunStatus>, StoreError> {
        let status: Option<String> = self
            .conn
            .query_row("SELECT status FROM runs WHERE id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql("read a run's status"))?;
        status
            .map(|s| {
                RunStatus::parse(&s).ok_or_else(|| StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("status of run `{run_id}`"),
                    message: format!("unknown status `{s}`"),
                })
            })
            .transpose()
    }

    fn worktree_row(&self, raw: RawRow) -> Result<WorktreeRow, StoreError> {
        let (run_id, state, record, landing, created_at_ms, updated_at_ms) = raw;
        let corrupt = |message: String| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("task worktree of run `{run_id}`"),
            message,
        };
        Ok(WorktreeRow {
            state: WorktreeState::parse(&state)
                .ok_or_else(|| corrupt(format!("unknown state `{state}`")))?,
            record: serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?,
            landing: landing
                .map(|l| serde_json::from_str(&l))
                .transpose()
                .map_err(|e| corrupt(e.to_string()))?,
            created_at_ms,
            updated_at_ms,
        })
    }
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::Mode;

    fn record(run_id: &str) -> WorktreeRecord {
        WorktreeRecord {
            run_id: run_id.into(),
            goal_id: "g".into(),
            mode: Mode::InPlace,
            user_workspace: "/ws".into(),
            user_goal: "/ws/kazi.toml".into(),
            workspace: "/ws".into(),
            goal_path: "/ws/kazi.toml".into(),
            git: None,
            created_at_ms: 5,
        }
    }

    #[test]
    fn worktrees_round_trip_and_change_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("kazi.db")).unwrap();
        assert_eq!(store.worktree("r1").unwrap(), None);
        store.record_worktree(&record("r1")).unwrap();
        store.record_worktree(&record("r2")).unwrap();
        let row = store.worktree("r1").unwrap().unwrap();
        assert_eq!(row.record, record("r1"));
        assert_eq!(row.state, WorktreeState::Active);
        store.set_worktree_state("r1", WorktreeState::Kept).unwrap();
        assert_eq!(
            store.worktree("r1").unwrap().unwrap().state,
            WorktreeState::Kept
        );
        // Recording again (a reopen) makes it active.
        store.record_worktree(&record("r1")).unwrap();
        assert_eq!(
            store.worktree("r1").unwrap().unwrap().state,
            WorktreeState::Active
        );
        assert_eq!(store.list_worktrees().unwrap().len(), 2);
        assert!(matches!(
            store.set_worktree_state("nope", WorktreeState::Released),
            Err(StoreError::UnknownRun { .. })
        ));
        assert_eq!(store.run_status("r1").unwrap(), None);
    }
}
