"""The Playground page, run headless with AppTest through the app's entry file on a real store with a tiny model:
it renders, answers a Chinese question, saves a flagged answer as a badcase (then in Review), and says what to do
when the fix is missing or the model folder is wrong."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from workbench import review
from workbench.review import ReviewFilter
from workbench.store.records import get_record

from .conftest import ROOT

APP = str(ROOT / "app.py")
PAGE = "pages/playground.py"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    return Store.open()


def open_page(tiny: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if tiny:
        at.text_input(key="pg_base").set_value(tiny).run()
        at.number_input(key="pg_max").set_value(8).run()
    return at


def test_ask_flag_and_find_it_in_review(store, tiny):
    at = open_page(tiny)
    assert any("Ask a question" in i.value for i in at.info)
    at.chat_input(key="pg_question").set_value("我要退款，饭洒了").run()
    assert not at.exception, at.exception
    assert "我要退款，饭洒了" in [t.value for t in at.text]
    save = next(b for b in at.button if b.label == "Save 1 badcase")
    save.click().run()  # no fix written: it says what to do
    assert any("write the right answer" in e.value for e in at.error)
    at.text_area(key="pg_fix_0_base").set_value("refund")
    at.selectbox(key="pg_cat_0_base").set_value("(new)")
    at.text_input(key="pg_new_0_base").set_value("退款")
    next(b for b in at.button if b.label == "Save 1 badcase").click().run()
    assert not at.exception, at.exception
    assert any("Saved as badcase record" in s.value for s in at.success)
    page = review.load_queue(store, ReviewFilter(tags=("playground",)), "oldest", limit=10)
    assert page.total == 1
    with store.connect() as con:
        record = get_record(con, page.ids[0])
    assert (
        record.category == "退款"
        and record.messages[-1]["content"] == "refund"
        and record.bad_output is not None
    )
    assert tiny in record.source


def test_a_missing_model_folder_says_what_is_wrong(store, tmp_path):
    at = open_page(str(tmp_path / "no-model"))
    at.chat_input(key="pg_question").set_value("Where is my order?").run()
    assert not at.exception, at.exception
    assert any("give a local model folder" in e.value for e in at.error)
