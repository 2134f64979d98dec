"""SQL for store-wide configuration: settings (target model, max length) and output contracts per category."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from ..contracts import Contract, contract_from_row

DEFAULTS: dict[str, Any] = {
    "target_model": "smollm2-135m-instruct",  # whose tokenizer counts tokens for the too-long check
    "max_tokens": 2048,  # the training max length the too-long check holds records to
}


def get_setting(con: duckdb.DuckDBPyConnection, key: str) -> Any:
    # fetchall, not fetchone: a half-read result left open blocks create_function on the connection
    rows = con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchall()
    return json.loads(rows[0][0]) if rows else DEFAULTS.get(key)


def set_setting(con: duckdb.DuckDBPyConnection, key: str, value: Any) -> None:
    con.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [key, json.dumps(value)])


def all_settings(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    stored = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM settings").fetchall()}
    return {**DEFAULTS, **stored}


def get_contracts(con: duckdb.DuckDBPyConnection) -> dict[str, Contract]:
    rows = con.execute("SELECT category, kind, spec FROM contracts ORDER BY category").fetchall()
    return {row[0]: contract_from_row(*row) for row in rows}


def set_contract(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    con.execute(
        "INSERT OR REPLACE INTO contracts (category, kind, spec, updated_at) VALUES (?, ?, ?, current_timestamp)",
        list(contract.to_row()),
    )


def delete_contract(con: duckdb.DuckDBPyConnection, category: str) -> None:
    con.execute("DELETE FROM contracts WHERE category = ?", [category])
