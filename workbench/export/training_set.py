"""Exporting a training set: one snapshot of the store, the folder written without holding it, the export
logged in one short transaction; and the log of exports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import roles
from ..errors import WorkbenchError
from ..store import Store
from ..store import exports as sql
from .config import ExportConfig, Progress
from .manifest import export_counts
from .output import write_export_folder
from .result import ExportResult
from .snapshot import read_snapshot


def export_training_set(store: Store, config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Export the training set `config` describes into exports/<name>-<hash>/ and log it in the store."""
    roles.require(store, "export")
    config.validate()
    if store.root is None:
        raise WorkbenchError("an in-memory store has no exports folder; open a store folder to export")
    tell = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    tell("selecting", 0, None)
    with store.transaction() as con:
        # One snapshot for every read. The export itself writes nothing but temp tables; the commit keeps
        # what dedup's leak check may cache on the way (MinHash signatures).
        snap = read_snapshot(con, config, tell)
        sql.drop_temp(con)
    result = write_export_folder(store, config, snap, tell)
    with store.transaction() as con:
        sql.record_export(
            con,
            hash=result.hash,
            name=config.name,
            folder=str(result.folder.relative_to(store.root)),
            format=config.format,
            config=config.to_json(),
            counts=export_counts(snap, result),
            train_records=result.train_records,
            val_records=result.val_records,
            general_share=result.general_share,
        )
    result.seconds = time.perf_counter() - started
    tell("done", result.train_records + result.val_records, result.train_records + result.val_records)
    return result


@dataclass
class ExportEntry:
    """One export of the log, and whether its folder is still on disk."""

    row: sql.ExportRow
    folder_exists: bool


def list_exports(store: Store, limit: int = 20) -> list[ExportEntry]:
    """The exports logged so far, newest first, each with whether its folder is still there."""
    with store.connect(read_only=True) as con:
        rows = sql.list_exports(con, limit)
    return [ExportEntry(row, store.root is not None and (store.root / row.folder).is_dir()) for row in rows]
