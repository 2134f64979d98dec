"""The Review page under a person's hands, in Chromium against `streamlit run app.py`: coming back to it from
other pages, links and Back/Forward; a bulk action on two ticked rows; Ctrl+S right after typing; labels
picked with the number keys. Screenshots go to SCREENSHOT_DIR when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench import ingest, review
from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.review import ReviewFilter
from workbench.store import Store
from workbench.store.records import Selection

from .test_browser import ARGS, CHROMIUM, running_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
    ),
]

INTENT_SYSTEM = "把用户的话归类为以下标签之一 (reply with one label): refund, delivery, cancel, other"
LABELS = ["refund", "delivery", "cancel", "other"]
REPLIES = [
    ("拜拜", "再见，祝您生活愉快！"),
    ("你好，有人吗", "您好！请问有什么可以帮您？"),
    ("在吗？", "在的，请问有什么可以帮您？"),
    ("好的知道了", "好的，有需要随时找我。"),
    ("太感谢了", "不客气，祝您用餐愉快！"),
    ("谢谢，没别的事了", "不客气，再见！"),
    ("bye", "Goodbye, have a nice day!"),
    ("Hi, anyone there?", "Hi! How can I help you?"),
    ("hello?", "Hello! What can I do for you?"),
    ("ok got it", "Great, let us know if you need anything."),
    ("Thank you so much for the help", "You're welcome, enjoy your meal!"),
    ("thanks, that's all!", "You're welcome, bye!"),
]
INTENTS = [
    ("我要退款，汤全洒了", "refund"),
    ("外卖到哪了？都一个小时了", "delivery"),
    ("I want to cancel order 7781", "cancel"),
    ("你们几点开门", "other"),
]


def turns(system: str, user: str, answer: str) -> list[dict]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
    ]


@pytest.fixture
def app(tmp_path, write_jsonl):
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    replies = [
        {"messages": turns("用一句简短友好的话回答 (one short sentence)", q, a), "category": "short_reply",
         "bad_output": "I am sorry, I cannot help with that request because"}
        for q, a in REPLIES
    ]  # fmt: skip
    intents = [{"messages": turns(INTENT_SYSTEM, q, a), "category": "intent"} for q, a in INTENTS]
    ingest.import_file(store, write_jsonl(replies + intents, name="badcases.jsonl"))
    set_contract(store, Contract("intent", "labels", LABELS))
    set_status(store, Selection(category="short_reply"), "fixed", "test")
    with running_app(store_dir) as url:
        yield url, store


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settle(page) -> None:
    """Wait until the page has finished its run (a key pressed before its buttons are drawn goes nowhere)."""
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Next ▶ Shortcut Alt + J")).to_be_visible(timeout=60_000)
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(500)


def open_review(browser, url: str, query: str, matching: str):
    """A new tab on Review with `query`, once it shows `matching` and has finished its run."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{url}/review?{query}")
    expect(page.get_by_text(matching)).to_be_visible(timeout=60_000)
    settle(page)
    return page


def no_traceback(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("body")[:2000]


def test_review_works_after_other_pages_repeated_links_and_back_forward(app, browser):
    from playwright.sync_api import expect

    url, _ = app
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    sidebar = page.locator("[data-testid=stSidebar]")
    # Sidebar Review (no filter) -> Quality -> Review
    page.goto(url)
    expect(page.get_by_text("By category")).to_be_visible(timeout=60_000)
    sidebar.get_by_role("link", name="Review").click()
    expect(page.get_by_text("16 records match")).to_be_visible(timeout=60_000)
    sidebar.get_by_role("link", name="Quality").click()
    expect(page.get_by_role("heading", name="Quality", exact=True)).to_be_visible(timeout=60_000)
    sidebar.get_by_role("link", name="Review").click()
    expect(page.get_by_text("16 records match")).to_be_visible(timeout=60_000)
    settle(page)
    no_traceback(page)
    # the same Overview link twice
    for _ in range(2):
        sidebar.get_by_role("link", name="Overview").click()
        page.get_by_role("link", name="fixed (12)").click()
        expect(page.get_by_text("12 records match")).to_be_visible(timeout=60_000)
        settle(page)
        no_traceback(page)
    assert "status=fixed" in page.url
    # Back to Overview, Forward to the filtered queue
    page.go_back()
    expect(page.get_by_text("By category")).to_be_visible(timeout=60_000)
    page.go_forward()
    expect(page.get_by_text("12 records match")).to_be_visible(timeout=60_000)
    settle(page)
    no_traceback(page)
    assert "status=fixed" in page.url


def tick_rows(page, rows: list[int]) -> None:
    """Tick rows of the queue's table (a canvas: its checkboxes are clicked where they are drawn)."""
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    for row in rows:
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * row + 17)
        page.wait_for_timeout(1500)


def test_a_bulk_action_on_two_ticked_rows_changes_those_two(app, browser, tmp_path):
    from playwright.sync_api import expect

    url, store = app
    page = open_review(browser, url, "category=short_reply", "12 records match")
    expect(page.get_by_text("Applies to all 12 matching records")).to_be_visible()
    tick_rows(page, [0, 1])
    expect(page.get_by_text("Applies to the 2 ticked rows")).to_be_visible(timeout=30_000)
    tags = page.get_by_label("Tags", exact=True).first
    tags.fill("复核")
    tags.press("Tab")
    go = page.get_by_role("button", name="Add tags '复核': change 2 records")
    expect(go).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots(tmp_path) / "review-bulk.png"))
    go.click()
    expect(page.get_by_text("add tags '复核' on 2 records")).to_be_visible(timeout=30_000)
    no_traceback(page)
    assert review.load_queue(store, ReviewFilter(tags=("复核",))).total == 2


def test_ctrl_s_right_after_typing_saves_what_was_typed(app, browser):
    from playwright.sync_api import expect

    url, store = app
    page = open_review(browser, url, "text=拜拜", "1 record matches")
    answer = page.get_by_label("The right answer")
    answer.click()
    answer.press("Control+a")
    answer.press_sequentially("再见！欢迎下次光临")
    page.keyboard.press("Control+s")  # at once: the cursor is still in the box
    expect(page.get_by_text("Saved record")).to_be_visible(timeout=30_000)
    no_traceback(page)
    rid = review.load_queue(store, ReviewFilter(text="拜拜")).ids[0]
    record = review.open_record(store, rid).record
    assert record.messages[-1]["content"] == "再见！欢迎下次光临"
    assert record.version == 3  # set fixed, then this edit


def test_a_labels_contract_answer_is_picked_with_the_number_keys(app, browser, tmp_path):
    from playwright.sync_api import expect

    url, store = app
    page = open_review(browser, url, "text=汤全洒了", "1 record matches")
    for label in LABELS:
        expect(page.get_by_role("button", name=label, exact=False).first).to_be_visible()
    page.get_by_role(
        "heading", name="Review", exact=True
    ).click()  # the focus out of any box: a digit is a key, not text
    page.keyboard.press("3")
    expect(page.locator("textarea").last).to_have_value("cancel", timeout=30_000)
    page.screenshot(path=str(shots(tmp_path) / "review-labels.png"))
    settle(page)
    page.keyboard.press("Control+s")
    expect(page.get_by_text("Saved record")).to_be_visible(timeout=30_000)
    rid = review.load_queue(store, ReviewFilter(text="汤全洒了")).ids[0]
    assert review.open_record(store, rid).record.messages[-1]["content"] == "cancel"
