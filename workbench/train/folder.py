"""A run's folder, `store/runs/<id>/`: the truth about a run while it trains (the store is the index).

    run.json        what to train: export folder and hash, TrainConfig, the adapter it starts from
    status.json     state (queued, running, done, failed, cancelled), step, loss, ETA, pid; rewritten atomically
    metrics.jsonl   one line per step (step, epoch, loss, lr, tokens/s) and per evaluation (val loss, accuracy)
    log.txt         what happened, in words
    checkpoints/    step-NNNNNN/ (adapter + optimizer state): the latest (to resume) and the best
    adapter/        the final adapter (loads with plain peft), with the tokenizer and its chat template

Checkpoints and the adapter are written into a temp folder beside them (.NAME.tmp-PID-XXXX) and renamed into
place when complete, so a kill mid-write leaves the earlier folder or none, never half of one; whoever finds
such leftovers of a process that is gone removes them (`sweep_unfinished_folders`).
    report.json     the summary: final and best metrics, overfitting warnings, where the adapter came from
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..background.folder import (
    now_iso,
    read_json,
    update_json,
    write_json_atomic,  # noqa: F401 (the training loop writes report.json with it)
)
from ..processes import pid_exists

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def spec_path(self) -> Path:
        return self.path / "run.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def report_path(self) -> Path:
        return self.path / "report.json"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel"

    def spec(self) -> dict:
        return read_json(self.spec_path) or {}

    def status(self) -> dict:
        return read_json(self.status_path) or {}

    def report(self) -> dict | None:
        return read_json(self.report_path)

    def update_status(self, **changes: Any) -> dict:
        return update_json(self.status_path, **changes, updated_at=now_iso())

    def start_status(self, total_steps: int | None = None) -> dict:
        """Mark the run as running in this process (pid and host let others see whether it is alive)."""
        return self.update_status(
            state="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=now_iso(),
            finished_at=None,
            error=None,
            total_steps=total_steps,
        )

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp}  {message}\n")

    def append_metrics(self, row: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def metrics(self) -> list[dict]:
        """Every metrics row (a half-written last line, from a kill mid-write, is skipped)."""
        rows = []
        try:
            with self.metrics_path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            return []
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows past `after_step` (a resumed run repeats those steps from its checkpoint)."""
        kept = [r for r in self.metrics() if r.get("step", 0) <= after_step]
        tmp = self.metrics_path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.metrics_path)

    def checkpoint_dirs(self) -> list[Path]:
        """Complete checkpoints, oldest first (a checkpoint is complete once its checkpoint.json exists)."""
        if not self.checkpoints.is_dir():
            return []
        found = [
            p
            for p in self.checkpoints.iterdir()
            if p.name.startswith("step-") and (p / "checkpoint.json").exists()
        ]
        return sorted(found, key=lambda p: int(p.name.split("-")[1]))

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()


class ReadOnlyRunFolder(RunFolder):
    """The run folder as the other processes of a multi-process run (accelerate launch) see it: they read
    it (the cancel request, checkpoints to resume) but leave every write to the main process."""

    def update_status(self, **changes: Any) -> dict:
        return self.status()

    def start_status(self, total_steps: int | None = None) -> dict:
        return self.status()

    def log(self, message: str) -> None:
        pass

    def append_metrics(self, row: dict) -> None:
        pass

    def truncate_metrics(self, after_step: int) -> None:
        pass


_UNFINISHED = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}")


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target` to write into; when the block ends without an error the temp folder
    replaces `target` by renames, so a reader, or a kill -9 at any moment, sees the old folder or the new one,
    never half of one. On an error the temp folder is removed and `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = target.with_name(f".{target.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():  # a folder cannot be renamed onto a non-empty one: move the old one aside first
            old = target.with_name(f".{target.name}.old-{tag}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sweep_unfinished_folders(parent: Path) -> list[str]:
    """Clean up after `written_whole` calls cut short by a kill: remove temp folders of processes that are gone,
    and put back an old folder that was moved aside when its replacement never arrived. Returns what it did."""
    done: list[str] = []
    if not parent.is_dir():
        return done
    for path in sorted(parent.iterdir()):
        match = _UNFINISHED.fullmatch(path.name)
        if not match:
            continue
        if int(match["pid"]) != os.getpid() and pid_exists(int(match["pid"])):
            continue  # still being written
        target = parent / match["name"]
        if match["kind"] == "old" and not target.exists():
            os.replace(path, target)
            done.append(f"put back {target.name}")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
    return done


def adapter_problem(adapter: Path, *, tokenizer: bool = True) -> str | None:
    """Why `adapter` is not a complete LoRA adapter folder (None when it is): a missing or unreadable config,
    weights cut short, a tokenizer file missing or half written, as a kill in the middle of writing it leaves.
    tokenizer: whether the tokenizer must be there too (a run's adapter has it; merging needs it)."""
    from safetensors import SafetensorError, safe_open

    if not adapter.is_dir():
        return f"there is no folder {adapter}"
    needed = ("adapter_config.json", "adapter_model.safetensors") + (
        ("tokenizer_config.json",) if tokenizer else ()
    )
    for name in needed:
        if not (adapter / name).is_file():
            return f"{name} is missing"
    for path in sorted(adapter.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"{path.name} is cut short or unreadable ({exc})"
    try:
        with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as weights:
            if not list(weights.keys()):
                return "adapter_model.safetensors holds no weights"
    except (OSError, SafetensorError) as exc:
        return f"adapter_model.safetensors is cut short or unreadable ({exc})"
    return None


def process_rank() -> int:
    """This process's rank under accelerate launch or torchrun (0 when launched alone)."""
    return int(os.environ.get("RANK", "0") or 0)
