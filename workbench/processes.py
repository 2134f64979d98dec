"""Whether a process still exists: the one question background runs and interrupted exports ask."""

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
