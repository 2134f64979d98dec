"""The whole loop in one call: import badcases (checked on the way), autofix, approve, export, train, evaluate the
base and the tuned model on the held-out split and the general set, compare.

Each stage is the library function the CLI and the app call on their own; this only strings them together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .background.process import poll_interval
from .contracts import Contract
from .curation import apply_autofixes, set_contract, set_status
from .errors import WorkbenchError
from .evaluate import Comparison, EvalOptions, EvaluationReport, compare_evaluations, evaluate
from .export import ExportConfig, export_training_set
from .ingest import import_file
from .store import Store
from .store.records import Selection
from .train import runs


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
    preset: str | None = None,
    epochs: float | None = None,
    base_model: str | None = None,
    val: float = 0.2,
    general_share: float = 0.2,
    train_overrides: dict | None = None,
    options: EvalOptions | None = None,
    progress: Callable[[str], None] | None = None,
    author: str = "loop",
) -> LoopResult:
    """import → check → export → train → evaluate base and tuned (held-out split, general set) → compare.

    labels: a labels contract for `category` (what decides the verdicts). Training runs in the background
    process as `workbench train` starts it; this waits for it. Returns both comparisons.
    """
    tell = progress or (lambda stage: None)
    tell(f"importing {Path(badcases).name}")
    report = import_file(store, badcases, category=category, author=author)
    if general_file:
        tell(f"importing {Path(general_file).name} as general data")
        import_file(store, general_file, dataset="general", author=author)
    if labels:
        if not category:
            raise WorkbenchError("--labels needs --category: the category the labels contract is for")
        set_contract(store, Contract(category, "labels", list(labels)))
    selection = Selection(import_id=report.import_id)
    fixes = apply_autofixes(store, selection, author)
    set_status(store, selection, "approved", author)
    tell("exporting")
    with store.connect() as con:
        has_general = bool(
            con.execute(
                "SELECT count(*) FROM records r JOIN datasets d ON d.name = r.dataset "
                "WHERE d.kind = 'general'"
            ).fetchone()[0]
        )
    exported = export_training_set(
        store, ExportConfig(name=export_name, val=val, general_share=general_share if has_general else 0.0)
    )
    threads = options.threads if options else None  # one setting for the whole loop: training and evaluation
    overrides = {
        k: v
        for k, v in {
            "epochs": epochs,
            "base_model": base_model,
            "threads": threads,
            **(train_overrides or {}),
        }.items()
        if v is not None
    }
    config = runs.config_for_export(exported.folder, preset, **overrides)
    run_id = runs.start_run(store, exported.folder, config, author=author)
    said: list[str] = []

    def training(status: runs.RunStatus) -> None:
        line = f"training run {run_id}: step {status.step}/{status.total_steps or '?'}"
        if not said or said[-1] != line:
            said.append(line)
            tell(line)

    final = runs.wait_for_run(store, run_id, training, poll_s=poll_interval(2.0))
    if final.state != "done":
        raise WorkbenchError(
            f"run {run_id} {final.state}: {final.row.error or 'see ' + str(final.folder.log_path)}"
        )
    tell("evaluating the base model on the held-out split")
    base = evaluate(store, "base", "val", set_run=run_id, options=options, author=author)
    tell(f"evaluating run {run_id} on the held-out split")
    tuned = evaluate(store, run_id, "val", options=options, author=author)
    general = None
    if has_general:
        tell("measuring the general set's loss under both models")
        try:
            general_base = evaluate(store, "base", "general", set_run=run_id, options=options, author=author)
            general_tuned = evaluate(store, run_id, "general", options=options, author=author)
            general = compare_evaluations(store, general_base.evaluation.id, general_tuned.evaluation.id)
        except WorkbenchError as exc:
            if "no record" not in str(exc):  # every general record went into training: nothing held out
                raise
    return LoopResult(
        report.import_id or 0,
        report.imported,
        report.rejected,
        len(fixes.fixed),
        exported.folder,
        run_id,
        base,
        tuned,
        compare_evaluations(store, base.evaluation.id, tuned.evaluation.id),
        general,
    )
