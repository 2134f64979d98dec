"""Schema 11: the evaluation cache (greedy answers and answer losses by a hash of everything that decides them)
and the content hashes of model files, remembered by path, size and modification time."""

VERSION = 11
DESCRIPTION = "evaluation cache: greedy answers and losses by their inputs' hash; model file hashes"

SQL = """
-- One row per answer or loss ever computed for an evaluation. key is a sha256 over everything that decides
-- it (workbench.evaluate.cache): the model's and the adapter's content, the prompt's tokens (chat template,
-- system prompt, examples included) and the generation settings; kind 'answer' holds the generated token ids
-- and the seconds one answer took, kind 'loss' the answer's loss. Rows are never updated: a changed input
-- is another key.
CREATE TABLE eval_cache (
    key VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL CHECK (kind IN ('answer', 'loss')),
    output_ids JSON,
    seconds DOUBLE,
    loss DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- A model folder's files are hashed once: a file whose size and modification time are unchanged keeps its hash.
CREATE TABLE file_hashes (
    path VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL
);
"""


def apply(con) -> None:
    con.execute(SQL)
