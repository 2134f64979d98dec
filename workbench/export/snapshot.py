"""Everything an export's files need, read in one store snapshot: the selection, the lines, the exclusions,
the contracts and task types of the exported categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from ..errors import EmptySelectionError
from ..store import exports as sql
from ..store.settings import get_contracts
from .config import ExportConfig, Progress
from .plan import CategoryPlan
from .report import LISTED_PER_REASON
from .selection import nothing_to_export, select_records


@dataclass
class Snapshot:
    """Everything the files need, read in one store snapshot."""

    task: list[CategoryPlan]
    general: list[CategoryPlan]
    general_wanted: int
    train: pa.Table  # line, id, content_hash in file order
    val: pa.Table
    excluded: list[
        tuple
    ]  # (id, pool, category, reason, detail): the first ones of each reason, for the report
    excluded_counts: dict[str, int]  # reason -> records
    excluded_lines: pa.Table  # excluded.jsonl, every one
    unselected: list[tuple[str, int]]  # (status, records) the status filter left out
    contracts: dict[str, dict]
    task_types: dict[str, list[str]]
    eval_records: int
    guard: str
    notes: list[str]


def read_snapshot(con: duckdb.DuckDBPyConnection, config: ExportConfig, tell: Progress) -> Snapshot:
    task, general, wanted, notes, eval_ids, guard, spec, task_ds = select_records(con, config, tell)
    if not any(p.take for p in task):
        raise EmptySelectionError(nothing_to_export(con, spec, task_ds))
    tell("building lines", 0, None)
    train = sql.output_lines(con, "train", config.weights)
    val = sql.output_lines(con, "val", config.weights)
    exported_categories = {p.category for p in task if p.take and p.category is not None}
    contracts = {
        name: {"kind": c.kind, "spec": c.spec}
        for name, c in get_contracts(con).items()
        if name in exported_categories
    }
    return Snapshot(
        task,
        general,
        wanted,
        train,
        val,
        sql.exclusions(con, LISTED_PER_REASON),
        sql.exclusion_counts(con),
        sql.exclusion_lines(con),
        sql.unselected_statuses(con, spec),
        contracts,
        sql.task_types(con),
        len(eval_ids),
        guard,
        notes,
    )
