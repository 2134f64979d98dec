"""The DuckDB store: migrations, transactions, optimistic concurrency, revisions, one process at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from workbench.errors import EditConflictError, StoreBusyError, StoreVersionError, WorkbenchError
from workbench.store import Store, schema
from workbench.store.records import Record, get_record, insert_record, revisions_of, update_record


def test_new_store_is_at_latest_schema_with_default_datasets(store):
    with store.connect() as con:
        assert schema.current_version(con) == schema.latest_version()
        kinds = dict(con.execute("SELECT name, kind FROM datasets").fetchall())
    assert kinds == {"badcases": "badcases", "general": "general", "eval": "eval"}
    assert store.db_path.exists() and store.exports_dir.is_dir() and store.runs_dir.is_dir()


def test_store_folder_follows_workbench_store_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "elsewhere"))
    store = Store.open()
    assert store.root == (tmp_path / "elsewhere").resolve()
    assert (tmp_path / "elsewhere" / "workbench.duckdb").exists()


def test_opening_an_older_store_applies_the_missing_migrations(tmp_path, monkeypatch):
    store = Store.open(tmp_path / "s")
    with store.transaction() as con:
        insert_record(con, Record(0, "badcases", [{"role": "user", "content": "hi"}]), "test")

    class Step:
        VERSION, DESCRIPTION = 999, "a later schema step"

        @staticmethod
        def apply(con):
            con.execute("CREATE TABLE later_things (x INTEGER)")

    known = schema.all_migrations()
    monkeypatch.setattr(
        schema, "all_migrations", lambda: known + [schema.Migration(999, Step.DESCRIPTION, Step)]
    )
    reopened = Store.open(tmp_path / "s")
    with reopened.connect() as con:
        assert schema.current_version(con) == 999
        assert con.execute("SELECT count(*) FROM later_things").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 1


def test_opening_a_newer_store_fails_clearly(tmp_path):
    store = Store.open(tmp_path / "s")
    with store.connect() as con:
        con.execute("INSERT INTO schema_version (version, description) VALUES (9999, 'from the future')")
    with pytest.raises(StoreVersionError, match="newer sft-workbench"):
        Store.open(tmp_path / "s")


def test_transaction_lands_whole_or_not_at_all(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as con:
            insert_record(con, Record(0, "badcases", [{"role": "user", "content": "lost"}]), "test")
            raise RuntimeError("boom")
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM revisions").fetchone()[0] == 0


def _one_record(store) -> int:
    with store.transaction() as con:
        return insert_record(
            con,
            Record(
                0,
                "badcases",
                [{"role": "user", "content": "退款怎么办"}, {"role": "assistant", "content": "refund"}],
                category="intent",
            ),
            "alice",
        )


def test_edit_bumps_version_and_logs_before_and_after(store):
    rid = _one_record(store)
    with store.transaction() as con:
        rec = update_record(con, rid, 1, {"category": "refund", "status": "labeled"}, "bob", note="relabel")
    assert (rec.version, rec.category, rec.status) == (2, "refund", "labeled")
    with store.connect() as con:
        revs = revisions_of(con, rid)
    assert [r.action for r in revs] == ["create", "edit"]
    assert revs[1].before == {"category": "intent", "status": "new"}
    assert revs[1].after == {"category": "refund", "status": "labeled"}
    assert revs[1].author == "bob" and revs[1].note == "relabel"


def test_stale_edit_is_a_conflict_and_overwrites_nothing(store):
    rid = _one_record(store)
    with store.transaction() as con:
        update_record(con, rid, 1, {"category": "first"}, "alice")
    with pytest.raises(EditConflictError, match="version 1.*version 2"):
        with store.transaction() as con:
            update_record(con, rid, 1, {"category": "second"}, "bob")
    with store.connect() as con:
        assert get_record(con, rid).category == "first"
        assert len(revisions_of(con, rid)) == 2


def test_message_edit_changes_the_content_hash(store):
    rid = _one_record(store)
    with store.connect() as con:
        before = get_record(con, rid)
    with store.transaction() as con:
        after = update_record(
            con,
            rid,
            1,
            {
                "messages": [
                    {"role": "user", "content": "退款怎么办"},
                    {"role": "assistant", "content": "退款"},
                ]
            },
            "bob",
        )
    assert after.content_hash != before.content_hash and after.messages[1]["content"] == "退款"


def test_unknown_status_is_refused(store):
    rid = _one_record(store)
    with pytest.raises(WorkbenchError, match="unknown status"):
        with store.transaction() as con:
            update_record(con, rid, 1, {"status": "done"}, "bob")


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(30)
""")


def test_second_process_gets_a_clear_busy_message_naming_the_holder(store):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        from workbench.store.connection import open_duckdb

        started = time.monotonic()
        with pytest.raises(StoreBusyError) as err:
            open_duckdb(store.db_path, wait_s=0.5)
        assert time.monotonic() - started >= 0.5
        message = str(err.value)
        assert f"process {holder.pid}" in message and "WORKBENCH_STORE" in message
        assert not isinstance(err.value, duckdb.Error)
    finally:
        holder.kill()
        holder.wait()


def test_store_is_usable_again_once_the_other_process_lets_go(store):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.replace("time.sleep(30)", "time.sleep(0.8)"), str(store.db_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with store.connect() as con:  # waits for the holder instead of failing
            assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    finally:
        holder.kill()
        holder.wait()
