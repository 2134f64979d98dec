"""Kinds of background work (an import, a curation job, a pipeline) and the life they share: start one (refused
while one of its kind runs), read where it is (settling a worker that died), cancel it, start it again, and how a
worker ends (done, failed with the reason, or cancelled)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import roles
from ..errors import WorkbenchError
from .folder import locked, next_number, now_iso, numbers, read_json, update_json, write_json_atomic
from .process import spawn_worker, stop_worker, worker_alive, worker_env


class WorkState:
    """What the status of a kind's work shares: whether it runs, and how far it is when its size is known."""

    state: str  # running, done, failed, cancelled
    done: int
    total: int | None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float | None:
        """How far it is, 0 to 1, when its size is known."""
        return min(self.done / self.total, 1.0) if self.total else None


class WorkRunning(WorkbenchError):
    """Work of this kind is already running in this store."""


class Cancelled(Exception):
    """Raised inside a worker when what it waits on was cancelled (a pipeline's run)."""


# A dead worker's status, as a kind settles it: (folder, status as it stood, the generic verdict) -> fields
# to write instead. It may read the store (an import asks it which files were committed).
Settle = Callable[[Path, dict, dict], dict]


@dataclass(frozen=True)
class Kind:
    """One kind of background work: where its folders live and which module is its worker."""

    name: str
    folder: str  # under the store: store/<folder>/<number>/
    module: str  # the worker: python -m <module> <folder>
    what: str  # how a message names one ("import job", "pipeline")
    spec_file: str = "job.json"
    env: dict[str, str] = field(default_factory=dict)  # more environment for the worker
    settle: Settle | None = None

    def root(self, store_root: Path) -> Path:
        return store_root / self.folder

    def path(self, store_root: Path, number: int) -> Path:
        return self.root(store_root) / str(number)


def start(
    store_root: Path,
    kind: Kind,
    spec: dict | Callable[[Path], dict],
    *,
    status: dict,
    busy: Callable[[int, dict], str],
    once: bool = False,
) -> int:
    """Number, create and start one: under the kind's lock, refuse while the latest still runs (`busy` says
    why; once: refuse when there is one at all, whatever its state), make the next folder, write its spec (`spec`, or what `spec(folder)` returns) and status, and spawn
    its worker. Returns its number. Whatever fails on the way leaves no folder behind."""
    parent = kind.root(store_root)
    try:
        with locked(parent):
            found = latest(store_root, kind)
            if found and (once or found[1].get("state") == "running"):
                raise WorkRunning(busy(*found))
            number = next_number(parent)
            path = parent / str(number)
            path.mkdir()
            try:
                body = spec(path) if callable(spec) else spec
                write_json_atomic(path / kind.spec_file, body)
                write_json_atomic(
                    path / "status.json", {"state": "running", "started_at": now_iso(), **status}
                )
                spawn(kind, path)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
    except OSError as exc:  # a store folder that cannot be written: full, read-only
        raise WorkbenchError(
            f"could not start the {kind.what} in {parent}: {exc.strerror or exc}; free some disk space or "
            "check that the store folder can be written"
        ) from None
    return number


def spawn(kind: Kind, path: Path) -> int:
    """Start the kind's worker on `path` and note its pid in the status."""
    try:
        child = spawn_worker(
            [sys.executable, "-m", kind.module, str(path)], path / "log.txt", worker_env(**kind.env)
        )
    except OSError as exc:
        raise WorkbenchError(f"could not start the {kind.what}'s process: {exc}") from None
    update_json(path / "status.json", pid=child.pid)
    return child.pid


def restart(store_root: Path, kind: Kind, number: int, **changes: Any) -> None:
    """Start a stopped one again in its own folder (a resume), with `changes` written into its status."""
    path = kind.path(store_root, number)
    with locked(kind.root(store_root)):
        (path / "cancel").unlink(missing_ok=True)
        update_json(path / "status.json", state="running", error=None, finished_at=None, **changes)
        spawn(kind, path)


def read_status(store_root: Path, kind: Kind, number: int) -> dict:
    """The status of one, from its folder; a worker that is gone while it says running is settled first."""
    path = kind.path(store_root, number)
    status = read_json(path / "status.json")
    if status is None:
        raise WorkbenchError(f"no {kind.what} {number} in {kind.root(store_root)}")
    return settle(path, status, kind)


def latest(store_root: Path, kind: Kind) -> tuple[int, dict] | None:
    """The newest one (running or not) with its status, or None before the first."""
    found = numbers(kind.root(store_root))
    return (found[-1], read_status(store_root, kind, found[-1])) if found else None


def cancel(store_root: Path, kind: Kind, number: int) -> bool:
    """Ask a running one to stop: a `cancel` file (its worker, or whoever settles it, reads it as a cancel, not a
    failure) and SIGTERM. False when it is not running."""
    status = read_status(store_root, kind, number)
    if status.get("state") != "running":
        return False
    path = kind.path(store_root, number)
    (path / "cancel").touch()
    stop_worker(status.get("pid"))
    return True


def settle(path: Path, status: dict, kind: Kind) -> dict:
    """A status that says running while its worker is gone: cancelled when a cancel was asked, else failed (or
    what the kind's own `settle` finds, e.g. in the store); written back. Returns the status as it stands."""
    if status.get("state") != "running" or not status.get("pid") or worker_alive(status["pid"], kind.module):
        return status
    verdict = (
        {"state": "cancelled"}
        if (path / "cancel").exists()
        else {
            "state": "failed",
            "error": status.get("error") or f"the {kind.what}'s process ended without finishing (killed?)",
        }
    )
    if kind.settle:
        try:
            verdict = kind.settle(path, status, verdict)
        except WorkbenchError:
            return status  # the store is busy: the next look settles it
    return update_json(path / "status.json", finished_at=now_iso(), **verdict)


def run_worker(path: Path, body: Callable[[], dict | None]) -> int:
    """The frame of a worker process: note its pid, turn SIGTERM into a cancel, run `body` and write how it
    ended: done (with the fields `body` returns), cancelled (exit 3), or failed with the reason (exit 1)."""
    update_json(path / "status.json", pid=os.getpid())
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with roles.checked_at_start():
            fields = body() or {}
    except BaseException as exc:
        # a cancel that reached DuckDB (or a model) mid-call surfaces as its own error, not as ours: the
        # cancel file says what it was
        if isinstance(exc, (KeyboardInterrupt, Cancelled)) or (path / "cancel").exists():
            update_json(path / "status.json", state="cancelled", finished_at=now_iso())
            return 3
        error = (
            str(exc)
            if isinstance(exc, WorkbenchError)
            else "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        )
        update_json(path / "status.json", state="failed", finished_at=now_iso(), error=error)
        return 1
    update_json(path / "status.json", state="done", finished_at=now_iso(), **fields)
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt
