"""Prompting alone vs fine-tuning on the same records: the base model with an edited system prompt (and
example badcases) beside the base model and the run's tuned model."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkbenchError
from ..store import Store
from ..store import evaluations as sql
from ..store.runs import RunRow, get_run
from ..train.data import read_export, reference_answer
from .compare import Comparison, compare_evaluations
from .options import EvalOptions, Progress
from .results import EvaluationReport, evaluation_report
from .run import evaluate, run_id_of


@dataclass
class PromptTrial:
    """Prompting alone vs fine-tuning, on the same records: what each fixes against the base model with the
    records' own prompt, and what each costs per answer (prompt tokens, seconds)."""

    base: EvaluationReport
    prompted: EvaluationReport
    tuned: EvaluationReport | None
    prompt_vs_base: Comparison
    tuned_vs_base: Comparison | None

    def as_dict(self) -> dict:
        return {
            "base": self.base.as_dict(),
            "prompted": self.prompted.as_dict(),
            "tuned": self.tuned.as_dict() if self.tuned else None,
            "prompt_vs_base": self.prompt_vs_base.as_dict(),
            "tuned_vs_base": self.tuned_vs_base.as_dict() if self.tuned_vs_base else None,
        }


def pick_examples(records: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """`n` example records, one per distinct reference answer in turn (every label shown before any twice)."""
    by_answer: dict[str, list[dict]] = {}
    for r in records:
        answer = reference_answer(r["messages"])
        if answer is not None:
            by_answer.setdefault(answer, []).append(r)
    rng = random.Random(seed)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_answer.items())]
    picked: list[dict] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return picked


def prompt_trial(
    store: Store,
    run: int,
    system_prompt: str,
    *,
    examples: int = 0,
    on: str = "trained",
    dataset: str | None = None,
    options: EvalOptions | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    author: str | None = None,
) -> PromptTrial:
    """The base model with an edited system prompt (and `examples` badcases from the run's training split)
    over a set (by default the badcases run `run` trained on), beside the base model with the records' own
    prompt and the run's tuned model: how many prompting alone fixes, how many tuning fixes. Evaluations
    of the base and the tuned model already done on the same set are reused."""
    with store.connect() as con:
        row = get_run(con, run)
    badcases = [r for r in read_export(row.export_dir).train if r.get("source", "badcase") == "badcase"]
    shots = pick_examples(badcases, examples, (options or EvalOptions()).seed) if examples else []
    reports = []
    for model, prompt, picked in (("base", None, []), (run, None, []), ("base", system_prompt, shots)):
        found = None if prompt is not None else _done_evaluation(store, model, on, row, dataset)
        if found is not None:
            reports.append(evaluation_report(store, found))
            continue
        reports.append(
            evaluate(
                store,
                model,
                on,
                dataset=dataset,
                set_run=run,
                options=options,
                system_prompt=prompt,
                examples=picked,
                progress=progress,
                should_stop=should_stop,
                author=author,
            )
        )
    base, tuned, prompted = reports
    return PromptTrial(
        base,
        prompted,
        tuned,
        compare_evaluations(store, base.evaluation.id, prompted.evaluation.id),
        compare_evaluations(store, base.evaluation.id, tuned.evaluation.id),
    )


def newest_finished_run(store: Store) -> int:
    """The id of the newest run that finished with an adapter."""
    from ..train.runs import list_runs as runs_of

    for status in runs_of(store):
        if status.state == "done":
            return status.id
    raise WorkbenchError(
        "no finished training run yet: train one first (workbench train EXPORT), or name one with --run"
    )


def _done_evaluation(store: Store, model, on: str, run: RunRow, dataset: str | None) -> int | None:
    run_id = run_id_of(model)
    source = dataset if on == "dataset" else str(Path(run.export_dir))
    with store.connect() as con:
        for e in sql.list_evaluations(con):
            if (
                e.status == "done"
                and e.run_id == run_id
                and e.eval_set == on
                and e.system_prompt is None
                and not e.examples
                and e.config.get("set_run") == run.id
                and (e.source == source or Path(e.source or "").resolve() == Path(source).resolve())
            ):
                return e.id
    return None
