"""The Playground: chat with the base model, a run's adapter or a registered model (an endpoint, a local folder; the
answer streams token by token), and flag a
bad answer: the right answer written in, kept as a badcase with the model's bad output beside it and where it came
from (model, adapter, settings, time)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import roles
from .errors import NotFoundError, WorkbenchError
from .models import EMBEDDED_MODEL, default_models_dir
from .store import Store
from .store.records import Record, insert_record
from .store.runs import get_run


def _help(text: str, low: float, high: float) -> dict[str, object]:
    return {"help": text, "range": (low, high)}


@dataclass
class Sampling:
    """How the playground generates; the help texts are what the page shows."""

    max_new_tokens: int = field(default=128, metadata=_help("Most tokens in one answer.", 1, 2048))
    temperature: float = field(
        default=0.0,
        metadata=_help(
            "0 answers greedily (the same answer every time, as evaluations do); higher values vary the answer.",
            0.0,
            1.5,
        ),
    )
    top_p: float = field(
        default=0.9,
        metadata=_help(
            "With temperature above 0: sample from the most likely tokens "
            "that make up this share of the probability.",
            0.1,
            1.0,
        ),
    )

    def __post_init__(self) -> None:
        for name, (low, high) in self.ranges().items():
            if not low <= getattr(self, name) <= high:
                raise WorkbenchError(f"{name} must be between {low} and {high}, not {getattr(self, name)}")

    @classmethod
    def help_texts(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}

    @classmethod
    def ranges(cls) -> dict[str, tuple[float, float]]:
        """The lowest and highest value of each setting (what the page's sliders allow)."""
        return {f.name: f.metadata["range"] for f in fields(cls)}


@dataclass
class ChatModel:
    """A loaded model ready to chat: the base model or a run's adapter on it."""

    label: str  # "base", "run N", "endpoint:NAME" or a registered local model's name
    base_model: str
    adapter: str | None
    model: Any  # a transformers model, or an endpoint.Endpoint
    encoder: Any
    device: Any


def model_choices(store: Store) -> list[str]:
    """'base', every finished run with an adapter (newest first, as 'run N'), then the registered models
    (endpoints as 'endpoint:NAME', local folders by name)."""
    from .registry import ENDPOINT_PREFIX, list_models
    from .train import runs

    registered = [
        (ENDPOINT_PREFIX if m.kind == "endpoint" else "") + m.name
        for m in list_models(store, probe_health=False)
        if m.kind != "embedded"
    ]
    return (
        ["base"]
        + [f"run {r.id}" for r in runs.list_runs(store) if r.state == "done" and r.row.adapter_dir]
        + registered
    )


def load_chat_model(
    store: Store, choice: str, *, base_model: str | None = None, models_dir: Path | None = None
) -> ChatModel:
    """Load 'base' (the embedded model, or `base_model`) or 'run N' (its base model with its adapter)."""
    from .evaluate import load_model_for
    from .registry import ENDPOINT_PREFIX, endpoint_of, get_model

    models_dir = models_dir or default_models_dir()
    if choice.startswith(ENDPOINT_PREFIX):
        endpoint = endpoint_of(store, choice)
        return ChatModel(choice, endpoint.model_id, None, endpoint, None, None)
    if choice != "base" and not choice.startswith("run"):
        try:
            base_model = get_model(store, choice).where  # a registered local folder
        except NotFoundError:
            raise WorkbenchError(
                f"unknown model {choice!r}: choose 'base' or 'run N', or a registered model "
                "(`workbench models` lists them)"
            ) from None
        choice = "base"
    if choice == "base":
        name = base_model or EMBEDDED_MODEL
        if base_model and not (Path(base_model) / "config.json").is_file():
            raise WorkbenchError(
                f"no model in {base_model}: give a local model folder (it holds config.json), or "
                "leave the field empty for the embedded model"
            )
        model, encoder, device = load_model_for(name, None, None, models_dir=models_dir)
        return ChatModel("base", name, None, model, encoder, device)
    try:
        run_id = int(choice.removeprefix("run").strip())
    except ValueError:
        raise WorkbenchError(f"unknown model {choice!r}: choose 'base' or 'run N'") from None
    with store.connect(read_only=True) as con:
        row = get_run(con, run_id)
    adapter = row.adapter_dir or str(Path(row.run_dir) / "adapter")
    if row.status != "done" or not (Path(adapter) / "adapter_config.json").is_file():
        raise WorkbenchError(
            f"run {run_id} has no finished adapter (it is {row.status}); chat with a finished run"
        )
    model, encoder, device = load_model_for(
        row.base_model, adapter, row.config.get("chat_template"), models_dir=models_dir
    )
    return ChatModel(f"run {run_id}", row.base_model, adapter, model, encoder, device)


def chat_messages(system_prompt: str, history: list[dict], question: str) -> list[dict]:
    """The conversation the model answers: the system prompt (when not blank), earlier turns, the question."""
    if not question.strip():
        raise WorkbenchError("write a question first")
    head = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return head + [dict(m) for m in history] + [{"role": "user", "content": question}]


def stream_answer(chat: ChatModel, messages: list[dict], sampling: Sampling | None = None) -> Iterator[str]:
    """The answer to `messages`, piece by piece as the model writes it (generation runs in a thread)."""
    from .endpoint import Endpoint, stream_chat

    sampling = sampling or Sampling()
    if isinstance(chat.model, Endpoint):
        yield from stream_chat(
            chat.model,
            messages,
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
        )
        return
    import torch
    from transformers import TextIteratorStreamer

    tok = chat.encoder.tok
    prompt = chat.encoder.render(messages, generation=True)
    ids = torch.tensor([chat.encoder.tokens(prompt)], device=chat.device)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=600)
    eos = list(chat.encoder.end_of_turn_ids or []) or [chat.encoder.eos_id]
    sample = sampling.temperature > 0
    kwargs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "max_new_tokens": sampling.max_new_tokens,
        "do_sample": sample,
        "streamer": streamer,
        "eos_token_id": eos,
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else chat.encoder.eos_id,
    }
    if sample:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.no_grad():
                chat.model.generate(**kwargs)
        except BaseException as exc:  # shown to the caller after the stream ends
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if failure:
        raise WorkbenchError(f"the model stopped with an error: {failure[0]}")


def flag_answer(
    store: Store,
    messages: list[dict],
    bad_output: str,
    fix: str,
    *,
    category: str | None,
    model: str,
    base_model: str,
    adapter: str | None,
    sampling: Sampling,
    author: str,
    dataset: str = "badcases",
) -> int:
    """Save a bad answer as a badcase: the conversation with `fix` as the answer (status fixed), the model's answer
    kept as the bad output, and where it came from. Returns the new record's id."""
    roles.require(store, "capture", author)
    if not fix.strip():
        raise WorkbenchError("write the right answer before saving the badcase")
    if not messages or messages[-1].get("role") != "user":
        raise WorkbenchError("there is no question to attach the answer to; ask the model something first")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    settings = ", ".join(f"{k}={v}" for k, v in asdict(sampling).items())
    source = (
        f"playground: {model} ({base_model}"
        + (f", adapter {adapter}" if adapter else "")
        + f"; {settings}; {when})"
    )
    record = Record(
        id=0,
        dataset=dataset,
        messages=[*messages, {"role": "assistant", "content": fix.strip()}],
        category=(category or "").strip() or None,
        status="fixed",
        tags=["playground"],
        source=source,
        bad_output=bad_output,
    )
    with store.transaction() as con:
        return insert_record(con, record, author, note="flagged in the playground")
