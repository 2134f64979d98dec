"""End to end in a real browser: Debian's Chromium, driven by Playwright, against `streamlit run app.py`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workbench import ingest
from workbench.store import Store

from .conftest import ROOT, chat

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path, write_jsonl):
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    ingest.import_file(store, write_jsonl([chat("我要退款", "refund", category="退款"),
                                           chat("我的外卖到哪了", "delivery_status", category="物流"),
                                           chat("where is it", "delivery_status", category="物流"),
                                           {"messages": [{"role": "user", "content": "hi"},
                                                         {"role": "asistant", "content": "yo"}]}]))
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(store_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail("streamlit did not come up within 60 s")
        time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=10)


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
        browser.close()
    assert "Overview" in body and "Records" in body
    metrics = body.split("Records", 1)[1]
    assert metrics.split()[0] == "4"
    assert (shots / "overview.png").stat().st_size > 10_000
