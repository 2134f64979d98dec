"""Writing an export's files: messages JSONL, ShareGPT and Alpaca JSON with LLaMA-Factory's dataset_info.json.

The messages lines come out of the store ready-made (see store/exports.line_sql); the other formats
are converted from those lines, so every format holds the same records in the same order. Output is
byte-stable: fixed key order, no timestamps, UTF-8 with no escaping of non-ASCII text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

FORMATS = ("messages", "sharegpt", "alpaca")

SHAREGPT_FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


@dataclass(frozen=True)
class FileSummary:
    name: str
    records: int
    sha256: str
    bytes: int

    def as_dict(self) -> dict:
        return {"records": self.records, "sha256": self.sha256, "bytes": self.bytes}


def write_text(path: Path, text: str, records: int) -> FileSummary:
    data = text.encode("utf-8")
    path.write_bytes(data)
    return FileSummary(path.name, records, hashlib.sha256(data).hexdigest(), len(data))


def write_lines_column(path: Path, lines: pa.ChunkedArray) -> FileSummary:
    """Write an Arrow string column as a file of lines, each followed by \\n, hashing it on the way.

    The values of a string column lie back to back in one buffer per chunk; numpy lays them out
    again with a newline after each in one pass (cheaper than concatenating the newline onto a
    million strings in SQL), and no Python string is made for any line.
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as f:
        for chunk in lines.chunks:
            if len(chunk) == 0:
                continue
            if chunk.null_count:
                raise ValueError("a line came out null")
            if not pa.types.is_string(chunk.type):
                chunk = chunk.cast(pa.large_string())
            offset_type = np.int32 if pa.types.is_string(chunk.type) else np.int64
            _validity, offsets_buffer, data_buffer = chunk.buffers()
            offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[
                chunk.offset : chunk.offset + len(chunk) + 1
            ]
            data = np.frombuffer(data_buffer, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
            newlines = (offsets[1:] - offsets[0]).astype(np.int64) + np.arange(len(chunk), dtype=np.int64)
            out = np.empty(len(data) + len(chunk), dtype=np.uint8)
            keep = np.ones(len(out), dtype=bool)
            keep[newlines] = False
            out[keep] = data
            out[newlines] = 10
            f.write(out.data)
            digest.update(out.data)
            size += len(out)
    return FileSummary(path.name, len(lines), digest.hexdigest(), size)


def write_json_array(path: Path, items: Sequence[dict]) -> FileSummary:
    """A JSON array with one record per line (readable, diffable, and what LLaMA-Factory and our importer read)."""
    return write_text(path, json_array_text(items), len(items))


def json_array_text(items: Sequence[dict]) -> str:
    """The text write_json_array writes (a download builds the same bytes in memory)."""
    if not items:
        return "[]\n"
    return "[\n" + ",\n".join(dumps(item) for item in items) + "\n]\n"


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- ShareGPT -------------------------------------------------------------------------------------------


def to_sharegpt(record: dict) -> tuple[dict, list[str]]:
    """A messages-format record as LLaMA-Factory ShareGPT, and what did not fit (empty when nothing was lost).

    Assistant tool calls become `function_call` turns (value: {"name", "arguments"} with the arguments
    as JSON, or a list of those for parallel calls), tool messages `observation` turns, a leading
    system message the `system` field, tools a JSON string. Per-message loss weights ride along as
    `loss_weight` on the turn (LLaMA-Factory ignores them; our importer reads them back).
    """
    messages = record["messages"]
    lost: list[str] = []
    out: dict = {}
    if messages and messages[0].get("role") == "system":
        out["system"] = messages[0].get("content") or ""
        messages = messages[1:]
    turns = []
    for m in messages:
        role = m.get("role")
        weight = m.get("loss_weight")
        if m.get("tool_calls"):
            if m.get("content"):
                lost.append("an assistant turn with both text and tool calls keeps only the calls")
            turn = {"from": "function_call", "value": _function_call_value(m["tool_calls"])}
        else:
            turn = {
                "from": SHAREGPT_FROM.get(role, role),
                "value": m.get("content") if m.get("content") is not None else "",
            }
        if m.get("name"):
            lost.append("message names are dropped")
        if weight is not None:
            turn["loss_weight"] = weight
        turns.append(turn)
    result = {"conversations": turns}
    if "system" in out:
        result["system"] = out["system"]
    if record.get("tools") is not None:
        result["tools"] = dumps(record["tools"])
    result.update(_extras(record))
    return result, lost


def _function_call_value(tool_calls: list[dict]) -> str:
    calls = []
    for call in tool_calls:
        function = call.get("function", call)
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                json.loads(arguments)
                raw = arguments  # JSON arguments go in as JSON, spliced verbatim so their text survives
            except ValueError:
                raw = dumps(arguments)  # arguments that are not JSON stay a string, as they came
        else:
            raw = dumps(arguments)
        calls.append('{"name":' + dumps(function.get("name")) + ',"arguments":' + raw + "}")
    return calls[0] if len(calls) == 1 else "[" + ",".join(calls) + "]"


# --- Alpaca ---------------------------------------------------------------------------------------------


def to_alpaca(record: dict) -> tuple[dict | None, str | None]:
    """A messages-format record as Alpaca (instruction/input/output/system/history), or None and why not.

    Only plain chats fit: an optional system message, then user/assistant pairs ending with the
    assistant, no tool calls. The last pair is instruction/output, earlier pairs the history.
    """
    messages = record["messages"]
    system = None
    if messages and messages[0].get("role") == "system":
        system = messages[0].get("content") or ""
        messages = messages[1:]
    if not messages or len(messages) % 2:
        return None, "not user/assistant pairs ending with the assistant"
    pairs = []
    for i in range(0, len(messages), 2):
        user, assistant = messages[i], messages[i + 1]
        if user.get("role") != "user" or assistant.get("role") != "assistant":
            return None, "not user/assistant pairs ending with the assistant"
        if user.get("tool_calls") or assistant.get("tool_calls"):
            return None, "has tool calls"
        if user.get("content") is None or assistant.get("content") is None:
            return None, "a turn without text"
        pairs.append([user["content"], assistant["content"]])
    instruction, output = pairs[-1]
    out: dict = {"instruction": instruction, "input": "", "output": output}
    if system is not None:
        out["system"] = system
    if len(pairs) > 1:
        out["history"] = pairs[:-1]
    out.update(_extras(record))
    return out, None


def _extras(record: dict) -> dict:
    return {key: record[key] for key in ("id", "category", "source") if key in record}


# --- LLaMA-Factory --------------------------------------------------------------------------------------


def dataset_info(name: str, fmt: str, files: dict[str, str]) -> dict:
    """LLaMA-Factory's dataset_info.json entries `<name>_train` and `<name>_val` for the split files."""
    if fmt == "sharegpt":
        entry = {
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        }
    elif fmt == "alpaca":
        entry = {
            "formatting": "alpaca",
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            },
        }
    else:
        raise ValueError(f"LLaMA-Factory entries are written for sharegpt and alpaca, not {fmt}")
    return {f"{name}_{split}": {"file_name": file_name, **entry} for split, file_name in files.items()}


def convert_lines(lines: Iterable[str], fmt: str) -> tuple[list[dict], dict[str, int], list[int]]:
    """Messages lines to `fmt` records; returns the records, counts of what was lost, and ids left out."""
    converted: list[dict] = []
    lost: dict[str, int] = {}
    left_out: list[int] = []
    for line in lines:
        record = json.loads(line)
        if fmt == "sharegpt":
            item, notes = to_sharegpt(record)
            converted.append(item)
            for note in set(notes):
                lost[note] = lost.get(note, 0) + 1
        else:
            item, why = to_alpaca(record)
            if item is None:
                left_out.append(record["id"])
                lost[f"left out: {why}"] = lost.get(f"left out: {why}", 0) + 1
            else:
                converted.append(item)
    return converted, lost, left_out
