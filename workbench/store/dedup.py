"""SQL for deduplication: normalised-text keys, the MinHash cache, duplicate marks (records.dup_of) and their log.

Marks and restores are revisions of the record (actions 'mark-duplicate' and 'restore-duplicate'),
so every decision can be seen and undone; nothing here deletes a record.
"""

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
from .embeddings import TextChoice, arrow, id_table, register, script_sql, text_sql

MARK_ACTION = "mark-duplicate"
RESTORE_ACTION = "restore-duplicate"


# The normalised text: NFKC, lower case, whitespace runs made one space, trimmed. Pure-ASCII text
# (byte length = character length) is already NFKC, so only other text goes through Arrow's NFKC.
# The whitespace regex runs only on texts that need it (a double space, a tab or newline, or an edge).
NORMALISE_MACROS = r"""
CREATE OR REPLACE TEMP MACRO wb_ws(t) AS CASE
    WHEN regexp_matches(t, '\s\s|[\t\n\r\f\v]|^\s|\s$') THEN trim(regexp_replace(t, '\s+', ' ', 'g')) ELSE t END;
CREATE OR REPLACE TEMP MACRO wb_norm(t) AS lower(wb_ws(CASE WHEN strlen(t) = length(t) THEN t ELSE wb_nfkc(t) END));
"""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the normaliser's two macros on `con`: temporary, so each connection has its own and no two
    tabs write the shared catalog. Their wb_nfkc (Arrow's NFKC) comes with every connection (see
    connection.with_functions)."""
    con.execute(NORMALISE_MACROS)


def normalise(con: duckdb.DuckDBPyConnection, texts: Sequence[str]) -> list[str]:
    """The normalised form of each text, exactly as the SQL keys compute it (for tests and previews)."""
    install(con)
    return [
        r[0]
        for r in con.execute(
            "SELECT wb_norm(t) FROM (SELECT unnest(?) AS t, generate_subscripts(?, 1) AS i) ORDER BY i",
            [list(texts), list(texts)],
        ).fetchall()
    ]


@dataclass
class RecordKeys:
    """Columns for a set of records, in the order their ids were given (numpy/list columns)."""

    ids: np.ndarray
    norm_text: list[str]
    norm_hash: list[str]
    script: list[str]
    status: list[str]
    created: np.ndarray  # epoch microseconds, for "newest"
    dup_of: list[int | None]
    version: np.ndarray
    kind: list[str]  # the dataset's kind

    def __len__(self) -> int:
        return len(self.ids)


def record_keys(
    con: duckdb.DuckDBPyConnection, ids: Sequence[int], spec: TextChoice, *, with_text: bool = True
) -> RecordKeys:
    """The normalised text of each record (as `spec` chooses it), its md5 and script."""
    install(con)
    with id_table(con, ids) as name:
        table = arrow(
            con,
            f"""
            SELECT id, n, md5(n) AS h, {script_sql("n")} AS script, status, epoch_us(created_at) AS created,
                   dup_of, version, kind
            FROM (SELECT i.pos, r.id, wb_norm({text_sql(spec, "r")}) AS n, r.status, r.created_at, r.dup_of, r.version,
                         d.kind
                  FROM {name} i JOIN records r ON r.id = i.id LEFT JOIN datasets d ON d.name = r.dataset)
            ORDER BY pos""",
        )
    return RecordKeys(
        ids=table.column("id").to_numpy(),
        norm_text=table.column("n").to_pylist() if with_text else [],
        norm_hash=table.column("h").to_pylist(),
        script=table.column("script").to_pylist(),
        status=table.column("status").to_pylist(),
        created=table.column("created").to_numpy(),
        dup_of=table.column("dup_of").to_pylist(),
        version=table.column("version").to_numpy(),
        kind=table.column("kind").to_pylist(),
    )


def exact_matches(
    con: duckdb.DuckDBPyConnection, train_ids: Sequence[int], eval_ids: Sequence[int], spec: TextChoice
) -> list[tuple[int, int]]:
    """(eval id, train id) pairs whose normalised texts (as `spec` chooses them) are equal; computed in SQL."""
    install(con)
    with id_table(con, eval_ids) as evals, id_table(con, train_ids) as trains:
        return con.execute(f"""
            WITH e AS (SELECT r.id, md5(wb_norm({text_sql(spec, "r")})) AS h FROM {evals} i JOIN records r ON r.id = i.id),
                 t AS (SELECT r.id, md5(wb_norm({text_sql(spec, "r")})) AS h FROM {trains} i JOIN records r ON r.id = i.id)
            SELECT e.id, t.id FROM e JOIN t ON e.h = t.h WHERE e.id <> t.id ORDER BY e.id, t.id""").fetchall()


def without_eval(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> list[int]:
    """`ids` less the records of eval-kind datasets, sorted."""
    with id_table(con, ids) as name:
        rows = con.execute(f"""SELECT r.id FROM {name} i JOIN records r ON r.id = i.id
                               JOIN datasets d ON d.name = r.dataset WHERE d.kind <> 'eval' ORDER BY r.id""").fetchall()
    return [r[0] for r in rows]


# --- the MinHash cache -------------------------------------------------------------------------------

_names = itertools.count()


def cached_signatures(
    con: duckdb.DuckDBPyConnection, scheme: str, norm_hashes: Sequence[str], num_perm: int
) -> dict[str, np.ndarray]:
    """The cached signatures of `norm_hashes` under `scheme`, as {hash: uint32[num_perm]}."""
    name = f"wb_norm_hashes_{next(_names)}"
    register(con, name, pa.table({"h": pa.array(list(dict.fromkeys(norm_hashes)), pa.string())}))
    try:
        table = arrow(
            con,
            f"""SELECT s.norm_hash, s.signature FROM {name} JOIN minhash_signatures s
                                ON s.norm_hash = h AND s.scheme = ?""",
            [scheme],
        )
    finally:
        con.unregister(name)
    if table.num_rows == 0:
        return {}
    values = pa.concat_arrays([c.flatten() for c in table.column(1).chunks]).to_numpy(zero_copy_only=False)
    matrix = values.astype(np.uint32).reshape(table.num_rows, num_perm)
    return dict(zip(table.column(0).to_pylist(), matrix, strict=True))


def store_signatures(
    con: duckdb.DuckDBPyConnection, scheme: str, norm_hashes: Sequence[str], signatures: np.ndarray
) -> None:
    if len(norm_hashes) == 0:
        return
    signatures = np.ascontiguousarray(signatures, dtype=np.uint32)
    name = f"wb_signatures_{next(_names)}"
    register(
        con,
        name,
        pa.table(
            {
                "h": pa.array(list(norm_hashes), pa.string()),
                "s": pa.FixedSizeListArray.from_arrays(pa.array(signatures.ravel()), signatures.shape[1]),
            }
        ),
    )
    try:
        con.execute(
            f"INSERT OR IGNORE INTO minhash_signatures (norm_hash, scheme, signature) "
            f"SELECT DISTINCT ON (h) h, ?, s::UINTEGER[] FROM {name}",
            [scheme],
        )
    finally:
        con.unregister(name)


# --- duplicate marks ---------------------------------------------------------------------------------


def restored_by_hand(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> set[int]:
    """Records a person restored after a dedup run: later runs leave them unmarked."""
    with id_table(con, ids) as name:
        rows = con.execute(
            f"""SELECT DISTINCT v.record_id FROM revisions v JOIN {name} i ON i.id = v.record_id
                               WHERE v.action = ? AND coalesce(v.note, '') NOT LIKE 'dedup run %'""",
            [RESTORE_ACTION],
        ).fetchall()
    return {r[0] for r in rows}


def apply_marks(
    con: duckdb.DuckDBPyConnection, marks: Sequence[tuple[int, int | None, int]], author: str, note: str
) -> tuple[int, int, int]:
    """Set dup_of for each (record id, kept id or None, expected version), as revisions.

    Records whose version moved on since it was read are skipped (someone edited them meanwhile).
    Returns (marked, restored, skipped). Call inside a transaction.
    """
    if not marks:
        return 0, 0, 0
    name = f"wb_marks_{next(_names)}"
    table = pa.table(
        {
            "id": pa.array([m[0] for m in marks], pa.int64()),
            "new_dup": pa.array([m[1] for m in marks], pa.int64()),
            "expected": pa.array([m[2] for m in marks], pa.int32()),
        }
    )
    register(con, name, table)
    try:
        con.execute(f"""CREATE TEMP TABLE {name}_todo AS
            SELECT m.id, m.new_dup, r.dup_of AS old_dup, r.version FROM {name} m JOIN records r ON r.id = m.id
            WHERE r.version = m.expected AND r.dup_of IS DISTINCT FROM m.new_dup""")
        skipped = first_row(
            con,
            f"""SELECT count(*) FROM {name} m JOIN records r ON r.id = m.id
                                WHERE r.version <> m.expected""",
        )[0]
        counts = first_row(
            con,
            f"""SELECT count(*) FILTER (WHERE new_dup IS NOT NULL),
                                        count(*) FILTER (WHERE new_dup IS NULL) FROM {name}_todo""",
        )
        con.execute(f"""UPDATE records SET dup_of = t.new_dup, version = records.version + 1,
                               updated_at = current_timestamp
                        FROM {name}_todo t WHERE records.id = t.id""")
        con.execute(
            f"""INSERT INTO revisions (record_id, version, action, before, after, author, note)
            SELECT id, version + 1, CASE WHEN new_dup IS NULL THEN ? ELSE ? END,
                   json_object('dup_of', old_dup), json_object('dup_of', new_dup), ?, ?
            FROM {name}_todo ORDER BY id""",
            [RESTORE_ACTION, MARK_ACTION, author, note],
        )
        con.execute(f"DROP TABLE {name}_todo")
    finally:
        con.unregister(name)
    return counts[0], counts[1], skipped


def restore(con: duckdb.DuckDBPyConnection, record_id: int, author: str, note: str | None = None) -> bool:
    """Clear one record's duplicate mark (a revision); False if it was not marked. Call inside a transaction."""
    row = first_row(con, "SELECT dup_of, version FROM records WHERE id = ?", [record_id])
    if row is None:
        raise NotFoundError(f"there is no record {record_id}")
    if row[0] is None:
        return False
    apply_marks(con, [(record_id, None, row[1])], author, note or "restored by hand")
    return True


def restore_run(con: duckdb.DuckDBPyConnection, run_id: int, author: str) -> int:
    """Clear every mark a dedup run set (and that is still in place); returns how many were cleared."""
    if not first_row(con, "SELECT count(*) FROM dedup_runs WHERE id = ?", [run_id])[0]:
        raise NotFoundError(f"there is no dedup run {run_id}; `workbench dedup --runs` lists them")
    rows = con.execute(
        """
        SELECT r.id, r.version FROM records r JOIN revisions v ON v.record_id = r.id
        WHERE v.action = ? AND v.note = ? AND r.dup_of IS NOT NULL
          AND r.dup_of = json_extract(v.after, '$.dup_of')::BIGINT""",
        [MARK_ACTION, run_note(run_id)],
    ).fetchall()
    return apply_marks(
        con, [(r[0], None, r[1]) for r in dict(rows).items()], author, f"dedup run {run_id} undone"
    )[1]


def run_note(run_id: int) -> str:
    return f"dedup run {run_id}"


def dup_of(con: duckdb.DuckDBPyConnection, record_id: int) -> int | None:
    row = first_row(con, "SELECT dup_of FROM records WHERE id = ?", [record_id])
    if row is None:
        raise NotFoundError(f"there is no record {record_id}")
    return row[0]


# --- runs --------------------------------------------------------------------------------------------


def new_run_id(con: duckdb.DuckDBPyConnection) -> int:
    return first_row(con, "SELECT nextval('seq_dedup_runs')")[0]


def record_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    *,
    author: str,
    selection: dict,
    config: dict,
    records: int,
    groups: int,
    marked: int,
    restored: int,
    skipped: int,
    seconds: float,
    matches: Sequence[tuple[int, int, str, float]],
) -> None:
    con.execute(
        """INSERT INTO dedup_runs (id, author, selection, config, records, groups, marked, restored, skipped,
                                           seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            run_id,
            author,
            json.dumps(selection, default=str),
            json.dumps(config),
            records,
            groups,
            marked,
            restored,
            skipped,
            seconds,
        ],
    )
    if matches:
        name = f"wb_matches_{next(_names)}"
        register(
            con,
            name,
            pa.table(
                {
                    "a": pa.array([m[0] for m in matches], pa.int64()),
                    "b": pa.array([m[1] for m in matches], pa.int64()),
                    "kind": pa.array([m[2] for m in matches], pa.string()),
                    "score": pa.array([m[3] for m in matches], pa.float64()),
                }
            ),
        )
        try:
            con.execute(f"INSERT INTO dedup_matches SELECT ?, a, b, kind, score FROM {name}", [run_id])
        finally:
            con.unregister(name)


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[tuple]:
    return con.execute(
        """SELECT id, created_at, author, records, groups, marked, restored, skipped, seconds
                          FROM dedup_runs ORDER BY id DESC LIMIT ?""",
        [limit],
    ).fetchall()


# --- duplicate groups, as a page shows them --------------------------------------------------------------


def group_count(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(groups, copies): records kept with copies, and the copies marked."""
    return first_row(con, "SELECT count(DISTINCT dup_of), count(*) FROM records WHERE dup_of IS NOT NULL")


def groups_page(con: duckdb.DuckDBPyConnection, limit: int) -> list[tuple[int, list[int]]]:
    """(kept id, copy ids) of the biggest groups first."""
    return con.execute(
        """SELECT dup_of, list(id ORDER BY id) FROM records WHERE dup_of IS NOT NULL
                          GROUP BY dup_of ORDER BY count(*) DESC, dup_of LIMIT ?""",
        [limit],
    ).fetchall()


def group_of(con: duckdb.DuckDBPyConnection, kept_id: int) -> list[tuple[int, int | None, int]]:
    """(id, dup_of, version) of a kept record and its copies."""
    return con.execute(
        "SELECT id, dup_of, version FROM records WHERE id = ? OR dup_of = ? ORDER BY id", [kept_id, kept_id]
    ).fetchall()


def latest_matches(
    con: duckdb.DuckDBPyConnection, ids: Sequence[int]
) -> dict[tuple[int, int], tuple[str, float]]:
    """(a, b) -> (kind, score) of the newest dedup run's matches among `ids` (both orders of a pair)."""
    rows = con.execute(
        """SELECT record_id, other_id, kind, score FROM dedup_matches
                          WHERE run_id = (SELECT max(id) FROM dedup_runs)
                            AND list_contains(?, record_id) AND list_contains(?, other_id)""",
        [list(ids), list(ids)],
    ).fetchall()
    out = {}
    for a, b, kind, score in rows:
        out[(a, b)] = out[(b, a)] = (kind, score)
    return out


def shown_records(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, tuple]:
    """id -> (dataset, category, status, messages as (role, content) pairs) for showing records side by side."""
    rows = con.execute(
        """SELECT id, dataset, category, status, [(m.role, m.content) for m in messages] FROM records
                          WHERE list_contains(?, id)""",
        [list(ids)],
    ).fetchall()
    return {r[0]: r[1:] for r in rows}
