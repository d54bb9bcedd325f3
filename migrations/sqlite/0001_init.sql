-- PatchPilot schema, SQLite flavour. Times are RFC 3339 text in UTC (sqlx chrono encoding).

CREATE TABLE deliveries (
    delivery_id     TEXT PRIMARY KEY NOT NULL,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id INTEGER,
    repository      TEXT,
    received_at     TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    session_id      TEXT
);

CREATE TABLE installations (
    installation_id INTEGER PRIMARY KEY NOT NULL,
    account         TEXT NOT NULL,
    repositories    TEXT NOT NULL DEFAULT '[]',
    suspended       INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    repo_url            TEXT NOT NULL,
    branch              TEXT,
    bug_description     TEXT NOT NULL,
    repro_command       TEXT,
    status              TEXT NOT NULL,
    patch_diff          TEXT,
    pr_url              TEXT,
    error_message       TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    installation_id     INTEGER,
    repository          TEXT,
    issue_number        INTEGER,
    issue_title         TEXT,
    trigger_kind        TEXT NOT NULL,
    triggered_by        TEXT,
    trigger_comment_id  INTEGER,
    delivery_id         TEXT,
    feedback            TEXT,
    attempt_count       INTEGER NOT NULL DEFAULT 0,
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    base_sha            TEXT,
    head_sha            TEXT,
    head_branch         TEXT,
    check_run_id        INTEGER,
    progress_comment_id INTEGER,
    pr_number           INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_issue ON sessions (repository, issue_number, status);
CREATE INDEX sessions_by_created ON sessions (created_at);

CREATE TABLE session_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    at         TEXT NOT NULL,
    step       TEXT NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL
);
CREATE INDEX session_events_by_session ON session_events (session_id, id);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    session_id       TEXT REFERENCES sessions (id),
    payload          TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_after        TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (status, run_after);
