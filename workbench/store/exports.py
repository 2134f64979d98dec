"""SQL for exports: the candidate pool with its exclusions, ranked sampling, the stratified split, the output lines.

Everything heavy happens here, inside DuckDB: a million records are pooled, judged, ranked, split
and turned into JSON lines without a Python loop. Sampling is a hash of seed and record id, so the
same store and config give the same rows on every run and every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

POOL = "wb_export_pool"
ROWS = "wb_export_rows"
QUOTA = "wb_export_quota"
EVAL = "wb_export_eval"

# The exclusion reasons, in the order they are judged (a record gets the first that applies).
REASONS = {
    "error-issues": "has error-level issues (fix them on the records, then export again)",
    "duplicate": "a duplicate that dedup did not keep",
    "eval-leak": "the same as, or too close to, an eval record (leakage guard)",
    "repeated": "the same content as another record in this export (one copy kept)",
}

# The built-in leakage guard compares a record's messages (content_hash) and its last user turn (the
# question an eval record's answer is graded on) with every eval record's, as exact text: a million
# records take well under a second that way, where normalising their text (case, spaces,
# punctuation) would take most of the export's time budget. Variants are dedup.find_leaks' job (lexical
# and semantic), which the export calls with the default leakage guard ('auto'). The first 24
# characters of the first user turn, lower-cased, group near-copies.
_MACROS = r"""
CREATE OR REPLACE TEMP MACRO wb_last_user(ms) AS CASE
    WHEN ms[-2].role = 'user' THEN ms[-2].content WHEN ms[-1].role = 'user' THEN ms[-1].content
    ELSE list_filter(ms, lambda m: m.role = 'user')[-1].content END;
CREATE OR REPLACE TEMP MACRO wb_first_user(ms) AS CASE
    WHEN ms[1].role = 'user' THEN ms[1].content WHEN ms[2].role = 'user' THEN ms[2].content
    ELSE list_filter(ms, lambda m: m.role = 'user')[1].content END;
-- A bijective 31-bit integer mixer (xor-shift-multiply, as in murmur's finaliser): a stable, fast
-- pseudo-random order from (salt, id) that does not depend on the DuckDB version.
CREATE OR REPLACE TEMP MACRO wb_mix1(x) AS (xor(x, x >> 16) * 73244475) & 2147483647;
CREATE OR REPLACE TEMP MACRO wb_mix(x) AS xor(wb_mix1(wb_mix1(x & 2147483647)), wb_mix1(wb_mix1(x & 2147483647)) >> 16);
"""
GROUP_PREFIX = 24


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_MACROS)


def salt(seed: int, purpose: str) -> int:
    """A 31-bit salt for one use of the seed (picking, the val split, the line order)."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def dataset_kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT name, kind FROM datasets ORDER BY name").fetchall())


# A record's cluster is the one its latest clustering run put it in ('<run>:<cluster>'); HDBSCAN's noise
# (cluster -1) is no group, and a record no run clustered has none: both fall back to the text group.
_CLUSTERS = """(SELECT record_id, CASE WHEN c >= 0 THEN r || ':' || c END AS cluster
               FROM (SELECT record_id, max(run_id) AS r, arg_max(cluster, run_id) AS c FROM cluster_members
                     GROUP BY record_id))"""


@dataclass(frozen=True)
class PoolSpec:
    """Which records are candidates: task records by dataset/status/category, general records, eval records."""

    task_datasets: tuple[str, ...]
    general_datasets: tuple[str, ...]
    eval_datasets: tuple[str, ...]
    statuses: tuple[str, ...]
    general_statuses: tuple[str, ...]
    categories: tuple[str, ...] | None
    group_task: bool = True  # work out near-copy groups of task records (only balancing ranks them)

    def task_filter(self, alias: str = "r") -> tuple[str, list]:
        sql = f"list_contains(?, {alias}.dataset) AND list_contains(?, {alias}.status)"
        params: list = [list(self.task_datasets), list(self.statuses)]
        if self.categories is not None:
            sql += f" AND list_contains(?, {alias}.category)"
            params.append(list(self.categories))
        return sql, params


def stage_pool(con: duckdb.DuckDBPyConnection, spec: PoolSpec) -> None:
    """Create the temp tables EVAL (the eval records' keys) and POOL (every candidate with its exclusion reason).

    POOL: id, pool ('task'|'general'), category, task_type, status, content_hash, user_hash, grp (the near-copy
    group: a stored cluster, else the start of the first user turn), reason, detail.
    A record gets the first reason that applies, in the order of REASONS.
    """
    install_macros(con)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {EVAL} AS
        SELECT id, content_hash, last_user, hash(last_user) AS user_hash
        FROM (SELECT id, content_hash, wb_last_user(messages) AS last_user FROM records WHERE list_contains(?, dataset))
        """,
        [list(spec.eval_datasets)],
    )
    task_sql, task_params = spec.task_filter()
    has_eval = con.execute(f"SELECT count(*) > 0 FROM {EVAL}").fetchall()[0][0]
    user_hash = "hash(wb_last_user(r.messages))" if has_eval else "NULL::UBIGINT"
    # general data is always sampled; badcases only when the config balances them
    group_test = "true" if spec.group_task else "NOT list_contains(?, r.dataset)"
    group_params = [] if spec.group_task else [list(spec.task_datasets)]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {POOL} AS
        WITH errs AS (
            SELECT record_id, string_agg(DISTINCT code, ', ' ORDER BY code) AS codes
            FROM record_issues WHERE severity = 'error' GROUP BY record_id
        ), eval_hash AS (
            SELECT content_hash, min(id) AS eval_id FROM {EVAL} GROUP BY content_hash
        )
        SELECT r.id, CASE WHEN list_contains(?, r.dataset) THEN 'task' ELSE 'general' END AS pool,
               r.category, r.task_type, r.status, r.content_hash,
               {user_hash} AS user_hash,
               CASE WHEN {group_test} THEN
                   coalesce('c:' || c.cluster, 'u:' || lower(left(wb_first_user(r.messages), {GROUP_PREFIX}))) END AS grp,
               CASE WHEN e.codes IS NOT NULL THEN 'error-issues'
                    WHEN r.dup_of IS NOT NULL THEN 'duplicate'
                    WHEN eh.eval_id IS NOT NULL THEN 'eval-leak' END AS reason,
               CASE WHEN e.codes IS NOT NULL THEN e.codes
                    WHEN r.dup_of IS NOT NULL THEN 'duplicate of record ' || r.dup_of
                    WHEN eh.eval_id IS NOT NULL THEN 'exact: the same messages as eval record ' || eh.eval_id
               END AS detail
        FROM records r
        LEFT JOIN errs e ON e.record_id = r.id
        LEFT JOIN eval_hash eh ON eh.content_hash = r.content_hash
        LEFT JOIN {_CLUSTERS} c ON c.record_id = r.id
        WHERE ({task_sql}) OR (list_contains(?, r.dataset) AND list_contains(?, r.status))
    """,
        [
            list(spec.task_datasets),
            *group_params,
            *task_params,
            list(spec.general_datasets),
            list(spec.general_statuses),
        ],
    )
    # the same last user turn as an eval record (the same question, whatever the answer): hashes first,
    # then the text of the few that match
    con.execute(f"""UPDATE {POOL} SET reason = 'eval-leak',
            detail = 'exact: the same last user turn as eval record ' || hits.eval_id
        FROM (
            SELECT p.id, min(e.id) AS eval_id
            FROM {POOL} p JOIN {EVAL} e ON e.user_hash = p.user_hash AND e.last_user <> ''
            JOIN records r ON r.id = p.id
            WHERE p.reason IS NULL AND wb_last_user(r.messages) = e.last_user
            GROUP BY p.id
        ) hits
        WHERE {POOL}.id = hits.id""")
    # one copy of each content among the rest: badcases before general data, fixed first, then the lowest id
    con.execute(f"""UPDATE {POOL} SET reason = 'repeated', detail = 'the same messages as record ' || kept.keep_id
        FROM (
            SELECT content_hash, arg_min(id, ((pool = 'general')::BIGINT << 62) + ((status <> 'fixed')::BIGINT << 61) + id)
                       AS keep_id
            FROM {POOL} WHERE reason IS NULL GROUP BY content_hash HAVING count(*) > 1
        ) kept
        WHERE {POOL}.content_hash = kept.content_hash AND {POOL}.reason IS NULL AND {POOL}.id <> kept.keep_id""")


def available_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, int, int]]:
    """(pool, category, records that may be exported, of them 'fixed'), by pool and category."""
    return con.execute(f"""SELECT pool, category, count(*), count(*) FILTER (WHERE status = 'fixed')
        FROM {POOL} WHERE reason IS NULL GROUP BY pool, category ORDER BY pool, category NULLS FIRST""").fetchall()


def pool_categories(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None]]:
    """(pool, category) of every candidate before exclusions, so a category that they empty is still reported."""
    return con.execute(
        f"SELECT DISTINCT pool, category FROM {POOL} ORDER BY pool, category NULLS FIRST"
    ).fetchall()


_REASON_ORDER = "CASE reason " + " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(REASONS)) + " END"


def exclusion_counts(con: duckdb.DuckDBPyConnection, pool: str | None = None) -> dict[str, int]:
    """reason -> candidates left out for it (of one pool, or both), in the order of REASONS."""
    rows = con.execute(
        f"""SELECT reason, count(*) FROM {POOL} WHERE reason IS NOT NULL AND (? IS NULL OR pool = ?)
        GROUP BY reason ORDER BY {_REASON_ORDER}""",
        [pool, pool],
    ).fetchall()
    return dict(rows)


def reasons_of(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """id -> (reason, detail) for those of `ids` the pool leaves out, 'not-a-candidate' for those it does not
    hold (another status or dataset); a candidate it keeps is absent."""
    return {
        i: (reason, detail)
        for i, reason, detail in con.execute(
            f"""SELECT i.id, coalesce(p.reason, 'not-a-candidate'),
                       coalesce(p.detail, 'not of a status or dataset the export takes')
                FROM (SELECT unnest(?::BIGINT[]) AS id) i LEFT JOIN {POOL} p ON p.id = i.id
                WHERE p.id IS NULL OR p.reason IS NOT NULL ORDER BY i.id""",
            [list(ids)],
        ).fetchall()
    }


def exclusion_counts_by_category(
    con: duckdb.DuckDBPyConnection, reason: str
) -> list[tuple[str, str | None, int]]:
    """(pool, category, candidates left out for `reason`)."""
    return con.execute(
        f"""SELECT pool, category, count(*) FROM {POOL} WHERE reason = ?
        GROUP BY pool, category ORDER BY pool, category NULLS FIRST""",
        [reason],
    ).fetchall()


def exclusions(
    con: duckdb.DuckDBPyConnection, per_reason: int | None = None
) -> list[tuple[int, str, str | None, str, str | None]]:
    """(id, pool, category, reason, detail) of candidates left out, by reason then id (the first `per_reason` of each)."""
    limit = (
        ""
        if per_reason is None
        else f"QUALIFY row_number() OVER (PARTITION BY reason ORDER BY id) <= {int(per_reason)}"
    )
    return con.execute(f"""SELECT id, pool, category, reason, detail FROM {POOL} WHERE reason IS NOT NULL {limit}
        ORDER BY {_REASON_ORDER}, id""").fetchall()


def exclusion_lines(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """excluded.jsonl's lines: every candidate left out, by reason then id."""
    return con.sql(f"""SELECT to_json({{'id': id, 'pool': pool, 'category': category, 'reason': reason,
                                        'detail': detail}}) AS line
        FROM {POOL} WHERE reason IS NOT NULL ORDER BY {_REASON_ORDER}, id""").to_arrow_table()


def unselected_statuses(con: duckdb.DuckDBPyConnection, spec: PoolSpec) -> list[tuple[str, int]]:
    """(status, records) of the task datasets' records the status filter left out (not exported, not an exclusion)."""
    category_sql = "AND list_contains(?, category)" if spec.categories is not None else ""
    params = [list(spec.task_datasets), list(spec.statuses)] + (
        [list(spec.categories)] if spec.categories is not None else []
    )
    return con.execute(
        f"""SELECT status, count(*) FROM records
        WHERE list_contains(?, dataset) AND NOT list_contains(?, status) {category_sql}
        GROUP BY status ORDER BY status""",
        params,
    ).fetchall()


def exclude(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[int, str, str]]) -> None:
    """Mark (id, reason, detail) rows of the pool as excluded (e.g. leaks found after sampling)."""
    if not rows:
        return
    table = pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "reason": pa.array([r[1] for r in rows], pa.string()),
            "detail": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    con.register("wb_export_excluded", table)
    try:
        con.execute(f"""UPDATE {POOL} SET reason = x.reason, detail = x.detail FROM wb_export_excluded x
                        WHERE {POOL}.id = x.id AND {POOL}.reason IS NULL""")
    finally:
        con.unregister("wb_export_excluded")


@dataclass(frozen=True)
class Quota:
    """How many records of one (pool, category) to take: unique records, of them for val, and train lines."""

    pool: str
    category: str | None
    available: int
    take: int
    val: int
    train_rows: int

    @property
    def ranked(self) -> bool:
        """Whether the order of records matters: some are left out (down-sampling) or repeated (up-sampling)."""
        return self.take < self.available or self.repeats

    @property
    def repeats(self) -> bool:
        return self.train_rows > self.take - self.val


PICKED = "wb_export_picked"


def select_rows(con: duckdb.DuckDBPyConnection, quotas: Sequence[Quota], seed: int) -> None:
    """Create ROWS (id, pool, category, split, copy, content_hash, order_key): the sampled, split, repeated set.

    Within a (pool, category) records are taken in rank order: one record of each near-copy group (a
    stored cluster, else the same start of the first user turn) before a second of any, 'fixed'
    records first within each round, then a seeded hash of the id. Val records are a seeded hash
    sample of the taken ones; train records repeat, in rank order, to fill `train_rows`. Ranks are
    only worked out where they matter (a category that is cut or repeated): window functions over a
    million rows are the slowest part of an export.
    """
    install_macros(con)
    table = pa.table(
        {
            "qid": pa.array(range(len(quotas)), pa.int32()),
            "pool": pa.array([q.pool for q in quotas], pa.string()),
            "category": pa.array([q.category for q in quotas], pa.string()),
            "take": pa.array([q.take for q in quotas], pa.int64()),
            "val": pa.array([q.val for q in quotas], pa.int64()),
            "train_rows": pa.array([q.train_rows for q in quotas], pa.int64()),
            "ranked": pa.array([q.ranked for q in quotas], pa.bool_()),
            "repeats": pa.array([q.repeats for q in quotas], pa.bool_()),
        }
    )
    con.register(QUOTA, table)
    try:
        # Partitions are keyed by the quota's index (qid), an integer: sorting on it is much cheaper than
        # on (pool, category) strings.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {PICKED} AS
            WITH avail AS (
                SELECT p.id, q.qid, p.content_hash, p.grp, q.take, q.ranked,
                       ((p.status <> 'fixed')::BIGINT << 31) + wb_mix(p.id + ?) AS pick
                FROM {POOL} p JOIN {QUOTA} q ON q.pool = p.pool AND q.category IS NOT DISTINCT FROM p.category
                WHERE p.reason IS NULL AND q.take > 0
            ), grouped AS (
                SELECT *, row_number() OVER (PARTITION BY qid, grp ORDER BY pick, id) AS round
                FROM avail WHERE ranked
            )
            SELECT id, qid, content_hash, row_number() OVER (PARTITION BY qid ORDER BY round, pick, id) AS rnk
            FROM grouped QUALIFY rnk <= take
            UNION ALL
            SELECT id, qid, content_hash, NULL AS rnk FROM avail WHERE NOT ranked
        """,
            [salt(seed, "pick")],
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ROWS} AS
            WITH split AS (
                SELECT x.*, q.train_rows, q.repeats,
                       row_number() OVER (PARTITION BY x.qid ORDER BY wb_mix(x.id + ?), x.id) <= q.val AS is_val
                FROM {PICKED} x JOIN {QUOTA} q ON q.qid = x.qid
            ), lines AS (
                SELECT id, qid, content_hash, is_val, 1 AS copy FROM split WHERE is_val OR NOT repeats
                UNION ALL
                SELECT id, qid, content_hash, false, unnest(range(1, n + 1)) AS copy
                FROM (SELECT *, train_rows // k + (trank <= train_rows % k)::INTEGER AS n
                      FROM (SELECT *, row_number() OVER (PARTITION BY qid ORDER BY rnk) AS trank,
                                   count(*) OVER (PARTITION BY qid) AS k
                            FROM split WHERE NOT is_val AND repeats))
            )
            SELECT l.id, q.pool, q.category, CASE WHEN l.is_val THEN 'val' ELSE 'train' END AS split, l.copy,
                   l.content_hash, wb_mix(wb_mix(l.id + ?) + l.copy * 40503) AS order_key
            FROM lines l JOIN {QUOTA} q ON q.qid = l.qid
        """,
            [salt(seed, "val"), salt(seed, "order")],
        )
        con.execute(f"DROP TABLE {PICKED}")
    finally:
        con.unregister(QUOTA)


def selected_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute(f"SELECT DISTINCT id FROM {ROWS} ORDER BY id").fetchall()]


def eval_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute(f"SELECT id FROM {EVAL} ORDER BY id").fetchall()]


def task_types(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """category -> the task types of its exported records (categories without any left out)."""
    rows = con.execute(f"""SELECT p.category, list(DISTINCT p.task_type ORDER BY p.task_type)
        FROM {POOL} p WHERE p.task_type IS NOT NULL AND p.category IS NOT NULL AND p.id IN (SELECT id FROM {ROWS})
        GROUP BY p.category ORDER BY p.category""").fetchall()
    return {category: list(types) for category, types in rows}


# --- the output lines ---------------------------------------------------------------------------------

WEIGHTS = ("ark", "stored", "openai", "none")

# The weight field of a message per `weights` mode: (struct entry, the key it is written under).
_WEIGHT_FIELDS = {
    "ark": (
        "'loss_weight': coalesce(m.loss_weight, CASE WHEN m.role = 'assistant' THEN 1.0 ELSE 0.0 END)",
        None,
    ),
    "stored": ("'loss_weight': m.loss_weight", "loss_weight"),
    # OpenAI's fine-tuning `weight` is 0 or 1 and only on assistant messages.
    "openai": (
        "'weight': CASE WHEN m.role = 'assistant' THEN (coalesce(m.loss_weight, 1.0) > 0)::INTEGER END",
        "weight",
    ),
    "none": (None, None),
}


def line_sql(weights: str) -> str:
    """One messages-format JSON line per row of `r` (records) joined with `x` (ROWS), with a stable key order.

    DuckDB's to_json writes each line in one go. Most records are plain chats (no tools, no names, no
    tool calls) and take the short road; the others are written with every field and the keys that
    came out null are cut. The cut patterns include the key that follows, which only our own message
    objects have there, so no text inside a value can match them (quotes in strings are escaped, and
    tool calls and tools are JSON of their own). Both roads give the same bytes for a plain chat.
    """
    if weights not in _WEIGHT_FIELDS:
        raise ValueError(f"unknown weights mode {weights!r}")
    weight_entry, nullable_weight = _WEIGHT_FIELDS[weights]
    source = "CASE x.pool WHEN 'task' THEN 'badcase' ELSE 'general' END"

    def record(message_fields: list[str | None], tools: bool) -> str:
        message = "{" + ", ".join(f for f in message_fields if f) + "}"
        return (
            f"to_json({{'messages': list_transform(r.messages, lambda m: {message}),"
            + (" 'tools': r.tools," if tools else "")
            + f" 'id': r.id, 'category': r.category, 'source': {source}}})"
        )

    plain = record(["'role': m.role", "'content': m.content", weight_entry], tools=False)
    full = record(
        [
            "'role': m.role",
            "'content': m.content",
            weight_entry,
            "'name': m.name",
            "'tool_calls': m.tool_calls",
        ],
        tools=True,
    )
    plain_cuts = [(f',"{nullable_weight}":null}}', "}")] if nullable_weight else []
    full_cuts = ([(f',"{nullable_weight}":null,"name":', ',"name":')] if nullable_weight else []) + [
        (',"name":null,"tool_calls":null}', "}"),
        (',"name":null,"tool_calls":', ',"tool_calls":'),
        (',"tool_calls":null}', "}"),
        (',"tools":null,"id":', ',"id":'),
    ]
    for old, new in plain_cuts:
        plain = f"replace({plain}, '{old}', '{new}')"
    for old, new in full_cuts:
        full = f"replace({full}, '{old}', '{new}')"
    is_plain = (
        "r.tools IS NULL AND NOT list_bool_or(list_transform(r.messages, "
        "lambda m: m.name IS NOT NULL OR m.tool_calls IS NOT NULL))"
    )
    return f"CASE WHEN {is_plain} THEN {plain} ELSE {full} END"


def output_lines(con: duckdb.DuckDBPyConnection, split: str, weights: str) -> pa.Table:
    """The split's lines in file order, with their record ids and content hashes."""
    return con.sql(
        f"""SELECT {line_sql(weights)} AS line, x.id, x.content_hash
        FROM {ROWS} x JOIN records r ON r.id = x.id WHERE x.split = ?
        ORDER BY x.order_key, x.id, x.copy""",
        params=[split],
    ).to_arrow_table()


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for table in (POOL, ROWS, EVAL):
        con.execute(f"DROP TABLE IF EXISTS {table}")


# --- the export log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    hash: str
    name: str
    folder: str
    format: str
    config: dict[str, Any]
    counts: dict[str, Any]
    train_records: int
    val_records: int
    general_share: float | None
    created_at: Any


def record_export(
    con: duckdb.DuckDBPyConnection,
    *,
    hash: str,
    name: str,
    folder: str,
    format: str,
    config: dict,
    counts: dict,
    train_records: int,
    val_records: int,
    general_share: float | None,
) -> None:
    con.execute(
        """INSERT OR REPLACE INTO exports (hash, name, folder, format, config, counts, train_records,
                       val_records, general_share, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp)""",
        [
            hash,
            name,
            folder,
            format,
            json.dumps(config, ensure_ascii=False, sort_keys=True),
            json.dumps(counts, ensure_ascii=False, sort_keys=True),
            train_records,
            val_records,
            general_share,
        ],
    )


_EXPORT_COLUMNS = (
    "hash, name, folder, format, config, counts, train_records, val_records, general_share, created_at"
)


def _export_row(row: tuple) -> ExportRow:
    return ExportRow(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), *row[6:])


def list_exports(con: duckdb.DuckDBPyConnection, limit: int = 50) -> list[ExportRow]:
    rows = con.execute(
        f"SELECT {_EXPORT_COLUMNS} FROM exports ORDER BY created_at DESC, name LIMIT ?", [limit]
    )
    return [_export_row(r) for r in rows.fetchall()]
