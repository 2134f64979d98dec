"""Two evaluations of the same set: per category and cluster (fixed, regressed, still wrong), and record by
record side by side, both answers with what differs marked. The Evaluate page shows these."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import WorkbenchError
from ..store import Store
from ..store import evaluations as sql
from .sets import prompt_text


@dataclass
class GroupComparison:
    """Accuracy before and after on one category or cluster, and what changed."""

    name: str
    n: int
    right_before: int
    right_after: int
    fixed: int
    regressed: int
    still_wrong: int
    pending: int

    @property
    def judged(self) -> int:
        return self.n - self.pending

    @property
    def accuracy_before(self) -> float | None:
        return self.right_before / self.judged if self.judged else None

    @property
    def accuracy_after(self) -> float | None:
        return self.right_after / self.judged if self.judged else None

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
        }


@dataclass
class Comparison:
    """Two evaluations on the records they share: per category, per cluster, and the records fixed
    (wrong before, right after), regressed (right before, wrong after) and still wrong."""

    before: sql.EvaluationRow
    after: sql.EvaluationRow
    categories: list[GroupComparison]
    clusters: list[GroupComparison]
    total: GroupComparison
    fixed: list[str]
    regressed: list[str]
    still_wrong: list[str]
    only_before: int
    only_after: int
    loss_before: float | None
    loss_after: float | None

    def as_dict(self) -> dict:
        return {
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "categories": [c.as_dict() for c in self.categories],
            "clusters": [c.as_dict() for c in self.clusters],
            "total": self.total.as_dict(),
            "fixed": self.fixed,
            "regressed": self.regressed,
            "still_wrong": self.still_wrong,
            "only_before": self.only_before,
            "only_after": self.only_after,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
        }


def compare_evaluations(store: Store, before: int, after: int) -> Comparison:
    """Compare evaluation `before` with `after` (base vs a run, run A vs run B) on the records both scored."""
    with store.connect() as con:
        a, b = sql.get_evaluation(con, before), sql.get_evaluation(con, after)
        pairs = sql.paired_verdicts(con, before, after)
        losses = {e: {r.record_key: r.loss for r in sql.results(con, e)} for e in (before, after)}
    if not pairs:
        raise WorkbenchError(
            f"evaluations {before} and {after} share no scored record: compare two evaluations "
            f"of the same set (e.g. `workbench evaluate base --on val --run N` and "
            f"`workbench evaluate N --on val`)"
        )
    shared = {p[0] for p in pairs}
    by_category: dict[str, GroupComparison] = {}
    by_cluster: dict[str, GroupComparison] = {}
    total = GroupComparison("all", 0, 0, 0, 0, 0, 0, 0)
    fixed, regressed, still = [], [], []
    for key, _record_id, category, cluster, v_before, v_after in pairs:
        groups = [by_category.setdefault(category, GroupComparison(category, 0, 0, 0, 0, 0, 0, 0)), total]
        if cluster is not None:
            groups.append(by_cluster.setdefault(cluster, GroupComparison(cluster, 0, 0, 0, 0, 0, 0, 0)))
        pending = "pending" in (v_before, v_after)
        for g in groups:
            g.n += 1
            if pending:
                g.pending += 1
                continue
            g.right_before += v_before == "right"
            g.right_after += v_after == "right"
            g.fixed += v_before == "wrong" and v_after == "right"
            g.regressed += v_before == "right" and v_after == "wrong"
            g.still_wrong += v_before == "wrong" and v_after == "wrong"
        if not pending:
            if v_before == "wrong" and v_after == "right":
                fixed.append(key)
            elif v_before == "right" and v_after == "wrong":
                regressed.append(key)
            elif v_before == v_after == "wrong":
                still.append(key)

    def mean_loss(e: int) -> float | None:
        values = [v for k, v in losses[e].items() if k in shared and v is not None]
        return sum(values) / len(values) if values else None

    return Comparison(
        a,
        b,
        sorted(by_category.values(), key=lambda g: g.name),
        sorted(by_cluster.values(), key=lambda g: -g.n),
        total,
        fixed,
        regressed,
        still,
        len(set(losses[before]) - shared),
        len(set(losses[after]) - shared),
        mean_loss(before),
        mean_loss(after),
    )


# --- record by record ----------------------------------------------------------------------------------------

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


def side_by_side(
    store: Store, before: int, after: int, *, change: str | None = None, limit: int | None = 50
) -> tuple[list[SideBySide], dict[str, int]]:
    """The records both evaluations scored, in the `after` evaluation's order, narrowed to one kind of change
    (fixed, regressed, still_wrong, still_right, pending) when given; with the count of each kind."""
    from ..dedup import text_diff  # imported here: the dedup package takes half a second to load

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
