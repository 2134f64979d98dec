"""Schema 10: accounts for a team (sign-in with argon2 hashes, roles) and their signed-in sessions."""

VERSION = 10
DESCRIPTION = "accounts: team sign-in, roles, failed sign-ins and sessions"

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
"""


def apply(con) -> None:
    con.execute(SQL)
