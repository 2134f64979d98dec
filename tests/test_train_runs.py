"""Runs as background processes recorded in the store: start, watch, kill -9, cancel, resume, lineage,
and the CLI (train, runs, merge, --show-mask). Real worker processes, real store files, a tiny model."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
from click.testing import CliRunner
from peft import PeftModel
from transformers import AutoModelForCausalLM

from tests.data_train import write_classification_export, write_export
from workbench.background.process import children
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.store import Store, schema
from workbench.store.records import Record, insert_record
from workbench.train import TrainConfig
from workbench.train import runs as R
from workbench.train.config import PRESETS, sized_values
from workbench.train.folder import RunFolder


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    yield
    for child in children():
        if child.poll() is None:  # a test that failed half-way: stop the worker it started
            child.kill()
            child.wait()


@pytest.fixture
def export(store):
    return write_classification_export(store.exports_dir / "intents-0123456789", n=40)


def quick(tiny, **changes) -> TrainConfig:
    values = {
        "base_model": tiny,
        "max_steps": 3,
        "batch_size": 8,
        "lora_rank": 4,
        "learning_rate": 1e-2,
        "eval_every_steps": 3,
        "eval_max_records": 4,
        "eval_max_new_tokens": 4,
        "save_every_steps": 1,
    }
    return TrainConfig(**{**values, **changes})


def wait_until(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_new_store_has_the_runs_table_at_schema_4_or_later(store):
    with store.connect() as con:
        assert schema.current_version(con) >= 4
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny):
    """A store with one run trained in the background; the store was written to while the run trained."""
    store = Store.open(tmp_path_factory.mktemp("trained") / "store")
    export = write_classification_export(store.exports_dir / "intents-0123456789", n=40)
    run_id = R.start_run(store, export, quick(tiny), author="tester")
    with store.connect() as con:  # the worker never holds the store: it opens at once, even for writing
        con.execute("CREATE TABLE probe (x INTEGER)")
    final = R.wait_for_run(store, run_id, timeout_s=180)
    return store, export, run_id, final


def test_a_background_run_trains_and_the_store_follows_its_folder(trained, tiny):
    store, export, run_id, final = trained
    assert final.state == "done", final.row.error
    row = final.row
    manifest = json.loads((export / "manifest.json").read_text())
    assert (row.export_hash, row.export_name, row.base_model, row.init) == (
        manifest["hash"],
        "intents",
        tiny,
        "fresh",
    )
    assert (row.step, row.total_steps, row.best_step) == (3, 3, 3)
    assert row.val_loss > 0 and row.train_loss > 0 and row.finished_at is not None and row.author == "tester"
    assert row.adapter_dir == str(store.runs_dir / str(run_id) / "adapter")
    assert run_id in [s.id for s in R.list_runs(store)]
    steps = [m["step"] for m in final.metrics() if m.get("kind") != "eval"]
    assert steps == [1, 2, 3]
    [link] = R.run_lineage(store, run_id)
    assert (link["id"], link["export_hash"], link["adapter_dir"]) == (
        run_id,
        manifest["hash"],
        row.adapter_dir,
    )
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM probe").fetchone()[0] == 0


def test_kill_9_leaves_the_store_intact_marks_the_run_failed_and_resume_finishes_it(store, export, tiny):
    run_id = R.start_run(store, export, quick(tiny, max_steps=400, eval_every_steps=0, epochs=100))
    folder = RunFolder(store.runs_dir / str(run_id))
    wait_until(lambda: (folder.status().get("step") or 0) >= 2 and folder.checkpoint_dirs())
    R.list_runs(store)  # the first look records that the run started
    with store.connect() as con:
        recorded = con.execute("SELECT coalesce(step, 0) FROM runs WHERE id = ?", [run_id]).fetchone()[0]
    wait_until(lambda: (folder.status().get("step") or 0) > recorded + 1)
    listed = next(r for r in R.list_runs(store) if r.id == run_id)
    assert listed.state == "running" and listed.step > recorded + 1  # shown live, from the run's folder
    with store.connect() as con:  # a run that only progressed is not written back by looking at it
        assert (
            con.execute("SELECT coalesce(step, 0) FROM runs WHERE id = ?", [run_id]).fetchone()[0] == recorded
        )
    pid = folder.status()["pid"]
    half_written = (
        folder.path / f".adapter.tmp-{pid}-0123abcd"
    )  # as a kill while writing the adapter leaves it
    half_written.mkdir()
    os.kill(pid, signal.SIGKILL)
    status = R.wait_for_run(store, run_id, timeout_s=30)
    assert status.state == "failed"
    assert not half_written.exists()  # whoever finds the run dead sweeps what it left half written
    assert "ended without finishing" in status.row.error and "--resume" in status.row.error
    assert folder.status()["state"] == "failed"  # the folder agrees with the store
    with store.transaction() as con:  # the store is consistent and writable
        insert_record(con, Record(0, "badcases", [{"role": "user", "content": "还能用吗"}]), "test")
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'failed'").fetchone()[0] == 1
    checkpoint_step = int(folder.checkpoint_dirs()[-1].name[5:])
    R.resume_run(store, run_id)
    # at once, before the new worker wrote its pid, the run is alive again, not failed by the old worker's dead pid
    assert R.run_status(store, run_id).state in ("queued", "running")
    wait_until(lambda: (folder.status().get("step") or 0) > checkpoint_step + 1)
    cancelled = R.cancel_run(store, run_id)
    assert cancelled.state in ("running", "cancelled")
    final = R.wait_for_run(store, run_id, timeout_s=60)
    assert final.state == "cancelled"
    steps = [m["step"] for m in final.metrics() if m.get("kind") != "eval"]
    assert steps == list(range(1, len(steps) + 1))  # each step once, across the kill and the resume
    assert "resumed from step-" in folder.log_path.read_text()


def test_from_run_needs_an_explicit_choice_and_records_it(trained, tiny):
    store, export, first, _ = trained
    with pytest.raises(WorkbenchError, match="init='continue' trains its adapter further"):
        R.start_run(store, export, quick(tiny), from_run=first)
    second = R.start_run(store, export, quick(tiny, base_model=None), from_run=first, init="continue")
    third = R.start_run(
        store, export, quick(tiny, base_model=None), from_run=second, init="fresh"
    )  # both at once
    for run_id in (second, third):
        assert R.wait_for_run(store, run_id, timeout_s=180).state == "done"
    spec = RunFolder(store.runs_dir / str(second)).spec()
    assert spec["init_adapter"] == str(store.runs_dir / str(first) / "adapter")
    assert "continuing the adapter" in (store.runs_dir / str(second) / "log.txt").read_text()
    chain = R.run_lineage(store, third)
    assert [(c["id"], c["init"], c["parent_run"]) for c in chain] == [
        (third, "fresh", second),
        (second, "continue", first),
        (first, "fresh", None),
    ]
    assert all(c["base_model"] == tiny for c in chain)


def test_a_run_started_through_accelerate_launch_trains_single_process(store, export, tiny):
    launcher = f"{sys.executable} -m accelerate.commands.launch --num_processes 1 --cpu"
    run_id = R.start_run(store, export, quick(tiny), launcher=launcher)
    final = R.wait_for_run(store, run_id, timeout_s=180)
    assert final.state == "done", final.row.error
    assert RunFolder(store.runs_dir / str(run_id)).spec()["launch"] == {"num_processes": 1, "cpu": True}
    assert (store.runs_dir / str(run_id) / "adapter" / "adapter_model.safetensors").exists()


def test_cancelling_an_unknown_run_says_so(store):
    with pytest.raises(WorkbenchError, match="there is no run 99"):
        R.cancel_run(store, 99)


def test_resolve_export_by_path_folder_name_or_export_name(store, export):
    assert R.resolve_export(store, export) == export.resolve()
    assert R.resolve_export(store, "intents-0123456789") == export.resolve()
    assert R.resolve_export(store, "intents") == export.resolve()
    with pytest.raises(WorkbenchError, match="no export 'nope'.*intents-0123456789"):
        R.resolve_export(store, "nope")


def test_config_for_export_takes_the_preset_from_the_exports_task_types(export):
    assert R.config_for_export(export).preset == "classification"
    assert R.config_for_export(export, "creative", epochs=2).epochs == 2


def test_without_a_preset_the_rank_follows_the_model_and_contracts_turn_early_stopping_on(
    export, tiny, tmp_path
):
    assert [sized_values("classification", h)["lora_rank"] for h in (576, 1536, 4096)] == [64, 64, 64]
    assert [sized_values("qa", h)["lora_rank"] for h in (576, 1536, 4096)] == [64, 128, 256]
    assert sized_values(None, 960)["lora_rank"] == 64
    assert sized_values("classification", 576)["epochs"] == PRESETS["classification"]["epochs"]
    sized = R.config_for_export(export, base_model=tiny)  # hidden size 32
    assert (sized.preset, sized.lora_rank, sized.early_stopping_patience, sized.final_adapter) == (
        "classification",
        64,
        1,
        "best",
    )
    named = R.config_for_export(export, "classification", base_model=tiny)
    assert (named.lora_rank, named.early_stopping_patience) == (64, 0)
    assert (
        R.config_for_export(export, base_model=tiny, early_stopping_patience=0).early_stopping_patience == 0
    )
    assert R.config_for_export(export, base_model=tiny, lora_rank=8).lora_rank == 8
    records = [json.loads(line) for line in (export / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    plain = write_export(tmp_path / "plain", records, records[:2])  # no contracts: nothing to stop early on
    assert R.config_for_export(plain, base_model=tiny).early_stopping_patience == 0


# --- the CLI ----------------------------------------------------------------------------------------------


def invoke(store, *args):
    result = CliRunner().invoke(main, ["--store", str(store.root), *args], catch_exceptions=False)
    return result


def test_cli_trains_in_the_foreground_lists_shows_and_merges(store, export, tiny, tmp_path):
    result = invoke(
        store, "train", "intents", "--model", tiny, "--max-steps", "2", "--rank", "4", "--eval-every", "2"
    )
    assert result.exit_code == 0, result.output
    assert "run 1 started: intents-0123456789" in result.output and "preset classification" in result.output
    assert "run 1: done" in result.output and "best (validation)" in result.output
    listing = invoke(store, "runs")
    assert listing.exit_code == 0 and "done" in listing.output and "2/2" in listing.output
    shown = json.loads(invoke(store, "runs", "1", "--json").output)
    assert shown["status"] == "done" and shown["report"]["steps"] == 2 and shown["config"]["lora_rank"] == 4
    refused = invoke(store, "merge", "1", "--out", str(tmp_path / "merged\n"))
    assert (
        refused.exit_code == 1
        and "merge output folder" in refused.output
        and "control character" in refused.output
    )
    assert not (tmp_path / "merged\n").exists()
    merged = invoke(store, "merge", "1", "--out", str(tmp_path / "merged"))
    assert merged.exit_code == 0 and "merged model written" in merged.output
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny), str(store.runs_dir / "1" / "adapter")
    )
    import torch

    ids = torch.tensor([[1, 5, 9, 200, 3000]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, tuned(ids).logits, atol=1e-4)


def test_cli_detach_returns_at_once_and_runs_cancel_stops_it(store, export, tiny):
    result = invoke(
        store, "train", str(export), "--model", tiny, "--epochs", "100", "--rank", "4", "--detach"
    )
    assert result.exit_code == 0 and "training in the background" in result.output
    folder = RunFolder(store.runs_dir / "1")
    wait_until(lambda: (folder.status().get("step") or 0) >= 1)
    [listed] = json.loads(invoke(store, "runs", "--json").output)
    assert listed["status"] == "running" and listed["live"]["step"] >= 1
    # the tiny model's steps take milliseconds: the worker may have seen the cancel before the command reads it back
    said = invoke(store, "runs", "1", "--cancel").output
    assert said in ("run 1: running (stops at the end of its current step)\n", "run 1: cancelled\n"), said
    assert R.wait_for_run(store, 1, timeout_s=60).state == "cancelled"


def test_cli_show_mask_marks_the_trained_tokens(store, export):
    result = invoke(store, "train", "intents", "--show-mask")
    assert result.exit_code == 0, result.output
    first = json.loads((export / "train.jsonl").read_text().splitlines()[0])
    label = first["messages"][-1]["content"]
    assert f"<|im_start|>assistant\n⟦{label}<|im_end|>⟧" in result.output
    assert f"record {first['id']} (line 1" in result.output
    assert not list(store.runs_dir.iterdir())  # nothing was started


def test_cli_from_run_without_init_is_a_clear_error(store, export, tiny):
    result = CliRunner().invoke(main, ["--store", str(store.root), "train", "intents", "--from-run", "7"])
    assert result.exit_code == 1 and "--init continue or --init fresh" in result.output
