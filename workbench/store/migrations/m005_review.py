"""Schema 5: bulk operations (one undo reverts a whole bulk action) and the indexes the Review page reads by."""

VERSION = 5
DESCRIPTION = "review: operations (bulk actions and their undo), revisions.operation_id, revision indexes"

SQL = """
CREATE SEQUENCE seq_operations START 1;

-- One row per bulk action (set status / category / tags, autofix, undo of an operation). Each record it
-- changed has a revision carrying its operation_id, so the whole action can be undone in one step.
CREATE TABLE operations (
    id BIGINT PRIMARY KEY,
    action VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    author VARCHAR NOT NULL,
    records BIGINT NOT NULL,
    undo_of BIGINT,                    -- set on an undo: the operation it reverted
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

ALTER TABLE revisions ADD COLUMN operation_id BIGINT;

-- A record's history and an operation's revisions are point lookups in a table that only grows.
-- records(id) has no index: records are stored in id order, so DuckDB's min/max zone maps already
-- narrow `id = ?` to one row group (bench/review.py measures it at a million records).
CREATE INDEX revisions_by_record ON revisions (record_id);
CREATE INDEX revisions_by_operation ON revisions (operation_id);
"""


def apply(con) -> None:
    con.execute(SQL)
