"""Schema 4: training runs, with their status, lineage (export hash, parent run) and headline metrics."""

VERSION = 4
DESCRIPTION = "training runs: status, export hash, parent run, config, metrics, adapter"

SQL = """
CREATE SEQUENCE seq_runs START 1;

-- One row per training run. The run folder (run_dir) is the truth while the run trains; this row is
-- brought up to date from it by whoever looks (workbench.train.runs.refresh_runs).
-- init: 'fresh' (a new adapter on base_model) or 'continue' (training parent_run's adapter further).
CREATE TABLE runs (
    id BIGINT PRIMARY KEY,
    status VARCHAR NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    export_name VARCHAR,
    export_dir VARCHAR NOT NULL,
    export_hash VARCHAR,
    base_model VARCHAR NOT NULL,
    parent_run BIGINT,
    init VARCHAR NOT NULL CHECK (init IN ('fresh', 'continue')),
    config JSON NOT NULL,
    run_dir VARCHAR NOT NULL,
    pid INTEGER,
    host VARCHAR,
    step INTEGER,
    total_steps INTEGER,
    epoch DOUBLE,
    train_loss DOUBLE,
    val_loss DOUBLE,
    val_accuracy DOUBLE,
    train_accuracy DOUBLE,
    best_step INTEGER,
    adapter_dir VARCHAR,
    warnings JSON,
    error VARCHAR,
    author VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


def apply(con) -> None:
    con.execute(SQL)
