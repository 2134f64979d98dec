"""Duplicate groups as the Clusters page shows them: the kept record, its copies, how each matched and
what differs (a character-level diff, so it works on Chinese text).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from ..store import Store
from ..store import dedup as sql


@dataclass
class ShownRecord:
    id: int
    dataset: str
    category: str | None
    status: str
    text: str  # every turn as "role: content" lines
    kind: str | None = None  # how it matched the kept record: exact, lexical, semantic (copies only)
    score: float | None = None
    diff: str = ""  # what differs from the kept record: an ndiff, '?' lines marking the changed characters
    question: str = ""  # the first user turn on one line: what tells one group from another (a shared
    # system prompt starts every record of a task the same way)


@dataclass
class DuplicateGroup:
    kept: ShownRecord
    copies: list[ShownRecord]


def record_text(messages: Sequence[tuple[str, str | None]]) -> str:
    return "\n".join(f"{role}: {content or ''}" for role, content in messages)


def first_user_turn(messages: Sequence[tuple[str, str | None]]) -> str:
    """The first user turn's text on one line (the record's first turn if it has no user turn)."""
    turns = [content or "" for role, content in messages if role == "user"] or [
        c or "" for _, c in messages[:1]
    ]
    return " ".join(turns[0].split()) if turns else ""


def text_diff(kept: str, copy: str) -> str:
    """The lines that differ between two records' texts, with the changed characters marked under them
    (character-level, so it works on Chinese text without word boundaries); empty when they are equal."""
    if kept == copy:
        return ""
    lines = difflib.ndiff(kept.splitlines(), copy.splitlines())
    return "\n".join(line.rstrip("\n") for line in lines if not line.startswith("  "))


def duplicate_groups(store: Store, limit: int = 20) -> tuple[list[DuplicateGroup], int, int]:
    """The biggest duplicate groups (kept record, its copies, what differs), with the store's numbers of
    groups and copies."""
    with store.connect(read_only=True) as con:
        groups, copies = sql.group_count(con)
        page = sql.groups_page(con, limit)
        ids = [i for kept, group in page for i in (kept, *group)]
        shown = sql.shown_records(con, ids) if ids else {}
        matches = sql.latest_matches(con, ids) if ids else {}
    out = []
    for kept_id, copy_ids in page:

        def show(i: int) -> ShownRecord:
            dataset, category, status, messages = shown[i]
            return ShownRecord(
                i, dataset, category, status, record_text(messages), question=first_user_turn(messages)
            )

        kept = show(kept_id)
        group = []
        for i in copy_ids:
            copy = show(i)
            copy.kind, copy.score = matches.get((kept_id, i), (None, None))
            copy.diff = text_diff(kept.text, copy.text)
            group.append(copy)
        out.append(DuplicateGroup(kept, group))
    return out, groups, copies
