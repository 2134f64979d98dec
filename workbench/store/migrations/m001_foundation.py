"""Schema 1: datasets, records, revisions, imports, rejects, check results, output contracts, settings."""

VERSION = 1
DESCRIPTION = "foundation: datasets, records, revisions, imports, rejects, issues, contracts, settings"

SQL = """
CREATE TABLE settings (
    key VARCHAR PRIMARY KEY,
    value JSON NOT NULL
);

CREATE TABLE datasets (
    name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL CHECK (kind IN ('badcases', 'general', 'eval')),
    description VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
INSERT INTO datasets (name, kind, description) VALUES
    ('badcases', 'badcases', 'the model''s real failures, with the right answer written in'),
    ('general', 'general', 'general SFT data mixed into training so the model keeps its manners'),
    ('eval', 'eval', 'held-out records that never enter training');

CREATE SEQUENCE seq_imports START 1;
CREATE SEQUENCE seq_revisions START 1;

CREATE TABLE imports (
    id BIGINT PRIMARY KEY,
    file_name VARCHAR NOT NULL,
    file_path VARCHAR,
    stored_file VARCHAR,
    sha256 VARCHAR,
    size_bytes BIGINT,
    encoding VARCHAR,
    file_format VARCHAR,
    record_formats JSON,
    dataset VARCHAR NOT NULL,
    category VARCHAR,
    imported BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    blank_lines BIGINT NOT NULL DEFAULT 0,
    author VARCHAR,
    started_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    finished_at TIMESTAMPTZ
);

-- messages: the canonical chat form every input format is normalised into. The record as it was
-- read stays in the imported file, kept verbatim under imports/ (imports.stored_file), at `line`.
-- import_issues: what only the import could see in the raw line (unrecognised keys, parts dropped).
CREATE TABLE records (
    id BIGINT NOT NULL,
    dataset VARCHAR NOT NULL,
    messages STRUCT(role VARCHAR, content VARCHAR, loss_weight DOUBLE, name VARCHAR, tool_calls JSON)[] NOT NULL,
    tools JSON,
    category VARCHAR,
    task_type VARCHAR,
    status VARCHAR NOT NULL DEFAULT 'new',
    tags VARCHAR[],
    source VARCHAR,
    bad_output VARCHAR,
    content_hash VARCHAR NOT NULL,
    format VARCHAR,
    import_issues STRUCT(code VARCHAR, turn INTEGER, detail VARCHAR)[],
    import_id BIGINT,
    line BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

-- Append-only history: every change to a record, with the fields before and after.
CREATE TABLE revisions (
    id BIGINT NOT NULL DEFAULT nextval('seq_revisions'),
    record_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    action VARCHAR NOT NULL,
    before JSON,
    after JSON,
    author VARCHAR NOT NULL,
    note VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- Every input record that could not be imported, with its raw text and why.
CREATE TABLE rejects (
    import_id BIGINT NOT NULL,
    seq BIGINT,
    line BIGINT,
    raw VARCHAR,
    code VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);

-- Check results; stage 'import' holds what only the import could see (e.g. a repaired line).
CREATE TABLE record_issues (
    record_id BIGINT NOT NULL,
    code VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    turn INTEGER,
    message VARCHAR NOT NULL,
    fix VARCHAR,
    stage VARCHAR NOT NULL DEFAULT 'check'
);

-- Output contracts: what the assistant's answer in a category must be.
CREATE TABLE contracts (
    category VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL CHECK (kind IN ('labels', 'json', 'json_schema', 'regex')),
    spec JSON,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


def apply(con) -> None:
    con.execute(SQL)
