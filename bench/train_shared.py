"""Trainer benchmark, shared prompts: our trainer with prompt sharing, TRL's SFTTrainer, and ours without
sharing, on the same data and settings in the same run.

Data: two labelling tasks whose records carry their task's system prompt as users write it (the label list
with a line of explanation per label): English customer messages to a bank (9 intents) and Chinese
questions (8 topic domains), `tests/data_train.py`'s `write_shared_prompt_export`; 10% held out. Every
trainer gets SmolLM2-135M-Instruct, LoRA on all linear layers at the rank our trainer picks for this model
and task when no preset is named, the same epochs, batch size, learning rate, cosine schedule and seed;
float32 on the CPU. Printed for each: wall time from the start of training to the trained adapter, training
tokens/s (real tokens of the conversations, over the same wall time) and held-out exact-label accuracy
(greedy answers of records never trained on: the validation split and records generated apart), and the two
ratios the issue asks for: our wall time against TRL's, and sharing on against off.

The three are run in turn (ours, TRL, ours without sharing; BENCH_SHARED_ROUNDS > 1 alternates them again)
with the load average printed beside each, since other processes on the machine slow all of them.

Environment: BENCH_SHARED_RECORDS (default 500), BENCH_SHARED_EPOCHS (default: the sized default, 3),
BENCH_SHARED_MAX_STEPS (stop each after this many steps, for a quick look), BENCH_SHARED_HELD_OUT (default
200), BENCH_SHARED_ROUNDS (default 1), BENCH_TRAIN_THREADS (torch threads for all; 0: torch's default).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_SHARED_RECORDS", "500"))
EPOCHS = os.environ.get("BENCH_SHARED_EPOCHS")
MAX_STEPS = int(os.environ.get("BENCH_SHARED_MAX_STEPS", "0"))
HELD_OUT = int(os.environ.get("BENCH_SHARED_HELD_OUT", "200"))
ROUNDS = int(os.environ.get("BENCH_SHARED_ROUNDS", "1"))
THREADS = int(os.environ.get("BENCH_TRAIN_THREADS", "0"))


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if THREADS:
        torch.set_num_threads(THREADS)
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    datasets.disable_progress_bars()
    from bench.train import load, train_with_trl
    from tests.data_train import write_shared_prompt_export
    from workbench.models import default_models_dir
    from workbench.train import TrainConfig, train
    from workbench.train.runs import config_for_export

    models_dir = default_models_dir()
    work = Path(tempfile.mkdtemp(prefix="bench-shared-"))
    try:
        export = write_shared_prompt_export(work / "export", n=RECORDS)
        # the defaults a user gets (no preset named), with what TRL cannot do switched off for all
        sized = config_for_export(export, models_dir=models_dir, epochs=float(EPOCHS) if EPOCHS else None)
        settings = {
            "epochs": sized.epochs,
            "max_steps": MAX_STEPS,
            "batch_size": sized.batch_size,
            "learning_rate": sized.learning_rate,
            "lora_rank": sized.lora_rank,
            "seed": sized.seed,
            "warmup_ratio": sized.warmup_ratio,
            "eval_accuracy": False,
            "save_every_steps": 0,
            "final_adapter": "last",
        }
        print(
            f"SmolLM2-135M-Instruct, LoRA r{sized.lora_rank} all-linear (the sized default), {RECORDS} records "
            f"(banking intents EN + domains ZH, label lists in the system prompts), {sized.epochs:g} epochs, batch "
            f"{sized.batch_size}, lr {sized.learning_rate:g} cosine, float32 on CPU, {torch.get_num_threads()} "
            f"threads",
            flush=True,
        )
        runs: dict[str, list[tuple[float, int, Path]]] = {"ours": [], "TRL": [], "ours, sharing off": []}
        for round_no in range(ROUNDS):
            for name in runs:
                out = work / f"{name.replace(', ', '-').replace(' ', '-')}-{round_no}"
                print(f"  {name}: training (load average {load()})", flush=True)
                started = time.perf_counter()
                if name == "TRL":
                    tokens, _ = train_with_trl(
                        export,
                        out,
                        models_dir,
                        rank=sized.lora_rank,
                        epochs=sized.epochs,
                        max_steps=MAX_STEPS,
                        batch=sized.batch_size,
                        lr=sized.learning_rate,
                        warmup=sized.warmup_ratio,
                        seed=sized.seed,
                    )
                    adapter = out
                else:
                    config = TrainConfig(**settings, share_prompts=name == "ours")
                    result = train(export, config, out, models_dir=models_dir)
                    tokens, adapter = result.tokens, result.adapter_dir
                wall = time.perf_counter() - started
                runs[name].append((wall, tokens, adapter))
                print(
                    f"  {name}: {wall:.0f} s to the adapter, {tokens:,} tokens, {tokens / wall:.1f} tokens/s "
                    f"(load average {load()})",
                    flush=True,
                )

        names = list(runs)
        accuracies = held_out(export, models_dir, [runs[n][-1][2] for n in names])
        print(f"{'':20} {'wall s':>8} {'tokens/s':>9} {'held-out accuracy':>18}")
        walls = {}
        for name, (accuracy, n) in zip(names, accuracies, strict=True):
            walls[name] = sum(w for w, _, _ in runs[name]) / len(runs[name])
            rate = sum(t for _, t, _ in runs[name]) / sum(w for w, _, _ in runs[name])
            print(f"{name:20} {walls[name]:8.0f} {rate:9.1f} {accuracy:17.1%}  ({n} records)", flush=True)
        print(
            f"wall time: ours / TRL = {walls['ours'] / walls['TRL']:.2f} (target <= 0.33); "
            f"ours with sharing is {walls['ours, sharing off'] / walls['ours']:.2f}x faster than without "
            f"(target >= 2x)",
            flush=True,
        )
        print(
            f"held-out accuracy: ours {accuracies[0][0]:.1%} vs TRL {accuracies[1][0]:.1%} = "
            f"{accuracies[0][0] - accuracies[1][0]:+.1%} (target >= 0)",
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def held_out(export: Path, models_dir: Path, adapters: list) -> list[tuple[float, int]]:
    """Exact-label accuracy of each adapter on records never trained on (the validation split and records
    generated apart with another seed, none with a message that is also in training), scored the same way."""
    from peft import PeftModel

    from tests.data_train import shared_prompt_records
    from workbench.models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer
    from workbench.train.data import ChatEncoder, read_export
    from workbench.train.validation import scorable, task_accuracy

    data = read_export(export)
    encoder = ChatEncoder(load_chat_tokenizer(None, models_dir), end_of_turn_ids(None, models_dir))
    seen = {r["messages"][1]["content"] for r in data.train}
    unseen = [
        r
        for r in data.val + shared_prompt_records(4 * HELD_OUT, seed=12345)
        if r["messages"][1]["content"] not in seen
    ]
    records = scorable(unseen[:HELD_OUT], data.contracts)
    results = []
    for adapter in adapters:
        model = PeftModel.from_pretrained(load_causal_lm(None, models_dir), str(adapter))
        accuracy = task_accuracy(model, encoder, records, data.contracts, max_new_tokens=16, device="cpu")
        results.append((accuracy.accuracy, accuracy.n))
    return results


if __name__ == "__main__":
    main()
