"""Runs as background processes: start one, watch it, cancel it, resume it, merge its adapter.

The store records a run when it starts (one short transaction) and never stays open while it
trains: the worker process reads the export folder and writes the run folder. Whoever looks next
(`refresh_runs`, called by `list_runs` and `run_status`) copies a changed state from the folder into the store,
and marks a run whose process is gone without finishing as failed.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import roles
from ..background.process import poll_interval, spawn_worker, worker_alive, worker_env
from ..errors import NotFoundError, WorkbenchError
from ..models import EMBEDDED_MODEL, model_hidden_size
from ..names import check_new_path
from ..store import Store
from ..store import runs as sql
from .config import EARLY_STOPPING_WITH_CONTRACTS, TrainConfig, task_type_of_export
from .data import read_export
from .folder import (
    FINAL_STATES,
    RunFolder,
    adapter_problem,
    now_iso,
    read_json,
    sweep_unfinished_folders,
    write_json_atomic,
)
from .template_check import check_export_template, require_renderable

INITS = ("continue", "fresh")  # what a run started from an earlier run does with its adapter
WORKER = "workbench.train.worker"  # the worker module: python -m workbench.train.worker RUN_DIR [--resume]
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")
# The accelerate launch options a run may carry (run.json "launch"), each with the check of its value: the
# worker's command line is built here from these values, never read from the run folder.
LAUNCH_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "num_processes": lambda v: type(v) is int and 1 <= v <= 4096,
    "num_machines": lambda v: type(v) is int and 1 <= v <= 4096,
    "machine_rank": lambda v: type(v) is int and 0 <= v < 4096,
    "main_process_ip": lambda v: isinstance(v, str) and bool(_HOST.fullmatch(v)),
    "main_process_port": lambda v: type(v) is int and 1 <= v <= 65535,
    "mixed_precision": lambda v: v in ("no", "fp16", "bf16", "fp8"),
    "gpu_ids": lambda v: isinstance(v, str) and bool(re.fullmatch(r"all|\d{1,4}(,\d{1,4}){0,255}", v)),
    "cpu": lambda v: v is True,
    "multi_gpu": lambda v: v is True,
}
_LAUNCH_FLAGS = ("cpu", "multi_gpu")
_LAUNCH_NUMBERS = ("num_processes", "num_machines", "machine_rank", "main_process_port")
_LAUNCH_EXAMPLE = "accelerate launch --num_processes 4"


@dataclass
class RunStatus:
    """A run as the app shows it: the store's row, brought up to date, plus the live status file."""

    row: sql.RunRow
    live: dict

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def state(self) -> str:
        return self.row.status

    @property
    def folder(self) -> RunFolder:
        return RunFolder(Path(self.row.run_dir))

    @property
    def step(self) -> int:
        return int(self.live.get("step") or self.row.step or 0)

    @property
    def total_steps(self) -> int | None:
        return self.live.get("total_steps") or self.row.total_steps

    @property
    def eta_s(self) -> float | None:
        return self.live.get("eta_s") if self.state == "running" else None

    def metrics(self) -> list[dict]:
        """Every metrics row so far (step rows have `loss`; evaluation rows have kind 'eval')."""
        return self.folder.metrics()

    def as_dict(self) -> dict:
        return {**self.row.as_dict(), "live": self.live}


def resolve_export(store: Store, name: str | Path) -> Path:
    """An export folder: a path, a folder name under the store's exports/, or an export name (its newest folder)."""
    path = Path(name).expanduser()
    if (path / "manifest.json").is_file():
        return path.resolve()
    exports = store.exports_dir
    if (exports / str(name) / "manifest.json").is_file():
        return (exports / str(name)).resolve()
    matches = (
        [p for p in exports.glob(f"{name}-*") if (p / "manifest.json").is_file()] if exports.is_dir() else []
    )
    if matches:
        return max(matches, key=lambda p: p.stat().st_mtime).resolve()
    known = (
        sorted(p.name for p in exports.iterdir() if (p / "manifest.json").is_file())
        if exports.is_dir()
        else []
    )
    raise NotFoundError(
        f"no export {str(name)!r}: give an export folder, or one of: {', '.join(known) or '(none yet)'}"
        f" (make one with `workbench export --name NAME`)"
    )


def config_for_export(
    export_dir: str | Path, preset: str | None = None, *, models_dir: Path | None = None, **overrides: Any
) -> TrainConfig:
    """The TrainConfig for an export, with `overrides` on top: a named `preset` as it stands; else the preset of
    the export's task types with its rank sized for the base model (`sized_values`), and early stopping on
    validation accuracy when the export has output contracts."""
    export = read_export(export_dir)
    if preset:
        return TrainConfig.for_task(preset, **overrides)
    hidden_size = model_hidden_size(overrides.get("base_model"), models_dir)
    if export.contracts and overrides.get("early_stopping_patience") is None:
        overrides = {**overrides, "early_stopping_patience": EARLY_STOPPING_WITH_CONTRACTS}
    return TrainConfig.for_task(
        task_type_of_export(export.manifest.get("task_types")), hidden_size=hidden_size, **overrides
    )


def start_run(
    store: Store,
    export_dir: str | Path,
    config: TrainConfig,
    *,
    from_run: int | None = None,
    init: str | None = None,
    author: str | None = None,
    launcher: str | None = None,
) -> int:
    """Record a run and start it as a background process; returns the run id at once.

    from_run + init: 'continue' trains that run's adapter further; 'fresh' starts a new adapter on its base
    model. The choice must be explicit and is recorded (runs.parent_run, runs.init).
    launcher: how to start the worker on several GPUs, e.g. 'accelerate launch --num_processes 4': accelerate
    launch and its options (LAUNCH_OPTIONS), kept as checked values; empty runs it as one plain Python process.
    """
    roles.require(store, "train")
    launch = launch_options(launcher)
    export = read_export(export_dir)
    init_adapter = None
    if from_run is None:
        if init not in (None, "fresh"):
            raise WorkbenchError("init='continue' needs from_run: the run whose adapter to continue")
        init = "fresh"
    else:
        if init not in INITS:
            raise WorkbenchError(
                f"say what to do with run {from_run}: init='continue' trains its adapter further, init='fresh' "
                f"starts a new adapter on its base model (CLI: --init continue or --init fresh)"
            )
        with store.connect() as con:
            parent = sql.get_run(con, from_run)
        parent_base = parent.base_model
        chosen = config.base_model or EMBEDDED_MODEL
        if config.base_model and chosen != parent_base:
            raise WorkbenchError(
                f"run {from_run} was trained on {parent_base}, not {chosen}: a run from it keeps "
                f"its base model (leave the base model empty)"
            )
        config = TrainConfig.from_dict(
            {**config.to_dict(), "base_model": None if parent_base == EMBEDDED_MODEL else parent_base}
        )
        if init == "continue":
            adapter = Path(parent.run_dir) / "adapter"
            if parent.status != "done" or not (adapter / "adapter_config.json").is_file():
                raise WorkbenchError(
                    f"run {from_run} has no finished adapter to continue (it is {parent.status}); "
                    f"resume it first (workbench train --resume {from_run}) or use --init fresh"
                )
            problem = adapter_problem(adapter)
            if problem:
                raise WorkbenchError(
                    f"the adapter of run {from_run} ({adapter}) is incomplete: {problem}. It was cut "
                    f"short while being written; train run {from_run} again, or use --init fresh"
                )
            init_adapter = str(adapter)
            # the adapter keeps the rank it was trained with: record that, not the preset's
            trained = read_json(adapter / "adapter_config.json") or {}
            if trained.get("r"):
                config = TrainConfig.from_dict(
                    {**config.to_dict(), "lora_rank": trained["r"], "lora_alpha": trained.get("lora_alpha")}
                )
    # a template that cannot render the records refuses the run here, before anything is recorded
    require_renderable(
        check_export_template(
            export,
            base_model=config.base_model,
            chat_template=config.chat_template,
            models_dir=store.models_dir,
        )
    )
    runs_dir = store.runs_dir
    runs_dir.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in runs_dir.iterdir()}
    with store.transaction() as con:
        row = sql.insert_run(
            con,
            export_dir=str(export.folder),
            export_name=export.name,
            export_hash=export.hash,
            base_model=config.base_model or EMBEDDED_MODEL,
            parent_run=from_run,
            init=init,
            config=config.to_dict(),
            runs_dir=str(runs_dir),
            author=author,
            taken=taken,
        )
    folder = RunFolder(Path(row.run_dir))
    folder.path.mkdir(parents=True)
    write_json_atomic(
        folder.spec_path,
        {
            "run_id": row.id,
            "export_dir": str(export.folder),
            "export_name": export.name,
            "export_hash": export.hash,
            "config": config.to_dict(),
            "from_run": from_run,
            "init": init,
            "init_adapter": init_adapter,
            "models_dir": str(store.models_dir),
            "launch": launch,
            "created_at": now_iso(),
        },
    )
    write_json_atomic(folder.status_path, {"state": "queued", "updated_at": now_iso()})
    _spawn(store, row.id, folder, resume=False)
    return row.id


def resume_run(store: Store, run_id: int) -> int:
    """Continue a failed or cancelled run from its latest checkpoint, in a new background process."""
    roles.require(store, "train")
    refresh_runs(store)
    with store.connect() as con:
        row = sql.get_run(con, run_id)
    folder = RunFolder(Path(row.run_dir))
    if row.status in ("queued", "running"):
        raise WorkbenchError(
            f"run {run_id} is still {row.status}; cancel it first (workbench runs {run_id} --cancel)"
        )
    if row.status == "done":
        raise WorkbenchError(
            f"run {run_id} finished; to train its adapter further start a new run: "
            f"workbench train EXPORT --from-run {run_id} --init continue"
        )
    if not folder.checkpoint_dirs():
        raise WorkbenchError(f"run {run_id} stopped before its first checkpoint; start it again instead")
    folder.cancel_path.unlink(missing_ok=True)
    folder.update_status(state="queued", error=None, finished_at=None, pid=None)
    _spawn(store, run_id, folder, resume=True)
    return run_id


def launch_options(launcher: str | None) -> dict | None:
    """The accelerate launch options of a launcher command line ('accelerate launch --num_processes 4 --cpu',
    or `python -m accelerate.commands.launch ...`), checked; None for no launcher. Anything else is refused."""
    if not launcher or not launcher.strip():
        return None
    try:
        words = shlex.split(launcher)
    except ValueError as exc:
        raise WorkbenchError(
            f"cannot read the launcher {launcher!r} ({exc}): give e.g. '{_LAUNCH_EXAMPLE}'"
        ) from None
    if words[:2] == ["accelerate", "launch"]:
        words = words[2:]
    elif (
        len(words) >= 3
        and Path(words[0]).name.startswith("python")
        and words[1:3] == ["-m", "accelerate.commands.launch"]
    ):
        words = words[3:]
    else:
        raise WorkbenchError(
            f"the launcher must be accelerate launch with its options, e.g. '{_LAUNCH_EXAMPLE}', not {launcher!r}"
        )
    options: dict[str, Any] = {}
    while words:
        word = words.pop(0)
        name, _, value = word[2:].partition("=")
        name = name.replace("-", "_")
        if not word.startswith("--") or name not in LAUNCH_OPTIONS:
            raise WorkbenchError(
                f"the launcher option {word!r} is not one a run may carry: use {', '.join('--' + o for o in LAUNCH_OPTIONS)}"
            )
        if name in _LAUNCH_FLAGS and not value:
            options[name] = True
            continue
        if not value:
            if not words:
                raise WorkbenchError(f"the launcher option --{name} needs a value")
            value = words.pop(0)
        options[name] = int(value) if name in _LAUNCH_NUMBERS and value.isdigit() else value
    return checked_launch(options)


def checked_launch(launch: Any) -> dict | None:
    """`launch` (as run.json keeps it) when every option is known and its value valid; else a WorkbenchError
    naming the option. The run folder may be edited by anyone who can write to it: nothing in it is run."""
    if launch is None:
        return None
    if not isinstance(launch, dict):
        raise WorkbenchError(f"the launch options must be a mapping of accelerate options, not {launch!r}")
    for name, value in launch.items():
        if name not in LAUNCH_OPTIONS or not LAUNCH_OPTIONS[name](value):
            raise WorkbenchError(
                f"the launch option {name}={value!r} is not valid: a run carries only "
                f"{', '.join(LAUNCH_OPTIONS)}, each with a plain value"
            )
    return dict(launch) or None


def worker_command(folder: RunFolder, launch: dict | None, *, resume: bool) -> list[str]:
    """The worker's command line: this Python running our worker module, under accelerate launch with `launch`'s
    checked options when there are any."""
    head = [sys.executable]
    if launch:
        head += ["-m", "accelerate.commands.launch"]
        for name, value in checked_launch(launch).items():
            head += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    return head + ["-m", WORKER, str(folder.path)] + (["--resume"] if resume else [])


def _spawn(store: Store, run_id: int, folder: RunFolder, *, resume: bool) -> None:
    """Start the worker detached (its own session: closing the terminal or the app does not stop it)."""
    try:
        spec = folder.spec()  # a run of an older version keeps a launcher line: read as options, never run
        launch = spec.get("launch") if "launch" in spec else launch_options(spec.get("launcher"))
        command = worker_command(folder, launch, resume=resume)
        child = spawn_worker(command, folder.path / "worker.out", worker_env())
    except (OSError, WorkbenchError) as exc:
        reason = exc if isinstance(exc, WorkbenchError) else f"could not start the training process: {exc}"
        folder.update_status(state="failed", error=str(reason))
        with store.transaction() as con:
            sql.update_run(con, run_id, status="failed", error=str(reason), finished_at=now_iso())
        raise WorkbenchError(f"run {run_id} was not started: {reason}") from None
    with store.transaction() as con:
        sql.update_run(
            con,
            run_id,
            status="running",
            pid=child.pid,
            host=socket.gethostname(),
            started_at=now_iso(),
            finished_at=None,
            error=None,
        )


def cancel_run(store: Store, run_id: int) -> RunStatus:
    """Ask a run to stop: it saves a checkpoint at the end of its current step and ends as cancelled
    (resumable). A run whose process is already gone is marked at once."""
    status = run_status(store, run_id)
    if status.state in FINAL_STATES:
        return status
    folder = status.folder
    folder.cancel_path.touch()
    if not _running(status.row, status.live):
        folder.update_status(state="cancelled", finished_at=now_iso(), error="cancelled before it started")
    return run_status(store, run_id)


def refresh_runs(store: Store) -> list[sql.RunRow]:
    """Bring the row of every queued or running run whose state changed up to date from its folder (a run that
    only progressed is left alone: its folder is the truth while it runs, and looking at it writes nothing);
    a run whose process is gone without finishing is marked failed (here and in its status.json). Returns the
    rows that changed."""
    with store.connect() as con:
        active = sql.active_runs(con)
    updates = []
    for row in active:
        folder = RunFolder(Path(row.run_dir))
        live = folder.status()
        state = live.get("state") or row.status
        if state not in FINAL_STATES and not _running(row, live):
            pid = live.get("pid") or row.pid
            checkpoints = folder.checkpoint_dirs()
            resumable = (
                f"; `workbench train --resume {row.id}` continues from step {checkpoints[-1].name[5:].lstrip('0')}"
                if checkpoints
                else ""
            )
            message = (
                f"the training process (pid {pid}) ended without finishing: it was killed or crashed "
                f"(see {folder.log_path} and worker.out){resumable}"
            )
            live = folder.update_status(state="failed", error=message, finished_at=now_iso())
            state = "failed"
            for done in sweep_unfinished_folders(folder.path) + sweep_unfinished_folders(folder.checkpoints):
                folder.log(f"cleaned up after the training process that ended without finishing: {done}")
        if state != row.status:  # a run that only progressed is read from its folder: looking never writes
            updates.append((row.id, _row_changes(state, live)))
    if updates:
        with store.transaction() as con:
            for run_id, changes in updates:
                sql.update_run(con, run_id, **changes)
    with store.connect() as con:
        return [sql.get_run(con, run_id) for run_id, _ in updates]


def _row_changes(state: str, live: dict) -> dict:
    best = live.get("best") or {}
    changes: dict[str, Any] = {"status": state}
    for key in ("step", "total_steps", "epoch", "error", "warnings"):
        if key in live:
            changes[key] = live[key]
    if live.get("loss") is not None:
        changes["train_loss"] = live["loss"]
    if best:
        changes.update(
            val_loss=best.get("val_loss"),
            val_accuracy=best.get("val_accuracy"),
            train_accuracy=best.get("train_accuracy"),
            best_step=best.get("step"),
        )
    if state == "done" and live.get("adapter"):
        changes["adapter_dir"] = live["adapter"]
    if state in FINAL_STATES:
        changes["finished_at"] = live.get("finished_at") or now_iso()
    return changes


def _running(row: sql.RunRow, live: dict) -> bool:
    """Whether the run's process still runs: the one the store started (a launcher, under accelerate
    launch) or the worker that wrote status.json."""
    return _alive(row.pid, row.host) or _alive(live.get("pid"), live.get("host"))


def _alive(pid: int | None, host: str | None = None) -> bool:
    return worker_alive(pid, WORKER, host)


def run_status(store: Store, run_id: int) -> RunStatus:
    refresh_runs(store)
    with store.connect() as con:
        row = sql.get_run(con, run_id)
    return RunStatus(row, RunFolder(Path(row.run_dir)).status())


def list_runs(store: Store, limit: int | None = None) -> list[RunStatus]:
    refresh_runs(store)
    with store.connect() as con:
        rows = sql.list_runs(con, limit=limit)
    return [RunStatus(row, read_json(Path(row.run_dir) / "status.json") or {}) for row in rows]


def run_lineage(store: Store, run_id: int) -> list[dict]:
    with store.connect() as con:
        return sql.run_lineage(con, run_id)


def wait_for_run(
    store: Store,
    run_id: int,
    progress: Callable[[RunStatus], None] | None = None,
    *,
    poll_s: float | None = None,
    timeout_s: float | None = None,
) -> RunStatus:
    """Block until the run ends, calling `progress(status)` after each look (the CLI's foreground mode).
    poll_s: seconds between looks (default 1, or WORKBENCH_POLL_S)."""
    poll_s = poll_interval(1.0) if poll_s is None else poll_s
    started = time.monotonic()
    while True:
        status = _peek(store, run_id)
        if progress:
            progress(status)
        if status.state in FINAL_STATES:
            return run_status(store, run_id)
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            return status
        time.sleep(poll_s)


def _peek(store: Store, run_id: int) -> RunStatus:
    """The live status without touching the store unless the run ended (the store stays free for others)."""
    with store.connect() as con:
        row = sql.get_run(con, run_id)
    live = RunFolder(Path(row.run_dir)).status()
    if live.get("state") in FINAL_STATES or not _running(row, live):
        return run_status(store, run_id)
    return RunStatus(row, live)


def merge_run(
    store: Store, run_id: int, out: str | Path | None = None, progress: Callable[[str], None] | None = None
) -> Path:
    """Write the base model with the run's adapter merged in (a plain model folder, no peft needed)."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from ..models import load_causal_lm

    with store.connect() as con:
        row = sql.get_run(con, run_id)
    adapter = Path(row.adapter_dir or Path(row.run_dir) / "adapter")
    if not (adapter / "adapter_config.json").is_file():
        raise WorkbenchError(f"run {run_id} has no adapter yet (it is {row.status}); merge a finished run")
    problem = adapter_problem(adapter)
    if problem:
        raise WorkbenchError(
            f"the adapter of run {run_id} ({adapter}) is incomplete: {problem}. It was cut short "
            f"while being written (the run was stopped then?); nothing was merged. Train the run "
            f"again and merge once it is done"
        )
    target = check_new_path(out, "merge output folder") if out else Path(row.run_dir) / "merged"
    tell = progress or (lambda stage: None)
    tell("loading the base model")
    base = load_causal_lm(
        None if row.base_model == EMBEDDED_MODEL else row.base_model, store.models_dir, dtype=torch.float32
    )
    tell("merging the adapter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft asks transformers a deprecated question
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tell(f"writing {target}")
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(target)
    return target
