"""Failures back into the badcase queue: every failed record of an evaluation into a badcase dataset, with
the reference answer as the fix and the model's output kept as the bad output."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import NotFoundError
from ..store import Store
from ..store import evaluations as sql
from ..store.records import Record, get_record, insert_record, update_record


@dataclass
class FailuresSent:
    evaluation_id: int
    dataset: str
    created: list[int]
    updated: list[int]
    already_sent: int
    # of the records sent, those the next export leaves out: reason -> count (see export.REASONS)
    left_out: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def export_says(self) -> str:
        """What the next export does with the records sent, in words."""
        sent = len(self.created) + len(self.updated)
        if not sent:
            return "Nothing new was sent."
        if not self.left_out:
            return f"The next export takes all {sent:,} (with the reference answer as the fix)."
        from ..store.exports import REASONS

        out = sum(self.left_out.values())
        why = "; ".join(
            f"{n:,} {REASONS.get(r, 'not of a status or dataset the export takes')}"
            for r, n in self.left_out.items()
        )
        told = f"The next export leaves {out:,} of the {sent:,} out: {why}."
        if "eval-leak" in self.left_out:
            told += (
                " They are copies of eval records, so training on them would make the evaluation meaningless; "
                "they stay in the queue as the evidence of what to teach: write new records like them "
                "(in Review or the Playground) for training."
            )
        return told


def send_failures_to_badcases(
    store: Store, evaluation_id: int, dataset: str = "badcases", *, status: str = "fixed", author: str
) -> FailuresSent:
    """Every failed record of an evaluation (wrong, or judged worse / both bad by a person) into a badcase dataset:
    the reference answer as the final turn, the model's output kept as the bad output, source and tags linking the
    evaluation and run. A record already in that dataset gets the bad output and tags instead of a copy. Status
    'fixed' (the right answer is written in) lets the next export take them, unless its leakage guard leaves
    them out (a copy of an eval record): `left_out` counts those. In one transaction; a failure sent before is
    not sent twice."""
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        failed = sql.results(con, evaluation_id, verdict="wrong")
    source = f"evaluation {row.id}" + (f" (run {row.run_id})" if row.run_id is not None else " (base model)")
    tags = ["eval-failure", f"evaluation-{row.id}"] + (
        [f"run-{row.run_id}"] if row.run_id is not None else []
    )
    created, updated, already = [], [], 0
    with store.transaction() as con:
        links = []
        for result in failed:
            if result.badcase_id is not None:
                already += 1
                continue
            existing = _existing(con, result.record_id, dataset)
            if existing is not None:
                merged = sorted(set(existing.tags) | set(tags))
                update_record(
                    con,
                    existing.id,
                    existing.version,
                    {"bad_output": result.output, "tags": merged},
                    author,
                    action="eval-failure",
                    note=source,
                )
                links.append((result.seq, existing.id))
                updated.append(existing.id)
                continue
            messages = _original_prompt(result.messages, row)
            record = Record(
                id=0,
                dataset=dataset,
                messages=messages,
                category=result.category,
                status=status,
                tags=tags,
                source=source,
                bad_output=result.output,
                tools=result.tools,
            )
            new_id = insert_record(con, record, author, note=f"failure of {source}")
            links.append((result.seq, new_id))
            created.append(new_id)
        sql.mark_sent_to_badcases(con, evaluation_id, links)
    from ..export import ExportConfig, left_out_of_export

    reasons = left_out_of_export(store, created + updated, ExportConfig())
    left_out: dict[str, int] = {}
    for reason, _detail in reasons.values():
        left_out[reason] = left_out.get(reason, 0) + 1
    return FailuresSent(evaluation_id, dataset, created, updated, already, left_out)


def _existing(con, record_id: int | None, dataset: str) -> Record | None:
    if record_id is None:
        return None
    try:
        record = get_record(con, record_id)
    except NotFoundError:
        return None
    return record if record.dataset == dataset else None


def _original_prompt(messages: list[dict], row: sql.EvaluationRow) -> list[dict]:
    """A prompt trial's records carry its examples as earlier turns: the badcase keeps only the record's own."""
    if not row.examples:
        return messages
    head = [m for m in messages[:1] if m.get("role") == "system"]
    return head + messages[len(head) + 2 * row.examples :]
