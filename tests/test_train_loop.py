"""The training loop on a tiny random llama (fast): the run folder, checkpoints, cancel and resume,
continuing an adapter, early stopping, the best checkpoint, overfitting flags, scoring."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.data_train import write_classification_export, write_export
from workbench.contracts import Contract
from workbench.errors import WorkbenchError
from workbench.train import Cancelled, TrainConfig, train
from workbench.train.folder import RunFolder
from workbench.train.validation import is_correct, overfitting_warnings


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_classification_export(tmp_path_factory.mktemp("export") / "intents", n=40)


def config(tiny, **changes) -> TrainConfig:
    values = {
        "base_model": tiny,
        "epochs": 2,
        "batch_size": 8,
        "lora_rank": 4,
        "learning_rate": 1e-2,
        "eval_max_new_tokens": 8,
        "save_every_steps": 0,
    }
    return TrainConfig(**{**values, **changes})


def adapter_weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_a_run_writes_status_metrics_checkpoints_adapter_and_report(tiny, export, tmp_path):
    seen = []
    result = train(
        export, config(tiny), tmp_path / "run", progress=lambda done, total, info: seen.append(done)
    )
    folder = RunFolder(tmp_path / "run")
    status = folder.status()
    assert (
        status["state"] == "done" and status["step"] == result.steps == result.total_steps == 10
    )  # 36/8 -> 5 x 2
    steps = [r for r in folder.metrics() if r.get("kind") != "eval"]
    evals = [r for r in folder.metrics() if r.get("kind") == "eval"]
    assert [r["step"] for r in steps] == list(range(1, 11))
    assert all(r["tokens_per_s"] > 0 and r["loss"] > 0 and r["lr"] > 0 for r in steps)
    assert [e["step"] for e in evals] == [5, 10]  # at the end of each epoch
    assert all(e["val_loss"] > 0 and 0 <= e["val_accuracy"] <= 1 and "train_accuracy" in e for e in evals)
    assert (
        evals[0]["val_detail"]["n"] == 4 == evals[0]["train_detail"]["n"]
    )  # the val set, and as many training
    assert sum(e["best"] for e in evals) >= 1
    assert seen[-1] == 10
    kept = sorted(p.name for p in folder.checkpoint_dirs())
    assert "step-000010" in kept and f"step-{result.best['step']:06d}" in kept and len(kept) <= 2
    report = folder.report()
    assert report["export"]["hash"] == json.loads((export / "manifest.json").read_text())["hash"]
    assert report["config"]["lora_rank"] == 4 and report["tokens"] == result.tokens > 0
    assert "train: 36 records -> 36 examples" in folder.log_path.read_text()


def test_the_adapter_loads_with_plain_peft_and_holds_the_chosen_checkpoint(tiny, export, tmp_path):
    result = train(export, config(tiny, final_adapter="last"), tmp_path / "run")
    base = AutoModelForCausalLM.from_pretrained(tiny)
    model = PeftModel.from_pretrained(base, str(result.adapter_dir))
    last = adapter_weights(tmp_path / "run" / "checkpoints" / "step-000010")
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(last) > 0
    for name, tensor in last.items():
        match = [v for k, v in loaded.items() if k.replace(".default", "") == name]
        assert match and torch.equal(match[0], tensor)
    assert result.adapter_from.startswith(("last", "best: step 10"))


def test_cancel_then_resume_ends_with_the_same_adapter_as_an_uninterrupted_run(tiny, export, tmp_path):
    straight = train(export, config(tiny, max_steps=7, eval_every_steps=3), tmp_path / "straight")
    stop_after = iter([False, False, False, False, True])
    with pytest.raises(Cancelled, match="stopped at step 5 of 7"):
        train(
            export,
            config(tiny, max_steps=7, eval_every_steps=3),
            tmp_path / "resumed",
            should_stop=lambda: next(stop_after),
        )
    folder = RunFolder(tmp_path / "resumed")
    assert folder.status()["state"] == "cancelled"
    assert folder.checkpoint_dirs()[-1].name == "step-000005"
    resumed = train(export, config(tiny, max_steps=7, eval_every_steps=3), tmp_path / "resumed", resume=True)
    assert resumed.steps == straight.steps == 7
    a, b = adapter_weights(straight.adapter_dir), adapter_weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [r["step"] for r in folder.metrics() if r.get("kind") != "eval"]
    assert steps == list(range(1, 8))  # each step once: the rows past the checkpoint were dropped and redone
    assert "resumed from step-000005" in folder.log_path.read_text()


def test_a_checkpoint_without_its_marker_file_is_ignored(tiny, export, tmp_path):
    folder = RunFolder(tmp_path / "run")
    (folder.checkpoints / "step-000003").mkdir(parents=True)  # as a kill in the middle of writing leaves it
    assert folder.checkpoint_dirs() == []
    with pytest.raises(WorkbenchError, match="no checkpoint to resume from"):
        train(export, config(tiny), folder.path, resume=True)
    assert folder.status()["state"] == "failed"


def test_continuing_an_adapter_starts_from_its_weights_and_a_fresh_one_does_not(tiny, export, tmp_path):
    first = train(export, config(tiny, max_steps=3), tmp_path / "first")
    still = config(tiny, max_steps=1, learning_rate=1e-12)
    continued = train(export, still, tmp_path / "continued", init_adapter=first.adapter_dir)
    fresh = train(export, still, tmp_path / "fresh")
    a, c, f = (adapter_weights(r.adapter_dir) for r in (first, continued, fresh))
    assert all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)
    lora_b = [k for k in a if "lora_B" in k]
    assert lora_b and all(float(f[k].abs().max()) < 1e-6 < float(a[k].abs().max()) for k in lora_b)
    assert "continuing the adapter" in (tmp_path / "continued" / "log.txt").read_text()


def test_early_stopping_stops_after_patience_evaluations_without_improvement_and_keeps_the_best(
    tiny, export, tmp_path
):
    # A learning rate far below float32 resolution leaves the validation loss exactly where it was: the
    # first evaluation stays the best, and every later one counts towards the patience.
    result = train(
        export,
        config(
            tiny,
            epochs=10,
            eval_every_steps=2,
            early_stopping_patience=2,
            learning_rate=1e-12,
            eval_accuracy=False,
        ),
        tmp_path / "run",
    )
    folder = RunFolder(tmp_path / "run")
    evals = [r for r in folder.metrics() if r.get("kind") == "eval"]
    assert result.stopped_early and result.steps == 6 < result.total_steps
    assert [e["best"] for e in evals] == [True, False, False]
    assert result.best["step"] == 2 and result.adapter_from == "best: step 2"
    best, last = (
        adapter_weights(folder.checkpoints / "step-000002"),
        adapter_weights(folder.checkpoints / "step-000006"),
    )
    chosen = adapter_weights(result.adapter_dir)
    assert all(torch.equal(chosen[k], best[k]) for k in best)
    assert not all(torch.equal(chosen[k], last[k]) for k in last)
    assert "early stopping: 2 evaluations without a better validation score" in folder.log_path.read_text()
    assert folder.status()["best"]["step"] == 2


def test_overfitting_warnings_read_the_accuracy_gap_and_the_loss_curves():
    assert overfitting_warnings([], 0.15) == []
    gap = overfitting_warnings([{"step": 10, "train_accuracy": 1.0, "val_accuracy": 0.7}], 0.15)
    assert len(gap) == 1 and "100%" in gap[0] and "70%" in gap[0]
    assert overfitting_warnings([{"step": 10, "train_accuracy": 0.9, "val_accuracy": 0.85}], 0.15) == []
    # the same gap on 20 records a side is within sampling noise; on 400 it is not
    small = {"step": 10, "train_accuracy": 0.65, "val_accuracy": 0.45, "train_n": 20, "val_n": 20}
    assert overfitting_warnings([small], 0.15) == []
    assert len(overfitting_warnings([{**small, "train_n": 400, "val_n": 400}], 0.15)) == 1
    rising = [
        {"step": 5, "train_loss": 1.0, "val_loss": 0.8},
        {"step": 10, "train_loss": 0.5, "val_loss": 0.9},
        {"step": 15, "train_loss": 0.2, "val_loss": 1.1},
    ]
    [warning] = overfitting_warnings(rising, 0.15)
    assert "rose from 0.800 (step 5) to 1.100 (step 15)" in warning
    both_fall = [
        {"step": 5, "train_loss": 1.0, "val_loss": 0.8},
        {"step": 10, "train_loss": 0.5, "val_loss": 0.6},
    ]
    assert overfitting_warnings(both_fall, 0.15) == []


def test_is_correct_needs_the_contract_and_the_reference_meaning():
    labels = Contract("intent", "labels", ["refund", "cancel_order"])
    assert is_correct(labels, "refund", "refund")
    assert not is_correct(labels, "cancel_order", "refund")
    assert not is_correct(labels, " refund", "refund")  # whitespace around a label breaks the contract
    as_json = Contract("x", "json")
    assert is_correct(as_json, '{"a": 1, "b": [2]}', '{"b": [2], "a": 1}')
    assert not is_correct(as_json, '{"a": 1', '{"a": 1}')
    schema = Contract("y", "json_schema", {"type": "object", "required": ["city"]})
    assert is_correct(schema, '{"city": "上海"}', '{"city":"上海"}')
    assert not is_correct(schema, '{"town": "上海"}', '{"town": "上海"}')
    pattern = Contract("z", "regex", r"\d{4}-\d{2}-\d{2}")
    assert is_correct(pattern, "2026-11-24", "2026-11-24") and not is_correct(
        pattern, "2026-11-25", "2026-11-24"
    )


def test_training_on_an_export_without_trainable_records_says_why(tiny, tmp_path):
    export = write_export(
        tmp_path / "e", [{"messages": [{"role": "user", "content": "only a question"}]}], []
    )
    with pytest.raises(WorkbenchError, match="nothing to train on.*no assistant answer"):
        train(export, config(tiny), tmp_path / "run")
    assert RunFolder(tmp_path / "run").status()["state"] == "failed"


def test_presets_follow_the_task_type():
    assert TrainConfig.for_task("classification").lora_rank == 64
    creative = TrainConfig.for_task("creative", learning_rate=1e-4)
    assert (creative.epochs, creative.lora_rank, creative.learning_rate, creative.preset) == (
        5,
        256,
        1e-4,
        "creative",
    )
    assert TrainConfig.for_task(None).epochs == 3
    with pytest.raises(WorkbenchError, match="no preset for task type"):
        TrainConfig.for_task("astrology")
    restored = TrainConfig.from_dict({**creative.to_dict(), "a_future_knob": 1})
    assert restored == creative


def test_the_best_checkpoint_needs_more_accuracy_than_a_small_validation_set_can_show_by_chance():
    from workbench.train.trainer import _is_better

    first = {"val_accuracy": 0.3, "val_loss": 0.695, "val_n": 10}
    # the demo's run: one more right answer of ten after one epoch, a lower loss after three
    assert _is_better({"val_accuracy": 0.2, "val_loss": 0.582, "val_n": 10}, first)
    assert not _is_better({"val_accuracy": 0.2, "val_loss": 0.70, "val_n": 10}, first)
    assert _is_better({"val_accuracy": 0.6, "val_loss": 0.90, "val_n": 10}, first)  # three answers: real
    # on 400 records the same 0.1 is 40 answers: accuracy decides whatever the loss
    big = {"val_accuracy": 0.3, "val_loss": 0.5, "val_n": 400}
    assert not _is_better({"val_accuracy": 0.2, "val_loss": 0.1, "val_n": 400}, big)
    assert _is_better({"val_accuracy": 0.4, "val_loss": 0.9, "val_n": 400}, big)
    # without contracts only the loss; a best kept by an older version (no n) compares exactly
    assert _is_better({"val_loss": 0.4}, {"val_loss": 0.5}) and not _is_better(
        {"val_loss": 0.6}, {"val_loss": 0.5}
    )
    assert _is_better(
        {"val_accuracy": 0.31, "val_loss": 0.9, "val_n": 10}, {"val_accuracy": 0.3, "val_loss": 0.5}
    )
    assert _is_better({"val_accuracy": 0.0, "val_loss": 0.9, "val_n": 10}, {"val_loss": 0.5})
    assert _is_better({"val_loss": 1.0}, None)
