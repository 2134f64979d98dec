"""`workbench export` and `workbench exports`: options in, a summary table out, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.curation import set_status
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store.records import Selection


@pytest.fixture
def store_dir(tmp_path, write_jsonl, real_data) -> Path:
    store = Store.open(tmp_path / "store")
    records = [
        {
            "messages": [
                {"role": "user", "content": f"{cat} 问题 {i}: where is order {i}?"},
                {"role": "assistant", "content": f"answer {i}"},
            ],
            "category": cat,
        }
        for cat, n in (("退款", 30), ("intent", 8))
        for i in range(n)
    ]
    report = import_file(store, write_jsonl(records), dataset="badcases")
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    import_file(store, real_data / "alpaca_zh_demo.json", dataset="general")
    return tmp_path / "store"


def run(store_dir: Path, *args: str):
    return CliRunner().invoke(main, ["--store", str(store_dir), *args], catch_exceptions=False)


def test_export_prints_a_summary_table_and_writes_the_folder(store_dir):
    result = run(
        store_dir,
        "export",
        "--name",
        "cli",
        "--per-category",
        "20",
        "--upsample",
        "--val",
        "0.1",
        "--seed",
        "7",
        "--leakage-guard",
        "exact",
    )
    assert result.exit_code == 0, result.output
    for words in (
        "退款",
        "intent",
        "general data: 20.0% of all lines",
        "total",
        "left out",
        "wrote train.jsonl",
    ):
        assert words in result.output
    rows = [
        [cell.strip() for cell in row.split("│")[1:-1]] for row in result.output.splitlines() if "│" in row
    ]
    assert ["退款", "30", "20", "20", "10", "0", "18", "2", "0"] in rows  # 10 cut away, 2 held out
    assert ["intent", "8", "20", "8", "0", "0", "19", "1", "12"] in rows  # 7 records repeated to 19 lines
    folders = list((store_dir / "exports").glob("cli-*"))
    assert len(folders) == 1
    manifest = json.loads((folders[0] / "manifest.json").read_text(encoding="utf-8"))
    assert (
        manifest["seed"] == 7 and manifest["config"]["per_category"] == 20 and manifest["config"]["upsample"]
    )
    assert (
        manifest["counts"]["by_source"]["badcase"]["train"]
        + manifest["counts"]["by_source"]["badcase"]["val"]
        == 40
    )


def test_export_options_for_targets_shares_and_formats(store_dir):
    result = run(
        store_dir,
        "export",
        "--name",
        "t",
        "--target",
        "退款=12",
        "--target",
        "intent=5",
        "--format",
        "sharegpt",
        "--general-share",
        "0.25",
        "--leakage-guard",
        "exact",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["config"]["category_targets"] == {"intent": 5, "退款": 12}
    assert "records" not in summary and "train.sharegpt.json" in summary["files"]
    shares = run(
        store_dir,
        "export",
        "--name",
        "s",
        "--share",
        "退款=0.75",
        "--task-records",
        "20",
        "--categories",
        "退款,intent",
        "--leakage-guard",
        "exact",
        "--json",
    )
    by_category = {row["category"]: row for row in json.loads(shares.output)["counts"]["by_category"]}
    assert by_category["退款"]["target"] == 15 and by_category["intent"]["target"] == 5


def test_exports_lists_what_was_exported_and_says_when_a_folder_is_gone(store_dir):
    run(store_dir, "export", "--name", "first", "--leakage-guard", "exact")
    result = run(store_dir, "exports")
    assert result.exit_code == 0 and "first" in result.output and "messages" in result.output
    assert "(deleted)" not in result.output
    for folder in (store_dir / "exports").glob("first-*"):
        shutil.rmtree(folder)
    assert "(deleted)" in run(store_dir, "exports").output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--share", "退款"], "CATEGORY=VALUE"),
        (["--target", "intent=many"], "not a int"),
        (["--general-share", "0.7"], "between 0.0 and 0.5"),
        (["--datasets", "eval"], "eval records never enter training"),
    ],
)
def test_export_errors_are_one_clear_line(store_dir, args, words):
    result = run(store_dir, "export", "--name", "bad", *args)
    assert result.exit_code == 1
    assert words in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "name, words",
    [
        ("x" * 300, "the export name is too long: 300 characters"),
        ("intents\n", "the export name 'intents\\n' contains a control character (U+000A)"),
        ("../intents", "path separator"),
    ],
)
def test_an_export_name_that_cannot_be_a_folder_name_is_one_clear_line(store_dir, name, words):
    result = run(store_dir, "export", "--name", name, "--leakage-guard", "exact")
    assert result.exit_code == 1
    assert words in result.output and "Traceback" not in result.output and "OSError" not in result.output
    assert list((store_dir / "exports").iterdir()) == []
