"""Production logs in: OpenAI chat-completions request/response lines with feedback, into badcases Review filters."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import ingest, review
from workbench.review import ReviewFilter
from workbench.stats import store_summary
from workbench.store import Store
from workbench.store.records import Selection, list_records

SYSTEM = "你是售后客服。"


def completion(text: str) -> dict:
    """A chat-completions response as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    }


LOG = [
    # 1: request/response with a thumbs down and a correction (Chinese)
    {
        "request": {
            "model": "qwen2.5-7b-instruct",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "订单没到，能退款吗？"},
            ],
        },
        "response": completion("请提供订单号。"),
        "feedback": {"thumbs_down": True, "comment": "没有回答退款"},
        "correction": "未发货的订单可以在“我的订单”里直接申请退款。",
    },
    # 2: top-level messages and choices, Helicone's boolean rating
    {
        "messages": [{"role": "user", "content": "Where is my order #123?"}],
        "choices": [{"message": {"role": "assistant", "content": "Your order was cancelled."}}],
        "rating": False,
    },
    # 3: a plain-string response, LangSmith feedback (a list: the first entry is read) with a correction object
    {
        "messages": [{"role": "user", "content": "How do I reset my password?"}],
        "response": "Click 'Forgot password'.",
        "feedback": [
            {
                "key": "user_score",
                "score": 0.4,
                "comment": "incomplete",
                "correction": {"content": "Use the link in Settings → Security."},
            }
        ],
    },
    # 4: content as text parts, Langfuse's BOOLEAN score
    {
        "request": {"messages": [{"role": "user", "content": [{"type": "text", "text": "发票怎么开？"}]}]},
        "response": completion("不能开发票。"),
        "scores": [{"name": "user-feedback", "value": 0, "dataType": "BOOLEAN", "comment": "错了"}],
    },
    # 5: a thumbs up (ChatGPT export's word) and a 1-5 rating as a score
    {
        "request": {"messages": [{"role": "user", "content": "你好"}]},
        "response": completion("您好，有什么可以帮您？"),
        "thumb": "thumbsUp",
        "score": 5,
    },
]


def imported(store, write_jsonl, lines):
    report = ingest.import_file(store, write_jsonl(lines, name="prod-logs.jsonl"))
    with store.connect() as con:
        return report, {r.line: r for r in list_records(con, Selection(), limit=100)}


def test_log_lines_become_badcases_with_bad_output_fix_and_feedback(store, write_jsonl):
    report, by_line = imported(store, write_jsonl, LOG)
    assert (report.imported, report.rejected, report.formats) == (5, 0, {"openai_log": 5})

    first = by_line[1]
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert (
        first.messages[2]["content"] == "未发货的订单可以在“我的订单”里直接申请退款。"
    )  # the correction is the fix
    assert first.bad_output == "请提供订单号。"  # the response is what the model wrongly said
    assert (first.feedback, first.feedback_score, first.feedback_comment) == ("down", None, "没有回答退款")

    second = by_line[2]
    assert [m["role"] for m in second.messages] == ["user"]  # no correction: a person writes the answer
    assert (second.bad_output, second.feedback) == ("Your order was cancelled.", "down")

    third = by_line[3]
    assert third.messages[-1] == {
        **third.messages[-1],
        "role": "assistant",
        "content": "Use the link in Settings → Security.",
    }
    assert (third.bad_output, third.feedback, third.feedback_score) == ("Click 'Forgot password'.", None, 0.4)

    fourth = by_line[4]
    assert fourth.messages[0]["content"] == "发票怎么开？"
    assert (fourth.bad_output, fourth.feedback, fourth.feedback_score, fourth.feedback_comment) == (
        "不能开发票。",
        "down",
        0.0,
        "错了",
    )
    # a thumb up without a correction: the logged answer was good, so it is the answer, not a bad output
    good = by_line[5]
    assert (good.feedback, good.feedback_score, good.bad_output) == ("up", 5.0, None)
    assert (
        good.messages[-1]["role"] == "assistant" and good.messages[-1]["content"] == "您好，有什么可以帮您？"
    )
    assert review.feedback_line(first) == "Feedback: thumbs down · “没有回答退款”"


def test_review_filters_on_thumbs_and_score_range(store, write_jsonl):
    _, by_line = imported(store, write_jsonl, [*LOG, {"messages": [{"role": "user", "content": "无反馈"}]}])
    line_of = {r.id: line for line, r in by_line.items()}

    def lines(**fields) -> list[int]:
        page = review.load_queue(store, ReviewFilter(**fields), sort="oldest")
        assert page.total == len(page.rows)
        return [line_of[row.id] for row in page.rows]

    assert lines(feedback="down") == [1, 2, 4]
    assert lines(feedback="up") == [5]
    assert lines(feedback="none") == [6]
    assert lines(feedback="any") == [1, 2, 3, 4, 5]
    assert lines(score_min=0.0, score_max=1.0) == [3, 4]
    assert lines(score_min=1.0) == [5]
    assert lines(feedback="down", text="退款") == [1]
    # `workbench stats` counts them: thumb, records, mean score
    assert store_summary(store).feedback == [("down", 3, 0.0), ("up", 1, 5.0), (None, 1, 0.4)]
    # the filter survives a link (Overview → Review, a reload)
    flt = ReviewFilter(feedback="down", score_min=0.0, score_max=0.5)
    assert review.filter_from_params(review.filter_to_params(flt)) == flt


def test_a_malformed_log_line_is_rejected_with_file_line_and_what_to_do(store, write_jsonl):
    lines = [
        json.dumps(LOG[0], ensure_ascii=False),
        '{"request": {"messages": "我要退款"}, "response": "好的"}',
        '{"response": "hello", "feedback": {"thumbs_down": true}}',
        json.dumps(LOG[1])[:-3],  # cut short
        '{"request": {"messages": []}, "response": "好的"}',
    ]
    report, by_line = imported(store, write_jsonl, lines)
    assert report.file.endswith("prod-logs.jsonl") and (report.imported, report.rejected) == (1, 4)
    rejects = {r.line: (r.code, r.reason) for r in report.rejects}
    assert rejects[2] == (
        "messages-not-list",
        "'request.messages' is a str, it must be a list of messages",
    )
    assert (
        rejects[3][0] == "log-without-request" and "add the request's messages as 'messages'" in rejects[3][1]
    )
    assert rejects[4][0] == "invalid-json" and "column" in rejects[4][1]
    assert rejects[5][0] == "empty-messages"
    assert by_line[1].feedback == "down"


def test_feedback_fields_on_other_formats_and_records_without_any(store, write_jsonl):
    report, by_line = imported(
        store,
        write_jsonl,
        [
            {
                "prompt": "退货地址？",
                "response": "上海",
                "thumbs_down": True,
                "correction": "请在 App 里查看退货地址。",
            },
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        ],
    )
    assert report.formats == {"prompt_response": 1, "messages": 1}
    corrected = by_line[1]
    assert corrected.messages[-1]["content"] == "请在 App 里查看退货地址。" and corrected.bad_output == "上海"
    assert corrected.feedback == "down"
    plain = by_line[2]
    assert (plain.feedback, plain.feedback_score, plain.bad_output) == (None, None, None)


def test_review_page_filters_by_feedback_and_shows_it_with_the_bad_output(tmp_path, monkeypatch, write_jsonl):
    from streamlit.testing.v1 import AppTest

    from workbench.store import Store

    from .conftest import ROOT, shown

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    ingest.import_file(Store.open(), write_jsonl(LOG, name="prod-logs.jsonl"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/review.py")
    at.query_params["feedback"] = "down"
    at.run()
    assert not at.exception, at.exception
    count = next(m.value for m in at.markdown if "records match" in m.value)
    assert count.startswith("**3 records match**") and at.selectbox(key="rv_feedback").value == "down"
    assert [shown(b.label) for b in at.button if b.key and b.key.startswith("rv_chip_")] == [
        "feedback: thumbs down ✕"
    ]
    # the newest thumbs down (line 4) is open: its feedback, and what the model said with no answer yet
    texts = [t.value for t in at.text]
    assert "Feedback: thumbs down · score 0 · “错了”" in texts
    assert "不能开发票。" in [c.value for c in at.code]
    at.selectbox(key="rv_feedback").set_value(None)
    at.number_input(key="rv_score_min").set_value(1.0).run()
    assert next(m.value for m in at.markdown if "match" in m.value).startswith("**1 record matches**")
    assert at.query_params["score_min"] in ("1", ["1"])


# Any JSON value under any of a log's keys, at the top or inside a feedback entry or a response
VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(["messages", "role", "content", "choices", "message", "score", "value", "rating",
                             "thumbs_down", "comment", "correction", "key", "name", "dataType", "text"]),
            children,
            max_size=4,
        ),
    ),
    max_leaves=10,
)  # fmt: skip
LOG_KEYS = ["request", "messages", "response", "choices", "feedback", "scores", "rating", "score", "thumb"]
LOG_KEYS += ["thumbs_up", "thumbs_down", "comment", "correction"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.dictionaries(st.sampled_from(LOG_KEYS), VALUE, min_size=1, max_size=5), min_size=1, max_size=5
    )
)
def test_odd_log_lines_never_crash_the_import_and_every_line_is_accounted_for(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("logs") / "odd.jsonl"
    path.write_text(
        "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8"
    )
    report = ingest.import_file(Store.in_memory(), path, keep_file=False)
    assert report.imported + report.rejected == len(lines)
