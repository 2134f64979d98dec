"""Trainer benchmark: our LoRA trainer against TRL's SFTTrainer on the same data, model and settings.

SmolLM2-135M-Instruct (the embedded model), LoRA rank 16 on all linear layers, the generated
200-record intent-classification export (180 train, 20 held out), the same epochs, batch size,
learning rate, schedule and seed. Printed: training tokens/s of each (real tokens, no padding,
over the time spent in training steps) and the ratio; held-out task accuracy of each adapter,
scored the same way (greedy answers against the labels contract), beside the base model's.

Environment: BENCH_TRAIN_EPOCHS (default 2), BENCH_TRAIN_RECORDS (default 200).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

EPOCHS = float(os.environ.get("BENCH_TRAIN_EPOCHS", "2"))
RECORDS = int(os.environ.get("BENCH_TRAIN_RECORDS", "200"))
BATCH, LR, RANK, SEED, WARMUP = 8, 2e-4, 16, 42, 0.03


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from workbench.models import default_models_dir
    from workbench.train import TrainConfig, train
    from workbench.train.synthetic import write_classification_export

    models_dir = default_models_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        export = write_classification_export(work / "export", n=RECORDS)
        print(f"SmolLM2-135M-Instruct, LoRA r{RANK} all-linear, {RECORDS} records (intents, EN/ZH), {EPOCHS:g} epochs, "
              f"batch {BATCH}, lr {LR:g} cosine, float32 on CPU, {torch.get_num_threads()} threads", flush=True)

        config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, learning_rate=LR, lora_rank=RANK, seed=SEED,
                             warmup_ratio=WARMUP, eval_accuracy=False, save_every_steps=0, final_adapter="last")
        started = time.perf_counter()
        ours = train(export, config, work / "ours", models_dir=models_dir)
        ours_wall = time.perf_counter() - started
        print(f"workbench: {ours.tokens:,} tokens in {ours.train_seconds:.0f} s of steps ({ours_wall:.0f} s in all) "
              f"-> {ours.tokens_per_s:.1f} tokens/s", flush=True)

        trl_tokens, trl_seconds = train_with_trl(export, work / "trl", models_dir)
        trl_rate = trl_tokens / trl_seconds
        print(f"TRL SFTTrainer: {trl_tokens:,} tokens in {trl_seconds:.0f} s -> {trl_rate:.1f} tokens/s", flush=True)
        print(f"tokens/s: workbench {ours.tokens_per_s:.1f} vs TRL {trl_rate:.1f} = {ours.tokens_per_s / trl_rate:.2f}x "
              f"(target >= 1.5x)", flush=True)

        base_acc, ours_acc, trl_acc = held_out_accuracy(export, models_dir, [None, ours.adapter_dir, work / "trl"])
        print(f"held-out accuracy ({base_acc.n} records): workbench {ours_acc.accuracy:.0%}, TRL {trl_acc.accuracy:.0%}, "
              f"base model {base_acc.accuracy:.0%} (target: workbench >= TRL)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_with_trl(export: Path, out: Path, models_dir: Path) -> tuple[int, float]:
    """Train with TRL's SFTTrainer (prompt-completion data, so the loss is on the answer only, like ours);
    returns (real tokens trained on, seconds in trainer.train())."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from workbench.models import resolve_model
    from workbench.train.data import read_export

    path = resolve_model(None, models_dir)
    rows = [{"prompt": [{"role": m["role"], "content": m["content"]} for m in r["messages"][:-1]],
             "completion": [{"role": "assistant", "content": r["messages"][-1]["content"]}]}
            for r in read_export(export).train]
    args = SFTConfig(output_dir=str(out), num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH,
                     learning_rate=LR, lr_scheduler_type="cosine", warmup_ratio=WARMUP, seed=SEED,
                     max_length=2048, completion_only_loss=True, save_strategy="no", report_to="none",
                     logging_steps=10, use_cpu=True, bf16=False, disable_tqdm=True, dataloader_num_workers=0)
    lora = LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=AutoTokenizer.from_pretrained(path), peft_config=lora)
        tokens = int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * EPOCHS)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    trainer.model.save_pretrained(out)
    return tokens, seconds


def held_out_accuracy(export: Path, models_dir: Path, adapters: list):
    """Task accuracy on the held-out records for the base model and each adapter, scored identically."""
    from peft import PeftModel

    from workbench.models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer
    from workbench.train.data import ChatEncoder, read_export
    from workbench.train.evaluate import scorable, task_accuracy

    data = read_export(export)
    encoder = ChatEncoder(load_chat_tokenizer(None, models_dir), end_of_turn_ids(None, models_dir))
    records = scorable(data.val, data.contracts)
    results = []
    for adapter in adapters:
        model = load_causal_lm(None, models_dir)
        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter))
        results.append(task_accuracy(model, encoder, records, data.contracts, max_new_tokens=32, device="cpu"))
    return results


if __name__ == "__main__":
    main()
