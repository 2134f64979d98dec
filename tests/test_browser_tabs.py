"""Several tabs on one store: the Coverage and Train pages' reads running at once never crash each other.

Streamlit runs each browser tab's script in a thread of one process, so DuckDB gives every tab a connection to
the same open database: anything a read creates in the shared catalog (a Python function) conflicts between
tabs. The first test runs the pages' reads in threads; the second opens the pages in 3 Chromium tabs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from workbench import coverage, ingest, pipeline, review
from workbench.curation import set_status
from workbench.errors import StoreBusyError
from workbench.export import ExportConfig, preview_export
from workbench.store import Store
from workbench.store.records import Selection
from workbench.train import runs

from .conftest import chat

QUESTIONS = [
    "我要退款，商品坏了",
    "这个耳机有杂音，能退吗",
    "衣服尺码不对，申请退货退款",
    "Refund my order please, it arrived broken",
    "我的外卖到哪了？都一个小时了",
    "Where is my parcel? It says shipped last week",
]


@pytest.fixture
def shared_store(tmp_path, write_jsonl) -> Path:
    """Approved badcases in two categories, an eval set with a near-copy of one (the leakage guard's work),
    and general data: what the Coverage and Train pages plan an export from."""
    store = Store.open(tmp_path / "store")
    badcases = [
        chat(f"{q} （订单 {n}）", "refund" if n % 2 else "delivery_status", category="退款" if n % 2 else "物流",
             task_type="classification")
        for n, q in enumerate(QUESTIONS * 5)
    ]  # fmt: skip
    ingest.import_file(store, write_jsonl(badcases, name="badcases.jsonl"))
    set_status(store, Selection(dataset="badcases"), "approved", "test")
    evals = [chat(f"{QUESTIONS[0]} （订单 1）", "refund"), chat("ＦＵＬＬＷＩＤＴＨ 退款", "refund")]
    ingest.import_file(store, write_jsonl(evals, name="eval.jsonl"), dataset="eval")
    general = [chat(f"Write a short poem about {w}", "...") for w in ("rain", "tea", "雪", "山")]
    ingest.import_file(store, write_jsonl(general, name="general.jsonl"), dataset="general")
    return store.root


def page_reads(root: Path) -> None:
    """What one rerun of Coverage and of Train reads, in the order the pages read it."""
    store = Store.open(root)
    coverage.coverage(store, ExportConfig())
    preview_export(store, ExportConfig())
    pipeline.latest_pipeline(store)
    runs.list_runs(store, limit=20)
    review.filter_choices(store)
    preview_export(store, ExportConfig(leakage_guard="auto"))


def test_three_tabs_reading_coverage_and_train_at_once_never_crash(shared_store):
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def tab() -> None:
        try:
            start.wait()
            for _ in range(2):
                page_reads(shared_store)
        except StoreBusyError:  # a busy store is a message with Retry, not a crash; reads should not see it
            failures.append(AssertionError("a read was refused as busy"))
        except BaseException as exc:  # noqa: BLE001 - every crash is the finding
            failures.append(exc)

    for _round in range(3):  # a fresh database instance each round: the function is created anew
        tabs = [threading.Thread(target=tab) for _ in range(3)]
        for t in tabs:
            t.start()
        for t in tabs:
            t.join()
    assert not failures, [repr(f)[:300] for f in failures]


def test_two_tabs_writing_the_same_row_at_once_get_the_busy_message_not_a_duckdb_error(shared_store):
    store = Store.open(shared_store)
    coverage.set_target(store, "退款", 10, 20)
    with store.transaction() as first:
        first.execute("UPDATE category_targets SET low = 11 WHERE category = '退款'")
        with pytest.raises(StoreBusyError, match="changed the store .* at the same moment.*Try again"):
            coverage.set_target(store, "退款", 12, 30)  # a second tab, while the first one's change is open
    coverage.set_target(store, "退款", 12, 30)  # again, once the first is done: it lands
    assert coverage.coverage(store).category("退款").band == (12, 30)
