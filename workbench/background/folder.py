"""The folder of a piece of background work: its JSON files written atomically, its number among its kind's
folders, and the lock that makes "check, number, create" one step for concurrent starts."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that a reader (or a kill -9 mid-write) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def update_json(path: Path, **fields: Any) -> dict:
    """Merge `fields` into the JSON object in `path` (a missing file is an empty object), written atomically;
    returns the whole object."""
    value = {**(read_json(path) or {}), **fields}
    write_json_atomic(path, value)
    return value


@contextmanager
def locked(parent: Path) -> Iterator[None]:
    """Hold the lock of a kind's folder: one process (or thread) at a time checks what runs, picks the next
    number and creates its folder. The lock goes with the file descriptor, so a killed holder frees it."""
    parent.mkdir(parents=True, exist_ok=True)
    with (parent / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def numbers(parent: Path, *, started: bool = True) -> list[int]:
    """The numbered folders under `parent`, ascending; started: only those with a status.json (a folder still
    being filled is not work yet)."""
    if not parent.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in parent.iterdir()
        if p.name.isdigit() and (not started or (p / "status.json").exists())
    )


def next_number(parent: Path) -> int:
    return max(numbers(parent, started=False), default=0) + 1
