"""The export preview: what `workbench export` with given settings would take per category, without a file."""

from __future__ import annotations

import pytest

from workbench import ingest
from workbench.curation import set_status
from workbench.errors import WorkbenchError
from workbench.export import ExportConfig, export_training_set, preview_export
from workbench.store.records import Selection

from .conftest import chat


@pytest.fixture
def filled(store, write_jsonl):
    bad = (
        [chat(f"我要退款，订单 {n}", "refund", category="退款") for n in range(12)]
        + [chat(f"Where is parcel {n}?", "delivery_status", category="delivery") for n in range(4)]
        + [chat("Cancel order 77 please", "cancel", category="cancel")]
    )
    ingest.import_file(store, write_jsonl(bad, name="bad.jsonl"))
    set_status(store, Selection(dataset="badcases"), "approved", "test")
    general = [chat(f"Write a poem about {w}", "...") for w in ("rain", "tea", "雪", "山", "海", "sky")]
    ingest.import_file(store, write_jsonl(general, name="general.jsonl"), dataset="general")
    ingest.import_file(
        store, write_jsonl([chat("Cancel order 77 please", "cancel")], name="eval.jsonl"), dataset="eval"
    )
    return store


def test_the_preview_takes_what_the_export_takes_and_writes_no_file(filled):
    config = ExportConfig(name="v1", per_category=8, general_share=0.2)
    preview = preview_export(filled, config)
    rows = {(r.pool, r.category): r for r in preview.rows}
    assert (rows["task", "退款"].available, rows["task", "退款"].taken, rows["task", "退款"].cut) == (
        12,
        8,
        4,
    )
    assert (rows["task", "delivery"].taken, rows["task", "delivery"].short) == (4, 4)
    assert rows["task", "cancel"].leaks == 1 and rows["task", "cancel"].taken == 0  # the eval record's twin
    assert preview.leaks == 1 and preview.nothing is None
    assert not (filled.root / "exports").exists() or not any((filled.root / "exports").iterdir())

    result = export_training_set(filled, config)
    assert {c.category: c.take for c in result.categories} == {
        r.category: r.taken for r in preview.rows if r.pool == "task"
    }
    assert sum(c.take for c in result.general) == sum(r.taken for r in preview.rows if r.pool == "general")
    assert preview.general_share == pytest.approx(result.general_share)


def test_the_preview_says_why_nothing_would_be_exported(store, write_jsonl):
    ingest.import_file(store, write_jsonl([chat("退款", "refund", category="退款")]))  # status new, not ready
    preview = preview_export(store)
    assert preview.nothing and "Approve or fix records first" in preview.nothing
    assert [(r.category, r.available, r.taken) for r in preview.rows if r.pool == "task"] == []


def test_bad_settings_are_refused_before_reading(filled):
    with pytest.raises(WorkbenchError):
        preview_export(filled, ExportConfig(general_share=1.5))
