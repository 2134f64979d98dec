"""Importing files: every record format, file type and encoding, rejects, blank lines, transactions."""

from __future__ import annotations

import csv
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import ingest
from workbench.errors import InputFileError
from workbench.store.imports import rejects_of
from workbench.store.records import Selection, list_records

from .conftest import chat


def records_of(store, **selection):
    with store.connect() as con:
        return list_records(con, Selection(**selection), limit=10_000)


def test_import_messages_jsonl_keeps_category_tags_and_bad_output(store, write_jsonl):
    path = write_jsonl(
        [
            chat(
                "Where is my order #123?",
                "delivery_status",
                category="intent",
                tags=["zh", "app"],
                source="app",
                bad_output="refund",
            ),
            chat("我要退款", "refund", category="intent", tags="zh, web"),
        ]
    )
    report = ingest.import_file(store, path)
    assert (report.imported, report.rejected, report.formats) == (2, 0, {"messages": 2})
    first, second = records_of(store)
    assert first.messages[0]["content"] == "Where is my order #123?"
    assert (first.category, first.tags, first.source, first.bad_output) == (
        "intent",
        ["zh", "app"],
        "app",
        "refund",
    )
    assert second.tags == ["zh", "web"] and second.messages[1]["content"] == "refund"
    assert (first.line, second.line) == (1, 2) and first.status == "new" and first.format == "messages"


def test_content_as_list_of_text_parts_is_joined_and_loss_weight_kept(store, write_jsonl):
    path = write_jsonl(
        [
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}],
                        "loss_weight": 0.0,
                    },
                    {"role": "assistant", "content": [{"type": "text", "value": "Hi!"}], "loss_weight": 1.0},
                ]
            }
        ]
    )
    ingest.import_file(store, path)
    (rec,) = records_of(store)
    assert [m["content"] for m in rec.messages] == ["Hello there", "Hi!"]
    assert [m["loss_weight"] for m in rec.messages] == [0.0, 1.0]


def test_string_content_that_looks_like_json_stays_a_string(store, write_jsonl):
    answer = '{"order_id": "A1", "qty": 2}'
    ingest.import_file(store, write_jsonl([chat("extract", answer), chat("list", "[1, 2]")]))
    assert [r.messages[1]["content"] for r in records_of(store)] == [answer, "[1, 2]"]


def test_sharegpt_with_tools_maps_roles_and_function_calls(store, write_jsonl):
    path = write_jsonl(
        [
            {
                "system": "You can call tools.",
                "tools": json.dumps([{"name": "get_weather", "parameters": {"type": "object"}}]),
                "conversations": [
                    {"from": "human", "value": "北京天气怎么样？"},
                    {
                        "from": "function_call",
                        "value": json.dumps(
                            {"name": "get_weather", "arguments": {"city": "北京"}}, ensure_ascii=False
                        ),
                    },
                    {"from": "observation", "value": '{"temp": 3}'},
                    {"from": "gpt", "value": "北京现在3度。"},
                ],
            }
        ]
    )
    report = ingest.import_file(store, path)
    assert report.formats == {"sharegpt": 1}
    (rec,) = records_of(store)
    assert [m["role"] for m in rec.messages] == ["system", "user", "assistant", "tool", "assistant"]
    call = json.loads(rec.messages[2]["tool_calls"])[0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "北京"}
    assert json.loads(rec.tools)[0]["name"] == "get_weather"
    assert report.issue_counts == []  # a tool call is an answer, not an empty one


def test_alpaca_with_system_and_history(store, write_jsonl):
    path = write_jsonl(
        [
            {
                "instruction": "Translate",
                "input": "你好",
                "output": "Hello",
                "system": "Be brief.",
                "history": [["hi", "hello"]],
            }
        ]
    )
    ingest.import_file(store, path)
    (rec,) = records_of(store)
    assert [(m["role"], m["content"]) for m in rec.messages] == [
        ("system", "Be brief."),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "Translate\n你好"),
        ("assistant", "Hello"),
    ]


def test_prompt_response_and_badcase_expected(store, write_jsonl):
    path = write_jsonl(
        [
            {"prompt": "Cancel order 7", "response": "confirm", "expected": "cancel", "category": "intent"},
            {"question": "2+2?", "answer": "4"},
            {"query": "退货", "model_output": "refund?", "expected": "return"},
            {"prompt": "no answer yet", "bad_output": "???"},
        ]
    )
    report = ingest.import_file(store, path)
    assert report.formats == {"prompt_response": 4}
    a, b, c, d = records_of(store)
    assert a.messages[-1]["content"] == "cancel" and a.bad_output == "confirm"
    assert [m["content"] for m in b.messages] == ["2+2?", "4"]
    assert c.messages[-1]["content"] == "return" and c.bad_output == "refund?"
    assert [m["role"] for m in d.messages] == ["user"] and d.bad_output == "???"


def test_every_line_is_accounted_for_rejects_keep_raw_text_and_reason(store, write_jsonl):
    lines = [
        json.dumps(chat("ok", "fine")),
        "",
        "not json at all",
        "[1, 2]",
        '"a string"',
        json.dumps({"foo": "bar"}),
        json.dumps({"messages": "oops"}),
        json.dumps({"messages": []}),
        "   ",
        json.dumps(chat("also ok", "good")),
    ]
    report = ingest.import_file(store, write_jsonl(lines))
    assert (report.imported, report.rejected, report.blank_lines) == (2, 6, 2)
    with store.connect() as con:
        rejected = {r.line: (r.code, r.raw) for r in rejects_of(con, report.import_id)}
    assert rejected == {
        3: ("invalid-json", "not json at all"),
        4: ("not-object", "[1, 2]"),
        5: ("not-object", '"a string"'),
        6: ("unknown-format", '{"foo": "bar"}'),
        7: ("messages-not-list", '{"messages": "oops"}'),
        8: ("empty-messages", '{"messages": []}'),
    }
    assert report.reject_counts["not-object"] == 2
    assert [r.line for r in records_of(store)] == [1, 10]


def test_a_record_is_empty_only_when_it_has_no_message_and_no_system(store, write_jsonl):
    report = ingest.import_file(
        store,
        write_jsonl(
            [
                {"messages": []},
                {"conversations": []},
                {"messages": [], "system": "Be brief."},
                {"conversations": [], "system": "简短回答。"},
            ]
        ),
    )
    assert (report.imported, report.rejected) == (2, 2)
    assert report.reject_counts == {"empty-messages": 2}
    assert [[m["role"] for m in r.messages] for r in records_of(store)] == [["system"], ["system"]]


def test_line_numbers_hold_across_a_file_read_in_parallel(store, write_jsonl):
    # 80 MB: DuckDB reads the file on several threads (in 32 MB buffers), and a line's number must
    # still be its place in the file; the padding is hex digests, text no check objects to
    n = 300_000
    bad = {1: "{", 150_001: "not json", 299_999: "[1]"}

    def line(i: int) -> str:
        pad = hashlib.sha512(str(i).encode()).hexdigest() + hashlib.sha256(str(i).encode()).hexdigest()
        return (
            f'{{"messages":[{{"role":"user","content":"q{i} {pad}"}},{{"role":"assistant","content":"a"}}]}}'
        )

    lines = [bad.get(i) or line(i) for i in range(1, n + 1)]
    lines[200_000 - 1] = ""  # a blank line
    report = ingest.import_file(store, write_jsonl(lines))
    assert (report.imported, report.rejected, report.blank_lines) == (n - 4, 3, 1)
    with store.connect() as con:
        assert {r.line: r.raw for r in rejects_of(con, report.import_id)} == bad
        numbered = con.execute(
            "SELECT line, split_part(messages[1].content, ' ', 1) FROM records "
            "WHERE line IN (2, 150002, 300000)"
        ).fetchall()
        assert (
            con.execute(
                "SELECT count(*) FROM records WHERE messages[1].content <> 'q' || line || ' ' || "
                "split_part(messages[1].content, ' ', 2)"
            ).fetchone()[0]
            == 0
        )
    assert sorted(numbered) == [(2, "q2"), (150_002, "q150002"), (300_000, "q300000")]


def test_reject_reason_says_where_the_json_breaks():
    from workbench.formats import diagnose

    assert diagnose('{"messages": [{"role": "user", "content": "cut') == (
        "invalid-json",
        "not valid JSON: Unterminated string starting at column 43",
    )
    assert diagnose('{"a": }') == ("invalid-json", "not valid JSON: Expecting value at column 7")


def test_curly_quoted_json_line_is_repaired_and_marked(store, write_jsonl):
    line = (
        "{“messages”: [{“role”: “user”, “content”: “他说“你好””}, {“role”: “assistant”, “content”: “好的”}]}"
    )
    report = ingest.import_file(store, write_jsonl([line]))
    assert (report.imported, report.repaired, report.rejected) == (1, 1, 0)
    (rec,) = records_of(store)
    assert rec.messages[0]["content"] == "他说“你好”"  # quotes inside the text are left alone
    assert ("repaired-on-import", "warning", 1) in report.issue_counts


@pytest.mark.parametrize(
    "encoding,newline", [("utf-8", "\n"), ("utf-8-sig", "\r\n"), ("gb18030", "\r\n"), ("utf-16", "\n")]
)
def test_chinese_jsonl_in_each_encoding(store, write_jsonl, encoding, newline):
    path = write_jsonl(
        [chat("帮我取消这个订单", "取消订单"), "", chat("发票怎么开？", "开发票")],
        encoding=encoding,
        newline=newline,
    )
    report = ingest.import_file(store, path)
    assert (report.imported, report.rejected, report.blank_lines) == (2, 0, 1)
    assert report.encoding == encoding
    assert [r.messages[0]["content"] for r in records_of(store)] == ["帮我取消这个订单", "发票怎么开？"]
    assert [r.line for r in records_of(store)] == [1, 3]


def test_a_line_with_bad_bytes_is_rejected_alone(store, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps(chat("hello", "hi")).encode()
    path.write_bytes(
        good + b"\n" + b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n' + good + b"\n"
    )
    report = ingest.import_file(store, path)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.rejects[0].code == "bad-encoding" and report.rejects[0].line == 2
    assert "caf\\xe9" in report.rejects[0].raw


def test_json_array_items_keep_their_start_lines_even_several_on_one_line(store, tmp_path):
    path = tmp_path / "data.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "1"},\n  {"instruction": "b", "output": "2"}, '
        '{"instruction": "c", "output": "3"},\n  {"instruction": "d", oops},\n'
        '  {"instruction": "e", "output": "5"}\n]\n',
        encoding="utf-8",
    )
    report = ingest.import_file(store, path)
    assert (report.file_format, report.imported, report.rejected) == ("json", 4, 1)
    assert [(r.line, r.messages[0]["content"]) for r in records_of(store)] == [
        (2, "a"),
        (3, "b"),
        (3, "c"),
        (5, "e"),
    ]
    assert report.rejects[0].line == 4 and "oops" in report.rejects[0].raw


def test_gb18030_csv_from_an_office_export(store, tmp_path):
    path = tmp_path / "badcases.csv"
    with path.open("w", encoding="gb18030", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "bad_output", "expected", "category"])
        writer.writerow(["我的快递到哪了", "退款", "查询物流", "物流"])
        writer.writerow(["", "", "", ""])
        writer.writerow(["多行\n问题", "x", "y", "其他"])
    report = ingest.import_file(store, path)
    assert (report.file_format, report.encoding, report.imported, report.blank_lines) == (
        "csv",
        "gb18030",
        2,
        1,
    )
    a, b = records_of(store)
    assert (a.messages[0]["content"], a.messages[1]["content"], a.bad_output, a.category) == (
        "我的快递到哪了",
        "查询物流",
        "退款",
        "物流",
    )
    assert b.messages[0]["content"] == "多行\n问题" and (a.line, b.line) == (2, 4)


def test_tsv_with_a_messages_column_holding_json(store, tmp_path):
    path = tmp_path / "x.tsv"
    msgs = json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    path.write_text(f"messages\tcategory\n{msgs}\tgreeting\n", encoding="utf-8")
    report = ingest.import_file(store, path)
    assert report.formats == {"messages": 1}
    assert records_of(store)[0].category == "greeting"


def test_parquet_with_nested_messages(store, tmp_path):
    path = tmp_path / "x.parquet"
    table = pa.table(
        {
            "messages": [
                [{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}],
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            ],
            "category": ["c1", "c2"],
        }
    )
    pq.write_table(table, path)
    report = ingest.import_file(store, path)
    assert (report.file_format, report.imported) == ("parquet", 2)
    assert [r.messages[1]["content"] for r in records_of(store)] == ["答", "a"]


def test_unreadable_input_raises_input_file_error(store, tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        ingest.import_file(store, tmp_path / "missing.jsonl")
    bad = tmp_path / "fake.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputFileError, match="not a Parquet file"):
        ingest.import_file(store, bad)


def test_failed_import_leaves_nothing_behind(store, write_jsonl, monkeypatch):
    path = write_jsonl([chat("a", "b"), "garbage"])

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest.checks, "run_checks", explode)
    with pytest.raises(RuntimeError):
        ingest.import_file(store, path)
    with store.connect() as con:
        counts = [
            con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("records", "rejects", "imports")
        ]
    assert counts == [0, 0, 0]
    assert not (store.root / "imports").exists() or not any((store.root / "imports").iterdir())


def test_imported_file_is_kept_verbatim_and_reimport_is_noticed(store, write_jsonl):
    path = write_jsonl([chat("a", "b")])
    first = ingest.import_file(store, path)
    second = ingest.import_file(store, path)
    with store.connect() as con:
        stored = con.execute("SELECT stored_file FROM imports WHERE id = ?", [first.import_id]).fetchone()[0]
    assert (store.root / stored).read_bytes() == path.read_bytes()
    assert first.earlier_import is None and second.earlier_import[0] == first.import_id


def test_ids_stay_unique_across_imports(store, write_jsonl):
    for _ in range(3):
        ingest.import_file(store, write_jsonl([chat("a", "b"), chat("c", "d")]))
    ids = [r.id for r in records_of(store)]
    assert len(ids) == len(set(ids)) == 6


def test_unknown_message_keys_are_reported_as_import_issues(store, write_jsonl):
    report = ingest.import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "user", "content": "hi", "emotion": "happy"},
                        {"role": "assistant", "content": "yo"},
                    ]
                },
                {
                    "messages": [
                        {"role": "user", "content": "plain"},
                        {"role": "assistant", "content": "record"},
                    ]
                },
            ]
        ),
    )
    assert ("unrecognized-key", "warning", 1) in report.issue_counts


def test_every_real_data_set_imports_with_every_record_accounted_for(store, real_data):
    expected = {
        "alpaca_en_demo.json": ("alpaca", 999),
        "alpaca_zh_demo.json": ("alpaca", 1000),
        "identity.json": ("alpaca", 91),
        "glaive_toolcall_en_demo.json": ("sharegpt", 300),
        "glaive_toolcall_zh_demo.json": ("sharegpt", 300),
        "v1_sft_demo.jsonl": ("messages", 500),
    }
    for name, (fmt, n) in expected.items():
        report = ingest.import_file(store, real_data / name, dataset="general")
        assert report.imported + report.rejected == n, name
        assert report.formats == {fmt: report.imported}, name
        assert report.rejected == 0, (name, report.rejects[:3])
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == sum(
            n for _, n in expected.values()
        )


def test_a_rejected_line_holding_the_line_readers_delimiter_keeps_all_its_text(store, tmp_path):
    path = tmp_path / "ctl.jsonl"
    good = json.dumps(chat("hello", "hi")).encode()
    path.write_bytes(good + b"\n" + b'{"messages": "cut\x01 here and more"}\n' + good + b"\n")
    report = ingest.import_file(store, path)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.rejects[0].raw == '{"messages": "cut\x01 here and more"}'
