"""SQL for imports: staging a file's lines, normalising them into records, rejects, the import log."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from . import normaliser
from .connection import columns_select, first_row, scalar

# The staged input: one row per item in file order. seq numbers the items (so two records on one
# line of a JSON array stay apart), line is where the item starts, text is NULL for a blank line.
# LINES is always a view: over a file read by DuckDB (_FILE_TEXT, one row per line or Parquet row,
# numbered by rowid) or over the items a Python reader staged (_ITEMS).
LINES = "wb_lines"
_FILE_TEXT = "wb_file_text"
_ITEMS = "wb_items"


def start_import(
    con: duckdb.DuckDBPyConnection,
    *,
    file_name: str,
    file_path: str | None,
    dataset: str,
    category: str | None,
    author: str | None,
) -> int:
    import_id = scalar(con, "SELECT nextval('seq_imports')")
    con.execute(
        "INSERT INTO imports (id, file_name, file_path, dataset, category, author) VALUES (?, ?, ?, ?, ?, ?)",
        [import_id, file_name, file_path, dataset, category, author],
    )
    return import_id


def finish_import(con: duckdb.DuckDBPyConnection, import_id: int, **fields) -> None:
    fields = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in fields.items()}
    sets = ", ".join(f"{k} = ?" for k in fields)
    con.execute(
        f"UPDATE imports SET {sets}, finished_at = current_timestamp WHERE id = ?",
        [*fields.values(), import_id],
    )


def find_import_by_sha(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[int, str, str] | None:
    return first_row(
        con,
        "SELECT id, file_name, strftime(started_at, '%Y-%m-%d %H:%M') FROM imports "
        "WHERE sha256 = ? AND finished_at IS NOT NULL ORDER BY id LIMIT 1",
        [sha256],
    )


def imports_of_files(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> list[tuple]:
    """(file_path, id, file_name, file_format, encoding, dataset, record_formats, imported, rejected,
    blank_lines, stored_file) of the committed imports read from these paths."""
    if not paths:
        return []
    return con.execute(
        "SELECT file_path, id, file_name, file_format, encoding, dataset, record_formats, imported, rejected, "
        "blank_lines, stored_file FROM imports WHERE finished_at IS NOT NULL AND list_contains(?, file_path) "
        "ORDER BY id",
        [list(paths)],
    ).fetchall()


def stored_files(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The store-relative paths of every kept import file."""
    return {
        r[0] for r in con.execute("SELECT stored_file FROM imports WHERE stored_file IS NOT NULL").fetchall()
    }


# --- staging --------------------------------------------------------------------------------------

# DuckDB's own line limits (max_line_size, buffer_size) at their defaults; tests lower them to make a
# line "too long" without writing megabytes. A longer line makes DuckDB fail or drop it, and the
# importer then reads the file in Python instead (see ingest._stage).
LINE_READER_LIMITS: dict[str, int] = {}


def _csv_lines(path: str) -> str:
    # DuckDB's CSV reader as a line reader: no quoting, no header, one VARCHAR column. Empty lines
    # come back as NULL rows, so a row's place is its line number. A line holding the \x01
    # delimiter would be cut there, but such a line is not valid JSON either (control characters
    # must be escaped), and rejected lines are re-read exactly by the caller.
    escaped = path.replace("'", "''")
    return (
        f"read_csv('{escaped}', columns = {{'text': 'VARCHAR'}}, delim = chr(1), quote = '', escape = '', "
        f"header = false, auto_detect = false, strict_mode = false, parallel = true"
        + "".join(f", {name} = {int(value)}" for name, value in LINE_READER_LIMITS.items())
        + ")"
    )


def _stage_file_text(con: duckdb.DuckDBPyConnection, select: str) -> None:
    """Stage `select` (one `text` column, in file order) as LINES.

    DuckDB reads the file in parallel and keeps its order (it preserves insertion order), so an
    item's number is its rowid + 1; numbering with row_number() instead would read on one thread.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FILE_TEXT} AS {select}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {LINES} AS SELECT rowid + 1 AS seq, rowid + 1 AS line, text FROM {_FILE_TEXT}"
    )


def stage_jsonl(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Stage a UTF-8 JSONL file with DuckDB's own reader (raises duckdb errors on invalid UTF-8)."""
    _stage_file_text(con, f"SELECT text FROM {_csv_lines(path)}")


def stage_parquet(con: duckdb.DuckDBPyConnection, path: str) -> None:
    escaped = path.replace("'", "''")
    _stage_file_text(con, f"SELECT to_json(p)::VARCHAR AS text FROM read_parquet('{escaped}') p")


def stage_empty(con: duckdb.DuckDBPyConnection) -> None:
    """An empty LINES for a Python reader to fill with stage_batch."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_ITEMS} (seq BIGINT, line BIGINT, text VARCHAR)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {LINES} AS SELECT seq, line, text FROM {_ITEMS}")


ITEM_COLUMNS = {"seq": "BIGINT", "line": "BIGINT", "text": "VARCHAR"}


def stage_batch(
    con: duckdb.DuckDBPyConnection, seqs: Sequence[int], lines: Sequence[int], texts: Sequence[str | None]
) -> None:
    con.execute(
        f"INSERT INTO {_ITEMS} {columns_select(ITEM_COLUMNS)}", [list(seqs), list(lines), list(texts)]
    )


def staged_rows(con: duckdb.DuckDBPyConnection) -> int:
    return scalar(con, f"SELECT count(*) FROM {LINES}")


def staged_line_count(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(lines, blank lines) staged."""
    return first_row(con, f"SELECT count(*), count(*) FILTER (WHERE text IS NULL) FROM {LINES}")


# --- normalising into records ---------------------------------------------------------------------

RECORD_COLUMNS = (
    "id, dataset, messages, tools, category, task_type, status, tags, source, bad_output, "
    "content_hash, format, import_issues, import_id, line, created_at, updated_at, version, "
    "feedback, feedback_score, feedback_comment"
)


def insert_records(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    import_id: int,
    dataset: str,
    category: str | None,
    id_base: int,
) -> int:
    """Normalise `source(seq, line, text)` into records with id = id_base + seq; returns how many landed."""
    normaliser.install_macros(con)
    return scalar(
        con,
        f"""
        INSERT INTO records ({RECORD_COLUMNS})
        SELECT ? + seq, ?, messages, tools, coalesce(category, ?), task_type, 'new', tags, source, bad_output,
               wb_content_hash(messages), format, import_issues, ?, line, current_timestamp, current_timestamp, 1,
               feedback, feedback_score, feedback_comment
        FROM ({normaliser.normalised_select(source)})
        WHERE reject IS NULL
    """,
        [id_base, dataset, category, import_id],
    )


def json_fields(con: duckdb.DuckDBPyConnection, import_id: int) -> list[tuple[int, list[str]]]:
    """(record id, the JSON texts of its tools and tool calls) for the records of an import that have any."""
    return con.execute(
        """
        SELECT id, list_filter([tools::VARCHAR] || [m.tool_calls::VARCHAR FOR m IN messages], lambda x: x IS NOT NULL)
        FROM records WHERE import_id = ? AND (tools IS NOT NULL OR list_bool_or([m.tool_calls IS NOT NULL FOR m IN messages]))
    """,
        [import_id],
    ).fetchall()


def unimport_records(
    con: duckdb.DuckDBPyConnection, ids: Sequence[int], id_base: int
) -> list[tuple[int, int, str]]:
    """Take records of the import being written back out; returns their staged (seq, line, text)."""
    items = con.execute(
        f"SELECT seq, line, text FROM {LINES} WHERE list_contains(?, seq) ORDER BY seq",
        [[i - id_base for i in ids]],
    ).fetchall()
    con.execute("DELETE FROM records WHERE list_contains(?, id)", [list(ids)])
    return items


def next_record_id_base(con: duckdb.DuckDBPyConnection) -> int:
    return scalar(con, "SELECT coalesce(max(id), 0) FROM records")


def unimported_items(
    con: duckdb.DuckDBPyConnection, import_id: int, id_base: int
) -> list[tuple[int, int, str]]:
    """(seq, line, text) of staged non-blank items that did not become records: the few that need a closer look."""
    return con.execute(
        f"""
        SELECT l.seq, l.line, l.text FROM {LINES} l
        WHERE l.text IS NOT NULL
          AND l.seq NOT IN (SELECT id - ? FROM records WHERE import_id = ?)
        ORDER BY l.seq
    """,
        [id_base, import_id],
    ).fetchall()


@contextmanager
def items_table(
    con: duckdb.DuckDBPyConnection, name: str, rows: Sequence[tuple[int, int, str]]
) -> Iterator[str]:
    """A temp table `name(seq, line, text)` of a few items, a source for insert_records; dropped afterwards."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS {columns_select(ITEM_COLUMNS)}",
        [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
    )
    try:
        yield name
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def normaliser_verdicts(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[int, int, str]]
) -> dict[int, str | None]:
    """For items that did not import: seq -> the normaliser's reason ('unparsed', 'empty-messages')."""
    if not rows:
        return {}
    normaliser.install_macros(con)
    with items_table(con, "wb_recheck", rows) as name:
        return dict(con.execute(f"SELECT seq, reject FROM ({normaliser.normalised_select(name)})").fetchall())


def add_import_issue(
    con: duckdb.DuckDBPyConnection, import_id: int, record_ids: Sequence[int], code: str, detail: str
) -> None:
    """Append an import issue (`code`, no turn, `detail`) to records of the import being written."""
    con.execute(
        """UPDATE records SET import_issues = list_append(import_issues,
                       {'code': ?, 'turn': NULL::INTEGER, 'detail': ?})
                   WHERE import_id = ? AND list_contains(?, id)""",
        [code, detail, import_id, list(record_ids)],
    )


@dataclass(frozen=True)
class Reject:
    seq: int | None
    line: int | None
    raw: str
    code: str
    reason: str


def insert_rejects(con: duckdb.DuckDBPyConnection, import_id: int, rejects: Sequence[Reject]) -> None:
    if not rejects:
        return
    columns = columns_select(
        {"seq": "BIGINT", "line": "BIGINT", "raw": "VARCHAR", "code": "VARCHAR", "reason": "VARCHAR"}
    )
    con.execute(
        f"INSERT INTO rejects (import_id, seq, line, raw, code, reason) SELECT ?, * FROM ({columns})",
        [
            import_id,
            [r.seq for r in rejects],
            [r.line for r in rejects],
            [r.raw for r in rejects],
            [r.code for r in rejects],
            [r.reason for r in rejects],
        ],
    )


def drop_staging(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP VIEW IF EXISTS {LINES}")
    for table in (_FILE_TEXT, _ITEMS):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def record_formats(con: duckdb.DuckDBPyConnection, import_id: int) -> dict[str, int]:
    return dict(
        con.execute(
            "SELECT format, count(*) FROM records WHERE import_id = ? GROUP BY format ORDER BY 2 DESC",
            [import_id],
        ).fetchall()
    )


def rejects_of(con: duckdb.DuckDBPyConnection, import_id: int, limit: int | None = None) -> list[Reject]:
    sql = "SELECT seq, line, raw, code, reason FROM rejects WHERE import_id = ? ORDER BY seq"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [Reject(*row) for row in con.execute(sql, [import_id]).fetchall()]


def reject_counts(con: duckdb.DuckDBPyConnection, import_id: int) -> dict[str, int]:
    return dict(
        con.execute(
            "SELECT code, count(*) FROM rejects WHERE import_id = ? GROUP BY code ORDER BY 2 DESC",
            [import_id],
        ).fetchall()
    )


def recent_imports(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[tuple]:
    """(id, file_name, dataset, category, started_at, file_format, encoding, imported, rejected, author), newest first."""
    return con.execute(
        """SELECT id, file_name, dataset, category, started_at, file_format, encoding, imported,
                                 rejected, author FROM imports WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT ?""",
        [limit],
    ).fetchall()
