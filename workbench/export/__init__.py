"""Exporting training sets: approved records of the chosen datasets and categories, balanced, mixed, split.

`export_training_set(store, config)` reads what it needs in one snapshot of the store, writes
`exports/<name>-<hash>/` (train/val files, manifest.json, report.md) without holding the store,
then records the export in one short transaction. Same store and config, same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__, dedup
from ..errors import InvalidNameError, WorkbenchError
from ..names import check_name
from ..processes import pid_exists
from ..store import Store
from ..store import exports as sql
from ..store.records import STATUSES
from ..store.settings import get_contracts
from . import plan, writers
from .plan import CategoryPlan
from .report import LISTED_PER_REASON, render_report

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)

GENERAL_SHARE_RANGE = (0.0, 0.5)  # allowed
GENERAL_SHARE_ADVISED = (0.15, 0.30)  # outside this the report raises a flag
MANIFEST_SCHEMA = 1
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


@dataclass
class _Snapshot:
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


def export_training_set(store: Store, config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Export the training set `config` describes into exports/<name>-<hash>/ and log it in the store."""
    config.validate()
    if store.root is None:
        raise WorkbenchError("an in-memory store has no exports folder; open a store folder to export")
    tell = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    tell("selecting", 0, None)
    with store.transaction() as con:
        # One snapshot for every read. The export itself writes nothing but temp tables; the commit keeps
        # what dedup's leak check may cache on the way (MinHash signatures).
        snap = _read(con, config, tell)
        sql.drop_temp(con)
    result = _write(store, config, snap, tell)
    with store.transaction() as con:
        sql.record_export(
            con,
            hash=result.hash,
            name=config.name,
            folder=str(result.folder.relative_to(store.root)),
            format=config.format,
            config=config.to_json(),
            counts=_counts(snap, result),
            train_records=result.train_records,
            val_records=result.val_records,
            general_share=result.general_share,
        )
    result.seconds = time.perf_counter() - started
    tell("done", result.train_records + result.val_records, result.train_records + result.val_records)
    return result


# --- reading ------------------------------------------------------------------------------------------------


def _read(con: duckdb.DuckDBPyConnection, config: ExportConfig, tell: Progress) -> _Snapshot:
    task, general, wanted, notes, eval_ids, guard, spec, task_ds = _select(con, config, tell)
    if not any(p.take for p in task):
        raise WorkbenchError(_nothing_to_export(con, spec, task_ds))
    tell("building lines", 0, None)
    train = sql.output_lines(con, "train", config.weights)
    val = sql.output_lines(con, "val", config.weights)
    exported_categories = {p.category for p in task if p.take and p.category is not None}
    contracts = {
        name: {"kind": c.kind, "spec": c.spec}
        for name, c in get_contracts(con).items()
        if name in exported_categories
    }
    return _Snapshot(
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


def _select(con: duckdb.DuckDBPyConnection, config: ExportConfig, tell: Progress, pick: bool = True) -> tuple:
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
        if not _exclude_leaks(con, fresh, eval_ids, tell):
            break
    return task, general, wanted, notes, eval_ids, guard, spec, task_ds


def _exclude_leaks(
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
            task, general, wanted, notes, eval_ids, guard, spec, task_ds = _select(
                con, config, tell, pick=False
            )
            leaks = dict(
                ((pool, category), n)
                for pool, category, n in sql.exclusion_counts_by_category(con, "eval-leak")
            )
            excluded = sql.exclusion_counts(con)
            nothing = None if any(p.take for p in task) else _nothing_to_export(con, spec, task_ds)
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
                _exclude_leaks(con, kept, eval_ids, lambda stage, done, total: None)
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


def _nothing_to_export(con: duckdb.DuckDBPyConnection, spec: sql.PoolSpec, task_ds: tuple[str, ...]) -> str:
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


# --- writing ------------------------------------------------------------------------------------------------


def _write(store: Store, config: ExportConfig, snap: _Snapshot, tell: Progress) -> ExportResult:
    exports_dir = store.exports_dir
    exports_dir.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(exports_dir)
    tmp = exports_dir / f".tmp-{config.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        total = snap.train.num_rows + snap.val.num_rows
        tell("writing", 0, total)
        files = [
            writers.write_lines_column(tmp / "train.jsonl", snap.train.column("line")),
            writers.write_lines_column(tmp / "val.jsonl", snap.val.column("line")),
        ]
        tell("writing", total, total)
        conversion_notes: dict[str, int] = {}
        if config.format != "messages":
            names = {}
            for split, table in (("train", snap.train), ("val", snap.val)):
                tell(f"writing {config.format}", 0, table.num_rows)
                items, lost, _left_out = writers.convert_lines(
                    table.column("line").to_pylist(), config.format
                )
                for note, n in lost.items():
                    key = f"{config.format}: {note}"
                    conversion_notes[key] = conversion_notes.get(key, 0) + n
                names[split] = f"{split}.{config.format}.json"
                files.append(writers.write_json_array(tmp / names[split], items))
            info = writers.dataset_info(config.name, config.format, names)
            (tmp / "dataset_info.json").write_text(
                json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        set_hash = _set_hash(config, files)
        folder = exports_dir / f"{config.name}-{set_hash[:10]}"
        result = _result(config, snap, set_hash, folder, files, conversion_notes)
        manifest = _manifest_text(config, snap, result)
        (tmp / "manifest.json").write_text(manifest, encoding="utf-8")
        (tmp / "report.md").write_text(
            render_report(result, snap.excluded, snap.unselected), encoding="utf-8"
        )
        writers.write_lines_column(tmp / "excluded.jsonl", snap.excluded_lines.column("line"))
        result.reused = _move_into_place(tmp, folder, set_hash)
        return result
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sweep_leftovers(exports_dir: Path) -> None:
    """Remove the temp folders of exports whose process is gone (killed mid-write)."""
    for path in exports_dir.glob(".tmp-*"):
        try:
            pid = int(path.name.rsplit("-", 2)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)


def _set_hash(config: ExportConfig, files: list[writers.FileSummary]) -> str:
    """sha256 over the config and every data file: the same hash means the same set, made the same way."""
    digest = hashlib.sha256(json.dumps(config.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8"))
    for f in files:
        digest.update(f"\n{f.name} {f.sha256}".encode())
    return digest.hexdigest()


def _move_into_place(tmp: Path, folder: Path, set_hash: str) -> bool:
    """Rename the finished folder into place; True when the same export was already there (kept as it is)."""
    if folder.exists():
        if _same_export(folder, tmp, set_hash):
            shutil.rmtree(tmp)
            return True
        old = folder.with_name(f".old-{folder.name}-{uuid.uuid4().hex[:8]}")
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        return False
    tmp.rename(folder)
    return False


def _same_export(folder: Path, tmp: Path, set_hash: str) -> bool:
    """The folder holds this very export: its manifest names the same hash (config and data files) and every
    file is there with the same size. Reads a few bytes, not the files (a manifest can list a million ids)."""
    try:
        with (folder / "manifest.json").open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if f'"hash": "{set_hash}"'.encode() not in head:
        return False
    return all(
        (folder / p.name).is_file() and (folder / p.name).stat().st_size == p.stat().st_size
        for p in tmp.iterdir()
    )


def _result(
    config: ExportConfig,
    snap: _Snapshot,
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


def _counts(snap: _Snapshot, result: ExportResult) -> dict[str, Any]:
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


def _manifest_text(config: ExportConfig, snap: _Snapshot, result: ExportResult) -> str:
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
        "counts": _counts(snap, result),
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


__all__ = [
    "ExportConfig",
    "ExportResult",
    "ExportPreview",
    "PreviewRow",
    "CategoryPlan",
    "export_training_set",
    "preview_export",
    "read_manifest",
]
