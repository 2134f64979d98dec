"""Schema 9: the model registry (OpenAI-compatible endpoints and local model folders) and the requests to an
endpoint that failed during an evaluation."""

VERSION = 9
DESCRIPTION = (
    "model registry: endpoints and local models by name; failed endpoint requests per evaluation record"
)

SQL = """
-- A registered model. kind 'endpoint': an OpenAI-compatible server (url, model_id); its API key is never
-- stored, only the NAME of the environment variable that holds it (api_key_env). kind 'path': a local
-- transformers folder (a GGUF file is converted into one when it is added). run_id: the run a served
-- endpoint (`workbench serve`) answers with.
CREATE TABLE models (
    name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL CHECK (kind IN ('endpoint', 'path')),
    url VARCHAR,
    model_id VARCHAR,
    api_key_env VARCHAR,
    max_concurrency INTEGER CHECK (max_concurrency IS NULL OR max_concurrency >= 1),
    path VARCHAR,
    run_id BIGINT,
    author VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- A request to an endpoint that failed (after its retries) for one record of an evaluation; the record keeps
-- no output, so a resumed evaluation asks again for it, and the row goes once it is answered.
CREATE TABLE evaluation_request_errors (
    evaluation_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    error VARCHAR NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (evaluation_id, seq)
);
"""


def apply(con) -> None:
    con.execute(SQL)
