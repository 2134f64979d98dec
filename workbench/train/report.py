"""What a run tells when it ends: the `TrainResult` that `train()` returns and the report.json written
beside the adapter, and the log line of each evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checkpoints import LoopState
from .config import TrainConfig
from .data import ExportData
from .folder import RunFolder, write_json_atomic


@dataclass
class TrainResult:
    run_dir: Path
    state: str
    steps: int
    total_steps: int
    epochs: float
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    train_accuracy: float | None
    best: dict | None
    adapter_dir: Path | None
    adapter_from: str | None
    tokens: int
    train_seconds: float
    tokens_per_s: float
    warnings: list[str] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["run_dir"], out["adapter_dir"] = str(self.run_dir), self.adapter_dir and str(self.adapter_dir)
        return out


def train_result(
    folder: RunFolder,
    state: LoopState,
    *,
    total_steps: int,
    steps_per_epoch: int,
    adapter_from: str,
    warnings: list[str],
    stopped_early: bool,
) -> TrainResult:
    """The finished run in figures: its last evaluation, the best one, the tokens and the time trained."""
    last_eval = state.evals[-1] if state.evals else {}
    return TrainResult(
        run_dir=folder.path,
        state="done",
        steps=state.step,
        total_steps=total_steps,
        epochs=round(state.step / steps_per_epoch, 4),
        train_loss=rounded_mean(state.recent_losses),
        val_loss=last_eval.get("val_loss"),
        val_accuracy=last_eval.get("val_accuracy"),
        train_accuracy=last_eval.get("train_accuracy"),
        best=state.best,
        adapter_dir=folder.adapter,
        adapter_from=adapter_from,
        tokens=state.tokens,
        train_seconds=round(state.train_seconds, 2),
        tokens_per_s=round(state.tokens / state.train_seconds, 1) if state.train_seconds else 0.0,
        warnings=warnings,
        stopped_early=stopped_early,
    )


def write_report(
    folder: RunFolder,
    result: TrainResult,
    evals: list[dict],
    config: TrainConfig,
    export: ExportData,
    skipped: dict[str, dict[str, int]],
) -> None:
    """report.json: the result, every evaluation, the config, the export trained on and what it left out."""
    write_json_atomic(
        folder.report_path,
        {
            **result.as_dict(),
            "evals": evals,
            "config": config.to_dict(),
            "export": {"folder": str(export.folder), "name": export.name, "hash": export.hash},
            "skipped": skipped,
        },
    )


def evaluation_line(scores: dict, improved: bool) -> str:
    """The log's sentence for one evaluation row."""
    return "eval at step {step}: val loss {vl}, val accuracy {va}, train accuracy {ta}{b}".format(
        step=scores["step"],
        vl=_fmt(scores.get("val_loss")),
        va=_fmt(scores.get("val_accuracy")),
        ta=_fmt(scores.get("train_accuracy")),
        b=" (best so far)" if improved else "",
    )


def rounded_mean(values: list[float]) -> float | None:
    """The mean to 5 decimals (None for no values): how losses are reported."""
    return round(sum(values) / len(values), 5) if values else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
