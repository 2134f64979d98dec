"""Property tests: whatever bytes a file holds, the importer and the checker answer without crashing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import checks, ingest
from workbench.errors import InputFileError
from workbench.store import Store

SUFFIXES = st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet"])

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "role",
                    "content",
                    "conversations",
                    "from",
                    "value",
                    "instruction",
                    "output",
                    "prompt",
                    "tags",
                    "expected",
                    "x",
                ]
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _import_or_refuse(path) -> None:
    store = Store.in_memory()
    try:
        report = ingest.import_file(store, path, keep_file=False)
    except InputFileError:
        return  # a clear "cannot read this file" is an answer
    with store.connect() as con:
        records = con.execute("SELECT count(*) FROM records").fetchone()[0]
        rejects = con.execute("SELECT count(*) FROM rejects").fetchone()[0]
    assert records == report.imported and rejects == report.rejected


@SETTINGS
@given(data=st.binary(max_size=400), suffix=SUFFIXES)
def test_arbitrary_bytes_never_crash_the_importer(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    _import_or_refuse(path)


@SETTINGS
@given(rows=st.lists(JSONISH, max_size=6), suffix=st.sampled_from([".jsonl", ".json"]))
def test_arbitrary_json_values_never_crash_and_every_item_is_accounted_for(tmp_path_factory, rows, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    text = json.dumps(rows) if suffix == ".json" else "\n".join(json.dumps(r) for r in rows)
    path.write_text(text, encoding="utf-8")
    store = Store.in_memory()
    if not rows:  # an empty file is refused whole, with a reason, and leaves nothing behind
        with pytest.raises(InputFileError, match="nothing was imported"):
            ingest.import_file(store, path, keep_file=False)
        return
    report = ingest.import_file(store, path, keep_file=False)
    assert report.imported + report.rejected + report.blank_lines == len(rows)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_the_file_checker_reports_every_line_or_refuses_clearly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "input.jsonl"
    path.write_bytes(data)
    try:
        checked = list(ingest.check_file(path))
    except InputFileError:
        return
    assert [c.index for c in checked] == list(range(len(checked)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "role": st.one_of(st.none(), st.text(max_size=12)),
                "content": st.one_of(st.none(), st.text(max_size=80)),
                "tool_calls": st.one_of(st.none(), st.just("[]")),
            },
        ),
        max_size=6,
    ),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_the_rules_and_fixes_never_crash_on_odd_records(messages, category):
    issues = checks.check_record(messages, category)
    assert all(i.severity in ("error", "warning") for i in issues)
    checks.fix_record(messages, category)
