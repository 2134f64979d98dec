"""SQL for clustering runs: the clusters (names, keywords, representatives), members with 2-D map positions,
and giving a cluster a category (one revision per record changed)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import NotFoundError
from .connection import first_row
from .embeddings import arrow, id_table, register

CATEGORY_ACTION = "cluster-category"
_names = itertools.count()


@dataclass(frozen=True)
class StoredCluster:
    run_id: int
    cluster: int
    name: str
    keywords: list[str]
    size: int
    representatives: list[int]
    x: float | None
    y: float | None
    category: str | None


@dataclass(frozen=True)
class StoredRun:
    id: int
    author: str
    model: str
    text_spec: str
    method: str
    k: int
    k_chosen_by: str
    params: dict
    records: int
    seconds: float | None
    created_at: object


def new_run_id(con: duckdb.DuckDBPyConnection) -> int:
    return first_row(con, "SELECT nextval('seq_cluster_runs')")[0]


def save_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    *,
    author: str,
    selection: dict,
    model: str,
    text_spec: str,
    method: str,
    k: int,
    k_chosen_by: str,
    params: dict,
    seconds: float,
    clusters: Sequence[tuple],
    member_ids: np.ndarray,
    labels: np.ndarray,
    xy: np.ndarray,
    distance: np.ndarray,
) -> None:
    """clusters: (cluster, name, keywords, size, representatives, x, y) rows."""
    con.execute(
        """INSERT INTO cluster_runs (id, author, selection, model, text_spec, method, k, k_chosen_by, params,
                                             records, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            run_id,
            author,
            json.dumps(selection, default=str),
            model,
            text_spec,
            method,
            k,
            k_chosen_by,
            json.dumps(params),
            len(member_ids),
            seconds,
        ],
    )
    if clusters:
        con.executemany(
            """INSERT INTO clusters (run_id, cluster, name, keywords, size, representatives, x, y)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            [[run_id, *row] for row in clusters],
        )
    name = f"wb_members_{next(_names)}"
    register(
        con,
        name,
        pa.table(
            {
                "id": pa.array(np.asarray(member_ids, np.int64)),
                "cluster": pa.array(np.asarray(labels, np.int32)),
                "x": pa.array(np.asarray(xy[:, 0], np.float32)),
                "y": pa.array(np.asarray(xy[:, 1], np.float32)),
                "d": pa.array(np.asarray(distance, np.float32)),
            }
        ),
    )
    try:
        con.execute(f"INSERT INTO cluster_members SELECT ?, id, cluster, x, y, d FROM {name}", [run_id])
    finally:
        con.unregister(name)


def latest_run_id(con: duckdb.DuckDBPyConnection) -> int | None:
    return first_row(con, "SELECT max(id) FROM cluster_runs")[0]


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> StoredRun:
    row = first_row(
        con,
        """SELECT id, author, model, text_spec, method, k, k_chosen_by, params, records, seconds, created_at
                      FROM cluster_runs WHERE id = ?""",
        [run_id],
    )
    if row is None:
        raise NotFoundError(f"there is no clustering run {run_id}; `workbench cluster --runs` lists them")
    return StoredRun(*row[:7], json.loads(row[7]) if row[7] else {}, *row[8:])


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple]:
    return con.execute(
        """SELECT id, created_at, author, model, method, k, records, seconds FROM cluster_runs
                          ORDER BY id DESC LIMIT ?""",
        [limit],
    ).fetchall()


def clusters_of(con: duckdb.DuckDBPyConnection, run_id: int) -> list[StoredCluster]:
    rows = con.execute(
        """SELECT run_id, cluster, name, keywords, size, representatives, x, y, category FROM clusters
                          WHERE run_id = ? ORDER BY size DESC, cluster""",
        [run_id],
    ).fetchall()
    return [StoredCluster(r[0], r[1], r[2], list(r[3]), r[4], list(r[5]), r[6], r[7], r[8]) for r in rows]


def members_of(con: duckdb.DuckDBPyConnection, run_id: int, cluster: int | None = None) -> pa.Table:
    """(record_id, cluster, x, y, distance) of a run (or one cluster of it), for the map."""
    where, params = (
        ("run_id = ?", [run_id]) if cluster is None else ("run_id = ? AND cluster = ?", [run_id, cluster])
    )
    return arrow(
        con,
        f"SELECT record_id, cluster, x, y, distance FROM cluster_members WHERE {where} "
        f"ORDER BY cluster, distance",
        params,
    )


def set_category(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    cluster: int,
    category: str,
    author: str,
    include_duplicates: bool = True,
) -> int:
    """Give every record of a cluster the category, one revision per record whose category changes.

    With include_duplicates, records marked as duplicates of a member (left out of clustering) get it
    too. Returns how many records changed. Call inside a transaction.
    """
    if (
        first_row(con, "SELECT count(*) FROM clusters WHERE run_id = ? AND cluster = ?", [run_id, cluster])[0]
        == 0
    ):
        raise NotFoundError(f"clustering run {run_id} has no cluster {cluster}")
    ids = [
        r[0]
        for r in con.execute(
            "SELECT record_id FROM cluster_members WHERE run_id = ? AND cluster = ?", [run_id, cluster]
        ).fetchall()
    ]
    with id_table(con, ids) as name:
        extra = f"OR r.dup_of IN (SELECT id FROM {name})" if include_duplicates else ""
        con.execute(
            f"""CREATE TEMP TABLE {name}_todo AS SELECT r.id, r.category AS old, r.version FROM records r
                        WHERE (r.id IN (SELECT id FROM {name}) {extra}) AND r.category IS DISTINCT FROM ?""",
            [category],
        )
        changed = first_row(con, f"SELECT count(*) FROM {name}_todo")[0]
        con.execute(
            f"""UPDATE records SET category = ?, version = records.version + 1, updated_at = current_timestamp
                        FROM {name}_todo t WHERE records.id = t.id""",
            [category],
        )
        con.execute(
            f"""INSERT INTO revisions (record_id, version, action, before, after, author, note)
                        SELECT id, version + 1, ?, json_object('category', old), json_object('category', ?), ?, ?
                        FROM {name}_todo ORDER BY id""",
            [CATEGORY_ACTION, category, author, f"clustering run {run_id}, cluster {cluster}"],
        )
        con.execute(f"DROP TABLE {name}_todo")
    con.execute(
        "UPDATE clusters SET category = ? WHERE run_id = ? AND cluster = ?", [category, run_id, cluster]
    )
    return changed


def clusterable_ids(
    con: duckdb.DuckDBPyConnection, ids: Sequence[int] | None, include_duplicates: bool
) -> list[int]:
    """The ids to cluster: `ids` (default: every record of a badcases-kind dataset), less records marked
    as duplicates unless `include_duplicates`."""
    dup = "" if include_duplicates else "AND r.dup_of IS NULL"
    if ids is None:
        rows = con.execute(f"""SELECT r.id FROM records r JOIN datasets d ON d.name = r.dataset
                               WHERE d.kind = 'badcases' {dup} ORDER BY r.id""").fetchall()
    else:
        with id_table(con, ids) as name:
            rows = con.execute(
                f"SELECT r.id FROM {name} i JOIN records r ON r.id = i.id WHERE true {dup} ORDER BY r.id"
            ).fetchall()
    return [r[0] for r in rows]


# --- the map and the list, as the Clusters page shows them -------------------------------------------------

_FIRST_USER = "coalesce(list_filter(r.messages, lambda m: m.role = 'user')[1].content, '')"
_ANSWER = "coalesce(list_filter(r.messages, lambda m: m.role = 'assistant')[-1].content, '')"


def map_points(con: duckdb.DuckDBPyConnection, run_id: int, limit: int, chars: int) -> tuple[pa.Table, int]:
    """A run's members for the map, at most about `limit` of them: every cluster keeps its share and at least
    20 points (a fixed hash order, so the same points come back), with the first user turn and the answer
    cut to `chars` characters. Returns (record_id, cluster, x, y, category, question, answer) and the total."""
    total = first_row(con, "SELECT count(*) FROM cluster_members WHERE run_id = ?", [run_id])[0]
    table = arrow(
        con,
        f"""
        WITH picked AS (
            SELECT record_id, cluster, x, y FROM cluster_members WHERE run_id = ?
            QUALIFY ? >= ? OR row_number() OVER (PARTITION BY cluster ORDER BY hash(record_id))
                         <= greatest(20, ceil(count(*) OVER (PARTITION BY cluster) * ? / ?)))
        SELECT p.record_id, p.cluster, p.x, p.y, coalesce(r.category, '') AS category,
               left({_FIRST_USER}, ?) AS question, left({_ANSWER}, ?) AS answer
        FROM picked p JOIN records r ON r.id = p.record_id ORDER BY p.cluster, p.record_id""",
        [run_id, limit, total, limit, max(total, 1), chars, chars],
    )
    return table, total


def category_mix(con: duckdb.DuckDBPyConnection, run_id: int) -> list[tuple[int, str | None, int]]:
    """(cluster, category, records) of a run's members, biggest first within each cluster."""
    return con.execute(
        """SELECT m.cluster, r.category, count(*) FROM cluster_members m JOIN records r ON r.id = m.record_id
                          WHERE m.run_id = ? GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2""",
        [run_id],
    ).fetchall()


def texts_of(con: duckdb.DuckDBPyConnection, ids: Sequence[int], chars: int) -> dict[int, tuple[str, str]]:
    """id -> (first user turn, answer), cut to `chars` characters."""
    rows = con.execute(
        f"SELECT r.id, left({_FIRST_USER}, ?), left({_ANSWER}, ?) FROM records r "
        f"WHERE list_contains(?, r.id)",
        [chars, chars, list(ids)],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def set_cluster_label(
    con: duckdb.DuckDBPyConnection, run_id: int, cluster: int, category: str | None
) -> None:
    """Remember the category a cluster was given (the records' own categories are set by the caller)."""
    con.execute(
        "UPDATE clusters SET category = ? WHERE run_id = ? AND cluster = ?", [category, run_id, cluster]
    )
