"""SQL for training runs: record a run, bring its row up to date, list runs, and follow the lineage
export -> run -> parent runs -> adapter in one query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from ..errors import NotFoundError

ACTIVE = ("queued", "running")
COLUMNS = (
    "id",
    "status",
    "export_name",
    "export_dir",
    "export_hash",
    "base_model",
    "parent_run",
    "init",
    "config",
    "run_dir",
    "pid",
    "host",
    "step",
    "total_steps",
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "train_accuracy",
    "best_step",
    "adapter_dir",
    "warnings",
    "error",
    "author",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
)
_UPDATABLE = set(COLUMNS) - {"id", "created_at", "updated_at"}


@dataclass
class RunRow:
    id: int
    status: str
    export_name: str | None
    export_dir: str
    export_hash: str | None
    base_model: str
    parent_run: int | None
    init: str
    config: dict
    run_dir: str
    pid: int | None
    host: str | None
    step: int | None
    total_steps: int | None
    epoch: float | None
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    train_accuracy: float | None
    best_step: int | None
    adapter_dir: str | None
    warnings: list[str] | None
    error: str | None
    author: str | None
    created_at: Any
    started_at: Any
    finished_at: Any
    updated_at: Any

    def as_dict(self) -> dict:
        return {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in self.__dict__.items()}


def _row(values: tuple) -> RunRow:
    data = dict(zip(COLUMNS, values, strict=True))
    for key in ("config", "warnings"):
        if isinstance(data[key], str):
            data[key] = json.loads(data[key])
    return RunRow(**data)


def insert_run(
    con: duckdb.DuckDBPyConnection,
    *,
    export_dir: str,
    export_name: str | None,
    export_hash: str | None,
    base_model: str,
    parent_run: int | None,
    init: str,
    config: dict,
    runs_dir: str,
    author: str | None = None,
    taken: set[str] | None = None,
) -> RunRow:
    """Record a queued run; its folder is `<runs_dir>/<id>` (ids whose folder name is in `taken` are skipped,
    so a store rebuilt beside an old runs folder never reuses a folder)."""
    while True:
        run_id = con.execute("SELECT nextval('seq_runs')").fetchone()[0]
        if not taken or str(run_id) not in taken:
            break
    con.execute(
        "INSERT INTO runs (id, status, export_name, export_dir, export_hash, base_model, parent_run, init, config, "
        "run_dir, author) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            export_name,
            export_dir,
            export_hash,
            base_model,
            parent_run,
            init,
            json.dumps(config, ensure_ascii=False),
            f"{runs_dir}/{run_id}",
            author,
        ],
    )
    return get_run(con, run_id)


def update_run(con: duckdb.DuckDBPyConnection, run_id: int, **changes: Any) -> None:
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"runs has no updatable column(s) {sorted(unknown)}")
    if not changes:
        return
    values = [
        json.dumps(v, ensure_ascii=False) if k in ("config", "warnings") and v is not None else v
        for k, v in changes.items()
    ]
    assignments = ", ".join(f"{k} = ?" for k in changes)
    con.execute(
        f"UPDATE runs SET {assignments}, updated_at = current_timestamp WHERE id = ?", [*values, run_id]
    )


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> RunRow:
    row = con.execute(f"SELECT {', '.join(COLUMNS)} FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise NotFoundError(f"there is no run {run_id}; `workbench runs` lists the runs")
    return _row(row)


def list_runs(
    con: duckdb.DuckDBPyConnection, *, statuses: tuple[str, ...] | None = None, limit: int | None = None
) -> list[RunRow]:
    where = f"WHERE status IN ({', '.join('?' for _ in statuses)})" if statuses else ""
    sql = f"SELECT {', '.join(COLUMNS)} FROM runs {where} ORDER BY id DESC" + (
        f" LIMIT {int(limit)}" if limit else ""
    )
    return [_row(r) for r in con.execute(sql, list(statuses or ())).fetchall()]


def active_runs(con: duckdb.DuckDBPyConnection) -> list[RunRow]:
    return list_runs(con, statuses=ACTIVE)


def run_lineage(con: duckdb.DuckDBPyConnection, run_id: int) -> list[dict]:
    """The run and its ancestors (itself first, then its parent run, ...; `init` says whether each continued its
    parent's adapter or started a fresh one), each with its export (name, hash, folder, and the export log's
    record counts) and its adapter: data -> run -> adapter, in one query."""
    get_run(con, run_id)
    rows = con.execute(
        """
        WITH RECURSIVE chain(id, depth) AS (
            SELECT id, 0 FROM runs WHERE id = ?
            UNION ALL
            SELECT r.parent_run, c.depth + 1 FROM chain c JOIN runs r ON r.id = c.id
            WHERE r.parent_run IS NOT NULL AND c.depth < 100
        )
        SELECT c.depth, r.id, r.status, r.init, r.parent_run, r.base_model, r.export_name, r.export_hash, r.export_dir,
               r.adapter_dir, r.val_accuracy, r.val_loss, r.best_step,
               e.train_records, e.val_records, e.created_at AS exported_at
        FROM chain c JOIN runs r ON r.id = c.id LEFT JOIN exports e ON e.hash = r.export_hash
        ORDER BY c.depth""",
        [run_id],
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
