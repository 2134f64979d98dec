"""Hostile contracts: patterns that would backtrack for hours, patterns RE2 cannot run, schemas that are not JSON.

A pattern comes from a user and an answer from a model; checking one against the other must take time
linear in the answer, and a contract that cannot be used is refused with a sentence, never a traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import curation, ingest, patterns
from workbench.cli import main
from workbench.contracts import Contract, contract_from_row
from workbench.errors import WorkbenchError
from workbench.store.issues import issues_of
from workbench.store.records import list_records

from .conftest import ROOT, chat

# 30 × 'a' + '!' against (a+)+$ took 45 s under Python's re, doubling with each further 'a'.
EVIL = "a" * 30 + "!"

# Run in a child process: under the old backtracking matcher this would hang the suite, not fail it.
_BOUNDED_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from workbench import curation, ingest
    from workbench.contracts import Contract
    from workbench.store import Store

    store = Store.open(sys.argv[1])
    evil = "a" * 30 + "!"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        for category, answer in [("reply30", evil), ("slots", json.dumps({"x": evil, "k" + evil: 1}))]:
            for n in range(4):
                f.write(json.dumps({"messages": [{"role": "user", "content": f"问题 {n}"},
                                                 {"role": "assistant", "content": answer}],
                                    "category": category}, ensure_ascii=False) + "\\n")
    ingest.import_file(store, sys.argv[2])
    seconds = {}
    start = time.perf_counter()
    curation.set_contract(store, Contract("reply30", "regex", "(a+)+$"))
    seconds["regex contract"] = time.perf_counter() - start
    start = time.perf_counter()
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}},
              "patternProperties": {"^k(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    counts = curation.set_contract(store, Contract("slots", "json_schema", schema))
    seconds["schema contract"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = curation.recheck(store)
    seconds["recheck"] = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "counts": counts}))
    """
)


def test_a_catastrophic_pattern_is_checked_in_well_under_a_second(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _BOUNDED_SCRIPT, str(tmp_path / "store"), str(tmp_path / "data.jsonl")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,  # the old matcher needed about an hour per record here
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # under a second each on an idle machine; the margin is for a loaded test machine
    assert all(s < 3 for s in report["seconds"].values()), report["seconds"]
    counts = {code: n for code, _severity, n in report["counts"]}
    assert counts["contract-regex"] == 4 and counts["contract-schema"] == 4


def test_the_patterns_match_as_python_re_did_on_chinese_text():
    assert patterns.fullmatch(r"\w+", "退款refund_2")
    assert patterns.fullmatch(r"\d{4}年", "２０２６年")  # full-width digits are digits, as in re
    assert patterns.fullmatch(r"订单\s\d+", "订单\u300012")  # the ideographic space is a space
    assert patterns.fullmatch(r"[\w-]+", "物流-查询")
    assert patterns.fullmatch(r"\W", "，") and not patterns.fullmatch(r"\W", "中")
    assert patterns.fullmatch(r"好{,3}", "好好")  # {,n} is {0,n}, as in re
    assert patterns.fullmatch(r"[]a]+", "]a]")
    assert patterns.fullmatch(r"[^\n]{1,80}", "一行短答复")
    assert patterns.fullmatch(r"\p{Han}+", "中文")  # RE2's own classes work too
    assert patterns.fullmatch(r"是\Z", "是") and not patterns.fullmatch(r"是", "是的")
    assert patterns.fullmatch(r"第一行.第二行", "第一行\n第二行")  # . crosses lines in a whole-answer match
    assert not patterns.search(r"^第一行.第二行$", "第一行\n第二行")  # but not in a JSON Schema pattern


@pytest.mark.parametrize(
    "pattern,advice",
    [
        (r"(是)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "backreference"),
        (r"退款(?=到账)", "lookahead or lookbehind"),
        (r"(?<!不)退款", "lookahead or lookbehind"),
        (r"a++", "possessive"),
        (r"(?>ab)", "atomic"),
        (r"(?x) a b", "verbose"),
        (r"a{2000}", "repeats too much"),
        (r"[\S]", "inside [...]"),
        (r"(退款", "not a valid regex"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_with_what_to_write(pattern, advice):
    with pytest.raises(WorkbenchError, match="cannot be used") as caught:
        Contract("回复", "regex", pattern)
    assert advice in str(caught.value) and "'回复'" in str(caught.value)


def test_a_schema_pattern_re2_cannot_run_is_refused():
    with pytest.raises(WorkbenchError, match="lookahead") as caught:
        Contract("slots", "json_schema", {"properties": {"order": {"pattern": "(?=\\d)\\d+"}}})
    assert "'(?=\\\\d)\\\\d+' cannot be used" in str(caught.value)
    with pytest.raises(WorkbenchError, match="backreference"):
        Contract("slots", "json_schema", {"patternProperties": {"(a)\\1": {}}})
    with pytest.raises(WorkbenchError, match="use additionalProperties"):
        Contract("slots", "json_schema", {"patternProperties": {"^k": {}}, "unevaluatedProperties": False})


def test_schema_patterns_still_check_answers():
    schema = {
        "type": "object",
        "properties": {"订单号": {"type": "string", "pattern": "^\\d{6}$"}},
        "patternProperties": {"^备注": {"type": "string"}},
        "additionalProperties": False,
    }
    contract = Contract("slots", "json_schema", schema)
    assert contract.violation('{"订单号": "123456", "备注1": "尽快"}') is None
    assert "does not match" in contract.violation('{"订单号": "12345a"}')
    assert "is not of type 'string'" in contract.violation('{"订单号": "123456", "备注": 1}')
    assert "'其他' was unexpected" in contract.violation('{"订单号": "123456", "其他": 1}')
    # a JSON answer can spell a lone surrogate, which RE2's UTF-8 cannot carry: checked, not a crash
    assert "does not match" in contract.violation('{"订单号": "\\ud800"}')
    assert "was unexpected" in contract.violation('{"备\\udc00": "x"}')
    assert Contract("r", "regex", "退款.").violation("退款\ud800") is None


def test_a_stored_pattern_re2_cannot_run_flags_its_category_instead_of_breaking_checks(store, write_jsonl):
    ingest.import_file(store, write_jsonl([chat("到账了吗", "退款已到账", category="退款")]))
    with store.transaction() as con:  # as an older workbench, which ran patterns with re, could save it
        con.execute(
            "INSERT INTO contracts (category, kind, spec, updated_at) VALUES (?, 'regex', ?, current_timestamp)",
            ["退款", json.dumps("退款(?=已)已到账")],
        )
    curation.recheck(store)
    with store.connect() as con:
        record = list_records(con)[0]
        found = [m for code, _s, _t, m, *_ in issues_of(con, record.id) if code == "contract-regex"]
    assert len(found) == 1 and "lookahead" in found[0] and "set the category's contract again" in found[0]
    assert contract_from_row("退款", "labels", json.dumps(["a"])).violation("a") is None
    curation.set_contract(store, Contract("退款", "regex", "退款已到账"))  # setting it again clears it
    with store.connect() as con:
        assert not [c for c, *_ in issues_of(con, record.id) if c.startswith("contract-")]


@pytest.mark.parametrize(
    "text,said",
    [
        (
            '{"type": "object",\n  "required": ["订单号"',
            "the schema is not JSON: Expecting ',' delimiter at line 2 column",
        ),
        ("[" * 100_000 + "]" * 100_000, "levels deep; flatten it"),
        ('{"properties": {"a": ' * 900 + "{}" + "}}" * 900, "flatten it"),
        ('{"type": "nonsense"}', "is not valid"),
    ],
    ids=["invalid JSON", "100,000-deep list", "900-deep schema", "invalid schema"],
)
def test_contract_schema_that_cannot_be_used_is_one_line_and_exit_non_zero(store, tmp_path, text, said):
    schema = tmp_path / "schema.json"
    schema.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--store", str(store.root), "contract", "槽位", "--schema", str(schema)]
    )
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)
    assert said in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output


def test_contract_regex_that_cannot_be_used_is_one_line_and_exit_non_zero(store):
    result = CliRunner().invoke(main, ["--store", str(store.root), "contract", "回复", "--regex", r"(是)\1"])
    assert result.exit_code == 1 and "backreference" in result.output
    assert result.output.count("\n") == 1, result.output


def test_quality_page_says_why_a_schema_or_pattern_cannot_be_used(tmp_path, monkeypatch, write_jsonl):
    from streamlit.testing.v1 import AppTest

    from workbench.store import Store

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    ingest.import_file(
        Store.open(), write_jsonl([chat("订单 123 的状态", '{"订单号": "123"}', category="槽位")])
    )
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at.switch_page("pages/quality.py").run()
    at.selectbox(key="q_cat").set_value("槽位").run()
    at.selectbox(key="q_kind_槽位").set_value("json_schema").run()
    for text, said in [
        ('{"type": "object",\n "required": ["订单号"', "not JSON: Expecting ',' delimiter at line 2 column"),
        ('{"properties": {"a": ' * 2000 + "{}" + "}}" * 2000, "flatten it"),
        ('{"properties": {"订单号": {"pattern": "(\\\\d)\\\\1"}}}', "backreference"),
    ]:
        at.text_area(key="q_spec_槽位_json_schema").set_value(text).run()
        assert not at.exception, at.exception
        shown = at.warning[0].value.replace("\\", "")  # the page escapes the message's markdown
        assert said in shown and at.button(key="q_save_contract").disabled
    at.text_area(key="q_spec_槽位_json_schema").set_value('{"required": ["订单号"]}').run()
    assert any("would flag **0 of 1**" in m.value for m in at.markdown)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab中\\[]()^$.*+?{},|-:=!<>PpdwsWSZ1 \n")), max_size=30))
def test_any_pattern_text_compiles_or_is_refused_in_a_sentence(pattern):
    try:
        compiled = patterns.compile_pattern(pattern, dot_all=True)
    except WorkbenchError as exc:
        assert str(exc)
        return
    compiled.fullmatch("ab中" * 50 + "!")


_PIECES = [
    "a",
    "中",
    "1",
    "１",
    " ",
    "\u3000",
    r"\d",
    r"\w",
    r"\s",
    r"\W",
    r"\D",
    r"\S",
    ".",
    "[a中]",
    "[^a]",
]
_PIECES += [r"[\d\s]", r"[\w-]", "+", "*", "?", "{1,2}", "{,2}", "(", ")", "|", "^", "$", r"\Z"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8).map("".join),
    st.lists(st.sampled_from(["a", "中", "1", "１", " ", "\u3000", "\n", "!", "_"]), max_size=8).map("".join),
)
def test_a_pattern_matches_chinese_and_english_text_as_python_re_did(pattern, text):
    try:
        expected = re.fullmatch(pattern, text, flags=re.DOTALL) is not None
        patterns.compile_pattern(pattern, dot_all=True)
    except (re.error, WorkbenchError):
        return
    assert patterns.fullmatch(pattern, text) == expected
