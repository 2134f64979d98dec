"""Schema 7: a target band of training records per category (Coverage), set by a person."""

VERSION = 7
DESCRIPTION = "category targets: the band of records a category should have for training"

SQL = """
-- A category's band, when a person set one; categories without a row get the default band of their
-- task type (workbench.coverage.DEFAULT_BANDS).
CREATE TABLE category_targets (
    category VARCHAR PRIMARY KEY,
    low INTEGER NOT NULL CHECK (low >= 0),
    high INTEGER NOT NULL CHECK (high >= low),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    author VARCHAR
);
"""


def apply(con) -> None:
    con.execute(SQL)
