"""Schema 2: duplicate marks on records, the embedding and MinHash caches, dedup runs and clustering runs."""

VERSION = 2
DESCRIPTION = "dedup and clustering: records.dup_of, embedding and MinHash caches, dedup runs, cluster runs"

SQL = """
-- NULL: not a duplicate. Set: the id of the record kept in its duplicate group. Duplicates are
-- never deleted; `workbench dedup --restore` (or dedup.restore) clears the mark, as a revision.
ALTER TABLE records ADD COLUMN dup_of BIGINT;

-- The embedding cache: a text is embedded once per model, ever. text_hash is md5 of the exact text
-- embedded (see workbench/embed.py for which text that is). DuckDB's fixed-size ARRAY type fixes
-- the size per column and models differ (384, 512, ...), so vectors are FLOAT[] with their model's
-- dim recorded in embedding_models and checked on insert; readers cast to FLOAT[dim].
CREATE TABLE embedding_models (
    model VARCHAR PRIMARY KEY,
    dim INTEGER NOT NULL,
    reads VARCHAR NOT NULL,            -- 'latin' (English-only vocabulary) or 'all' (multilingual)
    source VARCHAR,                    -- where it was loaded from (package folder, folder, hub name)
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
CREATE TABLE embeddings (
    text_hash VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    vector FLOAT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (text_hash, model)
);

-- MinHash signatures of normalised texts (keyed by md5 of the normalised text and the shingling
-- scheme), computed once, like embeddings.
CREATE TABLE minhash_signatures (
    norm_hash VARCHAR NOT NULL,
    scheme VARCHAR NOT NULL,
    signature UINTEGER[] NOT NULL,
    PRIMARY KEY (norm_hash, scheme)
);

CREATE SEQUENCE seq_dedup_runs START 1;
CREATE TABLE dedup_runs (
    id BIGINT PRIMARY KEY,
    author VARCHAR NOT NULL,
    selection JSON,
    config JSON,
    records BIGINT NOT NULL,
    groups BIGINT NOT NULL,
    marked BIGINT NOT NULL,
    restored BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    seconds DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
-- The evidence behind each run's groups: every matched pair, how it matched and how closely.
CREATE TABLE dedup_matches (
    run_id BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    other_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL CHECK (kind IN ('exact', 'lexical', 'semantic')),
    score DOUBLE NOT NULL
);

CREATE SEQUENCE seq_cluster_runs START 1;
CREATE TABLE cluster_runs (
    id BIGINT PRIMARY KEY,
    author VARCHAR NOT NULL,
    selection JSON,
    model VARCHAR NOT NULL,
    text_spec VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    k INTEGER NOT NULL,
    k_chosen_by VARCHAR NOT NULL,
    params JSON,
    records BIGINT NOT NULL,
    seconds DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
CREATE TABLE clusters (
    run_id BIGINT NOT NULL,
    cluster INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    keywords VARCHAR[] NOT NULL,
    size BIGINT NOT NULL,
    representatives BIGINT[] NOT NULL,
    x DOUBLE,
    y DOUBLE,
    category VARCHAR,                  -- set when the cluster was given a category (applied to its records)
    PRIMARY KEY (run_id, cluster)
);
-- cluster -1 holds the records HDBSCAN called noise; x, y is the record's place on the 2-D map.
CREATE TABLE cluster_members (
    run_id BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    cluster INTEGER NOT NULL,
    x REAL NOT NULL,
    y REAL NOT NULL,
    distance REAL
);
"""


def apply(con) -> None:
    con.execute(SQL)
