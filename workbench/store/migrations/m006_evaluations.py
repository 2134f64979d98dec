"""Schema 6: evaluations of a model (the base or a run's adapter) over an eval set, and each record's result."""

VERSION = 6
DESCRIPTION = "evaluations: a model over an eval set, each record's output, verdict, loss and latency"

SQL = """
CREATE SEQUENCE seq_evaluations START 1;

-- One row per evaluation. model is 'base' or 'run N' (run_id set); eval_set is 'dataset', 'val',
-- 'trained' or 'general', source names it (the dataset, or the export folder). system_prompt and
-- examples are set for a prompt trial (the base model with an edited system prompt and N examples).
-- The result rows are written when it starts (the set is frozen then) and filled in chunks, so a
-- cancelled or killed evaluation continues with the rows that have no output yet.
CREATE TABLE evaluations (
    id BIGINT PRIMARY KEY,
    status VARCHAR NOT NULL CHECK (status IN ('running', 'done', 'cancelled', 'failed')),
    model VARCHAR NOT NULL,
    run_id BIGINT,
    base_model VARCHAR NOT NULL,
    eval_set VARCHAR NOT NULL CHECK (eval_set IN ('dataset', 'val', 'trained', 'general')),
    source VARCHAR,
    system_prompt VARCHAR,
    examples INTEGER,
    config JSON NOT NULL,
    records INTEGER NOT NULL,
    pid INTEGER,
    seconds DOUBLE,
    error VARCHAR,
    author VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    finished_at TIMESTAMPTZ
);

-- One row per record of the set. record_key matches the same record across evaluations (the store's
-- record id when it has one, else a hash of its messages). verdict: 'right' / 'wrong' from the category's
-- output contract plus exact match; 'pending' where no contract decides (a person's verdict, better /
-- same / worse / both_bad, goes into human_verdict; similarity to the reference is only a hint).
-- badcase_id: the badcase record this failure was sent to.
CREATE TABLE evaluation_results (
    evaluation_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    record_key VARCHAR NOT NULL,
    record_id BIGINT,
    category VARCHAR,
    messages JSON NOT NULL,
    tools JSON,
    reference VARCHAR,
    output VARCHAR,
    verdict VARCHAR CHECK (verdict IN ('right', 'wrong', 'pending')),
    contract_ok BOOLEAN,
    exact_match BOOLEAN,
    reason VARCHAR,
    similarity DOUBLE,
    loss DOUBLE,
    prompt_tokens INTEGER,
    output_tokens INTEGER,
    latency_s DOUBLE,
    human_verdict VARCHAR CHECK (human_verdict IN ('better', 'same', 'worse', 'both_bad')),
    human_author VARCHAR,
    human_at TIMESTAMPTZ,
    badcase_id BIGINT,
    PRIMARY KEY (evaluation_id, seq)
);
"""


def apply(con) -> None:
    con.execute(SQL)
