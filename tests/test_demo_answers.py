"""The demo's base-model answers shipped as data (workbench/demo_data/base_answers.json): the demo workspace is
built from them in seconds without loading a model, and they are what the embedded model really says: a sample is
regenerated here with the same settings and must match exactly."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from workbench import demo
from workbench.evaluate import EvalOptions, evaluation_results
from workbench.evaluate.run import _contract_budgets, load_model_for, prompt_key
from workbench.generation import decode_answer, generate_greedy
from workbench.models import EMBEDDED_MODEL
from workbench.store import Store

SHIPPED = demo.shipped_answers()
pytestmark = pytest.mark.skipif(
    SHIPPED is None, reason="no shipped answers for the embedded model installed here"
)


def test_the_demo_builds_from_its_shipped_answers_in_seconds_without_a_model(tmp_path, monkeypatch):
    models = tmp_path / "models"  # an empty models folder: loading the model would convert it into here
    monkeypatch.setenv("WORKBENCH_MODELS", str(models))
    store = Store.open(tmp_path / "store")
    said: list[str] = []
    started = time.perf_counter()
    report = demo.build_demo(store, progress=said.append)
    seconds = time.perf_counter() - started
    assert seconds < 30, f"{seconds:.1f} s"
    assert not any(models.iterdir()), "no model was loaded or converted"
    assert any("shipped with the demo" in line for line in said)
    assert report.general == len(SHIPPED["general"]) >= 60  # short answers: most general prompts are kept
    assert (
        report.support == len(SHIPPED["support"])
        and report.badcases == report.base_evaluation.total.wrong > 0
    )
    rows = evaluation_results(store, report.base_evaluation.evaluation.id, limit=None)
    assert all(r.output == SHIPPED["support"][prompt_key(r.messages)]["output"] for r in rows)
    assert any("\u4e00" <= ch <= "\u9fff" for r in rows for ch in r.messages[-2]["content"])


def test_a_sample_of_the_shipped_answers_is_what_the_embedded_model_says(tmp_path):
    store = Store.open(tmp_path / "store")
    options = EvalOptions()
    model, encoder, device = load_model_for(EMBEDDED_MODEL, None, None, models_dir=store.models_dir)
    stops = sorted(encoder.end_of_turn_ids)
    pad = encoder.tok.pad_token_id if encoder.tok.pad_token_id is not None else 0

    # support prompts: the base evaluation's answers, under the budgets the whole set gave each category
    support = demo.demo_records()[demo.SUPPORT_DATASET]
    contracts = {c.category: c for c in demo.contracts()}
    rows = [SimpleNamespace(category=r["category"], reference=r["messages"][-1]["content"]) for r in support]
    budgets = _contract_budgets(rows, contracts, encoder, options.max_new_tokens)
    first = {}
    for r in support:
        first.setdefault(r["category"], r)
    sample = list(first.values())  # the first record of each category: an intent, slots, a reply
    assert {r["category"] for r in sample} == set(contracts)
    for record in sample:
        [answer] = generate_greedy(
            model,
            [encoder.prompt_ids(record["messages"])],
            max_new_tokens=budgets[record["category"]],
            stop_ids=stops,
            pad_id=pad,
            device=device,
        )
        assert (
            decode_answer(encoder.tok, answer.ids)
            == SHIPPED["support"][prompt_key(record["messages"])]["output"]
        )

    # general prompts: the answers kept (whole, not cut by the budget), and a Chinese one among them
    kept = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in SHIPPED["general"]}
    prompts = demo.general_prompts()
    chinese = next(
        p for p in prompts if any("\u4e00" <= ch <= "\u9fff" for ch in p) and demo.asked(p) in kept
    )
    english = next(p for p in prompts if demo.asked(p) in kept)
    again = demo.general_answers(store, [english, chinese], options=options)
    assert {r["messages"][0]["content"]: r["messages"][1]["content"] for r in again} == {
        demo.asked(p): kept[demo.asked(p)] for p in (english, chinese)
    }
    asked = [r["messages"][0]["content"] for r in again]
    assert (
        sum(q.count("请用一两句话回答") for q in asked) == 1
    )  # the Chinese prompt asks for a short answer once
