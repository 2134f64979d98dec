"""The integrated LoRA trainer: turns an export folder into an adapter, in a run folder the store indexes.

`train()` trains in this process; `start_run()` starts it as a background process the app and the
CLI can watch (`run_status`, `list_runs`) and stop (`cancel_run`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .config import PRESETS, TrainConfig, help_texts

if TYPE_CHECKING:
    from .trainer import Cancelled, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "help_texts", "Cancelled", "TrainResult", "train"]

# The loop imports torch (about a second); a command or page that only reads the run folders or the
# config must not pay for it, so the loop's names load on first use.
_FROM_LOOP = ("Cancelled", "TrainResult", "train")


def __getattr__(name: str):
    if name in _FROM_LOOP:
        return getattr(importlib.import_module(".trainer", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
