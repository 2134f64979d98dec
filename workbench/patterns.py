"""Regular expressions that people and models supply (regex contracts, JSON Schema patterns), run with RE2.

Python's `re` backtracks: `(a+)+$` against 30 × 'a' + '!' takes a minute, and each more 'a' doubles it,
while the store waits. RE2 never backtracks, so a match takes time linear in the text, whatever the pattern.
"""

from __future__ import annotations

import functools
import re

import re2

from .errors import WorkbenchError

# Python's \d \w \s match the digits, letters and spaces of every script; RE2's only ASCII ones. They are
# rewritten to Unicode classes so that a pattern means on Chinese text what it meant under `re`.
SYNTAX_HELP = (
    r"Python re syntax without backreferences or lookaround (RE2, which checks any answer in time linear in its "
    r"length); \w and \d match Chinese as in re, \p{Han} matches Chinese characters."
)
_SPACES = r"\t\n\x0b\f\r\x1c-\x1f \x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_WORD = r"\pL\pN_"
_OUTSIDE_CLASS = {
    "d": r"\p{Nd}",
    "D": r"\P{Nd}",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "s": f"[{_SPACES}]",
    "S": f"[^{_SPACES}]",
    "Z": r"\z",  # Python's end of text is \Z, RE2's \z
}
_INSIDE_CLASS = {"d": r"\p{Nd}", "D": r"\P{Nd}", "w": _WORD, "s": _SPACES}
_OMITTED_MIN = re.compile(r"\{,(\d+)\}")  # Python reads a{,3} as a{0,3}; RE2 as the text "a{,3}"

# What RE2 refuses that Python's re takes (told by RE2's error), with what to write instead.
_ADVICE = (
    (
        re.compile(r"\(\?<?[=!]"),
        "it uses lookahead or lookbehind, which RE2 does not have; "
        "match the text itself instead (e.g. 'ab' rather than 'a(?=b)b')",
    ),
    (
        re.compile(r"escape sequence: \\[1-9]|\(\?P$"),
        "it uses a backreference (\\1, (?P=name)), which RE2 does not have; spell out what must repeat",
    ),
    (re.compile(r"repetition operator: .\+"), "possessive repeats (a++) are not needed with RE2: write a+"),
    (re.compile(r"\(\?>"), "atomic groups (?>...) are not needed with RE2: write (?:...)"),
    (
        re.compile(r"\(\?[x#]"),
        "verbose mode (?x) and (?#...) comments are not supported: write the pattern without them",
    ),
    (
        re.compile(r"too large|repetition size"),
        "it repeats too much (RE2 allows counts up to 1000 and a compiled size of 32 MiB); "
        "use a smaller count, e.g. {1,200}",
    ),
)


def _translate(pattern: str) -> str:
    """`pattern` with Python's Unicode \\d \\w \\s (and \\Z, {,n}) written as RE2 means the same."""
    out: list[str] = []
    i, in_class, class_start = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            letter = pattern[i + 1]
            table = _INSIDE_CLASS if in_class else _OUTSIDE_CLASS
            if letter in table:
                out.append(table[letter])
            elif in_class and letter in "WS":
                raise WorkbenchError(
                    f"\\{letter} inside [...] cannot be written for RE2; "
                    f"write the class negated instead ([^...] of the characters you mean)"
                )
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):  # a POSIX class such as [:alpha:] inside [...]
                end = pattern.find(":]", i + 2)
                if end != -1:
                    out.append(pattern[i : end + 2])
                    i = end + 2
                    continue
            if char == "]" and i > class_start:
                in_class = False
        elif char == "[":
            in_class = True
            class_start = i + 1 + (pattern.startswith("^", i + 1))  # a ] right there is a literal ]
        elif char == "{" and (m := _OMITTED_MIN.match(pattern, i)):
            out.append(f"{{0,{m.group(1)}}}")
            i = m.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _options(dot_all: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    options.dot_nl = dot_all
    options.max_mem = 32 << 20
    return options


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, *, dot_all: bool = False):
    """`pattern` (Python `re` syntax without backreferences or lookaround, or RE2's own) compiled with RE2.

    dot_all: `.` matches a newline too. Raises WorkbenchError with a sentence saying why a pattern cannot
    be used and what to write instead."""
    try:
        return re2.compile(_translate(pattern), _options(dot_all))
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        for sign, advice in _ADVICE:
            if sign.search(detail):
                raise WorkbenchError(advice) from None
        raise WorkbenchError(f"it is not a valid regex ({detail})") from None


def fullmatch(pattern: str, text: str) -> bool:
    """Whether the whole `text` matches `pattern` (`.` matching newlines too), in time linear in the text."""
    return compile_pattern(pattern, dot_all=True).fullmatch(_encodable(text)) is not None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches somewhere in `text` (as JSON Schema's "pattern" does), in linear time."""
    return compile_pattern(pattern).search(_encodable(text)) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """`text`, with any lone surrogate (a JSON answer can spell one, "\\ud800") as U+FFFD: RE2 reads UTF-8."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)
