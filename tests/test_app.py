"""The Streamlit app, run headless with streamlit.testing.v1.AppTest on a real store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from workbench import ingest

from .conftest import ROOT, chat

# The entry file opens on Overview; pages run through it, since their links name other pages of the app.
PAGE = str(ROOT / "app.py")


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    return Store.open()


def test_overview_on_an_empty_store_says_how_to_start(store_env):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert any("empty" in info.value for info in at.info)
    assert [m.value for m in at.metric][:2] == ["0", "0"]


def test_overview_counts_records_categories_and_issues(store_env, write_jsonl):
    ingest.import_file(
        store_env,
        write_jsonl(
            [
                chat("我要退款", "refund", category="退款"),
                chat("where is it", "delivery", category="物流"),
                {"messages": [{"role": "user", "content": "hi"}, {"role": "asistant", "content": "yo"}]},
            ]
        ),
    )
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Records"] == "3" and metrics["Imports"] == "1" and metrics["Categories"] == "2"
    assert [s.value for s in at.subheader] == ["By dataset", "By status", "By category", "Issues by code"]


def test_overview_reports_a_busy_store_instead_of_crashing(store_env, monkeypatch):
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
        at = AppTest.from_file(PAGE, default_timeout=60).run()
    finally:
        holder.kill()
        holder.wait()
    assert not at.exception
    assert f"process {holder.pid}" in at.error[0].value


def test_entry_file_builds_the_navigation(store_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Overview"
