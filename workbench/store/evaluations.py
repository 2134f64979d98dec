"""SQL for evaluations: record one, freeze its set of records, write results in chunks, read reports,
person's verdicts, the pairs two evaluations share (with each record's cluster), failures sent to badcases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ..errors import NotFoundError, WorkbenchError
from .connection import columns_select, first_row, scalar

HUMAN_VERDICTS = ("better", "same", "worse", "both_bad")
COLUMNS = (
    "id",
    "status",
    "model",
    "run_id",
    "base_model",
    "eval_set",
    "source",
    "system_prompt",
    "examples",
    "config",
    "records",
    "pid",
    "seconds",
    "error",
    "author",
    "created_at",
    "finished_at",
)
_UPDATABLE = {"status", "pid", "seconds", "error", "finished_at", "config"}

# A pending (generative) answer counts once a person has judged it: as good as the reference or better is right.
EFFECTIVE_VERDICT = """CASE WHEN verdict = 'pending' AND human_verdict IN ('better', 'same') THEN 'right'
                            WHEN verdict = 'pending' AND human_verdict IN ('worse', 'both_bad') THEN 'wrong'
                            ELSE verdict END"""


@dataclass
class EvaluationRow:
    id: int
    status: str
    model: str
    run_id: int | None
    base_model: str
    eval_set: str
    source: str | None
    system_prompt: str | None
    examples: int | None
    config: dict
    records: int
    pid: int | None
    seconds: float | None
    error: str | None
    author: str | None
    created_at: Any
    finished_at: Any

    def as_dict(self) -> dict:
        return {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in self.__dict__.items()}


@dataclass
class ResultRow:
    """One record's result in an evaluation."""

    seq: int
    record_key: str
    record_id: int | None
    category: str | None
    messages: list[dict]
    tools: Any
    reference: str | None
    output: str | None
    verdict: str | None
    contract_ok: bool | None
    exact_match: bool | None
    reason: str | None
    similarity: float | None
    loss: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    latency_s: float | None
    human_verdict: str | None
    badcase_id: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


_RESULT_COLUMNS = (
    "seq",
    "record_key",
    "record_id",
    "category",
    "messages",
    "tools",
    "reference",
    "output",
    "verdict",
    "contract_ok",
    "exact_match",
    "reason",
    "similarity",
    "loss",
    "prompt_tokens",
    "output_tokens",
    "latency_s",
    "human_verdict",
    "badcase_id",
)


def _evaluation(values: tuple) -> EvaluationRow:
    data = dict(zip(COLUMNS, values, strict=True))
    if isinstance(data["config"], str):
        data["config"] = json.loads(data["config"])
    return EvaluationRow(**data)


def _result(values: tuple) -> ResultRow:
    data = dict(zip(_RESULT_COLUMNS, values, strict=True))
    data["messages"] = json.loads(data["messages"])
    if isinstance(data["tools"], str):
        data["tools"] = json.loads(data["tools"])
    return ResultRow(**data)


def insert_evaluation(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str,
    run_id: int | None,
    base_model: str,
    eval_set: str,
    source: str | None,
    system_prompt: str | None,
    examples: int | None,
    config: dict,
    items: Sequence[dict],
    pid: int | None,
    author: str | None,
) -> int:
    """Record a running evaluation and its frozen set of records (dicts with record_key, record_id, category,
    messages, tools, reference), in the order they are numbered (seq 0, 1, ...). Call inside a transaction."""
    evaluation_id = scalar(con, "SELECT nextval('seq_evaluations')")
    con.execute(
        "INSERT INTO evaluations (id, status, model, run_id, base_model, eval_set, source, system_prompt, examples, "
        "config, records, pid, author) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            evaluation_id,
            model,
            run_id,
            base_model,
            eval_set,
            source,
            system_prompt,
            examples,
            json.dumps(config, ensure_ascii=False),
            len(items),
            pid,
            author,
        ],
    )
    if items:
        types = {
            "seq": "INTEGER",
            "record_key": "VARCHAR",
            "record_id": "BIGINT",
            "category": "VARCHAR",
            "messages": "VARCHAR",
            "tools": "VARCHAR",
            "reference": "VARCHAR",
        }
        columns = [
            list(range(len(items))),
            [i["record_key"] for i in items],
            [i.get("record_id") for i in items],
            [i.get("category") for i in items],
            [json.dumps(i["messages"], ensure_ascii=False) for i in items],
            [None if i.get("tools") is None else json.dumps(i["tools"], ensure_ascii=False) for i in items],
            [i.get("reference") for i in items],
        ]
        con.execute(
            f"""INSERT INTO evaluation_results (evaluation_id, seq, record_key, record_id, category, messages,
                        tools, reference) SELECT ?, * FROM ({columns_select(types)})""",
            [evaluation_id, *columns],
        )
    return evaluation_id


def update_evaluation(con: duckdb.DuckDBPyConnection, evaluation_id: int, **changes: Any) -> None:
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"evaluations has no updatable column(s) {sorted(unknown)}")
    if changes:
        values = [json.dumps(v, ensure_ascii=False) if k == "config" else v for k, v in changes.items()]
        con.execute(
            f"UPDATE evaluations SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
            [*values, evaluation_id],
        )


def get_evaluation(con: duckdb.DuckDBPyConnection, evaluation_id: int) -> EvaluationRow:
    row = first_row(con, f"SELECT {', '.join(COLUMNS)} FROM evaluations WHERE id = ?", [evaluation_id])
    if row is None:
        raise NotFoundError(f"there is no evaluation {evaluation_id}; `workbench evaluations` lists them")
    return _evaluation(row)


def list_evaluations(con: duckdb.DuckDBPyConnection, limit: int | None = None) -> list[EvaluationRow]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM evaluations ORDER BY id DESC" + (
        f" LIMIT {int(limit)}" if limit else ""
    )
    return [_evaluation(r) for r in con.execute(sql).fetchall()]


def general_datasets(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The names of the datasets of kind 'general' (the general set an evaluation measures forgetting on)."""
    return [
        r[0] for r in con.execute("SELECT name FROM datasets WHERE kind = 'general' ORDER BY name").fetchall()
    ]


def unfinished_items(con: duckdb.DuckDBPyConnection, evaluation_id: int) -> list[ResultRow]:
    """The records of the set that have no output yet, in order (all of them when it has just started)."""
    rows = con.execute(
        f"SELECT {', '.join(_RESULT_COLUMNS)} FROM evaluation_results WHERE evaluation_id = ? "
        f"AND output IS NULL ORDER BY seq",
        [evaluation_id],
    ).fetchall()
    return [_result(r) for r in rows]


def save_results(con: duckdb.DuckDBPyConnection, evaluation_id: int, rows: Sequence[dict]) -> None:
    """Fill in the results of some records (dicts with seq, output, verdict, contract_ok, exact_match, reason,
    similarity, loss, prompt_tokens, output_tokens, latency_s) in one statement."""
    if not rows:
        return
    types = {
        "seq": "INTEGER",
        "output": "VARCHAR",
        "verdict": "VARCHAR",
        "contract_ok": "BOOLEAN",
        "exact_match": "BOOLEAN",
        "reason": "VARCHAR",
        "similarity": "DOUBLE",
        "loss": "DOUBLE",
        "prompt_tokens": "INTEGER",
        "output_tokens": "INTEGER",
        "latency_s": "DOUBLE",
    }
    columns = [[r.get(name) for r in rows] for name in types]
    sets = ", ".join(f"{name} = n.{name}" for name in types if name != "seq")
    con.execute(
        f"""UPDATE evaluation_results SET {sets} FROM ({columns_select(types)}) n
                    WHERE evaluation_results.evaluation_id = ? AND evaluation_results.seq = n.seq""",
        [*columns, evaluation_id],
    )


def results(
    con: duckdb.DuckDBPyConnection,
    evaluation_id: int,
    *,
    verdict: str | None = None,
    answered: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[ResultRow]:
    """Result rows in set order; verdict 'right', 'wrong' or 'pending' narrows them (a person's verdict counts),
    answered to those with an answer."""
    where, params = "evaluation_id = ?" + (" AND output IS NOT NULL" if answered else ""), [evaluation_id]
    if verdict:
        where += f" AND ({EFFECTIVE_VERDICT}) = ?"
        params.append(verdict)
    sql = f"SELECT {', '.join(_RESULT_COLUMNS)} FROM evaluation_results WHERE {where} ORDER BY seq" + (
        f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else ""
    )
    return [_result(r) for r in con.execute(sql, params).fetchall()]


def category_summary(con: duckdb.DuckDBPyConnection, evaluation_id: int) -> list[tuple]:
    """Per category: records, done, right, wrong, pending, mean loss, mean prompt tokens, mean output tokens,
    mean seconds per answer."""
    return con.execute(
        f"""
        SELECT coalesce(category, '(none)') AS category, count(*) AS n, count(output) AS done,
               count(*) FILTER (WHERE output IS NOT NULL AND ({EFFECTIVE_VERDICT}) = 'right') AS right_,
               count(*) FILTER (WHERE output IS NOT NULL AND ({EFFECTIVE_VERDICT}) = 'wrong') AS wrong,
               count(*) FILTER (WHERE output IS NOT NULL AND ({EFFECTIVE_VERDICT}) = 'pending') AS pending,
               avg(loss), avg(prompt_tokens), avg(output_tokens), avg(latency_s)
        FROM evaluation_results WHERE evaluation_id = ? GROUP BY ALL ORDER BY category""",
        [evaluation_id],
    ).fetchall()


def set_human_verdict(
    con: duckdb.DuckDBPyConnection, evaluation_id: int, seq: int, verdict: str | None, author: str
) -> None:
    if verdict is not None and verdict not in HUMAN_VERDICTS:
        raise WorkbenchError(f"unknown verdict {verdict!r}; use one of {', '.join(HUMAN_VERDICTS)}")
    found = first_row(
        con, "SELECT output FROM evaluation_results WHERE evaluation_id = ? AND seq = ?", [evaluation_id, seq]
    )
    if found is None:
        raise NotFoundError(f"evaluation {evaluation_id} has no record number {seq}")
    if found[0] is None:
        raise WorkbenchError(
            f"record {seq} of evaluation {evaluation_id} has no output yet; resume the evaluation"
        )
    con.execute(
        "UPDATE evaluation_results SET human_verdict = ?, human_author = ?, human_at = current_timestamp "
        "WHERE evaluation_id = ? AND seq = ?",
        [verdict, author if verdict else None, evaluation_id, seq],
    )


def paired_verdicts(con: duckdb.DuckDBPyConnection, before: int, after: int) -> list[tuple]:
    """(record_key, record_id, category, cluster name, verdict before, verdict after) for every record with an
    output in both evaluations. The cluster is the record's in the newest clustering run that clustered it,
    else that of the badcase its failure was sent to (the badcases are what gets clustered, seldom the eval
    set); None when neither was clustered."""
    return con.execute(
        f"""
        WITH a AS (SELECT record_key, record_id, category, {EFFECTIVE_VERDICT} AS v FROM evaluation_results
                   WHERE evaluation_id = ? AND output IS NOT NULL),
             b AS (SELECT record_key, {EFFECTIVE_VERDICT} AS v FROM evaluation_results
                   WHERE evaluation_id = ? AND output IS NOT NULL),
             named AS (SELECT m.record_id, arg_max(c.name, m.run_id) AS name
                       FROM cluster_members m JOIN clusters c ON c.run_id = m.run_id AND c.cluster = m.cluster
                       GROUP BY m.record_id),
             sent AS (SELECT record_id, max(badcase_id) AS badcase_id FROM evaluation_results
                      WHERE badcase_id IS NOT NULL AND record_id IS NOT NULL GROUP BY record_id)
        SELECT a.record_key, a.record_id, coalesce(a.category, '(none)'), coalesce(own.name, via.name), a.v, b.v
        FROM a JOIN b ON a.record_key = b.record_key
        LEFT JOIN named own ON own.record_id = a.record_id
        LEFT JOIN sent s ON s.record_id = a.record_id
        LEFT JOIN named via ON via.record_id = s.badcase_id
        ORDER BY a.record_key""",
        [before, after],
    ).fetchall()


def mark_sent_to_badcases(
    con: duckdb.DuckDBPyConnection, evaluation_id: int, pairs: Sequence[tuple[int, int]]
) -> None:
    """Link failures to the badcase records made from them: (seq, record id) pairs."""
    for seq, record_id in pairs:
        con.execute(
            "UPDATE evaluation_results SET badcase_id = ? WHERE evaluation_id = ? AND seq = ?",
            [record_id, evaluation_id, seq],
        )
