"""The evaluation cache: a greedy answer (and an answer's loss) is deterministic, so it is computed once per store
and found again by a hash of everything that decides it; re-running an evaluation reads instead of generating.

What decides an answer, and so goes into its key: the content of the model folder's files and of the adapter's
(not their names: retraining into the same folder is another key), the chat template, the device kind and dtype,
the torch and transformers versions, the prompt's token ids (the messages, tools, system prompt and examples as
the template renders them), the token budget and the stop tokens. A loss's key holds the encoded record (tokens
and loss weights) instead of the budget. Change any of them and the key changes: nothing is ever invalidated by
hand. Batch size and prefix sharing are left out: generation computes what each prompt would alone
(tests/test_generation.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..store import Store
from ..store import eval_cache as sql

# Bump when generation or the loss changes what they compute for the same inputs: every old row is then unused.
CACHE_VERSION = 1


def file_sha256(store: Store, path: Path) -> str:
    """The file's sha256, remembered in the store by path, size and modification time (a model's weights are
    hashed once, not per evaluation)."""
    stat = path.stat()
    where = str(path.resolve())
    with store.connect() as con:
        known = sql.known_hash(con, where, stat.st_size, stat.st_mtime_ns)
    if known:
        return known
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with store.transaction() as con:
        sql.remember_hash(con, where, stat.st_size, stat.st_mtime_ns, digest)
    return digest


def folder_sha256(store: Store, folder: Path) -> str:
    """One hash over the names and contents of a folder's files (a model or an adapter folder)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    summary = [(str(p.relative_to(folder)), file_sha256(store, p)) for p in files]
    return hashlib.sha256(json.dumps(summary).encode()).hexdigest()


def model_identity(
    store: Store, model_path: str, adapter: str | None, chat_template: str | None, device: str, dtype: str
) -> str | None:
    """The hash of what decides a model's answers apart from the prompt; None when the model is not a folder on
    this machine (a hub id: its content cannot be hashed, so nothing is cached)."""
    import torch
    import transformers

    folder = Path(model_path)
    if not folder.is_dir():
        return None
    template = chat_template
    if chat_template and Path(chat_template).expanduser().is_file():
        template = Path(chat_template).expanduser().read_text(encoding="utf-8")
    parts = {
        "version": CACHE_VERSION,
        "model": folder_sha256(store, folder),
        "adapter": folder_sha256(store, Path(adapter)) if adapter else None,
        "chat_template": template,
        "device": device.split(":")[0],
        "dtype": dtype,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    return _sha(parts)


def answer_key(identity: str, prompt: Sequence[int], budget: int, stop_ids: Sequence[int]) -> str:
    return _sha(
        {"model": identity, "prompt": list(prompt), "max_new_tokens": budget, "stop": sorted(stop_ids)}
    )


def loss_key(identity: str, ids: Sequence[int], weights: Sequence[float]) -> str:
    return _sha({"model": identity, "ids": list(ids), "weights": [float(w) for w in weights]})


def _sha(value: dict) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@dataclass
class CacheCounts:
    """How many of an evaluation's answers and losses came from the cache, of how many it needed."""

    answers: int = 0
    answers_of: int = 0
    losses: int = 0
    losses_of: int = 0

    @classmethod
    def from_dict(cls, data: dict | None) -> CacheCounts:
        return cls(**{k: int(v) for k, v in (data or {}).items() if k in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def describe(self) -> str:
        parts = []
        if self.answers_of:
            parts.append(f"{self.answers} of {self.answers_of} answers")
        if self.losses_of:
            parts.append(f"{self.losses} of {self.losses_of} losses")
        return "from the cache: " + (", ".join(parts) if parts else "nothing asked")


def cache_stats(store: Store) -> dict[str, int]:
    """Rows in the store's evaluation cache per kind (answer, loss)."""
    with store.connect() as con:
        return sql.cache_size(con)


def clear_eval_cache(store: Store) -> int:
    """Empty the store's evaluation cache (never needed for correctness: a changed input is a new key)."""
    with store.transaction() as con:
        return sql.clear_cache(con)
