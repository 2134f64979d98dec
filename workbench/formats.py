"""Record formats: detect each input record's format and normalise it into the canonical chat form.

Canonical form: a list of messages `{"role", "content", "loss_weight", "name", "tool_calls"}` (the
last three optional), plus the badcase fields. The normaliser is a set of DuckDB macros so that a
million-record file is normalised inside DuckDB's vectorised engine; Python only looks at the rare
lines DuckDB cannot parse (to say exactly why, or to repair curly-quoted JSON).

Detected per record, in this order:
- `messages`      OpenAI / Ark chat: `{"messages": [{"role", "content", ...}]}`; content may be a string
                  or a list of text parts (`{"type": "text", "text"|"value": ...}`); `loss_weight`
                  (or OpenAI's `weight`) and `name` are kept.
- `sharegpt`      `{"conversations": [{"from", "value"}]}` with human/gpt/system/function_call/observation;
                  `function_call` turns become assistant `tool_calls`, `observation` turns `tool` messages;
                  a `tools` field is kept.
- `alpaca`        `{"instruction", "input", "output", "system"?, "history"?: [[user, assistant], ...]}`;
                  the user turn is instruction and input joined by a newline (as LLaMA-Factory does).
- `prompt_response`  `{"prompt"|"question"|"query"|"input", "response"|"completion"|"answer"|"output"}`.

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
        raise JSONTooDeep(f"nested more than about {sys.getrecursionlimit():,} levels deep", text, 0) from None


def too_deep(exc: JSONTooDeep) -> tuple[str, str]:
    """The reject (code, reason) for JSON nested too deeply."""
    return "too-deep", f"the JSON is {exc.msg}, deeper than any record needs; flatten it"


# Roles the canonical form uses; anything else is kept verbatim so the checks can flag it.
KNOWN_ROLES = ("system", "user", "assistant", "tool")
# Keys a message may carry (OpenAI's fine-tuning format plus LLaMA-Factory/Ark's loss_weight).
MESSAGE_KEYS = ("role", "content", "name", "loss_weight", "weight", "tool_calls", "tool_call_id", "function_call")
SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
    "function_call": "assistant", "observation": "tool", "function": "tool", "tool": "tool",
}
PROMPT_KEYS = ("prompt", "question", "query", "input")
ANSWER_KEYS = ("response", "completion", "answer", "output")
FORMAT_KEYS = ("messages", "conversations", "instruction") + PROMPT_KEYS

MESSAGE_TYPE = "STRUCT(role VARCHAR, content VARCHAR, loss_weight DOUBLE, name VARCHAR, tool_calls JSON)"

# One json_transform parses each line once into every field any format can use. Text fields are
# VARCHAR: strings come out unquoted and anything else as its JSON text. A message content that
# comes out starting with [ or { may have been a list of parts (or an object); only those few are
# looked at again (wb_content), so plain-text records never pay for a second parse.
_TEXT_FIELDS = ("system", "instruction", "input", "output", "prompt", "question", "query", "response",
                "completion", "answer", "category", "task_type", "source", "bad_output", "model_output",
                "expected")
_RECORD_SHAPE = json.dumps({
    "messages": [{"role": "VARCHAR", "content": "VARCHAR", "loss_weight": "DOUBLE", "weight": "DOUBLE",
                  "name": "VARCHAR", "tool_calls": "JSON"}],
    "conversations": [{"from": "VARCHAR", "value": "VARCHAR", "role": "VARCHAR", "content": "VARCHAR",
                       "loss_weight": "DOUBLE"}],
    **{key: "VARCHAR" for key in _TEXT_FIELDS},
    "tools": "JSON", "history": "JSON", "tags": "JSON",
})

_MESSAGE_KEY_LIST = ", ".join(f"'{k}'" for k in MESSAGE_KEYS)
_SHAREGPT_CASE = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SHAREGPT_ROLES.items())

# A line holds exactly the keys json_transform saw when its count of `":` equals the number of
# non-null fields it produced; any other key, a null value, or `":` inside a string makes the count
# larger (an item that is not an object makes it smaller), and only then is the line parsed again.
_TOP_FIELDS = ["messages", "conversations", *_TEXT_FIELDS, "tools", "history", "tags"]
_KEY_COUNT = " + ".join(f"(r.{k} IS NOT NULL)::INT" for k in _TOP_FIELDS)
_MESSAGE_FIELD_COUNT = " + ".join(
    f"(m.{k} IS NOT NULL)::INT" for k in ("role", "content", "loss_weight", "weight", "name", "tool_calls"))

# DuckDB macros, created per connection (TEMP macros live as long as the connection).
MACROS = f"""
-- Text of a JSON value: strings unquoted, lists of parts joined, null as NULL, anything else as JSON text.
CREATE OR REPLACE TEMP MACRO wb_text(v) AS CASE
    WHEN v IS NULL OR v::VARCHAR = 'null' THEN NULL
    WHEN starts_with(v::VARCHAR, '"') THEN json_extract_string(v, '$')
    WHEN starts_with(v::VARCHAR, '[') THEN array_to_string(list_transform(json_extract(v, '$[*]'),
        lambda p: CASE WHEN starts_with(p::VARCHAR, '"') THEN json_extract_string(p, '$')
                       ELSE coalesce(json_extract_string(p, '$.text'), json_extract_string(p, '$.value'), '') END), '')
    ELSE v::VARCHAR END;

-- A message content read as VARCHAR is exact unless it starts with [ or {{: then the raw JSON at
-- `path` says whether it was a string that happens to start so, or a list of parts to join.
CREATE OR REPLACE TEMP MACRO wb_content(c, text, path) AS CASE
    WHEN c IS NULL OR NOT (starts_with(c, '[') OR starts_with(c, '{{')) THEN c
    ELSE wb_text(json_extract(text, path)) END;

CREATE OR REPLACE TEMP MACRO wb_content_issue(c, text, path) AS CASE
    WHEN c IS NULL OR NOT (starts_with(c, '[') OR starts_with(c, '{{')) THEN NULL
    ELSE list_transform([json_extract(text, path)::VARCHAR], lambda raw: CASE
        WHEN starts_with(raw, '"') THEN NULL
        WHEN starts_with(raw, '[') THEN CASE WHEN len(list_filter(json_extract(raw, '$[*]'),
            lambda p: NOT starts_with(p::VARCHAR, '"') AND coalesce(json_extract_string(p, '$.type'), 'text') <> 'text')) > 0
            THEN 'non-text-content' END
        ELSE 'content-not-string' END)[1] END;

CREATE OR REPLACE TEMP MACRO wb_message(role, content) AS
    {{'role': role, 'content': content, 'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR,
      'tool_calls': NULL::JSON}};

CREATE OR REPLACE TEMP MACRO wb_tool_call(call) AS json_object('type', 'function', 'function', json_object(
    'name', json_extract_string(call, '$.name'),
    'arguments', CASE WHEN starts_with(json_extract(call, '$.arguments')::VARCHAR, '"')
                      THEN json_extract_string(call, '$.arguments')
                      ELSE coalesce(json_extract(call, '$.arguments')::VARCHAR, '{{}}') END));

CREATE OR REPLACE TEMP MACRO wb_tool_calls(value) AS CASE
    WHEN starts_with(ltrim(value), '[') THEN to_json(list_transform(json_extract(value, '$[*]'), lambda c: wb_tool_call(c)))
    ELSE to_json([wb_tool_call(value)]) END;

CREATE OR REPLACE TEMP MACRO wb_openai_messages(ms, text) AS list_transform(ms, lambda m, i: {{
    'role': m.role, 'content': wb_content(m.content, text, '$.messages[' || (i - 1) || '].content'),
    'loss_weight': coalesce(m.loss_weight, m.weight), 'name': m.name, 'tool_calls': m.tool_calls}});

CREATE OR REPLACE TEMP MACRO wb_sharegpt_messages(turns, text) AS list_transform(turns, lambda t, i:
    CASE WHEN coalesce(t."from", t.role) = 'function_call' AND json_valid(coalesce(t.value, t.content))
         THEN {{'role': 'assistant', 'content': NULL::VARCHAR, 'loss_weight': t.loss_weight, 'name': NULL::VARCHAR,
               'tool_calls': wb_tool_calls(coalesce(t.value, t.content))}}
         ELSE {{'role': CASE coalesce(t."from", t.role) {_SHAREGPT_CASE} ELSE coalesce(t."from", t.role) END,
               'content': wb_content(coalesce(t.value, t.content), text,
                   '$.conversations[' || (i - 1) || '].' || CASE WHEN t.value IS NULL THEN 'content' ELSE 'value' END),
               'loss_weight': t.loss_weight, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}} END);

CREATE OR REPLACE TEMP MACRO wb_history(h) AS CASE WHEN h IS NULL OR NOT starts_with(h::VARCHAR, '[') THEN []
    ELSE flatten(list_transform(json_extract(h, '$[*]'), lambda p: [
        wb_message('user', wb_text(json_extract(p, '$[0]'))),
        wb_message('assistant', wb_text(json_extract(p, '$[1]')))])) END;

CREATE OR REPLACE TEMP MACRO wb_alpaca_messages(r) AS list_concat(
    wb_history(r.history),
    [wb_message('user', concat_ws(chr(10), nullif(r.instruction, ''), nullif(r.input, '')))],
    CASE WHEN r.output IS NULL THEN [] ELSE [wb_message('assistant', r.output)] END);

CREATE OR REPLACE TEMP MACRO wb_prompt_messages(r) AS list_concat(
    [wb_message('user', coalesce({", ".join("r." + k for k in PROMPT_KEYS)}))],
    CASE WHEN coalesce({", ".join("r." + k for k in ANSWER_KEYS)}) IS NULL THEN []
         ELSE [wb_message('assistant', coalesce({", ".join("r." + k for k in ANSWER_KEYS)}))] END);

CREATE OR REPLACE TEMP MACRO wb_format(r) AS CASE
    WHEN r IS NULL THEN NULL
    WHEN r.messages IS NOT NULL THEN 'messages'
    WHEN r.conversations IS NOT NULL THEN 'sharegpt'
    WHEN r.instruction IS NOT NULL THEN 'alpaca'
    WHEN coalesce({", ".join("r." + k for k in PROMPT_KEYS)}) IS NOT NULL THEN 'prompt_response' END;

CREATE OR REPLACE TEMP MACRO wb_format_messages(r, fmt, text) AS CASE fmt
    WHEN 'messages' THEN wb_openai_messages(r.messages, text)
    WHEN 'sharegpt' THEN wb_sharegpt_messages(r.conversations, text)
    WHEN 'alpaca' THEN wb_alpaca_messages(r)
    WHEN 'prompt_response' THEN wb_prompt_messages(r) END;

-- These two take a list argument that DuckDB's macros would otherwise copy into every place it is
-- used; `list_transform([x], lambda m: ...)[1]` binds it once, and the leading WHEN keeps the common
-- case (no system field, no expected answer) to a single evaluation.
CREATE OR REPLACE TEMP MACRO wb_with_system(ms, system) AS CASE
    WHEN system IS NULL THEN ms
    ELSE list_transform([ms], lambda m: CASE WHEN len(m) > 0 AND m[1].role = 'system' THEN m
        ELSE list_concat([wb_message('system', system)], m) END)[1] END;

CREATE OR REPLACE TEMP MACRO wb_with_expected(ms, expected) AS CASE
    WHEN expected IS NULL THEN ms
    ELSE list_transform([ms], lambda m: CASE
        WHEN len(m) > 0 AND m[-1].role = 'assistant' THEN list_concat(list_slice(m, 1, len(m) - 1),
            [{{'role': 'assistant', 'content': expected, 'loss_weight': m[-1].loss_weight,
               'name': m[-1].name, 'tool_calls': NULL::JSON}}])
        ELSE list_concat(m, [wb_message('assistant', expected)]) END)[1] END;

CREATE OR REPLACE TEMP MACRO wb_tags(t) AS CASE
    WHEN t IS NULL OR t::VARCHAR = 'null' THEN NULL
    WHEN starts_with(t::VARCHAR, '[') THEN list_transform(json_extract(t, '$[*]'), lambda x: wb_text(x))
    ELSE list_filter(list_transform(string_split(wb_text(t), ','), lambda x: trim(x)), lambda x: x <> '') END;

CREATE OR REPLACE TEMP MACRO wb_tools(t) AS CASE
    WHEN t IS NULL OR t::VARCHAR = 'null' THEN NULL
    WHEN starts_with(t::VARCHAR, '"') AND json_valid(json_extract_string(t, '$')) THEN json(json_extract_string(t, '$'))
    ELSE t END;

CREATE OR REPLACE TEMP MACRO wb_content_hash(ms) AS md5(array_to_string(list_transform(ms, lambda m:
    concat(coalesce(m.role, ''), chr(31), coalesce(m.content, ''), chr(31), coalesce(m.tool_calls::VARCHAR, ''))),
    chr(30)));

-- What only the import can see: keys a message should not have, content that was not plain text,
-- array items that were not message objects, function calls that are not JSON.
CREATE OR REPLACE TEMP MACRO wb_plain_keys(r, text) AS
    (strlen(text) - strlen(replace(text, '":', ''))) // 2
    = {_KEY_COUNT} + coalesce(list_sum(list_transform(r.messages, lambda m: CASE WHEN m.role IS NULL AND m.content IS NULL
        THEN -1000 ELSE {_MESSAGE_FIELD_COUNT} END)), 0);

CREATE OR REPLACE TEMP MACRO wb_import_issues(r, fmt, text) AS CASE
    WHEN fmt = 'messages' AND wb_plain_keys(r, text) THEN []
    WHEN fmt = 'messages' THEN list_concat(
    flatten(list_transform(json_keys(text, '$.messages[*]'),
        lambda ks, i: list_transform(list_filter(ks, lambda k: k NOT IN ({_MESSAGE_KEY_LIST})),
            lambda k: {{'code': 'unrecognized-key', 'turn': i, 'detail': k}}))),
    list_filter(list_transform(r.messages, lambda m, i: CASE
        WHEN m.role IS NULL AND m.content IS NULL AND json_type(text, '$.messages[' || (i - 1) || ']') <> 'OBJECT'
            THEN {{'code': 'message-not-object', 'turn': i, 'detail': NULL::VARCHAR}}
        ELSE {{'code': wb_content_issue(m.content, text, '$.messages[' || (i - 1) || '].content'), 'turn': i,
               'detail': NULL::VARCHAR}} END),
        lambda x: x.code IS NOT NULL))
    WHEN fmt = 'sharegpt' THEN list_filter(list_transform(r.conversations, lambda t, i:
        CASE WHEN coalesce(t."from", t.role) = 'function_call' AND NOT json_valid(coalesce(t.value, t.content))
             THEN {{'code': 'bad-tool-call', 'turn': i, 'detail': NULL::VARCHAR}} END), lambda x: x IS NOT NULL)
    ELSE [] END;
"""


def normalised_select(source: str) -> str:
    """SQL over `source(seq BIGINT, line BIGINT, text VARCHAR)` giving one canonical row per non-blank item.

    Rows whose `messages` is NULL could not be normalised: `reject` says why ('unparsed' lines go to
    Python for an exact diagnosis).
    """
    return f"""
    WITH parsed AS (
        SELECT seq, line, text,
               -- json_valid first, not TRY(): TRY falls back to row-at-a-time work on every vector that
               -- holds one bad line, which made a file with 0.05% broken lines 30 times slower.
               -- unnest([...]) hands r out of an UNNEST, so the optimizer cannot copy the parse into
               -- each filter that reads r (it did: three parses per line for the reject test below)
               unnest([CASE WHEN json_valid(text) THEN json_transform(text, '{_RECORD_SHAPE}') END]) AS r
        FROM {source} WHERE text IS NOT NULL
    ), detected AS (
        SELECT *, wb_format(r) AS format FROM parsed
    ), shaped AS (
        SELECT *, wb_with_system(wb_format_messages(r, format, text), r.system) AS base FROM detected
    )
    SELECT seq, line, text, format,
        -- the same verdict as len(base) = 0, read off the parsed fields: a filter on `base` itself
        -- would build every record's messages twice (once to filter, once to insert)
        CASE WHEN format IS NULL THEN 'unparsed'
             WHEN r.system IS NULL AND CASE format WHEN 'messages' THEN len(r.messages) = 0
                                                   WHEN 'sharegpt' THEN len(r.conversations) = 0
                                                   ELSE false END THEN 'empty-messages' END AS reject,
        wb_with_expected(base, r.expected) AS messages,
        wb_tools(r.tools) AS tools,
        r.category AS category,
        r.task_type AS task_type,
        wb_tags(r.tags) AS tags,
        r.source AS source,
        coalesce(r.bad_output, r.model_output,
                 CASE WHEN r.expected IS NOT NULL AND len(base) > 0 AND base[-1].role = 'assistant'
                      THEN base[-1].content END) AS bad_output,
        CASE WHEN format IS NULL THEN [] ELSE wb_import_issues(r, format, text) END AS import_issues
    FROM shaped
    """


def install_macros(con) -> None:
    """Create the normaliser's macros on a connection (they are per connection)."""
    con.execute(MACROS)


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
            return "messages-not-list", f"'{key}' is a {type(value[key]).__name__}, it must be a list of messages"
    keys = ", ".join(sorted(value)[:12]) or "none"
    return "unknown-format", (
        f"no chat found (keys: {keys}); expected 'messages', 'conversations' (ShareGPT), "
        f"'instruction'/'output' (Alpaca) or 'prompt'/'response'"
    )


# --- the canonical message in Python --------------------------------------------------------------

def canonical_message(m: dict) -> dict:
    """A message with exactly the canonical fields (what the store's messages column holds)."""
    tool_calls = m.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, str):
        tool_calls = json.dumps(tool_calls, ensure_ascii=False)
    weight = m.get("loss_weight", m.get("weight"))
    return {"role": m.get("role"), "content": m.get("content"),
            "loss_weight": None if weight is None else float(weight), "name": m.get("name"), "tool_calls": tool_calls}


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
