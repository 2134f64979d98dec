"""SQL for Coverage: training records per category by status, and the target band a person set."""

from __future__ import annotations

import duckdb

STATUSES = ("new", "labeled", "fixed", "approved", "rejected")


def category_counts(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Per category of the badcase datasets: (category, task type, duplicates, records with errors, then one
    count per status in STATUSES); marked duplicates are counted apart, not by status. (What is ready for
    training is the export's to say: see coverage.coverage.)"""
    by_status = ", ".join(f"count(*) FILTER (WHERE dup_of IS NULL AND status = '{s}')" for s in STATUSES)
    return con.execute(
        f"""
        WITH r AS (
            SELECT category, task_type, status, dup_of,
                   id IN (SELECT record_id FROM record_issues WHERE severity = 'error') AS has_error
            FROM records WHERE dataset IN (SELECT name FROM datasets WHERE kind = 'badcases'))
        SELECT category, mode(task_type),
               count(*) FILTER (WHERE dup_of IS NOT NULL),
               count(*) FILTER (WHERE dup_of IS NULL AND status <> 'rejected' AND has_error),
               {by_status}
        FROM r GROUP BY category ORDER BY count(*) DESC, category NULLS LAST
    """
    ).fetchall()


def targets(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    return {
        c: (lo, hi)
        for c, lo, hi in con.execute("SELECT category, low, high FROM category_targets").fetchall()
    }


def set_target(
    con: duckdb.DuckDBPyConnection, category: str, low: int, high: int, author: str | None
) -> None:
    con.execute(
        """INSERT INTO category_targets (category, low, high, author) VALUES (?, ?, ?, ?)
                   ON CONFLICT (category) DO UPDATE SET low = excluded.low, high = excluded.high,
                       author = excluded.author, updated_at = now()""",
        [category, low, high, author],
    )


def clear_target(con: duckdb.DuckDBPyConnection, category: str) -> bool:
    return bool(
        con.execute(
            "DELETE FROM category_targets WHERE category = ? RETURNING category", [category]
        ).fetchall()
    )
