"""Shared fixtures: a real on-disk store in a temp folder, the real data sets, file writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"

# One converted copy of the embedded model for the whole suite (and across runs), instead of a
# 20-second conversion in every temp store.
os.environ.setdefault("WORKBENCH_MODELS", str(ROOT / ".cache" / "models"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def store(tmp_path):
    from workbench.store import Store

    return Store.open(tmp_path / "store")


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} is absent (the shared real data sets live beside the project checkout)")
    return REAL_DATA


@pytest.fixture
def write_jsonl(tmp_path):
    def write(records, name="data.jsonl", encoding="utf-8", newline="\n") -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
        path.write_bytes((newline.join(lines) + newline).encode(encoding))
        return path

    return write


def chat(user: str, assistant: str | None = None, **extra) -> dict:
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"messages": messages, **extra}
