"""End to end on the real embedded model (SmolLM2-135M-Instruct): a few LoRA steps on a small export
lower the validation loss, and the adapter reloads with plain peft and gives the trained model's loss.
The run is the one conftest's `real_loop` trains (one real training per session, shared with
test_evaluate_real)."""

from __future__ import annotations

import pytest
from peft import PeftModel

from workbench.models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer
from workbench.train import runs
from workbench.train.data import ChatEncoder, encode_records, read_export
from workbench.train.folder import RunFolder
from workbench.train.validation import validation_loss

pytestmark = pytest.mark.slow


def test_real_model_loss_falls_and_the_adapter_reloads_with_plain_peft(real_loop):
    store, loop = real_loop
    run = runs.run_status(store, loop.run_id)
    assert run.state == "done", run.row.error
    data = read_export(loop.export_dir)
    encoder = ChatEncoder(load_chat_tokenizer(None), end_of_turn_ids(None))
    val = encode_records(encoder, data.val, 2048).examples
    before = validation_loss(load_causal_lm(None), val, max_tokens=4096, device="cpu")

    after = run.row.val_loss
    assert after < 0.6 * before, (before, after)  # the answers are labels the base model never gives
    steps = [r["loss"] for r in RunFolder(run.folder.path).metrics() if r.get("kind") != "eval"]
    assert len(steps) == 12 and sum(steps[-2:]) < sum(steps[:2])

    reloaded = PeftModel.from_pretrained(load_causal_lm(None), run.row.adapter_dir)
    assert validation_loss(reloaded, val, max_tokens=4096, device="cpu") == pytest.approx(after, rel=1e-4)
