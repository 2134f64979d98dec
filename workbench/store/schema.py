"""Versioned schema migrations: each migration module under `migrations/` moves the store up one version.

Opening an older store upgrades it in place (each step in its own transaction); opening a store
written by a newer workbench fails with a message that says so.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

import duckdb

from ..errors import StoreVersionError, WorkbenchError
from . import migrations as _migrations_pkg
from .connection import in_transaction, scalar


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    module: ModuleType

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        self.module.apply(con)


def all_migrations() -> list[Migration]:
    """Every migration module (named mNNN_what.py), in version order (numbers are unique, not necessarily dense)."""
    found = []
    for info in pkgutil.iter_modules(_migrations_pkg.__path__):
        if not info.name.startswith("m"):
            continue
        module = importlib.import_module(f"{_migrations_pkg.__name__}.{info.name}")
        found.append(Migration(module.VERSION, module.DESCRIPTION, module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema migrations share a version number: {versions}")
    return found


def latest_version() -> int:
    return all_migrations()[-1].version


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    exists = scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")
    if not exists:
        return set()
    return {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    return max(applied_versions(con), default=0)


def migrate(con: duckdb.DuckDBPyConnection, where: str) -> int:
    """Apply every migration the store has not had yet, in order; returns the newest version applied."""
    steps = all_migrations()
    newest = steps[-1].version
    applied = applied_versions(con)
    unknown = sorted(applied - {s.version for s in steps})
    if unknown:
        raise StoreVersionError(
            f"{where} has schema version {max(unknown)}, but this sft-workbench only knows versions up to {newest}. "
            f"It was written by a newer sft-workbench: upgrade this one (pip install -U sft-workbench), "
            f"or point WORKBENCH_STORE at another folder."
        )
    if not applied:
        _refuse_unversioned_tables(con, where)
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description VARCHAR NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
        )
    for step in [s for s in steps if s.version not in applied]:
        try:
            with in_transaction(con):
                step.apply(con)
                con.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [step.version, step.description],
                )
        except duckdb.Error as exc:
            raise WorkbenchError(
                f"{where} could not be brought up to schema version {step.version} ({step.description}): "
                f"{str(exc).splitlines()[0].rstrip('!.')}. Its schema_version table says it has versions "
                f"{sorted(applied) or 'none'}, which its tables do not fit; restore the store from a backup, "
                f"or point --store at another folder."
            ) from None
    return newest


def _refuse_unversioned_tables(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """A database without a version row but with tables is not a store to migrate: it is another program's
    DuckDB file, or a store whose schema_version rows were lost, and creating our tables in it would mix them."""
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_name <> 'schema_version' ORDER BY 1"
        ).fetchall()
    ]
    if not tables:
        return
    shown = ", ".join(tables[:8]) + (" ..." if len(tables) > 8 else "")
    if "records" in tables:
        raise WorkbenchError(
            f"{where} has the workbench's tables but no row in schema_version, so which schema version it has "
            f"cannot be told. Restore the store from a backup, or move the file away and import again."
        )
    raise WorkbenchError(
        f"{where} is a DuckDB database but not a workbench store (its tables: {shown}). Point --store or "
        f"$WORKBENCH_STORE at a workbench store folder, or at an empty one to start a new store."
    )
