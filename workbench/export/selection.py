"""Choosing the records: which datasets, the candidate pool, the quotas per category (balancing and the
general mix, planned by plan.py), the picking, and leaving out records too like an eval record.
"""

from __future__ import annotations

from typing import Any

import duckdb

from .. import dedup
from ..errors import WorkbenchError
from ..store import Store
from ..store import exports as sql
from . import plan
from .config import ExportConfig, Progress
from .plan import CategoryPlan


def select_records(
    con: duckdb.DuckDBPyConnection, config: ExportConfig, tell: Progress, pick: bool = True
) -> tuple:
    """Stage the candidates, plan the quotas and pick the records, leaving out eval leaks (temp tables only):
    what the export takes, before any line is built. Returns (task, general, general wanted, notes, eval ids,
    guard, pool spec, task datasets). With pick=False (a preview: counts only) the records are picked only
    when the leak check needs them."""
    task_ds, general_ds, eval_ds = _datasets(con, config)
    spec = sql.PoolSpec(
        task_datasets=task_ds,
        general_datasets=general_ds,
        eval_datasets=eval_ds,
        statuses=config.statuses,
        general_statuses=tuple(s for s in config.general_statuses if s != "rejected"),
        categories=config.categories,
        group_task=bool(
            config.per_category is not None
            or config.category_targets
            or config.category_shares
            or config.task_records is not None
        ),
    )
    sql.stage_pool(con, spec)
    find_leaks = config.leakage_guard == "auto"
    eval_ids = sql.eval_ids(con)
    guard = "exact + dedup.find_leaks" if find_leaks else "exact"
    checked: set[int] = set()
    while True:
        task, general, wanted, notes = _plan(con, config)
        if not pick and not eval_ids:
            break  # the plan's counts are the preview; nothing to check picks against
        sql.select_rows(
            con,
            [sql.Quota(p.pool, p.category, p.available, p.take, p.val, p.train_rows) for p in task + general],
            config.seed,
        )
        if not find_leaks or not eval_ids:
            break
        fresh = [i for i in sql.selected_ids(con) if i not in checked]
        if not fresh:
            break
        checked.update(fresh)
        if not exclude_leaks(con, fresh, eval_ids, tell):
            break
    return task, general, wanted, notes, eval_ids, guard, spec, task_ds


def exclude_leaks(
    con: duckdb.DuckDBPyConnection, ids: list[int], eval_ids: list[int], tell: Progress
) -> bool:
    """Mark those of `ids` that dedup.find_leaks finds like an eval record as eval leaks in the pool (the
    strongest match each); False when none is."""
    tell("checking for eval leaks", 0, len(ids))
    leaks = dedup.find_leaks(
        con,
        ids,
        eval_ids,
        progress=lambda stage, done, total: tell(f"checking for eval leaks: {stage}", done, total),
    )
    wanted = set(ids)
    first: dict[int, Any] = {}
    for leak in sorted(leaks, key=lambda x: (x.train_id, -x.score, x.eval_id)):
        if leak.train_id in wanted:
            first.setdefault(leak.train_id, leak)
    sql.exclude(
        con,
        [
            (tid, "eval-leak", f"{leak.kind} ({leak.score:.2f}): like eval record {leak.eval_id}")
            for tid, leak in sorted(first.items())
        ],
    )
    return bool(first)


def left_out_of_export(
    store: Store, record_ids: list[int], config: ExportConfig | None = None
) -> dict[int, tuple[str, str]]:
    """record id -> (reason, detail) for each of `record_ids` the next export with `config` leaves out (an
    error, a duplicate, the same question or messages as an eval record, a repeat), judged by the export's own
    pool and, with the 'auto' guard, its look-alike check (dedup.find_leaks) on these records; the records it
    may take are absent."""
    config = config or ExportConfig()
    with store.transaction() as con:  # temp tables only
        try:
            task_ds, general_ds, eval_ds = _datasets(con, config)
            sql.stage_pool(
                con,
                sql.PoolSpec(task_ds, general_ds, eval_ds, config.statuses, config.general_statuses,
                             config.categories, group_task=False),
            )  # fmt: skip
            eval_ids = sql.eval_ids(con)
            if config.leakage_guard == "auto" and eval_ids:
                kept = [i for i in record_ids if i not in sql.reasons_of(con, record_ids)]
                exclude_leaks(con, kept, eval_ids, lambda stage, done, total: None)
            return sql.reasons_of(con, record_ids)
        finally:
            sql.drop_temp(con)


def _datasets(con: duckdb.DuckDBPyConnection, config: ExportConfig) -> tuple[tuple[str, ...], ...]:
    """(task, general, eval) dataset names, checking that the named ones exist and are of the right kind."""
    kinds = sql.dataset_kinds(con)
    for name in (config.datasets or ()) + (config.general_datasets or ()):
        if name not in kinds:
            raise WorkbenchError(f"there is no dataset {name!r}; the store has {', '.join(kinds) or 'none'}")
    for name in config.datasets or ():
        if kinds[name] == "eval":
            raise WorkbenchError(f"{name!r} is an eval dataset: eval records never enter training")
        if kinds[name] == "general":
            raise WorkbenchError(
                f"{name!r} is general data: it is mixed in by general_share (name it in "
                f"general_datasets), not exported as badcases"
            )
    for name in config.general_datasets or ():
        if kinds[name] != "general":
            raise WorkbenchError(f"{name!r} is a {kinds[name]} dataset, not general data")
    task = (
        config.datasets
        if config.datasets is not None
        else tuple(n for n, k in kinds.items() if k == "badcases")
    )
    general = (
        config.general_datasets
        if config.general_datasets is not None
        else tuple(n for n, k in kinds.items() if k == "general")
    )
    evals = tuple(n for n, k in kinds.items() if k == "eval")
    return tuple(task), tuple(general), evals


def _plan(
    con: duckdb.DuckDBPyConnection, config: ExportConfig
) -> tuple[list[CategoryPlan], list[CategoryPlan], int, list[str]]:
    available: dict[str, dict] = {"task": {}, "general": {}}
    for pool, category in sql.pool_categories(con):
        available[pool][category] = (0, 0)
    for category in config.categories or ():
        available["task"].setdefault(category, (0, 0))
    for pool, category, n, fixed in sql.available_counts(con):
        available[pool][category] = (n, fixed)
    task_avail = available["task"]
    targets, notes = plan.task_targets(
        {c: n for c, (n, _) in task_avail.items()},
        per_category=config.per_category,
        category_targets=config.category_targets,
        category_shares=config.category_shares,
        task_records=config.task_records,
    )
    task = plan.plan_pool(
        "task", task_avail, targets, val=config.val, upsample=config.upsample, max_repeat=config.max_repeat
    )
    task_rows = sum(p.rows for p in task)
    general, wanted = plan.plan_general(
        available["general"], task_rows, share=config.general_share, val=config.val
    )
    return task, general, wanted, notes


def nothing_to_export(con: duckdb.DuckDBPyConnection, spec: sql.PoolSpec, task_ds: tuple[str, ...]) -> str:
    if not task_ds:
        return "there is no badcases dataset to export from; import badcases first (workbench import FILE)"
    left_out = ", ".join(f"{n} {status}" for status, n in sql.unselected_statuses(con, spec))
    excluded = sql.exclusion_counts(con, "task")
    why = "; ".join(f"{n} {sql.REASONS[r].split(' (')[0]}" for r, n in excluded.items())
    return (
        f"nothing to export: no record in {', '.join(task_ds)} has status {' or '.join(spec.statuses)}"
        + (" and passes the checks" if excluded else "")
        + (f" (left out by status: {left_out})" if left_out else "")
        + (f" (excluded: {why})" if why else "")
        + ". Approve or fix records first, or choose other statuses (--statuses)."
    )
