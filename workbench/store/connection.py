"""Opening the store's DuckDB file: one operation at a time, waiting politely when another process holds it.

DuckDB lets one process at a time open a database file for writing (and a writer shuts out
readers in other processes too), so every caller opens the file for one operation and closes it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from ..errors import StoreBusyError

_LOCK_WORDS = ("Could not set lock", "Conflicting lock")
_PID = re.compile(r"PID (\d+)")


def open_duckdb(
    path: Path, *, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open `path`, retrying while another process holds it; after `wait_s` (default
    $WORKBENCH_STORE_WAIT or 8 seconds), raise StoreBusyError."""
    if wait_s is None:
        wait_s = float(os.environ.get("WORKBENCH_STORE_WAIT", "8"))
    deadline = time.monotonic() + wait_s
    delay = 0.05
    # A bounded memory budget with spilling to disk keeps a huge import's memory flat in its size.
    config = {
        "memory_limit": os.environ.get("WORKBENCH_MEMORY_LIMIT", "4GB"),
        "temp_directory": str(path.parent / ".tmp"),
    }
    while True:
        try:
            return prepare(duckdb.connect(str(path), read_only=read_only, config=config))
        except duckdb.ConnectionException as exc:
            # Another thread of this process (another browser tab of the app) has the file open in the other
            # mode, and DuckDB shares one open database per process. A reader can use the writer's; a writer
            # waits for the reader to finish, as for another process.
            if "different configuration" not in str(exc):
                raise
            if read_only:
                read_only = False
                continue
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"The store {path} is being read by another part of this program (another "
                    f"browser tab or page of the app) for longer than {wait_s:g} s. "
                    f"Try again in a moment."
                ) from None
        except duckdb.IOException as exc:
            text = str(exc)
            if not any(word in text for word in _LOCK_WORDS):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusyError(describe_lock_holder(path, text)) from None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def prepare(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new connection made ready for the store's SQL: quiet, with the store's Python functions."""
    return with_functions(quiet(con))


def _nfkc(column: pa.Array) -> pa.Array:
    import pyarrow.compute as pc  # here, not at the top: the CLI's start-up does not need it

    return pc.utf8_normalize(column, "NFKC")


# DuckDB keeps a Python function in the catalog it shares between every connection to one open database
# (each tab of the app is a thread of one process with its own connection), not in the connection's temp
# catalog as it does macros. Created inside a read's transaction, two tabs conflict ("Catalog write-write
# conflict on create"), so the function is created here, once per open database, outside any transaction.
_FUNCTIONS = threading.Lock()


def with_functions(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con`, with wb_nfkc (Arrow's NFKC normalisation) in its database: created by the first connection."""
    with _FUNCTIONS:
        try:
            con.execute("SELECT wb_nfkc('')").fetchall()
        except duckdb.CatalogException:
            con.create_function("wb_nfkc", _nfkc, ["VARCHAR"], "VARCHAR", type="arrow", side_effects=False)
    return con


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The connection, with DuckDB's own progress bar off: the library never prints (a long query would
    draw DuckDB's bar on the terminal of whoever runs it; the CLI draws its own from the callbacks)."""
    con.execute("SET enable_progress_bar = false")
    return con


def describe_lock_holder(path: Path, duckdb_message: str) -> str:
    """A sentence naming the process that holds the store and what to do about it."""
    match = _PID.search(duckdb_message)
    holder = "another process"
    if match:
        pid = int(match.group(1))
        holder = f"process {pid}"
        command = _command_line(pid)
        if command:
            holder += f" ({command})"
    return (
        f"The store {path} is in use by {holder}. DuckDB lets only one process at a time open a store "
        f"file. Wait for that process to finish (a training run never holds the store; the app and the CLI "
        f"open it per operation), stop it, or point WORKBENCH_STORE at another folder."
    )


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    parts = [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]
    parts = [os.path.basename(parts[0])] + parts[1:] if parts else parts
    return " ".join(parts)[:200]


@contextmanager
def conflicts_as_busy(where: Path | str) -> Iterator[None]:
    """Within the block, DuckDB's transaction conflicts (two tabs or a tab and a job writing the same rows or
    catalog entry at once) become StoreBusyError, which pages show with Retry: the other writer has won, and
    running the operation again (after it) succeeds."""
    try:
        yield
    except duckdb.TransactionException as exc:
        raise StoreBusyError(
            f"Another tab or job changed the store {where} at the same moment, so this operation stopped "
            f"without changing anything ({str(exc).removeprefix('TransactionContext Error: ')}). "
            f"Try again (Retry on a page, or run the command again)."
        ) from exc


@contextmanager
def in_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction on an open connection: committed when the block ends, rolled back when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | tuple = ()) -> tuple | None:
    """The first row of a query, or None; reads the result to the end so no half-read result stays open
    (DuckDB 2 refuses register() and create_function() on a connection that has one)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | tuple = ()):
    """The single value a query returns (None when it returns no row)."""
    row = first_row(con, sql, params)
    return row[0] if row else None


def columns_select(types: dict[str, str]) -> str:
    """A SELECT of rows from Python lists passed as parameters, one list per column, in `types`' order:
    `con.execute(f"INSERT INTO t {columns_select({'id': 'BIGINT', 'text': 'VARCHAR'})}", [ids, texts])`.

    DuckDB converts the lists itself; building pyarrow arrays from Python lists instead costs a
    third of a second the first time, because pyarrow then imports pandas.
    """
    return "SELECT " + ", ".join(f"unnest(?::{kind}[]) AS {name}" for name, kind in types.items())
