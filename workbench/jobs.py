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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ingest, roles
from .background import kinds
from .background.folder import read_json, update_json
from .errors import WorkbenchError
from .store import Store

STEPS = ("embed", "dedup", "cluster")
STEP_HELP = {
    "embed": "compute the records' embeddings (cached by text: only new texts are embedded)",
    "dedup": "group exact, near and semantic duplicates; one record per group is kept, the rest marked",
    "cluster": "group the badcases into named failure modes, with a 2-D map",
}
_WRITE_EVERY = 0.5  # seconds between status writes while a step reports progress
# A worker waits its turn on the store (another job's long transaction, the app's) instead of failing
# after the interactive 8 s: nobody is waiting at a prompt for it.
_WORKER_ENV = {"WORKBENCH_STORE_WAIT": "600"}
# Test hook: seconds an import worker waits after each file is committed, before it says so (a kill -9 in
# that window must still end as "done", read from the store).
_PAUSE_AFTER_COMMIT = "WORKBENCH_IMPORT_PAUSE_AFTER_COMMIT"

JobRunning = kinds.WorkRunning  # a job of the same kind is already running in this store


def _settle_import(path: Path, status: dict, verdict: dict) -> dict:
    """An import job whose process died: the store says which of its files were committed (each file's
    import is recorded with the staged file's path, in the transaction that commits its records), so the job
    is done when every file is accounted for, failed otherwise. The staged bytes go either way."""
    spec = read_json(path / "job.json") or {}
    files = spec.get("files", [])
    outcomes = list(status.get("imports") or [])
    pending = [path / relative for relative in files[len(outcomes) :]]
    if pending and spec.get("store"):
        committed = ingest.committed_imports(Store.open(spec["store"]), pending)
        for staged in pending:
            if str(staged) not in committed:
                break
            outcomes.append({"name": committed[str(staged)].file, "report": committed[str(staged)].as_dict()})
    shutil.rmtree(path / "files", ignore_errors=True)
    if len(outcomes) == len(files) and verdict["state"] == "failed":
        return {"state": "done", "imports": outcomes, "step": None}
    return {**verdict, "imports": outcomes}


KIND_OF = {
    "curate": kinds.Kind("curate", "jobs", "workbench.jobs", "job", env=_WORKER_ENV),
    "import": kinds.Kind(
        "import", "import-jobs", "workbench.jobs", "import job", env=_WORKER_ENV, settle=_settle_import
    ),
}
KINDS = {name: kind.folder for name, kind in KIND_OF.items()}  # kind -> its folder in the store


@dataclass
class JobStatus(kinds.WorkState):
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
    def imported(self) -> int:
        """Records an import job has imported so far, over the files it finished."""
        return sum(o["report"]["imported"] for o in self.imports if "report" in o)

    def import_outcomes(self) -> list[ingest.ImportReport | str]:
        """An import job's finished files in order: each one's report, or why it imported nothing."""
        return [
            o["error"] if "error" in o else ingest.ImportReport.from_dict(o["report"]) for o in self.imports
        ]

    @classmethod
    def from_status(cls, job_id: int, kind: str, status: dict) -> JobStatus:
        return cls(
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


def _kind(kind: str) -> kinds.Kind:
    if kind not in KIND_OF:
        raise WorkbenchError(f"unknown kind of job {kind!r}: choose from {', '.join(KIND_OF)}")
    return KIND_OF[kind]


def jobs_dir(store: Store, kind: str = "curate") -> Path:
    return _kind(kind).root(store.root)


def start_job(
    store: Store, steps: list[str] | tuple[str, ...] = STEPS, *, author: str = "workbench"
) -> JobStatus:
    """Start embed / dedup / cluster (in that order, those asked for) as a background process."""
    roles.require(store, "bulk")
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
    at all, and one that cannot be read does not stop the others. The bytes wait in the job's folder (under a
    safe file name; the upload's own name is kept beside it) until the job has imported them (the store keeps
    its own copy of each imported file)."""
    roles.require(store, "import")
    if not uploads:
        raise WorkbenchError("no files to import: choose one or more files first")
    if not dataset.strip():
        raise WorkbenchError("name the dataset to import into (badcases, general, eval, or a new name)")

    def stage(path: Path) -> dict:
        files, names = [], []
        try:
            for n, (name, data) in enumerate(uploads, 1):
                staged = path / "files" / str(n) / ingest.upload_name(name)  # two uploads may share a name
                staged.parent.mkdir(parents=True)
                staged.write_bytes(data)
                files.append(str(staged.relative_to(path)))
                names.append(ingest.upload_label(name))
        except OSError as exc:  # a disk that filled while staging
            raise WorkbenchError(
                f"could not keep the uploaded files for importing ({exc.strerror or exc}): "
                "free some disk space and import them again"
            ) from None
        return {
            "files": files,
            "names": names,
            "dataset": dataset.strip(),
            "category": category,
            "author": author,
        }

    return _launch(store, "import", ["import"], stage)


def _launch(store: Store, kind: str, steps: list[str], spec: dict | Callable[[Path], dict]) -> JobStatus:
    """Make the job's folder (`spec`, or what `spec(folder)` returns, becomes its job.json) and start its
    process; refused while a job of the same kind runs."""

    def busy(job_id: int, status: dict) -> str:
        what = "import" if kind == "import" else " + ".join(status.get("steps", []))
        return (
            f"job {job_id} ({what}) is still running since {status.get('started_at')}: wait for it to "
            "finish or cancel it first"
        )

    def body(path: Path) -> dict:
        value = spec(path) if callable(spec) else spec
        return {**value, "kind": kind, "steps": steps, "store": str(store.root)}

    job_id = kinds.start(store.root, _kind(kind), body, status={"steps": steps}, busy=busy)
    return job_status(store, job_id, kind)


def job_status(store: Store, job_id: int, kind: str = "curate") -> JobStatus:
    """Where a job is, read from its folder (a process that ended without a word is settled first)."""
    return JobStatus.from_status(job_id, kind, kinds.read_status(store.root, _kind(kind), job_id))


def latest_job(store: Store, kind: str = "curate") -> JobStatus | None:
    """The newest job of this kind (running or not), or None before the first. A folder still being filled
    (an upload's bytes being written) is not a job yet."""
    found = kinds.latest(store.root, _kind(kind))
    return JobStatus.from_status(found[0], kind, found[1]) if found else None


def cancel_job(store: Store, job_id: int, kind: str = "curate") -> bool:
    """Ask a running job to stop (its current step's transaction rolls back); False when it is not running."""
    return kinds.cancel(store.root, _kind(kind), job_id)


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

    def steps() -> dict:
        store = Store.open(spec["store"])
        author = spec.get("author", "workbench")
        results: dict[str, dict] = {}
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
        return {"step": None}

    return kinds.run_worker(path, steps)


def _run_imports(path: Path, store: Store, spec: dict) -> None:
    """Each staged file in turn; its report (or why it could not be read) is kept as soon as it is known. The
    staged bytes are deleted at the end however it ends (the store keeps its own copy of an imported file)."""
    outcomes: list[dict] = []
    files = spec["files"]
    names = spec.get("names") or [Path(relative).name for relative in files]
    pause = float(os.environ.get(_PAUSE_AFTER_COMMIT) or 0)
    try:
        for n, (relative, name) in enumerate(zip(files, names, strict=True), 1):
            staged = path / relative
            tell = _progress(path, "import", f"{name} ({n} of {len(files)})")
            tell("reading", 0, None)
            try:
                # the import row keeps the staged path, committed with the records: a job killed after the
                # commit is settled from the store (_settle_import)
                report = ingest.import_file(
                    store,
                    staged,
                    dataset=spec["dataset"],
                    category=spec.get("category"),
                    author=spec.get("author"),
                    progress=tell,
                    name=name,
                )
                time.sleep(pause)
                outcomes.append({"name": name, "report": report.as_dict()})
            except WorkbenchError as exc:  # name the upload, not the folder it waited in
                if (path / "cancel").exists():
                    raise
                outcomes.append({"name": name, "error": str(exc).replace(str(staged), name)})
            _update(path, imports=outcomes)
    finally:
        shutil.rmtree(path / "files", ignore_errors=True)


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
