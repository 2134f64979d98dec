"""The integrated LoRA trainer: turns an export folder into an adapter, in a run folder the store indexes.

`train()` trains in this process; `start_run()` starts it as a background process the app and the
CLI can watch (`run_status`, `list_runs`) and stop (`cancel_run`).
"""

from .config import PRESETS, TrainConfig, help_texts
from .trainer import Cancelled, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "help_texts", "Cancelled", "TrainResult", "train"]
