"""Record formats: detect each input record's format and normalise it into the canonical chat form.

Canonical form: a list of messages `{"role", "content", "loss_weight", "name", "tool_calls"}` (the
last three optional), plus the badcase fields. The normaliser is a set of DuckDB macros
(store/normaliser.py) so that a million-record file is normalised inside DuckDB's vectorised engine;
Python (here) only looks at the rare lines DuckDB cannot parse (to say exactly why, or to repair
curly-quoted JSON).

Detected per record, in this order:
- `messages`      OpenAI / Ark chat: `{"messages": [{"role", "content", ...}]}`; content may be a string
                  or a list of text parts (`{"type": "text", "text"|"value": ...}`); `loss_weight`
                  (or OpenAI's `weight`) and `name` are kept.
- `sharegpt`      `{"conversations": [{"from", "value"}]}` with human/gpt/system/function_call/observation;
                  `function_call` turns become assistant `tool_calls`, `observation` turns `tool` messages;
                  a `tools` field is kept.
- `alpaca`        `{"instruction", "input", "output", "system"?, "history"?: [[user, assistant], ...]}`;
                  the user turn is instruction and input joined by a newline (as LLaMA-Factory does).
- `openai_log`   a production log of an OpenAI-compatible endpoint: the request's `messages` (top level or
                  under `request`) and the model's `response` (a chat-completions response: its first
                  choice's message, or a string) or a top-level `choices`. The response is the record's
                  bad output (what the model said); a correction (below) becomes the final assistant turn.
                  A response with a thumb up and no correction was a good answer: it becomes the assistant
                  turn instead, with no bad output.
                  Checked before `messages`: a `messages` record with a `response` or `choices` is a log.
- `prompt_response`  `{"prompt"|"question"|"query"|"input", "response"|"completion"|"answer"|"output"}`.

Feedback fields, in any format (the names OpenAI, LangSmith, Langfuse and Helicone exports use):
`thumbs_down` / `thumbs_up` (booleans), `thumb` / `thumbs` / `rating` (a word: down, thumbs_down,
thumbsDown, 👎, negative, bad, … or Helicone's boolean rating), `score` (a number), `comment`,
`correction` (a string or an object with the corrected `content` / `text` / `output` / `outputs`), and
`feedback` or `scores`: one entry or a list (the first is read) holding any of those, or LangSmith's
`{"key", "score", "comment", "correction"}` / Langfuse's `{"name", "value", "dataType", "comment"}`,
where a 0/1 score named like a thumb (or a BOOLEAN score) is a thumb down / up. They land in the
record's `feedback` ('down' | 'up'), `feedback_score` and `feedback_comment`, which Review filters on.

Badcase fields, in any format: `category`, `task_type`, `tags` (list or comma-separated),
`source`, `bad_output` or `model_output` (what the model wrongly said), `expected` (the right
answer: it becomes the final assistant turn; if the record already ends with an assistant turn,
that turn is taken as the bad output unless one is given). A top-level `system` is put first.
"""

from __future__ import annotations

import json
import re
import sys


class JSONTooDeep(json.JSONDecodeError):
    """JSON nested deeper than Python's parser goes (its recursion limit, about 1,000 levels)."""


def parse_json(text: str):
    """`json.loads`, where input nested too deeply fails as bad JSON (JSONTooDeep) instead of a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONTooDeep(
            f"nested more than about {sys.getrecursionlimit():,} levels deep", text, 0
        ) from None


def too_deep(exc: JSONTooDeep) -> tuple[str, str]:
    """The reject (code, reason) for JSON nested too deeply."""
    return "too-deep", f"the JSON is {exc.msg}, deeper than any record needs; flatten it"


# Roles the canonical form uses; anything else is kept verbatim so the checks can flag it.
KNOWN_ROLES = ("system", "user", "assistant", "tool")
# Keys a message may carry (OpenAI's fine-tuning format plus LLaMA-Factory/Ark's loss_weight).
MESSAGE_KEYS = (
    "role",
    "content",
    "name",
    "loss_weight",
    "weight",
    "tool_calls",
    "tool_call_id",
    "function_call",
)
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "function": "tool",
    "tool": "tool",
}
PROMPT_KEYS = ("prompt", "question", "query", "input")
ANSWER_KEYS = ("response", "completion", "answer", "output")
FORMAT_KEYS = ("messages", "conversations", "instruction") + PROMPT_KEYS
# Words a feedback field uses for a thumb down / up (compared lower-cased).
# Numbers are not words here: a rating of 1 on a 1-5 scale is a score, not a thumb up.
FEEDBACK_DOWN_WORDS = (
    "down",
    "thumbs_down",
    "thumbs-down",
    "thumbsdown",
    "thumb_down",
    "👎",
    "negative",
    "bad",
)
FEEDBACK_DOWN_WORDS += ("dislike",)
FEEDBACK_UP_WORDS = ("up", "thumbs_up", "thumbs-up", "thumbsup", "thumb_up", "👍", "positive", "good", "like")

# --- the rare lines DuckDB could not parse -------------------------------------------------------

_CURLY_OPEN = re.compile(r"([{\[,:]\s*)[\u201c\u201d]")
_CURLY_CLOSE = re.compile(r"[\u201c\u201d](\s*[:,}\]])")


def repair_curly_quotes(text: str) -> str | None:
    """The JSON text with curly quotes used as JSON delimiters made straight, or None if that doesn't help.

    Quotes inside strings (他说“你好”) are left alone: only those next to JSON punctuation are changed.
    """
    if "\u201c" not in text and "\u201d" not in text:
        return None
    fixed = text
    for _ in range(2):  # "a":“b” needs both patterns; overlapping matches need a second pass
        fixed = _CURLY_CLOSE.sub(r'"\1', _CURLY_OPEN.sub(r'\1"', fixed))
    candidates = [fixed, text.replace("\u201c", '"').replace("\u201d", '"')]
    for candidate in candidates:
        try:
            parse_json(candidate)
        except ValueError:
            continue
        return candidate
    return None


def diagnose(text: str) -> tuple[str, str]:
    """(code, reason) for a line the normaliser could not turn into messages."""
    try:
        value = parse_json(text)
    except JSONTooDeep as exc:
        return too_deep(exc)
    except ValueError as exc:
        where = "column" if exc.msg.endswith(" at") else "at column"  # "Unterminated string starting at"
        return "invalid-json", f"not valid JSON: {exc.msg} {where} {exc.colno}"
    if not isinstance(value, dict):
        return "not-object", f"a JSON {type(value).__name__} where a record object was expected"
    for key in ("messages", "conversations"):
        if key in value and not isinstance(value[key], list):
            return (
                "messages-not-list",
                f"'{key}' is a {type(value[key]).__name__}, it must be a list of messages",
            )
    request = value.get("request")
    if isinstance(request, dict) and "messages" in request and not isinstance(request["messages"], list):
        return (
            "messages-not-list",
            f"'request.messages' is a {type(request['messages']).__name__}, it must be a list of messages",
        )
    if ("response" in value or "choices" in value) and not any(k in value for k in FORMAT_KEYS):
        return "log-without-request", (
            "a logged response without the request it answered: add the request's messages as "
            "'messages' or 'request': {'messages': [...]}"
        )
    keys = ", ".join(sorted(value)[:12]) or "none"
    return "unknown-format", (
        f"no chat found (keys: {keys}); expected 'messages', 'conversations' (ShareGPT), "
        f"'instruction'/'output' (Alpaca), 'prompt'/'response' or a log's 'request': {{'messages'}}"
    )


# --- the canonical message in Python --------------------------------------------------------------


def canonical_message(m: dict) -> dict:
    """A message with exactly the canonical fields (what the store's messages column holds)."""
    tool_calls = m.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, str):
        tool_calls = json.dumps(tool_calls, ensure_ascii=False)
    weight = m.get("loss_weight", m.get("weight"))
    return {
        "role": m.get("role"),
        "content": m.get("content"),
        "loss_weight": None if weight is None else float(weight),
        "name": m.get("name"),
        "tool_calls": tool_calls,
    }


def message_for_json(m: dict) -> dict:
    """A message as written to JSON: role and content, and the optional fields only when set."""
    out = {"role": m.get("role"), "content": m.get("content")}
    if m.get("loss_weight") is not None:
        out["loss_weight"] = m["loss_weight"]
    if m.get("name"):
        out["name"] = m["name"]
    if m.get("tool_calls"):
        calls = m["tool_calls"]
        out["tool_calls"] = parse_json(calls) if isinstance(calls, str) else calls
    return out
