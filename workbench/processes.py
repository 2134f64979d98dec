"""Whether a process still exists, and the background workers (training runs, curation jobs) we start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def pid_exists(pid: int) -> bool:
    """True while a process with this id exists on this machine (one we may not signal counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Background workers this process started, so their end is seen at once (poll() also reaps them:
# a dead child left unreaped is a zombie, and a zombie's pid still "exists").
_children: dict[int, subprocess.Popen] = {}


def spawn_worker(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a background worker detached from this process (its own session: closing the terminal or
    the app does not stop it), its output appended to `log_path`."""
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


def worker_alive(pid: int | None, marker: str) -> bool:
    """Whether the worker `pid` still runs: a child of ours that has not ended, or a live process whose
    command line holds `marker` (a zombie, or the pid reused by another program, is not our worker)."""
    if not pid:
        return False
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


def worker_env() -> dict[str, str]:
    """The environment of a background worker (`python -m workbench...`): this process's, with the package
    importable from a checkout, unbuffered output for its log, and no tokenizer threads of its own."""
    package_root = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
