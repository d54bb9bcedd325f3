-- PatchPilot schema, PostgreSQL flavour. Times are TIMESTAMPTZ.

CREATE TABLE deliveries (
    delivery_id     TEXT PRIMARY KEY NOT NULL,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id BIGINT,
    repository      TEXT,
    received_at     TIMESTAMPTZ NOT NULL,
    outcome         TEXT NOT NULL,
    session_id      TEXT
);

CREATE TABLE installations (
    installation_id BIGINT PRIMARY KEY NOT NULL,
    account         TEXT NOT NULL,
    repositories    TEXT NOT NULL DEFAULT '[]',
    suspended       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at      TIMESTAMPTZ NOT NULL
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
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    installation_id     BIGINT,
    repository          TEXT,
    issue_number        BIGINT,
    issue_title         TEXT,
    trigger_kind        TEXT NOT NULL,
    triggered_by        TEXT,
    trigger_comment_id  BIGINT,
    delivery_id         TEXT,
    feedback            TEXT,
    attempt_count       BIGINT NOT NULL DEFAULT 0,
    input_tokens        BIGINT NOT NULL DEFAULT 0,
    output_tokens       BIGINT NOT NULL DEFAULT 0,
    base_sha            TEXT,
    head_sha            TEXT,
    head_branch         TEXT,
    check_run_id        BIGINT,
    progress_comment_id BIGINT,
    pr_number           BIGINT,
    cancel_requested    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_by_issue ON sessions (repository, issue_number, status);
CREATE INDEX sessions_by_created ON sessions (created_at);

CREATE TABLE session_events (
    id         BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    at         TIMESTAMPTZ NOT NULL,
    step       TEXT NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL
);
CREATE INDEX session_events_by_session ON session_events (session_id, id);

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL,
    session_id       TEXT REFERENCES sessions (id),
    payload          TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    run_after        TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (status, run_after);
