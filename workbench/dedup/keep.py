"""The keep rule: matches form groups, each keeps its best record (status, then newest, then id);
and a person's choice to keep another record of a group instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import WorkbenchError
from ..store import Store
from ..store import dedup as sql
from .matches import Match

# Status ranks for the keep rule: the kept record of a group is the best-ranked one, then the newest.
KEEP_RANK = {"approved": 0, "fixed": 1, "labeled": 2, "new": 3, "rejected": 4}


@dataclass
class Group:
    kept_id: int
    member_ids: list[int]  # every record of the group, the kept one included
    matches: list[Match] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "kept_id": self.kept_id,
            "member_ids": self.member_ids,
            "duplicate_ids": [i for i in self.member_ids if i != self.kept_id],
            "matches": [asdict(m) for m in self.matches],
        }


def group_matches(keys: sql.RecordKeys, matches: list[Match]) -> list[Group]:
    """Matches form groups (the connected components of the match graph); each keeps its best record."""
    from scipy.sparse import coo_matrix  # scipy loads only for grouping: a listing or `--help` need none
    from scipy.sparse.csgraph import connected_components

    if not matches:
        return []
    row = {int(rid): i for i, rid in enumerate(keys.ids.tolist())}
    a = np.fromiter((row[m.a] for m in matches), np.int64, len(matches))
    b = np.fromiter((row[m.b] for m in matches), np.int64, len(matches))
    graph = coo_matrix((np.ones(len(matches), np.int8), (a, b)), shape=(len(keys), len(keys)))
    _, component = connected_components(graph, directed=False)
    matched = np.unique(np.concatenate([a, b]))
    matched = matched[np.argsort(component[matched], kind="stable")]
    starts = np.flatnonzero(np.diff(component[matched], prepend=-1))
    by_component: dict[int, list[Match]] = {}
    for m, c in zip(matches, component[a].tolist(), strict=True):
        by_component.setdefault(c, []).append(m)
    groups = []
    for rows in np.split(matched, starts[1:]):
        ids = sorted(int(keys.ids[r]) for r in rows)
        kept = min(
            ids, key=lambda rid: (KEEP_RANK.get(keys.status[row[rid]], 9), -int(keys.created[row[rid]]), -rid)
        )
        groups.append(Group(kept, ids, by_component[int(component[rows[0]])]))
    groups.sort(key=lambda g: (-len(g.member_ids), g.kept_id))
    return groups


def keep_instead(store: Store, record_id: int, author: str = "workbench") -> int:
    """Keep `record_id` (now a copy) instead of the record its group kept: the others become its copies.
    Later dedup runs leave it unmarked (restored by hand). Returns how many records changed."""
    with store.transaction() as con:
        kept_id = sql.dup_of(con, record_id)
        if kept_id is None:
            raise WorkbenchError(f"record {record_id} is not marked as a copy: it is kept already")
        group = sql.group_of(con, kept_id)
        marks = [(i, None if i == record_id else record_id, version) for i, _dup, version in group]
        marked, restored, skipped = sql.apply_marks(
            con, marks, author, f"kept record {record_id} instead of {kept_id}"
        )
        if skipped:
            raise WorkbenchError(
                f"{skipped} record(s) of the group changed while you looked; reload the page and try again"
            )
        return marked + restored
