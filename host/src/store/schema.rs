//! The database schema as an append-only list of migrations. Migration `i` (0-based)
//! brings a database to `PRAGMA user_version = i + 1`. Never edit a released
//! migration: add a new one.

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, super::worktrees::MIGRATION, V5];

/// The schema version this kazi writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: runs, their iterations, verdicts, dispatches and events; proposals.
const V1: &str = r#"
CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    goal_id         TEXT NOT NULL,
    goal_path       TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    goal_sha256     TEXT NOT NULL,
    goal_text       TEXT NOT NULL,
    seal            TEXT NOT NULL,              -- JSON
    profile         TEXT NOT NULL,
    model           TEXT,
    status          TEXT NOT NULL CHECK (status IN
                        ('running', 'converged', 'stuck', 'over_budget',
                         'tampered', 'interrupted', 'error')),
    reason          TEXT,
    iterations      INTEGER NOT NULL DEFAULT 0,
    dispatches      INTEGER NOT NULL DEFAULT 0,
    tokens          INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL    NOT NULL DEFAULT 0,
    wall_clock_ms   INTEGER NOT NULL DEFAULT 0,
    last_state      TEXT,                       -- JSON of the last iteration's loop state
    started_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER,
    updated_at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_by_start ON runs (started_at_ms DESC, id DESC);
CREATE INDEX runs_by_goal ON runs (goal_id, started_at_ms DESC);

CREATE TABLE iterations (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,           -- 1-based
    decision        TEXT NOT NULL,              -- the decision's kind
    decision_json   TEXT NOT NULL,
    state           TEXT NOT NULL,              -- JSON
    iterations      INTEGER NOT NULL,           -- budget counters after this iteration
    dispatches      INTEGER NOT NULL,
    tokens          INTEGER NOT NULL,
    cost_usd        REAL    NOT NULL,
    wall_clock_ms   INTEGER NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    recorded_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
) STRICT;

CREATE TABLE verdicts (
    run_id          TEXT NOT NULL,
    iteration       INTEGER NOT NULL,
    position        INTEGER NOT NULL,           -- order within the observation
    predicate       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pass', 'fail', 'error', 'unknown')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
    summary         TEXT NOT NULL,
    details         TEXT NOT NULL,
    diagnostics     TEXT NOT NULL,              -- JSON array
    score           REAL,
    metrics         TEXT NOT NULL,              -- JSON object
    duration_ms     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    quarantined     INTEGER NOT NULL,           -- 0 | 1
    PRIMARY KEY (run_id, iteration, predicate),
    FOREIGN KEY (run_id, iteration) REFERENCES iterations (run_id, idx) ON DELETE CASCADE
) STRICT;

CREATE TABLE dispatches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration       INTEGER NOT NULL,
    profile         TEXT NOT NULL,
    model           TEXT,
    prompt_sha256   TEXT NOT NULL,
    prompt_bytes    INTEGER NOT NULL,
    predicates      TEXT NOT NULL,              -- JSON array of ids
    exit_code       INTEGER,
    duration_ms     INTEGER NOT NULL,
    tokens_in       INTEGER,
    tokens_out      INTEGER,
    tokens_cached   INTEGER,
    cost_usd        REAL,
    session_id      TEXT,
    outcome         TEXT NOT NULL,
    message         TEXT,
    permission_denials TEXT NOT NULL,           -- JSON array
    changed_files   TEXT NOT NULL,              -- JSON array
    recorded_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX dispatches_by_run ON dispatches (run_id, iteration);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    iteration       INTEGER NOT NULL,
    source          TEXT NOT NULL CHECK (source IN ('iteration', 'dispatch')),
    kind            TEXT NOT NULL,
    predicate       TEXT,
    message         TEXT NOT NULL,
    recorded_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX events_by_run ON events (run_id, iteration);

CREATE TABLE proposals (
    ref             TEXT PRIMARY KEY,
    idea            TEXT NOT NULL,
    goal_id         TEXT NOT NULL,
    goal_text       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected')),
    vacuous_reason  TEXT,                       -- why the proposal is vacuous, if it is
    workspace       TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX proposals_by_status ON proposals (status, created_at_ms DESC);
"#;

/// Version 2: where `kazi approve` wrote an approved proposal's goal file.
const V2: &str = "ALTER TABLE proposals ADD COLUMN goal_path TEXT;";

/// Version 3: crash safety and honest statuses.
/// - `runs` is rebuilt to allow the status `invalid` (a vacuous goal), and records the
///   process driving it (`driver_pid`, `driver_start`: a run whose driver is gone is
///   `abandoned`) and the dispatches of unknown cost a crash left.
/// - `dispatches` rows are written before the agent starts (`finished = 0`, outcome
///   `running`), with the agent's process once it exists and the prompt (bounded).
///
/// Runs with foreign keys off (the store switches them off around migrations).
const V3: &str = r#"
CREATE TABLE runs_v3 (
    id              TEXT PRIMARY KEY,
    goal_id         TEXT NOT NULL,
    goal_path       TEXT NOT NULL,
    workspace       TEXT NOT NULL,
    goal_sha256     TEXT NOT NULL,
    goal_text       TEXT NOT NULL,
    seal            TEXT NOT NULL,
    profile         TEXT NOT NULL,
    model           TEXT,
    status          TEXT NOT NULL CHECK (status IN
                        ('running', 'converged', 'stuck', 'over_budget',
                         'tampered', 'interrupted', 'invalid', 'error')),
    reason          TEXT,
    iterations      INTEGER NOT NULL DEFAULT 0,
    dispatches      INTEGER NOT NULL DEFAULT 0,
    tokens          INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL    NOT NULL DEFAULT 0,
    wall_clock_ms   INTEGER NOT NULL DEFAULT 0,
    last_state      TEXT,
    started_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER,
    updated_at_ms   INTEGER NOT NULL,
    unknown_cost_dispatches INTEGER NOT NULL DEFAULT 0,
    driver_pid      INTEGER,
    driver_start    INTEGER
) STRICT;
INSERT INTO runs_v3 (id, goal_id, goal_path, workspace, goal_sha256, goal_text, seal, profile,
                     model, status, reason, iterations, dispatches, tokens, cost_usd,
                     wall_clock_ms, last_state, started_at_ms, finished_at_ms, updated_at_ms)
    SELECT id, goal_id, goal_path, workspace, goal_sha256, goal_text, seal, profile, model,
           status, reason, iterations, dispatches, tokens, cost_usd, wall_clock_ms,
           last_state, started_at_ms, finished_at_ms, updated_at_ms
    FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at_ms DESC, id DESC);
CREATE INDEX runs_by_goal ON runs (goal_id, started_at_ms DESC);

ALTER TABLE dispatches ADD COLUMN finished INTEGER NOT NULL DEFAULT 1;
ALTER TABLE dispatches ADD COLUMN started_at_ms INTEGER;
ALTER TABLE dispatches ADD COLUMN prompt TEXT;
ALTER TABLE dispatches ADD COLUMN pid INTEGER;
ALTER TABLE dispatches ADD COLUMN pgid INTEGER;
ALTER TABLE dispatches ADD COLUMN process_start INTEGER;
CREATE INDEX dispatches_unfinished ON dispatches (run_id) WHERE finished = 0;
"#;

/// Version 5: what kazi reverted after each dispatch (task worktrees) and the diff
/// that would land, for `kazi show`.
const V5: &str = r#"
ALTER TABLE dispatches ADD COLUMN reverted TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dispatches ADD COLUMN diff TEXT;
"#;
