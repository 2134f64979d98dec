"""The Review page, run headless with streamlit.testing.v1.AppTest through the app's entry file on a real store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from workbench import ingest, review
from workbench.review import ReviewFilter

from .conftest import ROOT, chat, shown, stored_evaluation

APP = str(ROOT / "app.py")
REVIEW = "pages/review.py"


@pytest.fixture
def store_env(tmp_path, monkeypatch, write_jsonl):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    store = Store.open()
    ingest.import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "user", "content": "我要退款，订单 7781"},
                        {"role": "asistant", "content": "refund"},
                    ],
                    "category": "退款",
                },
                {"prompt": "我的外卖到哪了？", "bad_output": "refund", "expected": "", "category": "物流"},
                chat(
                    "<script>alert('x')</script> **bold** [link](http://example.com)",
                    "<img src=x onerror=alert(1)>",
                    category="intent",
                ),
                *[chat(f"Where is order {n}?", "delivery_status", category="物流") for n in range(60)],
            ]
        ),
    )
    return store


def open_review(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(REVIEW)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def matching(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "records match" in m.value or "record matches" in m.value)


def ids_of(store, flt: ReviewFilter) -> list[int]:
    return review.load_queue(store, flt, "oldest", limit=1000).ids


def test_entry_file_lists_review_in_the_work_section(store_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    at.switch_page(REVIEW).run()
    assert not at.exception
    assert at.title[0].value == "Review"


def test_a_link_with_an_issue_filter_opens_the_queue_filtered(store_env):
    at = open_review({"issue": "role-typo"})
    assert matching(at).startswith("**1 record matches**")
    assert at.multiselect(key="rv_issue").value == ["role-typo"]
    assert at.text_area[1].value == "refund"


def test_filter_and_text_search_change_the_count_and_the_url(store_env):
    at = open_review()
    assert matching(at).startswith("**63 records match**")
    at.multiselect(key="rv_category").set_value(["物流"]).run()
    assert matching(at).startswith("**61 records match**")
    assert at.query_params["category"] in ("物流", ["物流"])  # AppTest gives a lone value unwrapped
    at.text_input(key="rv_text").set_value("外卖").run()
    assert matching(at).startswith("**1 record matches**")


def test_pages_move_through_the_queue(store_env):
    at = open_review()
    assert "page 1" in matching(at)
    first = at.session_state.rv_current
    at.button(key="rv_next").click().run()
    assert at.session_state.rv_current != first
    next_page = next(b for b in at.button if b.label == "Page ▶")
    next_page.click().run()
    assert "page 2" in matching(at)
    assert not at.exception
    assert next(b for b in at.button if b.label == "Page ▶").disabled  # 63 records: two pages


def test_edit_and_save_writes_a_revision(store_env):
    at = open_review({"text": "外卖"})
    rid = at.session_state.rv_current
    answer = next(t for t in at.text_area if t.label == "The right answer")
    answer.set_value("delivery_status")  # the editor is a form: its fields go with the button that submits it
    at.button(key="rv_save").click().run()
    assert not at.exception
    assert any("Saved record" in s.value for s in at.success)
    view = review.open_record(store_env, rid)
    assert view.record.messages[-1]["content"] == "delivery_status" and view.record.version == 2
    assert view.history[-1].action == "edit"


def test_a_stale_save_shows_both_versions_and_keeps_either(store_env):
    at = open_review({"text": "外卖"})
    rid = at.session_state.rv_current
    rec = review.open_record(store_env, rid).record
    review.save_record(
        store_env, rid, rec.version, {"category": "售后"}, "cli-user"
    )  # someone else, meanwhile
    at.text_input(key=f"rv_tags_{rid}_1").set_value("复核")
    at.button(key="rv_training_view").click().run()  # any button of the editor keeps what was typed
    assert any("changed since you opened it" in w.value for w in at.warning)  # the typed tag is kept
    assert at.text_input(key=f"rv_tags_{rid}_1").value == "复核"
    at.button(key="rv_save").click().run()
    assert not at.exception
    assert any("changed this record while you edited it" in e.value for e in at.error)
    shown = [c.value for c in at.code]
    assert any("复核" in c for c in shown) and any("售后" in c for c in shown)
    at.button(key="rv_keep_mine").click().run()
    record = review.open_record(store_env, rid).record
    assert record.tags == ["复核"] and record.version == 3
    assert record.category == "售后"  # keeping mine wrote only what I changed: their category stays
    assert [r.action for r in review.open_record(store_env, rid).history] == ["edit", "edit"]


def test_undo_a_revision_from_the_history(store_env):
    rid = ids_of(store_env, ReviewFilter(text="外卖"))[0]
    review.save_record(store_env, rid, 1, {"status": "fixed"}, "alice")
    at = open_review({"text": "外卖"})
    undo = review.open_record(store_env, rid).history[-1]
    at.button(key=f"rv_undo_{undo.id}").click().run()
    assert not at.exception
    record = review.open_record(store_env, rid).record
    assert record.status == "new" and record.version == 3


def test_one_click_fix_from_the_issue_list(store_env):
    at = open_review({"issue": "role-typo"})
    rid = at.session_state.rv_current
    fix = next(b for b in at.button if b.label == "Fix" and "assistant" in (b.help or ""))
    fix.click().run()
    assert not at.exception
    assert review.open_record(store_env, rid).record.messages[1]["role"] == "assistant"
    assert matching(at).startswith(
        "**0 records match**"
    )  # the filter stays though no record has the issue now


def test_bulk_action_says_how_many_then_one_undo_reverts_it(store_env):
    at = open_review({"category": "物流"})
    assert any("Applies to all 61 matching records" in c.value for c in at.caption)  # no row ticked
    at.selectbox(key="rv_bulk_kind").set_value("status").run()
    at.selectbox(key="rv_bulk_status").set_value("approved").run()
    go = at.button(key="rv_bulk_go")
    assert "change 61 records" in go.label
    go.click().run()
    assert not at.exception
    assert review.load_queue(store_env, ReviewFilter(statuses=("approved",))).total == 61
    op = review.recent_operations(store_env)[0]
    at.button(key=f"rv_undo_op_{op.id}").click().run()
    assert not at.exception
    assert review.load_queue(store_env, ReviewFilter(statuses=("approved",))).total == 0
    assert any("61 records put back" in s.value for s in at.success)


def test_approve_saves_and_moves_to_the_next_record(store_env):
    at = open_review({"category": "物流"})
    first = at.session_state.rv_current
    at.button(key="rv_approve").click().run()
    assert review.open_record(store_env, first).record.status == "approved"
    assert at.session_state.rv_current != first


def test_html_and_markdown_in_a_record_are_shown_as_text(store_env):
    at = open_review({"category": "intent"})
    texts = [t.value for t in at.text_area]
    assert "<script>alert('x')</script> **bold** [link](http://example.com)" in texts
    assert "<img src=x onerror=alert(1)>" in texts
    rendered = " ".join(m.value for m in at.markdown)
    assert "<script" not in rendered and "onerror" not in rendered


def test_a_busy_store_says_who_holds_it_and_offers_a_retry(store_env, monkeypatch):
    at = AppTest.from_file(APP, default_timeout=60).run()
    monkeypatch.setenv("WORKBENCH_STORE_WAIT", "0.3")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('holding', flush=True); time.sleep(30)",
            str(store_env.db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        at.switch_page(REVIEW).run()
    finally:
        holder.kill()
        holder.wait()
    assert not at.exception
    assert f"process {holder.pid}" in at.error[0].value
    at.button(key="retry").click().run()
    assert not at.exception and matching(at).startswith("**63 records match**")


def test_training_view_shows_the_template_and_the_token_count(store_env):
    at = open_review({"text": "外卖"})
    at.button(key="rv_training_view").click().run()
    assert not at.exception, at.exception
    counts = next(t.value for t in at.text if "tokens," in t.value)
    assert "/ 2,048 tokens" in counts and "trained" in counts
    assert any("我的外卖到哪了？" in c.value and "⟦" in c.value for c in at.code)


def test_an_empty_store_says_how_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "empty"))
    at = open_review()
    assert matching(at).startswith("**0 records match**")
    assert any("import a file" in i.value for i in at.info)
    assert [link.proto.page for link in at.get("page_link")] == ["imports"]  # the Import page
    assert not any(h.value.startswith("Record") for h in at.subheader)


def test_a_bad_link_says_what_is_wrong_instead_of_a_traceback(store_env):
    at = open_review({"status": "done"})
    assert "unknown status 'done'" in shown(at.error[0].value)
    at.button(key="clear_filters").click().run()
    assert not at.exception and matching(at).startswith("**63 records match**")


def test_hard_after_run_filter_shows_why_each_record_is_there(store_env):
    """A link with hard=N opens the records run N still gets wrong (or learned least), each with the run's
    answer and the similar records that answer differently."""
    ids = ids_of(store_env, ReviewFilter(categories=("物流",)))[:10]
    rows = [
        {
            "record_key": str(rid),
            "record_id": rid,
            "category": "物流",
            "messages": [{"role": "user", "content": f"Where is order {n}?"}],
            "reference": "refund" if n == 1 else "delivery_status",
            "output": "delivery_status",
            "verdict": "wrong" if n == 1 else "right",
            "loss": 0.1 * n,
        }
        for n, rid in enumerate(ids)
    ]
    stored_evaluation(store_env, rows, model="run 1", run_id=1, eval_set="trained")
    at = open_review({"hard": "1"})
    assert matching(at).startswith("**2 records match**")  # the wrong one, and the highest loss of ten
    assert at.selectbox(key="rv_hard").value == 1
    why = next(m.value for m in at.markdown if "Why it is here" in m.value)
    assert "run 1 answers it" in why
    assert at.session_state.rv_current in (ids[1], ids[9])
    assert len(at.dataframe) >= 2  # the queue, and the similar records that answer differently
    at.selectbox(key="rv_hard").set_value(None).run()
    assert matching(at).startswith("**63 records match**")
    assert not any("Why it is here" in m.value for m in at.markdown)


def test_review_after_another_page_keeps_working(store_env):
    """Streamlit forgets the widgets of a page it did not draw: coming back to Review (sidebar, or the same
    Overview link twice) must re-seed the filters, not crash."""
    at = open_review()
    at.switch_page("pages/quality.py").run()
    assert not at.exception, at.exception
    at.switch_page(REVIEW).run()
    assert not at.exception, at.exception
    assert matching(at).startswith("**63 records match**")
    at = open_review({"category": "物流"})
    at.switch_page("pages/overview.py").run()
    at.switch_page(REVIEW)
    at.query_params["category"] = "物流"
    at.run()
    assert not at.exception, at.exception
    assert matching(at).startswith("**61 records match**")
    assert at.multiselect(key="rv_category").value == ["物流"]


def test_text_search_leaves_the_system_prompt_out_unless_asked(store_env):
    """The word refund is only in a turn whose role is misspelled (asistant): neither a question nor an answer."""
    at = open_review({"text": "refund"})
    assert matching(at).startswith("**0 records match**")
    at.selectbox(key="rv_text_in").set_value("any").run()
    assert matching(at).startswith("**1 record matches**")
    assert at.query_params["in"] in ("any", ["any"])
    at.selectbox(key="rv_text_in").set_value("question").run()
    at.text_input(key="rv_text").set_value("外卖").run()
    assert matching(at).startswith("**1 record matches**")


def test_a_filter_set_by_a_link_shows_as_a_chip_that_removes_it(store_env):
    at = open_review({"import": "1", "duplicate": "unique"})
    chips = [b for b in at.button if b.key and b.key.startswith("rv_chip_")]
    assert [shown(c.label) for c in chips] == ["duplicates: unique ✕", "import #1 ✕"]
    chips[1].click().run()
    assert not at.exception
    assert "import" not in at.query_params and at.query_params["duplicate"] in ("unique", ["unique"])
    assert [shown(b.label) for b in at.button if b.key and b.key.startswith("rv_chip_")] == [
        "duplicates: unique ✕"
    ]
    at.button(key="rv_chip_0").click().run()
    assert matching(at).startswith("**63 records match**") and not dict(at.query_params)


def test_a_labels_contract_gives_the_answer_as_label_buttons(store_env):
    from workbench.contracts import Contract
    from workbench.curation import set_contract

    set_contract(store_env, Contract("物流", "labels", ["delivery_status", "refund", "其他"]))
    at = open_review({"text": "外卖"})
    rid = at.session_state.rv_current
    labels = [b for b in at.button if b.key and b.key.startswith("rv_label_")]
    assert [shown(b.label) for b in labels] == ["delivery_status", "refund", "其他"]
    labels[2].click().run()
    assert next(t for t in at.text_area if t.label == "The right answer").value == "其他"
    assert (
        next(b for b in at.button if b.label == "其他").proto.type == "primary"
    )  # the chosen one stands out
    at.button(key="rv_save").click().run()
    assert review.open_record(store_env, rid).record.messages[-1]["content"] == "其他"
