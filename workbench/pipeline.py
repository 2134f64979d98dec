"""One click: export → train → evaluate (base and tuned, on the eval set and the general set), in the background.

A pipeline is a process of its own with a folder `store/pipelines/<id>/`: `spec.json` says what to do and
`status.json` (rewritten atomically) says which stage it is in, the export it wrote, the run it started and the
evaluations it stored. The training itself is the run's own background process (`workbench.train.runs`), so the
Train page reads two folders, the pipeline's and the run's, and never the store, while it waits. Closing the browser
stops neither; reopening the page finds the newest pipeline again.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import roles
from .background import kinds
from .background.folder import read_json, update_json
from .errors import WorkbenchError
from .export import ExportConfig
from .store import Store

STAGES = ("export", "train", "evaluate", "done")
KIND = kinds.Kind("pipeline", "pipelines", "workbench.pipeline", "pipeline", spec_file="spec.json")


@dataclass
class PipelineStatus:
    """Where a pipeline is: its stage, the export, the run and the evaluations so far."""

    id: int
    state: str  # running, done, failed, cancelled
    stage: str | None = None
    export_dir: str | None = None
    export_hash: str | None = None
    run_id: int | None = None
    run_dir: str | None = None
    evaluations: dict[str, int] = field(default_factory=dict)  # e.g. base/eval -> evaluation id
    evaluating: dict | None = None  # the evaluation under way: key, phase, done, total (as its progress says)
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


def pipelines_dir(store: Store) -> Path:
    return store.root / "pipelines"


def start_pipeline(
    store: Store,
    export: ExportConfig,
    *,
    preset: str | None = None,
    train: dict[str, Any] | None = None,
    from_run: int | None = None,
    init: str | None = None,
    eval_dataset: str | None = "eval",
    eval_options: dict[str, Any] | None = None,
    author: str = "workbench",
) -> PipelineStatus:
    """Start export → train → evaluate as a background process and return at once.

    train: TrainConfig values over the export's preset (e.g. base_model, epochs); from_run + init: continue a run
    ('continue') or start fresh on its base model ('fresh'). eval_options: EvalOptions values. eval_dataset: the store's held-out dataset to evaluate
    base and tuned on; when it has no record, the export's validation split is used."""
    roles.require(store, "train")
    if from_run is not None and init not in ("continue", "fresh"):
        raise WorkbenchError(
            f"say what to do with run {from_run}: continue its adapter, or start fresh on its base model"
        )
    spec = {
        "store": str(store.root),
        "export": asdict(export),
        "preset": preset,
        "train": train or {},
        "from_run": from_run,
        "init": init,
        "eval_dataset": eval_dataset,
        "eval_options": eval_options or {},
        "author": author,
    }

    def busy(number: int, status: dict) -> str:
        return (
            f"pipeline {number} is still running (stage {status.get('stage')}); wait for it to finish or "
            "cancel it first"
        )

    number = kinds.start(store.root, KIND, spec, status={"stage": "export"}, busy=busy)
    return pipeline_status(store, number)


def resume_pipeline(store: Store, pipeline_id: int) -> PipelineStatus:
    """Continue a cancelled or failed pipeline: its run resumes from its latest checkpoint, then the evaluations."""
    roles.require(store, "train")
    status = pipeline_status(store, pipeline_id)
    if status.running:
        raise WorkbenchError(f"pipeline {pipeline_id} is still running")
    if status.run_id is None:
        raise WorkbenchError(f"pipeline {pipeline_id} stopped before training started; start a new one")
    kinds.restart(store.root, KIND, pipeline_id, resume=True)
    return pipeline_status(store, pipeline_id)


def pipeline_status(store: Store, pipeline_id: int) -> PipelineStatus:
    """Read from the folder only (a page may call this on every tick)."""
    data = kinds.read_status(store.root, KIND, pipeline_id)
    known = {
        k: data.get(k)
        for k in (
            "stage",
            "export_dir",
            "export_hash",
            "run_id",
            "run_dir",
            "error",
            "started_at",
            "finished_at",
            "pid",
            "evaluating",
        )
    }
    return PipelineStatus(
        pipeline_id, data.get("state", "failed"), evaluations=data.get("evaluations") or {}, **known
    )


@dataclass
class LiveRun:
    """The training run of a pipeline as its folder tells it: step, loss, tokens/s, ETA and the metrics rows."""

    state: str | None
    step: int
    total_steps: int | None
    tokens_per_s: float | None
    eta_s: float | None
    losses: list[dict]  # {step, loss}
    checkpoints: list[dict]  # {step, val_accuracy, val_loss}


def live_run(status: PipelineStatus) -> LiveRun | None:
    """Read the pipeline's run folder (never the store: the page calls this on every tick); None before training."""
    from .train.folder import RunFolder

    if not status.run_dir:
        return None
    folder = RunFolder(Path(status.run_dir))
    live = folder.status()
    rows = folder.metrics()
    losses = [{"step": r["step"], "loss": r["loss"]} for r in rows if "loss" in r and "step" in r]
    checks = [
        {"step": r["step"], "val_accuracy": r.get("val_accuracy"), "val_loss": r.get("val_loss")}
        for r in rows
        if "step" in r and ("val_accuracy" in r or "val_loss" in r)
    ]
    return LiveRun(
        live.get("state"),
        int(live.get("step") or 0),
        live.get("total_steps"),
        live.get("tokens_per_s"),
        live.get("eta_s"),
        losses,
        checks,
    )


def latest_pipeline(store: Store) -> PipelineStatus | None:
    found = kinds.latest(store.root, KIND)
    return pipeline_status(store, found[0]) if found else None


def cancel_pipeline(store: Store, pipeline_id: int) -> bool:
    """Stop a running pipeline: its run saves a checkpoint and ends cancelled (resumable); an evaluation under
    way stops and the pipeline says cancelled. False if not running."""
    from .train import runs

    status = pipeline_status(store, pipeline_id)
    if not status.running:
        return False
    cancelled = kinds.cancel(store.root, KIND, pipeline_id)
    if status.run_id is not None:
        runs.cancel_run(store, status.run_id)
    return cancelled


def run_pipeline(path: Path) -> int:
    """The body of the background process."""
    return kinds.run_worker(path, lambda: _run(path))


def _run(path: Path) -> dict:
    """The cycle from the spec, its state kept in status.json (so a resume goes on where it stopped)."""
    from .cycle import CycleState, EvalPlan, EvalSet, RunEndedError, TrainSettings, run_cycle
    from .evaluate import EvalOptions
    from .store.records import list_datasets

    spec = read_json(path / "spec.json") or {}
    store = Store.open(spec["store"])
    status = read_json(path / "status.json") or {}
    dataset = spec.get("eval_dataset")
    with store.connect() as con:
        on_dataset = any(name == dataset and n for name, _kind, n in list_datasets(con))
    held_out = EvalSet("eval", "dataset", dataset) if on_dataset else EvalSet("val", "val")
    state = CycleState(**{k: status.get(k) for k in ("export_dir", "export_hash", "run_id", "run_dir")})
    state.evaluations = dict(status.get("evaluations") or {})
    try:
        run_cycle(
            store,
            ExportConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["export"].items()}),
            TrainSettings(
                spec.get("preset"), spec.get("train") or {}, spec.get("from_run"), spec.get("init")
            ),
            EvalPlan(
                (held_out, EvalSet("general", "general")),
                EvalOptions.from_dict(spec.get("eval_options") or {}),
            ),
            save=lambda state: update_json(path / "status.json", **asdict(state)),
            on_evaluation=lambda key, done, total, info: update_json(
                path / "status.json",
                evaluating={"key": key, "phase": info.get("phase"), "done": done, "total": total},
            ),
            resume=state,
            author=spec.get("author", "workbench"),
        )
    except RunEndedError as exc:
        if exc.state == "cancelled":
            raise kinds.Cancelled(str(exc)) from exc
        raise
    return {"stage": "done"}


if __name__ == "__main__":
    sys.exit(run_pipeline(Path(sys.argv[1])))
