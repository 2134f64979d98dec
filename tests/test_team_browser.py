"""A team in one workbench, in Chromium against `streamlit run app.py`: a signed-out tab sees only the sign-in;
a labeller and a reviewer in two browser contexts; the labeller answers from their queue and cannot approve,
the reviewer approves and settles a planted disagreement. Screenshots go to SCREENSHOT_DIR when it is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import accounts, curation, ingest, queues, review, roles
from workbench.contracts import Contract
from workbench.review import ReviewFilter
from workbench.store import Store

from .conftest import chat
from .test_browser import ARGS, CHROMIUM, running_app
from .test_browser_review import shots as screenshot_folder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
    ),
]

LABELS = ["退款", "物流", "取消", "其他"]
QUESTIONS = [
    "我要退款，汤全洒了",
    "外卖到哪了？都一个小时了",
    "I want to cancel order 7781",
    "你们几点开门",
    "where is my rider?",
]


@pytest.fixture
def team_app(tmp_path, write_jsonl, monkeypatch):
    """20 intent records given to 小李 and 小张 (overlap 2); 小张 has answered all of them, 小李 all but the
    first, three of them differently (planted disagreements)."""
    monkeypatch.setenv(accounts.FAST_HASH_ENV, "1")
    store = Store.open(tmp_path / "store")
    rows = [chat(f"{QUESTIONS[i % 5]} (#{i})", LABELS[i % 4], category="意图") for i in range(20)]
    ingest.import_file(store, write_jsonl(rows))
    curation.set_contract(store, Contract("意图", "labels", LABELS))
    accounts.add_account(store, "王老板", "owner", "owner-password")
    with roles.acting_as("王老板"):
        accounts.add_account(store, "小李", "labeller", "labeller-password", created_by="王老板")
        accounts.add_account(store, "小张", "labeller", "labeller-password", created_by="王老板")
        accounts.add_account(store, "rev", "reviewer", "reviewer-password", created_by="王老板")
        queues.assign(store, ReviewFilter(), ["小李", "小张"], overlap=2)
    ids = [r.id for r in review.load_queue(store, ReviewFilter(), sort="oldest", limit=100).rows]
    for n, record_id in enumerate(ids):
        queues.submit_answer(store, record_id, "小张", LABELS[n % 4])
        if n:
            queues.submit_answer(
                store, record_id, "小李", LABELS[(n + 1) % 4] if n in (3, 7, 11) else LABELS[n % 4]
            )
    with running_app(tmp_path / "store") as url:
        yield url, store, ids


def sign_in(browser, url: str, name: str, password: str):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=60_000)
    page.get_by_label("Account").fill(name)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=60_000)
    return context, page


def settled(page) -> None:
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(600)


def test_two_accounts_in_two_browsers_labeller_answers_reviewer_approves_and_settles(team_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, store, ids = team_app
    shots = screenshot_folder(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # signed out: a deep link to any page shows only the sign-in
        anonymous = browser.new_page(viewport={"width": 1400, "height": 900})
        for path in ("/review?category=意图", "/agreement", "/train"):
            anonymous.goto(url + path)
            expect(anonymous.get_by_role("heading", name="Sign in")).to_be_visible(timeout=60_000)
            settled(anonymous)
            assert anonymous.get_by_role("link", name="Review").count() == 0
            assert "我要退款" not in anonymous.inner_text("body")
        anonymous.get_by_label("Account").fill("小李")
        anonymous.locator("input[type=password]").fill("wrong password")
        anonymous.get_by_role("button", name="Sign in").click()
        expect(anonymous.get_by_text("unknown account or wrong password")).to_be_visible(timeout=30_000)
        anonymous.screenshot(path=str(shots / "team-sign-in.png"))

        # the labeller: Review opens on their queue; they answer the record they had not answered yet
        lab_context, lab = sign_in(browser, url, "小李", "labeller-password")
        lab.get_by_role("link", name="Review").click()
        expect(lab.get_by_text("Queue of 小李: 19 done of 20 assigned")).to_be_visible(timeout=60_000)
        assert "queue=" in lab.url
        settled(lab)
        # a reload or a new tab asks to sign in again (the session lives in the tab): search within the page
        lab.get_by_label("Text", exact=True).fill("(#0)")  # the record 小李 has not answered
        lab.get_by_label("Text", exact=True).press("Enter")
        expect(lab.get_by_text("1 record matches")).to_be_visible(timeout=60_000)
        settled(lab)
        lab.get_by_role("textbox", name="Your answer").fill("退款")
        lab.wait_for_timeout(300)
        lab.get_by_role("button", name="Save my answer and go to the next").click()
        expect(lab.get_by_text("Queue of 小李: 20 done of 20 assigned")).to_be_visible(timeout=60_000)
        settled(lab)
        lab.screenshot(path=str(shots / "team-review-my-queue.png"))
        # a labeller cannot approve: the library refuses, the page says why
        lab.get_by_role("button", name="Approve").first.click()
        expect(lab.get_by_text("is a labeller; approve needs a reviewer or an owner")).to_be_visible(
            timeout=30_000
        )

        # the reviewer, in another browser context, approves and settles a disagreement
        rev_context, rev = sign_in(browser, url, "rev", "reviewer-password")
        rev.get_by_role("link", name="Review").click()
        expect(rev.get_by_role("heading", name="Record 20")).to_be_visible(timeout=60_000)
        settled(rev)
        rev.get_by_role("button", name="Approve").first.click()
        expect(rev.get_by_text("as approved")).to_be_visible(timeout=30_000)
        rev.get_by_role("link", name="Agreement").click()
        expect(rev.get_by_role("heading", name="Disagreements to settle (3)")).to_be_visible(timeout=60_000)
        settled(rev)
        rev.screenshot(path=str(shots / "team-agreement.png"), full_page=True)
        rev.get_by_role("button", name="Settle").first.click()
        expect(rev.get_by_role("heading", name="Disagreements to settle (2)")).to_be_visible(timeout=30_000)

        # the owner, a third person: the agreement on the 20 overlapped records, and who changed what
        own_context, own = sign_in(browser, url, "王老板", "owner-password")
        own.get_by_role("link", name="Agreement").click()
        expect(own.get_by_role("heading", name="Disagreements to settle (2)")).to_be_visible(timeout=60_000)
        expect(own.get_by_role("heading", name="Who changed what, per day")).to_be_visible(timeout=30_000)
        settled(own)
        body = own.inner_text("body")
        assert "Owners see who changed what" not in body and "rev" in body
        own_context.close()

        # signing out ends the session: the page shows the sign-in again, even after a reload
        lab.get_by_role("button", name="Sign out").click()
        expect(lab.get_by_role("heading", name="Sign in")).to_be_visible(timeout=30_000)
        lab.reload()
        expect(lab.get_by_role("heading", name="Sign in")).to_be_visible(timeout=60_000)
        lab_context.close()
        rev_context.close()
        browser.close()
    approved = review.open_record(store, ids[-1])
    assert approved.record.status == "approved" and approved.history[-1].author == "rev"
    assert queues.my_answer(store, ids[0], "小李") == "退款"
