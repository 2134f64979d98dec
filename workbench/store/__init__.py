"""The workbench's data folder: one DuckDB file plus the exports, runs and models folders beside it.

`Store` never holds the database open: `connect()` and `transaction()` open it for one operation
and close it afterwards, so the app, the CLI and background jobs can take turns on the file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..errors import WorkbenchError
from ..names import check_new_path
from .connection import conflicts_as_busy, in_transaction, open_duckdb, prepare
from .schema import migrate

STORE_ENV = "WORKBENCH_STORE"
DB_NAME = "workbench.duckdb"


def default_root() -> Path:
    """`$WORKBENCH_STORE` when set, else `store/` in the current folder."""
    return Path(os.environ.get(STORE_ENV) or "store").expanduser().resolve()


@dataclass
class Store:
    """A store folder. Use `Store.open()`; `Store.in_memory()` gives a throwaway one (for `workbench check`)."""

    root: Path | None
    _memory: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, root: str | Path | None = None) -> Store:
        store = cls(
            check_new_path(Path(root).expanduser().resolve() if root else default_root(), "store folder")
        )
        for folder in (store.root, store.exports_dir, store.runs_dir, store.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            with store.connect() as con:
                migrate(con, str(store.db_path))
        except duckdb.Error as exc:  # garbage bytes, another program's file, a file DuckDB cannot read
            raise WorkbenchError(
                f"{store.db_path} cannot be opened as a workbench store ({str(exc).splitlines()[0].rstrip('!.')}). "
                f"If it is another file, point --store or ${STORE_ENV} at another folder (or move the file "
                f"away to start an empty store there); if it is your store, restore it from a backup."
            ) from None
        return store

    @classmethod
    def in_memory(cls) -> Store:
        con = prepare(duckdb.connect(":memory:"))
        migrate(con, ":memory:")
        return cls(None, con)

    @property
    def db_path(self) -> Path:
        return self._folder() / DB_NAME

    @property
    def exports_dir(self) -> Path:
        return self._folder() / "exports"

    @property
    def runs_dir(self) -> Path:
        return self._folder() / "runs"

    @property
    def models_dir(self) -> Path:
        shared = os.environ.get("WORKBENCH_MODELS")
        return Path(shared).expanduser() if shared else self._folder() / "models"

    def _folder(self) -> Path:
        if self.root is None:
            raise RuntimeError("an in-memory store has no folder")
        return self.root

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the database for one operation (waiting while another process holds it)."""
        if self._memory is not None:
            with self._lock:
                cursor = self._memory.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
            return
        con = open_duckdb(self.db_path, read_only=read_only)
        try:
            with conflicts_as_busy(self.db_path):
                yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One operation that lands whole or not at all."""
        with self.connect() as con, in_transaction(con):
            yield con
