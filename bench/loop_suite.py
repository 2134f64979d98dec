"""Loop suite: the product at its defaults on public tasks nobody tuned to, beside a plain LoRA baseline.

For each task built by `python -m bench.loop_suite_data` (two English intent sets committed in bench/loop_suite,
and those built into store/loop-suite: Chinese news topics, Chinese app categories, English slot extraction to
JSON), in a fresh store of its own:

- the product: import the task's training records (its category, the labels contract for classification, the
  json contract for extraction), autofix and approve, then `cycle.run_cycle` at the defaults (no preset, no
  override: the export's task type and the model's size decide; 20% validation split), evaluating the base
  model and the tuned run on the task's held-out test records (the data set's own test split, imported as the
  eval dataset and never exported). Printed: held-out accuracy per task and per label, the share of answers
  that obey the contract, and the seconds from the import to the written adapter;
- the baseline, on the same export's training split: TRL's SFTTrainer with a plain peft LoRA (rank 16 on all
  linear layers, alpha 16, 2 epochs, batch 8, lr 2e-4 cosine, padded batches, the last weights), scored with
  the trainer's own validation scorer (greedy answers against the same contract) on the same test records.

Then the mean and the worst task of each. Targets (issue 26): every classification task >= 0.90 held out,
extraction >= the baseline, import -> adapter <= 300 s for ~500 records on this 2-core CPU.

Environment: BENCH_SUITE_TASKS (comma-separated names; default all built), BENCH_SUITE_BASELINE (0 skips the
baseline), BENCH_SUITE_DIR (where the tasks not committed were built; default store/loop-suite),
BENCH_TRAIN_THREADS (torch threads; 0: torch's default); for a quick look at the bench itself, not figures:
BENCH_SUITE_MAX_STEPS (stop both trainers after this many steps) and BENCH_SUITE_TEST_LIMIT (score this many
test records). To size the defaults: BENCH_SUITE_OVERRIDES, TrainConfig fields in JSON (e.g. {"lora_rank": 64})
on top of the defaults, printed with the settings.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bench.loop_suite_data import BUILT, suite_folders

TASKS = [t for t in os.environ.get("BENCH_SUITE_TASKS", "").split(",") if t]
BASELINE = os.environ.get("BENCH_SUITE_BASELINE", "1") != "0"
SUITE_DIR = Path(os.environ.get("BENCH_SUITE_DIR", str(BUILT)))
THREADS = int(os.environ.get("BENCH_TRAIN_THREADS", "0"))
MAX_STEPS = int(os.environ.get("BENCH_SUITE_MAX_STEPS", "0"))  # a quick look: stop both trainers early
TEST_LIMIT = int(os.environ.get("BENCH_SUITE_TEST_LIMIT", "0"))  # a quick look: score this many test records
# other settings to try against the defaults, as TrainConfig fields in JSON, e.g. {"lora_rank": 64}
OVERRIDES = json.loads(os.environ.get("BENCH_SUITE_OVERRIDES") or "{}")


@dataclass
class Outcome:
    task: str
    kind: str
    language: str
    records: int
    base: float
    tuned: float
    valid: float
    to_adapter_s: float
    settings: str
    per_label: dict[str, tuple[int, int]] = field(default_factory=dict)
    baseline: float | None = None
    baseline_s: float | None = None


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    folders = [f for f in suite_folders(SUITE_DIR) if not TASKS or f.name in TASKS]
    missing = sorted(set(TASKS) - {f.name for f in folders})
    if missing:
        raise SystemExit(f"no built task {', '.join(missing)}: run python -m bench.loop_suite_data first")
    built = {f.name for f in folders}
    print(
        f"{len(folders)} tasks: {', '.join(built)}"
        + (
            ""
            if len(folders) >= 5
            else f" (build the others with python -m bench.loop_suite_data into {SUITE_DIR})"
        ),
        flush=True,
    )
    outcomes = []
    for folder in folders:
        outcome = run_task(folder)
        outcomes.append(outcome)
        print_outcome(outcome)
    summary(outcomes)


def run_task(folder: Path) -> Outcome:
    from workbench.contracts import Contract
    from workbench.curation import apply_autofixes, set_contract, set_status
    from workbench.cycle import EvalPlan, EvalSet, TrainSettings, run_cycle
    from workbench.evaluate import EvalOptions, evaluation_results
    from workbench.export import ExportConfig
    from workbench.ingest import import_file
    from workbench.store import Store
    from workbench.store.records import Selection
    from workbench.train.runs import run_status

    task = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    name = task["category"]
    print(
        f"\n--- {task['name']} ({task['language']}, {task['kind']}, {task['train']} train / {task['test']} test; "
        f"{task['source']}) ---",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix=f"bench-suite-{task['name']}-"))
    try:
        store = Store.open(work / "store")
        started = time.perf_counter()
        report = import_file(store, folder / "train.jsonl", category=name, author="bench")
        import_file(store, folder / "test.jsonl", dataset="eval", category=name, author="bench")
        set_contract(
            store, Contract(name, "labels", task["labels"]) if task["labels"] else Contract(name, "json")
        )
        selection = Selection(import_id=report.import_id)
        apply_autofixes(store, selection, "bench")
        set_status(store, selection, "approved", "bench")
        imported_s = time.perf_counter() - started
        cycle = run_cycle(
            store,
            ExportConfig(name=task["name"], val=0.2, general_share=0.0),
            TrainSettings(
                overrides={"threads": THREADS or None, "max_steps": MAX_STEPS or None, **OVERRIDES}
            ),
            EvalPlan(
                (EvalSet("test", "dataset", dataset="eval", label="the held-out test set"),),
                EvalOptions(limit=TEST_LIMIT or None),
            ),
            progress=lambda line: say(line, started),
            author="bench",
        )
        to_adapter = imported_s + cycle.seconds.get("export", 0) + cycle.seconds.get("train", 0)
        row = run_status(store, cycle.run_id).row
        config = row.config
        settings = (
            f"rank {config.get('lora_rank')}, lr {config.get('learning_rate'):g}, "
            f"epochs {config.get('epochs'):g} (preset {config.get('preset')}); {row.step}/{row.total_steps} steps, "
            f"adapter from step {row.best_step}, validation accuracy {row.val_accuracy or 0:.0%}"
        )
        base, tuned = cycle.reports["base/test"].total, cycle.reports["run/test"].total
        results = evaluation_results(store, cycle.reports["run/test"].evaluation.id, limit=None)
        per_label: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        for r in results:
            cell = per_label[(r.reference or "") if task["labels"] else "all"]
            cell[0] += 1
            cell[1] += r.verdict == "right"
        outcome = Outcome(
            task["name"],
            task["kind"],
            task["language"],
            task["train"],
            base.accuracy or 0.0,
            tuned.accuracy or 0.0,
            sum(bool(r.contract_ok) for r in results) / max(1, len(results)),
            to_adapter,
            settings,
            {k: (v[0], v[1]) for k, v in per_label.items()},
        )
        if BASELINE:
            outcome.baseline, outcome.baseline_s = baseline(
                cycle.export_dir, folder / "test.jsonl", name, work
            )
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


def say(line: str, started: float) -> None:
    """A progress line with the seconds since the task started; training steps every tenth, and the last."""
    if " step " in line:
        done, _, total = line.rpartition(" step ")[2].partition("/")
        if done.isdigit() and int(done) % 10 and done != total:
            return
    print(f"  [{time.perf_counter() - started:5.0f} s] {line}", flush=True)


def baseline(export_dir: Path, test_file: Path, category: str, work: Path) -> tuple[float, float]:
    """TRL SFTTrainer + peft LoRA (rank 16, 2 epochs, padded batches) on the export's training split; held-out
    accuracy on the test records with the trainer's validation scorer, and the seconds it trained."""
    from peft import PeftModel

    from bench.train import train_with_trl
    from workbench.models import default_models_dir, end_of_turn_ids, load_causal_lm, load_chat_tokenizer
    from workbench.train.data import ChatEncoder, read_export
    from workbench.train.validation import scorable, task_accuracy

    models_dir = default_models_dir()
    started = time.perf_counter()
    train_with_trl(export_dir, work / "trl", models_dir, rank=16, epochs=2, max_steps=MAX_STEPS)
    seconds = time.perf_counter() - started
    contracts = read_export(export_dir).contracts
    records = [
        {"category": category, **json.loads(line)}
        for line in test_file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    records = scorable(records, contracts)[: TEST_LIMIT or None]
    encoder = ChatEncoder(load_chat_tokenizer(None, models_dir), end_of_turn_ids(None, models_dir))
    model = PeftModel.from_pretrained(load_causal_lm(None, models_dir), str(work / "trl"))
    result = task_accuracy(model, encoder, records, contracts, max_new_tokens=256, device="cpu")
    return result.correct / max(1, result.n), seconds


def print_outcome(o: Outcome) -> None:
    print(
        f"{o.task}: held-out accuracy base {o.base:.1%} -> tuned {o.tuned:.1%} ({o.valid:.0%} of answers obey the "
        f"contract); import -> adapter {o.to_adapter_s:.0f} s for {o.records} records; defaults: {o.settings}",
        flush=True,
    )
    if len(o.per_label) > 1:
        cells = sorted(o.per_label.items(), key=lambda kv: kv[1][1] / max(1, kv[1][0]))
        print("  per label: " + ", ".join(f"{k} {right}/{n}" for k, (n, right) in cells), flush=True)
    if o.baseline is not None:
        print(
            f"  baseline (TRL + peft LoRA r16, 2 epochs, padded): {o.baseline:.1%} in {o.baseline_s:.0f} s of training "
            f"-> product {o.tuned - o.baseline:+.1%}",
            flush=True,
        )


def summary(outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    print("\n| task | language | kind | base | product | baseline | import -> adapter (s) | defaults |")
    print("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        theirs = f"{o.baseline:.1%}" if o.baseline is not None else "-"
        print(
            f"| {o.task} | {o.language} | {o.kind} | {o.base:.1%} | {o.tuned:.1%} | {theirs} | "
            f"{o.to_adapter_s:.0f} | {o.settings} |"
        )
    mean = sum(o.tuned for o in outcomes) / len(outcomes)
    worst = min(outcomes, key=lambda o: o.tuned)
    line = f"product: mean {mean:.1%}, worst {worst.task} {worst.tuned:.1%}"
    with_baseline = [o for o in outcomes if o.baseline is not None]
    if with_baseline:
        theirs = sum(o.baseline for o in with_baseline) / len(with_baseline)
        worst_b = min(with_baseline, key=lambda o: o.baseline)
        line += f"; baseline: mean {theirs:.1%}, worst {worst_b.task} {worst_b.baseline:.1%}"
    print(line)
    short = [o.task for o in outcomes if o.kind == "classification" and o.tuned < 0.90]
    slow = [o.task for o in outcomes if o.to_adapter_s > 300]
    print(
        f"classification tasks under 0.90: {', '.join(short) or 'none'}; "
        f"import -> adapter over 300 s: {', '.join(slow) or 'none'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
