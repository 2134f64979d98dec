"""Schema 10: a team in one workbench: accounts (argon2 hashes, roles), their sessions, assigned queues and the
answers several labellers give one record (for agreement)."""

VERSION = 10
DESCRIPTION = "a team: accounts, sessions, assigned queues, independent answers for agreement"

SQL = """
-- One row per person who signs in. No account at all is solo mode: no sign-in, nothing forbidden.
-- password_hash is an argon2 hash (argon2-cffi); the password itself is never stored.
CREATE TABLE accounts (
    name VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL CHECK (role IN ('labeller', 'reviewer', 'owner')),
    password_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    created_by VARCHAR,
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,   -- failures in a row since the last success
    locked_until TIMESTAMPTZ                      -- no sign-in is tried before this, right or wrong
);
-- A signed-in browser session: the sha256 of its random token. Signing out deletes the row, so a
-- replayed session token signs nobody in.
CREATE TABLE account_sessions (
    token_sha256 VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
-- Who works on which record. Releasing or reassigning sets released_at and keeps the row: the history.
CREATE SEQUENCE seq_assignments;
CREATE TABLE assignments (
    id BIGINT PRIMARY KEY DEFAULT nextval('seq_assignments'),
    record_id BIGINT NOT NULL,
    assignee VARCHAR NOT NULL,
    overlap INTEGER NOT NULL DEFAULT 1,           -- how many labellers the record went to in this batch
    batch VARCHAR NOT NULL,                        -- what was distributed (the filter, in words)
    assigned_by VARCHAR,
    assigned_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    released_at TIMESTAMPTZ,
    released_by VARCHAR
);
CREATE INDEX assignments_assignee ON assignments (assignee);
CREATE INDEX assignments_record ON assignments (record_id);
-- A labeller's own answer to a record given to several people (overlap > 1): kept apart from the record
-- so each answers blind; the answer a reviewer settles on is written into the record (what trains).
CREATE TABLE answers (
    record_id BIGINT NOT NULL,
    labeller VARCHAR NOT NULL,
    answer VARCHAR NOT NULL,
    answered_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    settled_at TIMESTAMPTZ,                        -- when a reviewer settled the record's answers
    PRIMARY KEY (record_id, labeller)
);
"""


def apply(con) -> None:
    con.execute(SQL)
