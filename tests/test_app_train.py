"""The Train page, run headless with AppTest through the app's entry file on a real store: with nothing to export it
says so and its button waits; with approved records one click starts the export → train → evaluate pipeline in the
background and the page reattaches to it; a failed pipeline says what went wrong."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from workbench import ingest
from workbench import pipeline as P
from workbench.curation import set_status
from workbench.export import ExportConfig
from workbench.store.records import Selection

from .conftest import ROOT, chat

APP = str(ROOT / "app.py")
PAGE = "pages/train.py"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    return Store.open()


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_empty_store_says_what_to_do_and_the_button_waits(store):
    at = open_page()
    assert any("No run yet" in i.value for i in at.info)
    assert any("Nothing to export" in w.value for w in at.warning)
    assert at.button(key="tr_start").disabled


def test_one_click_starts_the_pipeline_and_the_page_reattaches(store, write_jsonl, tmp_path):
    records = [chat(f"我要退款，订单 {n} 的饭洒了", "refund", category="退款") for n in range(8)] + [
        chat(f"Where is my order {n}?", "order_status", category="order") for n in range(8)
    ]
    report = ingest.import_file(store, write_jsonl(records))
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    at = open_page()
    at.radio(key="tr_source").set_value("folder").run()
    at.text_input(key="tr_folder").set_value(str(tmp_path / "no-such-model")).run()
    start = at.button(key="tr_start")
    assert not start.disabled
    start.click().run()
    assert not at.exception, at.exception
    assert any("Pipeline 1 started" in s.value for s in at.success)
    status = P.latest_pipeline(store)
    assert status is not None and status.id == 1
    again = open_page()  # a new browser session finds the same pipeline
    assert any("Pipeline 1" in h.value for h in again.subheader)
    end = time.monotonic() + 120  # the model folder does not exist: the run fails and says so
    while P.pipeline_status(store, 1).running and time.monotonic() < end:
        time.sleep(1)
    final = P.pipeline_status(store, 1)
    assert final.state == "failed" and final.error
    at = open_page()
    assert any("Pipeline 1: failed" in h.value for h in at.subheader)
    assert any("Fix the cause" in e.value for e in at.error)


def test_a_pipeline_with_nothing_to_export_shows_its_error(store):
    started = P.start_pipeline(store, ExportConfig(name="empty"), author="test")
    end = time.monotonic() + 120
    while P.pipeline_status(store, started.id).running and time.monotonic() < end:
        time.sleep(0.5)
    at = open_page()
    assert any("Pipeline 1: failed" in h.value for h in at.subheader)
    assert at.error and "Fix the cause" in at.error[0].value


def test_runs_started_from_the_command_line_are_listed_not_no_run(store, tmp_path):
    """A run trained with `workbench train` or `make demo-loop` has no pipeline: the page lists it."""
    from workbench.store import runs as sql

    with store.transaction() as con:
        row = sql.insert_run(
            con,
            export_dir=str(tmp_path / "exports" / "demo-1"),
            export_name="demo",
            export_hash=None,
            base_model="tiny",
            parent_run=None,
            init="fresh",
            config={"epochs": 6},
            runs_dir=str(tmp_path / "runs"),
        )
        sql.update_run(con, row.id, status="done", step=84, total_steps=84, val_accuracy=0.5)
    at = open_page()
    assert not any("No run yet" in i.value for i in at.info)
    assert any(h.value == "Runs" for h in at.subheader)
    table = at.dataframe[0].value
    assert list(table["run"]) == [row.id] and table["step"][0] == "84/84" and table["export"][0] == "demo"


def test_the_live_panel_shows_which_evaluation_runs_and_its_stage_after_the_answers(store):
    """The pipeline writes the running evaluation's progress into its folder: after generation the loss and
    verdict stage shows with its own count, not a bar stuck at 42/42 (issue 29)."""
    from workbench.train.folder import write_json_atomic

    folder = P.pipelines_dir(store) / "1"
    folder.mkdir(parents=True)
    write_json_atomic(
        folder / "status.json",
        {
            "state": "running",
            "stage": "evaluate",
            "evaluations": {"base/eval": 1},
            "evaluating": {
                "key": "run/eval",
                "phase": "loss and verdict of each answer",
                "done": 17,
                "total": 42,
            },
        },
    )
    at = open_page()
    assert any("Pipeline 1: running" in h.value for h in at.subheader)
    bars = [(b.value, b.proto.text) for b in at.get("progress")]
    assert bars and bars[0][0] == 40  # percent
    assert "Evaluating run/eval: loss and verdict of each answer · 17/42" in bars[0][1]
