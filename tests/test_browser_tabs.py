"""Several tabs on one store: the Coverage and Train pages' reads running at once never crash each other.

Streamlit runs each browser tab's script in a thread of one process, so DuckDB gives every tab a connection to
the same open database: anything a read creates in the shared catalog (a Python function) conflicts between
tabs. The first test runs the pages' reads in threads; the second opens the pages in 3 Chromium tabs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workbench import coverage, ingest, pipeline, review
from workbench.curation import set_status
from workbench.errors import StoreBusyError
from workbench.export import ExportConfig, preview_export
from workbench.store import Store
from workbench.store.records import Selection
from workbench.train import runs

from .conftest import chat
from .test_browser import ARGS, CHROMIUM, running_app

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


def settled(page) -> None:
    """Wait until the tab's script run is over: no element left stale (greyed) from the run before."""
    from playwright.sync_api import expect

    page.wait_for_timeout(700)
    expect(page.locator("[data-stale='true']")).to_have_count(0, timeout=90_000)
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=90_000)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
)
def test_three_tabs_on_coverage_and_train_rerun_at_once_and_train_downloads_the_curated_set(
    shared_store, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with running_app(shared_store) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
        first = context.new_page()
        first.goto(url)  # the app's entry runs once before any deep link (see test_browser_pages)
        expect(first.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=60_000)
        tabs = [(first, "coverage", "Coverage"), (context.new_page(), "coverage", "Coverage"),
                (context.new_page(), "train", "Train")]  # fmt: skip
        for page, path, _title in tabs:
            page.goto(f"{url}/{path}", wait_until="commit")
        for _round in range(4):
            for page, _path, title in tabs:
                expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=90_000)
                settled(page)
                assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id(
                    "stException"
                ).first.inner_text()
                assert page.get_by_text("TransactionException").count() == 0
            for page, _path, _title in tabs:  # every tab reruns at once, as when the store changes under them
                page.reload(wait_until="commit")
        coverage_tab, _, train = tabs[0][0], None, tabs[2][0]
        expect(coverage_tab.get_by_role("heading", name="The next export")).to_be_visible(timeout=90_000)
        settled(coverage_tab)
        coverage_tab.screenshot(path=str(shots / "coverage-tabs.png"), full_page=True)

        # the curated set from the browser, in Parquet: the rows the export takes
        train.get_by_text("Download the curated set as").scroll_into_view_if_needed()
        train.get_by_role("combobox", name="Download the curated set as").click()
        train.get_by_role("option", name="Parquet").click()
        settled(train)  # the rerun that names the file
        with train.expect_download() as download:
            train.get_by_test_id("stDownloadButton").get_by_role("button").click()
        assert download.value.suggested_filename == "app.parquet"
        table = pq.read_table(download.value.path())
        assert table.num_rows > 0 and any("退款" in m for m in table.column("messages").to_pylist())
        train.screenshot(path=str(shots / "train-download.png"), full_page=True)
        browser.close()
