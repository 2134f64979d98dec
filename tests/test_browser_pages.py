"""End to end in Chromium: the Import, Coverage, Clusters and Quality pages against `streamlit run app.py`.

Upload a GB18030 CSV and a JSONL with a broken line, see the report and download the rejects; see a category
short on Coverage, import more, approve it in Review, see it in band; run embed + dedup + cluster from the page
and open a cluster in Review. Screenshots of each page go to SCREENSHOT_DIR (make screenshots).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from workbench import coverage, ingest
from workbench.curation import set_status
from workbench.store import Store
from workbench.store.records import Selection

from .conftest import chat
from .test_browser import ARGS, CHROMIUM, running_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
    ),
]

REFUNDS = [
    "我要退款，商品坏了",
    "这个耳机有杂音，能退吗",
    "衣服尺码不对，申请退货退款",
    "订单重复扣款了，请退回",
    "Refund my order please, it arrived broken",
    "I was charged twice, I want my money back",
]
DELIVERY = [
    "我的外卖到哪了？都一个小时了",
    "快递三天没更新物流",
    "Where is my parcel? It says shipped last week",
    "The courier never came, where is my package?",
]


@pytest.fixture
def app(tmp_path, write_jsonl):
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    ingest.import_file(
        store,
        write_jsonl(
            [chat(t, "refund", category="退款", task_type="classification") for t in REFUNDS]
            + [chat(t, "delivery_status", category="物流", task_type="classification") for t in DELIVERY]
            + [
                {
                    "messages": [
                        {"role": "user", "content": "取消订单 7781"},
                        {"role": "asistant", "content": "cancel"},
                    ],
                    "category": "取消",
                }
            ],
            name="badcases.jsonl",
        ),
    )
    set_status(store, Selection(dataset="badcases"), "approved", "test")
    coverage.set_target(store, "退款", 8, 20)
    ingest.import_file(
        store,
        write_jsonl(
            [chat(f"Write a short poem about {w}", "...") for w in ("rain", "tea", "雪", "山")],
            name="general.jsonl",
        ),
        dataset="general",
    )
    with running_app(store_dir) as url:
        yield url, store


def test_import_coverage_clusters_and_quality_in_a_real_browser(app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, store = app
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    csv = tmp_path / "退款补充.csv"
    rows = [
        "我买的手机屏幕碎了要退款",
        "鞋子开胶了，退钱",
        "I want a refund: the blender does not work",
        "充电器买错了型号，申请退款",
    ]
    csv.write_bytes(
        ("prompt,response,category\n" + "".join(f"{r},refund,退款\n" for r in rows)).encode("gb18030")
    )
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text(
        json.dumps(chat("Where is order 12?", "delivery_status", category="物流"))
        + "\n"
        + "{oops this line is broken\n",
        encoding="utf-8",
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300}, accept_downloads=True)

        # Streamlit runs a deep link on a server that has not yet run app.py as an old-style page from pages/
        # (no navigation, no wide layout): open the app once first, as a person starting `make app` does.
        page.goto(url)
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=60_000)
        # Coverage: 退款 is short of its band (6 ready of 8-20)
        page.goto(url + "/coverage")
        expect(page.get_by_role("link", name="退款: short by 2 (6 ready of 8-20)")).to_be_visible(
            timeout=60_000
        )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "coverage.png"), full_page=True)

        # Import: a GB18030 CSV and a JSONL with a broken line, uploaded together
        page.goto(url + "/imports")
        expect(page.get_by_text("Imports so far")).to_be_visible(timeout=60_000)
        page.locator("input[type=file]").set_input_files([str(csv), str(jsonl)])
        page.get_by_role("button", name="Import 2 file(s)").click()
        expect(page.get_by_text("csv, gb18030").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Rejected lines").first).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download every rejected line (JSONL)").first.click()
        rejects = [
            json.loads(line) for line in Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        ]
        assert [(r["line"], r["code"]) for r in rejects] == [(2, "invalid-json")]
        assert rejects[0]["raw"] == "{oops this line is broken"
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "import.png"), full_page=True)

        # the CSV's import in Review: approve all of it in one bulk action
        page.get_by_role("link", name="Review the 4 records of this import").click()
        expect(page.get_by_text("4 records match")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Applies to all 4 matching records")).to_be_visible()
        page.locator(".st-key-rv_bulk_kind").get_by_role("combobox").click()
        page.get_by_role("option", name="set status", exact=True).click()
        page.locator(".st-key-rv_bulk_status").get_by_role("combobox").click()
        page.get_by_role("option", name="approved").click()
        page.get_by_role("button", name="Set status 'approved': change 4 records").click()
        expect(page.get_by_text("on 4 records. Undo it below.")).to_be_visible(timeout=30_000)

        # Coverage again: 退款 is in band now
        page.goto(url + "/coverage")
        expect(page.get_by_role("link", name="退款: in band (10 ready of 8-20)")).to_be_visible(
            timeout=60_000
        )

        # Quality: the role typo, its rule, fix all
        page.goto(url + "/quality")
        expect(page.get_by_text("a misspelled role (asistant, usr)")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "quality.png"), full_page=True)

        # Clusters: embed + dedup + cluster in the background, then open a cluster in Review
        page.goto(url + "/clusters")
        expect(page.get_by_text("No clustering run yet")).to_be_visible(timeout=60_000)
        page.get_by_role("button", name="Run in the background").click()
        expect(page.get_by_role("heading", name="Map")).to_be_visible(timeout=300_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shots / "clusters.png"), full_page=True)
        page.get_by_role("link", name="Open in Review").first.click()
        expect(page).to_have_url(re.compile(r"/review\?cluster=\d+"), timeout=60_000)
        expect(page.get_by_text("records match")).to_be_visible(timeout=60_000)
        browser.close()
    assert coverage.coverage(store).category("退款").verdict == "in band"


def test_a_deep_link_on_a_server_that_has_not_run_the_app_gets_the_apps_frame(tmp_path, write_jsonl):
    """A bookmark opened first after `make app`: Streamlit runs pages/review.py alone; its ui.page_frame runs
    app.py, so the page still has the navigation, the author box and the link's filter."""
    from playwright.sync_api import expect, sync_playwright

    store = Store.open(str(tmp_path / "store"))
    ingest.import_file(
        store,
        write_jsonl([chat("我要退款", "refund", category="退款"), chat("refund please", "refund")]),
        dataset="售后",
    )
    with running_app(tmp_path / "store") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url + "/review?dataset=售后")  # the first request this server sees
        expect(page.get_by_text("2 records match")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Your name")).to_be_visible()
        expect(page.get_by_role("link", name="Coverage")).to_be_visible()
        browser.close()
