"""An optional LLM judge for the categories a person judges (no output contract): a registered model and a rubric
per category. Its verdict is a suggestion with its reason, stored beside the record; the person's verdict is
the one that counts, and `judge_agreement` says how often the two agree (Cohen's kappa on the records both
judged), so nothing claims the judge is right without that figure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import roles
from ..endpoint import EndpointError, chat_many
from ..errors import WorkbenchError
from ..store import Store
from ..store import evaluations as eval_sql
from ..store import judge as sql

PERSON_RIGHT = ("better", "same")  # a person's verdicts that count as right (worse, both_bad: wrong)
JUDGE_MAX_TOKENS = 64
_LEADING_VERDICT = re.compile(
    r"\W*(right|wrong|correct|incorrect|yes|no)\b\W*(.*)", re.IGNORECASE | re.DOTALL
)

JUDGE_SYSTEM = (
    "You grade one answer of an assistant. Compare it with the reference answer and the rubric. "
    'Reply with one JSON object and nothing else: {"verdict": "right" or "wrong", "reason": "one sentence"}.'
)


@dataclass
class JudgeReport:
    evaluation_id: int
    judge: str
    judged: int = 0  # records given a verdict in this call
    failed: dict[int, str] = field(default_factory=dict)  # seq -> why no verdict (kept on the record)
    categories: list[str] = field(default_factory=list)


@dataclass
class CategoryAgreement:
    category: str
    both: int  # records judged by the judge and by a person
    agree: int
    kappa: (
        float | None
    )  # None where it is undefined (fewer than two records, or one verdict only on both sides)

    @property
    def share(self) -> float | None:
        return self.agree / self.both if self.both else None


@dataclass
class JudgeAgreement:
    evaluation_id: int
    categories: list[CategoryAgreement]
    judged: int  # records with a judge's verdict
    unparsed: int  # records the judge was asked about but gave no verdict
    suggestions: list[sql.Suggestion]  # what it was computed from, in set order

    @property
    def total(self) -> CategoryAgreement:
        return self.categories[-1]


def set_rubric(store: Store, category: str, rubric: str | None, *, author: str | None = None) -> None:
    """What the judge checks in `category`'s answers (None removes it): an owner's setting, like a contract."""
    roles.require(store, "contracts", author)
    if rubric is not None and not rubric.strip():
        raise WorkbenchError("write what the judge should check (the rubric is empty)")
    with store.transaction() as con:
        sql.set_rubric(con, category, rubric.strip() if rubric else None, author)


def rubrics(store: Store) -> dict[str, str]:
    with store.connect(read_only=True) as con:
        return sql.rubrics(con)


def judge_messages(rubric: str, messages: list[dict], reference: str | None, answer: str) -> list[dict]:
    """What the judge is asked about one answer: the rubric, the conversation up to the answer, the reference
    and the answer, and the JSON shape of its reply."""
    asked = "\n".join(
        f"{m['role']}: {m.get('content') or ''}" for m in messages if m.get("role") in ("system", "user")
    )
    user = (
        f"Rubric: {rubric}\n\nConversation:\n{asked}\n\nReference answer:\n{reference or '(none)'}\n\n"
        f"Answer to grade:\n{answer}\n\nIs the answer right by the rubric? Reply with the JSON object."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judgement(text: str) -> tuple[str, str]:
    """(verdict, reason) from the judge's reply: a JSON object with "verdict" right or wrong, or a reply that
    starts with the verdict ("Wrong: it does not apologise", or "No, ..." to the question it is asked). Anything else raises, a sentence that merely
    contains the words too ("the answer is not right"): a reply that is not a verdict is recorded as such,
    never read as one."""
    found = re.search(r"\{.*?\}", text, re.DOTALL)
    if found:
        try:
            data = json.loads(found.group(0))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and str(data.get("verdict", "")).strip().lower() in ("right", "wrong"):
            return str(data["verdict"]).strip().lower(), str(data.get("reason") or "").strip()
    leading = _LEADING_VERDICT.match(text)
    if leading:
        word = leading.group(1).lower()
        return ("right" if word in ("right", "correct", "yes") else "wrong"), leading.group(2).strip()
    raise ValueError(f"the judge's reply is not a verdict: {text.strip()[:200]!r}")


def judge_evaluation(
    store: Store,
    evaluation_id: int,
    judge: str,
    *,
    categories: list[str] | None = None,
    again: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> JudgeReport:
    """Ask the registered model `judge` ('endpoint:NAME' or NAME) for a verdict on each answered record of
    evaluation `evaluation_id` in `categories` (default: every category with a rubric and no contract). Each
    suggestion is stored as it arrives; a failed request or a reply that is not a verdict is kept as that record's
    error. Without `again`, records the judge already gave a verdict are skipped."""
    from ..registry import ENDPOINT_PREFIX, endpoint_of

    roles.require(store, "evaluate")
    name = judge[len(ENDPOINT_PREFIX) :] if judge.startswith(ENDPOINT_PREFIX) else judge
    endpoint = endpoint_of(store, name)
    with store.connect(read_only=True) as con:
        contracts = eval_sql.get_evaluation(con, evaluation_id).config.get("contracts") or {}
        written = sql.rubrics(con)
    if categories is None:  # the categories a person judges: a rubric, and no contract in this evaluation
        categories = [c for c in written if c not in contracts]
    missing = [c for c in categories if c not in written]
    if missing:
        raise WorkbenchError(
            f"no rubric for {', '.join(map(repr, missing))}: write one first "
            f'(workbench rubric {missing[0]!r} "what a right answer does")'
        )
    with store.connect(read_only=True) as con:
        todo = sql.to_judge(con, evaluation_id, categories, again=again)
    report = JudgeReport(evaluation_id, f"{ENDPOINT_PREFIX}{name}", categories=list(categories))
    by_seq = {seq: (category, json.loads(msgs), ref, out) for seq, category, msgs, ref, out in todo}
    requests = (
        (seq, judge_messages(written[c], msgs, ref, out), None, JUDGE_MAX_TOKENS)
        for seq, (c, msgs, ref, out) in by_seq.items()
    )
    done = 0
    for seq, answer in chat_many(endpoint, requests):
        category = by_seq[seq][0]
        verdict = reason = error = None
        if isinstance(answer, EndpointError):
            error = str(answer)
        else:
            try:
                verdict, reason = parse_judgement(answer.text)
            except ValueError as exc:
                error = str(exc)
        with store.transaction() as con:
            sql.save_suggestion(
                con, evaluation_id, seq, report.judge, written[category], verdict, reason, error
            )
        if error:
            report.failed[seq] = error
        else:
            report.judged += 1
        done += 1
        if progress:
            progress(done, len(by_seq))
    unasked = len(by_seq) - done
    if unasked:  # the endpoint was taken as down: what was not sent can be asked again
        raise EndpointError(
            f"{report.judge} stopped answering: {unasked} of {len(by_seq)} records were not judged; "
            f"run the judge again once it answers (records with a verdict are kept)"
        )
    return report


def judge_agreement(store: Store, evaluation_id: int) -> JudgeAgreement:
    """How often the judge and a person agree, per category and in all, on the records both judged: the share
    that agree and Cohen's kappa (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    with store.connect(read_only=True) as con:
        rows = sql.suggestions(con, evaluation_id)
    pairs: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row.verdict and row.human_verdict:
            person = "right" if row.human_verdict in PERSON_RIGHT else "wrong"
            pairs.setdefault(row.category or "(none)", []).append((row.verdict, person))

    def score(category: str, both: list[tuple[str, str]]) -> CategoryAgreement:
        agree = sum(j == p for j, p in both)
        kappa = None
        if len(both) >= 2 and len({v for pair in both for v in pair}) > 1:
            value = cohen_kappa_score([j for j, _ in both], [p for _, p in both], labels=["right", "wrong"])
            kappa = None if value != value else float(value)  # NaN: one verdict only on each side
        return CategoryAgreement(category, len(both), agree, kappa)

    every = [pair for both in pairs.values() for pair in both]
    return JudgeAgreement(
        evaluation_id,
        [score(c, pairs[c]) for c in sorted(pairs)] + [score("all", every)],
        judged=sum(1 for r in rows if r.verdict),
        unparsed=sum(1 for r in rows if r.error),
        suggestions=rows,
    )


def judge_suggestions(store: Store, evaluation_id: int) -> list[sql.Suggestion]:
    """The judge's suggestions on an evaluation (verdict and reason, or why none), with the person's verdict."""
    with store.connect(read_only=True) as con:
        return sql.suggestions(con, evaluation_id)
