//! The read-model: every run, iteration, verdict, dispatch and event in one SQLite
//! database per user (SPEC §7). The loop writes each iteration in one short
//! transaction before it acts on the decision; `kazi runs` and `kazi show` read it
//! back. Several kazi processes may write the same database at once: WAL, a busy
//! timeout and `BEGIN IMMEDIATE` write transactions keep them from failing on each
//! other.

mod proposals;
mod read;
mod schema;
mod worktrees;

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::reconcile::{DispatchRow, Record};
use crate::run::{
    DispatchOutcome, DispatchRecord, Event, IterationRecord, RunStatus, RunSummary, Spent,
};

pub use proposals::{NewProposal, Proposal, ProposalStatus, Saved};
pub use schema::CURRENT_VERSION as SCHEMA_VERSION;
pub use worktrees::{WorktreeRow, WorktreeState};

/// How long a writer waits for another process's transaction before giving up. Long:
/// twenty runs on one database with a slow disk (fsync of tens of milliseconds) queue
/// behind each other's commits, and failing a run for a lock is worse than waiting.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The run database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// What can go wrong with the run database. Every message names the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to create the directory {} for the run database: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to open the run database {}: {source}; hint: point --db or KAZI_DB at another file", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the run database {} has schema version {found}, newer than this kazi understands ({supported}); hint: upgrade kazi, or point --db or KAZI_DB at another file",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("failed to migrate the run database {} to schema version {version}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error(
        "{} is not a kazi run database ({reason}); kazi leaves it untouched; hint: point --db or KAZI_DB at kazi's own database (default {})",
        path.display(),
        Store::default_path().display()
    )]
    NotKazi { path: PathBuf, reason: String },
    #[error("no run `{id}` in {}; hint: `kazi runs` lists the runs", path.display())]
    UnknownRun { path: PathBuf, id: String },
    #[error(
        "run id prefix `{prefix}` matches several runs in {}: {}; hint: give more of the id",
        path.display(),
        candidates.join(", ")
    )]
    AmbiguousRun {
        path: PathBuf,
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("iteration {index} of run `{run_id}` is already recorded in {}", path.display())]
    DuplicateIteration {
        path: PathBuf,
        run_id: String,
        index: u64,
    },
    #[error("failed to {action} in the run database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    #[error("the run database {} holds an unreadable {what}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        what: String,
        message: String,
    },
    #[error("no proposal `{reference}` in {}; hint: `kazi proposals` lists them", path.display())]
    UnknownProposal { path: PathBuf, reference: String },
    #[error(
        "proposal ref prefix `{prefix}` matches several proposals in {}: {}; hint: give more of the ref",
        path.display(),
        candidates.join(", ")
    )]
    AmbiguousProposal {
        path: PathBuf,
        prefix: String,
        candidates: Vec<String>,
    },
    #[error(
        "proposal `{reference}` is {status}; only a proposed one can be {action}{}",
        proposals::status_hint(*status, action, reference, goal_path.as_deref())
    )]
    ProposalStatus {
        path: PathBuf,
        reference: String,
        status: ProposalStatus,
        /// What was asked: `approved`, `rejected`, `drafted again`.
        action: &'static str,
        /// Where an approved proposal's goal file was written.
        goal_path: Option<String>,
    },
}

impl StoreError {
    /// Another connection held a lock for longer than we waited.
    fn is_busy(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. }
            | StoreError::Migrate { source, .. }
            | StoreError::Sqlite { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }
}

/// What the loop knows when a run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub goal_id: String,
    pub goal_path: String,
    pub workspace: String,
    pub goal_sha256: String,
    /// The goal file as it was sealed.
    pub goal_text: String,
    /// The seal: digests of the goal file and the protected paths.
    pub seal: serde_json::Value,
    pub profile: String,
    pub model: Option<String>,
    pub started_at_ms: i64,
}

/// An agent process as recorded before it ran its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRecord {
    pub pid: i32,
    /// Its process group (every process of the dispatch that did not leave it).
    pub pgid: i32,
    /// Its start time in clock ticks since boot, to tell it from a reused pid.
    pub start_ticks: Option<u64>,
}

/// A dispatch begun and never finished: a crash of kazi cut it off.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub row: i64,
    pub iteration: u64,
    /// What is known of it (outcome `interrupted`, no cost).
    pub record: DispatchRecord,
    /// Its agent process, if it got as far as starting.
    pub process: Option<ProcessRecord>,
}

/// A dispatch as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDispatch {
    /// The iteration that decided it.
    pub iteration: u64,
    pub record: DispatchRecord,
    /// The prompt the agent received (bounded), when recorded (kazi ≥ schema 3).
    pub prompt: Option<String>,
}

/// A run read back in full: enough to show it and to resume it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub summary: RunSummary,
    pub goal_sha256: String,
    pub goal_text: String,
    pub seal: serde_json::Value,
    pub profile: String,
    pub model: Option<String>,
    /// The loop state of the last recorded iteration; `Null` when there is none.
    pub last_state: serde_json::Value,
    /// Oldest first; each with the events recorded with it.
    pub iterations: Vec<IterationRecord>,
    /// With the index of the iteration that led to them, in the order recorded.
    pub dispatches: Vec<StoredDispatch>,
    /// Every event of the run (those of iterations and of dispatches), in the
    /// order recorded, with its iteration index.
    pub events: Vec<(u64, Event)>,
}

impl Store {
    /// `$KAZI_DB`, else `kazi/kazi.db` in the platform data directory
    /// (`~/.local/share/kazi/kazi.db` on Linux).
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("KAZI_DB").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        match dirs::data_dir() {
            Some(dir) => dir.join("kazi").join("kazi.db"),
            None => PathBuf::from(".kazi").join("kazi.db"),
        }
    }

    /// Open (creating it and its directory if needed) and migrate the database. An
    /// existing SQLite file that is not kazi's is refused, never converted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        // Setting up a fresh file races with other processes doing the same:
        // switching to WAL can answer "database is locked" without waiting on the
        // busy timeout. Retry for as long as the busy timeout would have waited.
        retry_busy(|| {
            store.check_is_kazi()?;
            store.configure()?;
            store.migrate()
        })?;
        Ok(store)
    }

    /// Like [`Store::open`], but `None` when the file does not exist: commands that
    /// change an existing record never create a database just to find it empty.
    pub fn open_existing(path: &Path) -> Result<Option<Store>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        Store::open(path).map(Some)
    }

    /// Open an existing database for reading only (`kazi runs`, `kazi show`, `kazi
    /// proposals`): `None` when the file does not exist; never creates, migrates or
    /// writes it, and refuses a file that is not a kazi database. A database of an
    /// older schema is read through a migrated copy in memory.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Ok(None);
        }
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        let version = store.check_is_kazi()?;
        if version == 0 {
            // An empty database: what a kazi killed while creating it leaves behind.
            // Nothing to read, and nothing is written to it.
            return Ok(None);
        }
        if version < schema::CURRENT_VERSION {
            let mut memory = Connection::open_in_memory().map_err(open_err)?;
            {
                let backup =
                    rusqlite::backup::Backup::new(&store.conn, &mut memory).map_err(open_err)?;
                backup
                    .run_to_completion(1024, Duration::ZERO, None)
                    .map_err(open_err)?;
            }
            store.conn = memory;
            store.migrate()?;
        }
        Ok(Some(store))
    }

    /// Check that the database is kazi's (or empty) and not newer than this kazi;
    /// returns its schema version (0 for an empty database).
    fn check_is_kazi(&self) -> Result<i64, StoreError> {
        // SQLite takes a file shorter than its header for an empty database and
        // would overwrite it: a non-empty file must start with the SQLite header.
        let mut head = [0u8; 16];
        let len = std::fs::File::open(&self.path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if len > 0 && (len < head.len() || head != *b"SQLite format 3\0") {
            return Err(StoreError::NotKazi {
                path: self.path.clone(),
                reason: "not an SQLite database".into(),
            });
        }
        let not_kazi = |reason: String| StoreError::NotKazi {
            path: self.path.clone(),
            reason,
        };
        // One read transaction: the version and the tables from the same snapshot (a
        // process migrating at the same moment commits both at once).
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?;
        let version = match Self::user_version(&snapshot) {
            Ok(v) => v,
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
                return Err(not_kazi("not an SQLite database".into()));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if version > schema::CURRENT_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: schema::CURRENT_VERSION,
            });
        }
        let tables: Vec<String> = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?;
        drop(snapshot);
        let has_runs = tables.iter().any(|t| t == "runs");
        match (version, tables.is_empty()) {
            // Empty: a new database (or one a killed kazi began); a reader finds no runs.
            (0, true) => Ok(0),
            (0, false) => Err(not_kazi(format!(
                "an SQLite database with other tables: {}",
                tables.join(", ")
            ))),
            (_, _) if !has_runs => Err(not_kazi("it has no `runs` table".into())),
            (v, _) => Ok(v),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        let open_err = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::debug!(path = %self.path.display(), mode, "the run database is not in WAL mode");
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(open_err)?;
        Ok(())
    }

    fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let newer = |found| StoreError::NewerSchema {
            path: path.clone(),
            found,
            supported: schema::CURRENT_VERSION,
        };
        let found = Self::user_version(&self.conn).map_err(open_err)?;
        if found > schema::CURRENT_VERSION {
            return Err(newer(found));
        }
        if found == schema::CURRENT_VERSION {
            return Ok(());
        }
        // Migrations rebuild tables: foreign keys must be off outside the transaction
        // (dropping a parent table would cascade into its children otherwise).
        self.conn
            .execute_batch("PRAGMA foreign_keys = OFF;")
            .map_err(open_err)?;
        let result = self.migrate_locked();
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        result
    }

    fn migrate_locked(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Another process may be migrating too: take the write lock, then look again.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_err)?;
        let found = Self::user_version(&tx).map_err(open_err)?;
        if found > schema::CURRENT_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.clone(),
                found,
                supported: schema::CURRENT_VERSION,
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            let migrate_err = |source| StoreError::Migrate {
                path: path.clone(),
                version,
                source,
            };
            tx.execute_batch(sql).map_err(migrate_err)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(migrate_err)?;
        }
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(open_err)?;
        if let Some(table) = broken {
            return Err(StoreError::Corrupt {
                path: path.clone(),
                what: format!("table `{table}` after migration"),
                message: "a foreign key points nowhere".into(),
            });
        }
        tx.commit().map_err(|source| StoreError::Migrate {
            path: path.clone(),
            version: schema::CURRENT_VERSION,
            source,
        })
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction and commit it: the one way the
    /// store writes.
    fn write<T>(
        &mut self,
        action: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action,
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let value = f(&tx)?;
        tx.commit().map_err(err)?;
        Ok(value)
    }

    fn sql(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// Record a new run as `running`, driven by this process, and return its id:
    /// `r<UTC date>-<time>-<4 hex>`, sortable by start time and unique in this database.
    pub fn create_run(&mut self, new: &NewRun) -> Result<String, StoreError> {
        let seal = new.seal.to_string();
        let (pid, start) = driver_identity();
        let path = self.path.clone();
        let mut attempt = 0u32;
        loop {
            let id = run_id(new.started_at_ms, attempt);
            let inserted = retry_busy(|| {
                self.write("record a new run", |tx| {
                    tx.execute(
                        "INSERT INTO runs (id, goal_id, goal_path, workspace, goal_sha256, goal_text,
                                           seal, profile, model, status, started_at_ms,
                                           updated_at_ms, driver_pid, driver_start)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running', ?10, ?11, ?12, ?13)",
                        params![
                            id,
                            new.goal_id,
                            new.goal_path,
                            new.workspace,
                            new.goal_sha256,
                            new.goal_text,
                            seal,
                            new.profile,
                            new.model,
                            new.started_at_ms,
                            now_ms(),
                            pid,
                            start,
                        ],
                    )
                    .map_err(|source| StoreError::Sqlite {
                        path: path.clone(),
                        action: "record a new run",
                        source,
                    })
                })
            });
            match inserted {
                Ok(_) => return Ok(id),
                // The same second and the same 4 hex digits: draw again.
                Err(StoreError::Sqlite { source, .. })
                    if is_constraint(&source) && attempt < 64 =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Write what the loop asked to persist, in one transaction. `current` is the
    /// row of the dispatch this process started last (set by `DispatchStarted`).
    pub fn persist(
        &mut self,
        run_id: &str,
        record: &Record,
        current: &mut Option<i64>,
    ) -> Result<(), StoreError> {
        match record {
            Record::Iteration(it) => self.record_iteration(run_id, it),
            Record::DispatchStarted {
                iteration,
                prompt,
                record,
                spent,
                state,
            } => {
                let row = self.begin_dispatch(run_id, *iteration, prompt, record, spent, state)?;
                *current = Some(row);
                Ok(())
            }
            Record::DispatchFinished {
                row,
                iteration,
                record,
                events,
                spent,
                state,
            } => {
                let row = match row {
                    DispatchRow::Row(r) => Some(*r),
                    DispatchRow::Current => current.take(),
                };
                self.finish_dispatch(run_id, row, *iteration, record, events, spent, state)
            }
            Record::Finished {
                status,
                reason,
                events,
                spent,
                state,
            } => self.finish_run(
                run_id,
                *status,
                reason.as_deref(),
                events,
                spent,
                state,
                now_ms(),
            ),
        }
    }

    /// Write one iteration in one transaction: the iteration (decision, loop state,
    /// counters), a verdict row per predicate, its events, and the run's counters
    /// and last state.
    pub fn record_iteration(
        &mut self,
        run_id: &str,
        it: &IterationRecord,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record an iteration",
            source,
        };
        let decision_json =
            serde_json::to_string(&it.decision).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                what: "decision".into(),
                message: e.to_string(),
            })?;
        let state = it.state.to_string();
        let now = now_ms();
        let s = &it.spent;
        self.write("record an iteration", |tx| {
            if update_counters(tx, run_id, s, Some(&state), now).map_err(err)? == 0 {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    id: run_id.to_owned(),
                });
            }
            let inserted = tx.execute(
                "INSERT INTO iterations (run_id, idx, decision, decision_json, state, iterations,
                                         dispatches, tokens, cost_usd, wall_clock_ms,
                                         started_at_ms, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    run_id,
                    int(it.index),
                    it.decision.kind(),
                    decision_json,
                    state,
                    int(s.iterations),
                    int(s.dispatches),
                    int(s.tokens),
                    real(s.cost_usd),
                    int(s.wall_clock_ms),
                    it.started_at_ms,
                    now,
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => {
                    return Err(StoreError::DuplicateIteration {
                        path: path.clone(),
                        run_id: run_id.to_owned(),
                        index: it.index,
                    });
                }
                Err(e) => return Err(err(e)),
            }
            let mut verdict = tx
                .prepare_cached(
                    "INSERT INTO verdicts (run_id, iteration, position, predicate, state, outcome,
                                           summary, details, diagnostics, score, metrics,
                                           duration_ms, attempts, quarantined)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(err)?;
            for (position, r) in it.results.iter().enumerate() {
                let v = &r.verdict;
                let metrics: std::collections::BTreeMap<&String, &f64> =
                    v.metrics.iter().filter(|(_, x)| x.is_finite()).collect();
                verdict
                    .execute(params![
                        run_id,
                        int(it.index),
                        position as i64,
                        r.id,
                        r.state.as_str(),
                        v.outcome.as_str(),
                        v.summary,
                        v.details,
                        json_text(&v.diagnostics),
                        v.score.filter(|x| x.is_finite()),
                        json_text(&metrics),
                        int(r.duration_ms),
                        i64::from(r.attempts),
                        r.quarantined,
                    ])
                    .map_err(err)?;
            }
            insert_events(tx, run_id, it.index, "iteration", &it.events, now).map_err(err)
        })
    }

    /// Record a dispatch *before* its agent is spawned (write-ahead): the row, the
    /// prompt (bounded) and the counters, which already count it against
    /// `max_dispatches`. Returns the row, for [`Store::set_dispatch_process`] and
    /// [`Store::finish_dispatch`].
    pub fn begin_dispatch(
        &mut self,
        run_id: &str,
        iteration: u64,
        prompt: &str,
        d: &DispatchRecord,
        spent: &Spent,
        state: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record a dispatch before it starts",
            source,
        };
        let now = now_ms();
        let state = (!state.is_null()).then(|| state.to_string());
        self.write("record a dispatch before it starts", |tx| {
            if update_counters(tx, run_id, spent, state.as_deref(), now).map_err(err)? == 0 {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    id: run_id.to_owned(),
                });
            }
            tx.execute(
                "INSERT INTO dispatches (run_id, iteration, profile, model, prompt_sha256,
                                         prompt_bytes, predicates, duration_ms, outcome,
                                         permission_denials, changed_files, recorded_at_ms,
                                         finished, started_at_ms, prompt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 'running', '[]', '[]', ?8, 0, ?8, ?9)",
                params![
                    run_id,
                    int(iteration),
                    d.profile,
                    d.model,
                    d.prompt_sha256,
                    int(d.prompt_bytes),
                    json_text(&d.predicates),
                    now,
                    prompt,
                ],
            )
            .map_err(err)?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Record the agent process of a dispatch as soon as it exists (before it runs
    /// its program), so a resumed run can find it and end it.
    pub fn set_dispatch_process(
        &mut self,
        row: i64,
        process: &ProcessRecord,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.write("record the agent's process", |tx| {
            tx.execute(
                "UPDATE dispatches SET pid = ?2, pgid = ?3, process_start = ?4 WHERE id = ?1",
                params![row, process.pid, process.pgid, process.start_ticks.map(int)],
            )
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                action: "record the agent's process",
                source,
            })?;
            Ok(())
        })
    }

    /// Finish a dispatch in one transaction: its row (or a new one when it was never
    /// begun), the events it raised and the run's counters after it.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_dispatch(
        &mut self,
        run_id: &str,
        row: Option<i64>,
        iteration: u64,
        d: &DispatchRecord,
        events: &[Event],
        spent: &Spent,
        state: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record a dispatch",
            source,
        };
        let now = now_ms();
        let state = (!state.is_null()).then(|| state.to_string());
        self.write("record a dispatch", |tx| {
            if update_counters(tx, run_id, spent, state.as_deref(), now).map_err(err)? == 0 {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    id: run_id.to_owned(),
                });
            }
            let (iteration_i, prompt_bytes) = (int(iteration), int(d.prompt_bytes));
            let predicates = json_text(&d.predicates);
            let (tokens_in, tokens_out, tokens_cached) = (
                d.tokens_in.map(int),
                d.tokens_out.map(int),
                d.tokens_cached.map(int),
            );
            let cost = d.cost_usd.filter(|x| !x.is_nan());
            let duration = int(d.duration_ms);
            let denials = json_text(&d.permission_denials);
            let changed = json_text(&d.changed_files);
            let reverted = json_text(&d.reverted);
            let values: [&dyn rusqlite::ToSql; 21] = [
                &run_id,
                &iteration_i,
                &d.profile,
                &d.model,
                &d.prompt_sha256,
                &prompt_bytes,
                &predicates,
                &d.exit_code,
                &duration,
                &tokens_in,
                &tokens_out,
                &tokens_cached,
                &cost,
                &d.session_id,
                &d.outcome.as_str(),
                &d.message,
                &denials,
                &changed,
                &now,
                &reverted,
                &d.diff,
            ];
            let updated = match row {
                Some(row) => {
                    let mut with_row = values.to_vec();
                    with_row.push(&row);
                    tx.execute(
                        "UPDATE dispatches SET profile = ?3, model = ?4, prompt_sha256 = ?5,
                                prompt_bytes = ?6, predicates = ?7, exit_code = ?8,
                                duration_ms = ?9, tokens_in = ?10, tokens_out = ?11,
                                tokens_cached = ?12, cost_usd = ?13, session_id = ?14,
                                outcome = ?15, message = ?16, permission_denials = ?17,
                                changed_files = ?18, recorded_at_ms = ?19, finished = 1,
                                reverted = ?20, diff = ?21
                         WHERE id = ?22 AND run_id = ?1 AND iteration = ?2",
                        &*with_row,
                    )
                    .map_err(err)?
                }
                None => 0,
            };
            if updated == 0 {
                tx.execute(
                    "INSERT INTO dispatches (run_id, iteration, profile, model, prompt_sha256,
                                             prompt_bytes, predicates, exit_code, duration_ms,
                                             tokens_in, tokens_out, tokens_cached, cost_usd,
                                             session_id, outcome, message, permission_denials,
                                             changed_files, recorded_at_ms, finished,
                                             started_at_ms, reverted, diff)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17, ?18, ?19, 1, ?19, ?20, ?21)",
                    &values[..],
                )
                .map_err(err)?;
            }
            insert_events(tx, run_id, iteration, "dispatch", events, now).map_err(err)
        })
    }

    /// Mark a run as ended with `status` (and why), with its final counters, state
    /// and the events of its ending (landing).
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &mut self,
        run_id: &str,
        status: RunStatus,
        reason: Option<&str>,
        events: &[Event],
        spent: &Spent,
        state: &serde_json::Value,
        finished_at_ms: i64,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            action: "record the end of a run",
            source,
        };
        let now = now_ms();
        let state = (!state.is_null()).then(|| state.to_string());
        self.write("record the end of a run", |tx| {
            if update_counters(tx, run_id, spent, state.as_deref(), now).map_err(err)? == 0 {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    id: run_id.to_owned(),
                });
            }
            tx.execute(
                "UPDATE runs SET status = ?2, reason = ?3, finished_at_ms = ?4 WHERE id = ?1",
                params![
                    run_id,
                    status.as_str(),
                    reason,
                    (status != RunStatus::Running).then_some(finished_at_ms),
                ],
            )
            .map_err(err)?;
            insert_events(tx, run_id, spent.iterations, "iteration", events, now).map_err(err)
        })
    }

    /// Mark a run as `running` again under this process (clearing its reason and end
    /// time), for `kazi run --resume`. `previous` is the driver the caller saw (from
    /// [`Store::run_driver`]) and found dead: the claim succeeds only if it is still
    /// the recorded one, so two processes resuming at once cannot both drive the run.
    /// The counters stay as they are: a resumed run does not get a fresh budget.
    pub fn resume_run(
        &mut self,
        run_id: &str,
        previous: Option<(i32, Option<u64>)>,
    ) -> Result<bool, StoreError> {
        let (pid, start) = driver_identity();
        let (old_pid, old_start) = match previous {
            Some((p, s)) => (Some(p), s.map(int)),
            None => (None, None),
        };
        let path = self.path.clone();
        let n = self.write("resume a run", |tx| {
            let exists: bool = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [run_id], |_| Ok(true))
                .optional()
                .map_err(|source| StoreError::Sqlite {
                    path: path.clone(),
                    action: "resume a run",
                    source,
                })?
                .unwrap_or(false);
            if !exists {
                return Err(StoreError::UnknownRun {
                    path: path.clone(),
                    id: run_id.to_owned(),
                });
            }
            tx.execute(
                "UPDATE runs SET status = 'running', reason = NULL, finished_at_ms = NULL,
                        updated_at_ms = ?2, driver_pid = ?3, driver_start = ?4
                 WHERE id = ?1 AND driver_pid IS ?5 AND driver_start IS ?6",
                params![run_id, now_ms(), pid, start, old_pid, old_start],
            )
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                action: "resume a run",
                source,
            })
        })?;
        Ok(n == 1)
    }

    /// Record the seal a run starts from (after its workspace was prepared).
    pub fn set_run_seal(
        &mut self,
        run_id: &str,
        seal: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let (text, goal) = (
            seal.to_string(),
            seal.pointer("/entries/goal")
                .and_then(|g| g.as_str())
                .map(str::to_owned),
        );
        self.write("record a run's seal", |tx| {
            tx.execute(
                "UPDATE runs SET seal = ?2, goal_sha256 = COALESCE(?3, goal_sha256) WHERE id = ?1",
                params![run_id, text, goal],
            )
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                action: "record a run's seal",
                source,
            })?;
            Ok(())
        })
    }

    /// Forget a run that never started (its workspace was refused): it would only
    /// clutter `kazi runs`.
    pub fn discard_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.write("discard a run that never started", |tx| {
            tx.execute("DELETE FROM runs WHERE id = ?1", [run_id])
                .map_err(|source| StoreError::Sqlite {
                    path: path.clone(),
                    action: "discard a run that never started",
                    source,
                })?;
            Ok(())
        })
    }

    /// Dispatches of `run_id` begun and never finished (a crash cut them off).
    pub fn unfinished_dispatches(&self, run_id: &str) -> Result<Vec<Unfinished>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, iteration, profile, model, prompt_sha256, prompt_bytes, predicates,
                        pid, pgid, process_start, started_at_ms
                 FROM dispatches WHERE run_id = ?1 AND finished = 0 ORDER BY id",
            )
            .map_err(self.sql("read the unfinished dispatches"))?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<i32>>(7)?,
                    r.get::<_, Option<i32>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("read the unfinished dispatches"))?;
        let mut out = Vec::new();
        for (row, iteration, profile, model, digest, bytes, predicates, pid, pgid, start, at) in
            rows
        {
            let predicates: Vec<String> =
                serde_json::from_str(&predicates).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("dispatch {row}"),
                    message: e.to_string(),
                })?;
            let mut record = DispatchRecord::new(profile, model, "", &predicates);
            record.prompt_sha256 = digest;
            record.prompt_bytes = uint_i(bytes);
            record.outcome = DispatchOutcome::Interrupted;
            record.duration_ms = at.map_or(0, |at| uint_i(now_ms() - at));
            out.push(Unfinished {
                row,
                iteration: uint_i(iteration),
                record,
                process: match (pid, pgid) {
                    (Some(pid), Some(pgid)) => Some(ProcessRecord {
                        pid,
                        pgid,
                        start_ticks: start.map(uint_i),
                    }),
                    _ => None,
                },
            });
        }
        Ok(out)
    }

    /// The process recorded as driving `run_id` (pid and start time), if any.
    pub fn run_driver(&self, run_id: &str) -> Result<Option<(i32, Option<u64>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT driver_pid, driver_start FROM runs WHERE id = ?1",
                [run_id],
                |r| Ok((r.get::<_, Option<i32>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .optional()
            .map(|o| o.and_then(|(pid, start)| pid.map(|p| (p, start.map(uint_i)))))
            .map_err(self.sql("read a run's driver"))
    }

    /// The full id of the run `id_or_prefix` names: an exact id, or a prefix that
    /// matches exactly one run.
    pub fn resolve_run_id(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let unknown = || StoreError::UnknownRun {
            path: self.path.clone(),
            id: id_or_prefix.to_owned(),
        };
        if id_or_prefix.is_empty() {
            return Err(unknown());
        }
        let exact: Option<String> = self
            .conn
            .query_row("SELECT id FROM runs WHERE id = ?1", [id_or_prefix], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql("look up a run"))?;
        if let Some(id) = exact {
            return Ok(id);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1
                 ORDER BY id DESC LIMIT 6",
            )
            .map_err(self.sql("look up a run"))?;
        let mut candidates = stmt
            .query_map([id_or_prefix], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.sql("look up a run"))?;
        match candidates.len() {
            0 => Err(unknown()),
            1 => Ok(candidates.remove(0)),
            _ => {
                if candidates.len() > 5 {
                    candidates.truncate(5);
                    candidates.push("…".into());
                }
                Err(StoreError::AmbiguousRun {
                    path: self.path.clone(),
                    prefix: id_or_prefix.to_owned(),
                    candidates,
                })
            }
        }
    }
}

fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    run_id: &str,
    iteration: u64,
    source: &str,
    events: &[Event],
    now: i64,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (run_id, iteration, source, kind, predicate, message, recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in events {
        stmt.execute(params![
            run_id,
            int(iteration),
            source,
            e.kind.as_str(),
            e.predicate,
            e.message,
            now
        ])?;
    }
    Ok(())
}

fn update_counters(
    tx: &rusqlite::Transaction<'_>,
    run_id: &str,
    s: &Spent,
    state: Option<&str>,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE runs SET dispatches = ?2, tokens = ?3, cost_usd = ?4, wall_clock_ms = ?5,
                iterations = MAX(iterations, ?6), updated_at_ms = ?7,
                unknown_cost_dispatches = ?8, last_state = COALESCE(?9, last_state)
         WHERE id = ?1",
        params![
            run_id,
            int(s.dispatches),
            int(s.tokens),
            real(s.cost_usd),
            int(s.wall_clock_ms),
            int(s.iterations),
            now,
            int(s.unknown_cost_dispatches),
            state,
        ],
    )
}

/// Retry `f` while the database answers "busy" or "locked" (another process holds
/// the write lock longer than the busy timeout, or WAL is being set up), with
/// backoff, for up to [`BUSY_TIMEOUT`] more.
fn retry_busy<T>(mut f: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// This process's pid and start time (clock ticks since boot, from `/proc`), which
/// together name it even after its pid is reused.
fn driver_identity() -> (i32, Option<i64>) {
    let pid = std::process::id() as i32;
    (
        pid,
        crate::process::proc_stat(pid).map(|s| int(s.start_time)),
    )
}

/// Whether the process recorded as `(pid, start)` is still alive (the same one: a
/// live process with that pid but another start time is not).
pub fn process_alive(pid: i32, start: Option<u64>) -> bool {
    match (crate::process::proc_stat(pid), start) {
        (Some(s), Some(start)) => s.start_time == start && s.state != 'Z',
        (Some(s), None) => s.state != 'Z',
        (None, _) => false,
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

/// SQLite integers are signed; a counter past `i64::MAX` is saturated.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored integer as a counter; a negative one reads as 0.
fn uint_i(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// SQLite stores NaN as NULL; a NOT NULL real gets 0 instead.
fn real(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise to JSON")
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time in milliseconds since the epoch as UTC RFC 3339 to the second
/// (`2026-11-24T00:56:00Z`).
pub fn utc_time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `r20261124-005600-3f2a`: the UTC start time, then 4 random hex digits.
fn run_id(started_at_ms: i64, attempt: u32) -> String {
    let stamp: String = utc_time(started_at_ms)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (date, time) = stamp.split_at(8.min(stamp.len()));
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u32(attempt);
    format!("r{date}-{time}-{:04x}", h.finish() & 0xffff)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::run::{Cause, Decision, DispatchOutcome, EventKind, PredicateResult, State};
    use crate::verdict::{Diagnostic, Outcome, Verdict};

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("kazi.db");
        (dir, path)
    }

    fn new_run(goal_id: &str, started_at_ms: i64) -> NewRun {
        NewRun {
            goal_id: goal_id.into(),
            goal_path: format!("goals/{goal_id}.toml"),
            workspace: "/tmp/ws".into(),
            goal_sha256: "ab".repeat(32),
            goal_text: format!("id = \"{goal_id}\"\n"),
            seal: serde_json::json!({ "goal": "ab12", "protected": { "tests/golden/a": "cd34" } }),
            profile: "claude".into(),
            model: Some("claude-sonnet-4-5".into()),
            started_at_ms,
        }
    }

    fn verdict(outcome: Outcome, summary: &str) -> Verdict {
        Verdict {
            outcome,
            summary: summary.into(),
            details: String::new(),
            diagnostics: Vec::new(),
            score: None,
            metrics: BTreeMap::new(),
        }
    }

    fn iteration(index: u64, decision: Decision) -> IterationRecord {
        let mut metrics = BTreeMap::new();
        metrics.insert("tests_passed".to_owned(), 41.0);
        metrics.insert("tests_failed".to_owned(), 1.0);
        IterationRecord {
            index,
            results: vec![
                PredicateResult {
                    id: "tests-pass".into(),
                    state: State::Fail,
                    verdict: Verdict {
                        outcome: Outcome::Fail,
                        summary: "1 of 42 tests failed".into(),
                        details: "thread 'x' panicked\nline two".into(),
                        diagnostics: vec![
                            Diagnostic {
                                file: Some("src/lib.rs".into()),
                                line: Some(12),
                                message: "assertion failed".into(),
                            },
                            Diagnostic {
                                file: None,
                                line: None,
                                message: "no place".into(),
                            },
                        ],
                        score: Some(0.976),
                        metrics,
                    },
                    duration_ms: 1234,
                    attempts: 3,
                    quarantined: false,
                },
                PredicateResult {
                    id: "healthz".into(),
                    state: State::Unknown,
                    verdict: verdict(Outcome::Pass, "200 OK"),
                    duration_ms: 5,
                    attempts: 2,
                    quarantined: true,
                },
                PredicateResult {
                    id: "a-file".into(),
                    state: State::Error,
                    verdict: verdict(Outcome::Error, "no such file"),
                    duration_ms: 0,
                    attempts: 1,
                    quarantined: false,
                },
            ],
            decision,
            events: vec![
                Event {
                    kind: EventKind::Regression,
                    predicate: Some("tests-pass".into()),
                    message: "was pass, now fail".into(),
                },
                Event {
                    kind: EventKind::Quarantine,
                    predicate: None,
                    message: "healthz is flaky".into(),
                },
            ],
            spent: Spent {
                iterations: index,
                dispatches: index - 1,
                tokens: 1000 * index,
                cost_usd: 0.25 * index as f64,
                wall_clock_ms: 60_000 * index,
                unknown_cost_dispatches: 0,
            },
            state: serde_json::json!({ "quarantine": { "healthz": 1 }, "best": { "tests_passed": 41.0 } }),
            started_at_ms: 1_764_000_000_000 + index as i64 * 60_000,
        }
    }

    fn dispatch(full: bool) -> DispatchRecord {
        DispatchRecord {
            profile: "claude".into(),
            model: full.then(|| "claude-sonnet-4-5".into()),
            prompt_sha256: "cd".repeat(32),
            prompt_bytes: 2048,
            predicates: vec!["tests-pass".into()],
            exit_code: full.then_some(0),
            duration_ms: 61_000,
            tokens_in: full.then_some(1200),
            tokens_out: full.then_some(300),
            tokens_cached: None,
            cost_usd: full.then_some(0.125),
            session_id: full.then(|| "sess-1".into()),
            outcome: if full {
                DispatchOutcome::Completed
            } else {
                DispatchOutcome::TimedOut
            },
            message: full.then(|| "fixed the assertion".into()),
            permission_denials: if full {
                vec!["Bash(rm -rf /)".into()]
            } else {
                vec![]
            },
            changed_files: if full {
                vec!["src/lib.rs".into()]
            } else {
                vec![]
            },
            reverted: if full {
                vec!["conftest.py: it is outside `writable` (`src/`)".into()]
            } else {
                vec![]
            },
            diff: full.then(|| "--- a/src/lib.rs\n+++ b/src/lib.rs\n".into()),
        }
    }

    #[test]
    fn open_creates_the_directory_and_migrates_an_empty_database() {
        let (_dir, path) = temp_db();
        let store = Store::open(&path).unwrap();
        assert!(path.exists());
        assert_eq!(Store::user_version(&store.conn).unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        for table in [
            "runs",
            "iterations",
            "verdicts",
            "dispatches",
            "events",
            "proposals",
        ] {
            let n: i64 = store
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "table {table}");
        }
        assert!(store.list_runs(10).unwrap().is_empty());
    }

    #[test]
    fn reopening_keeps_the_data_and_the_schema_version() {
        let (_dir, path) = temp_db();
        let id = {
            let mut store = Store::open(&path).unwrap();
            store.create_run(&new_run("g", 1_764_000_000_000)).unwrap()
        };
        let store = Store::open(&path).unwrap();
        assert_eq!(Store::user_version(&store.conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(store.list_runs(10).unwrap()[0].id, id);
    }

    #[test]
    fn open_existing_does_not_create_a_database() {
        let (_dir, path) = temp_db();
        assert!(Store::open_existing(&path).unwrap().is_none());
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }

    #[test]
    fn a_database_from_a_newer_kazi_is_refused() {
        let (_dir, path) = temp_db();
        drop(Store::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1)
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("newer than this kazi"), "{msg}");
        assert!(msg.contains("hint: upgrade kazi"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error_naming_it() {
        let (_dir, path) = temp_db();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "this is not sqlite, just some text that is long enough ......................................................").unwrap();
        let msg = Store::open(&path).unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[test]
    fn run_ids_are_short_sortable_and_unique() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        // 2025-11-24T16:00:00Z
        let start = 1_764_000_000_000;
        let ids: Vec<String> = (0..50)
            .map(|_| store.create_run(&new_run("g", start)).unwrap())
            .collect();
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert!(id.starts_with("r20251124-160000-"), "{id}");
            assert_eq!(id.len(), "r20251124-160000-3f2a".len(), "{id}");
        }
        let later = store.create_run(&new_run("g", start + 1000)).unwrap();
        assert!(ids.iter().all(|id| *id < later));
    }

    #[test]
    fn every_record_round_trips() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        let new = new_run("healthz", 1_764_000_000_000);
        let id = store.create_run(&new).unwrap();

        let fresh = store.load_run(&id).unwrap();
        assert_eq!(fresh.summary.status, RunStatus::Running);
        assert_eq!(fresh.last_state, serde_json::Value::Null);
        assert!(fresh.iterations.is_empty());

        let decisions = [
            Decision::Dispatch {
                predicates: vec!["tests-pass".into()],
            },
            Decision::Wait {
                reason: "live predicates polling".into(),
            },
            Decision::Deploy,
            Decision::Stuck {
                cause: Cause::AgentError,
                reason: "not logged in".into(),
            },
        ];
        let mut its = Vec::new();
        for (i, d) in decisions.into_iter().enumerate() {
            let it = iteration(i as u64 + 1, d);
            store.record_iteration(&id, &it).unwrap();
            its.push(it);
        }
        let agent_events = vec![Event {
            kind: EventKind::Scope,
            predicate: None,
            message: "changed README.md outside writable".into(),
        }];
        let spent1 = Spent {
            iterations: 1,
            dispatches: 1,
            tokens: 1500,
            cost_usd: 0.125,
            wall_clock_ms: 61_000,
            unknown_cost_dispatches: 0,
        };
        store
            .finish_dispatch(
                &id,
                None,
                1,
                &dispatch(true),
                &agent_events,
                &spent1,
                &serde_json::Value::Null,
            )
            .unwrap();
        store
            .finish_dispatch(
                &id,
                None,
                2,
                &dispatch(false),
                &[],
                &spent1,
                &serde_json::Value::Null,
            )
            .unwrap();
        let last = Spent {
            iterations: 4,
            dispatches: 2,
            tokens: 4200,
            cost_usd: 1.5,
            wall_clock_ms: 250_000,
            unknown_cost_dispatches: 0,
        };
        store
            .finish_run(
                &id,
                RunStatus::Stuck,
                Some("agent_error: not logged in"),
                &[],
                &last,
                &serde_json::Value::Null,
                1_764_000_300_000,
            )
            .unwrap();

        let run = store.load_run(&id).unwrap();
        assert_eq!(run.iterations, its);
        let dispatches: Vec<(u64, DispatchRecord)> = run
            .dispatches
            .iter()
            .map(|d| (d.iteration, d.record.clone()))
            .collect();
        assert_eq!(dispatches, vec![(1, dispatch(true)), (2, dispatch(false))]);
        assert_eq!(run.goal_sha256, new.goal_sha256);
        assert_eq!(run.goal_text, new.goal_text);
        assert_eq!(run.seal, new.seal);
        assert_eq!(run.profile, "claude");
        assert_eq!(run.model, new.model);
        assert_eq!(run.last_state, its[3].state);
        // Every event, in order: two per iteration, the dispatch's after iteration 4's.
        assert_eq!(run.events.len(), 9);
        assert_eq!(run.events[0], (1, its[0].events[0].clone()));
        assert_eq!(run.events[8], (1, agent_events[0].clone()));
        let s = &run.summary;
        assert_eq!(s.id, id);
        assert_eq!(s.goal_id, "healthz");
        assert_eq!(s.goal_path, "goals/healthz.toml");
        assert_eq!(s.workspace, "/tmp/ws");
        assert_eq!(s.status, RunStatus::Stuck);
        assert_eq!(s.reason.as_deref(), Some("agent_error: not logged in"));
        assert_eq!(s.iterations, 4);
        assert_eq!(s.spent, last);
        assert_eq!(s.started_at_ms, 1_764_000_000_000);
        assert_eq!(s.finished_at_ms, Some(1_764_000_300_000));
        assert_eq!(store.list_runs(5).unwrap(), vec![s.clone()]);

        // A model-less run with no iterations.
        let mut bare = new_run("bare", 1_764_000_000_001);
        bare.model = None;
        bare.seal = serde_json::json!({});
        let bare_id = store.create_run(&bare).unwrap();
        let run = store.load_run(&bare_id).unwrap();
        assert_eq!(run.model, None);
        assert_eq!(run.summary.reason, None);
        assert_eq!(run.summary.finished_at_ms, None);
        assert_eq!(run.summary.spent, Spent::default());
    }

    #[test]
    fn resume_reopens_a_run_and_keeps_its_counters() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        let id = store.create_run(&new_run("g", 1)).unwrap();
        let it = iteration(1, Decision::Interrupted);
        store.record_iteration(&id, &it).unwrap();
        store
            .finish_run(
                &id,
                RunStatus::Interrupted,
                Some("ctrl-c"),
                &[],
                &it.spent,
                &serde_json::Value::Null,
                2,
            )
            .unwrap();
        let driver = store.run_driver(&id).unwrap();
        assert_eq!(driver.map(|d| d.0), Some(std::process::id() as i32));
        assert!(store.resume_run(&id, driver).unwrap());
        // A claim made on the strength of another (stale) driver loses.
        assert!(!store.resume_run(&id, Some((1, Some(1)))).unwrap());
        let s = store.load_run(&id).unwrap().summary;
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.reason, None);
        assert_eq!(s.finished_at_ms, None);
        assert_eq!(s.spent, it.spent);
    }

    #[test]
    fn writes_for_an_unknown_run_or_a_repeated_iteration_are_refused() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        let it = iteration(1, Decision::Converged);
        let err = store.record_iteration("r-nope", &it).unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
        let err = store
            .finish_dispatch(
                "r-nope",
                None,
                1,
                &dispatch(true),
                &[],
                &Spent::default(),
                &serde_json::Value::Null,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
        let err = store
            .finish_run(
                "r-nope",
                RunStatus::Converged,
                None,
                &[],
                &Spent::default(),
                &serde_json::Value::Null,
                0,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");

        let id = store.create_run(&new_run("g", 1)).unwrap();
        store.record_iteration(&id, &it).unwrap();
        let err = store.record_iteration(&id, &it).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateIteration { index: 1, .. }),
            "{err}"
        );
        // The failed transaction left nothing behind.
        let run = store.load_run(&id).unwrap();
        assert_eq!(run.iterations.len(), 1);
        assert_eq!(run.events.len(), 2);
    }

    #[test]
    fn load_run_accepts_a_unique_prefix_and_names_ambiguous_ones() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        let a = store.create_run(&new_run("a", 1_764_000_000_000)).unwrap();
        let b = store.create_run(&new_run("b", 1_764_000_000_000)).unwrap();
        let c = store.create_run(&new_run("c", 1_764_100_000_000)).unwrap();

        assert_eq!(store.load_run(&c[..10]).unwrap().summary.id, c);
        assert_eq!(store.load_run(&a).unwrap().summary.goal_id, "a");

        let err = store.load_run("r20251124-16").unwrap_err();
        match &err {
            StoreError::AmbiguousRun { candidates, .. } => {
                assert!(candidates.contains(&a) && candidates.contains(&b), "{err}");
            }
            other => panic!("expected an ambiguous prefix, got {other}"),
        }
        assert!(err.to_string().contains("hint: give more of the id"));

        let err = store.load_run("r1999").unwrap_err();
        assert!(matches!(err, StoreError::UnknownRun { .. }));
        let msg = err.to_string();
        assert!(msg.contains("no run `r1999`"), "{msg}");
        assert!(msg.contains("hint: `kazi runs` lists the runs"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(matches!(
            store.load_run("").unwrap_err(),
            StoreError::UnknownRun { .. }
        ));
        // `%` and `_` are not wildcards.
        assert!(matches!(
            store.load_run("r%").unwrap_err(),
            StoreError::UnknownRun { .. }
        ));
    }

    #[test]
    fn list_runs_is_newest_first_and_limited() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        for (goal, t) in [("old", 1_000), ("new", 3_000), ("mid", 2_000)] {
            store.create_run(&new_run(goal, t)).unwrap();
        }
        let goals: Vec<String> = store
            .list_runs(10)
            .unwrap()
            .into_iter()
            .map(|r| r.goal_id)
            .collect();
        assert_eq!(goals, ["new", "mid", "old"]);
        assert_eq!(store.list_runs(2).unwrap().len(), 2);
    }

    #[test]
    fn non_finite_numbers_do_not_break_a_write() {
        let (_dir, path) = temp_db();
        let mut store = Store::open(&path).unwrap();
        let id = store.create_run(&new_run("g", 1)).unwrap();
        let mut it = iteration(1, Decision::Converged);
        it.results[0].verdict.score = Some(f64::NAN);
        it.results[0]
            .verdict
            .metrics
            .insert("bad".into(), f64::INFINITY);
        it.spent.cost_usd = f64::NAN;
        store.record_iteration(&id, &it).unwrap();
        let mut d = dispatch(true);
        d.cost_usd = Some(f64::NAN);
        store
            .finish_dispatch(&id, None, 1, &d, &[], &it.spent, &serde_json::Value::Null)
            .unwrap();
        let run = store.load_run(&id).unwrap();
        let v = &run.iterations[0].results[0].verdict;
        assert_eq!(v.score, None);
        assert!(!v.metrics.contains_key("bad"));
        assert_eq!(run.dispatches[0].record.cost_usd, None);
        assert_eq!(run.summary.spent.cost_usd, 0.0);
    }

    #[test]
    fn concurrent_writers_on_one_database_do_not_fail() {
        const WRITERS: usize = 3;
        const ITERATIONS: u64 = 60;
        let (_dir, path) = temp_db();
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // Open (and migrate a fresh file) at the same moment, too.
                    barrier.wait();
                    let mut store = Store::open(&path).unwrap();
                    let id = store
                        .create_run(&new_run(&format!("goal-{w}"), 1_764_000_000_000))
                        .unwrap();
                    for i in 1..=ITERATIONS {
                        let it = iteration(
                            i,
                            Decision::Dispatch {
                                predicates: vec!["tests-pass".into()],
                            },
                        );
                        store.record_iteration(&id, &it).unwrap();
                        store
                            .finish_dispatch(
                                &id,
                                None,
                                i,
                                &dispatch(i % 2 == 0),
                                &it.events,
                                &it.spent,
                                &serde_json::Value::Null,
                            )
                            .unwrap();
                        // Readers interleave with the writers.
                        if i % 10 == 0 {
                            store.list_runs(10).unwrap();
                        }
                    }
                    id
                })
            })
            .collect();
        let ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.list_runs(100).unwrap().len(), WRITERS);
        for id in ids {
            let run = store.load_run(&id).unwrap();
            assert_eq!(run.iterations.len() as u64, ITERATIONS);
            assert_eq!(run.dispatches.len() as u64, ITERATIONS);
            assert_eq!(run.events.len() as u64, 4 * ITERATIONS);
            assert_eq!(run.summary.iterations, ITERATIONS);
        }
    }

    #[test]
    fn utc_time_formats_to_the_second() {
        assert_eq!(utc_time(1_764_000_000_123), "2025-11-24T16:00:00Z");
        assert_eq!(utc_time(-5), "1970-01-01T00:00:00Z");
    }
}
