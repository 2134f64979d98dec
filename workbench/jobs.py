"""Background curation jobs (embed, dedup, cluster) that outlive the browser tab that started them.

A job is a process of its own with a folder `store/jobs/<id>/`: `job.json` says what to do, and
`status.json` (rewritten atomically) says where it is. Like a training run, the folder is the truth
while the job runs: the job opens the store only inside each step's own short transactions, so the
app and the CLI keep taking turns on it, and the page that shows the job only reads the folder.
One job runs at a time in a store; a job whose process is gone is reported failed by whoever looks.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WorkbenchError
from .processes import spawn_worker, worker_env
from .store import Store
from .train.folder import now_iso, read_json, settle_dead_worker, update_json, write_json_atomic

STEPS = ("embed", "dedup", "cluster")
STEP_HELP = {
    "embed": "compute the records' embeddings (cached by text: only new texts are embedded)",
    "dedup": "group exact, near and semantic duplicates; one record per group is kept, the rest marked",
    "cluster": "group the badcases into named failure modes, with a 2-D map",
}
_WRITE_EVERY = 0.5  # seconds between status writes while a step reports progress


class JobRunning(WorkbenchError):
    """A job is already running in this store."""


@dataclass
class JobStatus:
    """A job as a page shows it: what it does, where it is, and what each finished step found."""

    id: int
    steps: list[str]
    state: str  # running, done, failed, cancelled
    step: str | None = None  # the step now running
    done: int = 0
    total: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    results: dict[str, dict] = field(default_factory=dict)  # step -> its report, as a dict
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float | None:
        """How far the current step is, 0 to 1, when its size is known."""
        return min(self.done / self.total, 1.0) if self.total else None


def jobs_dir(store: Store) -> Path:
    return store.root / "jobs"


def start_job(
    store: Store, steps: list[str] | tuple[str, ...] = STEPS, *, author: str = "workbench"
) -> JobStatus:
    """Start embed / dedup / cluster (in that order, those asked for) as a background process."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise WorkbenchError(f"unknown job step(s) {unknown or steps}: choose from {', '.join(STEPS)}")
    current = latest_job(store)
    if current and current.running:
        raise JobRunning(
            f"job {current.id} ({' + '.join(current.steps)}) is still running since "
            f"{current.started_at}: wait for it to finish or cancel it first"
        )
    folder = jobs_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0) + 1
    path = folder / str(job_id)
    path.mkdir()
    ordered = [s for s in STEPS if s in steps]
    write_json_atomic(path / "job.json", {"steps": ordered, "author": author, "store": str(store.root)})
    write_json_atomic(path / "status.json", {"state": "running", "steps": ordered, "started_at": now_iso()})
    env = worker_env()
    child = spawn_worker([sys.executable, "-m", "workbench.jobs", str(path)], path / "log.txt", env)
    _update(path, pid=child.pid)
    return job_status(store, job_id)


def job_status(store: Store, job_id: int) -> JobStatus:
    path = jobs_dir(store) / str(job_id)
    status = read_json(path / "status.json")
    if status is None:
        raise WorkbenchError(f"no job {job_id} in {jobs_dir(store)}")
    # a process that ended without a word: cancelled before it could say so, or killed (out of memory?)
    status = settle_dead_worker(path, status, "workbench.jobs", "the job's")
    return JobStatus(
        job_id,
        status.get("steps", []),
        status.get("state", "failed"),
        status.get("step"),
        status.get("done", 0),
        status.get("total"),
        status.get("started_at"),
        status.get("finished_at"),
        status.get("error"),
        status.get("results", {}),
        status.get("pid"),
    )


def latest_job(store: Store) -> JobStatus | None:
    """The newest job (running or not), or None before the first."""
    folder = jobs_dir(store)
    ids = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return job_status(store, max(ids)) if ids else None


def cancel_job(store: Store, job_id: int) -> bool:
    """Ask a running job to stop (its current step's transaction rolls back); False when it is not running."""
    status = job_status(store, job_id)
    if not status.running or not status.pid:
        return False
    (jobs_dir(store) / str(job_id) / "cancel").touch()
    try:
        os.kill(status.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _update(path: Path, **fields: Any) -> dict:
    return update_json(path / "status.json", **fields)


def _progress(path: Path, step: str) -> Callable[[str, int, int | None], None]:
    last = [0.0]

    def tell(stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= _WRITE_EVERY or (total and done >= total):
            last[0] = now
            _update(path, step=step, stage=stage, done=done, total=total)

    return tell


def run_job(path: Path) -> int:
    """The body of the background process: each step in turn, its report kept in status.json."""
    from . import cluster, dedup, embed

    spec = read_json(path / "job.json") or {}
    store = Store.open(spec["store"])
    author = spec.get("author", "workbench")
    _update(path, pid=os.getpid())
    signal.signal(signal.SIGTERM, _interrupt)  # cancel: the running step's transaction rolls back
    results: dict[str, dict] = {}
    try:
        for step in spec["steps"]:
            _update(path, step=step, stage=step, done=0, total=None)
            tell = _progress(path, step)
            if step == "embed":
                results[step] = _summary(
                    embed.embed_records(
                        store, progress=lambda done, total, tell=tell: tell("embed", done, total)
                    )
                )
            elif step == "dedup":
                results[step] = _summary(dedup.dedup(store, author=author, progress=tell))
            else:
                results[step] = _summary(cluster.cluster_records(store, author=author, progress=tell))
            _update(path, results=results)
    except KeyboardInterrupt:
        _update(path, state="cancelled", finished_at=now_iso(), step=None)
        return 3
    except WorkbenchError as exc:
        _update(path, state="failed", finished_at=now_iso(), error=str(exc))
        return 1
    except BaseException:
        _update(path, state="failed", finished_at=now_iso(), error=traceback.format_exc(limit=-3))
        return 1
    _update(path, state="done", finished_at=now_iso(), step=None)
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _summary(report: Any) -> dict:
    """The plain numbers of a step's report (what a page shows), not its lists of records."""
    out = {}
    for name, value in vars(report).items():
        if isinstance(value, (int, float, str)) or value is None:
            out[name] = value
        elif isinstance(value, dict) and all(isinstance(v, (int, float, str)) for v in value.values()):
            out[name] = value
        elif isinstance(value, list):
            out[name] = len(value)
    return out


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
