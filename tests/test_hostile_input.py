"""Hostile files and bad luck: every line accounted for, no file read that was not named, no traceback.

Each test here stands for one way an import used to lose, misattribute or half-write records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import ingest, readers
from workbench.errors import InputFileError
from workbench.store import Store
from workbench.store import imports as store_imports

from .conftest import chat
from .test_cli import run


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _records(n: int, prefix: str = "q") -> list[dict]:
    return [chat(f"{prefix} {i}", "ok") for i in range(n)]


def _count(store: Store, sql: str) -> int:
    with store.connect() as con:
        return con.execute(sql).fetchone()[0]


# --- 1. a file name is a name, never a pattern ------------------------------------------------------


@pytest.mark.parametrize(
    "name, decoy",
    [
        ("data?.jsonl", "data1.jsonl"),
        ("star*.jsonl", "starXYZ.jsonl"),
        ("[ab].jsonl", "a.jsonl"),
        ("订单{1,2}.jsonl", "订单1.jsonl"),
    ],
)
def test_a_name_with_pattern_characters_imports_only_that_file(store, tmp_path, name, decoy):
    _write(tmp_path / decoy, _records(100, "decoy"))
    target = _write(tmp_path / name, _records(2))
    report = ingest.import_file(store, target)
    assert report.imported == 2
    assert _count(store, "SELECT count(*) FROM records") == 2
    assert [c.line for c in ingest.check_file(target)] == [1, 2]


def test_a_parquet_name_with_a_star_reads_only_that_file(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, n in (("x*.parquet", 3), ("xyz.parquet", 50)):
        pq.write_table(
            pa.table({"prompt": [f"问题 {i}" for i in range(n)], "response": ["答"] * n}), tmp_path / name
        )
    assert ingest.import_file(store, tmp_path / "x*.parquet").imported == 3


NAME_CHARS = st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stem=st.text(NAME_CHARS, min_size=1, max_size=40).filter(
        lambda s: s not in (".", "..") and len(s.encode()) < 200
    )
)
def test_any_file_name_imports_exactly_that_file(tmp_path_factory, stem):
    folder = tmp_path_factory.mktemp("names")
    _write(folder / "decoy.jsonl", _records(5, "decoy"))
    _write(folder / "".join("1" if c in "?*[]{}" else c for c in stem + "x.jsonl"), _records(3, "decoy"))
    target = folder / f"{stem}.jsonl"
    if target.exists():  # the stem itself collides with a decoy's name
        return
    _write(target, _records(2))
    store = Store.in_memory()
    assert ingest.import_file(store, target, keep_file=False).imported == 2
    assert _count(store, "SELECT count(*) FROM records") == 2


# --- 2. a line of any length is imported or rejected with its line number ---------------------------


@pytest.fixture
def small_limits(monkeypatch):
    """DuckDB's line reader and ours, lowered so that a few kilobytes make a line "too long"."""
    monkeypatch.setattr(store_imports, "LINE_READER_LIMITS", {"max_line_size": 1000, "buffer_size": 2000})
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 5000)


@pytest.mark.parametrize("where", ["last", "middle"])
def test_a_line_longer_than_the_limit_is_rejected_with_its_number(store, tmp_path, small_limits, where):
    huge = chat("x" * 6000, "y")
    records = _records(2) + [huge] if where == "last" else [chat("a", "b"), huge, chat("c", "d")]
    path = _write(tmp_path / "big.jsonl", records)
    report = ingest.import_file(store, path)
    line = 3 if where == "last" else 2
    assert (report.imported, report.rejected) == (2, 1)
    assert [(r.line, r.code) for r in report.rejects] == [(line, "line-too-long")]
    assert "split or shorten the record" in report.rejects[0].reason
    checked = list(ingest.check_file(path))
    assert [(c.line, [i.code for i in c.issues]) for c in checked if c.issues] == [(line, ["line-too-long"])]


def test_a_line_longer_than_duckdb_reads_but_within_ours_is_imported(store, tmp_path, small_limits):
    path = _write(tmp_path / "long.jsonl", [chat("a", "b"), chat("长" * 1500, "ok"), chat("c", "d")])
    report = ingest.import_file(store, path)
    assert (report.imported, report.rejected) == (3, 0)
    assert _count(store, "SELECT max(length(messages[1].content)) FROM records") == 1500


def test_long_items_in_json_arrays_and_csv_cells(store, tmp_path, small_limits):
    array = tmp_path / "big.json"
    array.write_text(json.dumps([chat("a", "b"), chat("x" * 6000, "y"), chat("c", "d")]), encoding="utf-8")
    report = ingest.import_file(store, array)
    assert (report.imported, [r.code for r in report.rejects]) == (2, ["line-too-long"])


def test_a_csv_cell_past_the_csv_modules_own_limit_is_read(store, tmp_path):
    table = tmp_path / "long.csv"  # the csv module stops at 128 KiB cells by default
    table.write_text("prompt,response\nhi," + "好" * 200_000 + "\nbye,ok\n", encoding="utf-8")
    assert ingest.import_file(store, table).imported == 2


# --- 3. deep nesting is one rejected line, never a rolled-back import ------------------------------

DEEP = "[" * 10_000 + "]" * 10_000


def test_a_line_nested_ten_thousand_deep_is_one_reject(store, tmp_path):
    path = tmp_path / "deep.jsonl"
    ok = json.dumps(chat("你好", "hi"))
    tool = (
        '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "", "tool_calls": '
        + DEEP
        + "}]}"
    )
    path.write_text("\n".join([ok, DEEP, tool, ok]) + "\n", encoding="utf-8")
    report = ingest.import_file(store, path)
    assert report.imported == 2
    assert sorted((r.line, r.code) for r in report.rejects) == [(2, "too-deep"), (3, "too-deep")]
    assert _count(store, "SELECT count(*) FROM records") == 2
    checked = list(ingest.check_file(path))
    assert [(c.line, c.ok) for c in checked] == [(1, True), (2, False), (3, False), (4, True)]


def test_deep_items_in_a_json_array_do_not_swallow_their_neighbours(store, tmp_path):
    path = tmp_path / "deep.json"
    items = [
        json.dumps(chat("a", "b")),
        '{"messages": [{"role": "user", "content": ' + DEEP + '}, {"x": 1}]}',
        json.dumps(chat("c", "d")),
    ]
    path.write_text("[" + ",\n".join(items) + "]", encoding="utf-8")
    report = ingest.import_file(store, path)
    assert (report.imported, [(r.line, r.code) for r in report.rejects]) == (2, [(2, "too-deep")])


# --- 5. the kept copy of a file lands atomically ----------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_failed_import_leaves_no_copy_and_the_next_gets_a_clean_folder(store, tmp_path, monkeypatch):
    path = _write(tmp_path / "big.jsonl", _records(3))

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(ingest.checks, "run_checks", boom)
    with pytest.raises(RuntimeError):
        ingest.import_file(store, path)
    monkeypatch.undo()
    assert not list(store.root.glob("imports/*")) and not list(store.root.glob("imports/.*"))
    (store.root / "imports").mkdir(exist_ok=True)
    # a copy left by an import whose process was killed before its commit
    (store.root / "imports" / f".00001-big.jsonl.{_dead_pid()}.partial").write_text("half a file")
    report = ingest.import_file(store, _write(tmp_path / "other.jsonl", _records(2)))
    assert sorted(p.name for p in (store.root / "imports").iterdir()) == [
        f"{report.import_id:05d}-other.jsonl"
    ]


def test_a_copy_killed_between_commit_and_rename_is_finished_by_the_next_import(store, tmp_path, monkeypatch):
    path = _write(tmp_path / "data.jsonl", _records(3))

    def killed(self, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest.import_file(store, path)
    monkeypatch.undo()
    [partial] = (store.root / "imports").iterdir()
    partial.rename(partial.with_name(partial.name.replace(f".{_pid()}.", f".{_dead_pid()}.")))
    ingest.import_file(store, _write(tmp_path / "more.jsonl", _records(1)))
    kept = sorted(p.name for p in (store.root / "imports").iterdir())
    assert kept == ["00001-data.jsonl", "00002-more.jsonl"]
    assert (store.root / "imports" / "00001-data.jsonl").read_bytes() == path.read_bytes()


def _pid() -> int:
    import os

    return os.getpid()


# --- 6. nothing importable is said, and is not a success -------------------------------------------


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("empty.jsonl", "", "the file is empty"),
        ("blank.jsonl", "\n  \n\n", "only blank lines"),
        ("header.csv", "prompt,response\n", "header row and no rows"),
    ],
)
def test_a_file_with_nothing_to_import_is_refused_and_leaves_no_import(store, tmp_path, name, content, says):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=says):
        ingest.import_file(store, path)
    assert _count(store, "SELECT count(*) FROM imports") == 0
    result = run("import", path, store=store.root)
    assert result.returncode == 2 and says in result.stderr


def test_import_exits_non_zero_when_every_line_is_rejected(store, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("oops\n{not json\n", encoding="utf-8")
    result = run("import", path, store=store.root)
    assert result.returncode == 1
    assert "nothing imported from" in result.stderr and "workbench rejects 1" in result.stderr
    assert _count(store, "SELECT count(*) FROM rejects") == 2  # the rejects are kept to look at


# --- 7. UTF-16 without a byte-order mark ------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_detected(store, tmp_path, codec):
    path = tmp_path / "u16.jsonl"
    text = "".join(
        json.dumps(chat(f"我的订单 {i} 到哪了？", "track_order"), ensure_ascii=False) + "\n"
        for i in range(20)
    )
    path.write_bytes(text.encode(codec))
    report = ingest.import_file(store, path)
    assert (report.encoding, report.imported, report.rejected) == (codec, 20, 0)
    assert _count(store, "SELECT count(*) FROM records WHERE messages[1].content LIKE '我的订单%'") == 20


def test_utf8_and_gb18030_are_not_taken_for_utf16():
    text = json.dumps(chat("退款", "refund"), ensure_ascii=False) + "\n"
    for codec in ("utf-8", "gb18030"):
        assert readers.detect_encoding(text.encode(codec), complete=True) == codec


# --- 9. check's summary counts records -------------------------------------------------------------


def test_check_summary_counts_records_not_issues(tmp_path):
    path = _write(tmp_path / "ctl.jsonl", [chat("订单\x07到哪了", "o\x07k"), chat("fine", "ok")])
    result = run("check", path)
    row = next(line for line in result.stdout.splitlines() if "control-char" in line)
    assert row.split("│")[3].strip() == "1", result.stdout
