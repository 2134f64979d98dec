"""SQL for the store's counts: by dataset, status, category and issue code, and recent activity."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import duckdb

from .connection import scalar
from .issues import issue_counts, records_with_errors
from .records import list_datasets, recent_revisions


@dataclass
class StoreSummary:
    records: int = 0
    records_with_errors: int = 0
    imports: int = 0
    datasets: list[tuple[str, str, int]] = field(default_factory=list)
    statuses: list[tuple[str, int]] = field(default_factory=list)
    categories: list[tuple[str | None, int]] = field(default_factory=list)
    issues: list[tuple[str, str, int]] = field(default_factory=list)
    # production logs' feedback: (thumb or None, records, mean score or None), records with any feedback
    feedback: list[tuple[str | None, int, float | None]] = field(default_factory=list)
    recent: list[tuple] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def summary(con: duckdb.DuckDBPyConnection) -> StoreSummary:
    return StoreSummary(
        records=scalar(con, "SELECT count(*) FROM records"),
        records_with_errors=records_with_errors(con),
        imports=scalar(con, "SELECT count(*) FROM imports WHERE finished_at IS NOT NULL"),
        datasets=list_datasets(con),
        statuses=con.execute(
            "SELECT status, count(*) FROM records GROUP BY status ORDER BY 2 DESC"
        ).fetchall(),
        categories=con.execute(
            "SELECT category, count(*) FROM records GROUP BY category ORDER BY 2 DESC, 1 NULLS LAST"
        ).fetchall(),
        issues=issue_counts(con),
        feedback=con.execute(
            """SELECT feedback, count(*), round(avg(feedback_score), 2) FROM records
               WHERE feedback IS NOT NULL OR feedback_score IS NOT NULL OR feedback_comment IS NOT NULL
               GROUP BY feedback ORDER BY 2 DESC, 1 NULLS LAST"""
        ).fetchall(),
        recent=recent_revisions(con, 10),
    )
