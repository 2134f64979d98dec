"""A run's checkpoints and its adapter: what the loop keeps to resume exactly where it stopped, which
checkpoint becomes the adapter, and writing that adapter. Each folder is written whole or not at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WorkbenchError
from .folder import RunFolder, written_whole
from .trainer_state import load_trainer_state, save_trainer_state


@dataclass
class LoopState:
    """What a checkpoint must carry besides the weights to continue exactly where it stopped."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    best: dict | None = None
    evals_since_best: int = 0
    evals: list[dict] = field(default_factory=list)
    loss_since_eval: list[float] = field(default_factory=list)
    recent_losses: list[float] = field(default_factory=list)  # the last 20 steps', for the summary


def save_checkpoint(folder: RunFolder, model, optimizer, scheduler, state: LoopState) -> Path:
    """Write checkpoints/step-N (adapter, optimizer, scheduler, RNG, counters), then keep only it and the best.
    The folder is written beside and renamed into place whole, with checkpoint.json last (older versions wrote
    it in place: a checkpoint without checkpoint.json is ignored)."""
    target = folder.checkpoints / f"step-{state.step:06d}"
    with written_whole(target) as tmp:
        model.save_pretrained(tmp)
        save_trainer_state(
            tmp,
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "state": dict(state.__dict__),
            },
        )
        (tmp / "checkpoint.json").write_text(
            json.dumps({"step": state.step, "best": state.best}), encoding="utf-8"
        )
    keep = {target.name} | ({f"step-{state.best['step']:06d}"} if state.best else set())
    for old in folder.checkpoints.iterdir():
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(folder: RunFolder, model, optimizer, scheduler, say: Callable[[str], None]) -> LoopState:
    """Load the latest checkpoint into the model, optimizer, scheduler and torch's RNG; drop the metrics rows
    written after it; return the loop's counters as they were."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = folder.checkpoint_dirs()
    if not found:
        raise WorkbenchError(f"{folder.path} has no checkpoint to resume from; start the run again instead")
    latest = found[-1]
    saved = load_trainer_state(latest)  # first: a state it refuses changes nothing
    set_peft_model_state_dict(model, load_file(latest / "adapter_model.safetensors"))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    state = LoopState(**saved["state"])
    folder.truncate_metrics(state.step)
    say(f"resumed from {latest.name} (step {state.step})")
    return state


def restore_best(folder: RunFolder, model, final_adapter: str, state: LoopState) -> str:
    """Put the weights the adapter is made of into `model`: the best checkpoint's when `final_adapter` is
    "best" and it is kept, else the last step's as they are. Returns where they come from, in words."""
    best = state.best
    if final_adapter == "best" and best and best["step"] != state.step:
        best_file = folder.checkpoints / f"step-{best['step']:06d}" / "adapter_model.safetensors"
        if best_file.exists():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(best_file))
            return f"best: step {best['step']}"
    elif best and best["step"] == state.step:
        return f"best: step {state.step}, the last"
    return "last"


def save_adapter(folder: RunFolder, model, tokenizer) -> None:
    """Write adapter/ (the LoRA weights and the tokenizer), whole: merge and --from-run take it as finished."""
    with written_whole(folder.adapter) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
