"""What goes into a training set: ExportConfig, every field with a default and the help text the CLI and the
app show, and the check that says which option is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import InvalidNameError, WorkbenchError
from ..names import check_name
from ..store import exports as sql
from ..store.records import STATUSES
from . import plan, writers

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)

GENERAL_SHARE_RANGE = (0.0, 0.5)  # allowed
GENERAL_SHARE_ADVISED = (0.15, 0.30)  # outside this the report raises a flag
LEAKAGE_GUARDS = ("auto", "exact")
_NAME = re.compile(r"[\w][\w.-]*")
# The folder is <name>-<10 hex>, written as .tmp-<name>-<pid>-<8 hex> and moved aside as .old-<name>-<10 hex>-<8 hex>:
# 25 bytes on top of the name, within the 255 a file name may have.
NAME_MAX_BYTES = 200


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class ExportConfig:
    """What goes into a training set. Every field has a default; the help texts are what the UI shows."""

    name: str = field(
        default="train",
        metadata=_help(
            "Name of the training set; the folder is exports/<name>-<short hash>. Letters, digits, _ . - "
            "(Chinese characters are fine), at most 200 bytes (66 Chinese characters)."
        ),
    )
    datasets: tuple[str, ...] | None = field(
        default=None,
        metadata=_help("Badcase datasets to take records from. Default: every dataset of kind badcases."),
    )
    categories: tuple[str, ...] | None = field(
        default=None, metadata=_help("Categories to export. Default: every category in the chosen datasets.")
    )
    statuses: tuple[str, ...] = field(
        default=("approved", "fixed"), metadata=_help("Record statuses that count as ready for training.")
    )
    per_category: int | None = field(
        default=None,
        metadata=_help(
            "Target records per category (train lines plus val). Bigger categories are down-sampled; smaller "
            "ones are reported, and repeated when upsample is on. Default: no target, every record is taken."
        ),
    )
    category_targets: dict[str, int] = field(
        default_factory=dict,
        metadata=_help('Target records for single categories, e.g. {"refund": 500}; overrides per_category.'),
    )
    category_shares: dict[str, float] = field(
        default_factory=dict,
        metadata=_help(
            'Share of the badcase part for single categories, e.g. {"refund": 0.4}; categories not named share '
            "what is left. Cannot be mixed with per_category or category_targets."
        ),
    )
    task_records: int | None = field(
        default=None,
        metadata=_help(
            "Size of the badcase part (train lines plus val) when balancing by shares. Alone it means equal shares "
            "per category. Default with shares: the largest set in which no category needs repeating."
        ),
    )
    upsample: bool = field(
        default=False,
        metadata=_help(
            "Repeat the train records of categories below their target to reach it (capped by max_repeat)."
        ),
    )
    max_repeat: int = field(
        default=3,
        metadata=_help(
            "With upsample: how many times a record may appear in train at most (1 = never repeated)."
        ),
    )
    general_share: float = field(
        default=0.2,
        metadata=_help(
            "Share of general SFT data in the set (0 to 0.5); it keeps the model's general manners. "
            "The report flags a share outside 15-30%."
        ),
    )
    general_datasets: tuple[str, ...] | None = field(
        default=None,
        metadata=_help("Datasets the general data comes from. Default: every dataset of kind general."),
    )
    general_statuses: tuple[str, ...] = field(
        default=("new", "labeled", "fixed", "approved"),
        metadata=_help(
            "Statuses of general records that may be mixed in (imported general data is 'new'; 'rejected' never is)."
        ),
    )
    val: float = field(
        default=0.1,
        metadata=_help(
            "Share of records held out for validation, stratified by category (at least one per category that "
            "has two or more records). 0 to 0.5."
        ),
    )
    seed: int = field(
        default=42,
        metadata=_help(
            "Seed for sampling, the split and the order of lines. The same seed gives the same files."
        ),
    )
    format: str = field(
        default="messages",
        metadata=_help(
            "File format besides the messages JSONL (train.jsonl/val.jsonl, always written): messages (nothing else), "
            "sharegpt or alpaca (LLaMA-Factory JSON plus dataset_info.json)."
        ),
    )
    weights: str = field(
        default="ark",
        metadata=_help(
            "Per-message loss weights: ark (loss_weight kept, or added: assistant 1, others 0), stored (only where "
            "a record has one), openai (OpenAI's weight 0/1 on assistant messages), none."
        ),
    )
    leakage_guard: str = field(
        default="auto",
        metadata=_help(
            "How records too close to eval records are found: auto (exact, then dedup's find_leaks: lexical and "
            "semantic), exact (the same messages, or the same last user turn)."
        ),
    )

    def __post_init__(self) -> None:
        for name in ("datasets", "categories", "general_datasets"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(value))
        self.statuses = tuple(self.statuses)
        self.general_statuses = tuple(self.general_statuses)
        self.category_targets = dict(self.category_targets)
        self.category_shares = dict(self.category_shares)

    @classmethod
    def help_texts(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}

    def validate(self) -> None:
        """Raise WorkbenchError saying which option is wrong and what it may be."""
        check_name(self.name, "export name", max_bytes=NAME_MAX_BYTES)
        if not _NAME.fullmatch(self.name):
            raise InvalidNameError(
                f"the export name {self.name!r} cannot be a folder name; use letters, digits, "
                f"_ . - (Chinese characters are fine)"
            )
        for name, statuses in (("statuses", self.statuses), ("general_statuses", self.general_statuses)):
            unknown = [s for s in statuses if s not in STATUSES]
            if unknown:
                raise WorkbenchError(
                    f"unknown status {', '.join(unknown)} in {name}; use {', '.join(STATUSES)}"
                )
        low, high = GENERAL_SHARE_RANGE
        if not low <= self.general_share <= high:
            raise WorkbenchError(
                f"general_share is {self.general_share}; it must be between {low} and {high} "
                f"(0.2 = 20% general data)"
            )
        if not 0 <= self.val <= 0.5:
            raise WorkbenchError(f"val is {self.val}; it must be between 0 and 0.5 (0.1 = 10% held out)")
        if self.format not in writers.FORMATS:
            raise WorkbenchError(f"unknown format {self.format!r}; use one of {', '.join(writers.FORMATS)}")
        if self.weights not in sql.WEIGHTS:
            raise WorkbenchError(f"unknown weights {self.weights!r}; use one of {', '.join(sql.WEIGHTS)}")
        if self.leakage_guard not in LEAKAGE_GUARDS:
            raise WorkbenchError(f"unknown leakage_guard {self.leakage_guard!r}; use auto or exact")
        if self.max_repeat < 1:
            raise WorkbenchError("max_repeat must be 1 or more (1 = no record repeated)")
        for label, value in [
            ("per_category", self.per_category),
            ("task_records", self.task_records),
            *[(f"the target of {k!r}", v) for k, v in self.category_targets.items()],
        ]:
            if value is not None and (not isinstance(value, int) or value < 0):
                raise WorkbenchError(f"{label} is {value!r}; it must be a whole number, 0 or more")
        plan.check_shares(self.category_shares)
        if self.category_shares and (self.per_category is not None or self.category_targets):
            raise WorkbenchError(
                "balance by counts (per_category, category_targets) or by shares (category_shares), not both"
            )
        if self.task_records is not None and (self.per_category is not None or self.category_targets):
            raise WorkbenchError(
                "task_records sizes a set balanced by shares; with per_category or category_targets "
                "the targets themselves say how big it is"
            )

    def to_json(self) -> dict[str, Any]:
        """The config as plain JSON (lists for tuples, sorted dicts), as written into manifest.json."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(sorted(value.items()))
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
