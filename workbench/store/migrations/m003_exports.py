"""Schema 3: the log of exported training sets (one row per export folder under exports/)."""

VERSION = 3
DESCRIPTION = "exports: every exported training set, its folder, config, counts and hash"

# hash: sha256 over the export's config and data files; the folder is exports/<name>-<hash[:10]>.
# Exporting the same set again refreshes its row (same hash, same folder, same bytes).
SQL = """
CREATE TABLE exports (
    hash VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    folder VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    config JSON NOT NULL,
    counts JSON NOT NULL,
    train_records BIGINT NOT NULL,
    val_records BIGINT NOT NULL,
    general_share DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


def apply(con) -> None:
    con.execute(SQL)
