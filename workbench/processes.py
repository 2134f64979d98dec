"""Whether a process exists on this machine (store locks and temp folders name the process that holds them).
Background workers, their registry and their liveness live in `workbench.background`."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    """True while a process with this id exists on this machine (one we may not signal counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
