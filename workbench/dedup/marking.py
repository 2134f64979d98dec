"""A dedup run: find the groups among the selected records, mark all but the kept one `dup_of`
(as revisions), log the run; undo a mark or a whole run; list the runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .. import embed
from ..store import Store
from ..store import dedup as sql
from ..store.records import Selection
from .config import DedupConfig, Progress
from .keep import Group, group_matches
from .matches import find_matches


@dataclass
class DedupReport:
    run_id: int | None
    records: int
    groups: list[Group]
    marked: int = 0  # records newly marked dup_of
    restored: int = 0  # records unmarked because this run no longer finds them duplicates
    skipped: int = 0  # records edited while the run was computing (left as they were)
    kept_by_hand: int = 0  # records a person restored earlier, which runs leave unmarked
    by_kind: dict[str, int] = field(default_factory=dict)
    semantic: dict[str, int] = field(default_factory=dict)  # model -> records with a cached vector
    no_vector: int = 0  # records semantic matching could not look at (no cached vector)
    look_alikes: dict[str, int] = field(
        default_factory=dict
    )  # near pairs kept apart: kind -> pairs (lookalike)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def duplicates(self) -> int:
        return sum(len(g.member_ids) - 1 for g in self.groups)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["groups"] = [g.as_dict() for g in self.groups]
        out["duplicates"] = self.duplicates
        return out


def dedup(
    store: Store,
    selection: Selection | Sequence[int] | None = None,
    *,
    config: DedupConfig | None = None,
    author: str = "workbench",
    embed_missing: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> DedupReport:
    """Find the duplicate groups among the selected records and mark all but one per group `dup_of`.

    Eval-kind datasets are left out (see find_leaks). With `embed_missing`, records without a cached
    vector are embedded first (embed.embed_records); otherwise semantic matching looks only at the
    records that have one. A re-run updates the marks: a record this run no longer groups is
    restored, one a person restored by hand stays unmarked. `dry_run` finds groups and marks nothing.
    """
    started = time.perf_counter()
    config = config or DedupConfig()
    ids = embed.selection_ids(store, selection)
    with store.connect() as con:
        ids = sql.without_eval(con, ids)
    if config.semantic and embed_missing and ids:

        def show(done, total):
            if progress:
                progress("embedding", done, total)

        embed.embed_records(store, ids, progress=show)
    with store.transaction() as con:
        keys, matches, coverage = find_matches(con, ids, config, progress=progress)
    groups = group_matches(keys, matches)
    report = DedupReport(
        None,
        len(keys),
        groups,
        semantic=coverage["semantic"],
        no_vector=coverage["no_vector"],
        look_alikes=coverage["look_alikes"],
        dry_run=dry_run,
    )
    for m in matches:
        report.by_kind[m.kind] = report.by_kind.get(m.kind, 0) + 1
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    with store.transaction() as con:
        by_hand = sql.restored_by_hand(con, ids)
        report.kept_by_hand = len(by_hand & {i for g in groups for i in g.member_ids if i != g.kept_id})
        run_id = sql.new_run_id(con)
        row = {int(rid): i for i, rid in enumerate(keys.ids.tolist())}
        target: dict[int, int | None] = {}
        for g in groups:
            for rid in g.member_ids:
                target[rid] = None if (rid == g.kept_id or rid in by_hand) else g.kept_id
        selected = set(row)
        for rid, current in zip(keys.ids.tolist(), keys.dup_of, strict=True):
            # marked earlier inside this selection but no longer grouped: restore
            if rid not in target and current is not None and current in selected:
                target[rid] = None
        marks = [
            (rid, new, int(keys.version[row[rid]]))
            for rid, new in target.items()
            if keys.dup_of[row[rid]] != new
        ]
        report.marked, report.restored, report.skipped = sql.apply_marks(
            con, marks, author, sql.run_note(run_id)
        )
        report.seconds = time.perf_counter() - started
        report.run_id = run_id
        sql.record_run(
            con,
            run_id,
            author=author,
            selection={"ids": len(ids)},
            config=config.to_json(),
            records=len(keys),
            groups=len(groups),
            marked=report.marked,
            restored=report.restored,
            skipped=report.skipped,
            seconds=report.seconds,
            matches=[(m.a, m.b, m.kind, m.score) for m in matches],
        )
    return report


def restore(store: Store, record_id: int, author: str = "workbench") -> bool:
    """Clear one record's duplicate mark (as a revision). Later dedup runs leave it unmarked."""
    with store.transaction() as con:
        return sql.restore(con, record_id, author)


def restore_run(store: Store, run_id: int, author: str = "workbench") -> int:
    """Undo every mark a dedup run set that is still in place; returns how many records were restored."""
    with store.transaction() as con:
        return sql.restore_run(con, run_id, author)


def list_runs(store: Store, limit: int = 20) -> list[tuple]:
    """The latest dedup runs, newest first: (id, when, author, records, groups, marked, restored, skipped,
    seconds)."""
    with store.connect() as con:
        return sql.list_runs(con, limit)
