"""Coverage: training records per category against the task type's band, and the general share."""

from __future__ import annotations

import pytest

from workbench import coverage, ingest
from workbench.curation import set_status
from workbench.errors import WorkbenchError
from workbench.export import ExportConfig
from workbench.store.records import Selection

from .conftest import chat


@pytest.fixture
def filled(store, write_jsonl):
    intents = [
        chat(f"我要退款，订单 {n}", "refund", category="退款意图", task_type="classification")
        for n in range(30)
    ]
    slots = [
        chat(f"Order {n}: two burgers", f'{{"order_id": {n}}}', category="slots", task_type="extract")
        for n in range(12)
    ]
    odd = [
        chat("hello", "hi", category="chitchat"),
        chat("broken", "", category="slots", task_type="extract"),
    ]
    ingest.import_file(store, write_jsonl(intents + slots + odd, name="badcases.jsonl"))
    general = [chat(f"Write a haiku about {w}", "...") for w in ("rain", "tea", "cats", "雪", "山")]
    ingest.import_file(store, write_jsonl(general, name="general.jsonl"), dataset="general")
    set_status(store, Selection(category="退款意图"), "approved", author="test")
    return store


def test_each_category_gets_its_task_types_band_and_a_verdict(filled):
    cov = coverage.coverage(filled)
    intent = cov.category("退款意图")
    assert (intent.task_type, intent.band, intent.band_source) == (
        "classification",
        (1000, 3000),
        "task type",
    )
    assert intent.ready == 30 and intent.by_status["approved"] == 30
    assert intent.verdict == "short" and intent.gap == 970
    assert intent.says == "short by 970 (30 ready of 1,000-3,000)"
    slots = cov.category("slots")
    assert slots.task_type == "extraction" and slots.ready == 0  # imported records are new, not ready
    assert slots.open_badcases == 13 and slots.with_errors == 1  # the empty answer
    assert cov.category("chitchat").verdict == "no target"


def test_a_band_set_by_hand_replaces_the_default_and_can_be_cleared(filled):
    coverage.set_target(filled, "退款意图", 10, 20, author="test")
    intent = coverage.coverage(filled).category("退款意图")
    assert (intent.band, intent.band_source, intent.verdict, intent.gap) == (
        (10, 20),
        "set",
        "over-full",
        -10,
    )
    coverage.set_target(filled, "退款意图", 25, 40)
    assert coverage.coverage(filled).category("退款意图").verdict == "in band"
    assert coverage.clear_target(filled, "退款意图") and not coverage.clear_target(filled, "退款意图")
    assert coverage.coverage(filled).category("退款意图").band == (1000, 3000)
    with pytest.raises(WorkbenchError, match="low <= high"):
        coverage.set_target(filled, "slots", 50, 10)


def test_duplicates_are_counted_apart_from_the_statuses(filled):
    with filled.transaction() as con:
        con.execute(
            "UPDATE records SET dup_of = 1 WHERE category = '退款意图' AND id IN "
            "(SELECT id FROM records WHERE category = '退款意图' ORDER BY id LIMIT 4 OFFSET 1)"
        )
    intent = coverage.coverage(filled).category("退款意图")
    assert (intent.ready, intent.duplicates, intent.by_status["approved"]) == (26, 4, 26)


def test_general_share_against_the_band(filled):
    share = coverage.coverage(filled).general
    assert (share.task_records, share.general_available) == (30, 5)
    assert share.general_needed == 8  # 20% of 38
    assert not share.in_band and "import more general data" in share.says
    share = coverage.coverage(filled, ExportConfig(general_share=0.1)).general
    assert share.general_needed == 3 and "outside the 15%-30% band" in share.says


def test_ready_and_the_export_agree_on_a_badcase_that_rewords_an_eval_record(store, write_jsonl):
    """Coverage's ready and left_out_of_export judge with the export's own pool and look-alike check: a fixed
    badcase that only rewords an eval record is neither ready nor exported (issue 29 #7)."""
    from workbench.export import left_out_of_export, preview_export

    question = "我的外卖订单 12345 已经超过一个小时还没有送到，骑手电话也打不通，请帮我查一下"
    ingest.import_file(
        store, write_jsonl([chat(question, "delivery_status")], name="eval.jsonl"), dataset="eval"
    )
    badcases = [
        chat(
            question.replace("12345", "67890") + "！",
            "delivery_status",
            category="物流",
            task_type="classification",
        ),
        chat("帮我把订单改成明天中午送", "change_time", category="物流", task_type="classification"),
    ]
    report = ingest.import_file(store, write_jsonl(badcases, name="badcases.jsonl"))
    set_status(store, Selection(import_id=report.import_id), "fixed", author="test")
    ids = sorted(r[0] for r in store_ids(store, "badcases"))
    left_out = left_out_of_export(store, ids)
    assert list(left_out) == [ids[0]] and left_out[ids[0]][0] == "eval-leak", left_out
    assert "like eval record" in left_out[ids[0]][1]
    found = coverage.coverage(store).category("物流")
    assert (found.by_status["fixed"], found.ready, found.eval_leaks) == (2, 1, 1)
    assert [r.available for r in preview_export(store).rows if r.category == "物流"] == [found.ready]


def store_ids(store, dataset: str) -> list[tuple]:
    with store.connect() as con:
        return con.execute("SELECT id FROM records WHERE dataset = ?", [dataset]).fetchall()
