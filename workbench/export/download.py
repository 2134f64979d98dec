"""The curated set as one downloadable file: an export's lines as messages JSONL, ShareGPT, Alpaca or Parquet bytes.

The bytes come from an export folder (written by export_training_set), converted by the export's own writers,
so a download holds exactly the records, order and text of the export it names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import WorkbenchError
from ..store import Store
from . import writers

if TYPE_CHECKING:
    from . import ExportConfig


@dataclass(frozen=True)
class DownloadFormat:
    label: str
    ending: str
    mime: str


DOWNLOAD_FORMATS = {
    "messages": DownloadFormat("messages JSONL", "jsonl", "application/jsonl"),
    "sharegpt": DownloadFormat("ShareGPT JSON (LLaMA-Factory)", "sharegpt.json", "application/json"),
    "alpaca": DownloadFormat("Alpaca JSON (LLaMA-Factory)", "alpaca.json", "application/json"),
    "parquet": DownloadFormat("Parquet", "parquet", "application/vnd.apache.parquet"),
}


def download_name(config: ExportConfig, fmt: str) -> str:
    """The file name of the curated set's download (known before the click that builds it)."""
    return f"{config.name}.{DOWNLOAD_FORMATS[fmt].ending}"


SPLITS = ("train", "val")


@dataclass
class Download:
    """One file to hand to a browser: its name, bytes and what it holds."""

    file_name: str
    data: bytes
    mime: str
    records: int
    lost: dict[str, int] = field(default_factory=dict)  # what the format could not hold: note -> records


def download_curated_set(store: Store, config: ExportConfig, fmt: str) -> Download:
    """Export the curated set with `config` (reusing the folder when the same set was exported before) and
    return it, train then val, as one file in `fmt`; named after the config's name, not the export's hash,
    so a page can name the file before the click that builds it."""
    from . import export_training_set

    download = export_download(export_training_set(store, config).folder, fmt)
    download.file_name = download_name(config, fmt)
    return download


def export_download(folder: str | Path, fmt: str, splits: tuple[str, ...] = SPLITS) -> Download:
    """The lines of export `folder` (its train then val split, or those named) as one file in `fmt`: messages
    JSONL (the lines as the export wrote them), ShareGPT or Alpaca JSON (converted as the export converts
    them), or Parquet (a row per line: split, id, category, messages and tools as JSON text)."""
    folder = Path(folder)
    if fmt not in DOWNLOAD_FORMATS:
        raise WorkbenchError(f"unknown download format {fmt!r}; use one of {', '.join(DOWNLOAD_FORMATS)}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise WorkbenchError(f"unknown split {', '.join(unknown) or '(none)'}; use train, val or both")
    lines: list[tuple[str, str]] = []
    for split in splits:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise WorkbenchError(f"{path} is missing: export again (workbench export, or the Train page)")
        lines += [(split, line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    ending, mime = DOWNLOAD_FORMATS[fmt].ending, DOWNLOAD_FORMATS[fmt].mime
    name = f"{folder.name}-{'-'.join(splits)}.{ending}" if splits != SPLITS else f"{folder.name}.{ending}"
    lost: dict[str, int] = {}
    if fmt == "messages":
        data = "".join(line + "\n" for _split, line in lines).encode("utf-8")
        count = len(lines)
    elif fmt == "parquet":
        data, count = _parquet(lines), len(lines)
    else:
        items, lost, _left_out = writers.convert_lines([line for _split, line in lines], fmt)
        data, count = writers.json_array_text(items).encode("utf-8"), len(items)
    return Download(name, data, mime, count, lost)


def _parquet(lines: list[tuple[str, str]]) -> bytes:
    records = [json.loads(line) for _split, line in lines]
    table = pa.table(
        {
            "split": pa.array([split for split, _line in lines], pa.string()),
            "id": pa.array([r.get("id") for r in records], pa.int64()),
            "category": pa.array([r.get("category") for r in records], pa.string()),
            "source": pa.array([r.get("source") for r in records], pa.string()),
            "messages": pa.array([writers.dumps(r.get("messages")) for r in records], pa.string()),
            "tools": pa.array(
                [writers.dumps(r["tools"]) if r.get("tools") is not None else None for r in records],
                pa.string(),
            ),
        }
    )
    out = BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
