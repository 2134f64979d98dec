"""The evaluation commands end to end on a tiny llama: `workbench loop` (import → check → export → train →
evaluate base and tuned → compare), then evaluate, evaluations, compare, verdict, failures and prompt-trial."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from workbench.background import process
from workbench.cli import main

from .data_train import INTENTS, classification_records

GENERAL = [
    {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    for q, a in [
        ("What is the capital of France?", "Paris."),
        ("用一句话介绍熊猫。", "熊猫是生活在中国的珍稀动物，以竹子为食。"),
        ("Say hello in Spanish.", "Hola."),
        ("一年有几个季节？", "四个：春、夏、秋、冬。"),
        ("Give me a synonym of happy.", "Glad."),
        ("推荐一个周末活动。", "去公园散步。"),
        ("What colour is the sky on a clear day?", "Blue."),
        ("水的化学式是什么？", "H2O。"),
        ("How many legs does a spider have?", "Eight."),
        ("请说一个水果的名字。", "苹果。"),
    ]
]


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    yield
    for child in process.children():
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.fixture(scope="module")
def looped(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("loop")
    intents = root / "intents.jsonl"
    intents.write_text(
        "".join(
            json.dumps({"messages": r["messages"]}, ensure_ascii=False) + "\n"
            for r in classification_records(50, seed=9)
        ),
        encoding="utf-8",
    )
    general = root / "general.jsonl"
    general.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in GENERAL), encoding="utf-8")
    store = str(root / "store")
    result = CliRunner().invoke(
        main,
        [
            "--store",
            store,
            "loop",
            str(intents),
            "--general",
            str(general),
            "--category",
            "intent",
            "--labels",
            ",".join(INTENTS),
            "--model",
            str(tiny),
            "--epochs",
            "1",
            "--max-new-tokens",
            "6",
            "--json",
        ],
    )
    return root, store, result


def run(store: str, *args: str):
    return CliRunner().invoke(main, ["--store", store, *args])


def test_loop_runs_every_stage_and_reports_held_out_accuracy_fixed_regressed_and_general_loss(looped):
    _root, _store, result = looped
    assert result.exit_code == 0, result.output
    report = json.loads(next(line for line in reversed(result.output.splitlines()) if line.startswith("{")))
    assert report["imported"] == 50 and report["run_id"] >= 1
    held_out = report["held_out"]
    assert held_out["before"]["model"] == "base" and held_out["after"]["model"] == f"run {report['run_id']}"
    intent = {c["name"]: c for c in held_out["categories"]}["intent"]
    assert intent["n"] == 10  # 20% of 50 held out (and some general chats, waiting for a person's verdict)
    assert held_out["total"]["n"] == intent["n"] + held_out["total"]["pending"]
    assert set(held_out["total"]) >= {
        "fixed",
        "regressed",
        "still_wrong",
        "accuracy_before",
        "accuracy_after",
    }
    general = report["general"]
    assert general["total"]["n"] >= 1 and general["loss_before"] > 0 and general["loss_after"] > 0


def test_evaluations_list_report_results_and_hard_records(looped):
    _root, store, _ = looped
    listed = json.loads(run(store, "evaluations", "--json").output)
    assert [e["evaluation"]["eval_set"] for e in listed] == ["general", "general", "val", "val"]
    tuned = listed[2]["evaluation"]["id"]
    table = run(store, "evaluations", str(tuned))
    assert table.exit_code == 0 and "intent" in table.output and "acc." in table.output, table.output
    rows = json.loads(run(store, "evaluations", str(tuned), "--results", "all", "--json").output)
    assert sum(r["category"] == "intent" for r in rows) == 10
    hard = run(store, "evaluations", str(tuned), "--hard", "--limit", "2")
    assert hard.exit_code == 0 and "reference" in hard.output


def test_compare_prints_per_category_and_as_json(looped):
    _root, store, _ = looped
    listed = json.loads(run(store, "evaluations", "--json").output)
    base, tuned = listed[3]["evaluation"]["id"], listed[2]["evaluation"]["id"]
    text = run(store, "compare", str(base), str(tuned))
    assert (
        text.exit_code == 0
        and "fixed" in text.output
        and "regressed" in text.output
        and "intent" in text.output
    )
    data = json.loads(run(store, "compare", str(base), str(tuned), "--json").output)
    assert data["categories"][-1] == {**data["categories"][-1], "name": "intent", "n": 10}
    missing = run(store, "compare", str(base), "999")
    assert missing.exit_code == 1 and "no evaluation 999" in missing.output


def test_verdict_failures_and_evaluate_on_a_dataset(looped):
    _root, store, _ = looped
    general = json.loads(
        run(
            store,
            "evaluate",
            "base",
            "--on",
            "general",
            "--run",
            "1",
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--json",
        ).output
    )
    eid = general["evaluation"]["id"]
    assert run(store, "verdict", str(eid), "0", "both_bad").exit_code == 0
    sent = json.loads(run(store, "failures", str(eid), "--to", "retrain", "--json").output)
    assert len(sent["created"]) == 1  # the answer a person judged both bad
    on_dataset = run(store, "evaluate", "base", "--on", "retrain", "--max-new-tokens", "4")
    assert on_dataset.exit_code == 0, on_dataset.output
    assert "on dataset (retrain)" in on_dataset.output
    again = run(store, "evaluate", "--resume", str(eid))
    assert again.exit_code == 1 and "is done" in again.output


def test_prompt_trial_reports_prompting_beside_tuning(looped):
    root, store, _ = looped
    system = root / "system.txt"
    system.write_text(
        "Answer with one intent label only / 只回答一个标签: " + ", ".join(INTENTS), encoding="utf-8"
    )
    result = run(
        store,
        "prompt-trial",
        "--system",
        str(system),
        "--examples",
        "2",
        "--on",
        "val",
        "--max-new-tokens",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert "prompt trial on val" in result.output and "fixed" in result.output
    data = json.loads(
        run(
            store,
            "prompt-trial",
            "--system",
            str(system),
            "--examples",
            "2",
            "--on",
            "val",
            "--max-new-tokens",
            "4",
            "--json",
        ).output
    )
    assert data["prompted"]["evaluation"]["examples"] == 2 and data["tuned"]["evaluation"]["model"] == "run 1"
    assert data["prompt_vs_base"]["total"]["n"] == data["tuned_vs_base"]["total"]["n"] > 0
