"""The evaluation cache: a re-run reads every answer and loss instead of computing it, with the same results, and
any change of what decides an answer (the model's weights, the adapter's, the prompt, the token budget) computes
it again. Real store files, a tiny llama and a real LoRA run of it, English and Chinese records."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from workbench import evaluate as E
from workbench.contracts import Contract
from workbench.curation import edit_record, set_contract, set_status
from workbench.evaluate.cache import cache_stats
from workbench.export import ExportConfig, export_training_set
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store.records import Selection, list_records
from workbench.train import TrainConfig
from workbench.train import runs as R

from .data_train import INTENTS, classification_records

OPEN = [  # no contract: their answers wait for a person, but they are generated and cached all the same
    {
        "messages": [
            {"role": "user", "content": "用一句话介绍长城。"},
            {"role": "assistant", "content": "长城很长。"},
        ]
    },
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
]


def options(**changes) -> E.EvalOptions:
    return E.EvalOptions(**{"max_new_tokens": 24, "batch_size": 8, "chunk": 8, **changes})


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny):
    """A store with an `eval` dataset (intents under a labels contract, and open questions) and a finished LoRA
    run of the tiny model."""
    root = tmp_path_factory.mktemp("cache")
    store = Store.open(root / "store")
    records = classification_records(40, seed=7, chinese_share=0.5)
    path = root / "intents.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:30]), encoding="utf-8")
    held = root / "eval.jsonl"
    held.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[30:] + OPEN), encoding="utf-8"
    )
    report = import_file(store, path)
    import_file(store, held, dataset="eval")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    exported = export_training_set(store, ExportConfig(name="intents", val=0.2, general_share=0.0))
    config = TrainConfig(
        base_model=tiny, max_steps=2, batch_size=8, lora_rank=4, eval_accuracy=False, save_every_steps=0
    )
    run_id = R.start_run(store, exported.folder, config, author="test")
    assert R.wait_for_run(store, run_id, timeout_s=300).state == "done"
    return store, run_id


def evaluate(store, model, base_model=None, phases=None, **changes) -> E.EvaluationReport:
    return E.evaluate(
        store,
        model,
        "dataset",
        dataset="eval",
        base_model=base_model,
        options=options(**changes),
        progress=(lambda done, total, info: phases.append(info.get("phase"))) if phases is not None else None,
    )


def results(store, report) -> list[tuple]:
    rows = E.evaluation_results(store, report.evaluation.id, limit=None)
    return [(r.record_key, r.output, r.verdict, r.loss, r.output_tokens) for r in rows]


def test_a_rerun_reads_every_answer_and_loss_from_the_cache_without_loading_the_model(world, tiny):
    store, _run = world
    first = evaluate(store, "base", tiny)
    n = first.total.n
    assert n == 12 and first.cache.answers == 0 and first.cache.answers_of == n
    phases: list[str] = []
    again = evaluate(store, "base", tiny, phases)
    assert (again.cache.answers, again.cache.answers_of, again.cache.losses, again.cache.losses_of) == (
        n,
        n,
        n,
        n,
    )
    assert results(store, again) == results(store, first)
    rows = E.evaluation_results(store, again.evaluation.id, limit=None)
    assert any("\u4e00" <= ch <= "\u9fff" for r in rows for ch in r.messages[-2]["content"])  # Chinese too
    assert "loading the model" not in phases and "answers from the cache" in phases
    assert again.as_dict()["cache"]["answers"] == n
    assert cache_stats(store)["answer"] >= n
    off = evaluate(store, "base", tiny, cache=False)
    assert off.cache.answers == 0 and results(store, off) == results(store, first)


def test_a_copy_of_the_model_hits_and_changed_weights_miss(world, tiny, tmp_path):
    store, _run = world
    before = evaluate(store, "base", tiny)
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    same = evaluate(store, "base", str(copy))  # the content decides, not the folder's name
    assert same.cache.answers == same.total.n
    weights = load_file(copy / "model.safetensors")
    name = next(k for k in weights if "mlp" in k)
    weights[name] = weights[name] * 1.5
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    changed = evaluate(store, "base", str(copy))
    assert changed.cache.answers == 0 and changed.cache.losses == 0
    assert [r[3] for r in results(store, changed)] != [r[3] for r in results(store, before)]


def test_retrained_adapter_weights_in_the_same_folder_miss(world):
    store, run_id = world
    first = evaluate(store, run_id)
    assert evaluate(store, run_id).cache.answers == first.total.n
    folder = first.evaluation.config["adapter"]
    path = f"{folder}/adapter_model.safetensors"
    weights = load_file(path)
    save_file({k: v + 0.05 for k, v in weights.items()}, path, metadata={"format": "pt"})
    changed = evaluate(store, run_id)
    assert changed.cache.answers == 0 and changed.cache.losses == 0


def test_an_edited_prompt_misses_only_its_own_record(world, tiny):
    store, _run = world
    evaluate(store, "base", tiny)
    with store.connect() as con:
        record = next(r for r in list_records(con, Selection(datasets=("eval",)), limit=100) if r.category)
    messages = [dict(m) for m in record.messages]
    messages[-2]["content"] += " 谢谢！"
    edit_record(store, record.id, record.version, {"messages": messages}, "test")
    edited = evaluate(store, "base", tiny)
    assert (edited.cache.answers, edited.cache.losses) == (edited.total.n - 1, edited.total.n - 1)


def test_another_system_prompt_or_token_budget_misses(world, tiny):
    store, _run = world
    evaluate(store, "base", tiny)
    trial = E.evaluate(
        store,
        "base",
        "dataset",
        dataset="eval",
        base_model=tiny,
        options=options(),
        system_prompt="只回答标签。",
    )
    assert trial.cache.answers == 0
    longer = evaluate(store, "base", tiny, max_new_tokens=32)
    # the open questions' budget grew; the intents' comes from their references (under the old cap too), and
    # the losses do not depend on the budget at all
    assert longer.cache.answers == longer.total.n - len(OPEN) and longer.cache.losses == longer.total.n


def test_the_cli_shows_the_cache_hits(world, tiny):
    from click.testing import CliRunner

    from workbench.cli import main

    store, run_id = world
    args = ["--store", str(store.root), "evaluate", str(run_id), "--on", "eval", "--max-new-tokens", "24"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, args)
    n = E.list_evaluations(store, limit=1)[0].total.n
    assert f"from the cache: {n} of {n} answers, {n} of {n} losses" in again.output
    off = CliRunner().invoke(main, [*args, "--no-cache"])
    assert f"from the cache: 0 of {n} answers" in off.output
