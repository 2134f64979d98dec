"""Who changed what, per person and per day: the owner's view of the revisions every record keeps."""

from __future__ import annotations

from datetime import date

from . import roles
from .store import Store
from .store import queues as sql
from .store.queues import AuditRow

__all__ = ["AuditRow", "audit"]


def audit(store: Store, *, since: date | None = None, person: str | None = None) -> list[AuditRow]:
    """Revisions per person per day (newest day first): how many, on how many records, of which kinds."""
    roles.require(store, "users")
    with store.connect(read_only=True) as con:
        return sql.audit(con, since, person)
