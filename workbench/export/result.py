"""What an export wrote and why: ExportResult, built from the snapshot and the files, with the flags the
report raises (too little general data, short categories, conversion losses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import writers
from .config import GENERAL_SHARE_ADVISED, ExportConfig
from .plan import CategoryPlan
from .snapshot import Snapshot


@dataclass
class ExportResult:
    """What an export wrote and why: the numbers per category, what was left out, the flags raised."""

    name: str
    hash: str
    folder: Path
    config: ExportConfig
    categories: list[CategoryPlan]  # the badcase part, one per category
    general: list[CategoryPlan]  # the general mix, one per general category
    general_wanted: int  # general lines the share asked for
    train_records: int  # train lines (repeats included)
    val_records: int
    general_share: float  # general lines / all lines
    excluded: dict[str, int]  # reason -> records
    leakage_guard: str  # what found leaks: 'exact' or 'exact + dedup.find_leaks'
    eval_records: int
    warnings: list[str]
    files: list[writers.FileSummary]
    seconds: float = 0.0
    reused: bool = False  # the folder was already there with the same bytes

    @property
    def leaks(self) -> int:
        return self.excluded.get("eval-leak", 0)


def build_result(
    config: ExportConfig,
    snap: Snapshot,
    set_hash: str,
    folder: Path,
    files: list[writers.FileSummary],
    conversion_notes: dict[str, int],
) -> ExportResult:
    task_rows = sum(p.rows for p in snap.task)
    general_rows = sum(p.rows for p in snap.general)
    share = general_rows / (task_rows + general_rows) if task_rows + general_rows else 0.0
    excluded = dict(snap.excluded_counts)
    result = ExportResult(
        name=config.name,
        hash=set_hash,
        folder=folder,
        config=config,
        categories=snap.task,
        general=snap.general,
        general_wanted=snap.general_wanted,
        train_records=snap.train.num_rows,
        val_records=snap.val.num_rows,
        general_share=share,
        excluded=excluded,
        leakage_guard=snap.guard,
        eval_records=snap.eval_records,
        warnings=[],
        files=files,
    )
    result.warnings = _warnings(config, result, snap.notes, conversion_notes)
    return result


def _warnings(
    config: ExportConfig, result: ExportResult, notes: list[str], conversion: dict[str, int]
) -> list[str]:
    out = list(notes)
    low, high = GENERAL_SHARE_ADVISED
    general_rows = sum(p.rows for p in result.general)
    if general_rows < result.general_wanted:
        out.append(
            f"not enough general data: {result.general_wanted:,} general records were wanted for a "
            f"{config.general_share:.0%} share, {general_rows:,} could be used "
            "(import more, e.g. workbench import alpaca_en_demo.json --dataset general)"
        )
    if not low <= result.general_share <= high:
        out.append(
            f"general data is {result.general_share:.1%} of the set, outside the advised "
            f"{low:.0%}-{high:.0%}: too little lets the model forget its general manners, too much "
            "dilutes the badcases"
        )
    for p in result.categories:
        label = _label(p.category)
        if p.available == 0:
            out.append(f"category {label} has no records to export")
        elif p.short:
            how = (
                f"repeated up to {config.max_repeat}x"
                if config.upsample
                else "turn on upsample to repeat its records"
            )
            out.append(
                f"category {label} is {p.short:,} short of its target {p.target:,} "
                f"({p.available:,} record{'' if p.available == 1 else 's'}; {how})"
            )
        if p.take == 1 and config.val > 0:
            out.append(f"category {label} has a single record: it is in train, with no val record")
    for note, n in sorted(conversion.items()):
        out.append(f"{note} ({n:,} record{'' if n == 1 else 's'})")
    return out


def _label(category: str | None) -> str:
    return "(no category)" if category is None else repr(category)
