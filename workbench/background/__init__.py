"""Background work: anything that runs in a process of its own with a folder of its own (imports, curation
jobs, pipelines, training runs), written once.

    folder   JSON files written atomically, numbering, the lock around "check, number, create"
    process  spawn a detached worker, the one registry of our children, liveness, stop
    kinds    a kind of work (folder + worker module) and the life every kind shares: start, status, settle
             a dead worker, cancel, restart, and the frame of the worker process itself
"""

from .folder import locked, now_iso, read_json, update_json, write_json_atomic
from .kinds import Cancelled, Kind, WorkRunning
from .process import poll_interval, spawn_worker, worker_alive, worker_env

__all__ = [
    "Cancelled",
    "Kind",
    "WorkRunning",
    "locked",
    "now_iso",
    "poll_interval",
    "read_json",
    "spawn_worker",
    "update_json",
    "worker_alive",
    "worker_env",
    "write_json_atomic",
]
