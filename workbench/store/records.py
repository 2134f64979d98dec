"""SQL for records: selections, reads, edits with optimistic concurrency, and the append-only revision log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import duckdb

from .. import formats
from ..errors import EditConflictError, NotFoundError, WorkbenchError
from . import normaliser
from .connection import first_row, scalar

STATUSES = ("new", "labeled", "fixed", "approved", "rejected")
DATASET_KINDS = ("badcases", "general", "eval")
EDITABLE = ("dataset", "messages", "tools", "category", "task_type", "status", "tags", "source", "bad_output")


@dataclass
class Record:
    id: int
    dataset: str
    messages: list[dict]
    category: str | None = None
    task_type: str | None = None
    status: str = "new"
    tags: list[str] = field(default_factory=list)
    source: str | None = None
    bad_output: str | None = None
    tools: Any = None
    content_hash: str | None = None
    format: str | None = None
    import_id: int | None = None
    line: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    feedback: str | None = None  # a production log's thumb: 'down' or 'up' (formats.py)
    feedback_score: float | None = None
    feedback_comment: str | None = None

    def to_json(self) -> dict:
        """The record as the JSON a user sees and exports (optional message fields left out when unset)."""
        out = {"messages": [formats.message_for_json(m) for m in self.messages]}
        for name in ("category", "task_type", "tags", "source", "bad_output"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.tools is not None:
            out["tools"] = json.loads(self.tools) if isinstance(self.tools, str) else self.tools
        return out


_COLUMNS = [f.name for f in fields(Record)]


@dataclass(frozen=True)
class Selection:
    """Which records an operation applies to; every field narrows it, none means all records."""

    dataset: str | None = None
    datasets: tuple[str, ...] | None = None
    category: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    import_id: int | None = None
    ids: tuple[int, ...] | None = None
    issue_code: str | None = None
    text: str | None = None

    def sql(self, alias: str = "records") -> tuple[str, list]:
        where, params = [], []
        for column, value in (
            ("dataset", self.dataset),
            ("category", self.category),
            ("status", self.status),
            ("import_id", self.import_id),
        ):
            if value is not None:
                where.append(f"{alias}.{column} = ?")
                params.append(value)
        for column, values in (("dataset", self.datasets), ("status", self.statuses), ("id", self.ids)):
            if values is not None:
                where.append(f"list_contains(?, {alias}.{column})")
                params.append(list(values))
        if self.issue_code is not None:
            where.append(f"""({alias}.id IN (SELECT record_id FROM record_issues WHERE code = ?)
                          OR list_contains(list_transform({alias}.import_issues, lambda i: i.code), ?))""")
            params += [self.issue_code, self.issue_code]
        if self.text:
            where.append(
                f"list_bool_or(list_transform({alias}.messages, lambda m: contains(lower(m.content), lower(?))))"
            )
            params.append(self.text)
        return (" AND ".join(where) or "true"), params


def selected_ids(con: duckdb.DuckDBPyConnection, selection: Selection) -> list[int]:
    """The ids of the records a selection names, in order."""
    where, params = selection.sql()
    return [r[0] for r in con.execute(f"SELECT id FROM records WHERE {where} ORDER BY id", params).fetchall()]


def ensure_dataset(con: duckdb.DuckDBPyConnection, name: str, kind: str | None = None) -> str:
    """The dataset's kind, creating it (kind: badcases unless the name is a kind) when new."""
    found = first_row(con, "SELECT kind FROM datasets WHERE name = ?", [name])
    if found:
        if kind and kind != found[0]:
            raise WorkbenchError(f"dataset {name!r} is a {found[0]} dataset, not {kind}; pick another name")
        return found[0]
    kind = kind or (name if name in DATASET_KINDS else "badcases")
    if kind not in DATASET_KINDS:
        raise WorkbenchError(f"unknown dataset kind {kind!r}; use one of {', '.join(DATASET_KINDS)}")
    con.execute("INSERT INTO datasets (name, kind) VALUES (?, ?)", [name, kind])
    return kind


def list_datasets(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    return con.execute("""
        SELECT d.name, d.kind, count(r.id) FROM datasets d LEFT JOIN records r ON r.dataset = d.name
        GROUP BY d.name, d.kind ORDER BY d.name""").fetchall()


def get_record(con: duckdb.DuckDBPyConnection, record_id: int) -> Record:
    row = first_row(con, f"SELECT {', '.join(_COLUMNS)} FROM records WHERE id = ?", [record_id])
    if row is None:
        raise NotFoundError(f"there is no record {record_id}")
    return _record(row)


def _record(row: tuple) -> Record:
    rec = Record(*row)
    rec.tags = list(rec.tags or [])
    return rec


def list_records(
    con: duckdb.DuckDBPyConnection,
    selection: Selection = Selection(),
    *,
    limit: int = 50,
    offset: int = 0,
    order: str = "id",
) -> list[Record]:
    if order not in ("id", "-id", "updated_at", "-updated_at"):
        raise WorkbenchError(f"cannot order records by {order!r}")
    direction = "DESC" if order.startswith("-") else "ASC"
    where, params = selection.sql()
    rows = con.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM records WHERE {where} ORDER BY {order.lstrip('-')} {direction} "
        f"LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_record(r) for r in rows]


def insert_record(
    con: duckdb.DuckDBPyConnection, record: Record, author: str, note: str | None = None
) -> int:
    """Add one record (typed or pasted in, or from the playground); returns its id."""
    ensure_dataset(con, record.dataset)
    _validate(record.status, record.messages)
    normaliser.install_macros(con)
    record_id = scalar(con, "SELECT coalesce(max(id), 0) + 1 FROM records")
    con.execute(
        f"""
        INSERT INTO records (id, dataset, messages, tools, category, task_type, status, tags, source, bad_output,
                             content_hash, format, import_issues, created_at, updated_at, version)
        SELECT ?, ?, m, ?, ?, ?, ?, ?, ?, ?, wb_content_hash(m), 'messages', [], current_timestamp, current_timestamp, 1
        FROM (SELECT ?::{normaliser.MESSAGE_TYPE}[] AS m)""",
        [
            record_id,
            record.dataset,
            _json_or_none(record.tools),
            record.category,
            record.task_type,
            record.status,
            record.tags or None,
            record.source,
            record.bad_output,
            [formats.canonical_message(m) for m in record.messages],
        ],
    )
    _log(con, record_id, 1, "create", None, _snapshot(get_record(con, record_id), EDITABLE), author, note)
    return record_id


def update_record(
    con: duckdb.DuckDBPyConnection,
    record_id: int,
    expected_version: int,
    changes: dict[str, Any],
    author: str,
    action: str = "edit",
    note: str | None = None,
    operation_id: int | None = None,
) -> Record:
    """Apply `changes` if the record is still at `expected_version`; logs a revision (part of bulk operation
    `operation_id` when given). Call inside a transaction."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise WorkbenchError(
            f"cannot edit {', '.join(sorted(unknown))}; editable fields: {', '.join(EDITABLE)}"
        )
    current = get_record(con, record_id)
    if current.version != expected_version:
        raise EditConflictError(record_id, expected_version, current.version)
    if "messages" in changes:
        changes = {**changes, "messages": [formats.canonical_message(m) for m in changes["messages"]]}
    if "status" in changes or "messages" in changes:
        _validate(changes.get("status", current.status), changes.get("messages", current.messages))
    if "dataset" in changes:
        ensure_dataset(con, changes["dataset"])
    before = _snapshot(current, changes)
    after = {k: _comparable(v) for k, v in changes.items()}
    changed = {k for k in changes if before.get(k) != after.get(k)}
    if not changed:
        return current
    normaliser.install_macros(con)
    sets, params = [], []
    for name in sorted(changed):
        value = changes[name]
        if name == "messages":
            sets.append(f"messages = ?::{normaliser.MESSAGE_TYPE}[]")
        elif name == "tools":
            value = _json_or_none(value)
            sets.append("tools = ?")
        else:
            sets.append(f"{name} = ?")
        params.append(value if name != "tags" else (list(value) if value else None))
    con.execute(
        f"UPDATE records SET {', '.join(sets)}, version = version + 1, updated_at = current_timestamp "
        f"WHERE id = ? AND version = ?",
        [*params, record_id, expected_version],
    )
    if "messages" in changed:
        con.execute("UPDATE records SET content_hash = wb_content_hash(messages) WHERE id = ?", [record_id])
    _log(
        con,
        record_id,
        expected_version + 1,
        action,
        {k: before.get(k) for k in sorted(changed)},
        {k: after[k] for k in sorted(changed)},
        author,
        note,
        operation_id,
    )
    return get_record(con, record_id)


def _validate(status: str, messages: list[dict]) -> None:
    if status not in STATUSES:
        raise WorkbenchError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if not messages:
        raise WorkbenchError("a record needs at least one message")


def _comparable(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [formats.message_for_json(m) for m in value]
    if isinstance(value, tuple):
        return list(value)
    return value


def _snapshot(record: Record, names) -> dict:
    return {name: _comparable(getattr(record, name)) for name in names}


def _json_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _log(
    con,
    record_id: int,
    version: int,
    action: str,
    before: dict | None,
    after: dict | None,
    author: str,
    note: str | None,
    operation_id: int | None = None,
) -> None:
    con.execute(
        "INSERT INTO revisions (record_id, version, action, before, after, author, note, operation_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [record_id, version, action, _dump(before), _dump(after), author, note, operation_id],
    )


def _dump(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Revision:
    id: int
    record_id: int
    version: int
    action: str
    before: dict | None
    after: dict | None
    author: str
    note: str | None
    created_at: datetime


def revisions_of(con: duckdb.DuckDBPyConnection, record_id: int) -> list[Revision]:
    rows = con.execute(
        "SELECT id, record_id, version, action, before, after, author, note, created_at FROM revisions "
        "WHERE record_id = ? ORDER BY id",
        [record_id],
    ).fetchall()
    return [
        Revision(
            r[0],
            r[1],
            r[2],
            r[3],
            json.loads(r[4]) if r[4] else None,
            json.loads(r[5]) if r[5] else None,
            r[6],
            r[7],
            r[8],
        )
        for r in rows
    ]


def get_revision(con: duckdb.DuckDBPyConnection, revision_id: int) -> Revision:
    row = first_row(con, "SELECT record_id FROM revisions WHERE id = ?", [revision_id])
    if row is None:
        raise NotFoundError(f"there is no revision {revision_id}")
    return next(r for r in revisions_of(con, row[0]) if r.id == revision_id)


def recent_revisions(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple]:
    return con.execute(
        "SELECT created_at, author, action, record_id, version FROM revisions ORDER BY id DESC LIMIT ?",
        [limit],
    ).fetchall()
