"""A store written by the first migration alone, opened by today's workbench: nothing lost, the new tables work."""

from __future__ import annotations

import json

import duckdb

from workbench.curation import recheck, set_status
from workbench.export import ExportConfig, export_training_set
from workbench.ingest import import_file
from workbench.store import DB_NAME, Store, schema
from workbench.store import dedup as dedup_sql
from workbench.store import runs as runs_sql
from workbench.store.records import Selection, revisions_of

# What the first workbench wrote, table by table, in an order that makes the rows comparable.
V1_TABLES = {
    "imports": "id",
    "records": "id",
    "revisions": "id",
    "rejects": "import_id, seq",
    "record_issues": "record_id, code",
    "contracts": "category",
    "settings": "key",
}

MESSAGES = "STRUCT(role VARCHAR, content VARCHAR, loss_weight DOUBLE, name VARCHAR, tool_calls JSON)[]"


def _write_v1_store(db_path, monkeypatch) -> None:
    """Run migration 1 alone on a real file, then fill it the way a schema-1 workbench did."""
    first = schema.all_migrations()[0]
    assert first.version == 1
    con = duckdb.connect(str(db_path))
    with monkeypatch.context() as m:
        m.setattr(schema, "all_migrations", lambda: [first])
        schema.migrate(con, str(db_path))
    assert schema.current_version(con) == 1
    con.execute("""INSERT INTO imports (id, file_name, dataset, category, imported, rejected, blank_lines, author,
                                        encoding, file_format, record_formats, finished_at)
                   VALUES (nextval('seq_imports'), '坏例.jsonl', 'badcases', 'intent', 3, 1, 0, 'alice', 'utf-8',
                           'jsonl', '{"messages": 3}', current_timestamp)""")
    rows = [
        (1, "Where is my order #123?", "assistant", "delivery_status"),
        (2, "我的订单到哪了？", "assistant", "delivery_status"),
        (3, "退款", "asistant", "refund"),
    ]
    for rid, user, role, answer in rows:
        con.execute(
            f"""INSERT INTO records (id, dataset, messages, category, status, content_hash, format,
                                            import_issues, import_id, line, created_at, updated_at, version)
            VALUES (?, 'badcases', [{{'role': 'user', 'content': ?}}, {{'role': ?, 'content': ?}}]::{MESSAGES},
                    'intent', 'new', md5(?), 'messages', [], 1, ?, current_timestamp, current_timestamp, 1)""",
            [rid, user, role, answer, f"{user}|{answer}", rid],
        )
        con.execute(
            """INSERT INTO revisions (record_id, version, action, before, after, author)
                       VALUES (?, 1, 'import', NULL, ?, 'alice')""",
            [rid, json.dumps({"line": rid})],
        )
    # record 1 was reviewed and approved: a second version, with its revision
    con.execute("UPDATE records SET status = 'approved', version = 2 WHERE id = 1")
    con.execute("""INSERT INTO revisions (record_id, version, action, before, after, author)
                   VALUES (1, 2, 'status', '{"status": "new"}', '{"status": "approved"}', 'bob')""")
    con.execute("""INSERT INTO rejects (import_id, seq, line, raw, code, reason)
                   VALUES (1, 3, 4, '{"messages": [{"role": "user", "content": "半截', 'invalid-json',
                           'not valid JSON: the line ends inside a string')""")
    con.execute("""INSERT INTO record_issues (record_id, code, severity, turn, message, fix, stage)
                   VALUES (3, 'role-typo', 'error', 2, 'role ''asistant'' looks like a typo of ''assistant''',
                           'rename to ''assistant''', 'check')""")
    con.execute("""INSERT INTO contracts (category, kind, spec)
                   VALUES ('intent', 'labels', '["delivery_status", "refund", "cancel"]')""")
    con.execute("""INSERT INTO settings (key, value) VALUES ('max_tokens', '1024')""")
    con.close()


def _dump(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | None = None
) -> tuple[list[str], list]:
    cols = ", ".join(columns) if columns else "*"
    result = con.execute(f"SELECT {cols} FROM {table} ORDER BY {V1_TABLES[table]}")
    return [d[0] for d in result.description], result.fetchall()


def test_a_store_of_the_first_migration_opens_with_every_row_kept_and_the_new_tables_working(
    tmp_path, monkeypatch, write_jsonl
):
    root = tmp_path / "old-store"
    root.mkdir()
    _write_v1_store(root / DB_NAME, monkeypatch)
    with duckdb.connect(str(root / DB_NAME)) as con:
        before = {table: _dump(con, table) for table in V1_TABLES}

    store = Store.open(root)

    with store.connect() as con:
        assert schema.current_version(con) == schema.latest_version()
        assert sorted(v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()) == [
            m.version for m in schema.all_migrations()
        ]
        for table, (columns, rows) in before.items():
            assert _dump(con, table, columns)[1] == rows, f"{table} changed in the upgrade"
        assert con.execute("SELECT count(*) FROM records WHERE dup_of IS NOT NULL").fetchone()[0] == 0
        assert [r.action for r in revisions_of(con, 1)] == ["import", "status"]
        assert dedup_sql.list_runs(con) == [] and runs_sql.list_runs(con) == []

    # today's code works on the upgraded store: checks, a status change, an import, an export
    counts = {code: n for code, _severity, n in recheck(store)}
    assert counts.get("role-typo") == 1
    assert set_status(store, Selection(ids=(2,)), "approved", "carol") == 1
    report = import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "user", "content": "取消订单"},
                        {"role": "assistant", "content": "cancel"},
                    ],
                    "category": "intent",
                }
            ],
            name="more.jsonl",
        ),
    )
    assert report.import_id == 2 and report.imported == 1
    with store.connect() as con:
        assert con.execute("SELECT max(id) FROM records").fetchone()[0] == 4
        assert [r.action for r in revisions_of(con, 2)][-1] == "status"
        assert _dump(con, "rejects")[1] == before["rejects"][1]
    result = export_training_set(
        store, ExportConfig(name="after-upgrade", leakage_guard="exact", general_share=0.0, val=0.0)
    )
    assert result.train_records == 2  # records 1 and 2 are approved; 3 has an error, 4 is new
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM exports").fetchone()[0] == 1
