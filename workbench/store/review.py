"""SQL for the Review queue: filters, keyset pages with a count, a page's issues in one query, and bulk
field changes written set-based as one operation (with the revisions that let one undo revert it all)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields

import duckdb

from ..errors import NotFoundError, WorkbenchError
from .connection import scalar
from .issues import ALL_ISSUES

DUPLICATE_STATES = ("kept", "copy", "unique")
# Where a text search looks -> the roles of the turns it reads (None: every turn) and what it means. The
# default leaves the system prompt out: a prompt that lists the labels would make every record match them.
TEXT_FIELDS = {
    "qa": (("user", "assistant"), "question + answer"),
    "question": (("user",), "question"),
    "answer": (("assistant",), "answer"),
    "system": (("system",), "system prompt"),
    "any": (None, "any turn"),
}
# Sort name -> (key expression over records r, direction, what it means). Every page is ordered by
# (key, id) in that direction and the next page starts after the last row's (key, id): keyset paging.
# A plain column as the key (newest: r.id) lets DuckDB read the top rows without sorting the table.
SORTS = {
    "newest": ("r.id", "DESC", "newest first"),
    "oldest": ("r.id", "ASC", "oldest first"),
    "most issues": ("n.issues", "DESC", "most issues first (then newest)"),
    "category": ("coalesce(r.category, '')", "ASC", "by category"),
    "cluster": ("coalesce(c.cluster, 2147483647)", "ASC", "by cluster of the latest clustering run"),
}
# Feedback filter value -> (condition over records r, what it means): a production log's thumb (formats.py).
FEEDBACK_STATES = {
    "down": ("{a}.feedback = 'down'", "thumbs down"),
    "up": ("{a}.feedback = 'up'", "thumbs up"),
    "any": (
        "({a}.feedback IS NOT NULL OR {a}.feedback_score IS NOT NULL OR {a}.feedback_comment IS NOT NULL)",
        "with feedback",
    ),
    "none": (
        "({a}.feedback IS NULL AND {a}.feedback_score IS NULL AND {a}.feedback_comment IS NULL)",
        "without feedback",
    ),
}
# Fields a bulk action can set, with their SQL type.
BULK_FIELDS = {"status": "VARCHAR", "category": "VARCHAR", "tags": "VARCHAR[]"}
_names = itertools.count()


@dataclass(frozen=True)
class ReviewFilter:
    """Which records the Review queue shows; each field narrows it, empty fields do not.

    `categories` may hold "" for records without a category. `text` matches a substring of the turns
    `text_in` names (a TEXT_FIELDS key: the questions and answers unless told), case-insensitively; Chinese
    text matches without word boundaries.
    """

    datasets: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    issue_codes: tuple[str, ...] = ()
    severity: str | None = None
    duplicate: str | None = None
    cluster: int | None = None
    sources: tuple[str, ...] = ()
    text: str = ""
    text_in: str = "qa"
    ids: tuple[int, ...] = ()
    imports: tuple[int, ...] = ()  # the imports the records came from
    hard_after_run: int | None = None  # records run N still gets wrong or learned least (see HARD_AFTER_RUN)
    feedback: str | None = None  # a FEEDBACK_STATES key: thumbs down / up, with or without feedback
    score_min: float | None = None  # feedback score at least this (records without a score drop out)
    score_max: float | None = None  # feedback score at most this
    assigned_to: str | None = None  # the records in this person's queue now (workbench/queues.py)

    def is_empty(self) -> bool:
        return not any(
            getattr(self, f.name) not in (None, "", ()) for f in fields(self) if f.name != "text_in"
        )

    def sql(self, alias: str = "r") -> tuple[str, list]:
        """A WHERE clause over `records {alias}` and its parameters."""
        where, params = [], []
        if self.text_in not in TEXT_FIELDS:
            raise WorkbenchError(
                f"cannot search text in {self.text_in!r}; search in one of {', '.join(TEXT_FIELDS)}"
            )
        for column, values in (
            ("dataset", self.datasets),
            ("status", self.statuses),
            ("task_type", self.task_types),
            ("source", self.sources),
            ("id", self.ids),
            ("import_id", self.imports),
        ):
            if values:
                where.append(f"list_contains(?, {alias}.{column})")
                params.append(list(values))
        if self.categories:
            where.append(f"list_contains(?, coalesce({alias}.category, ''))")
            params.append(list(self.categories))
        if self.tags:
            where.append(f"list_has_any(coalesce({alias}.tags, []::VARCHAR[]), ?)")
            params.append(list(self.tags))
        if self.issue_codes or self.severity:
            conds, sub = [], []
            if self.issue_codes:
                conds.append("list_contains(?, code)")
                sub.append(list(self.issue_codes))
            if self.severity:
                if self.severity not in ("error", "warning"):
                    raise WorkbenchError(f"unknown severity {self.severity!r}; use error or warning")
                conds.append("severity = ?")
                sub.append(self.severity)
            where.append(f"{alias}.id IN (SELECT record_id FROM {ALL_ISSUES} i WHERE {' AND '.join(conds)})")
            params += sub
        if self.duplicate:
            if self.duplicate not in DUPLICATE_STATES:
                raise WorkbenchError(
                    f"unknown duplicate state {self.duplicate!r}; use one of {', '.join(DUPLICATE_STATES)}"
                )
            kept = f"{alias}.id IN (SELECT dup_of FROM records WHERE dup_of IS NOT NULL)"
            where.append(
                {
                    "kept": kept,
                    "copy": f"{alias}.dup_of IS NOT NULL",
                    "unique": f"{alias}.dup_of IS NULL AND NOT ({kept})",
                }[self.duplicate]
            )
        if self.cluster is not None:
            where.append(f"""{alias}.id IN (SELECT record_id FROM cluster_members
                             WHERE run_id = (SELECT max(id) FROM cluster_runs) AND cluster = ?)""")
            params.append(self.cluster)
        if self.feedback:
            if self.feedback not in FEEDBACK_STATES:
                raise WorkbenchError(
                    f"unknown feedback {self.feedback!r}; use one of {', '.join(FEEDBACK_STATES)}"
                )
            where.append(FEEDBACK_STATES[self.feedback][0].format(a=alias))
        for bound, op in ((self.score_min, ">="), (self.score_max, "<=")):
            if bound is not None:
                where.append(f"{alias}.feedback_score {op} ?")
                params.append(float(bound))
        if self.assigned_to is not None:
            where.append(
                f"{alias}.id IN (SELECT record_id FROM assignments WHERE assignee = ? AND released_at IS NULL)"
            )
            params.append(self.assigned_to)
        if self.hard_after_run is not None:
            where.append(f"{alias}.id IN {HARD_AFTER_RUN}")
            params.append(self.hard_after_run)
        if self.text:
            roles = TEXT_FIELDS[self.text_in][0]
            in_role = "list_contains(?, m.role) AND " if roles else ""
            params += [list(roles)] if roles else []
            # Text without upper/lower case (Chinese, digits) is matched as it is, three times faster than
            # lower-casing every turn (bench/review.py); other text case-insensitively with ILIKE.
            if self.text.lower() == self.text.upper():
                match = "contains(m.content, ?)"
                params.append(self.text)
            else:
                match = "ilike_escape(m.content, ?, '\\')"
                escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                params.append(f"%{escaped}%")
            where.append(f"len(list_filter({alias}.messages, lambda m: {in_role}{match})) > 0")
        return (" AND ".join(where) or "true"), params


# The evaluation that judges a run's records: its latest finished one (not a prompt trial), on the records it
# trained on where there is one. One parameter: the run id.
HARD_EVALUATION = """(SELECT id FROM evaluations WHERE run_id = ? AND status = 'done' AND system_prompt IS NULL
                      ORDER BY eval_set = 'trained' DESC, id DESC LIMIT 1)"""
# "Hard or suspicious after run N": the records that evaluation answers wrong, and those whose reference
# answer it finds least likely (loss in its top tenth): what a model still gets wrong or learns last is often
# mislabelled, or contradicts another record.
HARD_LOSS_PART = 10  # the top 1/10th by loss (rounded up: at least one record)
HARD_AFTER_RUN = f"""(SELECT record_id FROM (
                          SELECT record_id, verdict, count(loss) OVER () AS losses,
                                 row_number() OVER (ORDER BY loss DESC NULLS LAST, seq) AS loss_rank
                          FROM evaluation_results WHERE evaluation_id = {HARD_EVALUATION})
                      WHERE record_id IS NOT NULL
                        AND (verdict = 'wrong' OR loss_rank <= ceil(losses / {HARD_LOSS_PART})))"""


def hard_evaluation(con: duckdb.DuckDBPyConnection, run_id: int) -> int | None:
    """The evaluation id the "hard after run" filter reads for `run_id`, or None when the run has none."""
    return scalar(con, f"SELECT {HARD_EVALUATION}", [run_id])


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue: enough to pick a record, not the record itself."""

    id: int
    dataset: str
    status: str
    category: str | None
    first_user: str
    answer: str
    errors: int
    warnings: int
    version: int
    key: object  # the sort key: with the id, where the next page starts


_ISSUE_COUNTS = f"""(SELECT record_id, count(*) AS issues, count(*) FILTER (WHERE severity = 'error') AS errors
                    FROM {ALL_ISSUES} i GROUP BY record_id)"""
_LATEST_CLUSTER = """(SELECT record_id, cluster FROM cluster_members
                      WHERE run_id = (SELECT max(id) FROM cluster_runs))"""


def queue_page(
    con: duckdb.DuckDBPyConnection,
    flt: ReviewFilter,
    sort: str = "newest",
    after: tuple | None = None,
    limit: int = 50,
) -> tuple[list[QueueRow], int]:
    """Up to `limit` rows in `sort` order, starting after the (key, id) of `after` (None: the first page),
    and how many records match in all, in one query."""
    if sort not in SORTS:
        raise WorkbenchError(f"cannot sort by {sort!r}; sorts are {', '.join(SORTS)}")
    key, direction = SORTS[sort][:2]
    where, params = flt.sql("r")
    joins = ""  # the issue counts and clusters are joined only when the sort needs them
    if "n.issues" in key:
        joins += f" LEFT JOIN {_ISSUE_COUNTS} n0 ON n0.record_id = r.id"
        key = key.replace("n.issues", "coalesce(n0.issues, 0)")
    if "c.cluster" in key:
        joins += f" LEFT JOIN {_LATEST_CLUSTER} c ON c.record_id = r.id"
    start, start_params = "", []
    if after is not None:
        op = "<" if direction == "DESC" else ">"
        start = f"WHERE k {op} ? OR (k = ? AND id {op} ?)"
        start_params = [after[0], after[0], after[1]]
    # Ordering by the id alone (not by id twice) lets DuckDB's top-N skip row groups: 20 ms, not 200, at 1M.
    order = f"id {direction}" if key == "r.id" else f"k {direction}, id {direction}"
    # A text search reads every turn: its matches are materialised once, then counted and cut to the page.
    # Other filters are cheap enough to run twice, and then DuckDB reads the top rows without a full sort.
    materialized = "MATERIALIZED" if flt.text else "NOT MATERIALIZED"
    rows = con.execute(
        f"""
        WITH hits AS {materialized} (SELECT r.id, {key} AS k FROM records r {joins} WHERE {where}),
             page AS MATERIALIZED (SELECT id, k FROM hits {start} ORDER BY {order} LIMIT ?),
             total AS (SELECT count(*) AS n FROM hits)
        SELECT total.n, r.id, r.dataset, r.status, r.category,
               coalesce(list_filter(r.messages, lambda m: m.role = 'user')[1].content, r.messages[1].content, ''),
               coalesce(list_filter(r.messages, lambda m: m.role = 'assistant')[-1].content, ''),
               coalesce(n.errors, 0), coalesce(n.issues, 0) - coalesce(n.errors, 0), r.version, page.k
        FROM total LEFT JOIN page ON true LEFT JOIN records r ON r.id = page.id
        LEFT JOIN (SELECT record_id, count(*) AS issues, count(*) FILTER (WHERE severity = 'error') AS errors
                   FROM {ALL_ISSUES} i WHERE record_id IN (SELECT id FROM page) GROUP BY record_id) n
               ON n.record_id = r.id
        ORDER BY page.k {direction}, r.id {direction}""",
        [*params, *start_params, limit],
    ).fetchall()
    total = rows[0][0] if rows else 0
    page = [
        QueueRow(r[1], r[2], r[3], r[4], _short(r[5]), _short(r[6]), r[7], r[8], r[9], r[10])
        for r in rows
        if r[1] is not None
    ]
    return page, total


def _short(text: str | None, width: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def issues_of_records(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, list[tuple]]:
    """(code, severity, turn, message, fix, stage) of each record in `ids`, in one query."""
    found: dict[int, list[tuple]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = con.execute(
        f"""SELECT record_id, code, severity, turn, message, fix, stage FROM {ALL_ISSUES} i
                           WHERE list_contains(?, record_id) ORDER BY record_id, turn NULLS FIRST, code""",
        [list(ids)],
    ).fetchall()
    for row in rows:
        found[row[0]].append(row[1:])
    return found


def filter_choices(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """The values each filter can take in this store (for the filter widgets)."""

    def column(sql: str) -> list:
        return [r[0] for r in con.execute(sql).fetchall()]

    return {
        "datasets": column("SELECT name FROM datasets ORDER BY name"),
        "categories": column("SELECT DISTINCT coalesce(category, '') FROM records ORDER BY 1"),
        "tags": column("SELECT DISTINCT unnest(tags) FROM records WHERE tags IS NOT NULL ORDER BY 1"),
        "task_types": column("SELECT DISTINCT task_type FROM records WHERE task_type IS NOT NULL ORDER BY 1"),
        "sources": column("SELECT DISTINCT source FROM records WHERE source IS NOT NULL ORDER BY 1"),
        "issue_codes": column(f"SELECT DISTINCT code FROM {ALL_ISSUES} i ORDER BY 1"),
        "clusters": con.execute("""SELECT cluster, name FROM clusters WHERE run_id = (SELECT max(id) FROM cluster_runs)
                                   ORDER BY cluster""").fetchall(),
        # runs the "hard after run" filter can read: with a finished evaluation, newest first
        "hard_runs": column("""SELECT DISTINCT run_id FROM evaluations WHERE run_id IS NOT NULL
                               AND status = 'done' AND system_prompt IS NULL ORDER BY run_id DESC"""),
    }


# --- operations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    id: int
    action: str
    description: str
    author: str
    records: int
    undo_of: int | None
    undone_by: int | None
    created_at: object


def new_operation(
    con: duckdb.DuckDBPyConnection, action: str, description: str, author: str, undo_of: int | None = None
) -> int:
    op_id = scalar(con, "SELECT nextval('seq_operations')")
    con.execute(
        "INSERT INTO operations (id, action, description, author, records, undo_of) VALUES (?, ?, ?, ?, 0, ?)",
        [op_id, action, description, author, undo_of],
    )
    return op_id


def finish_operation(con: duckdb.DuckDBPyConnection, op_id: int) -> int:
    """Record how many records the operation changed (its revisions); returns that number."""
    changed = scalar(con, "SELECT count(*) FROM revisions WHERE operation_id = ?", [op_id])
    con.execute("UPDATE operations SET records = ? WHERE id = ?", [changed, op_id])
    return changed


def get_operation(con: duckdb.DuckDBPyConnection, op_id: int) -> Operation:
    rows = _operations(con, "WHERE o.id = ?", [op_id])
    if not rows:
        raise NotFoundError(f"there is no operation {op_id}")
    return rows[0]


def recent_operations(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[Operation]:
    return _operations(con, "ORDER BY o.id DESC LIMIT ?", [limit])


def _operations(con, tail: str, params: list) -> list[Operation]:
    rows = con.execute(
        f"""SELECT o.id, o.action, o.description, o.author, o.records, o.undo_of,
                                  (SELECT min(u.id) FROM operations u WHERE u.undo_of = o.id), o.created_at
                           FROM operations o {tail}""",
        params,
    ).fetchall()
    return [Operation(*r) for r in rows]


def operation_fields(con: duckdb.DuckDBPyConnection, op_id: int) -> list[str]:
    """The record fields an operation changed."""
    return [
        r[0]
        for r in con.execute(
            """SELECT DISTINCT unnest(json_keys(after)) FROM revisions
                                         WHERE operation_id = ? ORDER BY 1""",
            [op_id],
        ).fetchall()
    ]


def operation_record_ids(con: duckdb.DuckDBPyConnection, op_id: int) -> list[int]:
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT record_id FROM revisions WHERE operation_id = ? ORDER BY 1", [op_id]
        ).fetchall()
    ]


def operation_revisions(
    con: duckdb.DuckDBPyConnection, op_id: int, field: str
) -> list[tuple[int, dict, dict]]:
    """(record id, before, after) of the revisions of an operation that changed `field`."""
    rows = con.execute(
        """SELECT record_id, before, after FROM revisions
                          WHERE operation_id = ? AND json_exists(after, '$.' || ?) ORDER BY id""",
        [op_id, field],
    ).fetchall()
    return [(r[0], json.loads(r[1]) if r[1] else {}, json.loads(r[2]) if r[2] else {}) for r in rows]


def set_field(
    con: duckdb.DuckDBPyConnection,
    flt: ReviewFilter,
    field: str,
    value,
    *,
    add: bool = False,
    dry_run: bool = False,
    op_id: int | None = None,
    author: str = "",
    action: str = "bulk",
) -> int:
    """Set `field` to `value` (with `add`, add the tags in `value`) on every filtered record it changes.

    One set-based UPDATE plus one revision per changed record, carrying `op_id`. With `dry_run`, only
    counts the records it would change. Call inside a transaction.
    """
    if field not in BULK_FIELDS:
        raise WorkbenchError(f"a bulk action cannot set {field!r}; it sets {', '.join(BULK_FIELDS)}")
    where, params = flt.sql("r")
    kind = BULK_FIELDS[field]
    old = "coalesce(r.tags, []::VARCHAR[])" if field == "tags" else f"r.{field}"
    if add:
        if field != "tags":
            raise WorkbenchError("only tags can be added to; other fields are set")
        new = f"list_concat({old}, list_filter(?::VARCHAR[], lambda t: NOT list_contains({old}, t)))"
    else:
        new = f"?::{kind}"
    value_params = [list(value) if field == "tags" else value]
    source = f"SELECT r.id, r.version, {old} AS old, {new} AS new FROM records r WHERE {where}"
    changes = f"SELECT * FROM ({source}) WHERE new IS DISTINCT FROM old"
    all_params = [*value_params, *params]
    if dry_run:
        return scalar(con, f"SELECT count(*) FROM ({changes})", all_params)
    return _write_changes(con, changes, all_params, field, op_id, author, action)


def revert_field(
    con: duckdb.DuckDBPyConnection, op_id: int, field: str, undo_id: int, author: str
) -> tuple[int, int]:
    """Put back `field` on the records operation `op_id` changed, where it still holds what the operation set;
    returns (reverted, left alone because changed since). Call inside a transaction."""
    kind = BULK_FIELDS[field]
    if field == "tags":
        current = "coalesce(r.tags, []::VARCHAR[])"
        before = "coalesce(CAST(json_extract(v.before, '$.tags') AS VARCHAR[]), []::VARCHAR[])"
        after = "coalesce(CAST(json_extract(v.after, '$.tags') AS VARCHAR[]), []::VARCHAR[])"
    else:
        current = f"r.{field}"
        before = f"CAST(json_extract_string(v.before, '$.{field}') AS {kind})"
        after = f"CAST(json_extract_string(v.after, '$.{field}') AS {kind})"
    touched = f"""SELECT r.id, r.version, {current} AS old, {before} AS new, {current} IS NOT DISTINCT FROM {after} AS same
                  FROM revisions v JOIN records r ON r.id = v.record_id
                  WHERE v.operation_id = ? AND json_exists(v.after, '$.{field}')"""
    left = scalar(con, f"SELECT count(*) FROM ({touched}) WHERE NOT same", [op_id])
    changes = f"SELECT id, version, old, new FROM ({touched}) WHERE same AND new IS DISTINCT FROM old"
    done = _write_changes(con, changes, [op_id], field, undo_id, author, "undo", f"undo of operation {op_id}")
    return done, left


def _write_changes(
    con,
    changes_sql: str,
    params: list,
    field: str,
    op_id: int | None,
    author: str,
    action: str,
    note: str | None = None,
) -> int:
    name = f"wb_bulk_{next(_names)}"
    con.execute(f"CREATE TEMP TABLE {name} AS {changes_sql}", params)
    try:
        count = scalar(con, f"SELECT count(*) FROM {name}")
        if count:
            con.execute(
                f"""INSERT INTO revisions (record_id, version, action, before, after, author, note, operation_id)
                SELECT id, version + 1, ?, json_object('{field}', old), json_object('{field}', new), ?, ?, ?
                FROM {name} ORDER BY id""",
                [action, author, note, op_id],
            )
            stored = "CASE WHEN len(t.new) = 0 THEN NULL ELSE t.new END" if field == "tags" else "t.new"
            con.execute(f"""UPDATE records SET {field} = {stored}, version = records.version + 1,
                                   updated_at = current_timestamp
                            FROM {name} t WHERE records.id = t.id""")
        return count
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def fixable_ids(con: duckdb.DuckDBPyConnection, flt: ReviewFilter) -> list[int]:
    """The filtered records that have an issue with a safe autofix."""
    where, params = flt.sql("r")
    return [
        r[0]
        for r in con.execute(
            f"""SELECT DISTINCT record_id FROM record_issues WHERE fix IS NOT NULL
            AND record_id IN (SELECT r.id FROM records r WHERE {where}) ORDER BY 1""",
            params,
        ).fetchall()
    ]
