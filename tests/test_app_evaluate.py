"""The Evaluate page, run headless with AppTest through the app's entry file on a real store: it renders with no
evaluation and with two, shows fixed / regressed / still wrong records side by side, stores a person's verdict,
sends failures to badcases (then in Review), and says what to do when two evaluations share no record."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from workbench import coverage, ingest, review
from workbench import evaluate as E
from workbench.evaluate import side_by_side
from workbench.review import ReviewFilter

from .conftest import ROOT, chat, stored_evaluation

APP = str(ROOT / "app.py")
PAGE = "pages/evaluate.py"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    return Store.open()


def evaluation(store, outputs: list[str], verdicts: list[str], *, ids, categories, questions, refs) -> int:
    return stored_evaluation(
        store,
        [
            {
                "record_key": str(i),
                "record_id": i,
                "category": c,
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": r}],
                "reference": r,
                "output": o,
                "verdict": v,
                "loss": 1.0 + n,
            }
            for n, (i, c, q, r, o, v) in enumerate(
                zip(ids, categories, questions, refs, outputs, verdicts, strict=True)
            )
        ],
    )


@pytest.fixture
def two(store, write_jsonl):
    questions = [
        "我要退款，饭洒了",
        "Where is my order?",
        "帮我取消订单",
        "Write a thank-you note to the rider",
    ]
    refs = ["refund", "order_status", "cancel", "Thank you for the quick delivery!"]
    cats = ["退款", "order", "取消", "reply"]
    ingest.import_file(
        store,
        write_jsonl(
            [chat(q, r, category=c) for q, r, c in zip(questions, refs, cats, strict=True)], name="eval.jsonl"
        ),
        dataset="eval",
    )
    ids = review.load_queue(store, ReviewFilter(datasets=("eval",)), "oldest", limit=10).ids
    kw = dict(ids=ids, categories=cats, questions=questions, refs=refs)
    before = evaluation(
        store,
        ["complaint", "order_status", "complaint", "Thanks."],
        ["wrong", "right", "wrong", "pending"],
        **kw,
    )
    after = evaluation(
        store,
        ["refund", "delivery", "complaint", "Thank you, rider!"],
        ["right", "wrong", "wrong", "pending"],
        **kw,
    )
    return store, before, after


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_side_by_side_sorts_each_record_into_what_changed(two):
    store, before, after = two
    rows, counts = side_by_side(store, before, after)
    assert counts == {"fixed": 1, "regressed": 1, "still_wrong": 1, "still_right": 0, "pending": 1}
    by = {r.change: r for r in rows}
    assert (
        by["fixed"].prompt == "我要退款，饭洒了"
        and by["fixed"].before == "complaint"
        and by["fixed"].after == "refund"
    )
    assert "complaint" in by["fixed"].diff and "refund" in by["fixed"].diff
    assert by["still_wrong"].diff == "" and by["pending"].needs_person
    fixed, _ = side_by_side(store, before, after, change="regressed")
    assert [r.prompt for r in fixed] == ["Where is my order?"]
    E.set_verdict(store, after, 3, "better", author="t")
    assert side_by_side(store, before, after)[1]["pending"] == 1  # the before answer is not judged yet
    E.set_verdict(store, before, 3, "worse", author="t")
    counts = side_by_side(store, before, after)[1]
    assert (counts["pending"], counts["fixed"]) == (0, 2)


def test_empty_store_says_how_to_get_an_evaluation(store):
    at = open_page()
    assert any("No evaluation yet" in i.value for i in at.info)
    assert any("import an eval set" in i.value for i in at.info) and at.button(key="ev_start").disabled


def test_compare_judge_and_send_failures(two):
    store, before, after = two
    at = open_page()
    assert not at.error, [e.value for e in at.error]
    at.selectbox(key="ev_before").set_value(before).run()
    at.selectbox(key="ev_after").set_value(after).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Fixed"] == "1" and metrics["Regressed"] == "1" and metrics["Still wrong"] == "1"
    at.radio(key="ev_kind").set_value("fixed").run()
    texts = [t.value for t in at.text]
    assert "我要退款，饭洒了" in texts and "refund" in texts and "complaint" in texts
    at.radio(key="ev_kind").set_value("pending").run()
    at.button(key=f"ev_v_{after}_3_better").click().run()
    assert not at.exception, at.exception
    assert E.evaluation_results(store, after, limit=None)[3].human_verdict == "better"
    send = at.button(key="ev_send")
    assert send.label == "Send 2 failures to badcases"
    send.click().run()
    assert not at.exception, at.exception
    flash = " ".join(s.value for s in at.success)
    # the failures copy eval records: the page says the export leaves them out instead of promising it takes them
    assert "Sent 2 new badcases" in flash and "The next export leaves 2 of the 2 out" in flash, flash
    assert "eval record" in flash
    queue = review.load_queue(store, ReviewFilter(tags=(f"evaluation-{after}",)), "oldest", limit=10)
    assert queue.total == 2
    # Coverage's "ready" is what the export takes: the two fixed copies of eval records are not ready
    found = coverage.coverage(store)
    assert sum(c.by_status["fixed"] for c in found.categories) == 2
    assert sum(c.ready for c in found.categories) == 0
    assert sum(c.eval_leaks for c in found.categories) == 2


def test_two_evaluations_of_different_sets_say_what_to_do(two):
    store, before, after = two
    with store.transaction() as con:
        con.execute(
            "UPDATE evaluation_results SET record_key = 'other-' || record_key WHERE evaluation_id = ?",
            [before],
        )
    at = open_page()
    at.selectbox(key="ev_before").set_value(before).run()
    at.selectbox(key="ev_after").set_value(after).run()
    assert any("share no scored record" in e.value for e in at.error)


def test_accuracy_per_cluster_shows_when_the_badcases_sent_from_the_set_are_clustered(two):
    """The eval set is seldom clustered, the badcases made from its failures are: the page groups by their
    clusters instead of saying "No clustering yet" (issue 29 #9)."""
    from .test_clusters_view import save_run

    store, before, after = two
    sent = E.send_failures_to_badcases(store, before, author="t")
    save_run(store, {0: sent.created})  # a clustering of the badcases only
    at = open_page()
    at.selectbox(key="ev_before").set_value(before).run()
    at.selectbox(key="ev_after").set_value(after).run()
    assert not at.exception, at.exception
    assert not any("clustering yet" in c.value for c in at.caption)
    cmp = E.compare_evaluations(store, before, after)
    assert [(g.name, g.n, g.fixed, g.still_wrong) for g in cmp.clusters] == [("cluster 0", 2, 1, 1)]


def test_a_single_evaluations_answers_that_wait_for_a_person_are_judged_on_the_page(store, write_jsonl):
    """One evaluation alone (no second to compare with): its answers without a contract are listed with their
    question, answer and reference and the four verdicts; a verdict is stored, counts in its accuracy, and the
    answer leaves the list (issue 27)."""
    questions = ["给骑手写一句感谢的话", "Write a thank-you note to the rider", "我要退款，饭洒了"]
    refs = ["谢谢你这么快送到！", "Thank you for the quick delivery!", "refund"]
    cats = ["回复 reply", "回复 reply", "退款"]
    ingest.import_file(
        store,
        write_jsonl([chat(q, r, category=c) for q, r, c in zip(questions, refs, cats, strict=True)]),
        dataset="eval",
    )
    ids = review.load_queue(store, ReviewFilter(datasets=("eval",)), "oldest", limit=10).ids
    only = evaluation(
        store,
        ["辛苦了，谢谢！", "Thanks, rider!", "refund"],
        ["pending", "pending", "right"],
        ids=ids,
        categories=cats,
        questions=questions,
        refs=refs,
    )
    at = open_page()
    assert any(h.value == "Answers waiting for a person" for h in at.subheader)
    texts = [t.value for t in at.text]
    assert {"给骑手写一句感谢的话", "辛苦了，谢谢！", "谢谢你这么快送到！", "Thanks, rider!"} <= set(texts)
    assert "我要退款，饭洒了" not in texts  # a contract judged it
    at.button(key=f"ev_v_{only}_0_same").click().run()
    assert not at.exception, at.exception
    assert E.evaluation_results(store, only, limit=None)[0].human_verdict == "same"
    assert E.evaluation_report(store, only).total.right == 2
    texts = [t.value for t in at.text]
    assert "给骑手写一句感谢的话" not in texts and "Thanks, rider!" in texts
    at.button(key=f"ev_v_{only}_1_worse").click().run()
    assert E.evaluation_report(store, only).total.wrong == 1
    assert not any(h.value == "Answers waiting for a person" for h in at.subheader)
