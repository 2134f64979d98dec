"""The whole loop once with the real embedded model (SmolLM2-135M-Instruct): import → check → export → train →
evaluate base and tuned → compare, on generated intent records (English and Chinese, labels in the system prompt)."""

from __future__ import annotations

import json

import pytest

from workbench.evaluate import EvalOptions
from workbench.loop import run_loop
from workbench.store import Store
from workbench.train import runs as R

from .data_train import INTENTS, classification_records


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    yield
    for child in list(R._children.values()):
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.slow
def test_the_loop_on_the_real_model_learns_the_labels_it_is_evaluated_on(tmp_path):
    path = tmp_path / "intents.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": m["role"], "content": m["content"]} for m in r["messages"]]},
                ensure_ascii=False,
            )
            + "\n"
            for r in classification_records(60, seed=2)
        ),
        encoding="utf-8",
    )
    store = Store.open(tmp_path / "store")
    result = run_loop(
        store,
        path,
        category="intent",
        labels=list(INTENTS),
        export_name="intents",
        val=0.2,
        train_overrides={
            "max_steps": 12,
            "batch_size": 4,
            "lora_rank": 8,
            "learning_rate": 1e-3,
            "warmup_ratio": 0.0,
            "eval_accuracy": False,
            "save_every_steps": 0,
        },
        options=EvalOptions(batch_size=8),
    )
    held_out = result.held_out
    assert (
        held_out.total.n == 12 and held_out.total.pending == 0
    )  # every answer judged by the labels contract
    assert (
        held_out.total.right_after - held_out.total.right_before
        == held_out.total.fixed - held_out.total.regressed
    )
    # the tuned model has learnt the answers it never saw: the held-out references' loss falls sharply
    assert held_out.loss_after < 0.6 * held_out.loss_before, (held_out.loss_before, held_out.loss_after)
    assert (
        result.tuned.total.output_tokens < result.base.total.output_tokens
    )  # a label and stop, not a sentence
