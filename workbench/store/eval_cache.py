"""SQL for the evaluation cache: answers and losses by key, and the remembered content hashes of model files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb

from .connection import first_row, scalar


@dataclass
class CachedAnswer:
    """What the cache holds for one key: an answer's token ids and seconds, or a loss."""

    output_ids: list[int] | None
    seconds: float | None
    loss: float | None


def cached(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, CachedAnswer]:
    """The cache's rows for those of `keys` it holds."""
    if not keys:
        return {}
    rows = con.execute(
        "SELECT key, output_ids, seconds, loss FROM eval_cache WHERE key IN (SELECT unnest(?))",
        [list(set(keys))],
    ).fetchall()
    return {
        key: CachedAnswer(json.loads(ids) if ids is not None else None, seconds, loss)
        for key, ids, seconds, loss in rows
    }


def remember(
    con: duckdb.DuckDBPyConnection,
    rows: Iterable[tuple[str, str, list[int] | None, float | None, float | None]],
) -> None:
    """Add (key, kind, output_ids, seconds, loss) rows; a key already there keeps its row (same inputs, same value)."""
    values = [
        (key, kind, json.dumps(ids) if ids is not None else None, seconds, loss)
        for key, kind, ids, seconds, loss in rows
    ]
    if values:
        con.executemany(
            "INSERT INTO eval_cache (key, kind, output_ids, seconds, loss) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            values,
        )


def cache_size(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in the cache per kind."""
    return dict(con.execute("SELECT kind, count(*) FROM eval_cache GROUP BY kind").fetchall())


def clear_cache(con: duckdb.DuckDBPyConnection) -> int:
    """Empty the cache; returns the rows removed."""
    n = scalar(con, "SELECT count(*) FROM eval_cache")
    con.execute("DELETE FROM eval_cache")
    return int(n)


def known_hash(con: duckdb.DuckDBPyConnection, path: str, size: int, mtime_ns: int) -> str | None:
    """The remembered sha256 of the file at `path` when its size and modification time are unchanged."""
    row = first_row(
        con,
        "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
        [path, size, mtime_ns],
    )
    return row[0] if row else None


def remember_hash(con: duckdb.DuckDBPyConnection, path: str, size: int, mtime_ns: int, sha256: str) -> None:
    con.execute(
        "INSERT INTO file_hashes VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
        "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256",
        [path, size, mtime_ns, sha256],
    )
