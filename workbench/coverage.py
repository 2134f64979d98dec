"""Coverage: does each category have the training records it needs, and is the general mix right?

The practice this follows: a classification or extraction task wants 1-3k good records (10k and
more for many hard classes), reference QA 2-10k, copywriting 2-3k; 15-30% general data keeps the
model's manners. A person may set a category's own band; otherwise its task type's default applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import WorkbenchError
from .export import ExportConfig, ExportPreview, preview_export
from .store import Store
from .store import coverage as sql
from .train.config import preset_name

STATUSES = sql.STATUSES
# Records a category should have for training, by task type (the train presets' names).
DEFAULT_BANDS: dict[str, tuple[int, int]] = {
    "classification": (1000, 3000),
    "extraction": (1000, 3000),
    "qa": (2000, 10000),
    "copywriting": (2000, 3000),
    "creative": (2000, 3000),
}
BAND_ADVICE = {
    "classification": "1-3k records; up to 10k and more when there are many hard classes",
    "extraction": "like classification: 1-3k records",
    "qa": "reference QA: 2-10k records",
    "copywriting": "copywriting: 2-3k records",
    "creative": "creative writing: 2-3k records (train 5-10 epochs)",
}
GENERAL_BAND = (0.15, 0.30)


@dataclass
class CategoryCoverage:
    category: str | None
    task_type: str | None  # the train preset the category's task type maps to, if any
    ready: int  # what the next export may take (its own pool: a ready status, no error, no duplicate, no eval leak)
    by_status: dict[str, int]
    duplicates: int
    with_errors: int
    band: tuple[int, int] | None
    band_source: str | None  # 'set' (a person chose it), 'task type' (the default), None (no band)
    eval_leaks: int = 0  # records of a ready status the export leaves out as too like an eval record

    @property
    def open_badcases(self) -> int:
        """Records not yet fixed or approved (new, labeled): work still to do."""
        return self.by_status["new"] + self.by_status["labeled"]

    @property
    def verdict(self) -> str:
        if self.band is None:
            return "no target"
        low, high = self.band
        return "short" if self.ready < low else "over-full" if self.ready > high else "in band"

    @property
    def gap(self) -> int:
        """Records missing to reach the band (positive), or above it (negative); 0 inside it."""
        if self.band is None:
            return 0
        low, high = self.band
        return low - self.ready if self.ready < low else high - self.ready if self.ready > high else 0

    @property
    def says(self) -> str:
        """The verdict in words, as a page shows it."""
        if self.band is None:
            return "no target: set a band, or give the records a task type"
        band = f"{self.band[0]:,}-{self.band[1]:,}"
        if self.verdict == "short":
            return f"short by {self.gap:,} ({self.ready:,} ready of {band})"
        if self.verdict == "over-full":
            return f"{self.brief}: the export down-samples"
        return self.brief

    @property
    def brief(self) -> str:
        """The verdict in a few words, for a link or a table cell."""
        if self.band is None:
            return "no target"
        band = f"{self.band[0]:,}-{self.band[1]:,}"
        word = {"short": f"short by {self.gap:,}", "over-full": f"over-full by {-self.gap:,}"}.get(
            self.verdict, "in band"
        )
        return f"{word} ({self.ready:,} ready of {band})"


@dataclass
class GeneralShare:
    """The general data in the next export, against the 15-30% band."""

    share: float  # the export setting
    task_records: int  # badcase records ready for training
    general_available: int  # general records that may be mixed in
    band: tuple[float, float] = GENERAL_BAND

    @property
    def general_needed(self) -> int:
        """General records the share asks for beside the task records."""
        return round(self.task_records * self.share / (1 - self.share)) if self.share < 1 else 0

    @property
    def actual_share(self) -> float:
        taken = min(self.general_needed, self.general_available)
        total = self.task_records + taken
        return taken / total if total else 0.0

    @property
    def in_band(self) -> bool:
        return self.band[0] <= self.actual_share <= self.band[1]

    @property
    def says(self) -> str:
        actual = f"{self.actual_share:.0%} general data"
        if self.general_needed > self.general_available:
            return (
                f"{actual}: the {self.share:.0%} setting needs {self.general_needed:,} general records and "
                f"{self.general_available:,} are available; import more general data"
            )
        low, high = self.band
        if self.in_band:
            return f"{actual}, inside the {low:.0%}-{high:.0%} band"
        return f"{actual}, outside the {low:.0%}-{high:.0%} band: set the general share between them"


@dataclass
class Coverage:
    categories: list[CategoryCoverage] = field(default_factory=list)
    general: GeneralShare | None = None
    preview: ExportPreview | None = None  # the next export with the same settings: where `ready` comes from

    def category(self, name: str | None) -> CategoryCoverage | None:
        return next((c for c in self.categories if c.category == name), None)


def coverage(store: Store, config: ExportConfig | None = None) -> Coverage:
    """Every badcase category's records by status against its band, and the next export's general share.
    Ready is what the export's preview with `config` may take (one judge for both: the export's pool)."""
    config = config or ExportConfig()
    with store.connect() as con:
        rows = sql.category_counts(con)
        targets = sql.targets(con)
    preview = preview_export(store, config)
    available = {(r.pool, r.category): r.available for r in preview.rows}
    leaks = {r.category: r.leaks for r in preview.rows if r.pool == "task"}
    task_records = sum(n for (pool, _c), n in available.items() if pool == "task")
    general = sum(n for (pool, _c), n in available.items() if pool == "general")
    categories = []
    for category, task_type, duplicates, errors, *counts in rows:
        preset = preset_name(task_type)
        ready = available.get(("task", category), 0)
        band, source = (
            (targets[category], "set")
            if category in targets
            else ((DEFAULT_BANDS[preset], "task type") if preset in DEFAULT_BANDS else (None, None))
        )
        categories.append(
            CategoryCoverage(
                category,
                preset,
                ready,
                dict(zip(STATUSES, counts, strict=True)),
                duplicates,
                errors,
                band,
                source,
                leaks.get(category, 0),
            )
        )
    return Coverage(categories, GeneralShare(config.general_share, task_records, general), preview)


def set_target(store: Store, category: str, low: int, high: int, author: str = "workbench") -> None:
    """Give a category its own band of training records (replacing the task type's default)."""
    if not category or not category.strip():
        raise WorkbenchError("name the category whose target you set")
    if low < 0 or high < low:
        raise WorkbenchError(f"a target band needs 0 <= low <= high; got {low}-{high}")
    with store.transaction() as con:
        sql.set_target(con, category, int(low), int(high), author)


def clear_target(store: Store, category: str) -> bool:
    """Back to the task type's default band; False when the category had no band of its own."""
    with store.transaction() as con:
        return sql.clear_target(con, category)
