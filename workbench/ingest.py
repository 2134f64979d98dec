"""Importing files into the store, and checking a file without one.

An import lands whole or not at all: the records, every rejected line with its reason, and the
check results are written in one transaction, and the file itself is kept verbatim under the
store's `imports/` folder, so the original of every record stays at hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from . import checks, formats, readers, roles
from .checks import CheckContext, Issue
from .errors import InputFileError, WorkbenchError
from .processes import pid_exists
from .store import Store
from .store import imports as sql
from .store import issues as store_issues
from .store.connection import in_transaction
from .store.imports import Reject
from .store.records import DATASET_KINDS as DATASET_KINDS  # the kinds a dataset may be (Import page)
from .store.records import Selection, ensure_dataset

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


@dataclass
class ImportReport:
    file: str
    file_format: str
    encoding: str
    dataset: str
    import_id: int | None = None
    formats: dict[str, int] = field(default_factory=dict)
    imported: int = 0
    rejected: int = 0
    blank_lines: int = 0
    repaired: int = 0
    reject_counts: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)  # the first ones, for showing
    issue_counts: list[tuple[str, str, int]] = field(default_factory=list)  # (code, severity, records)
    earlier_import: tuple | None = None  # (id, file name, when) of an earlier import of the same bytes
    stored_file: str | None = None  # where the store keeps a copy of the file, relative to the store folder
    seconds: float = 0.0

    @property
    def detected_format(self) -> str:
        return ", ".join(f"{name} ({n})" for name, n in self.formats.items()) or "-"

    def as_dict(self) -> dict:
        """Plain JSON values (a background import keeps its reports in its job folder)."""
        value = asdict(self)
        value["rejects"] = [{**vars(r), "raw": r.raw[:_RAW_KEPT]} for r in self.rejects]
        return value

    @classmethod
    def from_dict(cls, value: dict) -> ImportReport:
        fields = dict(value)
        fields["rejects"] = [Reject(**r) for r in fields.get("rejects", [])]
        fields["issue_counts"] = [tuple(c) for c in fields.get("issue_counts", [])]
        fields["earlier_import"] = tuple(fields["earlier_import"]) if fields.get("earlier_import") else None
        return cls(**fields)


_RAW_KEPT = 2000  # characters of a rejected line a report keeps (the store keeps the whole line)


def import_file(
    store: Store,
    path: str | Path,
    *,
    dataset: str = "badcases",
    category: str | None = None,
    author: str | None = None,
    progress: Progress | None = None,
    keep_file: bool = True,
    name: str | None = None,
) -> ImportReport:
    """Import one file into `dataset`; records without a category get `category` when given. name: what the
    report and the import log call the file (an upload's own name; default: the file's name). The import
    row keeps `path` too, committed with the records, so whoever started it can ask the store afterwards
    whether it landed (`committed_imports`)."""
    roles.require(store, "import", author)
    started = time.perf_counter()
    info = readers.sniff(path)
    report = ImportReport(name or str(info.path), info.file_format, info.encoding, dataset)
    tell = progress or (lambda stage, done, total: None)
    if keep_file and store.root:
        _sweep_partial_copies(store)
    with ThreadPoolExecutor(1) as pool, store.connect() as con:
        sha256 = pool.submit(readers.sha256_of, info.path)  # hashing releases the GIL: runs beside DuckDB
        tell("reading", 0, info.size)
        lines = readers.scan_lines(info.path) if info.file_format == "jsonl" else None
        rejects = _stage(
            con, info, lines, tell
        )  # a temp table, outside the transaction: a failed fast path can fall back
        partial = None
        try:
            with in_transaction(con):
                partial = _import_staged(
                    con,
                    store,
                    info,
                    report,
                    rejects,
                    sha256.result(),
                    name or info.path.name,
                    dataset,
                    category,
                    author,
                    tell,
                    keep_file,
                    exact_lines=not (lines and lines.has_delimiter),
                )
        except BaseException:
            if partial:
                partial.unlink(missing_ok=True)
            raise
        finally:
            sql.drop_staging(con)
    if partial:  # the copy takes its final name only once the import is committed
        partial.replace(store.root / report.stored_file)
    report.seconds = time.perf_counter() - started
    tell("done", report.imported, report.imported)
    return report


UPLOAD_FORMATS = tuple(sorted({s.lstrip(".") for s in readers.EXTENSIONS}))  # what an upload may be


def import_upload(
    store: Store,
    name: str,
    data: bytes,
    *,
    dataset: str = "badcases",
    category: str | None = None,
    author: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a file given as bytes (a browser upload), under its original name: its suffix says its format
    (a name without one is detected from the content), and the import log and the kept copy carry the name."""
    label = upload_label(name)
    with tempfile.TemporaryDirectory(prefix="wb-upload-") as folder:
        path = Path(folder) / upload_name(name)
        path.write_bytes(data)
        try:
            return import_file(
                store, path, dataset=dataset, category=category, author=author, progress=progress, name=label
            )
        except InputFileError as exc:  # name the upload, not the temp folder it passed through
            raise InputFileError(str(exc).replace(str(path), label)) from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_NAME_BYTES = 150  # a kept file's name: room left for the store's prefix within a file system's 255 bytes


def upload_label(name: str) -> str:
    """What an upload is called in reports and the import log: its last part (a browser may send a path),
    control characters (a newline, NUL) as one space, never empty."""
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = _CONTROL.sub(" ", name.replace("\\", "/")).rsplit("/", 1)[-1].strip()
    return name if name.strip(".") else "upload"


def upload_name(name: str) -> str:
    """The file name an upload is kept under: its label, cut on characters to fit a file system when long,
    with a hash of the whole label before the extension (two long names that start alike stay apart)."""
    label = upload_label(name)
    if len(label.encode()) <= _NAME_BYTES:
        return label
    suffix = Path(label).suffix
    if len(suffix) > 12 or not suffix[1:].isascii() or not suffix[1:].isalnum():
        suffix = ""
    digest = hashlib.sha256(label.encode()).hexdigest()[:10]
    stem = label[: len(label) - len(suffix)].encode()[: _NAME_BYTES - len(suffix) - 11]
    return f"{stem.decode(errors='ignore').rstrip()}-{digest}{suffix}"


def committed_imports(store: Store, paths: list[Path]) -> dict[str, ImportReport]:
    """The imports committed from these files (by the path they were read from), as reports, by path."""
    found: dict[str, ImportReport] = {}
    with store.connect(read_only=True) as con:
        for row in sql.imports_of_files(con, [str(p) for p in paths]):
            path, import_id, name, file_format, encoding, dataset, formats, *counts, stored = row
            found[path] = ImportReport(
                name,
                file_format,
                encoding,
                dataset,
                import_id,
                json.loads(formats) if formats else {},
                *counts,
                reject_counts=sql.reject_counts(con, import_id),
                rejects=sql.rejects_of(con, import_id, limit=50),
                issue_counts=store_issues.issue_counts(con, Selection(import_id=import_id)),
                stored_file=stored,
            )
    return found


def import_text(
    store: Store,
    text: str,
    *,
    dataset: str = "badcases",
    category: str | None = None,
    author: str | None = None,
    name: str = "pasted",
) -> ImportReport:
    """Import pasted records in any supported text format (JSONL, a JSON array, CSV or TSV with a header),
    detected from the text itself, as an import named `name`."""
    if not text.strip():
        raise InputFileError(
            "nothing to import: paste records first (one JSON object a line, a JSON array, "
            "or CSV with a header line)"
        )
    return import_upload(store, name, text.encode("utf-8"), dataset=dataset, category=category, author=author)


def add_badcase(
    store: Store,
    *,
    user: str,
    answer: str,
    bad_output: str | None = None,
    system: str | None = None,
    category: str | None = None,
    dataset: str = "badcases",
    author: str | None = None,
) -> ImportReport:
    """Add one badcase written by hand (the question, what the model wrongly said, the right answer) through
    the importer, so it is checked like every imported record and its import is in the log."""
    roles.require(store, "import")
    if not user.strip():
        raise WorkbenchError("write the user's message: a badcase needs the question the model got wrong")
    messages = ([{"role": "system", "content": system}] if system and system.strip() else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
    ]
    record = {"messages": messages, "category": (category or "").strip() or None}
    if bad_output and bad_output.strip():
        record["bad_output"] = bad_output
    return import_upload(
        store,
        "badcase-form.jsonl",
        json.dumps(record, ensure_ascii=False).encode("utf-8"),
        dataset=dataset,
        category=record["category"],
        author=author,
    )


@dataclass(frozen=True)
class ImportRow:
    """One import in the log, as the Import page lists it."""

    id: int
    file_name: str
    dataset: str
    category: str | None
    started_at: object
    file_format: str | None
    encoding: str | None
    imported: int
    rejected: int
    author: str | None


def recent_imports(store: Store, limit: int = 50) -> list[ImportRow]:
    """The finished imports, newest first."""
    with store.connect(read_only=True) as con:
        return [ImportRow(*row) for row in sql.recent_imports(con, limit)]


def rejects_jsonl(store: Store, import_id: int) -> str:
    """Every rejected line of an import as JSONL (line, code, reason, raw text), for downloading."""
    with store.connect(read_only=True) as con:
        rejects = sql.rejects_of(con, import_id)
    return "".join(
        json.dumps({"line": r.line, "code": r.code, "reason": r.reason, "raw": r.raw}, ensure_ascii=False)
        + "\n"
        for r in rejects
    )


def _import_staged(
    con,
    store: Store,
    info: readers.FileInfo,
    report: ImportReport,
    rejects: list[Reject],
    sha256: str,
    file_name: str,
    dataset: str,
    category: str | None,
    author: str | None,
    tell: Progress,
    keep_file: bool,
    exact_lines: bool,
) -> Path | None:
    """Everything durable of an import, inside the caller's transaction; returns the file's copy under
    its temporary name, for the caller to rename once the transaction is committed."""
    report.earlier_import = sql.find_import_by_sha(con, sha256) if store.root else None
    ensure_dataset(con, dataset)
    import_id = sql.start_import(
        con,
        file_name=file_name,
        file_path=str(info.path),
        dataset=dataset,
        category=category,
        author=author,
    )
    report.import_id = import_id
    items, blank = sql.staged_line_count(con)
    tell("normalising", 0, items)
    id_base = sql.next_record_id_base(con)
    report.imported = sql.insert_records(
        con, source=sql.LINES, import_id=import_id, dataset=dataset, category=category, id_base=id_base
    )
    leftovers = sql.unimported_items(con, import_id, id_base)
    if leftovers and not exact_lines and info.duckdb_can_read and info.file_format == "jsonl":
        # DuckDB's line reader cuts a line at a \x01 byte: take the rejected lines' text from the file
        exact = readers.raw_lines(info, {line for _, line, _ in leftovers})
        leftovers = [(seq, line, exact.get(line, text)) for seq, line, text in leftovers]
    repaired, more_rejects, more_blank = _sort_leftovers(con, leftovers)
    if repaired:
        report.repaired = _insert_repaired(con, repaired, import_id, dataset, category, id_base)
        report.imported += report.repaired
    too_deep = _too_deep_for_python(con, import_id, id_base)
    report.imported -= len(too_deep)
    rejects += more_rejects + too_deep
    if not report.imported and not rejects:  # rolled back by the caller: no import of nothing in the log
        raise InputFileError(
            f"{info.path}: {_nothing_in(info, items)}, so nothing was imported; "
            "check that this is the file you meant"
        )
    sql.insert_rejects(con, import_id, rejects)
    report.rejected = len(rejects)
    report.blank_lines = blank + more_blank
    tell("checking", 0, report.imported)
    ctx = checks.context_for_store(con, store.models_dir if store.root else None)
    checks.run_checks(
        con, Selection(import_id=import_id), ctx, lambda n: tell("checking", n, report.imported)
    )
    report.formats = sql.record_formats(con, import_id)
    report.reject_counts = sql.reject_counts(con, import_id)
    report.rejects = sql.rejects_of(con, import_id, limit=50)
    report.issue_counts = store_issues.issue_counts(con, Selection(import_id=import_id))
    partial = _copy_partial(store, info.path, import_id) if keep_file and store.root else None
    report.stored_file = str(_final_name(partial).relative_to(store.root)) if partial else None
    sql.finish_import(
        con,
        import_id,
        sha256=sha256,
        size_bytes=info.size,
        encoding=info.encoding,
        file_format=info.file_format,
        record_formats=report.formats,
        imported=report.imported,
        rejected=report.rejected,
        blank_lines=report.blank_lines,
        stored_file=report.stored_file,
    )
    return partial


def _nothing_in(info: readers.FileInfo, lines: int) -> str:
    if info.size == 0:
        return "the file is empty"
    if info.file_format in ("csv", "tsv"):
        return "the file has a header row and no rows under it" if lines == 0 else "every row is empty"
    if info.file_format == "parquet":
        return "the Parquet file has no rows"
    return "the file holds only blank lines" if lines else "the file holds no records"


def _stage(
    con: duckdb.DuckDBPyConnection, info: readers.FileInfo, lines: readers.LineScan | None, tell: Progress
) -> list[Reject]:
    """Put every line of the file into the staging table; returns lines that could not even be decoded."""
    if info.file_format == "parquet":
        try:
            with readers.literal_path(info.path) as path:
                sql.stage_parquet(con, str(path))
        except duckdb.Error as exc:
            raise InputFileError(
                f"{info.path}: the Parquet file cannot be read ({_first_line(exc)})"
            ) from None
        return []
    if info.duckdb_can_read and lines is not None and not lines.lone_cr:
        try:
            with readers.literal_path(info.path) as path:
                sql.stage_jsonl(con, str(path))
            if sql.staged_rows(con) == lines.lines:
                return []
            # DuckDB drops a last line longer than its buffer without a word: read it in Python
        except duckdb.InvalidInputException:
            pass  # bytes that are not UTF-8 somewhere, or a line longer than DuckDB reads: line by line in Python
        except duckdb.NotImplementedException:
            pass  # a line longer than DuckDB's buffer, in the middle of the file ("does not support a full read")
    # other encodings, stray bytes that are not UTF-8, JSON arrays, CSV: line by line in Python
    rejects: list[Reject] = []
    sql.stage_empty(con)
    done = 0
    try:
        for batch in readers.batched(readers.python_reader(info)):
            sql.stage_batch(con, batch.seqs, batch.lines, batch.texts)
            rejects += batch.rejects
            done += len(batch.seqs) + len(batch.rejects)
            tell("reading", done, None)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{info.path}: not valid {info.encoding} ({exc.reason}); re-save the file as UTF-8"
        ) from None
    return rejects


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _sort_leftovers(
    con, leftovers: list[tuple[int, int, str]]
) -> tuple[list[tuple[int, int, str]], list[Reject], int]:
    """Split the items that did not import into curly-quote repairs, rejects with reasons, and blank lines."""
    repaired, rejects, blank = [], [], 0
    verdicts = sql.normaliser_verdicts(con, [item for item in leftovers if item[2].strip()])
    for seq, line, text in leftovers:
        if not text.strip():
            blank += 1
            continue
        if verdicts.get(seq) == "empty-messages":
            rejects.append(
                Reject(seq, line, text, "empty-messages", "the record has no messages: nothing to train on")
            )
            continue
        fixed = formats.repair_curly_quotes(text)
        if fixed is not None and verdicts.get(seq) == "unparsed":
            repaired.append((seq, line, fixed))
            continue
        code, reason = formats.diagnose(text)
        rejects.append(Reject(seq, line, text, code, reason))
    return repaired, rejects, blank


def _too_deep_for_python(con, import_id: int, id_base: int) -> list[Reject]:
    """DuckDB parses JSON of any depth; the tools and tool calls it kept are read by Python later on
    (checks, export, training), whose parser stops at about 1,000 levels: such records become rejects."""
    deep = {}
    for record_id, texts in sql.json_fields(con, import_id):
        for text in texts:
            try:
                formats.parse_json(text)
            except formats.JSONTooDeep as exc:
                deep[record_id] = formats.too_deep(exc)
                break
    if not deep:
        return []
    items = sql.unimport_records(con, sorted(deep), id_base)
    return [Reject(seq, line, text[: readers.REJECT_TEXT], *deep[id_base + seq]) for seq, line, text in items]


def _insert_repaired(
    con,
    repaired: list[tuple[int, int, str]],
    import_id: int,
    dataset: str,
    category: str | None,
    id_base: int,
) -> int:
    with sql.items_table(con, "wb_repaired", repaired) as source:
        n = sql.insert_records(
            con, source=source, import_id=import_id, dataset=dataset, category=category, id_base=id_base
        )
    note = "the line was JSON written with curly quotes; straightened on import (the imported file keeps the original)"
    sql.add_import_issue(con, import_id, [id_base + r[0] for r in repaired], "repaired-on-import", note)
    return n


# The copy of an imported file is written under a temporary name that says which process wrote it
# (".00002-data.jsonl.<pid>.partial") and renamed when the import commits, so a killed import leaves
# no file that looks like a kept original; the next import sweeps what such a process left.
_PARTIAL = re.compile(r"^\.(?P<name>\d{5}-.+)\.(?P<pid>\d+)\.partial$", re.DOTALL)


def _copy_partial(store: Store, path: Path, import_id: int) -> Path:
    folder = store.root / "imports"
    folder.mkdir(exist_ok=True)
    name = path.name
    if len(name.encode()) > 200:  # the prefix and suffix must still fit a file system's 255 bytes
        stem = name.encode()[: 200 - len(path.suffix.encode())].decode(errors="ignore")
        name = stem + path.suffix
    partial = folder / f".{import_id:05d}-{name}.{os.getpid()}.partial"
    shutil.copyfile(path, partial)
    return partial


def _final_name(partial: Path) -> Path:
    return partial.with_name(_PARTIAL.match(partial.name)["name"])


def _sweep_partial_copies(store: Store) -> None:
    """Copies left by imports whose process died: renamed when their import was committed, else deleted."""
    folder = store.root / "imports"
    strays = [
        p
        for p in folder.glob(".*.partial")
        if (m := _PARTIAL.match(p.name)) and not pid_exists(int(m["pid"]))
    ]
    if not strays:
        return
    with store.connect() as con:
        committed = sql.stored_files(con)
    for stray in strays:
        final = _final_name(stray)
        if str(final.relative_to(store.root)) in committed and not final.exists():
            stray.replace(final)  # killed between the commit and the rename
        else:
            stray.unlink(missing_ok=True)


# --- checking a file without a store ----------------------------------------------------------------


@dataclass
class CheckedRecord:
    index: int  # 0-based position among the file's records
    line: int | None
    issues: list[Issue]
    messages: list[dict] | None  # canonical messages; None when the line could not be read as a record
    record: dict | None  # the canonical record (badcase fields included) for --fix output

    @property
    def ok(self) -> bool:
        return not checks.has_errors(self.issues)

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "line": self.line,
            "ok": self.ok,
            "issues": [i.as_dict() for i in self.issues],
        }


def check_file(path: str | Path, ctx: CheckContext | None = None) -> Iterator[CheckedRecord]:
    """Every record of a file, in input order, with its issues (the file is read into a throwaway store)."""
    from .store.records import list_records

    store = Store.in_memory()
    report = import_file(store, path, keep_file=False)
    with store.connect() as con:
        if ctx is not None:
            checks.run_checks(con, Selection(), ctx)
        # the throwaway store starts empty, so a record's id is its item number (seq) in the file
        items: dict[int, tuple[str, object]] = {}
        for rec in _all_records(con, list_records):
            items[rec.id] = ("record", rec)
        for rej in sql.rejects_of(con, report.import_id):
            items[rej.seq] = ("reject", rej)
        issues_by_record: dict[int, list[Issue]] = {}
        for record_id, code, severity, turn, message, fix, _stage in store_issues.all_issues(con):
            if code == "repaired-on-import":  # in a file being checked, that line is still broken
                code, severity, fix = "curly-quote-json", "error", "straighten the quotes"
                message = "the line is JSON written with curly quotes “ ”: it does not parse as it is"
            issues_by_record.setdefault(record_id, []).append(Issue(code, severity, message, turn, fix))
    for index, seq in enumerate(sorted(items)):
        kind, item = items[seq]
        if kind == "reject":
            yield CheckedRecord(index, item.line, [_reject_issue(item)], None, None)
        else:
            yield CheckedRecord(
                index, item.line, issues_by_record.get(item.id, []), item.messages, item.to_json()
            )


def _all_records(con, list_records):
    offset = 0
    while batch := list_records(con, limit=10_000, offset=offset):
        yield from batch
        offset += len(batch)


def _reject_issue(rej: Reject) -> Issue:
    rule = checks.RULES.get(rej.code)
    return Issue(rej.code, rule.severity if rule else "error", rej.reason, None, None)


def fixed_records(
    checked: Iterator[CheckedRecord], ctx: CheckContext | None = None
) -> Iterator[tuple[CheckedRecord, dict | None, list[Issue]]]:
    """For `check --fix`: each record with every safe autofix applied (None for unreadable lines)."""
    for item in checked:
        if item.record is None:
            yield item, None, []
            continue
        messages, applied = checks.fix_record(item.messages, item.record.get("category"), ctx)
        applied = [i for i in item.issues if i.code == "curly-quote-json" and i.turn is None] + applied
        yield item, {**item.record, "messages": [formats.message_for_json(m) for m in messages]}, applied
