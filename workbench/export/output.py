"""Writing an export folder: every file into a temp folder, the set's hash, then one rename into place
(or the folder kept when the same export is already there); leftovers of killed exports swept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from ..processes import pid_exists
from ..store import Store
from . import writers
from .config import ExportConfig, Progress
from .manifest import manifest_text
from .report import render_report
from .result import ExportResult, build_result
from .snapshot import Snapshot


def write_export_folder(store: Store, config: ExportConfig, snap: Snapshot, tell: Progress) -> ExportResult:
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
        result = build_result(config, snap, set_hash, folder, files, conversion_notes)
        manifest = manifest_text(config, snap, result)
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
