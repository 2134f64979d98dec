"""An evaluation in the background, as the Evaluate page starts it: a process of its own (a background kind, like
a pipeline) that evaluates a model on a dataset, or resumes an evaluation, while the page watches its folder.

A job's folder `store/eval-jobs/<id>/` holds `job.json` (the model, the dataset and the options, or the
evaluation to resume) and `status.json`: the evaluation's id once it exists, its phase, the records done and the
requests failed so far. The results go to the store as they arrive, as with `workbench evaluate`; a job whose
process died is settled from its folder, its evaluation marked failed so that Resume continues it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import roles
from ..background import kinds
from ..background.folder import read_json, update_json
from ..errors import WorkbenchError
from ..store import Store
from .options import EvalOptions, Progress
from .results import EvaluationReport, evaluation_report
from .run import abandon_evaluation, evaluate, evaluation_models, resume_evaluation, unfinished_evaluations
from .sets import evaluation_targets

_WRITE_EVERY = 0.5  # seconds between status writes while the evaluation reports progress


def _settle(path: Path, status: dict, verdict: dict) -> dict:
    """A job whose process died: done if its evaluation is done in the store (the process died after it finished,
    before it said so); otherwise its evaluation, still 'running' in the store under that process, is marked
    failed (or cancelled) there too, with how to continue it."""
    evaluation_id = status.get("evaluation_id")
    if evaluation_id is None:
        return verdict
    spec = read_json(path / "job.json") or {}
    store = Store.open(spec["store"])
    report = evaluation_report(store, evaluation_id)
    if report.evaluation.status == "done":
        return {"state": "done", "error": None, **_done_fields(report)}
    error = (
        f"{verdict.get('error') or 'cancelled'}; the answers it had are stored: Resume (or "
        f"`workbench evaluate --resume {evaluation_id}`) continues it"
    )
    abandon_evaluation(store, evaluation_id, status.get("pid"), verdict["state"], error)
    return {**verdict, "error": error} if verdict["state"] == "failed" else verdict


def _done_fields(report: EvaluationReport) -> dict:
    """What a finished job's status says of its evaluation."""
    total = report.total
    return {
        "evaluation_id": report.evaluation.id,
        "phase": None,
        "done": total.done,
        "total": total.n,
        "accuracy": total.accuracy,
    }


# a worker waits its turn on the store (another job's long transaction) instead of failing after 8 s
KIND = kinds.Kind(
    "evaluate",
    "eval-jobs",
    "workbench.evaluate.worker",
    "evaluation",
    env={"WORKBENCH_STORE_WAIT": "600"},
    settle=_settle,
)


@dataclass
class EvalJob(kinds.WorkState):
    """An evaluation running in the background as its folder tells it: what it evaluates, how far it is."""

    id: int
    state: str  # running, done, failed, cancelled
    model: str
    dataset: str
    resumes: int | None = None  # the evaluation it continues (None: a new one)
    evaluation_id: int | None = None  # known once the evaluation is in the store
    phase: str | None = None
    done: int = 0
    total: int | None = None
    failed_requests: int = 0
    accuracy: float | None = None  # when done: right / (right + wrong)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    pid: int | None = None


def start_evaluation(
    store: Store,
    model: str,
    dataset: str,
    *,
    options: EvalOptions | None = None,
    author: str | None = None,
) -> EvalJob:
    """Evaluate `model` ('base', 'run N' or 'endpoint:NAME', as `evaluation_models` lists them) on `dataset`: a
    store dataset's name, or a finished run's export split as `evaluation_targets` names it ('run 3 · val'), in a
    background process; returns at once. Refused while another evaluation job runs."""
    roles.require(store, "evaluate", author)
    models = evaluation_models(store)
    if model not in models:
        raise WorkbenchError(
            f"there is no model {model!r} to evaluate: choose one of {', '.join(models)} "
            "(`workbench models add NAME --endpoint URL --model ID` registers an endpoint)"
        )
    targets = {t.key: t for t in evaluation_targets(store)}
    target = targets.get(dataset)
    if target is None:
        raise WorkbenchError(
            f"there is no eval set {dataset!r}: choose one of {', '.join(targets) or 'none (import an eval set)'}"
        )
    spec = {
        "model": model,
        "on": target.on,
        "dataset": target.dataset,
        "set_run": target.set_run,
        "options": (options or EvalOptions()).to_dict(),
    }
    return _start(store, spec, model, dataset, author)


def resume_in_background(store: Store, evaluation_id: int, *, author: str | None = None) -> EvalJob:
    """Continue a failed or cancelled evaluation in a background process: only the records without an answer
    are asked again (what `workbench evaluate --resume ID` does in the foreground)."""
    roles.require(store, "evaluate", author)
    row = evaluation_report(store, evaluation_id).evaluation
    if row.id not in [r.id for r in unfinished_evaluations(store)]:
        raise WorkbenchError(
            f"evaluation {evaluation_id} is {row.status}: only a failed or cancelled evaluation is resumed"
        )
    dataset = row.source if row.eval_set == "dataset" else row.eval_set
    return _start(store, {"resume": evaluation_id}, row.model, dataset, author, resumes=evaluation_id)


def _start(
    store: Store, spec: dict, model: str, dataset: str, author: str | None, resumes: int | None = None
) -> EvalJob:
    def busy(number: int, status: dict) -> str:
        return (
            f"evaluation job {number} ({status.get('model')} on {status.get('dataset')}) is still running; "
            "wait for it to finish or cancel it first"
        )

    status = {"model": model, "dataset": dataset, "resumes": resumes, "evaluation_id": resumes}
    body = {**spec, "store": str(store.root), "author": author}
    number = kinds.start(store.root, KIND, body, status=status, busy=busy)
    return eval_job(store, number)


def eval_job(store: Store, job_id: int) -> EvalJob:
    """Where an evaluation job is, read from its folder (a process that ended without a word is settled first)."""
    data = kinds.read_status(store.root, KIND, job_id)
    known = {name: data.get(name) for name in EvalJob.__dataclass_fields__ if name in data and name != "id"}
    return EvalJob(**{"state": "failed", "model": "?", "dataset": "?", **known, "id": job_id})


def latest_eval_job(store: Store) -> EvalJob | None:
    """The newest evaluation job (running or not), or None before the first."""
    found = kinds.latest(store.root, KIND)
    return eval_job(store, found[0]) if found else None


def cancel_eval_job(store: Store, job_id: int) -> bool:
    """Stop a running evaluation job: what it answered is stored and Resume continues it. False if not running."""
    return kinds.cancel(store.root, KIND, job_id)


def _progress(path: Path) -> Progress:
    """Write the evaluation's id, phase and counts into status.json, at most every _WRITE_EVERY seconds (a new
    phase, and the last record, at once)."""
    last = [0.0, None]

    def tell(done: int, total: int, info: dict) -> None:
        now, phase = time.monotonic(), info.get("phase")
        if now - last[0] < _WRITE_EVERY and phase == last[1] and done < (total or 0):
            return
        last[0], last[1] = now, phase
        failed = {"failed_requests": info["failed"]} if "failed" in info else {}
        update_json(
            path / "status.json",
            evaluation_id=info.get("evaluation"),
            phase=phase,
            done=done,
            total=total,
            **failed,
        )

    return tell


def run_eval_job(path: Path) -> int:
    """The body of the background process."""
    return kinds.run_worker(path, lambda: _run(path))


def _run(path: Path) -> dict:
    spec = read_json(path / "job.json") or {}
    store = Store.open(spec["store"])
    tell = _progress(path)
    stop: Callable[[], bool] = (path / "cancel").exists
    if spec.get("resume") is not None:
        report = resume_evaluation(store, spec["resume"], progress=tell, should_stop=stop)
    else:
        report = evaluate(
            store,
            spec["model"],
            spec.get("on") or "dataset",
            dataset=spec.get("dataset"),
            set_run=spec.get("set_run"),
            options=EvalOptions.from_dict(spec.get("options") or {}),
            progress=tell,
            should_stop=stop,
            author=spec.get("author"),
        )
    return _done_fields(report)
