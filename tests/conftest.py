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


_ITEM_FIELDS = ("record_key", "record_id", "category", "messages", "tools", "reference")


def stored_evaluation(
    store,
    rows: list[dict],
    *,
    model: str = "base",
    run_id: int | None = None,
    eval_set: str = "dataset",
    system_prompt: str | None = None,
    status: str = "done",
) -> int:
    """An evaluation as the evaluation stage stores it, without running a model: each row holds a record's
    fields (record_key, record_id, category, messages, reference) and its result (output, verdict, loss...)."""
    from workbench.store import evaluations as sql

    with store.transaction() as con:
        eid = sql.insert_evaluation(
            con,
            model=model,
            run_id=run_id,
            base_model="tiny",
            eval_set=eval_set,
            source="eval",
            system_prompt=system_prompt,
            examples=None,
            config={},
            items=[{k: r[k] for k in _ITEM_FIELDS if k in r} for r in rows],
            pid=None,
            author="t",
        )
        results = [
            {"seq": n, **{k: v for k, v in r.items() if k not in _ITEM_FIELDS}} for n, r in enumerate(rows)
        ]
        sql.save_results(con, eid, results)
        sql.update_evaluation(con, eid, status=status)
    return eid


def shown(markdown: str) -> str:
    """The text a reader sees of a markdown body a page hands Streamlit (escaped names read as themselves)."""
    import html
    import re

    from markdown_it import MarkdownIt

    return html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(markdown))).strip()
