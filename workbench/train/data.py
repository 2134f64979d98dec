"""Training data: read an export folder, tokenise conversations with the model's chat template, mark the
tokens the loss is computed on (assistant answers and their end-of-turn token, by `loss_weight`), and
pack conversations into padding-free batches.

How the trained tokens are found: the conversation is rendered with the chat template one assistant
turn at a time. The text up to the assistant's turn (with the generation prompt) is exactly what the
model sees at inference; what the next render adds is the answer, through its end-of-turn token.
Each piece is tokenised on its own, so the prompt tokens are the ones inference will feed and the
answer tokens the ones the model must produce.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..contracts import Contract
from ..errors import WorkbenchError

if TYPE_CHECKING:
    from ..store.records import Record

# --- the export folder -------------------------------------------------------------------------------


@dataclass
class ExportData:
    """An export folder as the trainer reads it."""

    folder: Path
    manifest: dict[str, Any]
    train: list[dict]
    val: list[dict]
    contracts: dict[str, Contract]

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.folder.name)

    @property
    def hash(self) -> str | None:
        return self.manifest.get("hash")


def read_export(folder: str | Path) -> ExportData:
    """Read `train.jsonl`, `val.jsonl` and `manifest.json` of an export folder (unknown manifest keys are kept)."""
    folder = Path(folder).expanduser().resolve()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise WorkbenchError(
            f"{folder} is not an export folder (it has no manifest.json); "
            f"make one with `workbench export --name NAME`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise WorkbenchError(f"{manifest_path} is not valid JSON ({exc}); export the set again") from None
    train = _read_jsonl(folder / "train.jsonl", required=True)
    val = _read_jsonl(folder / "val.jsonl", required=False)
    contracts = {}
    for category, spec in (manifest.get("contracts") or {}).items():
        if isinstance(spec, dict) and spec.get("kind"):
            contracts[category] = Contract(category, spec["kind"], spec.get("spec"))
    return ExportData(folder, manifest, train, val, contracts)


def _read_jsonl(path: Path, *, required: bool) -> list[dict]:
    if not path.is_file():
        if required:
            raise WorkbenchError(
                f"{path} is missing: the trainer reads train.jsonl (messages format) from the "
                f"export folder; export with --format messages"
            )
        return []
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise WorkbenchError(
                    f"{path}, line {line_no}: not valid JSON ({exc}); export the set again"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
                raise WorkbenchError(f"{path}, line {line_no}: a record needs a 'messages' list")
            record.setdefault("_line", line_no)
            records.append(record)
    return records


# --- tokenising with the loss mask ---------------------------------------------------------------------


@dataclass
class Example:
    """One tokenised conversation. `weights[t]` weighs the loss of predicting token t (0: not trained)."""

    input_ids: list[int]
    weights: list[float]
    record_id: Any = None
    category: str | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for w in self.weights if w > 0)


class SkipRecord(Exception):
    """A record the trainer leaves out, with the reason (counted in the run's log)."""


# What a template does wrong with tools (the built-in templates, chatml and plain, do both)
DROPS_TOOL_CALLS = "the chat template does not render the assistant's tool calls"
DROPS_TOOLS = "the chat template leaves out the tool definitions (the record's 'tools')"


class TemplateRefusal(SkipRecord):
    """A record the model's chat template cannot render as it is (it raises, drops the tool calls, or renders
    the conversation differently with and without its answer): the template's fault, not the record's, so
    a run refuses such an export before it starts (template_check.py)."""


def message_weight(message: dict) -> float:
    """The loss weight of a message: `loss_weight` (Ark, LLaMA-Factory) or `weight` (OpenAI); assistant
    turns default to 1, other turns are never trained."""
    if message.get("role") != "assistant":
        return 0.0
    for key in ("loss_weight", "weight"):
        value = message.get(key)
        if value is not None:
            try:
                weight = float(value)
            except (TypeError, ValueError):
                raise SkipRecord(f"{key} {value!r} is not a number") from None
            if weight < 0:
                raise SkipRecord(f"{key} {weight} is negative")
            return weight
    return 1.0


def _for_template(message: dict) -> dict:
    out = {"role": message.get("role") or "user", "content": message.get("content") or ""}
    for key in ("name", "tool_calls", "tool_call_id"):
        value = message.get(key)
        if value:
            out[key] = json.loads(value) if key == "tool_calls" and isinstance(value, str) else value
    return out


class ChatEncoder:
    """Turns conversations into token ids plus per-token loss weights, using the tokenizer's chat template."""

    def __init__(self, tokenizer, end_of_turn_ids: Iterable[int] | None = None):
        self.tok = tokenizer
        ids = set(end_of_turn_ids or ())
        if tokenizer.eos_token_id is not None:
            ids.add(tokenizer.eos_token_id)
        self.end_of_turn_ids = ids
        self.eos_id = tokenizer.eos_token_id

    def render(self, messages: list[dict], *, generation: bool, tools: Any = None) -> str:
        try:
            return self.tok.apply_chat_template(
                messages, tools=tools or None, tokenize=False, add_generation_prompt=generation
            )
        except Exception as exc:  # jinja's raise_exception, or a template that trips over this record
            raise TemplateRefusal(
                f"the chat template raises {type(exc).__name__}: {str(exc).strip() or 'no message'}"
            ) from None

    def tokens(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []

    def encode(self, messages: Sequence[dict], tools: Any = None) -> tuple[list[int], list[float]]:
        """Token ids and weights for one conversation; raises SkipRecord when it cannot be trained on."""
        msgs = [_for_template(m) for m in messages]
        weights_per_message = [message_weight(m) for m in messages]
        answers = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
        if not answers or not any(weights_per_message[i] > 0 for i in answers):
            raise SkipRecord("no assistant answer to learn (none, or every loss_weight is 0)")
        try:
            return self._encode_turns(msgs, answers, weights_per_message, tools)
        except _PrefixMismatch:
            # Templates that rewrite earlier turns (e.g. drop reasoning from history) render a conversation
            # differently as it grows; then only the final answer can be located and trained.
            last = answers[-1]
            if weights_per_message[last] <= 0:
                raise SkipRecord(
                    "the chat template rewrites earlier turns and the final answer has loss_weight 0"
                ) from None
            return self._encode_turns(msgs[: last + 1], [last], weights_per_message, tools, only_last=True)

    def _encode_turns(self, msgs, answers, weights_per_message, tools, only_last=False):
        ids: list[int] = []
        weights: list[float] = []
        done = ""
        for i in answers:
            prompt = self.render(msgs[:i], generation=True, tools=tools)
            full = self.render(msgs[: i + 1], generation=False, tools=tools)
            if not prompt.startswith(done) or not full.startswith(prompt):
                if only_last:
                    raise TemplateRefusal(
                        "the chat template renders the conversation differently with and without "
                        "its answer, so the answer tokens cannot be located"
                    )
                raise _PrefixMismatch
            head = self.tokens(prompt[len(done) :])
            ids += head
            weights += [0.0] * len(head)
            answer = full[len(prompt) :]
            if msgs[i].get("tool_calls") and not _renders_tool_calls(answer, msgs[i]["tool_calls"]):
                raise TemplateRefusal(DROPS_TOOL_CALLS)
            answer_ids = self.tokens(answer)
            trained, rest = self._split_at_end_of_turn(answer_ids)
            w = weights_per_message[i] if (not only_last or i == answers[-1]) else 0.0
            ids += trained + rest
            weights += [w] * len(trained) + [0.0] * len(rest)
            done = full
        return ids, weights

    def _split_at_end_of_turn(self, answer_ids: list[int]) -> tuple[list[int], list[int]]:
        """The answer through its first end-of-turn token (what the model must produce, stop included), and
        what the template puts after it (a newline, say). A template that ends answers without such a token
        gets the end-of-text token appended, so the tuned model still learns to stop."""
        for j, token in enumerate(answer_ids):
            if token in self.end_of_turn_ids:
                return answer_ids[: j + 1], answer_ids[j + 1 :]
        if self.eos_id is None:
            return answer_ids, []
        return answer_ids + [self.eos_id], []

    def prompt_ids(self, messages: Sequence[dict], tools: Any = None) -> list[int]:
        """What the model is given to answer the final assistant turn (everything before it, plus the
        generation prompt), tokenised as in training."""
        msgs = [_for_template(m) for m in messages]
        answers = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
        cut = answers[-1] if answers else len(msgs)
        ids: list[int] = []
        done = ""
        for i in [a for a in answers if a < cut] + [cut]:
            prompt = self.render(msgs[:i], generation=True, tools=tools)
            if not prompt.startswith(done):  # a history-rewriting template: one piece, as inference sees it
                return self.tokens(prompt)
            ids += self.tokens(prompt[len(done) :])
            if i == cut:
                break
            full = self.render(msgs[: i + 1], generation=False, tools=tools)
            if not full.startswith(prompt):
                return self.tokens(self.render(msgs[:cut], generation=True, tools=tools))
            ids += self.tokens(full[len(prompt) :])
            done = full
        return ids


class _PrefixMismatch(Exception):
    pass


def _renders_tool_calls(answer: str, tool_calls: Any) -> bool:
    names = [
        ((c.get("function") or {}).get("name") or c.get("name")) for c in tool_calls if isinstance(c, dict)
    ]
    return all(name and name in answer for name in names) if names else True


def reference_answer(messages: Sequence[dict]) -> str | None:
    """The final assistant turn's text: what task accuracy compares generated answers with."""
    for m in reversed(messages):
        if m.get("role") == "assistant":
            return m.get("content") or ""
    return None


@dataclass
class Encoded:
    """A split tokenised: the examples, and the records left out with why (reason → count, first lines)."""

    examples: list[Example] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return sum(len(e) for e in self.examples)


def encode_records(encoder: ChatEncoder, records: Sequence[dict], max_length: int) -> Encoded:
    """Tokenise records; too-long and untrainable ones are counted in `skipped`, never silently lost."""
    out = Encoded()
    for record in records:
        try:
            ids, weights = encoder.encode(record["messages"], record.get("tools"))
            if len(ids) > max_length:
                raise SkipRecord(f"longer than max_length={max_length} tokens")
        except SkipRecord as why:
            reason = str(why)
            out.skipped[reason] += 1
            out.skipped_lines.setdefault(reason, [])
            if len(out.skipped_lines[reason]) < 5:
                out.skipped_lines[reason].append(record.get("_line"))
            continue
        out.examples.append(Example(ids, weights, record.get("id"), record.get("category")))
    return out


def render_mask(tokenizer, example: Example, *, open_mark: str = "⟦", close_mark: str = "⟧") -> str:
    """The conversation as text with every trained span inside ⟦ ⟧ (a fractional weight is written ⟦0.5|...⟧).

    Each span is decoded whole: a byte-level tokenizer splits a Chinese character over several tokens,
    which decode one by one into U+FFFD."""
    pieces = []
    run: list[int] = []
    current: float | None = None
    for token, weight in [*zip(example.input_ids, example.weights, strict=True), (None, None)]:
        w = weight if weight is not None and weight > 0 else None
        if token is None or w != current:
            if run:
                text = tokenizer.decode(run)
                pieces.append(
                    text
                    if current is None
                    else open_mark + ("" if current == 1 else f"{current:g}|") + text + close_mark
                )
            run, current = [], w
        if token is not None:
            run.append(token)
    return "".join(pieces)


def token_pieces(tokenizer, ids: Sequence[int]) -> list[tuple[str, int]]:
    """(text, how many tokens) for `ids` in order: tokens that hold part of a character are joined with
    the tokens that complete it, so every piece reads as text."""
    pieces: list[tuple[str, int]] = []
    start = 0
    for end in range(1, len(ids) + 1):
        text = tokenizer.decode(list(ids[start:end]))
        if "\ufffd" not in text or end - start >= 4:  # 4 bytes: the longest UTF-8 character
            pieces.append((text, end - start))
            start = end
    if start < len(ids):
        pieces.append((tokenizer.decode(list(ids[start:])), len(ids) - start))
    return pieces


# --- batches -------------------------------------------------------------------------------------------


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The steps of one epoch: a shuffled order (the same for the same seed and epoch, so a resumed run
    sees the same batches) cut into batches of `batch_size` (the last may be smaller).

    Steps are not gathered by system prompt, though a step of one prompt would be cheaper: on a mix of two
    tasks, steps of one task each held out 68.5 % against TRL's 74.0 %, mixed steps 75.2 % against 72.5 %
    (bench train_shared, docs/train.md), and a step that mixes tasks still lays each of its prompts once
    (`micro_batches`, `pack`)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(n_examples))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n_examples, batch_size)]


def first_turn_keys(
    examples: Sequence[Example], end_of_turn_ids: Iterable[int], *, limit: int = 4096
) -> list[tuple]:
    """Each example's tokens through its first end-of-turn token (its system prompt, or first message): the
    key `micro_batches` keeps together."""
    ends = set(end_of_turn_ids)
    keys = []
    for e in examples:
        cut = next((i + 1 for i, t in enumerate(e.input_ids[:limit]) if t in ends), min(len(e), limit))
        keys.append(tuple(e.input_ids[:cut]))
    return keys


def micro_batches(
    examples: Sequence[Example], max_tokens: int, keys: Sequence[Hashable] | None = None
) -> list[list[Example]]:
    """Split a step's examples, longest first, into groups of at most `max_tokens` tokens (one example
    always fits a group on its own, however long).

    keys: each example's first turn (see `first_turn_keys`), when shared prompts are laid once. Examples
    with the same key are then kept next to each other, so they land in the same group where the budget
    allows, and a first turn already in a group is not counted again (`pack` lays it once)."""
    order = list(range(len(examples)))
    if keys is None:
        order.sort(key=lambda i: -len(examples[i]))
    else:
        longest: dict[Hashable, int] = {}
        for i in order:
            longest[keys[i]] = max(longest.get(keys[i], 0), len(examples[i]))
        rank = {key: n for n, key in enumerate(sorted(longest, key=lambda k: -longest[k]))}
        order.sort(key=lambda i: (rank[keys[i]], -len(examples[i])))
    groups: list[list[Example]] = []
    laid: set[Hashable] = set()
    size = 0
    for i in order:
        example = examples[i]
        key = keys[i] if keys is not None else None
        cost = len(example) - len(key) if key is not None and key in laid else len(example)
        if groups and size + cost <= max_tokens:
            groups[-1].append(example)
            size += cost
        else:
            groups.append([example])
            laid = set()
            size = len(example)
        if key is not None:
            laid.add(key)
    return groups


@dataclass
class MaskPreview:
    """One record tokenised, with its trained spans marked (what `workbench train --show-mask` prints)."""

    record_id: Any
    line: int | None
    tokens: int
    trained: list[tuple[str, float]]
    marked_text: str


def preview_mask(
    export_dir: str | Path,
    *,
    base_model: str | None = None,
    chat_template: str | None = None,
    record_id: Any = None,
    models_dir: Path | None = None,
) -> MaskPreview:
    """Tokenise one training record (the first, or the one with `record_id`) and mark what the loss sees."""
    from ..models import end_of_turn_ids, load_chat_tokenizer

    export = read_export(export_dir)
    records = export.train + export.val
    chosen = next((r for r in records if record_id is None or str(r.get("id")) == str(record_id)), None)
    if chosen is None:
        raise WorkbenchError(f"no record with id {record_id} in {export.folder}")
    tok = load_chat_tokenizer(base_model, models_dir, chat_template)
    encoder = ChatEncoder(tok, end_of_turn_ids(base_model, models_dir))
    try:
        ids, weights = encoder.encode(chosen["messages"], chosen.get("tools"))
    except SkipRecord as why:
        raise WorkbenchError(f"record {chosen.get('id')} would be left out of training: {why}") from None
    example = Example(ids, weights, chosen.get("id"), chosen.get("category"))
    trained = []
    for weight, group in itertools.groupby(zip(ids, weights, strict=True), key=lambda pair: pair[1]):
        if weight > 0:
            trained += [(text, weight) for text, _n in token_pieces(tok, [t for t, _w in group])]
    return MaskPreview(chosen.get("id"), chosen.get("_line"), len(ids), trained, render_mask(tok, example))


# --- one record as the trainer sees it (Review's training view) -------------------------------------------------


@dataclass
class TrainingView:
    """A record as the trainer sees it: the chat template applied, trained spans inside ⟦ ⟧."""

    model: str
    tokens: int
    trained: int
    max_tokens: int
    marked_text: str
    skipped: str | None = None  # why the trainer would leave the record out

    @property
    def too_long(self) -> bool:
        return self.tokens > self.max_tokens


@dataclass
class TrainingEncoder:
    model: str
    tokenizer: Any = field(repr=False)
    encoder: Any = field(repr=False)


def load_training_encoder(model: str | None, models_dir: str | Path | None) -> TrainingEncoder:
    """The target model's tokenizer and chat encoder, as `workbench train` loads them (load once, reuse)."""
    from ..models import end_of_turn_ids, load_chat_tokenizer

    models_dir = Path(models_dir) if models_dir else None
    tok = load_chat_tokenizer(model, models_dir)
    return TrainingEncoder(model or "", tok, ChatEncoder(tok, end_of_turn_ids(model, models_dir)))


def training_view(record: Record, encoder: TrainingEncoder, max_tokens: int) -> TrainingView:
    """The same tokenisation and loss mask as `workbench train --show-mask`, for one record."""
    messages = [{k: v for k, v in m.items() if v is not None} for m in record.messages]
    tools = json.loads(record.tools) if isinstance(record.tools, str) else record.tools
    try:
        ids, weights = encoder.encoder.encode(messages, tools)
    except SkipRecord as why:
        try:
            text = encoder.encoder.render(messages, generation=False, tools=tools)
        except TemplateRefusal:
            text = ""  # the template renders nothing of it: the reason says why
        return TrainingView(encoder.model, len(encoder.encoder.tokens(text)), 0, max_tokens, text, str(why))
    example = Example(ids, weights, record.id, record.category)
    return TrainingView(
        encoder.model, len(ids), example.trained_tokens, max_tokens, render_mask(encoder.tokenizer, example)
    )
