"""Reading an evaluation: its scores per category, the list of evaluations, the pair to compare first, a page
of per-record results, and a person's verdict on an answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..store import Store
from ..store import evaluations as sql
from .cache import CacheCounts


@dataclass
class CategoryScore:
    category: str
    n: int
    done: int
    right: int
    wrong: int
    pending: int
    mean_loss: float | None
    prompt_tokens: float | None
    output_tokens: float | None
    seconds_per_answer: float | None

    @property
    def accuracy(self) -> float | None:
        judged = self.right + self.wrong
        return self.right / judged if judged else None

    def as_dict(self) -> dict:
        return {**self.__dict__, "accuracy": self.accuracy}


@dataclass
class EvaluationReport:
    """An evaluation and its scores per category (the last row, category 'all', totals them)."""

    evaluation: sql.EvaluationRow
    categories: list[CategoryScore]

    @property
    def total(self) -> CategoryScore:
        return self.categories[-1]

    @property
    def cache(self) -> CacheCounts:
        """How many of its answers and losses came from the evaluation cache."""
        return CacheCounts.from_dict(self.evaluation.config.get("cache"))

    def as_dict(self) -> dict:
        return {
            "evaluation": self.evaluation.as_dict(),
            "categories": [c.as_dict() for c in self.categories],
            "cache": self.cache.as_dict(),
        }


def evaluation_report(store: Store, evaluation_id: int) -> EvaluationReport:
    """An evaluation with its accuracy per category (right / (right + wrong); pending answers wait for a person)."""
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        rows = sql.category_summary(con, evaluation_id)
    categories = [CategoryScore(*r) for r in rows]
    categories.append(_total(categories))
    return EvaluationReport(row, categories)


def _total(categories: list[CategoryScore]) -> CategoryScore:
    def mean(attr: str) -> float | None:
        pairs = [(getattr(c, attr), c.done) for c in categories if getattr(c, attr) is not None and c.done]
        weight = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / weight if weight else None

    return CategoryScore(
        "all",
        sum(c.n for c in categories),
        sum(c.done for c in categories),
        sum(c.right for c in categories),
        sum(c.wrong for c in categories),
        sum(c.pending for c in categories),
        mean("mean_loss"),
        mean("prompt_tokens"),
        mean("output_tokens"),
        mean("seconds_per_answer"),
    )


def list_evaluations(store: Store, limit: int | None = None) -> list[EvaluationReport]:
    with store.connect() as con:
        ids = [r.id for r in sql.list_evaluations(con, limit)]
    return [evaluation_report(store, i) for i in ids]


def default_pair(reports: Sequence[EvaluationReport]) -> tuple[int, int] | None:
    """The two evaluations a person most likely wants compared first: the newest finished run evaluation with
    verdicts, beside the newest base-model evaluation (not a prompt trial) of the same set and source; where
    no run has verdicts, the same for loss-only sets (the general set's forgetting); where there is no such
    pair, the two newest finished ones (base beside an endpoint; one beside itself when only one finished), or
    the two newest when none has. None when there is no evaluation. Reports are newest first, as
    list_evaluations gives them."""

    def plain(r: EvaluationReport) -> bool:
        return (
            r.evaluation.status == "done" and r.evaluation.system_prompt is None and not r.evaluation.examples
        )

    for need_verdicts in (True, False):
        for after in reports:
            e = after.evaluation
            if e.run_id is None or not plain(after) or (need_verdicts and after.total.accuracy is None):
                continue
            for before in reports:
                b = before.evaluation
                if b.run_id is None and plain(before) and (b.eval_set, b.source) == (e.eval_set, e.source):
                    return b.id, e.id
    if not reports:
        return None
    finished = [r for r in reports if r.evaluation.status == "done"]
    newest = finished or reports  # not one that failed or is still running
    return newest[min(1, len(newest) - 1)].evaluation.id, newest[0].evaluation.id


def evaluation_results(
    store: Store,
    evaluation_id: int,
    *,
    verdict: str | None = None,
    answered: bool = False,
    limit: int | None = 50,
    offset: int = 0,
) -> list[sql.ResultRow]:
    """A page of an evaluation's per-record results (verdict: right, wrong or pending; answered: only those
    with an answer)."""
    with store.connect() as con:
        sql.get_evaluation(con, evaluation_id)
        return sql.results(con, evaluation_id, verdict=verdict, answered=answered, limit=limit, offset=offset)


def set_verdict(store: Store, evaluation_id: int, seq: int, verdict: str | None, *, author: str) -> None:
    """A person's verdict on a generative answer, compared with the reference: better, same, worse or both_bad
    (better and same count as right). None clears it."""
    with store.transaction() as con:
        sql.set_human_verdict(con, evaluation_id, seq, verdict, author)
