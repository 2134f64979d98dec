"""The eval set: which records an evaluation scores (a store dataset, an export's validation split, the
badcases a run trained on, the general set), how each becomes an item, and a prompt trial's prompt."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..background.folder import read_json
from ..contracts import Contract
from ..errors import WorkbenchError
from ..store import Store
from ..store import evaluations as sql
from ..store import runs as runs_sql
from ..store.records import Selection, list_datasets, list_records
from ..store.settings import get_contracts
from ..train.data import read_export, reference_answer


def evaluation_datasets(store: Store) -> list[tuple[str, int]]:
    """The store's datasets an evaluation can run on (`on='dataset'`), with their record counts: those that hold
    records, the eval datasets first."""
    with store.connect() as con:
        found = list_datasets(con)
    ranked = sorted((kind != "eval", name) for name, kind, n in found if n)
    counts = {name: n for name, _kind, n in found}
    return [(name, counts[name]) for _rank, name in ranked]


@dataclass(frozen=True)
class EvalTarget:
    """A set the Evaluate page offers: a store dataset (key: its name), or a split of a finished run's export
    (key 'run N · val', 'run N · trained', 'run N · general'). records: how many it holds (None: not known without
    reading the store's general datasets)."""

    key: str
    on: str  # one of EVAL_SETS
    dataset: str | None = None
    set_run: int | None = None
    records: int | None = None

    @property
    def label(self) -> str:
        if self.on == "dataset":
            return f"{self.key} ({self.records:,} records)"
        what = {"val": "validation split", "trained": "trained badcases", "general": "general (loss only)"}[
            self.on
        ]
        count = f", {self.records:,} records" if self.records is not None else ""
        return f"run {self.set_run} · {what}{count}"


RUN_SETS = ("val", "trained", "general")


def evaluation_targets(store: Store, runs: int = 5) -> list[EvalTarget]:
    """What an evaluation can run on: the store's datasets with records (eval datasets first), then the splits of
    the newest `runs` finished runs' exports (those whose export folder is still there)."""
    targets = [EvalTarget(name, "dataset", dataset=name, records=n) for name, n in evaluation_datasets(store)]
    with store.connect() as con:
        finished = [r for r in runs_sql.list_runs(con, statuses=("done",)) if r.adapter_dir][:runs]
    for run in finished:
        manifest = read_json(Path(run.export_dir) / "manifest.json")
        if not manifest:
            continue
        val = (manifest.get("files") or {}).get("val.jsonl", {}).get("records")
        trained = ((manifest.get("counts") or {}).get("by_source") or {}).get("badcase", {}).get("train")
        for on, n in (("val", val), ("trained", trained), ("general", None)):
            if on == "val" and not val:
                continue  # an export without a validation split
            targets.append(EvalTarget(f"run {run.id} · {on}", on, set_run=run.id, records=n))
    return targets


def record_key(record: dict) -> str:
    """How a record is matched across evaluations: its store id, else a hash of its messages."""
    if record.get("id") is not None:
        return str(record["id"])
    text = json.dumps(record.get("messages"), ensure_ascii=False, sort_keys=True)
    return "sha:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def item_of(record: dict) -> dict | None:
    messages = [
        {k: v for k, v in m.items() if v is not None and k != "loss_weight"} for m in record["messages"]
    ]
    reference = reference_answer(messages)
    if reference is None or messages[-1].get("role") != "assistant":
        return None
    record_id = record.get("id")
    return {
        "record_key": record_key(record),
        "record_id": int(record_id) if isinstance(record_id, int) else None,
        "category": record.get("category"),
        "messages": messages,
        "tools": record.get("tools"),
        "reference": reference,
    }


def sample_items(items: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or len(items) <= limit:
        return items
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def _store_records(con, selection: Selection) -> list[dict]:
    out = []
    for record in list_records(con, selection, limit=10**9):
        if record.status == "rejected":
            continue
        out.append({**record.to_json(), "id": record.id})
    return out


def read_set(
    con, store: Store, on: str, *, dataset: str | None, export: Path | None
) -> tuple[list[dict], str]:
    """The records of an eval set (dicts as in an export's lines) and the name of where they came from."""
    if on == "dataset":
        if not dataset:
            raise WorkbenchError("name the dataset to evaluate on (e.g. --on eval, or any dataset name)")
        return _store_records(con, Selection(dataset=dataset)), dataset
    if export is None:
        raise WorkbenchError(
            f"the {on!r} set comes from an export: evaluate a run (its export), or name one with --export"
        )
    data = read_export(export)
    if on == "val":
        if not data.val:
            raise WorkbenchError(
                f"{data.folder} has no validation split (val.jsonl); export with a val share"
            )
        return data.val, str(data.folder)
    if on == "trained":
        seen, out = set(), []
        for r in data.train:  # the badcases, each once (upsampling repeats records)
            if r.get("source", "badcase") == "badcase" and record_key(r) not in seen:
                seen.add(record_key(r))
                out.append(r)
        return out, str(data.folder)
    # general: the general records the export did not train on
    trained = {r.get("id") for r in data.train}
    general = sql.general_datasets(con)
    records = _store_records(con, Selection(datasets=tuple(general))) if general else []
    return [r for r in records if r["id"] not in trained], str(data.folder)


def contracts_for(con, export: Path | None) -> dict[str, Contract]:
    """The store's output contracts, and the export's for categories the store has none for."""
    contracts = dict(read_export(export).contracts) if export is not None else {}
    contracts.update(get_contracts(con))
    return contracts


def with_prompt(item: dict, system_prompt: str | None, shots: list[dict]) -> dict:
    """The record with its system prompt replaced and the example records' question and answer before its own."""
    messages = list(item["messages"])
    head = [m for m in messages[:1] if m.get("role") == "system"]
    rest = messages[len(head) :]
    if system_prompt is not None:
        head = [{"role": "system", "content": system_prompt}]
    turns = []
    for shot in shots:
        question = next((m for m in reversed(shot["messages"][:-1]) if m.get("role") == "user"), None)
        if question is not None:
            turns += [
                {"role": "user", "content": question.get("content") or ""},
                {"role": "assistant", "content": shot["reference"]},
            ]
    return {**item, "messages": head + turns + rest}


def prompt_text(messages: list[dict]) -> str:
    """The last user turn (the question the answers reply to)."""
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""
