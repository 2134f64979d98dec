"""Background jobs that outlive the browser tab that started them: curation (embed, dedup, cluster) and
imports of uploaded files.

A job is a process of its own with a folder `store/jobs/<id>/` (imports: `store/import-jobs/<id>/`):
`job.json` says what to do, and `status.json` (rewritten atomically) says where it is. Like a training
run, the folder is the truth while the job runs: the job opens the store only inside each step's own
transactions, so the app and the CLI keep taking turns on it, and the page that shows the job only reads
the folder. One job of each kind runs at a time in a store; a job whose process is gone is reported
failed by whoever looks.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ingest
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
KINDS = {"curate": "jobs", "import": "import-jobs"}  # kind -> its folder in the store
# A worker waits its turn on the store (another job's long transaction, the app's) instead of failing
# after the interactive 8 s: nobody is waiting at a prompt for it.
_WORKER_STORE_WAIT = "600"


class JobRunning(WorkbenchError):
    """A job is already running in this store."""


@dataclass
class JobStatus:
    """A job as a page shows it: what it does, where it is, and what each finished step found."""

    id: int
    steps: list[str]
    state: str  # running, done, failed, cancelled
    step: str | None = None  # the step now running
    stage: str | None = None  # what the step is doing now (an import: reading, normalising, checking)
    detail: str | None = None  # which item the step is at (an import: the file's name and "2 of 3")
    done: int = 0
    total: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    results: dict[str, dict] = field(default_factory=dict)  # step -> its report, as a dict
    pid: int | None = None
    kind: str = "curate"
    imports: list[dict] = field(default_factory=list)  # an import job: per file, its name and report or error

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float | None:
        """How far the current step is, 0 to 1, when its size is known."""
        return min(self.done / self.total, 1.0) if self.total else None


def jobs_dir(store: Store, kind: str = "curate") -> Path:
    if kind not in KINDS:
        raise WorkbenchError(f"unknown kind of job {kind!r}: choose from {', '.join(KINDS)}")
    return store.root / KINDS[kind]


def start_job(
    store: Store, steps: list[str] | tuple[str, ...] = STEPS, *, author: str = "workbench"
) -> JobStatus:
    """Start embed / dedup / cluster (in that order, those asked for) as a background process."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise WorkbenchError(f"unknown job step(s) {unknown or steps}: choose from {', '.join(STEPS)}")
    ordered = [s for s in STEPS if s in steps]
    return _launch(store, "curate", ordered, {"author": author})


def start_import_job(
    store: Store,
    uploads: list[tuple[str, bytes]],
    *,
    dataset: str = "badcases",
    category: str | None = None,
    author: str | None = None,
) -> JobStatus:
    """Import uploaded files (name, bytes) one after another in a background process; each lands whole or not
    at all, and one that cannot be read does not stop the others. The bytes wait in the job's folder until
    the job has imported them (the store keeps its own copy of each imported file)."""
    if not uploads:
        raise WorkbenchError("no files to import: choose one or more files first")
    if not dataset.strip():
        raise WorkbenchError("name the dataset to import into (badcases, general, eval, or a new name)")

    def stage(path: Path) -> dict:
        files = []
        for n, (name, data) in enumerate(uploads, 1):
            staged = path / "files" / str(n) / ingest.upload_name(name)  # two uploads may share a name
            staged.parent.mkdir(parents=True)
            staged.write_bytes(data)
            files.append(str(staged.relative_to(path)))
        return {"files": files, "dataset": dataset.strip(), "category": category, "author": author}

    return _launch(store, "import", ["import"], stage)


def _launch(store: Store, kind: str, steps: list[str], spec: dict | Callable[[Path], dict]) -> JobStatus:
    """Make the job's folder (`spec`, or what `spec(folder)` returns, becomes its job.json) and start its
    process; refused while a job of the same kind runs."""
    current = latest_job(store, kind)
    if current and current.running:
        what = "import" if kind == "import" else " + ".join(current.steps)
        raise JobRunning(
            f"job {current.id} ({what}) is still running since "
            f"{current.started_at}: wait for it to finish or cancel it first"
        )
    folder = jobs_dir(store, kind)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0) + 1
    path = folder / str(job_id)
    path.mkdir()
    try:
        body = spec(path) if callable(spec) else spec
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # a disk that filled while staging leaves no job behind
        raise
    write_json_atomic(path / "job.json", {**body, "kind": kind, "steps": steps, "store": str(store.root)})
    write_json_atomic(path / "status.json", {"state": "running", "steps": steps, "started_at": now_iso()})
    env = {**worker_env(), "WORKBENCH_STORE_WAIT": _WORKER_STORE_WAIT}
    child = spawn_worker([sys.executable, "-m", "workbench.jobs", str(path)], path / "log.txt", env)
    _update(path, pid=child.pid)
    return job_status(store, job_id, kind)


def job_status(store: Store, job_id: int, kind: str = "curate") -> JobStatus:
    path = jobs_dir(store, kind) / str(job_id)
    status = read_json(path / "status.json")
    if status is None:
        raise WorkbenchError(f"no job {job_id} in {jobs_dir(store, kind)}")
    # a process that ended without a word: cancelled before it could say so, or killed (out of memory?)
    status = settle_dead_worker(path, status, "workbench.jobs", "the job's")
    return JobStatus(
        job_id,
        status.get("steps", []),
        status.get("state", "failed"),
        status.get("step"),
        status.get("stage"),
        status.get("detail"),
        status.get("done", 0),
        status.get("total"),
        status.get("started_at"),
        status.get("finished_at"),
        status.get("error"),
        status.get("results", {}),
        status.get("pid"),
        kind,
        status.get("imports", []),
    )


def latest_job(store: Store, kind: str = "curate") -> JobStatus | None:
    """The newest job of this kind (running or not), or None before the first. A folder still being filled
    (an upload's bytes being written) is not a job yet."""
    folder = jobs_dir(store, kind)
    ids = (
        [int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "status.json").exists()]
        if folder.is_dir()
        else []
    )
    return job_status(store, max(ids), kind) if ids else None


def cancel_job(store: Store, job_id: int, kind: str = "curate") -> bool:
    """Ask a running job to stop (its current step's transaction rolls back); False when it is not running."""
    status = job_status(store, job_id, kind)
    if not status.running or not status.pid:
        return False
    (jobs_dir(store, kind) / str(job_id) / "cancel").touch()
    try:
        os.kill(status.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _update(path: Path, **fields: Any) -> dict:
    return update_json(path / "status.json", **fields)


def _progress(path: Path, step: str, detail: str | None = None) -> Callable[[str, int, int | None], None]:
    last = [0.0, ""]

    def tell(stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= _WRITE_EVERY or (total and done >= total) or stage != last[1]:
            last[0], last[1] = now, stage
            _update(path, step=step, stage=stage, detail=detail, done=done, total=total)

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
            if step == "import":
                _run_imports(path, store, spec)
                continue
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
    except BaseException as exc:
        # a cancel that reached DuckDB mid-query surfaces as its "Query interrupted" error, not as ours
        if isinstance(exc, KeyboardInterrupt) or (path / "cancel").exists():
            _update(path, state="cancelled", finished_at=now_iso(), step=None)
            return 3
        return _failed(path, exc)
    _update(path, state="done", finished_at=now_iso(), step=None)
    return 0


def _failed(path: Path, exc: BaseException) -> int:
    if isinstance(exc, WorkbenchError):
        _update(path, state="failed", finished_at=now_iso(), error=str(exc))
    else:
        _update(path, state="failed", finished_at=now_iso(), error=traceback.format_exc(limit=-3))
    return 1


def _run_imports(path: Path, store: Store, spec: dict) -> None:
    """Each staged file in turn; its report (or why it could not be read) is kept as soon as it is known. The
    staged bytes are deleted at the end however it ends (the store keeps its own copy of an imported file)."""
    outcomes: list[dict] = []
    files = spec["files"]
    try:
        for n, relative in enumerate(files, 1):
            staged = path / relative
            name = staged.name
            tell = _progress(path, "import", f"{name} ({n} of {len(files)})")
            tell("reading", 0, None)
            try:
                report = ingest.import_file(
                    store,
                    staged,
                    dataset=spec["dataset"],
                    category=spec.get("category"),
                    author=spec.get("author"),
                    progress=tell,
                )
                report.file = name
                outcomes.append({"name": name, "report": report.as_dict()})
            except WorkbenchError as exc:  # name the upload, not the folder it waited in
                if (path / "cancel").exists():
                    raise
                outcomes.append({"name": name, "error": str(exc).replace(str(staged), name)})
            _update(path, imports=outcomes)
    finally:
        shutil.rmtree(path / "files", ignore_errors=True)


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
