"""Trainer benchmark: our LoRA trainer against TRL's SFTTrainer on the same data, model and settings.

SmolLM2-135M-Instruct (the embedded model), LoRA rank 16 on all linear layers, the generated
200-record intent-classification export (180 train, 20 held out), the same epochs, batch size,
learning rate, schedule and seed. Printed: training tokens/s of each (real tokens, no padding,
over the time spent in training steps) and the ratio; task accuracy and loss of each adapter on
held-out records (the export's 20 validation records plus records generated apart, none with a
message that is also in training), scored the same way (greedy answers against the labels
contract), beside the base model's.

Environment: BENCH_TRAIN_EPOCHS (default 2), BENCH_TRAIN_RECORDS (default 200), BENCH_TRAIN_MAX_STEPS (stop
both early, for a quick look), BENCH_TRAIN_THREADS (torch threads for both; on a shared machine one thread
per process is far steadier than two, whose every parallel step waits for the slower core). The load
average is printed beside each figure: other processes on the machine slow both trainers.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

EPOCHS = float(os.environ.get("BENCH_TRAIN_EPOCHS", "2"))
RECORDS = int(os.environ.get("BENCH_TRAIN_RECORDS", "200"))
MAX_STEPS = int(os.environ.get("BENCH_TRAIN_MAX_STEPS", "0"))  # a quick look: stop both after this many steps
HELD_OUT = 200
THREADS = int(os.environ.get("BENCH_TRAIN_THREADS", "0"))  # torch CPU threads for both (0: torch's default)
BATCH, LR, RANK, SEED, WARMUP = 8, 2e-4, 16, 42, 0.03


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if THREADS:
        torch.set_num_threads(THREADS)
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices between the figures
    datasets.disable_progress_bars()
    from tests.data_train import write_classification_export
    from workbench.models import default_models_dir
    from workbench.train import TrainConfig, train

    models_dir = default_models_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        export = write_classification_export(work / "export", n=RECORDS)
        print(
            f"SmolLM2-135M-Instruct, LoRA r{RANK} all-linear, {RECORDS} records (intents, EN/ZH), {EPOCHS:g} epochs, "
            f"batch {BATCH}, lr {LR:g} cosine, float32 on CPU, {torch.get_num_threads()} threads",
            flush=True,
        )

        config = TrainConfig(
            epochs=EPOCHS,
            max_steps=MAX_STEPS,
            batch_size=BATCH,
            learning_rate=LR,
            lora_rank=RANK,
            seed=SEED,
            warmup_ratio=WARMUP,
            eval_accuracy=False,
            save_every_steps=0,
            final_adapter="last",
        )
        started = time.perf_counter()
        ours = train(export, config, work / "ours", models_dir=models_dir)
        ours_wall = time.perf_counter() - started
        print(
            f"workbench: {ours.tokens:,} tokens in {ours.train_seconds:.0f} s of steps ({ours_wall:.0f} s in all) "
            f"-> {ours.tokens_per_s:.1f} tokens/s (load average {load()})",
            flush=True,
        )

        trl_tokens, trl_seconds = train_with_trl(export, work / "trl", models_dir)
        trl_rate = trl_tokens / trl_seconds
        print(
            f"TRL SFTTrainer (gradient checkpointing off): {trl_tokens:,} tokens in {trl_seconds:.0f} s -> {trl_rate:.1f} tokens/s "
            f"(load average {load()})",
            flush=True,
        )
        print(
            f"tokens/s: workbench {ours.tokens_per_s:.1f} vs TRL {trl_rate:.1f} = {ours.tokens_per_s / trl_rate:.2f}x "
            f"(target >= 1.5x)",
            flush=True,
        )

        (base, base_loss), (mine, mine_loss), (theirs, theirs_loss) = held_out_accuracy(
            export, models_dir, [None, ours.adapter_dir, work / "trl"]
        )
        print(
            f"held-out accuracy ({mine.n} records): workbench {mine.accuracy:.1%} vs TRL {theirs.accuracy:.1%} = "
            f"{mine.accuracy - theirs.accuracy:+.1%} (target >= 0); base model {base.accuracy:.1%}",
            flush=True,
        )
        print(
            f"held-out loss: workbench {mine_loss:.4f}, TRL {theirs_loss:.4f}, base model {base_loss:.4f}",
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def train_with_trl(
    export: Path,
    out: Path,
    models_dir: Path,
    *,
    rank: int = RANK,
    epochs: float = EPOCHS,
    max_steps: int = MAX_STEPS,
    batch: int = BATCH,
    lr: float = LR,
    warmup: float = WARMUP,
    seed: int = SEED,
) -> tuple[int, float]:
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
    rows = [
        {
            "prompt": [{"role": m["role"], "content": m["content"]} for m in r["messages"][:-1]],
            "completion": [{"role": "assistant", "content": r["messages"][-1]["content"]}],
        }
        for r in read_export(export).train
    ]
    steps = math.ceil(epochs * math.ceil(len(rows) / batch))
    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=int(warmup * steps),
        seed=seed,
        max_steps=max_steps or -1,
        max_length=2048,
        completion_only_loss=True,
        save_strategy="no",
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        logging_steps=10,
        use_cpu=True,
        bf16=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        # TRL 1.16 turns gradient checkpointing on by default; a 135M model does not need it and
        # it costs TRL about a fifth of its speed here: compare against TRL's faster setting
        gradient_checkpointing=False,
    )
    lora = LoraConfig(
        r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=AutoTokenizer.from_pretrained(path),
            peft_config=lora,
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    tokens = int(trainer.state.num_input_tokens_seen)
    trainer.model.save_pretrained(out)
    return tokens, seconds


def held_out_accuracy(export: Path, models_dir: Path, adapters: list):
    """Task accuracy and loss of the base model and each adapter, scored identically on held-out records:
    the export's validation split plus records generated apart (another seed), never trained on; 20
    records alone would leave a difference of two answers to chance."""
    from peft import PeftModel

    from tests.data_train import classification_records
    from workbench.models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer
    from workbench.train.data import ChatEncoder, encode_records, read_export
    from workbench.train.validation import scorable, task_accuracy, validation_loss

    data = read_export(export)
    encoder = ChatEncoder(load_chat_tokenizer(None, models_dir), end_of_turn_ids(None, models_dir))
    seen = {r["messages"][1]["content"] for r in data.train}
    unseen = [
        r
        for r in data.val + classification_records(2 * HELD_OUT, seed=12345)
        if r["messages"][1]["content"] not in seen
    ]
    records = scorable(unseen[:HELD_OUT], data.contracts)
    examples = encode_records(encoder, records, 2048).examples
    results = []
    for adapter in adapters:
        model = load_causal_lm(None, models_dir)
        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter))
        accuracy = task_accuracy(model, encoder, records, data.contracts, max_new_tokens=32, device="cpu")
        results.append((accuracy, validation_loss(model, examples, max_tokens=4096, device="cpu")))
    return results


if __name__ == "__main__":
    main()
