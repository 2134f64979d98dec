"""Records the model cannot learn: those a tuned model still gets wrong or learned last, each with the most
similar records of its set whose answer differs (often a wrong label)."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Store
from ..store import evaluations as sql
from ..store import review as review_sql
from .sets import prompt_text


@dataclass
class HardRecord:
    """A training record the tuned model still gets wrong or learned last (highest loss), with the nearest
    training records that give a different answer: often a wrong label or a contradiction."""

    record_key: str
    record_id: int | None
    category: str | None
    question: str
    reference: str | None
    output: str | None
    verdict: str | None
    loss: float | None
    contradicting: list[dict]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def hard_records(
    store: Store,
    evaluation_id: int,
    *,
    limit: int = 20,
    neighbours: int = 3,
    record_id: int | None = None,
) -> list[HardRecord]:
    """The records of an evaluation (best: a run's on the set it trained on) it answers wrong, then the rest by
    loss, highest first; each with the `neighbours` most similar records of the set in its category (character
    n-grams, so Chinese works) whose reference answer differs. record_id: only that store record (the Review page's
    "why is it here"), compared against the whole set."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    with store.connect() as con:
        rows = [r for r in sql.results(con, evaluation_id) if r.output is not None]
    if not rows:
        return []
    questions = [prompt_text(r.messages) for r in rows]
    ranked = sorted(range(len(rows)), key=lambda i: (rows[i].verdict != "wrong", -(rows[i].loss or 0.0)))
    if record_id is not None:
        ranked = [i for i in ranked if rows[i].record_id == record_id]
    ranked = ranked[:limit]
    if not ranked:
        return []
    try:
        matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).fit_transform(questions)
    except ValueError:  # no question has any text: nothing to compare
        matrix = None
    out = []
    for i in ranked:
        scores = linear_kernel(matrix[i], matrix).ravel() if matrix is not None else None
        others = (
            [
                j
                for j in scores.argsort()[::-1]
                if j != i and rows[j].category == rows[i].category and rows[j].reference != rows[i].reference
            ][:neighbours]
            if scores is not None
            else []
        )
        out.append(
            HardRecord(
                rows[i].record_key,
                rows[i].record_id,
                rows[i].category,
                questions[i],
                rows[i].reference,
                rows[i].output,
                rows[i].verdict,
                rows[i].loss,
                [
                    {
                        "record_key": rows[j].record_key,
                        "record_id": rows[j].record_id,
                        "question": questions[j],
                        "reference": rows[j].reference,
                        "similarity": round(float(scores[j]), 4),
                    }
                    for j in others
                ],
            )
        )
    return out


def why_hard(store: Store, run_id: int, record_id: int) -> HardRecord | None:
    """Why a record is in the Review queue's "hard after run N" filter: the run's answer, its verdict and loss in
    the evaluation the filter reads, and the most similar records of that set whose answer differs; None when
    that evaluation does not hold the record."""
    with store.connect(read_only=True) as con:
        evaluation_id = review_sql.hard_evaluation(con, run_id)
    if evaluation_id is None:
        return None
    found = hard_records(store, evaluation_id, limit=1, record_id=record_id)
    return found[0] if found else None
