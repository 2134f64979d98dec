"""What a checkpoint holds besides the adapter (optimizer, scheduler, RNG state, step counters), stored so
that reading it runs no code: tensors in trainer_state.safetensors, everything else in trainer_state.json.

A pickle (torch.save's trainer_state.pt, as older versions wrote) runs whatever code its author put in it
when loaded, so whoever could write a run folder could run code on `--resume`. An old checkpoint is read
with torch's restricted loader (weights_only=True), which refuses anything but tensors and plain values.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import WorkbenchError

TENSORS_FILE = "trainer_state.safetensors"
JSON_FILE = "trainer_state.json"
OLD_PICKLE_FILE = "trainer_state.pt"
FORMAT = 1

# In the JSON, a tensor is {"__tensor__": key in the safetensors file}; a tuple {"__tuple__": [...]}; a
# dict whose keys are not all strings (the optimizer's state, keyed by parameter index) {"__items__": [[k, v]...]}.
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def save_trainer_state(folder: Path, state: dict[str, Any]) -> None:
    """Write `state` (nested dicts, lists, tuples of tensors, numbers, strings, booleans, None) into `folder`."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, "", tensors)
    save_file(tensors, str(folder / TENSORS_FILE))
    (folder / JSON_FILE).write_text(
        json.dumps({"format": FORMAT, "state": tree}, ensure_ascii=False), encoding="utf-8"
    )


def load_trainer_state(folder: Path) -> dict[str, Any]:
    """Read what save_trainer_state wrote (tensors on the CPU); an older checkpoint's trainer_state.pt only
    if it holds nothing but tensors and plain values. Raises WorkbenchError when neither can be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if (folder / JSON_FILE).is_file():
        try:
            saved = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
            tensors = load_file(str(folder / TENSORS_FILE))
            if saved.get("format") != FORMAT:
                raise ValueError(f"format {saved.get('format')!r}, this workbench reads format {FORMAT}")
            return _decode(saved["state"], tensors)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise WorkbenchError(
                f"the training state in {folder} cannot be read ({exc}); resume from an earlier "
                f"checkpoint by deleting {folder.name}, or start the run again"
            ) from None
    if (folder / OLD_PICKLE_FILE).is_file():
        try:
            return torch.load(folder / OLD_PICKLE_FILE, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkbenchError(
                f"{folder / OLD_PICKLE_FILE} (a checkpoint of an older workbench) holds more than tensors and plain "
                f"values, so it was not loaded: unpickling it could run any code put into it ({reason}). "
                f"Start the run again instead of resuming it"
            ) from None
    raise WorkbenchError(
        f"{folder} has no training state ({JSON_FILE} and {TENSORS_FILE}); resume from an "
        f"earlier checkpoint by deleting {folder.name}, or start the run again"
    )


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = path or "value"
        if key in tensors:  # a dict key with a dot in it can spell another value's path
            key = f"{key}#{len(tensors)}"
        tensors[key] = value.detach().to("cpu").contiguous()
        return {_TENSOR: key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v, f"{path}.{k}" if path else k, tensors) for k, v in value.items()}
        return {_ITEMS: [[k, _encode(v, f"{path}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {path!r} in the training state")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {_TENSOR}:
        return tensors[value[_TENSOR]]
    if set(value) == {_TUPLE}:
        return tuple(_decode(v, tensors) for v in value[_TUPLE])
    if set(value) == {_ITEMS}:
        return {_key(k): _decode(v, tensors) for k, v in value[_ITEMS]}
    return {k: _decode(v, tensors) for k, v in value.items()}


def _key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
