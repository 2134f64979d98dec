"""Downloading the curated set from a page: the export's lines as messages JSONL, ShareGPT, Alpaca or Parquet bytes,
the same records and text as the export folder's files (issue 29 #11)."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from workbench import ingest
from workbench.curation import set_status
from workbench.errors import WorkbenchError
from workbench.export import ExportConfig, export_training_set
from workbench.export.download import download_curated_set, export_download
from workbench.store.records import Selection

from .conftest import chat


@pytest.fixture
def curated(store, write_jsonl):
    records = [
        chat(f"我要退款，订单 {n} 的饭洒了", "refund", category="退款", task_type="classification")
        for n in range(8)
    ] + [chat(f"Where is my order {n}?", "order_status", category="order") for n in range(4)]
    records.append(
        {"messages": [{"role": "system", "content": "你是客服"}, *chat("帮我取消", "cancel")["messages"]]}
    )
    ingest.import_file(store, write_jsonl(records, name="badcases.jsonl"))
    set_status(store, Selection(dataset="badcases"), "approved", "test")
    return store


def test_messages_download_is_the_export_train_then_val_lines(curated):
    config = ExportConfig(name="客服-sft", val=0.25)
    got = download_curated_set(curated, config, "messages")
    folder = export_training_set(curated, config).folder  # the same set: the folder is reused
    assert got.file_name == "客服-sft.jsonl" and got.mime == "application/jsonl"
    assert got.data == (folder / "train.jsonl").read_bytes() + (folder / "val.jsonl").read_bytes()
    assert got.records == 13 and "我要退款" in got.data.decode("utf-8")


@pytest.mark.parametrize("fmt", ["sharegpt", "alpaca"])
def test_sharegpt_and_alpaca_downloads_hold_what_the_export_writes_in_that_format(curated, fmt):
    written = export_training_set(curated, ExportConfig(name="set", format=fmt, val=0.25)).folder
    expected = [
        item
        for split in ("train", "val")
        for item in json.loads((written / f"{split}.{fmt}.json").read_text("utf-8"))
    ]
    got = download_curated_set(curated, ExportConfig(name="set", val=0.25), fmt)
    assert got.file_name == f"set.{fmt}.json"
    assert json.loads(got.data.decode("utf-8")) == expected and got.records == len(expected) == 13


def test_parquet_download_has_a_row_per_line_with_its_split_and_chinese_text_intact(curated):
    got = download_curated_set(curated, ExportConfig(name="set", val=0.25), "parquet")
    table = pq.read_table(io.BytesIO(got.data))
    assert got.file_name == "set.parquet" and table.num_rows == got.records == 13
    assert table.column_names == ["split", "id", "category", "source", "messages", "tools"]
    rows = table.to_pylist()
    assert {r["split"] for r in rows} == {"train", "val"}
    messages = [json.loads(r["messages"]) for r in rows]
    assert any(m[-1]["content"] == "refund" and m[0]["content"].startswith("我要退款") for m in messages)
    assert any((m[0]["role"], m[0]["content"]) == ("system", "你是客服") for m in messages)


def test_a_download_of_an_unknown_format_or_a_missing_export_says_what_to_do(curated, tmp_path):
    folder = export_training_set(curated, ExportConfig(name="set")).folder
    with pytest.raises(WorkbenchError, match="unknown download format 'csv'; use one of messages"):
        export_download(folder, "csv")
    with pytest.raises(WorkbenchError, match="missing: export again"):
        export_download(tmp_path, "messages")
