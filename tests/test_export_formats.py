"""Export formats: round trips through our importer, Hugging Face datasets, the OpenAI cookbook checks, LLaMA-Factory."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from workbench.export import ExportConfig, export_training_set
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store.records import Selection, list_records

# Real data sets as badcase categories (exported with status 'new', as imported), plus hand-made chats
# with a system prompt, several turns and stored loss weights.
REAL = {
    "alpaca_zh_demo.json": "zh",
    "glaive_toolcall_en_demo.json": "tools_en",
    "glaive_toolcall_zh_demo.json": "tools_zh",
    "v1_sft_demo.jsonl": "weighted",
}
MULTI_TURN = [
    {
        "messages": [
            {"role": "system", "content": "你是客服助手。"},
            {"role": "user", "content": f"订单 {i} 还没到", "loss_weight": 0.0},
            {"role": "assistant", "content": "我帮您查一下。", "loss_weight": 0.5},
            {"role": "user", "content": "好的，谢谢"},
            {"role": "assistant", "content": f"订单 {i} 明天送达。", "loss_weight": 1.0},
        ],
        "category": "multi",
    }
    for i in range(12)
]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Store:
    from tests.conftest import REAL_DATA

    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} is absent")
    root = tmp_path_factory.mktemp("formats")
    store = Store.open(root / "store")
    for name, category in REAL.items():
        import_file(store, REAL_DATA / name, dataset="badcases", category=category)
    path = root / "multi.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in MULTI_TURN), encoding="utf-8")
    import_file(store, path, dataset="badcases")
    return store


def export(store: Store, name: str, **options):
    """A sample of every category (60 each) with the built-in exact leakage guard: small enough to be quick."""
    options = {"per_category": 60, **options}
    config = ExportConfig(name=name, statuses=("new",), general_share=0.0, leakage_guard="exact", **options)
    return export_training_set(store, config)


def reimport(tmp_path: Path, *paths: Path) -> list:
    """Import export files into a fresh store; returns its records in file order."""
    store = Store.open(tmp_path / "again")
    for path in paths:
        import_file(store, path, dataset="badcases")
    with store.connect() as con:
        return list_records(con, limit=100_000)


def exported_ids(folder: Path, split: str) -> list[int]:
    return [
        json.loads(line)["id"]
        for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def originals(store: Store, ids: list[int]) -> list:
    with store.connect() as con:
        found = {r.id: r for r in list_records(con, Selection(ids=tuple(ids)), limit=len(ids))}
    return [found[i] for i in ids]


def same_message(original: dict, again: dict, weights: str) -> bool:
    """Canonical messages equal: role, content, name, tool calls (as JSON), and the loss weight `weights` gives.

    weights 'sharegpt': ark weights on the turns, none on the system prompt (ShareGPT's `system` field has
    no place for one; a system prompt is never trained on anyway).
    """
    calls = [json.loads(m["tool_calls"]) if m.get("tool_calls") else None for m in (original, again)]
    weight = original.get("loss_weight")
    if weights in ("ark", "sharegpt") and weight is None:
        weight = 1.0 if original["role"] == "assistant" else 0.0
    if weights == "sharegpt" and original["role"] == "system":
        weight = None
    return (original["role"], original["content"], original.get("name"), calls[0], weight) == (
        again["role"],
        again["content"],
        again.get("name"),
        calls[1],
        again.get("loss_weight"),
    )


def assert_round_trip(before: list, after: list, weights: str) -> None:
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert len(old.messages) == len(new.messages), old.id
        for m_old, m_new in zip(old.messages, new.messages, strict=True):
            assert same_message(m_old, m_new, weights), (old.id, m_old, m_new)
        old_tools = json.loads(old.tools) if isinstance(old.tools, str) else old.tools
        new_tools = json.loads(new.tools) if isinstance(new.tools, str) else new.tools
        assert old_tools == new_tools
        assert new.category == old.category


def test_the_source_store_holds_what_the_format_tests_need(source):
    with source.connect() as con:
        counts = dict(con.execute("SELECT category, count(*) FROM records GROUP BY category").fetchall())
        tool_calls = con.execute(
            "SELECT count(*) FROM records WHERE list_bool_or(list_transform(messages, "
            "lambda m: m.tool_calls IS NOT NULL))"
        ).fetchone()[0]
        weighted = con.execute(
            "SELECT count(*) FROM records WHERE list_bool_or(list_transform(messages, "
            "lambda m: m.loss_weight IS NOT NULL))"
        ).fetchone()[0]
    assert set(counts) == {"zh", "tools_en", "tools_zh", "weighted", "multi"}
    assert tool_calls > 100 and weighted > 400


@pytest.mark.parametrize("weights", ["stored", "ark"])
def test_messages_export_round_trips_through_the_importer(source, tmp_path, weights):
    result = export(source, f"rt-{weights}", weights=weights)
    ids = exported_ids(result.folder, "train") + exported_ids(result.folder, "val")
    after = reimport(tmp_path, result.folder / "train.jsonl", result.folder / "val.jsonl")
    assert_round_trip(originals(source, ids), after, weights)
    assert any(m.get("tool_calls") for r in after for m in r.messages)


def test_sharegpt_export_round_trips_through_the_importer(source, tmp_path):
    result = export(source, "sg", format="sharegpt")
    ids = exported_ids(result.folder, "train") + exported_ids(result.folder, "val")
    after = reimport(tmp_path, result.folder / "train.sharegpt.json", result.folder / "val.sharegpt.json")
    assert_round_trip(originals(source, ids), after, "sharegpt")
    first_call = next(
        t
        for item in json.loads((result.folder / "train.sharegpt.json").read_text("utf-8"))
        for t in item["conversations"]
        if t["from"] == "function_call"
    )
    call = json.loads(first_call["value"])
    assert set(call) == {"name", "arguments"} and isinstance(
        call["arguments"], dict
    )  # as LLaMA-Factory expects


def test_alpaca_export_round_trips_and_leaves_out_what_alpaca_cannot_hold(source, tmp_path):
    result = export(source, "al", format="alpaca", weights="none")
    ids = [i for split in ("train", "val") for i in exported_ids(result.folder, split)]
    before = [r for r in originals(source, ids) if plain_pairs(r.messages)]
    after = reimport(tmp_path, result.folder / "train.alpaca.json", result.folder / "val.alpaca.json")
    assert len(before) == len(after)
    for old, new in zip(
        before, after, strict=True
    ):  # Alpaca has no per-turn loss weights: text and roles only
        assert [(m["role"], m["content"]) for m in old.messages] == [
            (m["role"], m["content"]) for m in new.messages
        ]
        assert new.category == old.category
    items = json.loads((result.folder / "train.alpaca.json").read_text(encoding="utf-8"))
    assert any("history" in item and "system" in item for item in items)
    left_out = len(ids) - len(before)
    reported = [w for w in result.warnings if w.startswith("alpaca: left out:")]
    assert any(w.startswith("alpaca: left out: has tool calls") for w in reported)
    assert (
        left_out > 0 and sum(int(re.search(r"\((\d+) records?\)", w).group(1)) for w in reported) == left_out
    )


def plain_pairs(messages: list[dict]) -> bool:
    """What Alpaca can hold: an optional system prompt, then user/assistant pairs, no tool calls."""
    roles = [m["role"] for m in messages if not m.get("tool_calls")]
    if len(roles) < len(messages):
        return False
    roles = roles[1:] if roles[:1] == ["system"] else roles
    return bool(roles) and roles == ["user", "assistant"] * (len(roles) // 2)


def test_dataset_info_describes_the_files_for_llama_factory(source):
    for fmt, columns in (
        ("sharegpt", {"messages": "conversations", "system": "system", "tools": "tools"}),
        (
            "alpaca",
            {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            },
        ),
    ):
        result = export(source, f"lf-{fmt}", format=fmt)
        info = json.loads((result.folder / "dataset_info.json").read_text(encoding="utf-8"))
        assert set(info) == {f"lf-{fmt}_train", f"lf-{fmt}_val"}
        for split in ("train", "val"):
            entry = info[f"lf-{fmt}_{split}"]
            assert (
                entry["file_name"] == f"{split}.{fmt}.json" and (result.folder / entry["file_name"]).is_file()
            )
            assert entry["formatting"] == fmt and entry["columns"] == columns
            items = json.loads((result.folder / entry["file_name"]).read_text(encoding="utf-8"))
            keys = set().union(*(item.keys() for item in items))
            assert (
                {columns["messages"]} <= keys
                if fmt == "sharegpt"
                else {"instruction", "input", "output"} <= keys
            )


def test_messages_files_load_with_hugging_face_datasets(source, tmp_path):
    from datasets import load_dataset

    result = export(source, "hf")
    data = load_dataset(
        "json",
        data_files={
            "train": str(result.folder / "train.jsonl"),
            "validation": str(result.folder / "val.jsonl"),
        },
        cache_dir=str(tmp_path / "hf"),
    )
    assert (
        data["train"].num_rows == result.train_records and data["validation"].num_rows == result.val_records
    )
    assert {"messages", "id", "category", "source", "tools"} <= set(data["train"].column_names)
    rows = list(data["train"])
    assert any(m["tool_calls"] for r in rows for m in r["messages"] if m.get("tool_calls"))
    assert any("订单" in (m["content"] or "") for r in rows for m in r["messages"])
    for fmt in ("sharegpt", "alpaca"):
        other = export(source, f"hf-{fmt}", format=fmt)
        loaded = load_dataset(
            "json", data_files=str(other.folder / f"train.{fmt}.json"), cache_dir=str(tmp_path / f"hf-{fmt}")
        )
        assert loaded["train"].num_rows > 0


# The format checks of OpenAI's cookbook "Data preparation and analysis for chat model fine-tuning",
# re-implemented from its published list of error types.
COOKBOOK_KEYS = ("role", "content", "name", "function_call", "weight")
COOKBOOK_ROLES = ("system", "user", "assistant", "function")


def cookbook_format_errors(dataset: list) -> dict[str, int]:
    errors: dict[str, int] = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                errors["message_missing_key"] += 1
            if any(k not in COOKBOOK_KEYS for k in message):
                errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in COOKBOOK_ROLES:
                errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            errors["example_missing_assistant_message"] += 1
    return dict(errors)


def test_cookbook_checks_catch_what_they_should():
    bad = [
        [1],
        {"messages": []},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "bot", "content": "x"}]},
        {"messages": [{"role": "assistant", "content": "x", "loss_weight": 1}]},
    ]
    assert cookbook_format_errors(bad) == {
        "data_type": 1,
        "missing_messages_list": 1,
        "message_missing_key": 1,
        "missing_content": 1,
        "example_missing_assistant_message": 2,
        "unrecognized_role": 1,
        "message_unrecognized_key": 1,
    }


def test_openai_weights_export_passes_the_cookbook_format_checks(source):
    result = export(source, "openai", weights="openai", categories=("zh", "weighted", "multi"))
    for split in ("train", "val"):
        dataset = [
            json.loads(line) for line in (result.folder / f"{split}.jsonl").read_text("utf-8").splitlines()
        ]
        assert dataset and cookbook_format_errors(dataset) == {}
        for row in dataset:
            for m in row["messages"]:
                assert ("weight" in m) == (m["role"] == "assistant") and m.get("weight", 0) in (0, 1)


def test_default_ark_export_differs_from_the_cookbook_only_by_its_loss_weight_key(source):
    result = export(source, "ark", categories=("zh", "weighted", "multi"))
    dataset = [json.loads(line) for line in (result.folder / "train.jsonl").read_text("utf-8").splitlines()]
    messages = sum(len(row["messages"]) for row in dataset)
    assert cookbook_format_errors(dataset) == {"message_unrecognized_key": messages}
    stripped = [
        {**row, "messages": [{k: v for k, v in m.items() if k != "loss_weight"} for m in row["messages"]]}
        for row in dataset
    ]
    assert cookbook_format_errors(stripped) == {}


def test_weights_modes(source):
    def first_multi(weights: str) -> list[dict]:
        result = export(source, f"w-{weights}", weights=weights, categories=("multi",), val=0.0)
        return json.loads((result.folder / "train.jsonl").read_text("utf-8").splitlines()[0])["messages"]

    assert [m.get("loss_weight") for m in first_multi("ark")] == [0.0, 0.0, 0.5, 0.0, 1.0]
    assert [m.get("loss_weight") for m in first_multi("stored")] == [None, 0.0, 0.5, None, 1.0]
    assert [m.get("weight") for m in first_multi("openai")] == [None, None, 1, None, 1]
    assert all(set(m) == {"role", "content"} for m in first_multi("none"))
