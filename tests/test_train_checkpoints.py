"""What resuming trusts: the training state is safetensors + JSON, so resume runs no code from the run
folder. A tiny random llama keeps every run to seconds."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from workbench.errors import WorkbenchError
from workbench.train import Cancelled, TrainConfig, train
from workbench.train.folder import RunFolder
from workbench.train.synthetic import write_classification_export, write_tiny_model
from workbench.train.trainer_state import load_trainer_state, save_trainer_state


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_classification_export(tmp_path_factory.mktemp("export") / "intents", n=40)


def config(tiny, **changes) -> TrainConfig:
    values = {"base_model": tiny, "max_steps": 7, "eval_every_steps": 3, "batch_size": 8, "lora_rank": 4,
              "learning_rate": 1e-2, "eval_max_new_tokens": 8, "save_every_steps": 0}
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


# --- the training state: safetensors + JSON, never a pickle ----------------------------------------------------

def test_the_training_state_round_trips_exactly_through_safetensors_and_json(tmp_path):
    state = {"optimizer": {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(3, 2)},
                                     1: {"step": torch.tensor(5.0), "exp_avg": torch.randn(4, dtype=torch.float64)}},
                           "param_groups": [{"lr": 1e-4 / 3, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None}]},
             "scheduler": {"base_lrs": [2e-4], "last_epoch": 5, "_last_lr": [math.pi / 1e4], "lr_lambdas": [None]},
             "rng": torch.get_rng_state(),
             "state": {"step": 5, "best": {"step": 3, "val_loss": float("inf"), "note": "最好"}, "evals": [],
                       "a.b": torch.ones(1), "a": {"b": torch.zeros(1)}}}
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
    assert torch.equal(back["state"]["a.b"], torch.ones(1)) and torch.equal(back["state"]["a"]["b"], torch.zeros(1))


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

    torch.save({"optimizer": Payload(), "scheduler": {}, "rng": torch.get_rng_state(), "state": {}},
               latest / "trainer_state.pt")
    with pytest.raises(WorkbenchError, match=r"trainer_state.pt .* was not loaded: unpickling it could run any code"):
        train(export, config(tiny), folder.path, resume=True)
    assert not planted.exists()
    assert folder.status()["state"] == "failed"


def test_an_old_checkpoint_with_only_tensors_and_values_in_its_pickle_still_resumes_exactly(tiny, export, straight,
                                                                                             tmp_path):
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
    with pytest.raises(WorkbenchError, match="training state in .*step-000002 cannot be read.*start the run again"):
        train(export, config(tiny), tmp_path / "run", resume=True)
