"""SQL for the LLM judge: rubrics per category and the judge's suggested verdicts per evaluation record."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass
class Suggestion:
    seq: int
    category: str | None
    judge: str
    verdict: str | None
    reason: str | None
    error: str | None
    human_verdict: str | None


def set_rubric(con: duckdb.DuckDBPyConnection, category: str, rubric: str | None, author: str | None) -> None:
    if rubric is None:
        con.execute("DELETE FROM judge_rubrics WHERE category = ?", [category])
        return
    con.execute(
        "INSERT OR REPLACE INTO judge_rubrics (category, rubric, author, updated_at) "
        "VALUES (?, ?, ?, current_timestamp)",
        [category, rubric, author],
    )


def rubrics(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT category, rubric FROM judge_rubrics ORDER BY category").fetchall())


def to_judge(
    con: duckdb.DuckDBPyConnection, evaluation_id: int, categories: list[str], *, again: bool
) -> list[tuple[int, str, list, str | None, str]]:
    """(seq, category, messages, reference, output) of the answered records in `categories`; without `again`,
    only those the judge has not given a verdict yet."""
    if not categories:
        return []
    skip = (
        ""
        if again
        else (
            " AND seq NOT IN (SELECT seq FROM judge_suggestions WHERE evaluation_id = ? AND verdict IS NOT NULL)"
        )
    )
    params = [evaluation_id, list(categories)] + ([] if again else [evaluation_id])
    return con.execute(
        "SELECT seq, category, messages, reference, output FROM evaluation_results "
        f"WHERE evaluation_id = ? AND output IS NOT NULL AND category = ANY(?){skip} ORDER BY seq",
        params,
    ).fetchall()


def save_suggestion(
    con: duckdb.DuckDBPyConnection,
    evaluation_id: int,
    seq: int,
    judge: str,
    rubric: str,
    verdict: str | None,
    reason: str | None,
    error: str | None,
) -> None:
    """Keep the judge's suggestion on a record; an error (no verdict) never replaces a verdict given before."""
    keep_verdict = "" if verdict is not None else " WHERE judge_suggestions.verdict IS NULL"
    con.execute(
        "INSERT INTO judge_suggestions (evaluation_id, seq, judge, rubric, verdict, reason, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (evaluation_id, seq) DO UPDATE SET judge = excluded.judge, "
        "rubric = excluded.rubric, verdict = excluded.verdict, reason = excluded.reason, error = excluded.error, "
        f"judged_at = now(){keep_verdict}",
        [evaluation_id, seq, judge, rubric, verdict, reason, error],
    )


def suggestions(con: duckdb.DuckDBPyConnection, evaluation_id: int) -> list[Suggestion]:
    """The judge's suggestions on an evaluation with the person's verdict beside each, in set order."""
    rows = con.execute(
        "SELECT s.seq, r.category, s.judge, s.verdict, s.reason, s.error, r.human_verdict "
        "FROM judge_suggestions s JOIN evaluation_results r USING (evaluation_id, seq) "
        "WHERE s.evaluation_id = ? ORDER BY s.seq",
        [evaluation_id],
    ).fetchall()
    return [Suggestion(*row) for row in rows]
