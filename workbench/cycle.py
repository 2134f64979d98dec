"""The loop written once: export → train → evaluate the base and the tuned model → compare, from typed settings.

`workbench loop` (`run_loop`: a badcases file imported, checked and approved first), `workbench demo-loop` and the
Train page's one click (a background pipeline) all call `run_cycle`; they differ only in what they export, how they
train and which sets they evaluate on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .contracts import Contract
from .curation import apply_autofixes, set_contract, set_status
from .errors import EmptySelectionError, WorkbenchError
from .evaluate import Comparison, EvalOptions, EvaluationReport, compare_evaluations, evaluate
from .export import ExportConfig, export_training_set
from .ingest import import_file
from .store import Store
from .store.records import Selection, list_datasets

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainSettings:
    """How to train on the export: a TrainConfig `preset` (None: the export's task types choose one, sized for the
    base model) with TrainConfig fields on top (`overrides`; None values are ignored). from_run + init: continue
    that run's adapter ('continue') or start fresh on its base model ('fresh')."""

    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    from_run: int | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        from .train.config import TrainConfig

        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(self.overrides) - known)
        if unknown:
            raise WorkbenchError(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a training setting; "
                f"use TrainConfig's fields ({', '.join(sorted(known))})"
            )

    def values(self, threads: int | None) -> dict[str, Any]:
        """The overrides without None values; threads (the evaluation's) unless the overrides name their own."""
        return {k: v for k, v in {"threads": threads, **self.overrides}.items() if v is not None}


@dataclass(frozen=True)
class EvalSet:
    """A set both models are scored on: `on` is one of evaluate.EVAL_SETS (`dataset` names the store's dataset
    for 'dataset'); `key` names the pair of evaluations (base/<key>, run/<key>); `label` is how progress names it."""

    key: str
    on: str
    dataset: str | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.dataset or self.key

    @property
    def loss_only(self) -> bool:
        """The general set: only the answers' loss is measured, and it may be empty (all of it trained on)."""
        return self.on == "general"


@dataclass(frozen=True)
class EvalPlan:
    """What to evaluate after training, in order, and with which options (their threads train too)."""

    sets: tuple[EvalSet, ...]
    options: EvalOptions = field(default_factory=EvalOptions)


@dataclass
class CycleState:
    """How far a cycle got: its stage, export, run and the evaluations stored so far (key -> evaluation id).
    A pipeline keeps it in its status.json; a cycle given one goes on from there."""

    stage: str = "export"
    export_dir: str | None = None
    export_hash: str | None = None
    run_id: int | None = None
    run_dir: str | None = None
    evaluations: dict[str, int] = field(default_factory=dict)


@dataclass
class CycleResult:
    """The cycle's export and run, its evaluations (ids; reports for those this call ran), base vs tuned per
    set evaluated by both, and the seconds each stage took (export, train, evaluate, general loss)."""

    state: CycleState
    reports: dict[str, EvaluationReport]
    comparisons: dict[str, Comparison]
    seconds: dict[str, float]

    @property
    def export_dir(self) -> Path:
        return Path(self.state.export_dir or "")

    @property
    def run_id(self) -> int:
        return self.state.run_id or 0


class RunEndedError(WorkbenchError):
    """The cycle's training run ended without finishing (failed or cancelled)."""

    def __init__(self, run_id: int, state: str, reason: str):
        self.run_id, self.state = run_id, state
        super().__init__(f"run {run_id} {state}: {reason}")


def run_cycle(
    store: Store,
    export: ExportConfig,
    train: TrainSettings,
    plan: EvalPlan,
    *,
    progress: Progress | None = None,
    save: Callable[[CycleState], None] | None = None,
    resume: CycleState | None = None,
    author: str = "workbench",
    on_evaluation: Callable[[str, int, int, dict], None] | None = None,
) -> CycleResult:
    """Export, train in the background process (waiting for it), evaluate base and tuned on each set of the
    plan, compare. progress(line) says what it does; save(state) is called whenever the state changes;
    on_evaluation(key, done, total, info) follows the evaluation under way (its phase in info["phase"]).
    resume: a state from an earlier try: its run is resumed (or kept if done) and its evaluations are not
    repeated. A loss-only (general) set that holds no record is skipped: all of it went into training."""
    tell = progress or (lambda line: None)
    state = resume or CycleState()
    keep = save or (lambda state: None)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(seconds.get(name, 0.0) + now - clock, 1)
        clock = now

    if state.run_id is None:
        state.stage = "export"
        keep(state)
        tell("exporting")
        exported = export_training_set(store, export)
        state.stage, state.export_dir, state.export_hash = "train", str(exported.folder), exported.hash
        keep(state)
        lap("export")
    _train(store, state, train, plan.options.threads, keep, tell, author)
    lap("train")
    state.stage = "evaluate"
    keep(state)
    reports: dict[str, EvaluationReport] = {}
    comparisons: dict[str, Comparison] = {}
    for each in plan.sets:
        try:
            for model in ("base", state.run_id):
                key = f"{'base' if model == 'base' else 'run'}/{each.key}"
                if key not in state.evaluations:
                    tell(
                        f"evaluating {'the base model' if model == 'base' else f'run {model}'} on {each.name}"
                    )
                    reports[key] = evaluate(
                        store,
                        model,
                        each.on,
                        dataset=each.dataset,
                        set_run=state.run_id,
                        options=plan.options,
                        author=author,
                        progress=(
                            (lambda done, total, info, key=key: on_evaluation(key, done, total, info))
                            if on_evaluation
                            else None
                        ),
                    )
                    state.evaluations[key] = reports[key].evaluation.id
                    keep(state)
        except EmptySelectionError:
            if not each.loss_only:
                raise
        else:
            comparisons[each.key] = compare_evaluations(
                store, state.evaluations[f"base/{each.key}"], state.evaluations[f"run/{each.key}"]
            )
        lap("general loss" if each.loss_only else "evaluate")
    return CycleResult(state, reports, comparisons, seconds)


def _train(
    store: Store,
    state: CycleState,
    train: TrainSettings,
    threads: int | None,
    keep: Callable[[CycleState], None],
    tell: Progress,
    author: str,
) -> None:
    """Start the run on the state's export (or resume the state's run when it did not finish) and wait for it."""
    from .train import runs

    if state.run_id is None:
        config = runs.config_for_export(state.export_dir, train.preset, **train.values(threads))
        state.run_id = runs.start_run(
            store, state.export_dir, config, from_run=train.from_run, init=train.init, author=author
        )
        state.run_dir = str(runs.run_status(store, state.run_id).folder.path)
        keep(state)
    elif runs.run_status(store, state.run_id).state != "done":
        state.stage = "train"
        keep(state)
        runs.resume_run(store, state.run_id)
    run_id = state.run_id
    said: list[str] = []

    def training(status: runs.RunStatus) -> None:
        line = f"training run {run_id}: step {status.step}/{status.total_steps or '?'}"
        if not said or said[-1] != line:
            said.append(line)
            tell(line)

    final = runs.wait_for_run(store, run_id, training)
    if final.state != "done":
        raise RunEndedError(run_id, final.state, final.row.error or f"see {final.folder.log_path}")


@dataclass
class LoopResult:
    import_id: int
    imported: int
    rejected: int
    fixed: int
    export_dir: Path
    run_id: int
    base: EvaluationReport
    tuned: EvaluationReport
    held_out: Comparison
    general: Comparison | None

    def as_dict(self) -> dict:
        return {
            "import_id": self.import_id,
            "imported": self.imported,
            "rejected": self.rejected,
            "fixed": self.fixed,
            "export_dir": str(self.export_dir),
            "run_id": self.run_id,
            "base": self.base.as_dict(),
            "tuned": self.tuned.as_dict(),
            "held_out": self.held_out.as_dict(),
            "general": self.general.as_dict() if self.general else None,
        }


def run_loop(
    store: Store,
    badcases: str | Path,
    *,
    general_file: str | Path | None = None,
    category: str | None = None,
    labels: Sequence[str] | None = None,
    export_name: str = "loop",
    val: float = 0.2,
    general_share: float = 0.2,
    train: TrainSettings | None = None,
    options: EvalOptions | None = None,
    progress: Progress | None = None,
    author: str = "loop",
) -> LoopResult:
    """import → check → approve, then the cycle: export → train → evaluate base and tuned (held-out split,
    general set) → compare. labels: a labels contract for `category` (what decides the verdicts)."""
    tell = progress or (lambda line: None)
    if labels and not category:
        raise WorkbenchError("--labels needs --category: the category the labels contract is for")
    tell(f"importing {Path(badcases).name}")
    report = import_file(store, badcases, category=category, author=author)
    if general_file:
        tell(f"importing {Path(general_file).name} as general data")
        import_file(store, general_file, dataset="general", author=author)
    if labels and category:
        set_contract(store, Contract(category, "labels", list(labels)))
    selection = Selection(import_id=report.import_id)
    fixes = apply_autofixes(store, selection, author)
    set_status(store, selection, "approved", author)
    with store.connect() as con:
        has_general = any(kind == "general" and n for _name, kind, n in list_datasets(con))
    cycle = run_cycle(
        store,
        ExportConfig(name=export_name, val=val, general_share=general_share if has_general else 0.0),
        train or TrainSettings(),
        EvalPlan(
            (
                EvalSet("val", "val", label="the held-out split"),
                EvalSet("general", "general", label="the general set"),
            ),
            options or EvalOptions(),
        ),
        progress=tell,
        author=author,
    )
    return LoopResult(
        report.import_id or 0,
        report.imported,
        report.rejected,
        len(fixes.fixed),
        cycle.export_dir,
        cycle.run_id,
        cycle.reports["base/val"],
        cycle.reports["run/val"],
        cycle.comparisons["val"],
        cycle.comparisons.get("general"),
    )
