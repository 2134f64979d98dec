"""Schema 8: a record's feedback from production logs (thumb, score, comment), filterable in Review."""

VERSION = 8
DESCRIPTION = "feedback: a logged answer's thumb (down / up), score and comment, as imported"

SQL = """
-- What a user of the served model said about its answer (formats.py: the feedback fields); NULL when the
-- record came with none. Imported as it was, not edited in Review.
ALTER TABLE records ADD COLUMN feedback VARCHAR;
ALTER TABLE records ADD COLUMN feedback_score DOUBLE;
ALTER TABLE records ADD COLUMN feedback_comment VARCHAR;
"""


def apply(con) -> None:
    con.execute(SQL)
