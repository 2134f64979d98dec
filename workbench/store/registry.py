"""SQL for the model registry (endpoints and local models by name) and the endpoint requests of an
evaluation that failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from ..errors import NotFoundError, WorkbenchError

_COLUMNS = (
    "name",
    "kind",
    "url",
    "model_id",
    "api_key_env",
    "max_concurrency",
    "path",
    "run_id",
    "author",
    "created_at",
)


@dataclass
class ModelRow:
    name: str
    kind: str
    url: str | None
    model_id: str | None
    api_key_env: str | None
    max_concurrency: int | None
    path: str | None
    run_id: int | None
    author: str | None
    created_at: Any


def insert_model(con: duckdb.DuckDBPyConnection, row: ModelRow, *, replace: bool = False) -> None:
    exists = con.execute("SELECT 1 FROM models WHERE name = ?", [row.name]).fetchone()
    if exists and not replace:
        raise WorkbenchError(
            f"a model named {row.name!r} is registered already; remove it first (workbench models remove {row.name})"
        )
    if exists:
        con.execute("DELETE FROM models WHERE name = ?", [row.name])
    names = [c for c in _COLUMNS if c != "created_at"]
    con.execute(
        f"INSERT INTO models ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [getattr(row, c) for c in names],
    )


def get_model(con: duckdb.DuckDBPyConnection, name: str) -> ModelRow:
    found = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM models WHERE name = ?", [name]).fetchone()
    if found is None:
        raise NotFoundError(f"no model named {name!r} is registered; `workbench models` lists them")
    return ModelRow(*found)


def list_models(con: duckdb.DuckDBPyConnection) -> list[ModelRow]:
    return [
        ModelRow(*r)
        for r in con.execute(f"SELECT {', '.join(_COLUMNS)} FROM models ORDER BY name").fetchall()
    ]


def delete_model(con: duckdb.DuckDBPyConnection, name: str) -> None:
    get_model(con, name)
    con.execute("DELETE FROM models WHERE name = ?", [name])


def record_request_error(con: duckdb.DuckDBPyConnection, evaluation_id: int, seq: int, error: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO evaluation_request_errors (evaluation_id, seq, error) VALUES (?, ?, ?)",
        [evaluation_id, seq, error],
    )


def clear_request_error(con: duckdb.DuckDBPyConnection, evaluation_id: int, seq: int) -> None:
    con.execute(
        "DELETE FROM evaluation_request_errors WHERE evaluation_id = ? AND seq = ?", [evaluation_id, seq]
    )


def request_errors(con: duckdb.DuckDBPyConnection, evaluation_id: int) -> list[tuple[int, str]]:
    """(seq, error) of the records whose request failed and has not been answered since."""
    return con.execute(
        "SELECT seq, error FROM evaluation_request_errors WHERE evaluation_id = ? ORDER BY seq",
        [evaluation_id],
    ).fetchall()
