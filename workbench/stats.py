"""Counts over the whole store, for `workbench stats` and the Overview page."""

from __future__ import annotations

from .store import Store
from .store.stats import StoreSummary, summary


def store_summary(store: Store) -> StoreSummary:
    with store.connect(read_only=True) as con:
        return summary(con)
