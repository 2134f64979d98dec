"""The processes of background work: start a worker detached, the one registry of the workers this process
started, whether a worker still runs, and asking it to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from ..processes import pid_exists

# Workers this process started, so their end is seen at once (poll() also reaps them: a dead child left
# unreaped is a zombie, and a zombie's pid still "exists").
_children: dict[int, subprocess.Popen] = {}


def spawn_worker(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a background worker detached from this process (its own session: closing the terminal or
    the app does not stop it), its output appended to `log_path`. Raises OSError when it cannot start."""
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _children[child.pid] = child
    return child


def children() -> list[subprocess.Popen]:
    """The workers this process started (ended ones included)."""
    return list(_children.values())


def worker_alive(pid: int | None, marker: str, host: str | None = None) -> bool:
    """Whether the worker `pid` still runs: a child of ours that has not ended, or a live process whose
    command line holds `marker` (a zombie, or the pid reused by another program, is not our worker). On
    another host it cannot be checked: assume it does."""
    if not pid:
        return False
    if host and host != socket.gethostname():
        return True
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    if not pid_exists(pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): the pid exists


def stop_worker(pid: int | None) -> bool:
    """Send the worker SIGTERM (it ends its step and says cancelled); False when it is already gone."""
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a background worker (`python -m workbench...`): this process's, with the package
    importable from a checkout, unbuffered output for its log, and no tokenizer threads of its own."""
    package_root = str(Path(__file__).resolve().parents[2])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def poll_interval(default: float) -> float:
    """Seconds between two looks at a running worker: WORKBENCH_POLL_S when set (tests poll fast)."""
    try:
        return float(os.environ["WORKBENCH_POLL_S"])
    except (KeyError, ValueError):
        return default
