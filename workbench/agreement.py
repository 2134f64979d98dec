"""Agreement between labellers on records given to several of them: Cohen's kappa per category over pairs of
answers (scikit-learn), Fleiss' kappa where three or more labellers answered a record (statsmodels), exact match
for JSON answers, the disagreements, and settling one (what trains)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from . import roles
from .curation import get_contracts, recheck
from .errors import WorkbenchError
from .store import Store
from .store import queues as sql
from .store.records import Record, Selection, get_record, update_record

JSON_KINDS = ("json", "json_schema")


@dataclass(frozen=True)
class CategoryAgreement:
    category: str
    kind: str  # "labels" (kappa and exact match) or "json" (exact match of the parsed JSON)
    records: int  # records answered by two or more labellers
    pairs: int  # pairs of answers compared
    exact_match: float  # share of pairs that give the same answer
    kappa: float | None  # Cohen's kappa over the pairs; None for JSON, or when every answer is one label
    # Fleiss' kappa over the records `fleiss_raters` (3 or more) labellers answered: the most common such number in
    # the category, as Fleiss needs the same number of answers per record. None for JSON, when no record has three
    # answers, or when every answer is one label.
    fleiss_kappa: float | None = None
    fleiss_records: int = 0
    fleiss_raters: int | None = None


@dataclass(frozen=True)
class Disagreement:
    record_id: int
    category: str
    answers: list[tuple[str, str]]  # (labeller, answer)
    settled: bool


@dataclass(frozen=True)
class AgreementReport:
    categories: list[CategoryAgreement]
    disagreements: list[Disagreement]  # unsettled first


def _canonical(answer: str, kind: str) -> str:
    if kind == "json":
        try:
            return json.dumps(json.loads(answer), sort_keys=True, ensure_ascii=False)
        except ValueError:
            return answer.strip()
    return " ".join(answer.split())


def fleiss(answer_sets: list[list[str]]) -> tuple[float | None, int, int | None]:
    """Fleiss' kappa over the records with the most common number (3 or more) of answers, how many records that
    is, and the number; (None, 0, None) when no record has three answers or every answer is one label."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa  # here: a slow import

    sizes = Counter(len(values) for values in answer_sets if len(values) >= 3)
    if not sizes:
        return None, 0, None
    raters = max(sizes, key=lambda k: (sizes[k], k))  # ties: the larger number of labellers
    rows = [values for values in answer_sets if len(values) == raters]
    if len({value for values in rows for value in values}) < 2:
        return None, len(rows), raters
    table, _ = aggregate_raters(rows)
    return float(fleiss_kappa(table, method="fleiss")), len(rows), raters


def questions(store: Store, record_ids: list[int]) -> dict[int, str]:
    """What each record asks (its last user turn before the answer), for a reviewer settling its disagreement."""
    from .evaluate.sets import prompt_text
    from .store.records import Selection, list_records

    with store.connect(read_only=True) as con:
        found = (
            list_records(con, Selection(ids=tuple(record_ids)), limit=len(record_ids)) if record_ids else []
        )
    return {record.id: prompt_text(record.messages) for record in found}


def agreement(store: Store) -> AgreementReport:
    """Per category, how often labellers give the same answer to the same record, and every disagreement."""
    from sklearn.metrics import cohen_kappa_score  # here: the CLI's start-up does not load scikit-learn

    contracts = get_contracts(store)
    with store.connect(read_only=True) as con:
        answered = sql.answered_records(con)
    by_category: dict[str, list[tuple[str, str]]] = {}
    answer_sets: dict[str, list[list[str]]] = {}
    counts: dict[str, int] = {}
    disagreements = []
    for record_id, category, answers, settled in answered:
        category = category or ""
        contract = contracts.get(category)
        kind = "json" if contract is not None and contract.kind in JSON_KINDS else "labels"
        values = [_canonical(answer, kind) for _, answer in answers]
        by_category.setdefault(category, []).extend(combinations(values, 2))
        answer_sets.setdefault(category, []).append(values)
        counts[category] = counts.get(category, 0) + 1
        if len(set(values)) > 1:
            disagreements.append(Disagreement(record_id, category, [tuple(a) for a in answers], settled))
    rows = []
    for category, pairs in sorted(by_category.items()):
        contract = contracts.get(category)
        kind = "json" if contract is not None and contract.kind in JSON_KINDS else "labels"
        first, second = [a for a, _ in pairs], [b for _, b in pairs]
        exact = sum(a == b for a, b in pairs) / len(pairs)
        kappa, many = None, (None, 0, None)
        if kind == "labels" and len(set(first) | set(second)) > 1:
            # both orders of each pair: kappa with no rater bias (the labellers of a pair differ record by record)
            kappa = float(cohen_kappa_score(first + second, second + first))
        if kind == "labels":
            many = fleiss(answer_sets[category])
        rows.append(CategoryAgreement(category, kind, counts[category], len(pairs), exact, kappa, *many))
    disagreements.sort(key=lambda d: (d.settled, d.record_id))
    return AgreementReport(rows, disagreements)


def settle(store: Store, record_id: int, answer: str, author: str, note: str | None = None) -> Record:
    """Write the settled answer into the record (its last assistant turn, a revision by `author`): that is the
    answer that trains. The labellers' answers stay, marked settled."""
    roles.require(store, "approve", author)
    if not answer.strip():
        raise WorkbenchError(f"record {record_id}: the settled answer is empty; pick or write one")
    with store.transaction() as con:
        record = get_record(con, record_id)
        messages = [dict(m) for m in record.messages]
        last = next(
            (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "assistant"), None
        )
        if last is None:
            messages.append({"role": "assistant", "content": answer.strip()})
        else:
            messages[last]["content"] = answer.strip()
        settled = update_record(
            con,
            record_id,
            record.version,
            {"messages": messages},
            author,
            "settle",
            note or "settled disagreement",
        )
        sql.mark_settled(con, record_id)
    recheck(store, Selection(ids=(record_id,)))
    return settled
