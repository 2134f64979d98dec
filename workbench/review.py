"""The Review queue as library calls: filtered keyset pages with a count, one record with its issues, history
and diffs, saves with optimistic concurrency, one-click fixes, and bulk actions that one undo reverts. The
Review page is a layout over these; each opens the store once. It also re-exports what the page shows beside
them: the filter in a link (`review_links`), the record as the trainer sees it (`train.data.training_view`)
and why a record is hard after a run (`evaluate.hard.why_hard`).
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import checks, curation, roles
from .errors import EditConflictError, WorkbenchError
from .formats import message_for_json
from .review_links import filter_from_params, filter_to_params
from .store import Store
from .store import review as sql
from .store import settings as store_settings
from .store.records import STATUSES, Record, Revision, Selection, get_record, revisions_of, update_record
from .store.review import (
    DUPLICATE_STATES,
    FEEDBACK_STATES,
    SORTS,
    TEXT_FIELDS,
    Operation,
    QueueRow,
    ReviewFilter,
)

if TYPE_CHECKING:
    from .evaluate.hard import why_hard
    from .train.data import TrainingEncoder, TrainingView, load_training_encoder, training_view

__all__ = [
    "DUPLICATE_STATES",
    "FEEDBACK_STATES",
    "SORTS",
    "STATUSES",
    "TEXT_FIELDS",
    "BulkAction",
    "Operation",
    "QueuePage",
    "QueueRow",
    "RecordView",
    "ReviewFilter",
    "TrainingEncoder",
    "TrainingView",
    "filter_from_params",
    "filter_to_params",
    "load_queue",
    "open_record",
    "save_record",
    "fix_issue",
    "undo_revision",
    "revision_diff",
    "preview_bulk",
    "apply_bulk",
    "undo_operation",
    "recent_operations",
    "filter_choices",
    "training_view",
    "why_hard",
    "load_training_encoder",
]

PAGE_SIZE = 50

# why_hard and the training view live with the hard records and the trainer's data; a page that shows neither
# need not load the evaluation package and the trainer's data module (0.1-0.2 s), so they load on first use.
_ELSEWHERE = {
    "why_hard": "workbench.evaluate.hard",
    "TrainingEncoder": "workbench.train.data",
    "TrainingView": "workbench.train.data",
    "load_training_encoder": "workbench.train.data",
    "training_view": "workbench.train.data",
}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the queue -------------------------------------------------------------------------------------------


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int  # records matching the filter
    next_after: tuple | None  # where the next page starts; None on the last page

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


def load_queue(
    store: Store, flt: ReviewFilter, sort: str = "newest", after: tuple | None = None, limit: int = PAGE_SIZE
) -> QueuePage:
    """One page of the queue (keyset: `after` is the previous page's `next_after`) and the matching count."""
    with store.connect(read_only=True) as con:
        rows, total = sql.queue_page(con, flt, sort, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return QueuePage(rows, total, (rows[-1].key, rows[-1].id) if more else None)


def filter_choices(store: Store) -> dict[str, list]:
    with store.connect(read_only=True) as con:
        return sql.filter_choices(con)


# --- one record ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    code: str
    severity: str
    turn: int | None
    message: str
    fix: str | None
    stage: str


@dataclass(frozen=True)
class FieldDiff:
    """One field a revision changed: its value before and after, and for text a line diff."""

    field: str
    before: Any
    after: Any
    diff: str


@dataclass
class RecordView:
    record: Record
    issues: list[Issue]
    history: list[Revision]
    max_tokens: int
    target_model: str
    labels: tuple[str, ...] = ()  # the answers its category's labels contract allows (none: no such contract)


def open_record(store: Store, record_id: int) -> RecordView:
    """A record with its issues, its history and its category's labels, read in one turn on the store."""
    with store.connect(read_only=True) as con:
        record = get_record(con, record_id)
        issues = [Issue(*row) for row in sql.issues_of_records(con, [record_id])[record_id]]
        history = revisions_of(con, record_id)
        max_tokens = int(store_settings.get_setting(con, "max_tokens"))
        target = str(store_settings.get_setting(con, "target_model"))
        contract = store_settings.get_contracts(con).get(record.category or "")
    labels = tuple(contract.spec) if contract is not None and contract.kind == "labels" else ()
    return RecordView(record, issues, history, max_tokens, target, labels)


def feedback_line(record: Record) -> str | None:
    """What the served model's user said about its answer, as one line of text (None without feedback)."""
    parts = []
    if record.feedback:
        parts.append({"down": "thumbs down", "up": "thumbs up"}.get(record.feedback, record.feedback))
    if record.feedback_score is not None:
        parts.append(f"score {record.feedback_score:g}")
    if record.feedback_comment:
        parts.append(f"“{record.feedback_comment}”")
    return "Feedback: " + " · ".join(parts) if parts else None


def save_record(
    store: Store,
    record_id: int,
    expected_version: int,
    changes: dict[str, Any],
    author: str,
    note: str | None = None,
) -> Record:
    """Save an edit made from `expected_version`: a new revision, re-checked. A stale version raises
    EditConflictError and writes nothing."""
    if "messages" in changes:
        changes = {
            **changes,
            "messages": [m for m in changes["messages"] if m.get("role") or m.get("content")],
        }
    if "tags" in changes:
        changes = {**changes, "tags": [t.strip() for t in changes["tags"] if t and t.strip()]}
    return curation.edit_record(store, record_id, expected_version, changes, author, note or None)


EDITED_FIELDS = ("messages", "category", "tags", "task_type", "status")


def editable_fields(record: Record) -> dict[str, Any]:
    """The fields the Review page edits, as a draft starts from them."""
    return {
        "messages": [dict(m) for m in record.messages],
        "category": record.category,
        "tags": list(record.tags),
        "task_type": record.task_type,
        "status": record.status,
    }


def draft_changes(start: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    """The fields a draft changed from where it started (so a save after someone else's edit writes only
    what this person changed, and keeps the other person's changes to the other fields)."""

    def same(a: Any, b: Any) -> bool:
        if (
            isinstance(a, list)
            and isinstance(b, list)
            and (a and isinstance(a[0], dict) or b and isinstance(b[0], dict))
        ):
            clean = lambda ms: [{k: v for k, v in m.items() if v not in (None, "")} for m in ms]  # noqa: E731
            return clean(a) == clean(b)
        return (a or None) == (b or None)

    return {k: v for k, v in draft.items() if not same(start.get(k), v)}


def fix_issue(
    store: Store, record_id: int, expected_version: int, code: str, turn: int | None, author: str
) -> Record:
    """Apply the safe autofix of one issue of a record (one click), as a revision."""
    roles.require(store, "fix", author, record_id=record_id)
    with store.transaction() as con:
        record = get_record(con, record_id)
        if record.version != expected_version:
            raise EditConflictError(record_id, expected_version, record.version)
        ctx = checks.context_for_store(con, store.models_dir if store.root else None)
        found = [
            i
            for i in checks.check_record(record.messages, record.category, ctx)
            if i.code == code and i.turn == turn and i.fix
        ]
        if not found:
            raise WorkbenchError(
                f"record {record_id} no longer has a fixable {code} issue"
                f"{f' in turn {turn}' if turn else ''}; reload it"
            )
        messages = checks.fix_issue(record.messages, found[0])
        updated = update_record(
            con, record_id, record.version, {"messages": messages}, author, "autofix", f"fixed: {code}"
        )
        checks.run_checks(con, Selection(ids=(record_id,)), ctx)
        return updated


def undo_revision(store: Store, revision_id: int, author: str) -> Record:
    """Undo one revision of a record, as a new revision."""
    return curation.undo_revision(store, revision_id, author)


def revision_diff(revision: Revision) -> list[FieldDiff]:
    """What a revision changed, field by field; messages and other text get a line diff."""
    out = []
    for name in revision.after or {}:
        before = (revision.before or {}).get(name)
        after = (revision.after or {}).get(name)
        out.append(FieldDiff(name, before, after, _text_diff(name, _as_lines(before), _as_lines(after))))
    return out


def _as_lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and value and isinstance(value[0], dict):
        lines = []
        for n, m in enumerate(value, 1):
            lines.append(f"[{n}] {m.get('role')}:")
            lines += [f"    {line}" for line in str(m.get("content") or "").splitlines() or [""]]
        return lines
    if isinstance(value, list):
        return [", ".join(map(str, value))]
    return str(value).splitlines() or [""]


def _text_diff(name: str, before: list[str], after: list[str]) -> str:
    return "\n".join(difflib.unified_diff(before, after, f"{name} before", f"{name} after", lineterm="", n=2))


# --- bulk actions ----------------------------------------------------------------------------------------------

# The first is the default: adding a tag changes nothing else and one undo takes it away.
BULK_KINDS = {
    "add_tags": "add tags",
    "tags": "set tags",
    "category": "set category",
    "status": "set status",
    "autofix": "apply safe autofixes",
    "reject": "delete (set status rejected)",
}


@dataclass(frozen=True)
class BulkAction:
    """What a bulk action does: kind is one of BULK_KINDS; value the status, category or tags."""

    kind: str
    value: Any = None

    def describe(self) -> str:
        if self.kind in ("autofix", "reject"):
            return BULK_KINDS[self.kind]
        value = ", ".join(self.value) if isinstance(self.value, (list, tuple)) else self.value
        return (
            f"{BULK_KINDS[self.kind]} {value!r}" if self.kind != "category" or value else "clear the category"
        )

    def field_change(self) -> tuple[str, Any, bool]:
        """(field, value, add) for the set-based kinds."""
        if self.kind not in BULK_KINDS:
            raise WorkbenchError(f"unknown bulk action {self.kind!r}; actions are {', '.join(BULK_KINDS)}")
        if self.kind == "reject":
            return "status", "rejected", False
        if self.kind == "status" and self.value not in STATUSES:
            raise WorkbenchError(f"unknown status {self.value!r}; use one of {', '.join(STATUSES)}")
        if self.kind in ("tags", "add_tags"):
            tags = [t.strip() for t in (self.value or []) if t and t.strip()]
            if self.kind == "add_tags" and not tags:
                raise WorkbenchError("name at least one tag to add")
            return "tags", tags, self.kind == "add_tags"
        return self.kind, (self.value or None) if self.kind == "category" else self.value, False


@dataclass
class BulkResult:
    operation_id: int | None
    changed: int
    description: str


def preview_bulk(store: Store, target: ReviewFilter, action: BulkAction) -> int:
    """How many records the action would change (records it would leave as they are are not counted)."""
    with store.connect(read_only=True) as con:
        if action.kind == "autofix":
            return len(sql.fixable_ids(con, target))
        name, value, add = action.field_change()
        return sql.set_field(con, target, name, value, add=add, dry_run=True)


def apply_bulk(
    store: Store,
    target: ReviewFilter,
    action: BulkAction,
    author: str,
    progress: Callable[[int, int], None] | None = None,
) -> BulkResult:
    """Run a bulk action on every record `target` matches, as one operation (undo_operation reverts it)."""
    roles.require(store, "bulk", author)
    description = action.describe()
    with store.transaction() as con:
        op_id = sql.new_operation(con, action.kind, description, author)
        if action.kind == "autofix":
            ctx = checks.context_for_store(con, store.models_dir if store.root else None)
            ids = sql.fixable_ids(con, target)
            for n, record_id in enumerate(ids, 1):
                record = get_record(con, record_id)
                messages, applied = checks.fix_record(record.messages, record.category, ctx)
                if applied:
                    update_record(
                        con,
                        record_id,
                        record.version,
                        {"messages": messages},
                        author,
                        "autofix",
                        "fixed: " + ", ".join(sorted({i.code for i in applied})),
                        operation_id=op_id,
                    )
                if progress:
                    progress(n, len(ids))
            if ids:
                checks.run_checks(con, Selection(ids=tuple(ids)), ctx)
        else:
            name, value, add = action.field_change()
            sql.set_field(
                con, target, name, value, add=add, op_id=op_id, author=author, action=f"bulk-{name}"
            )
            if name == "category":
                _recheck_contracts(con, store, op_id)
        changed = sql.finish_operation(con, op_id)
    return BulkResult(op_id, changed, description)


def _recheck_contracts(con, store: Store, op_id: int) -> None:
    """A record's category decides which output contract it is held to: re-check the records an operation
    moved, when there are contracts at all."""
    ctx = checks.context_for_store(con, store.models_dir if store.root else None)
    if ctx.contracts:
        ids = tuple(sql.operation_record_ids(con, op_id))
        if ids:
            checks.run_checks(con, Selection(ids=ids), ctx)


@dataclass
class UndoReport:
    operation_id: int  # the undo's own operation
    reverted: int
    left_alone: int  # records changed again since; undo them one by one from their history


def undo_operation(store: Store, op_id: int, author: str) -> UndoReport:
    """Revert everything operation `op_id` changed, as one new operation. A record changed again since keeps
    its newer value (counted in left_alone)."""
    roles.require(store, "bulk", author)
    with store.transaction() as con:
        op = sql.get_operation(con, op_id)
        if op.undone_by is not None:
            raise WorkbenchError(
                f"operation {op_id} ({op.description}) was already undone by operation {op.undone_by}"
            )
        undo_id = sql.new_operation(con, "undo", f"undo of #{op_id}: {op.description}", author, undo_of=op_id)
        reverted = left = 0
        changed_fields = sql.operation_fields(con, op_id)
        for name in changed_fields:  # status, category, tags: set-based
            if name in sql.BULK_FIELDS:
                done, skipped = sql.revert_field(con, op_id, name, undo_id, author)
                reverted, left = reverted + done, left + skipped
        slow = [name for name in changed_fields if name not in sql.BULK_FIELDS]
        for name in slow:  # messages (autofixes): record by record
            for record_id, before, after in sql.operation_revisions(con, op_id, name):
                record = get_record(con, record_id)
                current = {k: _comparable(getattr(record, k)) for k in after}
                if current != after:
                    left += 1
                    continue
                update_record(
                    con,
                    record_id,
                    record.version,
                    before,
                    author,
                    "undo",
                    f"undo of operation {op_id}",
                    operation_id=undo_id,
                )
                reverted += 1
        if slow or "category" in changed_fields:
            ctx = checks.context_for_store(con, store.models_dir if store.root else None)
            if slow or ctx.contracts:
                checks.run_checks(con, Selection(ids=tuple(sql.operation_record_ids(con, op_id))), ctx)
        sql.finish_operation(con, undo_id)
    return UndoReport(undo_id, reverted, left)


def _comparable(value: Any) -> Any:
    """A record's field as its revisions hold it (messages as JSON, the way update_record logs them)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return json.loads(json.dumps([message_for_json(m) for m in value], ensure_ascii=False, default=str))
    return value


def recent_operations(store: Store, limit: int = 10) -> list[Operation]:
    with store.connect(read_only=True) as con:
        return sql.recent_operations(con, limit)
