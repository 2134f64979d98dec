"""End to end in a real browser: Debian's Chromium, driven by Playwright, against `streamlit run app.py`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench import ingest
from workbench.store import Store

from .conftest import ROOT, chat

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(store_dir: Path) -> Iterator[str]:
    """`streamlit run app.py` on the store at `store_dir`, on a free localhost port; yields its URL once it
    answers its health check (60 s at most), and stops it afterwards."""
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(store_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("streamlit did not come up within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a loaded machine: do not leave it running
            server.kill()
            server.wait()


@pytest.fixture
def app_url(tmp_path, write_jsonl):
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    ingest.import_file(
        store,
        write_jsonl(
            [
                chat("我要退款", "refund", category="退款"),
                chat("我的外卖到哪了", "delivery_status", category="物流"),
                chat("where is it", "delivery_status", category="物流"),
                {"messages": [{"role": "user", "content": "hi"}, {"role": "asistant", "content": "yo"}]},
                {
                    "prompt": "我的外卖怎么还没到？都一个小时了",
                    "bad_output": "refund",
                    "expected": "",
                    "category": "物流",
                    "tags": ["线上反馈"],
                },
                chat(
                    "<script>document.title='pwned'</script> <b>bold?</b>",
                    "<img src=x onerror=\"document.title='pwned'\">",
                    category="html",
                ),
            ]
        ),
    )
    with running_app(store_dir) as url:
        yield url


def test_overview_in_a_real_browser_shows_the_counts_in_chinese_and_english(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(app_url)
        page.get_by_text("By category").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # let the charts draw
        body = page.inner_text("body")
        page.screenshot(path=str(shots / "overview.png"), full_page=True)
        # clicking a bar opens Review filtered to it: the tallest category bar, 物流, comes first
        chart = page.locator("[data-testid=stVegaLiteChart]").nth(2).bounding_box()
        page.mouse.click(chart["x"] + chart["width"] * 0.15, chart["y"] + chart["height"] * 0.6)
        page.get_by_text("3 records match").wait_for(timeout=60_000)
        review_url = page.url
        page.get_by_role("link", name="Overview").click()  # and going back stays on Overview
        page.get_by_text("By category").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        back_url = page.url
        browser.close()
    assert "/review?category=" in review_url and "review" not in back_url
    assert "Overview" in body and "Records" in body
    metrics = body.split("Records", 1)[1]
    assert metrics.split()[0] == "6"
    assert (shots / "overview.png").stat().st_size > 10_000


def settle(page) -> None:
    """Wait until the page has finished its run (a key pressed before its buttons are drawn goes nowhere)."""
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Next ▶ Shortcut Alt + J")).to_be_visible(timeout=30_000)
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=30_000)
    page.wait_for_timeout(300)


def test_review_from_overview_fix_answer_and_approve_with_the_keyboard(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        # the keyboard moves through the queue: Alt+J next, Alt+K previous
        page.goto(app_url + "/review")
        expect(page.get_by_text("6 records match")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Record 6")).to_be_visible()
        # a link opened first thing after the server starts still gets the app's frame
        expect(page.get_by_label("Your name", exact=True).and_(page.locator("input"))).to_be_visible()
        assert page.get_by_role("link", name="Overview").count() == 1
        page.reload()
        expect(page.get_by_role("heading", name="Record 6")).to_be_visible(timeout=60_000)
        page.get_by_role(
            "heading", name="Review"
        ).click()  # a person's first click lands somewhere on the page
        settle(page)
        page.keyboard.press("Alt+j")
        expect(page.get_by_role("heading", name="Record 5")).to_be_visible(timeout=30_000)
        settle(page)
        page.keyboard.press("Alt+k")
        expect(page.get_by_role("heading", name="Record 6")).to_be_visible(timeout=30_000)
        page.goto(app_url)
        # Overview links into Review filtered to the role-typo issue
        page.get_by_role("link", name="role-typo (1)").click()
        expect(page.get_by_text("1 record matches")).to_be_visible(timeout=60_000)
        assert "issue=role-typo" in page.url
        # one click applies the safe autofix
        page.get_by_role("button", name="Fix").first.click()
        expect(page.get_by_text("Fixed role-typo")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("0 records match")).to_be_visible(
            timeout=30_000
        )  # it no longer has the issue
        # the Chinese badcase: write the right answer beside what the model said
        page.goto(app_url + "/review?text=一个小时")
        expect(page.get_by_text("1 record matches")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("The model said (bad output)")).to_be_visible()
        answer = page.get_by_label("The right answer")
        answer.fill("delivery_status")
        answer.press("Tab")  # leaving the box sends the text
        page.wait_for_timeout(1500)
        page.get_by_text("Training view").click()
        expect(page.get_by_text("tokens,")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("⟦delivery_status")).to_be_visible()  # the draft's new answer, trained
        page.evaluate("document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "review.png"))
        # approve with the keyboard, no mouse
        settle(page)
        page.keyboard.press("Alt+a")
        expect(page.get_by_text("as approved")).to_be_visible(timeout=30_000)
        # the HTML record is text: no script ran, no image tag rendered
        page.goto(app_url + "/review?category=html")
        expect(page.get_by_text("1 record matches")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(800)
        assert page.title() != "pwned"
        assert page.locator("img[src=x]").count() == 0
        page.screenshot(
            path=str(shots / "review-html.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 1300}
        )
        # Overview counts moved: one approved, no role typo left
        page.goto(app_url)
        page.get_by_text("By category").wait_for(timeout=60_000)
        expect(page.get_by_role("link", name="approved (1)")).to_be_visible()
        assert page.get_by_role("link", name="role-typo (1)").count() == 0
        body = page.inner_text("body")
        browser.close()
    assert "Review by status" in body
    from workbench import review

    store = Store.open(tmp_path / "store")
    badcase = review.load_queue(store, review.ReviewFilter(text="一个小时")).rows[0]
    record = review.open_record(store, badcase.id).record
    assert record.status == "approved" and record.messages[-1] == {
        **record.messages[-1],
        "role": "assistant",
        "content": "delivery_status",
    }


def test_every_page_opened_first_by_a_link_gets_the_apps_frame(app_url):
    """A bookmark of any page, opened in a new session, shows the app's navigation (sections, page titles), not
    Streamlit's list of the pages folder's files."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for path, title in (
            ("coverage", "Coverage"),
            ("quality", "Quality"),
            ("clusters", "Clusters"),
            ("imports", "Import"),
        ):
            context = browser.new_context(viewport={"width": 1400, "height": 900})  # a new session each
            page = context.new_page()
            page.goto(f"{app_url}/{path}")
            expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_label("Your name", exact=True).and_(page.locator("input"))).to_be_visible()
            assert page.get_by_role("link", name="Overview").count() == 1
            assert page.get_by_role("link", name="app", exact=True).count() == 0
            context.close()
        browser.close()
