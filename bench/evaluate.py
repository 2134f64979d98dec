"""Evaluation benchmark: our evaluation's generation against plain `model.generate`, one record at a time and
batched, in the same run, on the same prompts, model and token budget.

SmolLM2-135M-Instruct (the embedded model, float32 on CPU), the generated intent records (English and Chinese,
the ten labels listed in the system prompt, which every prompt shares), greedy decoding, at most
2 x the longest label + 8 new tokens (the budget an evaluation gives answers under a labels contract), stopping
at the end-of-turn token. Printed for each: records/s and generated tokens/s (tokens produced, through the
end-of-turn token), and how many answers are identical to the one-at-a-time answers. Then the whole
`workbench evaluate` (read the set, generate, score, each record's loss, write the results to the store)
over the same records as an eval dataset.

Each figure is the best of BENCH_EVAL_ROUNDS alternating rounds (default 2); the load average is printed beside
them, since other processes on the machine slow every method.

Environment: BENCH_EVAL_RECORDS (default 32), BENCH_EVAL_BATCH (default 16), BENCH_EVAL_ROUNDS (default 2),
BENCH_EVAL_THREADS (torch threads; on a shared machine one thread is steadier than two).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_EVAL_RECORDS", "32"))
ROUNDS = int(os.environ.get("BENCH_EVAL_ROUNDS", "2"))
BATCH = int(os.environ.get("BENCH_EVAL_BATCH", "16"))
THREADS = int(os.environ.get("BENCH_EVAL_THREADS", "0"))


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    if THREADS:
        torch.set_num_threads(THREADS)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    from tests.data_train import INTENTS, classification_records
    from workbench.evaluate import EvalOptions, evaluate
    from workbench.generation import generate_greedy
    from workbench.ingest import import_file
    from workbench.models import default_models_dir, end_of_turn_ids, load_causal_lm, load_chat_tokenizer
    from workbench.store import Store
    from workbench.train.data import ChatEncoder

    models_dir = default_models_dir()
    model = load_causal_lm(None, models_dir, dtype=torch.float32).eval()
    tok = load_chat_tokenizer(None, models_dir)
    encoder = ChatEncoder(tok, end_of_turn_ids(None, models_dir))
    records = classification_records(RECORDS, seed=11)
    prompts = [encoder.prompt_ids(r["messages"]) for r in records]
    budget = 2 * max(len(encoder.tokens(label)) for label in INTENTS) + 8
    stop = sorted(encoder.end_of_turn_ids)
    pad = tok.pad_token_id
    mean_prompt = sum(map(len, prompts)) / len(prompts)
    print(
        f"SmolLM2-135M-Instruct, float32 on CPU, {torch.get_num_threads()} threads; {RECORDS} intent records "
        f"(EN/ZH), prompts of {mean_prompt:.0f} tokens on average (the system prompt with the labels: "
        f"{len(encoder.prompt_ids(records[0]['messages'][:1]))} of them), greedy, at most {budget} new tokens, "
        f"batch {BATCH}",
        flush=True,
    )

    def cut(ids: list[int]) -> list[int]:
        for i, t in enumerate(ids):
            if t in stop:
                return ids[: i + 1]
        return ids

    @torch.no_grad()
    def one_by_one() -> list[list[int]]:
        out = []
        for p in prompts:
            ids = model.generate(
                input_ids=torch.tensor([p]),
                attention_mask=torch.ones(1, len(p), dtype=torch.long),
                max_new_tokens=budget,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=pad,
            )
            out.append(cut(ids[0, len(p) :].tolist()))
        return out

    @torch.no_grad()
    def batched() -> list[list[int]]:
        out: list[list[int]] = [[] for _ in prompts]
        order = sorted(
            range(len(prompts)), key=lambda i: len(prompts[i])
        )  # the same grouping by length as ours
        for k in range(0, len(order), BATCH):
            chunk = order[k : k + BATCH]
            longest = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, longest - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, longest - len(prompts[i]) :] = 1
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=budget,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=pad,
            )
            for row, i in enumerate(chunk):
                out[i] = cut(gen[row, longest:].tolist())
        return out

    def ours(share: bool) -> list[list[int]]:
        return [
            g.ids
            for g in generate_greedy(
                model,
                prompts,
                max_new_tokens=budget,
                stop_ids=stop,
                pad_id=pad,
                batch_size=BATCH,
                share_prefix=share,
            )
        ]

    methods = [
        ("model.generate, one record at a time", one_by_one),
        ("model.generate, batched", batched),
        ("ours, without sharing the prefix", lambda: ours(False)),
        ("ours (evaluation): shared system prompt computed once", lambda: ours(True)),
    ]
    results: dict[str, tuple[float, list[list[int]]]] = {}
    ours(True)  # warm-up (first calls allocate)
    for _round in range(ROUNDS):
        for name, run in methods:
            started = time.perf_counter()
            answers = run()
            seconds = time.perf_counter() - started
            if name not in results or seconds < results[name][0]:
                results[name] = (seconds, answers)
    print(
        f"(best of {ROUNDS} alternating rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
        flush=True,
    )
    reference = results[methods[0][0]][1]
    base_seconds = results[methods[0][0]][0]
    for name, (seconds, answers) in results.items():
        tokens = sum(map(len, answers))
        same = sum(a == b for a, b in zip(answers, reference, strict=True))
        print(
            f"{name:55s} {len(prompts) / seconds:7.2f} records/s  {tokens / seconds:7.1f} generated tokens/s  "
            f"({seconds:5.1f} s, {base_seconds / seconds:4.1f}x one at a time; answers identical to one at a "
            f"time: {same}/{len(prompts)})",
            flush=True,
        )

    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    try:
        path = work / "eval.jsonl"
        path.write_text(
            "".join(
                json.dumps({"messages": r["messages"], "category": "intent"}, ensure_ascii=False) + "\n"
                for r in records
            ),
            encoding="utf-8",
        )
        os.environ.setdefault("WORKBENCH_MODELS", str(models_dir))
        store = Store.open(work / "store")
        import_file(store, path, dataset="eval")
        from workbench.contracts import Contract
        from workbench.curation import set_contract

        set_contract(store, Contract("intent", "labels", list(INTENTS)))
        started = time.perf_counter()
        report = evaluate(store, "base", "dataset", dataset="eval", options=EvalOptions(batch_size=BATCH))
        seconds = time.perf_counter() - started
        total = report.total
        print(
            f"{'workbench evaluate base --on eval (whole job)':55s} {total.n / seconds:7.2f} records/s  "
            f"({seconds:5.1f} s: model load, generation, verdicts, each record's loss, results written to the "
            f"store in chunks; accuracy {total.accuracy:.1%})",
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
