"""SQL for check results: which records to check, storing what the rules found, and counting issues.

Issues come from two places: `record_issues` (the rules, re-run on demand) and each record's
`import_issues` (what the import saw in the raw line). The functions here read both as one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import duckdb

from .connection import columns_select, scalar
from .records import Selection

# Both kinds of issue as one relation: record_id, code, severity, turn, message, fix, stage.
ALL_ISSUES = """(
    SELECT record_id, code, severity, turn, message, fix, stage FROM record_issues
    UNION ALL
    SELECT r.id, i.code, 'warning', i.turn,
           CASE i.code
               WHEN 'unrecognized-key' THEN 'unrecognised key ' || coalesce(i.detail, '?')
                   || ' in the message: training ignores it (the imported file keeps it)'
               WHEN 'non-text-content' THEN 'content parts other than text (images, audio) were left out'
               WHEN 'content-not-string' THEN 'the content was a JSON object or list, kept as its JSON text'
               WHEN 'message-not-object' THEN 'this message was not a JSON object'
               WHEN 'bad-tool-call' THEN 'the function_call value is not JSON; kept as text'
               ELSE coalesce(i.detail, replace(i.code, '-', ' ')) END,
           NULL, 'import'
    FROM (SELECT id, unnest(import_issues) AS i FROM records WHERE len(import_issues) > 0) r
)"""


def records_to_check(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    clean_sql: str,
    always_categories: Sequence[str],
    batch: int = 5000,
) -> Iterator[list[tuple]]:
    """Batches of (id, messages, category) for the selected records that `clean_sql` cannot call clean.

    The pre-test runs once, into a temp table of ids; each batch is then its own small query, so the
    caller may write between batches.
    """
    where, params = selection.sql()
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE wb_to_check AS
        SELECT id FROM records WHERE {where} AND (list_contains(?, category) OR NOT {clean_sql})""",
        [*params, list(always_categories)],
    )
    try:
        last = -1
        while True:
            rows = con.execute(
                """
                SELECT r.id, r.messages, r.category FROM records r
                WHERE r.id IN (SELECT id FROM wb_to_check WHERE id > ? ORDER BY id LIMIT ?)
                ORDER BY r.id""",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]
    finally:
        con.execute("DROP TABLE IF EXISTS wb_to_check")


def clear_check_issues(con: duckdb.DuckDBPyConnection, selection: Selection) -> None:
    where, params = selection.sql()
    con.execute(
        f"DELETE FROM record_issues WHERE stage = 'check' AND record_id IN (SELECT id FROM records WHERE {where})",
        params,
    )


def insert_issues(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple]) -> None:
    """rows: (record_id, code, severity, turn, message, fix)."""
    if not rows:
        return
    columns = columns_select(
        {
            "record_id": "BIGINT",
            "code": "VARCHAR",
            "severity": "VARCHAR",
            "turn": "INTEGER",
            "message": "VARCHAR",
            "fix": "VARCHAR",
        }
    )
    con.execute(
        f"INSERT INTO record_issues (record_id, code, severity, turn, message, fix, stage) "
        f"SELECT *, 'check' FROM ({columns})",
        [list(c) for c in zip(*rows, strict=True)],
    )


def fixable_records(con: duckdb.DuckDBPyConnection, selection: Selection) -> list[int]:
    """Ids of the selected records that have an issue with an autofix, in id order."""
    where, params = selection.sql()
    return [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT record_id FROM record_issues WHERE fix IS NOT NULL "
            f"AND record_id IN (SELECT id FROM records WHERE {where}) ORDER BY 1",
            params,
        ).fetchall()
    ]


def all_issues(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every issue of every record, both kinds: (record_id, code, severity, turn, message, fix, stage), by record."""
    return con.execute(
        f"SELECT record_id, code, severity, turn, message, fix, stage FROM {ALL_ISSUES} i "
        "ORDER BY record_id, turn NULLS FIRST, code"
    ).fetchall()


def issue_counts(
    con: duckdb.DuckDBPyConnection, selection: Selection = Selection()
) -> list[tuple[str, str, int]]:
    """(code, severity, records with it), most frequent first."""
    where, params = selection.sql()
    return con.execute(
        f"""
        SELECT code, severity, count(DISTINCT record_id) FROM {ALL_ISSUES} i
        WHERE record_id IN (SELECT id FROM records WHERE {where})
        GROUP BY code, severity ORDER BY 3 DESC, 1""",
        params,
    ).fetchall()


def issues_of(con: duckdb.DuckDBPyConnection, record_id: int) -> list[tuple]:
    """(code, severity, turn, message, fix, stage) for one record."""
    return con.execute(
        f"SELECT code, severity, turn, message, fix, stage FROM {ALL_ISSUES} i WHERE record_id = ? "
        "ORDER BY turn NULLS FIRST, code",
        [record_id],
    ).fetchall()


def records_with_errors(con: duckdb.DuckDBPyConnection, selection: Selection = Selection()) -> int:
    where, params = selection.sql()
    return scalar(
        con,
        f"""SELECT count(DISTINCT record_id) FROM record_issues
        WHERE severity = 'error' AND record_id IN (SELECT id FROM records WHERE {where})""",
        params,
    )


# --- the SQL pre-test --------------------------------------------------------------------------------
# True only when the roles alternate user/assistant after an optional system message, every content is
# plain text with a visible character, no content holds a `suspicious` character (or starts like JSON,
# which `suspicious` matches as well), no content of `repeat_min_chars` or more repeats itself at any
# of the probe points a loop covering 30% of the text must contain, and the bytes bound the token
# count under the limit. checks.clean_record_sql gives it the rules' characters and lengths.
_PROBE = 8


def _loops_sql(c: str) -> str:
    probes = []
    for quarter in (1, 2, 3):
        at = f"(length({c}) * {quarter} // 4)"
        for start in (f"{at} + 1", f"{at} - {_PROBE - 1}"):
            window = f"substr({c}, {start}, {_PROBE})"
            probes.append(f"(length({c}) - length(replace({c}, {window}, ''))) // {_PROBE} >= 4")
    return " OR ".join(probes)


def clean_record_sql(max_tokens: int, *, suspicious: str, repeat_min_chars: int) -> str:
    """A DuckDB boolean over `messages`: true only for records that can have no issue (see above)."""
    suspicious = suspicious.replace("'", "''")
    loops = _loops_sql("m.content")
    return f"""(
        CASE WHEN len(messages) = 2 THEN coalesce(messages[1].role = 'user' AND messages[2].role = 'assistant', false)
             ELSE regexp_full_match(array_to_string(list_transform(messages, lambda m: coalesce(m.role, '?')), ','),
                                    '(system,)?user,assistant(,user,assistant)*') END
        AND list_bool_and(list_transform(messages, lambda m:
            m.content IS NOT NULL AND m.tool_calls IS NULL AND regexp_matches(m.content, '[^ \t\r\n]')))
        AND NOT coalesce(list_bool_or(list_transform(
            list_filter(messages, lambda m: length(m.content) >= {repeat_min_chars}), lambda m: {loops})), false)
        AND NOT regexp_matches(array_to_string(list_transform(messages, lambda m: m.content), chr(10)), '{suspicious}')
        AND list_sum(list_transform(messages, lambda m: strlen(m.content))) + 16 * len(messages) + 64
            <= {int(max_tokens)}
    )"""


def category_answers(con: duckdb.DuckDBPyConnection, category: str) -> list[str | None]:
    """The last assistant answer of every record in a category that has one (the contract rules' input)."""
    return [
        r[0]
        for r in con.execute(
            """SELECT list_filter(messages, lambda m: m.role = 'assistant')[-1].content FROM records
           WHERE category = ? AND len(list_filter(messages, lambda m: m.role = 'assistant')) > 0""",
            [category],
        ).fetchall()
    ]
