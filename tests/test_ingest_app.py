"""Importing from the browser: an uploaded file under its own name, pasted text, a badcase written in a form,
the import log and every rejected line as JSONL."""

from __future__ import annotations

import json

import pytest

from workbench import ingest, review
from workbench.errors import InputFileError, WorkbenchError
from workbench.review import ReviewFilter

from .conftest import chat


def test_an_upload_keeps_its_name_and_its_encoding_is_detected(store):
    data = (
        "messages,category\n" + '"[{""role"": ""user"", ""content"": ""我要退款""}, '
        '{""role"": ""assistant"", ""content"": ""refund""}]",退款\n'
    )
    report = ingest.import_upload(store, "客服.csv", data.encode("gb18030"), category="默认")
    assert (report.file_format, report.encoding, report.imported, report.rejected) == ("csv", "gb18030", 1, 0)
    row = ingest.recent_imports(store)[0]
    assert (row.id, row.file_name, row.dataset, row.imported) == (report.import_id, "客服.csv", "badcases", 1)
    page = review.load_queue(store, ReviewFilter(imports=(report.import_id,)))
    assert page.total == 1 and page.rows[0].category == "退款"


def test_an_upload_name_with_folders_is_cut_to_the_file_name(store):
    report = ingest.import_upload(store, "../../etc/x.jsonl", json.dumps(chat("hi", "hello")).encode())
    assert ingest.recent_imports(store)[0].file_name == "x.jsonl" and report.imported == 1


def test_rejected_lines_download_as_jsonl_with_line_reason_and_raw_text(store):
    text = "\n".join(
        [
            json.dumps(chat("where is my order?", "on its way")),
            "oops, not JSON",
            json.dumps(chat("退款", "refund"), ensure_ascii=False),
        ]
    )
    report = ingest.import_upload(store, "mixed.jsonl", text.encode())
    assert (report.imported, report.rejected) == (2, 1)
    lines = [json.loads(line) for line in ingest.rejects_jsonl(store, report.import_id).splitlines()]
    assert lines == [
        {"line": 2, "code": "invalid-json", "reason": lines[0]["reason"], "raw": "oops, not JSON"}
    ]
    assert "not valid JSON" in lines[0]["reason"]


def test_a_file_that_cannot_be_read_imports_nothing(store):
    with pytest.raises(InputFileError, match="^empty.jsonl: "):  # the upload's name, not a temp path
        ingest.import_upload(store, "empty.jsonl", b"")
    assert ingest.recent_imports(store) == []


def test_pasted_text_is_detected_as_jsonl_json_or_csv(store):
    jsonl = "\n".join(json.dumps(chat(f"问题 {n}", "答案"), ensure_ascii=False) for n in range(3))
    assert ingest.import_text(store, jsonl, category="faq").imported == 3
    array = json.dumps([chat("What is 2+2?", "4")])
    assert ingest.import_text(store, array).file_format == "json"
    csv = "instruction,output\nTranslate 你好,Hello\n"
    assert ingest.import_text(store, csv, dataset="general").file_format == "csv"
    assert [r.file_name for r in ingest.recent_imports(store)] == ["pasted"] * 3
    with pytest.raises(InputFileError, match="paste records first"):
        ingest.import_text(store, "  \n")


def test_the_badcase_form_keeps_the_bad_output_beside_the_right_answer(store):
    report = ingest.add_badcase(
        store,
        system="你是客服助手",
        user="我的外卖到哪了？",
        bad_output="refund",
        answer="delivery_status",
        category="意图",
        author="ann",
    )
    assert report.imported == 1
    record = review.open_record(store, review.load_queue(store, ReviewFilter()).ids[0]).record
    assert [m["role"] for m in record.messages] == ["system", "user", "assistant"]
    assert (record.bad_output, record.messages[-1]["content"], record.category) == (
        "refund",
        "delivery_status",
        "意图",
    )
    with pytest.raises(WorkbenchError, match="user's message"):
        ingest.add_badcase(store, user=" ", answer="x")


def test_the_review_link_of_an_import_round_trips_through_the_url():
    flt = ReviewFilter(imports=(3, 7))
    params = review.filter_to_params(flt)
    assert params == {"import": ["3", "7"]} and review.filter_from_params(params) == flt
    with pytest.raises(WorkbenchError, match="not an import number"):
        review.filter_from_params({"import": ["x"]})
