"""End to end in Chromium: the Playground, Train and Evaluate pages against `streamlit run app.py`, with a tiny model.

Flag a playground answer with the right one and see it in Review; export → train → evaluate from the Train page and
watch the run finish; compare base and tuned on Evaluate, send the failures to badcases and see them in Review.
Screenshots of each page go to SCREENSHOT_DIR (make screenshots).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.data_train import INTENTS, classification_records
from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.ingest import import_file
from workbench.review import ReviewFilter, load_queue
from workbench.store import Store
from workbench.store.records import Selection

from .test_browser import ARGS, CHROMIUM, running_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
    ),
]


@pytest.fixture
def app(tmp_path, tiny):
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    rows = [
        {k: v for k, v in r.items() if k not in ("id", "source")} for r in classification_records(48, seed=7)
    ]
    for name, part, dataset in (("intents.jsonl", rows[:-8], "badcases"), ("held.jsonl", rows[-8:], "eval")):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
        report = import_file(store, path, dataset=dataset)
        if dataset == "badcases":
            set_status(store, Selection(import_id=report.import_id), "approved", "test")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    with running_app(store_dir) as url:
        yield url, store, tiny


def test_playground_flag_train_and_evaluate_in_a_real_browser(app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, store, tiny = app
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(url)
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=60_000)

        # Playground: ask the tiny model, flag its answer with the right one
        page.goto(url + "/playground")
        expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible(timeout=60_000)
        page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=30_000)
        page.wait_for_timeout(1000)
        page.get_by_text("System prompt and sampling").click()
        folder = page.get_by_role("textbox", name="Base model folder")
        if not folder.is_visible():
            page.wait_for_timeout(1000)
            if not folder.is_visible():
                page.get_by_text("System prompt and sampling").click()
        page.get_by_role("textbox", name="Base model folder").fill(tiny)
        page.get_by_role("textbox", name="Base model folder").press("Enter")
        page.get_by_role("spinbutton", name="max_new_tokens").fill("12")
        page.get_by_role("spinbutton", name="max_new_tokens").press("Enter")
        page.wait_for_timeout(800)
        box = page.get_by_placeholder("Ask the model (English or 中文)…")
        box.fill("我的订单 #48213 怎么还没到？")
        box.press("Enter")
        expect(page.get_by_role("button", name="Flag this answer")).to_be_visible(timeout=120_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "playground.png"), full_page=True)
        page.get_by_role("button", name="Flag this answer").click()
        page.get_by_role("textbox", name="The right answer").fill("track_order")
        page.locator(".st-key-pg_cat_0_base").get_by_role("combobox").click()
        page.get_by_role("option", name="intent").click()
        page.get_by_role("button", name="Save 1 badcase").click()
        expect(page.get_by_text("Saved as badcase record")).to_be_visible(timeout=30_000)
        page.get_by_role("link", name="Open it in Review").click()
        expect(page).to_have_url(re.compile(r"/review\?tag=playground"), timeout=60_000)
        expect(page.get_by_text(re.compile(r"1 records? match"))).to_be_visible(timeout=60_000)

        # Train: export → train → evaluate with the tiny model, watched live until it is done
        page.goto(url + "/train")
        expect(page.get_by_text("No run yet")).to_be_visible(timeout=60_000)
        page.get_by_text("A local folder").click()
        page.get_by_role("textbox", name="Model folder", exact=True).fill(tiny)
        page.get_by_role("textbox", name="Model folder", exact=True).press("Enter")
        page.wait_for_timeout(800)
        page.get_by_role("button", name="Export, train and evaluate").click()
        expect(page.get_by_text("Pipeline 1 started")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Pipeline 1: done")).to_be_visible(timeout=600_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "train.png"), full_page=True)

        # Evaluate: base vs the run, then the failures into the badcase queue
        page.goto(url + "/evaluate")
        expect(page.get_by_text("Accuracy after")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "evaluate.png"), full_page=True)
        send = page.get_by_role("button", name=re.compile(r"Send \d+ failures to badcases"))
        sent = int(re.search(r"\d+", send.inner_text()).group())
        send.click()
        expect(page.get_by_text(re.compile(r"Sent \d+ new badcases"))).to_be_visible(timeout=60_000)
        page.get_by_role("link", name="Open them in Review").click()
        expect(page.get_by_text(re.compile(r"\d+ records? match"))).to_be_visible(timeout=60_000)
        browser.close()
    queue = load_queue(store, ReviewFilter(tags=("eval-failure",)), "oldest", limit=100)
    assert queue.total == sent > 0
