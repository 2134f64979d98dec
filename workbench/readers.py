"""Reading input files: file type and encoding detection, and streaming every record out as JSON text.

UTF-8 JSONL (the common case, and the big one) and Parquet are read by DuckDB itself; other
encodings, JSON arrays and CSV/TSV stream through Python in batches into DuckDB, which holds the lines
within its memory limit and spills the rest to the store's .tmp folder.
Each reader yields (line, text, problem) for every item in file order: `line` is where the item
starts in the file, `text` one JSON record (None for a blank line), and `problem` a
(code, reason) pair instead of text for an item that cannot even be read (bad bytes, broken JSON).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputFileError
from .formats import JSONTooDeep, parse_json, too_deep
from .store.imports import Reject

SAMPLE_BYTES = 1 << 20
BATCH = 20_000
# The longest line (or JSON array item, or CSV row) a file may hold: 16 MiB is millions of tokens,
# far past any training length. A longer one is rejected as line-too-long, its first REJECT_TEXT
# characters kept as the reject's text.
MAX_LINE_BYTES = 16 << 20
REJECT_TEXT = 64 << 10

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# CSV cells under these names hold JSON (a list of messages, tags, ...) and are parsed as such.
JSON_COLUMNS = {"messages", "conversations", "history", "tags", "tools"}


@dataclass(frozen=True)
class FileInfo:
    path: Path
    file_format: str  # jsonl | json | csv | tsv | parquet
    encoding: str  # a Python codec name: utf-8, utf-8-sig, utf-16, gb18030
    size: int

    @property
    def duckdb_can_read(self) -> bool:
        return self.file_format == "parquet" or (
            self.file_format == "jsonl" and self.encoding in ("utf-8", "utf-8-sig")
        )


def sniff(path: str | Path) -> FileInfo:
    """Detect the file type (extension first, then content) and the text encoding."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder; give the data files inside it") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if head.startswith(b"PAR1"):
        return FileInfo(path, "parquet", "binary", size)
    if path.suffix.lower() in (".parquet", ".pq"):
        raise InputFileError(f"{path}: not a Parquet file (it does not start with PAR1); check the export")
    encoding = detect_encoding(head, complete=len(head) == size)
    kind = EXTENSIONS.get(path.suffix.lower())
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    if kind in (None, "json"):
        if text.startswith("["):
            kind = "json"
        elif text.startswith("{"):
            kind = "jsonl" if kind is None or _looks_like_jsonl(text) else "json"
        elif kind is None:
            kind = "tsv" if "\t" in text.split("\n", 1)[0] else "csv"
    return FileInfo(path, kind, encoding, size)


def _looks_like_jsonl(text: str) -> bool:
    first = text.split("\n", 1)[0].strip()
    try:
        parse_json(first)
    except ValueError:
        return False
    return True


def detect_encoding(head: bytes, complete: bool) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 when it decodes cleanly, else UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if bomless := _utf16_without_bom(head):
        return bomless
    sample = head if complete else _cut_at_line(head)
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        decoded = sample.decode("gb18030")
    except UnicodeDecodeError:
        return "utf-8"  # mostly UTF-8 with some bad bytes: those lines are rejected one by one
    return "gb18030" if re.search(r"[\u4e00-\u9fff]", decoded) else "utf-8"


def _utf16_without_bom(head: bytes) -> str | None:
    """utf-16-le or utf-16-be when the bytes look like UTF-16 text without a byte-order mark.

    Text in UTF-8 or GB18030 holds no NUL bytes; UTF-16 puts one beside every ASCII character (JSON's
    braces, quotes and keys), on the odd side for little-endian and the even side for big-endian.
    """
    sample = head[: 1 << 16]
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= len(sample) // 4 and other < zeros // 8:
            try:
                sample[: len(sample) // 2 * 2].decode(codec)
            except UnicodeDecodeError as exc:
                if exc.start < len(sample) - 4:  # a character cut at the sample's end is fine
                    continue
            return codec
    return None


def _cut_at_line(head: bytes) -> bytes:
    cut = head.rfind(b"\n")
    return head[: cut + 1] if cut > 0 else head[:-4]


@dataclass(frozen=True)
class LineScan:
    lone_cr: bool  # carriage returns not followed by \\n (old Mac line ends)
    has_delimiter: bool  # the \\x01 byte DuckDB's line reader splits on (see store.imports.stage_jsonl)
    lines: int  # physical lines, the last one counted whether or not it ends in \\n


def scan_lines(path: Path) -> LineScan:
    """What decides whether DuckDB's line reader reads this file exactly as Python would: a fast byte scan."""
    previous_cr = lone_cr = delimiter = False
    newlines, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            if not lone_cr:
                if previous_cr and not chunk.startswith(b"\n"):
                    lone_cr = True
                elif b"\r" in chunk and chunk.count(b"\r") - chunk.count(b"\r\n") - chunk.endswith(b"\r") > 0:
                    lone_cr = True
            delimiter = delimiter or b"\x01" in chunk
            previous_cr = chunk.endswith(b"\r")
    return LineScan(lone_cr, delimiter, newlines + (last != b"\n"))


@contextmanager
def literal_path(path: Path) -> Iterator[Path]:
    """The file under a name DuckDB's readers take as it is.

    DuckDB expands `*`, `?`, `[...]` and a leading `~` in a path as patterns, so `data?.jsonl` would
    also read `data1.jsonl` beside it. A link with a plain name, in a private folder of its own,
    points at exactly the named file.
    """
    folder = Path(tempfile.mkdtemp(prefix="workbench-input-"))
    try:
        link = folder / ("input" + "".join(c for c in path.suffix if c.isalnum() or c == "."))
        try:
            link.symlink_to(path.resolve())
        except OSError:
            if _PATTERN_CHARS.search(str(path)):
                raise InputFileError(
                    f"{path}: DuckDB would read the name as a pattern and no link to the file can be "
                    "made here; rename it without * ? [ ] { }"
                ) from None
            link = path
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_PATTERN_CHARS = re.compile(r"[*?\[\]{}~]")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- Python readers ---------------------------------------------------------------------------------

Item = tuple[int, "str | None", "tuple[str, str] | None"]


def read_lines(info: FileInfo) -> Iterator[Item]:
    """JSON Lines in any encoding: one record per line; undecodable or over-long lines become rejects."""
    encoding = _codec(info)
    if encoding.startswith("utf-16"):
        with info.path.open("r", encoding=encoding, newline="") as f:
            for number, (line, too_long) in enumerate(_limited_lines(f), 1):
                if number == 1:
                    line = line.lstrip("\ufeff")
                yield (number, line, _too_long()) if too_long else (number, _or_blank(line), None)
        return
    with info.path.open("rb") as f:
        for number, (raw, too_long) in enumerate(_limited_lines(f), 1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if too_long:
                yield number, raw.decode(encoding, errors="backslashreplace"), _too_long()
                continue
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield (
                    number,
                    raw.decode(encoding, errors="backslashreplace"),
                    (
                        "bad-encoding",
                        f"bytes {raw[exc.start : exc.start + 4]!r} at column {exc.start + 1} are not "
                        f"valid {info.encoding}; fix the line or re-save the file as UTF-8",
                    ),
                )
                continue
            yield number, _or_blank(text), None


def _limited_lines(f) -> Iterator[tuple]:
    """(line without its end, too long?) for each line of a text or binary file; a line longer than
    MAX_LINE_BYTES is never held whole: its first REJECT_TEXT characters stand for it."""
    cut = MAX_LINE_BYTES + 2  # room for the line end
    newline, cr = ("\n", "\r") if isinstance(f, io.TextIOBase) else (b"\n", b"\r")
    while part := f.readline(cut):
        if len(part) == cut and not part.endswith(newline):
            while (more := f.readline(1 << 20)) and not more.endswith(newline):
                pass
            yield part[:REJECT_TEXT], True
            continue
        line = part.rstrip(newline).rstrip(cr)
        yield (line[:REJECT_TEXT], True) if len(line) > MAX_LINE_BYTES else (line, False)


def _too_long() -> tuple[str, str]:
    return (
        "line-too-long",
        f"the line is longer than {MAX_LINE_BYTES >> 20} MiB, the longest a record may be "
        f"(its first {REJECT_TEXT >> 10} KiB are kept here); split or shorten the record",
    )


def _codec(info: FileInfo) -> str:
    """The codec to read lines with: a UTF-8 BOM is taken off by hand, UTF-16's by the codec."""
    return "utf-8" if info.encoding == "utf-8-sig" else info.encoding


def _or_blank(text: str) -> str | None:
    return text if text.strip() else None


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")
_RESYNC = re.compile(r"\}\s*,\s*(?=\{)")
_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def read_json_stream(info: FileInfo) -> Iterator[Item]:
    """A JSON array of records (or concatenated JSON objects), streamed item by item.

    Each item's line is the line it starts on. An item that does not parse is rejected with its
    text and the reader picks up again at the next `}, {` boundary.
    """
    encoding = _codec(info)
    with info.path.open("r", encoding=encoding, errors="strict", newline="") as f:
        reader = _Buffer(f)
        reader.skip_ws()
        if reader.peek() == "\ufeff":
            reader.pos += 1
            reader.skip_ws()
        in_array = reader.peek() == "["
        if in_array:
            reader.pos += 1
        while True:
            reader.skip_ws()
            ch = reader.peek()
            if ch == "":
                if in_array:
                    yield (
                        reader.line,
                        "",
                        ("invalid-json", "the JSON array is not closed with ]: the file looks cut off"),
                    )
                return
            if in_array and ch == "]":
                return
            if in_array and ch == ",":
                reader.pos += 1
                continue
            start_line = reader.line
            try:
                text = reader.decode_item()
            except JSONTooDeep as exc:
                yield start_line, reader.skip_nested_item()[:REJECT_TEXT], too_deep(exc)
                continue
            except _ItemTooLong:
                yield start_line, reader.skip_nested_item()[:REJECT_TEXT], _too_long()
                continue
            except ValueError as exc:
                yield start_line, reader.skip_bad_item(), ("invalid-json", f"not valid JSON: {exc}")
                continue
            yield start_line, text, None


class _ItemTooLong(Exception):
    pass


class _Buffer:
    """A growing text window over a file, tracking the line number of its read position."""

    def __init__(self, f: io.TextIOBase, chunk: int = 1 << 20):
        self.f, self.chunk = f, chunk
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        more = self.f.read(self.chunk)
        if not more:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + more
        self.pos = 0
        return True

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str:
        while self.pos >= len(self.buf):
            if not self._fill():
                return ""
        return self.buf[self.pos]

    def skip_ws(self) -> None:
        while True:
            end = _WS.match(self.buf, self.pos).end()
            self._advance(end)
            if end < len(self.buf) or not self._fill():
                return

    def decode_item(self) -> str:
        while True:
            try:
                _, end = _DECODER.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise JSONTooDeep(
                    f"nested more than about {sys.getrecursionlimit():,} levels deep", "", 0
                ) from None
            except json.JSONDecodeError as exc:
                # The item may only be cut by the end of the window: read on before calling it bad.
                if len(self.buf) - self.pos > MAX_LINE_BYTES:
                    raise _ItemTooLong from None
                if not self.eof and self._fill():
                    continue
                raise ValueError(
                    f"{exc.msg} (line {self.line + self.buf.count(chr(10), self.pos, exc.pos)})"
                ) from None
            if end - self.pos > MAX_LINE_BYTES:
                raise _ItemTooLong
            text = self.buf[self.pos : end]
            self._advance(end)
            return text

    def skip_nested_item(self) -> str:
        """Skip one item that is too deep or too long for the decoder, by counting brackets outside strings."""
        depth, scanned = 0, self.pos
        while True:
            for token in _BRACKET_OR_STRING.finditer(self.buf, scanned):
                if token.end() == len(self.buf) and token[0][0] == '"' and not self.eof:
                    break  # a string cut by the end of the window: read on
                scanned = token.end()
                char = token[0]
                if char in "[{":
                    depth += 1
                elif char in "]}":
                    depth -= 1
                    if depth == 0:
                        raw = self.buf[self.pos : scanned]
                        self._advance(scanned)
                        return raw
            else:
                scanned = len(self.buf)
            start = self.pos
            if not self._fill():
                return self.skip_bad_item()
            scanned -= start  # _fill() moved the window's start to the read position

    def skip_bad_item(self) -> str:
        while True:
            match = _RESYNC.search(self.buf, self.pos)
            if match or not self._fill():
                break
        end = match.start() + 1 if match else len(self.buf)
        if not match:
            end = max(self.buf.rfind("]"), self.pos + 1) if self.eof else len(self.buf)
        raw = self.buf[self.pos : end]
        self._advance(end)
        return raw


def read_csv_rows(info: FileInfo) -> Iterator[Item]:
    """CSV/TSV with a header row: each row becomes a JSON object of its non-empty cells."""
    encoding = "utf-8-sig" if info.encoding in ("utf-8", "utf-8-sig") else info.encoding
    csv.field_size_limit(
        max(csv.field_size_limit(), MAX_LINE_BYTES)
    )  # the default, 128 KiB, would stop a long answer
    with info.path.open("r", encoding=encoding, errors="strict", newline="") as f:
        sample = f.read(64 << 10)
        f.seek(0)
        delimiter = "\t" if info.file_format == "tsv" else _sniff_delimiter(sample)
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{info.path}: the header is not valid {info.encoding} ({exc.reason})"
            ) from None
        names = [h.strip().lstrip("\ufeff") for h in header]
        if not any(names):
            raise InputFileError(
                f"{info.path}: the first row must name the columns (messages, prompt, response, ...)"
            )
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                code = "bad-encoding" if isinstance(exc, UnicodeDecodeError) else "invalid-json"
                yield start, "", (code, f"the rest of the file from here cannot be read as CSV: {exc}")
                return
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                yield line, None, None
                continue
            record = {}
            for name, cell in zip(names, row, strict=False):
                if name and cell != "":
                    record[name] = _cell_value(name, cell)
            if len(row) > len(names):
                record["_extra_cells"] = row[len(names) :]
            yield line, json.dumps(record, ensure_ascii=False), None


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _cell_value(name: str, cell: str):
    if name.lower() in JSON_COLUMNS and cell.strip()[:1] in ("[", "{", '"'):
        try:
            return parse_json(cell)
        except ValueError:
            return cell
    return cell


def python_reader(info: FileInfo) -> Iterator[Item]:
    if info.file_format == "jsonl":
        return read_lines(info)
    if info.file_format == "json":
        return read_json_stream(info)
    if info.file_format in ("csv", "tsv"):
        return read_csv_rows(info)
    raise InputFileError(f"{info.path}: {info.file_format} files are read by DuckDB, not line by line")


@dataclass
class Batch:
    seqs: list[int]
    lines: list[int]
    texts: list[str | None]
    rejects: list[Reject]


def batched(items: Iterator[Item], size: int = BATCH) -> Iterator[Batch]:
    """Number the items (seq) and group them: readable ones to stage, unreadable ones as rejects."""
    batch = Batch([], [], [], [])
    for seq, (line, text, problem) in enumerate(items, 1):
        if problem:
            batch.rejects.append(Reject(seq, line, text or "", *problem))
        else:
            batch.seqs.append(seq)
            batch.lines.append(line)
            batch.texts.append(text)
        if len(batch.seqs) + len(batch.rejects) >= size:
            yield batch
            batch = Batch([], [], [], [])
    if batch.seqs or batch.rejects:
        yield batch


def raw_lines(info: FileInfo, wanted: set[int]) -> dict[int, str]:
    """The exact text of some physical lines (for rejects whose staged text may be cut short).

    Counts newlines chunk by chunk and splits only the chunks that hold a wanted line.
    """
    found: dict[int, str] = {}
    if not wanted:
        return found
    encoding = _codec(info)
    ordered = sorted(wanted)
    next_wanted = 0
    first_line = 1  # number of the first line that starts in `pending`
    pending = b""
    with info.path.open("rb") as f:
        while next_wanted < len(ordered):
            chunk = f.read(8 << 20)
            data = pending + chunk
            complete = data.count(b"\n") if chunk else data.count(b"\n") + 1
            last_line = first_line + complete - 1  # lines wholly inside `data`
            if ordered[next_wanted] <= last_line:
                lines = data.split(b"\n")
                for number in range(first_line, last_line + 1):
                    if next_wanted < len(ordered) and number == ordered[next_wanted]:
                        raw = lines[number - first_line].rstrip(b"\r")
                        text = raw.decode(encoding, errors="backslashreplace")
                        found[number] = text.lstrip("\ufeff") if number == 1 else text
                        next_wanted += 1
            if not chunk:
                break
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            first_line = last_line + 1
    return found
