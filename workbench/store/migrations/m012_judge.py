"""Schema 12: an optional LLM judge for categories a person judges: a rubric per category, and the judge's
suggested verdict with its reason per evaluation record (a person's verdict always overrides it)."""

VERSION = 12
DESCRIPTION = "judge rubrics per category; the judge's suggested verdicts with reasons"

SQL = """
-- What the judge is told to check for a category's answers (generative categories have no contract).
CREATE TABLE judge_rubrics (
    category VARCHAR PRIMARY KEY,
    rubric VARCHAR NOT NULL,
    author VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- The judge's suggestion on one evaluation record: a verdict (right / wrong) with its reason, or the error
-- that kept it from one (an unreachable judge, an answer that was not a verdict). Never the record's verdict:
-- evaluation_results.human_verdict, a person's, is what counts.
CREATE TABLE judge_suggestions (
    evaluation_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    judge VARCHAR NOT NULL,
    rubric VARCHAR NOT NULL,
    verdict VARCHAR CHECK (verdict IS NULL OR verdict IN ('right', 'wrong')),
    reason VARCHAR,
    error VARCHAR,
    judged_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (evaluation_id, seq)
);
"""


def apply(con) -> None:
    con.execute(SQL)
