"""What a run leaves on disk when it is stopped at a bad moment, and what resuming trusts: the training state
is safetensors + JSON (resume runs no code from the run folder), checkpoints and the final adapter appear
whole or not at all, leftovers are swept, and an incomplete adapter is refused by merge and continuing.
A tiny random llama keeps every run to seconds."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerBase

from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import runs as sql
from workbench.train import Cancelled, TrainConfig, train
from workbench.train import runs as R
from workbench.train.folder import RunFolder, adapter_problem, sweep_unfinished_folders, written_whole
from workbench.train.trainer_state import load_trainer_state, save_trainer_state

from .data_train import write_classification_export


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_classification_export(tmp_path_factory.mktemp("export") / "intents", n=40)


def config(tiny, **changes) -> TrainConfig:
    values = {
        "base_model": tiny,
        "max_steps": 7,
        "eval_every_steps": 3,
        "batch_size": 8,
        "lora_rank": 4,
        "learning_rate": 1e-2,
        "eval_max_new_tokens": 8,
        "save_every_steps": 0,
    }
    return TrainConfig(**{**values, **changes})


def stop_at(step: int):
    calls = iter(range(1, 1000))
    return lambda: next(calls) >= step


@pytest.fixture(scope="module")
def straight(tiny, export, tmp_path_factory):
    """The adapter of an uninterrupted 7-step run, to compare resumed runs with."""
    result = train(export, config(tiny), tmp_path_factory.mktemp("straight") / "run")
    return load_file(str(result.adapter_dir / "adapter_model.safetensors"))


def same_adapter(a: dict, folder) -> bool:
    b = load_file(str(folder / "adapter_model.safetensors"))
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- the training state: safetensors + JSON, never a pickle ----------------------------------------------------


def test_the_training_state_round_trips_exactly_through_safetensors_and_json(tmp_path):
    state = {
        "optimizer": {
            "state": {
                0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(3, 2)},
                1: {"step": torch.tensor(5.0), "exp_avg": torch.randn(4, dtype=torch.float64)},
            },
            "param_groups": [{"lr": 1e-4 / 3, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None}],
        },
        "scheduler": {"base_lrs": [2e-4], "last_epoch": 5, "_last_lr": [math.pi / 1e4], "lr_lambdas": [None]},
        "rng": torch.get_rng_state(),
        "state": {
            "step": 5,
            "best": {"step": 3, "val_loss": float("inf"), "note": "最好"},
            "evals": [],
            "a.b": torch.ones(1),
            "a": {"b": torch.zeros(1)},
        },
    }
    save_trainer_state(tmp_path, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer_state.json", "trainer_state.safetensors"]
    back = load_trainer_state(tmp_path)
    assert back["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert isinstance(back["optimizer"]["param_groups"][0]["betas"], tuple)
    assert set(back["optimizer"]["state"]) == {0, 1}
    for i in (0, 1):
        for key, value in state["optimizer"]["state"][i].items():
            got = back["optimizer"]["state"][i][key]
            assert got.dtype == value.dtype and got.shape == value.shape and torch.equal(got, value)
    assert back["scheduler"] == state["scheduler"]  # floats are exact through JSON
    assert torch.equal(back["rng"], state["rng"]) and back["state"]["best"] == state["state"]["best"]
    assert torch.equal(back["state"]["a.b"], torch.ones(1)) and torch.equal(
        back["state"]["a"]["b"], torch.zeros(1)
    )


def test_checkpoints_hold_no_pickle_and_resume_from_them_is_exact(tiny, export, straight, tmp_path):
    with pytest.raises(Cancelled, match="stopped at step 5 of 7"):
        train(export, config(tiny), tmp_path / "run", should_stop=stop_at(5))
    folder = RunFolder(tmp_path / "run")
    latest = folder.checkpoint_dirs()[-1]
    assert latest.name == "step-000005"
    for checkpoint in folder.checkpoint_dirs():
        names = {p.name for p in checkpoint.iterdir()}
        assert {"trainer_state.json", "trainer_state.safetensors", "adapter_model.safetensors"} <= names
        assert not [n for n in names if n.endswith((".pt", ".bin", ".pkl", ".pickle"))]
    saved = json.loads((latest / "trainer_state.json").read_text(encoding="utf-8"))
    assert saved["state"]["state"]["step"] == 5
    resumed = train(export, config(tiny), folder.path, resume=True)
    assert resumed.steps == 7 and same_adapter(straight, resumed.adapter_dir)


def test_resume_does_not_run_code_planted_in_an_old_style_trainer_state_pt(tiny, export, tmp_path):
    with pytest.raises(Cancelled):
        train(export, config(tiny), tmp_path / "run", should_stop=stop_at(2))
    folder = RunFolder(tmp_path / "run")
    latest = folder.checkpoint_dirs()[-1]
    for name in ("trainer_state.json", "trainer_state.safetensors", "trainer_state.pt"):
        (latest / name).unlink(missing_ok=True)
    planted = tmp_path / "code-ran"

    class Payload:  # what anyone who can write the run folder could put into a pickle
        def __reduce__(self):
            return (open, (str(planted), "w"))

    torch.save(
        {"optimizer": Payload(), "scheduler": {}, "rng": torch.get_rng_state(), "state": {}},
        latest / "trainer_state.pt",
    )
    with pytest.raises(
        WorkbenchError, match=r"trainer_state.pt .* was not loaded: unpickling it could run any code"
    ):
        train(export, config(tiny), folder.path, resume=True)
    assert not planted.exists()
    assert folder.status()["state"] == "failed"


def test_an_old_checkpoint_with_only_tensors_and_values_in_its_pickle_still_resumes_exactly(
    tiny, export, straight, tmp_path
):
    with pytest.raises(Cancelled):
        train(export, config(tiny), tmp_path / "run", should_stop=stop_at(5))
    folder = RunFolder(tmp_path / "run")
    latest = folder.checkpoint_dirs()[-1]
    torch.save(load_trainer_state(latest), latest / "trainer_state.pt")  # what older versions wrote
    (latest / "trainer_state.json").unlink()
    (latest / "trainer_state.safetensors").unlink()
    resumed = train(export, config(tiny), folder.path, resume=True)
    assert resumed.steps == 7 and same_adapter(straight, resumed.adapter_dir)


def test_a_checkpoint_whose_training_state_is_cut_short_is_refused_with_what_to_do(tiny, export, tmp_path):
    with pytest.raises(Cancelled):
        train(export, config(tiny), tmp_path / "run", should_stop=stop_at(2))
    latest = RunFolder(tmp_path / "run").checkpoint_dirs()[-1]
    data = (latest / "trainer_state.safetensors").read_bytes()
    (latest / "trainer_state.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        WorkbenchError, match="training state in .*step-000002 cannot be read.*start the run again"
    ):
        train(export, config(tiny), tmp_path / "run", resume=True)


# --- checkpoints and the adapter appear whole or not at all ------------------------------------------------------


def test_a_checkpoint_rewritten_for_the_same_step_survives_an_interruption_of_the_rewrite(
    tiny, export, tmp_path, monkeypatch
):
    # At step 3 the evaluation writes step-000003, then the stop request writes it again. Interrupt the second
    # write half-way: the first must still be there, whole, and the run resumes from it.
    from peft import PeftModel

    real_save = PeftModel.save_pretrained
    calls = []

    def save_then_die(self, target, *args, **kwargs):
        calls.append(target)
        real_save(self, target, *args, **kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while writing the checkpoint")

    monkeypatch.setattr(PeftModel, "save_pretrained", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(export, config(tiny), tmp_path / "run", should_stop=stop_at(3))
    monkeypatch.undo()
    folder = RunFolder(tmp_path / "run")
    assert len(calls) == 2
    assert [p.name for p in folder.checkpoint_dirs()] == ["step-000003"]
    assert sorted(p.name for p in folder.checkpoints.iterdir()) == [
        "step-000003"
    ]  # no half-written leftovers
    resumed = train(export, config(tiny), folder.path, resume=True)
    assert resumed.steps == 7


def test_a_run_stopped_while_writing_its_adapter_leaves_no_adapter_folder_and_resume_writes_it(
    tiny, export, tmp_path, monkeypatch
):
    def die(self, *args, **kwargs):
        raise KeyboardInterrupt("killed while writing the adapter")

    monkeypatch.setattr(
        PreTrainedTokenizerBase, "save_pretrained", die
    )  # the adapter's weights are written by now
    with pytest.raises(KeyboardInterrupt):
        train(export, config(tiny, max_steps=3), tmp_path / "run")
    monkeypatch.undo()
    folder = RunFolder(tmp_path / "run")
    assert not folder.adapter.exists()  # merge and --from-run take an adapter/ folder as finished
    assert not [p.name for p in folder.path.iterdir() if p.name.startswith(".adapter")]
    assert folder.status()["state"] == "failed"
    resumed = train(export, config(tiny, max_steps=3), folder.path, resume=True)
    assert resumed.steps == 3 and adapter_problem(resumed.adapter_dir) is None


def test_written_whole_replaces_the_old_folder_only_when_the_new_one_is_complete(tmp_path):
    target = tmp_path / "adapter"
    with written_whole(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with written_whole(target) as tmp:
            (tmp / "weights").write_text("v2, half")
            raise RuntimeError("stopped")
    assert (target / "weights").read_text() == "v1"
    with written_whole(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_leftovers_of_a_killed_writer_are_swept_and_a_folder_moved_aside_is_put_back(tmp_path):
    gone, alive = dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f".adapter.tmp-{gone}-0123abcd").mkdir()  # killed mid-write
        (tmp_path / f".step-000004.old-{gone}-0123abcd").mkdir()  # killed between the two renames
        (tmp_path / f".step-000004.old-{gone}-0123abcd" / "checkpoint.json").write_text("{}")
        (tmp_path / f".step-000006.tmp-{alive.pid}-0123abcd").mkdir()  # still being written by a live process
        (tmp_path / ".hidden-by-someone").mkdir()
        done = sweep_unfinished_folders(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".hidden-by-someone",
            f".step-000006.tmp-{alive.pid}-0123abcd",
            "step-000004",
        ]
        assert (tmp_path / "step-000004" / "checkpoint.json").is_file()
        assert len(done) == 2
    finally:
        alive.kill()
        alive.wait()


def test_resume_sweeps_what_a_killed_run_left_half_written(tiny, export, tmp_path):
    with pytest.raises(Cancelled):
        train(export, config(tiny, max_steps=3), tmp_path / "run", should_stop=stop_at(3))
    folder = RunFolder(tmp_path / "run")
    gone = dead_pid()
    half_adapter = folder.path / f".adapter.tmp-{gone}-0123abcd"
    half_checkpoint = folder.checkpoints / f".step-000004.tmp-{gone}-0123abcd"
    for half in (half_adapter, half_checkpoint):
        half.mkdir()
        (half / "adapter_config.json").write_text('{"r": 4')
    train(export, config(tiny, max_steps=3), folder.path, resume=True)
    assert not half_adapter.exists() and not half_checkpoint.exists()
    assert "cleaned up after an earlier process" in folder.log_path.read_text()


# --- an incomplete adapter is refused --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_adapter(tiny, export, tmp_path_factory):
    return train(export, config(tiny, max_steps=2), tmp_path_factory.mktemp("finished") / "run").adapter_dir


def cut_short(adapter, tmp_path):
    """An adapter folder as an older version, killed while writing it in place, could leave it."""
    import shutil

    copy = tmp_path / "cut" / "adapter"
    shutil.copytree(adapter, copy)
    weights = (copy / "adapter_model.safetensors").read_bytes()
    (copy / "adapter_model.safetensors").write_bytes(weights[: len(weights) - 100])
    return copy


def test_adapter_problem_names_what_is_missing_or_cut_short(finished_adapter, tmp_path):
    assert adapter_problem(finished_adapter) is None
    assert "cut short" in adapter_problem(cut_short(finished_adapter, tmp_path))
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (no_tokenizer / name).write_bytes((finished_adapter / name).read_bytes())
    assert adapter_problem(no_tokenizer) == "tokenizer_config.json is missing"
    assert adapter_problem(no_tokenizer, tokenizer=False) is None
    (no_tokenizer / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    assert "tokenizer.json is cut short" in adapter_problem(no_tokenizer, tokenizer=False)


def test_continuing_an_incomplete_adapter_is_refused(tiny, export, finished_adapter, tmp_path):
    with pytest.raises(
        WorkbenchError, match="adapter .* to continue is incomplete: adapter_model.safetensors is cut"
    ):
        train(
            export,
            config(tiny, max_steps=1),
            tmp_path / "run",
            init_adapter=cut_short(finished_adapter, tmp_path),
        )


def test_merge_and_from_run_refuse_a_finished_runs_adapter_that_is_incomplete(
    tiny, export, finished_adapter, tmp_path
):
    store = Store.open(tmp_path / "store")
    with store.transaction() as con:
        row = sql.insert_run(
            con,
            export_dir=str(export),
            export_name="intents",
            export_hash="x",
            base_model=tiny,
            parent_run=None,
            init="fresh",
            config=config(tiny).to_dict(),
            runs_dir=str(store.runs_dir),
        )
    adapter = cut_short(finished_adapter, tmp_path)
    (store.runs_dir / str(row.id)).mkdir(parents=True)
    adapter.rename(store.runs_dir / str(row.id) / "adapter")
    with store.transaction() as con:
        sql.update_run(con, row.id, status="done", adapter_dir=str(store.runs_dir / str(row.id) / "adapter"))
    with pytest.raises(WorkbenchError, match=f"adapter of run {row.id} .* is incomplete.*nothing was merged"):
        R.merge_run(store, row.id, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
    with pytest.raises(WorkbenchError, match=f"adapter of run {row.id} .* is incomplete.*--init fresh"):
        R.start_run(store, export, config(None), from_run=row.id, init="continue")
    with store.connect() as con:
        assert [r.id for r in sql.list_runs(con)] == [row.id]  # nothing was started
