"""The SQL of assigned queues, the answers several labellers give one record, and the audit of revisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from .connection import scalar
from .review import ReviewFilter

ACTIVE = "released_at IS NULL"


@dataclass(frozen=True)
class QueueProgress:
    assignee: str
    assigned: int
    done: int  # records the assignee changed (or answered) since they were assigned


@dataclass(frozen=True)
class AuditRow:
    author: str
    day: date
    revisions: int
    records: int
    actions: str  # e.g. "edit 12, status 3"
    first_at: datetime
    last_at: datetime


def unassigned_ids(con, flt: ReviewFilter) -> list[int]:
    """The records a filter holds that no one has in their queue now, in id order."""
    where, params = flt.sql("r")
    rows = con.execute(
        f"SELECT id FROM records r WHERE {where} AND r.id NOT IN (SELECT record_id FROM assignments WHERE {ACTIVE})"
        " ORDER BY id",
        params,
    ).fetchall()
    return [row[0] for row in rows]


def count_matching(con, flt: ReviewFilter) -> int:
    where, params = flt.sql("r")
    return scalar(con, f"SELECT count(*) FROM records r WHERE {where}", params)


def not_done_ids(con, assignee: str) -> list[int]:
    """The records in `assignee`'s queue they have not changed or answered since they got them."""
    rows = con.execute(
        f"""SELECT a.record_id FROM assignments a WHERE a.assignee = ? AND a.{ACTIVE}
            AND NOT EXISTS (SELECT 1 FROM revisions v WHERE v.record_id = a.record_id AND v.author = a.assignee
                            AND v.created_at >= a.assigned_at)
            AND NOT EXISTS (SELECT 1 FROM answers w WHERE w.record_id = a.record_id AND w.labeller = a.assignee)
            ORDER BY a.record_id""",
        [assignee],
    ).fetchall()
    return [row[0] for row in rows]


def insert_assignments(
    con, record_ids: list[int], assignees: list[str], overlap: int, batch: str, assigned_by: str | None
) -> None:
    con.execute(
        "INSERT INTO assignments (record_id, assignee, overlap, batch, assigned_by)"
        " SELECT unnest(?::BIGINT[]), unnest(?::VARCHAR[]), ?, ?, ?",
        [record_ids, assignees, overlap, batch, assigned_by],
    )


def release(con, assignee: str, released_by: str | None, record_ids: list[int] | None = None) -> list[int]:
    """End `assignee`'s active assignments (of `record_ids`, or all); the rows stay. Returns the record ids."""
    extra, params = ("AND list_contains(?, record_id)", [record_ids]) if record_ids is not None else ("", [])
    rows = con.execute(
        f"UPDATE assignments SET released_at = current_timestamp, released_by = ?"
        f" WHERE assignee = ? AND {ACTIVE} {extra} RETURNING record_id",
        [released_by, assignee, *params],
    ).fetchall()
    return sorted(row[0] for row in rows)


def any_active(con) -> bool:
    return bool(scalar(con, f"SELECT count(*) > 0 FROM (SELECT 1 FROM assignments WHERE {ACTIVE} LIMIT 1)"))


def is_assigned(con, record_id: int, assignee: str) -> bool:
    return bool(
        scalar(
            con,
            f"SELECT count(*) > 0 FROM assignments WHERE record_id = ? AND assignee = ? AND {ACTIVE}",
            [record_id, assignee],
        )
    )


def active_overlap(con, record_id: int, assignee: str) -> int:
    """The overlap of `assignee`'s active assignment of the record (0: not assigned to them)."""
    return scalar(
        con,
        f"SELECT coalesce(max(overlap), 0) FROM assignments WHERE record_id = ? AND assignee = ? AND {ACTIVE}",
        [record_id, assignee],
    )


def progress(con, assignees: list[str] | None = None) -> list[QueueProgress]:
    """Per assignee: active assignments, and how many of them they changed or answered since assigned."""
    where, params = (f"{ACTIVE} AND list_contains(?, a.assignee)", [assignees]) if assignees else (ACTIVE, [])
    rows = con.execute(
        f"""SELECT a.assignee, count(*),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM revisions v WHERE v.record_id = a.record_id
                                                   AND v.author = a.assignee AND v.created_at >= a.assigned_at)
                                       OR EXISTS (SELECT 1 FROM answers w WHERE w.record_id = a.record_id
                                                   AND w.labeller = a.assignee))
            FROM assignments a WHERE {where} GROUP BY a.assignee ORDER BY a.assignee""",
        params,
    ).fetchall()
    return [QueueProgress(*row) for row in rows]


def assignment_history(con, record_id: int) -> list[tuple]:
    return con.execute(
        "SELECT assignee, batch, assigned_by, assigned_at, released_at, released_by FROM assignments"
        " WHERE record_id = ? ORDER BY id",
        [record_id],
    ).fetchall()


def upsert_answer(con, record_id: int, labeller: str, answer: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO answers (record_id, labeller, answer) VALUES (?, ?, ?)",
        [record_id, labeller, answer],
    )


def answers_of(con, record_id: int) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT labeller, answer FROM answers WHERE record_id = ? ORDER BY labeller", [record_id]
    ).fetchall()


def answered_records(con) -> list[tuple[int, str | None, list, bool]]:
    """(record id, category, [(labeller, answer)], settled) for every record answered by two or more people."""
    return con.execute(
        """SELECT w.record_id, r.category, list((w.labeller, w.answer) ORDER BY w.labeller),
                  bool_and(w.settled_at IS NOT NULL)
           FROM answers w JOIN records r ON r.id = w.record_id
           GROUP BY w.record_id, r.category HAVING count(*) >= 2 ORDER BY w.record_id"""
    ).fetchall()


def mark_settled(con, record_id: int) -> None:
    con.execute("UPDATE answers SET settled_at = current_timestamp WHERE record_id = ?", [record_id])


def audit(con, since: date | None = None, author: str | None = None) -> list[AuditRow]:
    """Revisions per person per day, newest day first."""
    where, params = ["true"], []
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    if author is not None:
        where.append("author = ?")
        params.append(author)
    rows = con.execute(
        f"""WITH v AS (SELECT author, CAST(created_at AS DATE) AS day, action, record_id, created_at
                       FROM revisions WHERE {" AND ".join(where)}),
                 by_action AS (SELECT author, day, action, count(*) AS n FROM v GROUP BY ALL),
                 totals AS (SELECT author, day, count(*) AS revisions, count(DISTINCT record_id) AS records,
                                   min(created_at) AS first_at, max(created_at) AS last_at FROM v GROUP BY ALL)
            SELECT t.author, t.day, t.revisions, t.records,
                   (SELECT string_agg(b.action || ' ' || b.n, ', ' ORDER BY b.n DESC, b.action) FROM by_action b
                    WHERE b.author = t.author AND b.day = t.day),
                   t.first_at, t.last_at
            FROM totals t ORDER BY t.day DESC, t.author""",
        params,
    ).fetchall()
    return [AuditRow(*row) for row in rows]
