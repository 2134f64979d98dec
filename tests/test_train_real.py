"""End to end on the real embedded model (SmolLM2-135M-Instruct): a few LoRA steps on a small export
lower the validation loss, and the adapter reloads with plain peft and gives the trained model's loss."""

from __future__ import annotations

import pytest
from peft import PeftModel

from tests.data_train import write_classification_export
from workbench.models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer
from workbench.train import TrainConfig, train
from workbench.train.data import ChatEncoder, encode_records, read_export
from workbench.train.folder import RunFolder
from workbench.train.validation import validation_loss


@pytest.mark.slow
def test_real_model_loss_falls_and_the_adapter_reloads_with_plain_peft(tmp_path):
    export = write_classification_export(tmp_path / "export", n=40, val_share=0.2)
    data = read_export(export)
    encoder = ChatEncoder(load_chat_tokenizer(None), end_of_turn_ids(None))
    val = encode_records(encoder, data.val, 2048).examples
    before = validation_loss(load_causal_lm(None), val, max_tokens=4096, device="cpu")

    config = TrainConfig(
        max_steps=6,
        batch_size=4,
        lora_rank=8,
        learning_rate=1e-3,
        eval_every_steps=6,
        eval_accuracy=False,
        save_every_steps=0,
        warmup_ratio=0.0,
    )
    result = train(export, config, tmp_path / "run")
    after = result.val_loss
    assert after < 0.6 * before, (before, after)  # the answers are labels the base model never gives
    steps = [r["loss"] for r in RunFolder(tmp_path / "run").metrics() if r.get("kind") != "eval"]
    assert sum(steps[-2:]) < sum(steps[:2])

    reloaded = PeftModel.from_pretrained(load_causal_lm(None), str(result.adapter_dir))
    assert validation_loss(reloaded, val, max_tokens=4096, device="cpu") == pytest.approx(after, rel=1e-4)
