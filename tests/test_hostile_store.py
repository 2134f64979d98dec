"""Hostile stores and filters: a file that is not a store, a store that lost its version rows, a filter that names
nothing. Each ends in one sentence naming the file or the filter and what to do, and an exit status that says so.
"""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from workbench import curation, ingest
from workbench.cli import main
from workbench.errors import NotFoundError, WorkbenchError
from workbench.store import Store
from workbench.store.records import Selection, list_records

from .conftest import chat


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, *said):
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    for words in said:
        assert words in result.output, result.output


# --- 6c: a file that is not a workbench store ------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\x00\xffnot a database " * 400], ids=["empty file", "garbage"])
def test_a_file_that_is_not_duckdb_is_named_with_what_to_do(tmp_path, content):
    folder = tmp_path / "仓库"
    folder.mkdir()
    (folder / "workbench.duckdb").write_bytes(content)
    with pytest.raises(WorkbenchError, match="cannot be opened as a workbench store") as caught:
        Store.open(folder)
    assert str(folder / "workbench.duckdb") in str(caught.value) and "--store" in str(caught.value)
    _one_line_error(
        _cli("--store", folder, "stats"), "not a valid DuckDB database file", "restore it from a backup"
    )
    assert (folder / "workbench.duckdb").read_bytes() == content  # left as it was


def test_another_programs_duckdb_file_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    con = duckdb.connect(str(folder / "workbench.duckdb"))
    con.execute("CREATE TABLE 订单 (id INTEGER)")
    con.close()
    _one_line_error(
        _cli("--store", folder, "stats"), "is a DuckDB database but not a workbench store", "订单"
    )
    con = duckdb.connect(str(folder / "workbench.duckdb"))
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    con.close()
    assert tables == ["订单"]  # no workbench tables written into it


def test_an_empty_duckdb_file_becomes_a_store(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    duckdb.connect(str(folder / "workbench.duckdb")).close()
    store = Store.open(folder)
    with store.connect() as con:
        assert list_records(con) == []


def test_a_store_whose_version_rows_are_gone_says_so(store, write_jsonl):
    ingest.import_file(store, write_jsonl([chat("你好", "您好")]))
    with store.connect() as con:
        con.execute("DELETE FROM schema_version")
    with pytest.raises(WorkbenchError, match="no row in schema_version") as caught:
        Store.open(store.root)
    assert str(store.db_path) in str(caught.value) and "backup" in str(caught.value)


def test_a_store_missing_one_version_row_names_the_migration_that_cannot_apply(store):
    with store.connect() as con:
        con.execute("DELETE FROM schema_version WHERE version = 3")
    _one_line_error(
        _cli("--store", store.root, "stats"), "schema version 3", "restore the store from a backup"
    )


# --- 6d: a filter that names nothing is an error, not "0 records set" ------------------------------------


@pytest.fixture
def loaded(store, write_jsonl):
    ingest.import_file(
        store,
        write_jsonl([chat("退款", "refund", category="意图"), chat("你好", "您好", category="闲聊")]),
        dataset="客服",
    )
    return store


@pytest.mark.parametrize(
    "args,said",
    [
        (
            ["status", "approved", "--dataset", "bad"],
            "there is no dataset 'bad'; the store has 'badcases', 'eval', 'general', '客服'",
        ),
        (
            ["status", "approved", "--category", "不存在"],
            "no record has the category '不存在'; the categories are",
        ),
        (["status", "approved", "--ids", "1,99"], "there is no record 99"),
        (["status", "approved", "--ids", "1,x"], "--ids takes record ids"),
        (["recheck", "--dataset", "bad"], "there is no dataset 'bad'"),
        (["recheck", "--category", "bad"], "no record has the category 'bad'"),
        (["fix", "--dataset", "bad"], "there is no dataset 'bad'"),
        (["fix", "--code", "no-such-code"], "there is no issue code 'no-such-code'"),
    ],
)
def test_a_filter_that_names_nothing_is_an_error(loaded, args, said):
    _one_line_error(_cli("--store", loaded.root, *args), said)
    with loaded.connect() as con:
        assert {r.status for r in list_records(con)} == {"new"}  # nothing changed


def test_an_unknown_from_status_is_refused(loaded):
    result = _cli("--store", loaded.root, "status", "approved", "--from-status", "bogus")
    assert result.exit_code == 2 and "'bogus' is not one of" in result.output


def test_a_filter_that_names_what_exists_still_works(loaded):
    assert curation.set_status(loaded, Selection(dataset="客服", category="意图"), "approved", "测试") == 1
    assert curation.set_status(loaded, Selection(category="闲聊", status="approved"), "rejected", "测试") == 0
    with pytest.raises(NotFoundError, match="'意图', '闲聊'"):
        curation.set_status(loaded, Selection(category="意"), "approved", "测试")
