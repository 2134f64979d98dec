"""Can this model's chat template render this export? Checked before a run starts, on one record of each
shape (roles in order, tool calls, tools), so a template that refuses the data stops the run at once.

A template may raise (a system role it does not support, a 'tool' role, roles that must alternate), drop
the assistant's tool calls or the tool definitions, or render the answer where the loss mask cannot find it.
Each is a reason to refuse the run, with the records it concerns and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkbenchError
from .data import (
    DROPS_TOOL_CALLS,
    DROPS_TOOLS,
    ChatEncoder,
    ExportData,
    SkipRecord,
    TemplateRefusal,
    read_export,
)

MAX_SHAPES = 500  # record shapes tried; a real export has a handful


class ChatTemplateError(WorkbenchError):
    """The model's chat template cannot render the export's records; nothing was trained."""


@dataclass
class TemplateProblem:
    """What the template does wrong with records of one kind, and where they are."""

    reason: str
    records: int = 0
    lines: list[tuple[str, int]] = field(default_factory=list)  # (file, line) of the first few

    @property
    def where(self) -> str:
        """'train.jsonl lines 1, 2, 3, …': the first lines, by file."""
        files: dict[str, list[str]] = {}
        for name, line in self.lines:
            files.setdefault(name, []).append(str(line))
        more = ", …" if self.records > len(self.lines) else ""
        return (
            "; ".join(
                f"{name} line{'s' if len(lines) > 1 else ''} {', '.join(lines)}"
                for name, lines in files.items()
            )
            + more
        )


@dataclass
class TemplateCheck:
    """The check of an export against a template: how many shapes were rendered, and what went wrong."""

    model: str
    shapes: int
    records: int
    problems: list[TemplateProblem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """The refusal: what the template does with which records, and what to do."""
        parts = [
            f"{p.reason}, in {p.records} record{'s' if p.records != 1 else ''} ({p.where})"
            for p in self.problems
        ]
        other = (
            # the built-in templates render no tool calls and no tool definitions: naming them here would send
            # a person round in a circle
            "give a template of your own that renders them (--chat-template FILE.jinja)"
            if any(p.reason in (DROPS_TOOL_CALLS, DROPS_TOOLS) for p in self.problems)
            else "give another template (--chat-template chatml, plain or FILE.jinja)"
        )
        return (
            f"the chat template of {self.model} cannot render this export, so nothing was trained: "
            + "; ".join(parts)
            + f". What to do: pick a model whose template supports these turns, {other}, or leave those records "
            "out of the export (in Review: edit or reject them, then export again). "
            "`workbench train EXPORT --show-mask --record ID` shows how the template renders one record."
        )


def record_shape(record: dict) -> tuple:
    """What a template's control flow can depend on: the roles in order, which turns call tools or carry
    a name, whether tools are defined."""
    turns = tuple(
        (m.get("role"), bool(m.get("tool_calls")), bool(m.get("name")), m.get("content") in (None, ""))
        for m in record.get("messages") or []
    )
    return turns, bool(record.get("tools"))


def check_records(encoder: ChatEncoder, splits: dict[str, Sequence[dict]], model: str) -> TemplateCheck:
    """Render one record of each shape with the encoder's template and check its loss mask."""
    first: dict[tuple, tuple[str, dict]] = {}
    counts: dict[tuple, list[tuple[str, Any]]] = {}
    total = 0
    for split, records in splits.items():
        for record in records:
            total += 1
            shape = record_shape(record)
            counts.setdefault(shape, []).append((split, record.get("_line")))
            if shape not in first and len(first) < MAX_SHAPES:
                first[shape] = (split, record)
    problems: dict[str, TemplateProblem] = {}
    for shape, (_split, record) in first.items():
        reason = _problem(encoder, record)
        if reason:
            problem = problems.setdefault(reason, TemplateProblem(reason))
            where = counts[shape]
            problem.records += len(where)
            problem.lines += [(f"{s}.jsonl", line) for s, line in where[: 3 - len(problem.lines)]]
    return TemplateCheck(model, len(first), total, list(problems.values()))


def _problem(encoder: ChatEncoder, record: dict) -> str | None:
    messages, tools = record["messages"], record.get("tools")
    if isinstance(tools, str):
        tools = json.loads(tools)
    try:
        ids, weights = encoder.encode(messages, tools)
    except TemplateRefusal as why:
        return str(why)
    except SkipRecord:
        return None  # not the template's fault (no answer, a bad weight): the run counts and skips these
    trained = encoder.tok.decode([t for t, w in zip(ids, weights, strict=True) if w > 0])
    answer = next((m for m in reversed(messages) if m.get("role") == "assistant"), {})
    content = (answer.get("content") or "").strip()
    if content and content not in trained:
        return "the loss mask misses the answer: the template renders the assistant's turn without its text"
    names = [(t.get("function") or t).get("name") for t in tools or [] if isinstance(t, dict)]
    if names:
        prompt = encoder.tok.decode(ids)
        if not all(name and name in prompt for name in names):
            return DROPS_TOOLS
    return None


def check_export_template(
    export: ExportData | str | Path,
    *,
    base_model: str | None = None,
    chat_template: str | None = None,
    models_dir: Path | None = None,
) -> TemplateCheck:
    """Load the model's tokenizer with its chat template (or `chat_template`) and check the export with it.
    A model without a chat template is refused here, with the templates to choose from."""
    from ..models import EMBEDDED_MODEL, end_of_turn_ids, load_chat_tokenizer

    if not isinstance(export, ExportData):
        export = read_export(export)
    tokenizer = load_chat_tokenizer(base_model, models_dir, chat_template)
    encoder = ChatEncoder(tokenizer, end_of_turn_ids(base_model, models_dir))
    model = base_model or EMBEDDED_MODEL
    if chat_template:
        model += f" (template {chat_template})"
    return check_records(encoder, {"train": export.train, "val": export.val}, model)


def require_renderable(check: TemplateCheck) -> TemplateCheck:
    """The check, or ChatTemplateError with its message when the template cannot render the export."""
    if not check.ok:
        raise ChatTemplateError(check.message())
    return check
