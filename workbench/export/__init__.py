"""Exporting training sets: approved records of the chosen datasets and categories, balanced, mixed, split.

`export_training_set(store, config)` reads what it needs in one snapshot of the store, writes
`exports/<name>-<hash>/` (train/val files, manifest.json, report.md) without holding the store,
then records the export in one short transaction. Same store and config, same bytes.

One module per step: `config` (ExportConfig), `selection` (datasets, pool, quotas, picking, eval leaks),
`plan` (the quota arithmetic: balancing and the general mix), `snapshot` (the one read), `writers` (file
formats), `output` (the folder, written and moved into place), `result` (ExportResult and its flags),
`manifest`, `report` (report.md), `preview` (the counts without files), `training_set` (the whole export
and the export log).
"""

from __future__ import annotations

from .config import (
    GENERAL_SHARE_ADVISED,
    GENERAL_SHARE_RANGE,
    LEAKAGE_GUARDS,
    NAME_MAX_BYTES,
    ExportConfig,
    Progress,
)
from .manifest import MANIFEST_SCHEMA, read_manifest
from .plan import CategoryPlan
from .preview import ExportPreview, PreviewRow, preview_export
from .result import ExportResult
from .selection import left_out_of_export
from .training_set import ExportEntry, export_training_set, list_exports

__all__ = [
    "GENERAL_SHARE_ADVISED",
    "GENERAL_SHARE_RANGE",
    "LEAKAGE_GUARDS",
    "MANIFEST_SCHEMA",
    "NAME_MAX_BYTES",
    "CategoryPlan",
    "ExportConfig",
    "ExportEntry",
    "ExportPreview",
    "ExportResult",
    "PreviewRow",
    "Progress",
    "export_training_set",
    "left_out_of_export",
    "list_exports",
    "preview_export",
    "read_manifest",
]
