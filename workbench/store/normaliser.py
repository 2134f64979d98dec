"""SQL of the import normaliser: DuckDB macros that turn every record format into the canonical chat form.

The formats and their rules are described in workbench/formats.py; this is their SQL, run inside
DuckDB's vectorised engine so that a million-record file never passes through Python.
"""

from __future__ import annotations

import json

from ..formats import (
    ANSWER_KEYS,
    FEEDBACK_DOWN_WORDS,
    FEEDBACK_UP_WORDS,
    MESSAGE_KEYS,
    PROMPT_KEYS,
    SHAREGPT_ROLES,
)

MESSAGE_TYPE = "STRUCT(role VARCHAR, content VARCHAR, loss_weight DOUBLE, name VARCHAR, tool_calls JSON)"

# One json_transform parses each line once into every field any format can use. Text fields are
# VARCHAR: strings come out unquoted and anything else as its JSON text. A message content that
# comes out starting with [ or { may have been a list of parts (or an object); only those few are
# looked at again (wb_content), so plain-text records never pay for a second parse.
_TEXT_FIELDS = (
    "system",
    "instruction",
    "input",
    "output",
    "prompt",
    "question",
    "query",
    "response",
    "completion",
    "answer",
    "category",
    "task_type",
    "source",
    "bad_output",
    "model_output",
    "expected",
)
_MESSAGE_SHAPE = {
    "role": "VARCHAR",
    "content": "VARCHAR",
    "loss_weight": "DOUBLE",
    "weight": "DOUBLE",
    "name": "VARCHAR",
    "tool_calls": "JSON",
}
# A production log's fields (formats.LOG_KEYS, formats.FEEDBACK_KEYS): kept as JSON, read only when present.
# `response` is a text field too (prompt/response records); a log's response object is read from the line.
_LOG_FIELDS = ("choices", "correction", "feedback", "scores", "thumbs_down", "thumbs_up")
_LOG_FIELDS += ("thumb", "thumbs", "rating", "score", "comment")
_RECORD_SHAPE = json.dumps(
    {
        "messages": [_MESSAGE_SHAPE],
        "request": {"messages": [_MESSAGE_SHAPE]},
        "conversations": [
            {
                "from": "VARCHAR",
                "value": "VARCHAR",
                "role": "VARCHAR",
                "content": "VARCHAR",
                "loss_weight": "DOUBLE",
            }
        ],
        **{key: "VARCHAR" for key in _TEXT_FIELDS},
        "tools": "JSON",
        "history": "JSON",
        "tags": "JSON",
        **{key: "JSON" for key in _LOG_FIELDS},
    }
)

_MESSAGE_KEY_LIST = ", ".join(f"'{k}'" for k in MESSAGE_KEYS)
_SHAREGPT_CASE = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in SHAREGPT_ROLES.items())

# A line holds exactly the keys json_transform saw when its count of `":` equals the number of
# non-null fields it produced; any other key, a null value, or `":` inside a string makes the count
# larger (an item that is not an object makes it smaller), and only then is the line parsed again.
_TOP_FIELDS = [
    "messages",
    "conversations",
    *_TEXT_FIELDS,
    "tools",
    "history",
    "tags",
    *_LOG_FIELDS,
    "request",
]
_KEY_COUNT = " + ".join(f"(r.{k} IS NOT NULL)::INT" for k in _TOP_FIELDS)
_MESSAGE_FIELD_COUNT = " + ".join(
    f"(m.{k} IS NOT NULL)::INT" for k in ("role", "content", "loss_weight", "weight", "name", "tool_calls")
)

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

CREATE OR REPLACE TEMP MACRO wb_openai_messages(ms, text, prefix) AS list_transform(ms, lambda m, i: {{
    'role': m.role, 'content': wb_content(m.content, text, prefix || '[' || (i - 1) || '].content'),
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
    WHEN r.request.messages IS NOT NULL
      OR (r.messages IS NOT NULL AND (r.response IS NOT NULL OR r.choices IS NOT NULL)) THEN 'openai_log'
    WHEN r.messages IS NOT NULL THEN 'messages'
    WHEN r.conversations IS NOT NULL THEN 'sharegpt'
    WHEN r.instruction IS NOT NULL THEN 'alpaca'
    WHEN coalesce({", ".join("r." + k for k in PROMPT_KEYS)}) IS NOT NULL THEN 'prompt_response' END;

CREATE OR REPLACE TEMP MACRO wb_format_messages(r, fmt, text) AS CASE fmt
    WHEN 'messages' THEN wb_openai_messages(r.messages, text, '$.messages')
    WHEN 'openai_log' THEN CASE WHEN r.messages IS NOT NULL THEN wb_openai_messages(r.messages, text, '$.messages')
                                ELSE wb_openai_messages(r.request.messages, text, '$.request.messages') END
    WHEN 'sharegpt' THEN wb_sharegpt_messages(r.conversations, text)
    WHEN 'alpaca' THEN wb_alpaca_messages(r)
    WHEN 'prompt_response' THEN wb_prompt_messages(r) END;

-- A production log (formats.py: the openai_log format and the feedback fields). The response's text: the
-- first choice's message of a chat-completions response (or a top-level `choices`), or a plain string; a
-- response that only calls tools gives its calls as JSON text.
CREATE OR REPLACE TEMP MACRO wb_choice_text(c) AS CASE WHEN c IS NULL THEN NULL ELSE coalesce(
    wb_text(json_extract(c, '$[0].message.content')),
    json_extract(c, '$[0].message.tool_calls')::VARCHAR,
    wb_text(json_extract(c, '$[0].text'))) END;

CREATE OR REPLACE TEMP MACRO wb_log_response(r, text) AS CASE WHEN r.response IS NULL THEN wb_choice_text(r.choices)
    ELSE list_transform([json_extract(text, '$.response')], lambda v: CASE
        WHEN NOT starts_with(v::VARCHAR, '{{') THEN wb_text(v)
        ELSE coalesce(wb_choice_text(json_extract(v, '$.choices')), wb_text(json_extract(v, '$.content')),
                      wb_text(json_extract(v, '$.message.content'))) END)[1] END;

-- The first item of a list of feedback entries (LangSmith's feedback, Langfuse's scores), else the value.
CREATE OR REPLACE TEMP MACRO wb_first(v) AS CASE
    WHEN v IS NULL OR v::VARCHAR = 'null' THEN NULL
    WHEN starts_with(v::VARCHAR, '[') THEN json_extract(v, '$[0]') ELSE v END;

-- A correction: a string, or an object holding it (a message's content, LangSmith's outputs).
CREATE OR REPLACE TEMP MACRO wb_correction_text(v) AS CASE
    WHEN v IS NULL OR v::VARCHAR = 'null' THEN NULL
    WHEN NOT starts_with(v::VARCHAR, '{{') THEN wb_text(v)
    ELSE coalesce(wb_text(json_extract(v, '$.content')), wb_text(json_extract(v, '$.text')),
                  wb_text(json_extract(v, '$.message.content')), wb_text(json_extract(v, '$.output')),
                  wb_text(json_extract(v, '$.outputs.output')), wb_text(json_extract(v, '$.outputs.content')),
                  wb_text(json_extract(v, '$.answer'))) END;

CREATE OR REPLACE TEMP MACRO wb_thumb_word(v) AS CASE
    WHEN v IS NULL THEN NULL
    WHEN v::VARCHAR = 'false' THEN 'down'
    WHEN v::VARCHAR = 'true' THEN 'up'
    WHEN lower(trim(wb_text(v))) IN ({", ".join(f"'{w}'" for w in FEEDBACK_DOWN_WORDS)}) THEN 'down'
    WHEN lower(trim(wb_text(v))) IN ({", ".join(f"'{w}'" for w in FEEDBACK_UP_WORDS)}) THEN 'up' END;

-- A number from a score: booleans are 1 and 0, numeric strings are read.
CREATE OR REPLACE TEMP MACRO wb_number(v) AS CASE
    WHEN v IS NULL THEN NULL
    WHEN v::VARCHAR = 'true' THEN 1.0 WHEN v::VARCHAR = 'false' THEN 0.0
    ELSE TRY_CAST(wb_text(v) AS DOUBLE) END;

CREATE OR REPLACE TEMP MACRO wb_has_feedback(r) AS coalesce(r.feedback, r.scores, r.thumbs_down, r.thumbs_up,
    r.thumb, r.thumbs, r.rating, r.score) IS NOT NULL;

-- One struct per record: thumb ('down' | 'up'), score, comment and correction, from the first feedback
-- entry that says it. A feedback entry is an object (Helicone's rating, LangSmith's key/score/comment/
-- correction, Langfuse's name/value/comment) or a plain word ("thumbs_down").
CREATE OR REPLACE TEMP MACRO wb_feedback(r) AS list_transform([wb_first(coalesce(r.feedback, r.scores))], lambda fb: {{
    'thumb': coalesce(
        CASE WHEN r.thumbs_down::VARCHAR = 'true' THEN 'down' END,
        CASE r.thumbs_up::VARCHAR WHEN 'true' THEN 'up' WHEN 'false' THEN 'down' END,
        wb_thumb_word(r.thumb), wb_thumb_word(r.thumbs), wb_thumb_word(r.rating),
        CASE WHEN fb IS NULL THEN NULL WHEN NOT starts_with(fb::VARCHAR, '{{') THEN wb_thumb_word(fb) ELSE coalesce(
            CASE WHEN json_extract(fb, '$.thumbs_down')::VARCHAR = 'true' THEN 'down' END,
            wb_thumb_word(json_extract(fb, '$.thumb')), wb_thumb_word(json_extract(fb, '$.thumbs')),
            wb_thumb_word(json_extract(fb, '$.rating')), wb_thumb_word(json_extract(fb, '$.value')),
            wb_thumb_word(json_extract(fb, '$.stringValue')),
            -- a 0/1 score named as a thumb (LangSmith key "thumbs", Langfuse's BOOLEAN scores)
            CASE WHEN lower(coalesce(json_extract_string(fb, '$.key'), json_extract_string(fb, '$.name'), ''))
                          LIKE '%thumb%' OR json_extract_string(fb, '$.dataType') = 'BOOLEAN'
                 THEN CASE wb_number(coalesce(json_extract(fb, '$.score'), json_extract(fb, '$.value')))
                      WHEN 0 THEN 'down' WHEN 1 THEN 'up' END END) END),
    'score': coalesce(wb_number(r.score), CASE WHEN r.rating::VARCHAR NOT IN ('true', 'false') THEN wb_number(r.rating) END,
        CASE WHEN starts_with(fb::VARCHAR, '{{') THEN coalesce(wb_number(json_extract(fb, '$.score')),
            CASE WHEN json_type(fb, '$.value') IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN wb_number(json_extract(fb, '$.value')) END,
            CASE WHEN json_type(fb, '$.rating') IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN wb_number(json_extract(fb, '$.rating')) END) END),
    'comment': coalesce(wb_text(r.comment), CASE WHEN starts_with(fb::VARCHAR, '{{') THEN
        coalesce(wb_text(json_extract(fb, '$.comment')), wb_text(json_extract(fb, '$.text'))) END),
    'correction': coalesce(wb_correction_text(r.correction),
        CASE WHEN starts_with(fb::VARCHAR, '{{') THEN wb_correction_text(json_extract(fb, '$.correction')) END)
}})[1];

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
        SELECT *, wb_with_system(wb_format_messages(r, format, text), r.system) AS base,
               CASE WHEN wb_has_feedback(r) OR r.correction IS NOT NULL THEN wb_feedback(r) END AS fb
        FROM detected
    ), answered AS (
        -- a logged answer with a thumb up and no correction is a good answer: it becomes the assistant turn
        SELECT *, CASE WHEN format = 'openai_log' THEN wb_log_response(r, text) END AS logged,
               format = 'openai_log' AND fb.thumb IS NOT DISTINCT FROM 'up' AND r.expected IS NULL
                   AND fb.correction IS NULL AS logged_good
        FROM shaped
    )
    SELECT seq, line, text, format,
        -- the same verdict as len(base) = 0, read off the parsed fields: a filter on `base` itself
        -- would build every record's messages twice (once to filter, once to insert)
        CASE WHEN format IS NULL THEN 'unparsed'
             WHEN r.system IS NULL AND CASE format WHEN 'messages' THEN len(r.messages) = 0
                                                   WHEN 'sharegpt' THEN len(r.conversations) = 0
                                                   WHEN 'openai_log' THEN len(coalesce(r.messages, r.request.messages)) = 0
                                                   ELSE false END THEN 'empty-messages' END AS reject,
        wb_with_expected(base, coalesce(r.expected, fb.correction, CASE WHEN logged_good THEN logged END)) AS messages,
        wb_tools(r.tools) AS tools,
        r.category AS category,
        r.task_type AS task_type,
        wb_tags(r.tags) AS tags,
        r.source AS source,
        coalesce(r.bad_output, r.model_output,
                 CASE WHEN NOT logged_good THEN logged END,
                 CASE WHEN coalesce(r.expected, fb.correction) IS NOT NULL AND len(base) > 0
                           AND base[-1].role = 'assistant' THEN base[-1].content END) AS bad_output,
        fb.thumb AS feedback, fb.score AS feedback_score, fb.comment AS feedback_comment,
        CASE WHEN format IS NULL THEN [] ELSE wb_import_issues(r, format, text) END AS import_issues
    FROM answered
    """


def install_macros(con) -> None:
    """Create the normaliser's macros on a connection (they are per connection)."""
    con.execute(MACROS)
