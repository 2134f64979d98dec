"""Assigned queues: an owner hands a Review filter's records to labellers (round-robin or by share, each record
to `overlap` of them), each labeller works through "my queue", and releasing or reassigning keeps the history.

A record given to several labellers (overlap > 1) is answered blind: each answer is kept apart from the record
(`submit_answer`), and agreement.py compares them; the answer a reviewer settles on is what trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import roles
from .errors import NotFoundError, WorkbenchError
from .review_links import filter_to_params
from .store import Store
from .store import accounts as account_sql
from .store import queues as sql
from .store.queues import QueueProgress
from .store.review import ReviewFilter

__all__ = [
    "AssignReport",
    "QueueProgress",
    "assign",
    "queue_progress",
    "reassign",
    "release",
    "submit_answer",
]


@dataclass(frozen=True)
class AssignReport:
    records: int  # records distributed
    per_labeller: dict[str, int]  # assignments each labeller got
    overlap: int
    skipped: int  # records of the filter already in someone's queue


def describe_filter(flt: ReviewFilter) -> str:
    params = filter_to_params(flt)
    return " ".join(f"{k}={','.join(v)}" for k, v in params.items()) or "all records"


def split(record_ids: Sequence[int], shares: dict[str, float], overlap: int) -> list[tuple[int, str]]:
    """(record, labeller) pairs: each record to `overlap` different labellers, each labeller's load in
    proportion to its share (equal shares: round-robin), ties to the labeller named first."""
    names = list(shares)
    load = dict.fromkeys(names, 0)
    pairs = []
    for record_id in record_ids:
        chosen = sorted(names, key=lambda n: ((load[n] + 1) / shares[n], names.index(n)))[:overlap]
        for name in chosen:
            load[name] += 1
            pairs.append((record_id, name))
    return pairs


def assign(
    store: Store,
    flt: ReviewFilter,
    labellers: Sequence[str] | dict[str, float],
    *,
    overlap: int = 1,
    author: str | None = None,
) -> AssignReport:
    """Distribute the records `flt` holds that are in no queue now: round-robin over a list of labellers, or by
    share over {labeller: share}; each record to `overlap` of them (2 or more: for agreement)."""
    shares = dict(labellers) if isinstance(labellers, dict) else dict.fromkeys(labellers, 1.0)
    if not shares:
        raise WorkbenchError("name at least one labeller to assign the records to")
    if not 1 <= overlap <= len(shares):
        raise WorkbenchError(
            f"overlap {overlap} needs at least {overlap} labellers, and {len(shares)} were named: "
            f"name more labellers or lower the overlap"
        )
    if any(share <= 0 for share in shares.values()):
        raise WorkbenchError("every share must be above 0: leave a labeller out instead of giving 0")
    with store.transaction() as con:
        roles.require_in(con, "assign", author)
        unknown = [n for n in shares if account_sql.account_role(con, n) is None]
        if unknown:
            raise NotFoundError(f"no account {', '.join(map(repr, unknown))}: `workbench users` lists them")
        matching = sql.count_matching(con, flt)
        ids = sql.unassigned_ids(con, flt)
        pairs = split(ids, shares, overlap)
        if pairs:
            by = author or roles.current_actor()
            batch = describe_filter(flt)
            sql.insert_assignments(con, [r for r, _ in pairs], [n for _, n in pairs], overlap, batch, by)
    per = {n: sum(1 for _, m in pairs if m == n) for n in shares}
    return AssignReport(len(ids), per, overlap, matching - len(ids))


def release(store: Store, labeller: str, *, author: str | None = None) -> int:
    """Take every record out of `labeller`'s queue (the assignments stay, marked released). Returns how many."""
    with store.transaction() as con:
        roles.require_in(con, "assign", author)
        return len(sql.release(con, labeller, author or roles.current_actor()))


def reassign(store: Store, from_labeller: str, to_labeller: str, *, author: str | None = None) -> int:
    """Move what `from_labeller` has not done yet to `to_labeller` (both assignments are kept in the history)."""
    with store.transaction() as con:
        roles.require_in(con, "assign", author)
        if account_sql.account_role(con, to_labeller) is None:
            raise NotFoundError(f"no account {to_labeller!r}: `workbench users` lists them")
        by = author or roles.current_actor()
        open_ids = sql.not_done_ids(con, from_labeller)
        moved = sql.release(con, from_labeller, by, open_ids)
        if moved:
            sql.insert_assignments(
                con, moved, [to_labeller] * len(moved), 1, f"reassigned from {from_labeller}", by
            )
        return len(moved)


def queue_progress(store: Store, labellers: Sequence[str] | None = None) -> list[QueueProgress]:
    """Done / assigned per labeller (all with a queue, or those named)."""
    with store.connect(read_only=True) as con:
        return sql.progress(con, list(labellers) if labellers else None)


def has_queue(store: Store, labeller: str) -> bool:
    return any(p.assigned for p in queue_progress(store, [labeller]))


def answer_mode(store: Store, record_id: int, labeller: str | None) -> bool:
    """True when `labeller` answers this record blind (it went to several labellers), not by editing it."""
    if not labeller:
        return False
    with store.connect(read_only=True) as con:
        return sql.active_overlap(con, record_id, labeller) > 1


def submit_answer(store: Store, record_id: int, labeller: str, answer: str) -> None:
    """Keep `labeller`'s own answer to a record given to several labellers (replacing their earlier one)."""
    roles.require(store, "fix", labeller, record_id=record_id)
    if not answer.strip():
        raise WorkbenchError(
            f"record {record_id}: the answer is empty; write the answer the model should give"
        )
    with store.transaction() as con:
        if sql.active_overlap(con, record_id, labeller) < 2:
            raise WorkbenchError(
                f"record {record_id} is not in {labeller!r}'s queue for agreement: edit it in Review instead"
            )
        sql.upsert_answer(con, record_id, labeller, answer.strip())


def my_answer(store: Store, record_id: int, labeller: str) -> str | None:
    with store.connect(read_only=True) as con:
        return dict(sql.answers_of(con, record_id)).get(labeller)
