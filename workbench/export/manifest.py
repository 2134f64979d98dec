"""manifest.json: the export's summary (config, files, counts, contracts, leakage) and its record lists;
read back by the trainer and the app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import __version__
from ..errors import WorkbenchError
from .config import ExportConfig
from .result import ExportResult
from .snapshot import Snapshot

MANIFEST_SCHEMA = 1


def export_counts(snap: Snapshot, result: ExportResult) -> dict[str, Any]:
    by_source: dict[str, dict[str, int]] = {}
    for source, plans in (("badcase", snap.task), ("general", snap.general)):
        by_source[source] = {
            "train": sum(p.train_rows for p in plans),
            "val": sum(p.val for p in plans),
            "records": sum(p.take for p in plans),
        }
    return {
        "train": result.train_records,
        "val": result.val_records,
        "records": sum(p.take for p in snap.task + snap.general),
        "by_source": by_source,
        "by_category": [p.as_dict() for p in snap.task],
        "general_by_category": [p.as_dict() for p in snap.general],
        "excluded": dict(sorted(result.excluded.items())),
        "left_out_by_status": dict(snap.unselected),
    }


def manifest_text(config: ExportConfig, snap: Snapshot, result: ExportResult) -> str:
    """manifest.json: the summary pretty-printed, then the record lists compact (they can hold a million ids)."""
    summary = {
        "schema": MANIFEST_SCHEMA,
        "name": config.name,
        "hash": result.hash,
        "folder": result.folder.name,
        "created_by": f"sft-workbench {__version__}",
        "format": config.format,
        "weights": config.weights,
        "seed": config.seed,
        "config": config.to_json(),
        "files": {f.name: f.as_dict() for f in result.files},
        "counts": export_counts(snap, result),
        "categories": sorted(p.category for p in snap.task if p.take and p.category is not None),
        "general_share": round(result.general_share, 6),
        "general_share_target": config.general_share,
        "contracts": snap.contracts,
        "task_types": snap.task_types,
        "leakage": {
            "guard": result.leakage_guard,
            "eval_records": result.eval_records,
            "removed": result.leaks,
        },
        "warnings": result.warnings,
    }
    head = json.dumps(summary, ensure_ascii=False, indent=2)
    tail = ",\n".join(
        f'    "{split}": {{"ids":[{_joined(table.column("id"), ",")}],'
        f'"content_hashes":[{_joined(table.column("content_hash"), ",", quote=True)}]}}'
        for split, table in (("train", snap.train), ("val", snap.val))
    )
    return head[:-2] + ',\n  "records": {\n' + tail + "\n  }\n}\n"


def _joined(column: pa.ChunkedArray, separator: str, quote: bool = False) -> str:
    """A column's values as JSON array items, joined in Arrow (a million ids take milliseconds, not a second).

    Content hashes are hex, so quoting them needs no escaping.
    """
    import pyarrow.compute as pc  # here, not at the top: the CLI's start-up does not need it

    if len(column) == 0:
        return ""
    values = pc.cast(column.combine_chunks(), pa.string())
    if quote:
        separator = f'"{separator}"'
    joined = pc.binary_join(
        pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values), separator
    )
    text = joined[0].as_py()
    return f'"{text}"' if quote else text


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """An export folder's manifest.json (for the trainer and the app)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise WorkbenchError(
            f"{folder} is not an export folder (no manifest.json); run workbench export first"
        )
    return json.loads(path.read_text(encoding="utf-8"))
