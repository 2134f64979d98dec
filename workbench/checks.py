"""Format and quality checks: a registry of rules with stable codes, severities and safe autofixes.

Every rule reads one record (its canonical messages and category) and says what is wrong and
where (turn numbers start at 1). Rules that need the raw input line (invalid JSON, unknown keys)
are reported by the importer under the codes registered here too. Bulk checking asks the store
for the records a cheap SQL test cannot prove clean, and runs these rules on those alone.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import ftfy
import ftfy.badness

from .contracts import Contract
from .formats import KNOWN_ROLES, parse_json, repair_curly_quotes

Severity = Literal["error", "warning"]
Message = dict  # {"role", "content", "loss_weight"?, "name"?, "tool_calls"?}


@dataclass(frozen=True)
class Issue:
    code: str
    severity: Severity
    message: str
    turn: int | None = None  # 1-based; None for the record as a whole
    fix: str | None = None  # what the autofix does; None when there is no safe one

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "turn": self.turn,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    title: str
    stage: Literal["import", "record"]
    fixable: bool = False


@dataclass
class CheckContext:
    """What the rules need besides the record: contracts by category and the token budget."""

    contracts: dict[str, Contract] = field(default_factory=dict)
    max_tokens: int = 2048
    count_tokens: Callable[[list[Message]], int] | None = None


RULES: dict[str, Rule] = {}
_RECORD_RULES: list[tuple[Rule, Callable[[list[Message], str | None, CheckContext], Iterable[tuple]]]] = []
_FIXES: dict[str, Callable[[list[Message], Issue], list[Message]]] = {}


def _register(
    code: str, severity: Severity, title: str, stage: Literal["import", "record"] = "import"
) -> Rule:
    rule = Rule(code, severity, title, stage)
    RULES[code] = rule
    return rule


def record_rule(code: str, severity: Severity, title: str):
    """Register a rule over a record's messages; the function yields (turn, message[, fix])."""

    def wrap(fn):
        rule = _register(code, severity, title, "record")
        _RECORD_RULES.append((rule, fn))
        return fn

    return wrap


def autofix(code: str):
    """Register the safe repair for a rule: messages, issue -> repaired messages."""

    def wrap(fn):
        _FIXES[code] = fn
        RULES[code] = Rule(**{**RULES[code].__dict__, "fixable": True})
        return fn

    return wrap


# --- rules the importer applies to raw lines ---------------------------------------------------

_register("invalid-json", "error", "the line is not valid JSON")
_register("not-object", "error", "the record is not a JSON object")
_register(
    "unknown-format", "error", "no chat found: not messages, ShareGPT, Alpaca, prompt/response or a chat log"
)
_register("messages-not-list", "error", "'messages', 'request.messages' or 'conversations' is not a list")
_register("log-without-request", "error", "a logged response without the request messages it answered")
_register("empty-messages", "error", "the record has no messages")
_register(
    "message-not-object", "warning", "a message is not a JSON object (its role and content are missing)"
)
_register(
    "unrecognized-key",
    "warning",
    "a message has a key other than role, content, name, loss_weight, weight, tool_calls",
)
_register("non-text-content", "warning", "content parts other than text (images, audio) were left out")
_register("content-not-string", "warning", "a message's content was a JSON object, kept as its JSON text")
_register("bad-tool-call", "warning", "a function_call turn whose value is not JSON")
_register("bad-encoding", "error", "the line's bytes are not valid in the file's encoding")
_register("line-too-long", "error", "the line is longer than 16 MiB, the longest a record may be")
_register("too-deep", "error", "the JSON is nested deeper than the parser goes (about 1,000 levels)")
_register(
    "repaired-on-import", "warning", "the line was repaired while importing (the original file is kept)"
)


# --- rules over a record's messages --------------------------------------------------------------

ROLE_ALIASES = {
    "human": "user",
    "customer": "user",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "chatbot": "assistant",
    "observation": "tool",
    "function": "tool",
}


def _close_role(role: str) -> str | None:
    """The known role `role` is a typo of (edit distance 1, or 2 for longer words), if any."""
    word = role.lower()
    best = None
    for known in KNOWN_ROLES:
        limit = 1 if len(known) <= 4 else 2
        d = _edit_distance(word, known)
        if 0 < d <= limit and (best is None or d < best[0]):
            best = (d, known)
    return best[1] if best else None


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


@functools.lru_cache(maxsize=4096)
def classify_role(role: str) -> tuple[str, str | None] | None:
    """(code, replacement) for a role that is not one of the known ones; None for a known role."""
    if role in KNOWN_ROLES:
        return None
    word = role.lower()
    if word in KNOWN_ROLES:
        return "role-case", word
    if word in ROLE_ALIASES:
        return "unknown-role", ROLE_ALIASES[word]
    close = _close_role(role)
    return ("role-typo", close) if close else ("unknown-role", None)


def _role_rule(code: str, describe: Callable[[str, str | None], str]):
    def check(messages, category, ctx):
        for turn, m in enumerate(messages, 1):
            found = classify_role(m["role"]) if m.get("role") else None
            if found and found[0] == code:
                yield turn, describe(m["role"], found[1]), (f"rename to {found[1]!r}" if found[1] else None)

    return check


@record_rule("missing-role", "error", "a message has no role")
def _missing_role(messages, category, ctx):
    for turn, m in enumerate(messages, 1):
        if not m.get("role"):
            yield turn, "message has no role"


record_rule("role-case", "error", "a role in the wrong case (USER, Assistant)")(
    _role_rule("role-case", lambda role, to: f"role {role!r} should be {to!r}")
)
record_rule("role-typo", "error", "a misspelled role (asistant, usr)")(
    _role_rule("role-typo", lambda role, to: f"role {role!r} looks like a typo of {to!r}")
)
record_rule("unknown-role", "error", "a role that is not system, user, assistant or tool (bot, narrator)")(
    _role_rule("unknown-role", lambda role, to: f"unknown role {role!r}; roles are {', '.join(KNOWN_ROLES)}")
)


@autofix("role-case")
@autofix("role-typo")
@autofix("unknown-role")
def _fix_role(messages, issue):
    m = messages[issue.turn - 1]
    found = classify_role(m.get("role") or "")
    if found and found[1]:
        messages[issue.turn - 1] = {**m, "role": found[1]}
    return messages


def _has_answer(m: Message) -> bool:
    return bool(m.get("tool_calls")) or bool((m.get("content") or "").strip())


@record_rule("missing-content", "error", "a message without content")
def _missing_content(messages, category, ctx):
    for turn, m in enumerate(messages, 1):
        if m.get("content") is None and not m.get("tool_calls") and m.get("role") != "assistant":
            yield turn, f"the {m.get('role') or 'message'} turn has no content"


@record_rule("empty-answer", "error", "an assistant answer that is empty or only whitespace")
def _empty_answer(messages, category, ctx):
    for turn, m in enumerate(messages, 1):
        if m.get("role") == "assistant" and not _has_answer(m):
            yield turn, "the assistant answer is empty: write the right answer or drop the turn"


@record_rule("empty-content", "warning", "a user or system turn that is empty or only whitespace")
def _empty_content(messages, category, ctx):
    for turn, m in enumerate(messages, 1):
        content = m.get("content")
        if m.get("role") != "assistant" and content is not None and not content.strip():
            yield turn, f"the {m.get('role') or 'message'} turn is blank"


@record_rule("no-assistant", "error", "no assistant message: nothing to learn from")
def _no_assistant(messages, category, ctx):
    if messages and not any(m.get("role") == "assistant" for m in messages):
        yield None, "the record has no assistant message: write the right answer before training"


@record_rule("last-not-assistant", "error", "the last turn is not the assistant's")
def _last_not_assistant(messages, category, ctx):
    if (
        messages
        and any(m.get("role") == "assistant" for m in messages)
        and messages[-1].get("role") != "assistant"
    ):
        yield (
            len(messages),
            (
                f"the last turn is from {messages[-1].get('role')!r}: the record must end with "
                f"the assistant's answer"
            ),
        )


@record_rule("system-not-first", "error", "a system message that is not the first message")
def _system_not_first(messages, category, ctx):
    systems = [turn for turn, m in enumerate(messages, 1) if m.get("role") == "system"]
    for turn in systems:
        if turn != 1:
            fix = "move the system message to the front" if len(systems) == 1 else None
            yield turn, f"system message at turn {turn}; it must come first", fix


@autofix("system-not-first")
def _fix_system_first(messages, issue):
    system = messages.pop(issue.turn - 1)
    return [system] + messages


@record_rule("consecutive-same-role", "warning", "two turns in a row from the same speaker")
def _consecutive(messages, category, ctx):
    for turn in range(2, len(messages) + 1):
        a, b = messages[turn - 2], messages[turn - 1]
        if (
            a.get("role") == b.get("role")
            and a.get("role") in ("user", "assistant")
            and not a.get("tool_calls")
            and not b.get("tool_calls")
        ):
            yield turn, f"turns {turn - 1} and {turn} are both {a.get('role')!r}", "merge them into one turn"


@autofix("consecutive-same-role")
def _fix_consecutive(messages, issue):
    a, b = messages[issue.turn - 2], messages[issue.turn - 1]
    merged = {**a, "content": "\n\n".join(x for x in (a.get("content"), b.get("content")) if x)}
    return messages[: issue.turn - 2] + [merged] + messages[issue.turn :]


def _contents(messages) -> Iterator[tuple[int, str]]:
    for turn, m in enumerate(messages, 1):
        if isinstance(m.get("content"), str):
            yield turn, m["content"]


# ftfy's heuristic only ever fires on one of these characters: a cheap search spares it plain text.
_MOJIBAKE_CHARS = re.compile("[" + "".join(ftfy.badness.MOJIBAKE_CATEGORIES.values()) + "]")


def redecode(text: str) -> str:
    """The text with mojibake undone (æ‰“æ–° -> 打新), every other character as it was.

    ftfy's fix_encoding, not fix_text: fix_text would also turn full-width Chinese punctuation into
    ASCII (，！ -> ,!), straighten curly quotes and unescape HTML in the same turn.
    """
    return ftfy.fix_encoding(text)


@record_rule("mojibake", "error", "garbled text from a wrong encoding (æ‰“æ–° for 打新)")
def _mojibake(messages, category, ctx):
    for turn, text in _contents(messages):
        if _MOJIBAKE_CHARS.search(text) and ftfy.badness.is_bad(text):
            repaired = redecode(text)
            fixable = repaired != text and not ftfy.badness.is_bad(repaired)
            sample = _garbled_sample(text)
            yield (
                turn,
                f"garbled text {sample!r}" + (f" (probably {redecode(sample)!r})" if fixable else ""),
                "re-decode the text (ftfy)" if fixable else None,
            )


def _garbled_sample(text: str) -> str:
    match = ftfy.badness.BADNESS_RE.search(text)
    start = max(0, match.start() - 4) if match else 0
    return text[start : start + 16]


@autofix("mojibake")
def _fix_mojibake(messages, issue):
    m = messages[issue.turn - 1]
    messages[issue.turn - 1] = {**m, "content": redecode(m["content"])}
    return messages


@record_rule("replacement-char", "error", "U+FFFD replacement characters: text lost in a bad decode")
def _replacement(messages, category, ctx):
    for turn, text in _contents(messages):
        if "\ufffd" in text:
            yield (
                turn,
                f"{text.count(chr(0xFFFD))} replacement character(s) �: the original text was lost; re-export the source",
            )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@record_rule("control-char", "warning", "invisible control characters")
def _control(messages, category, ctx):
    for turn, text in _contents(messages):
        found = _CONTROL.findall(text)
        if found:
            codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in found}))
            yield turn, f"control characters {codes} in the text", "remove them"


@autofix("control-char")
def _fix_control(messages, issue):
    m = messages[issue.turn - 1]
    messages[issue.turn - 1] = {**m, "content": _CONTROL.sub("", m["content"])}
    return messages


@record_rule("curly-quote-json", "error", "JSON written with curly quotes “ ” instead of straight ones")
def _curly_json(messages, category, ctx):
    for turn, text in _contents(messages):
        stripped = text.strip()
        if stripped[:1] in ("{", "[") and ("\u201c" in text or "\u201d" in text) and not _is_json(stripped):
            if repair_curly_quotes(stripped) is not None:
                yield turn, "JSON written with curly quotes “ ”: it does not parse", "straighten the quotes"


@autofix("curly-quote-json")
def _fix_curly(messages, issue):
    m = messages[issue.turn - 1]
    repaired = repair_curly_quotes(m["content"].strip())
    if repaired is not None:
        messages[issue.turn - 1] = {**m, "content": repaired}
    return messages


def _is_json(text: str) -> bool:
    try:
        parse_json(text)
    except ValueError:
        return False
    return True


_PLACEHOLDER = re.compile(r"\{\{\s*[\w.\-]+\s*\}\}|\{%.*?%\}")


@record_rule("template-placeholder", "error", "leftover template placeholders ({{name}})")
def _placeholder(messages, category, ctx):
    for turn, text in _contents(messages):
        found = sorted(set(_PLACEHOLDER.findall(text)))
        if found:
            yield turn, f"template placeholder(s) {', '.join(found[:4])} left in the text: fill them in"


REPEAT_MIN_CHARS = 80
_REPEAT = re.compile(r"(.{2,60}?)\1{4,}", re.DOTALL)


def degenerate_repetition(text: str) -> str | None:
    """The repeated unit if `text` loops on it (5+ times, over 60+ chars and 30%+ of the text)."""
    if len(text) < REPEAT_MIN_CHARS:
        return None
    raw = text.encode("utf-8")
    if len(zlib.compress(raw)) > 0.5 * len(raw):  # loops compress very well; real prose does not
        return None
    for match in _REPEAT.finditer(text):
        span = match.end() - match.start()
        if span >= 60 and span >= 0.3 * len(text):
            return match.group(1)
    return None


@record_rule("repetition", "error", "degenerate repetition (the same phrase over and over)")
def _repetition(messages, category, ctx):
    for turn, text in _contents(messages):
        unit = degenerate_repetition(text)
        if unit is not None:
            yield turn, f"the text repeats {unit.strip()[:30]!r} over and over"


def token_bound(messages) -> int:
    """An upper bound on a record's tokens: a token covers at least one byte, plus the template's own per turn."""
    return sum(len((m.get("content") or "").encode("utf-8")) for m in messages) + 16 * len(messages) + 64


@record_rule("too-long", "warning", "longer than the training max length in the target model's tokens")
def _too_long(messages, category, ctx):
    if ctx.count_tokens is None or token_bound(messages) <= ctx.max_tokens:
        return
    tokens = ctx.count_tokens(messages)
    if tokens > ctx.max_tokens:
        yield None, f"{tokens} tokens, over the max length {ctx.max_tokens}: it would be cut in training"


def _last_answer(messages) -> tuple[int, str | None] | None:
    for turn in range(len(messages), 0, -1):
        if messages[turn - 1].get("role") == "assistant":
            return turn, messages[turn - 1].get("content")
    return None


def _contract_rule(kind: str):
    def check(messages, category, ctx):
        contract = ctx.contracts.get(category or "")
        if contract is None or contract.kind != kind:
            return
        answer = _last_answer(messages)
        if answer is None:
            return
        problem = contract.violation(answer[1])
        if problem:
            fix = (
                "strip the whitespace"
                if kind == "labels" and (answer[1] or "").strip() in contract.spec
                else None
            )
            yield answer[0], f"{problem} (category {category!r})", fix

    return check


for _kind, _code, _title in (
    ("labels", "contract-label", "the answer is not one of the category's labels"),
    ("json", "contract-json", "the answer must be valid JSON and is not"),
    ("json_schema", "contract-schema", "the answer breaks the category's JSON Schema"),
    ("regex", "contract-regex", "the answer does not match the category's pattern"),
):
    record_rule(_code, "error", _title)(_contract_rule(_kind))


@autofix("contract-label")
def _fix_label(messages, issue):
    m = messages[issue.turn - 1]
    messages[issue.turn - 1] = {**m, "content": (m.get("content") or "").strip()}
    return messages


# --- running the rules ---------------------------------------------------------------------------


def check_record(
    messages: list[Message], category: str | None = None, ctx: CheckContext | None = None
) -> list[Issue]:
    """Every issue of one record, in rule order."""
    ctx = ctx or CheckContext()
    issues = []
    for rule, fn in _RECORD_RULES:
        for found in fn(messages, category, ctx):
            turn, message, fix = (found + (None,))[:3]
            issues.append(
                Issue(rule.code, rule.severity, message, turn, fix if RULES[rule.code].fixable else None)
            )
    return issues


# Fixes that rewrite text go first; the ones that move or merge turns go last, one at a time,
# because they change the turn numbers the others refer to.
_STRUCTURAL = ("system-not-first", "consecutive-same-role")


def fix_record(
    messages: list[Message], category: str | None = None, ctx: CheckContext | None = None
) -> tuple[list[Message], list[Issue]]:
    """Apply every safe autofix; returns the repaired messages and the issues that were fixed."""
    messages = [dict(m) for m in messages]
    applied: list[Issue] = []
    for _ in range(len(messages) + 4):
        issues = [i for i in check_record(messages, category, ctx) if i.fix]
        text_fixes = [i for i in issues if i.code not in _STRUCTURAL]
        if text_fixes:
            for issue in text_fixes:
                messages = _FIXES[issue.code](messages, issue)
            applied += text_fixes
            continue
        if not issues:
            break
        messages = _FIXES[issues[0].code](messages, issues[0])
        applied.append(issues[0])
    return messages, applied


def fix_issue(messages: list[Message], issue: Issue) -> list[Message]:
    """Apply the safe autofix of one issue (as found by check_record on these messages)."""
    if issue.code not in _FIXES or not issue.fix:
        raise ValueError(f"{issue.code} has no safe autofix")
    return _FIXES[issue.code]([dict(m) for m in messages], issue)


def context_for_store(con, models_dir=None) -> CheckContext:
    """The contracts, token limit and target tokenizer a store is configured with."""
    from .models import token_counter
    from .store.settings import get_contracts, get_setting

    return CheckContext(
        contracts=get_contracts(con),
        max_tokens=int(get_setting(con, "max_tokens")),
        count_tokens=token_counter(get_setting(con, "target_model"), models_dir),
    )


def run_checks(con, selection, ctx: CheckContext, progress: Callable[[int], None] | None = None) -> int:
    """Re-run the rules over the selected records and store what they find; returns how many were looked at."""
    from .store import issues as store_issues
    from .store.records import Selection, selected_ids

    if selection.issue_code is not None:  # pin the records down before their issues are cleared
        selection = Selection(ids=tuple(selected_ids(con, selection)))
    store_issues.clear_check_issues(con, selection)
    looked_at = 0
    for batch in store_issues.records_to_check(
        con, selection, clean_record_sql(ctx.max_tokens), list(ctx.contracts)
    ):
        rows = []
        for record_id, messages, category in batch:
            for issue in check_record(messages, category, ctx):
                rows.append((record_id, issue.code, issue.severity, issue.turn, issue.message, issue.fix))
        store_issues.insert_issues(con, rows)
        looked_at += len(batch)
        if progress:
            progress(looked_at)
    return looked_at


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(i.severity == "error" for i in issues)


def rules_table() -> list[Rule]:
    """All rules, for documentation and the UI."""
    return sorted(RULES.values(), key=lambda r: (r.stage, r.code))


# --- the SQL pre-test --------------------------------------------------------------------------------
# Bulk checks ask DuckDB first which records might have an issue; the rules above then run on those
# alone. The test (store.issues.clean_record_sql) must be conservative: when it calls a record clean,
# check_record() finds nothing (tests/test_checks.py holds it to that on generated records). What it
# takes from the rules is here: the characters garbled text, placeholders and control characters are
# made of, and the length from which repetition is looked for.


def _mojibake_class() -> str:
    """An RE2 character class of every character ftfy's mojibake heuristic looks at."""
    codes = [c for c in range(0x80, 0x10000) if _MOJIBAKE_CHARS.match(chr(c))]
    ranges, start, prev = [], codes[0], codes[0]
    for c in codes[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev != start else ""))
        if c is not None:
            start = prev = c
    return "[" + "".join(ranges) + "]"


# Unicode spaces Python's str.strip() removes but DuckDB's trim() keeps count as suspicious too, so
# that a content SQL finds non-blank is non-blank for the rules as well.
_ODD_SPACES = r"\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
_SUSPICIOUS = (
    r"[\x{FFFD}\x00-\x08\x0B\x0C\x0E-\x1F\x7F"
    + _ODD_SPACES
    + r"]|\{\{|\{%|(?m)^\s*[\[{]|"
    + _mojibake_class()
)


def clean_record_sql(max_tokens: int) -> str:
    """A DuckDB boolean over `messages`: true only for records every rule passes."""
    from .store.issues import clean_record_sql as pretest_sql

    return pretest_sql(max_tokens, suspicious=_SUSPICIOUS, repeat_min_chars=REPEAT_MIN_CHARS)
