"""The export preview: what an export with these settings would take per category, computed in the store
with the same selection as the export itself, and no file written.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Store
from ..store import exports as sql
from .config import ExportConfig, Progress
from .selection import nothing_to_export, select_records


@dataclass
class PreviewRow:
    """One category of an export preview: what `workbench export` with these settings would take."""

    pool: str  # 'task' or 'general'
    category: str | None
    available: int  # records that may be exported
    taken: int  # distinct records taken (train + val)
    cut: int  # available records left out by the quota (down-sampling)
    short: int  # lines below the category's target
    repeats: int  # extra train lines from up-sampling
    leaks: int  # records left out as too like an eval record


@dataclass
class ExportPreview:
    """What an export would take per category, computed in the store without writing any file."""

    rows: list[PreviewRow]
    general_wanted: int
    general_share: float  # general lines / all lines
    excluded: dict[str, int]  # reason -> records
    eval_records: int
    guard: str
    notes: list[str]
    nothing: str | None = None  # why nothing would be exported, when nothing would

    @property
    def leaks(self) -> int:
        return self.excluded.get("eval-leak", 0)


def preview_export(
    store: Store, config: ExportConfig | None = None, progress: Progress | None = None
) -> ExportPreview:
    """What export_training_set(store, config) would take per category (available, taken, cut, short, eval
    leaks), with the same snapshot and planning as the export itself, and no file written."""
    config = config or ExportConfig()
    config.validate()
    tell = progress or (lambda stage, done, total: None)
    with store.transaction() as con:  # temp tables only (and any MinHash signatures the leak check caches)
        try:
            task, general, wanted, notes, eval_ids, guard, spec, task_ds = select_records(
                con, config, tell, pick=False
            )
            leaks = dict(
                ((pool, category), n)
                for pool, category, n in sql.exclusion_counts_by_category(con, "eval-leak")
            )
            excluded = sql.exclusion_counts(con)
            nothing = None if any(p.take for p in task) else nothing_to_export(con, spec, task_ds)
        finally:
            sql.drop_temp(con)
    rows = [
        PreviewRow(
            p.pool,
            p.category,
            p.available,
            p.take,
            p.downsampled,
            p.short,
            p.repeats,
            leaks.get((p.pool, p.category), 0),
        )
        for p in task + general
    ]
    lines = sum(p.rows for p in task + general)
    return ExportPreview(
        rows,
        wanted,
        sum(p.rows for p in general) / lines if lines else 0.0,
        excluded,
        len(eval_ids),
        guard,
        notes,
        nothing,
    )
