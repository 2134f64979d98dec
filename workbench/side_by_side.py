"""Two evaluations of the same set, record by record: the prompt, both answers with what differs marked, the
reference, both verdicts and what changed (fixed, regressed, still wrong). The Evaluate page shows these."""

from __future__ import annotations

from dataclasses import dataclass

from .dedup import text_diff
from .errors import WorkbenchError
from .store import Store
from .store import evaluations as sql

CHANGES = ("fixed", "regressed", "still_wrong", "still_right", "pending")


@dataclass
class SideBySide:
    """One record scored by both evaluations."""

    record_key: str
    record_id: int | None
    category: str | None
    prompt: str
    reference: str | None
    before: str | None
    after: str | None
    verdict_before: str
    verdict_after: str
    change: str
    seq_after: int
    human_verdict_after: str | None
    diff: str

    @property
    def needs_person(self) -> bool:
        """No contract decides this category: a person's verdict does (better, same, worse, both bad)."""
        return self.verdict_after == "pending" or self.human_verdict_after is not None


def effective(row: sql.ResultRow) -> str:
    """The verdict that counts, as the store counts it: a person's verdict decides a pending answer."""
    if row.output is None:
        return "pending"
    if row.verdict == "pending" and row.human_verdict in ("better", "same"):
        return "right"
    if row.verdict == "pending" and row.human_verdict in ("worse", "both_bad"):
        return "wrong"
    return row.verdict or "pending"


def change_of(before: str, after: str) -> str:
    if "pending" in (before, after):
        return "pending"
    if before == "wrong":
        return "fixed" if after == "right" else "still_wrong"
    return "still_right" if after == "right" else "regressed"


def prompt_text(messages: list[dict]) -> str:
    """The last user turn (the question the answers reply to)."""
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def side_by_side(
    store: Store, before: int, after: int, *, change: str | None = None, limit: int | None = 50
) -> tuple[list[SideBySide], dict[str, int]]:
    """The records both evaluations scored, in the `after` evaluation's order, narrowed to one kind of change
    (fixed, regressed, still_wrong, still_right, pending) when given; with the count of each kind."""
    if change is not None and change not in CHANGES:
        raise WorkbenchError(f"unknown change {change!r}; use one of {', '.join(CHANGES)}")
    with store.connect(read_only=True) as con:
        sql.get_evaluation(con, before)
        sql.get_evaluation(con, after)
        first = {r.record_key: r for r in sql.results(con, before)}
        second = sql.results(con, after)
    counts = dict.fromkeys(CHANGES, 0)
    rows: list[SideBySide] = []
    for b in second:
        a = first.get(b.record_key)
        if a is None:
            continue
        va, vb = effective(a), effective(b)
        kind = change_of(va, vb)
        counts[kind] += 1
        if (change is None or kind == change) and (limit is None or len(rows) < limit):
            rows.append(
                SideBySide(
                    b.record_key,
                    b.record_id,
                    b.category,
                    prompt_text(b.messages),
                    b.reference,
                    a.output,
                    b.output,
                    va,
                    vb,
                    kind,
                    b.seq,
                    b.human_verdict,
                    text_diff(a.output or "", b.output or ""),
                )
            )
    if not sum(counts.values()):
        raise WorkbenchError(
            f"evaluations {before} and {after} share no scored record: pick two evaluations of the "
            f"same set (the same eval dataset, or the same run's validation split)"
        )
    return rows, counts
