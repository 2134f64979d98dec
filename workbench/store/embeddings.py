"""SQL for the text each record is represented by (for embeddings and dedup) and the embedding cache.

The text `embed.TextSpec` chooses is computed inside DuckDB (`text_sql`), so that a million records
never pass through Python just to pick their last user turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import WorkbenchError
from .connection import first_row


class TextChoice(Protocol):
    """Which text of a record is embedded and compared (embed.TextSpec): the turns, and whether the
    category is appended."""

    turns: str
    category: bool


def text_sql(spec: TextChoice, alias: str = "r") -> str:
    """A SQL expression giving the text of the record row `alias`, as `spec` chooses it ('last_user', 'user'
    or 'all' turns; a record with no user turn falls back to all of them)."""
    everything = (
        f"array_to_string(list_transform({alias}.messages, lambda m: coalesce(m.role, '') || ': ' || "
        f"coalesce(m.content, m.tool_calls::VARCHAR, '')), chr(10))"
    )
    users = f"list_filter({alias}.messages, lambda m: m.role = 'user' AND m.content IS NOT NULL)"
    if spec.turns == "last_user":
        text = f"coalesce({users}[-1].content, {everything})"
    elif spec.turns == "user":
        text = (
            f"coalesce(nullif(array_to_string(list_transform({users}, lambda m: m.content), chr(10)), ''), "
            f"{everything})"
        )
    else:
        text = everything
    if spec.category:
        text = (
            f"({text} || CASE WHEN coalesce({alias}.category, '') <> '' "
            f"THEN chr(10) || 'category: ' || {alias}.category ELSE '' END)"
        )
    return text


# Scripts: 'han' (Chinese characters), 'other' (letters of any other non-Latin script: Cyrillic, kana,
# Hangul, Arabic, ...), 'latin' (Latin letters, digits, punctuation only). A text with any Han
# character is 'han'; an English-only model cannot read either of the first two.
SCRIPT_SQL = (
    "CASE WHEN regexp_matches({t}, '\\p{{Han}}') THEN 'han' "
    "WHEN regexp_matches({t}, '[^\\p{{Latin}}\\p{{Common}}\\p{{Inherited}}]') THEN 'other' ELSE 'latin' END"
)


def script_sql(text_sql: str) -> str:
    return SCRIPT_SQL.format(t=text_sql)


_names = itertools.count()


def arrow(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> pa.Table:
    return con.sql(query, params=params or None).to_arrow_table()


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """con.register, after closing any half-read result (DuckDB 2 refuses to register while one is open)."""
    con.execute("SELECT 1").fetchall()
    con.register(name, table)


@contextmanager
def id_table(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> Iterator[str]:
    """A temporary relation `name(id BIGINT, pos BIGINT)` holding `ids`, for joins (a list parameter
    of a million ids would be slow); dropped afterwards."""
    name = f"wb_ids_{next(_names)}"
    table = pa.table(
        {
            "id": pa.array(np.asarray(ids, dtype=np.int64)),
            "pos": pa.array(np.arange(len(ids), dtype=np.int64)),
        }
    )
    register(con, name, table)
    try:
        yield name
    finally:
        con.unregister(name)


def record_texts(con: duckdb.DuckDBPyConnection, ids: Sequence[int], spec: TextChoice) -> pa.Table:
    """(id, text, text_hash, script) for `ids`, in the order given; missing ids are left out."""
    with id_table(con, ids) as name:
        return arrow(
            con,
            f"""
            SELECT id, text, md5(text) AS text_hash, {script_sql("text")} AS script FROM (
                SELECT i.id, i.pos, {text_sql(spec, "r")} AS text FROM {name} i JOIN records r ON r.id = i.id)
            ORDER BY pos""",
        )


# --- the embedding cache ---------------------------------------------------------------------------


def register_model(con: duckdb.DuckDBPyConnection, model: str, dim: int, reads: str, source: str) -> None:
    found = first_row(con, "SELECT dim FROM embedding_models WHERE model = ?", [model])
    if found and found[0] != dim:
        raise WorkbenchError(
            f"the embedding model {model!r} now gives {dim}-dim vectors, but the store has {found[0]}-dim vectors "
            f"cached under that name; give the new model another name (a different folder) or clear its cache"
        )
    con.execute(
        "INSERT OR REPLACE INTO embedding_models (model, dim, reads, source) VALUES (?, ?, ?, ?)",
        [model, dim, reads, source],
    )


def model_dim(con: duckdb.DuckDBPyConnection, model: str) -> int | None:
    row = first_row(con, "SELECT dim FROM embedding_models WHERE model = ?", [model])
    return row[0] if row else None


def cached_models(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, int]]:
    """(model, dim, reads, vectors cached) for every model with vectors in the cache."""
    return con.execute("""
        SELECT m.model, m.dim, m.reads, count(e.text_hash) FROM embedding_models m
        LEFT JOIN embeddings e ON e.model = m.model GROUP BY ALL ORDER BY m.model""").fetchall()


def missing_hashes(con: duckdb.DuckDBPyConnection, model: str, hashes: Sequence[str]) -> list[str]:
    """The distinct hashes in `hashes` that have no cached vector for `model`."""
    table = pa.table({"h": pa.array(list(hashes), pa.string())})
    name = f"wb_hashes_{next(_names)}"
    register(con, name, table)
    try:
        rows = con.execute(
            f"""SELECT DISTINCT h FROM {name} ANTI JOIN
                               (SELECT text_hash FROM embeddings WHERE model = ?) e ON e.text_hash = h""",
            [model],
        ).fetchall()
    finally:
        con.unregister(name)
    return [r[0] for r in rows]


def fetch_vectors(
    con: duckdb.DuckDBPyConnection, model: str, hashes: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """The cached vectors of `hashes` (those that have one) as (hashes found, float32 matrix)."""
    dim = model_dim(con, model)
    if dim is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    table = pa.table({"h": pa.array(list(dict.fromkeys(hashes)), pa.string())})
    name = f"wb_hashes_{next(_names)}"
    register(con, name, table)
    try:
        result = arrow(
            con,
            f"""SELECT e.text_hash, e.vector FROM {name} JOIN embeddings e
                                 ON e.text_hash = h AND e.model = ?""",
            [model],
        )
    finally:
        con.unregister(name)
    return result.column(0).to_pylist(), _matrix(result.column(1), dim)


def _matrix(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    if len(column) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    values = pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(column), dim)


def store_vectors(
    con: duckdb.DuckDBPyConnection, model: str, hashes: Sequence[str], vectors: np.ndarray
) -> None:
    """Cache `vectors` (one row per hash) for `model`; hashes already cached are left as they are."""
    if len(hashes) == 0:
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = model_dim(con, model)
    if dim is not None and vectors.shape[1] != dim:
        raise WorkbenchError(f"{model!r} gave {vectors.shape[1]}-dim vectors, the cache holds {dim}-dim ones")
    table = pa.table(
        {
            "h": pa.array(list(hashes), pa.string()),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        }
    )
    name = f"wb_vectors_{next(_names)}"
    register(con, name, table)
    try:
        con.execute(
            f"INSERT OR IGNORE INTO embeddings (text_hash, model, vector) "
            f"SELECT h, ?, v::FLOAT[] FROM {name}",
            [model],
        )
    finally:
        con.unregister(name)
