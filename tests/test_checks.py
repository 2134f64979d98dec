"""The check rules: each one on a record that breaks it and one that does not, the autofixes, contracts,
and the SQL pre-test that lets bulk checking skip records it can prove clean."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import checks, formats
from workbench.checks import CheckContext, check_record, fix_record
from workbench.contracts import Contract
from workbench.errors import WorkbenchError
from workbench.store import normaliser


def msgs(*turns):
    return [{"role": r, "content": c} for r, c in turns]


GOOD = msgs(("system", "你是客服。"), ("user", "我要退款"), ("assistant", "refund"))
GOOD_EN = msgs(("user", "Where is my parcel?"), ("assistant", "delivery_status"))
LONG_PROSE = (
    "Supervised fine-tuning works when the data is right. Fix the failures the model really makes, "
    "write the right answer in, and check the format before training starts. 监督微调的关键在于数据质量。"
)


def codes(messages, category=None, ctx=None):
    return [i.code for i in check_record(messages, category, ctx)]


# Every record rule: (code, a record that breaks it, the turn it points at)
BREAKS = [
    ("missing-role", [{"content": "hi"}, {"role": "assistant", "content": "yo"}], 1),
    ("role-case", msgs(("USER", "hi"), ("assistant", "yo")), 1),
    ("role-typo", msgs(("user", "hi"), ("asistant", "yo")), 2),
    ("unknown-role", msgs(("user", "hi"), ("bot", "yo")), 2),
    ("unknown-role", msgs(("narrator", "once"), ("user", "hi"), ("assistant", "yo")), 1),
    ("missing-content", [{"role": "user", "content": None}, {"role": "assistant", "content": "yo"}], 1),
    ("empty-answer", msgs(("user", "hi"), ("assistant", "  \n ")), 2),
    ("empty-content", msgs(("user", "   "), ("assistant", "yo")), 1),
    ("no-assistant", msgs(("user", "hi")), None),
    ("last-not-assistant", msgs(("user", "hi"), ("assistant", "yo"), ("user", "and?")), 3),
    ("system-not-first", msgs(("user", "hi"), ("system", "be nice"), ("assistant", "yo")), 2),
    ("consecutive-same-role", msgs(("user", "hi"), ("user", "hello?"), ("assistant", "yo")), 2),
    ("mojibake", msgs(("user", "æ‰“æ–°è‚¡"), ("assistant", "ok")), 1),
    ("replacement-char", msgs(("user", "caf\ufffd"), ("assistant", "ok")), 1),
    ("control-char", msgs(("user", "hi\x07there"), ("assistant", "ok")), 1),
    ("curly-quote-json", msgs(("user", "extract"), ("assistant", "{“order_id”: “A1”, “qty”: 2}")), 2),
    (
        "template-placeholder",
        msgs(("user", "who are you"), ("assistant", "I am {{name}}, made by {{ author }}.")),
        2,
    ),
    ("repetition", msgs(("user", "snack?"), ("assistant", "Eat a banana! " * 200)), 2),
    ("repetition", msgs(("user", "笑"), ("assistant", "好的。" + "哈哈哈哈哈" * 60)), 2),
]


@pytest.mark.parametrize("code,messages,turn", BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKS)])
def test_rule_flags_a_record_that_breaks_it(code, messages, turn):
    found = [i for i in check_record(messages) if i.code == code]
    assert found, f"{code} not found in {codes(messages)}"
    assert found[0].turn == turn and found[0].severity == checks.RULES[code].severity
    assert found[0].message  # says what is wrong


@pytest.mark.parametrize(
    "messages",
    [
        GOOD,
        GOOD_EN,
        msgs(("user", LONG_PROSE), ("assistant", LONG_PROSE)),
        msgs(("user", "他说“你好”然后走了"), ("assistant", '{"order_id": "A1"}')),
        msgs(("user", "¿Dónde está mi pedido? Café, crème brûlée"), ("assistant", "ok")),
    ],
)
def test_clean_records_raise_no_issue(messages):
    assert check_record(messages) == []


def test_every_record_rule_has_a_breaking_example():
    record_rules = {
        r.code for r in checks.RULES.values() if r.stage == "record" and not r.code.startswith("contract-")
    }
    assert record_rules - {"too-long"} == {code for code, _, _ in BREAKS}


def test_tool_call_turns_count_as_answers():
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": '[{"type": "function"}]'},
        {"role": "tool", "content": '{"t": 3}'},
        {"role": "assistant", "content": "3 degrees"},
    ]
    assert check_record(messages) == []


def test_too_long_counts_tokens_with_the_target_tokenizer():
    calls = []

    def count(messages):
        calls.append(len(messages))
        return 5000

    ctx = CheckContext(max_tokens=200, count_tokens=count)
    assert "too-long" in codes(msgs(("user", "x" * 400), ("assistant", "y")), ctx=ctx)
    assert codes(msgs(("user", "short"), ("assistant", "y")), ctx=ctx) == []
    assert calls == [2]  # a record whose bytes cannot reach the limit is never tokenised


def test_too_long_with_the_real_embedded_tokenizer():
    from workbench.models import token_counter

    ctx = CheckContext(max_tokens=64, count_tokens=token_counter(None))
    issue = next(
        i
        for i in check_record(msgs(("user", "退款 " * 80), ("assistant", "ok")), ctx=ctx)
        if i.code == "too-long"
    )
    assert "over the max length 64" in issue.message


# --- autofixes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken,fixed",
    [
        (msgs(("USER", "hi"), ("Assistant", "yo")), msgs(("user", "hi"), ("assistant", "yo"))),
        (msgs(("usr", "hi"), ("asistant", "yo")), msgs(("user", "hi"), ("assistant", "yo"))),
        (msgs(("human", "hi"), ("bot", "yo")), msgs(("user", "hi"), ("assistant", "yo"))),
        (
            msgs(("user", "hi"), ("system", "be nice"), ("assistant", "yo")),
            msgs(("system", "be nice"), ("user", "hi"), ("assistant", "yo")),
        ),
        (
            msgs(("user", "hi"), ("user", "there"), ("assistant", "yo")),
            msgs(("user", "hi\n\nthere"), ("assistant", "yo")),
        ),
        (msgs(("user", "æ‰“æ–°è‚¡"), ("assistant", "ok")), msgs(("user", "打新股"), ("assistant", "ok"))),
        # the re-decode leaves the rest of the turn alone: full-width punctuation, curly quotes, &amp;
        (
            msgs(("user", "æ‰“æ–°è‚¡ 他说“好”，对！A&amp;B"), ("assistant", "ok")),
            msgs(("user", "打新股 他说“好”，对！A&amp;B"), ("assistant", "ok")),
        ),
        (msgs(("user", "a\x00b"), ("assistant", "ok")), msgs(("user", "ab"), ("assistant", "ok"))),
        (
            msgs(("user", "q"), ("assistant", "{“a”: “他说“好””}")),
            msgs(("user", "q"), ("assistant", '{"a": "他说“好”"}')),
        ),
    ],
)
def test_autofix_repairs_and_the_record_then_passes(broken, fixed):
    repaired, applied = fix_record(broken)
    assert [formats.message_for_json(m) for m in repaired] == fixed
    assert applied and check_record(repaired) == []


def test_no_autofix_where_none_is_safe():
    for messages in (
        msgs(("narrator", "x"), ("assistant", "y")),
        msgs(("user", "caf\ufffd"), ("assistant", "y")),
        msgs(("user", "hi"), ("assistant", " ")),
    ):
        assert all(i.fix is None for i in check_record(messages))
        assert fix_record(messages) == (messages, [])


def test_fix_is_described_in_the_issue():
    (issue,) = [i for i in check_record(msgs(("user", "hi"), ("asistant", "yo"))) if i.code == "role-typo"]
    assert issue.fix == "rename to 'assistant'"


# --- output contracts ------------------------------------------------------------------------------

LABELS = Contract("intent", "labels", ["refund", "cancel", "delivery_status"])
SCHEMA = Contract(
    "slots",
    "json_schema",
    {
        "type": "object",
        "required": ["order_id", "qty"],
        "properties": {"order_id": {"type": "string"}, "qty": {"type": "integer"}},
    },
)


@pytest.mark.parametrize(
    "contract,category,good,bad,code",
    [
        (LABELS, "intent", "refund", "I think you want a refund", "contract-label"),
        (Contract("slots", "json"), "slots", '{"a": 1}', "{'a': 1}", "contract-json"),
        (
            SCHEMA,
            "slots",
            '{"order_id": "A1", "qty": 2}',
            '{"order_id": "A1", "qty": "two"}',
            "contract-schema",
        ),
        (Contract("reply", "regex", r"(是|否)"), "reply", "是", "是的", "contract-regex"),
    ],
)
def test_contract_flags_answers_that_break_it(contract, category, good, bad, code):
    ctx = CheckContext(contracts={category: contract})
    assert codes(msgs(("user", "q"), ("assistant", good)), category, ctx) == []
    assert codes(msgs(("user", "q"), ("assistant", bad)), category, ctx) == [code]
    assert codes(msgs(("user", "q"), ("assistant", bad)), "other-category", ctx) == []


def test_schema_violation_says_where():
    ctx = CheckContext(contracts={"slots": SCHEMA})
    (issue,) = check_record(
        msgs(("user", "q"), ("assistant", '{"order_id": "A1", "qty": "two"}')), "slots", ctx
    )
    assert "qty" in issue.message and issue.turn == 2


def test_label_with_stray_whitespace_is_fixable():
    ctx = CheckContext(contracts={"intent": LABELS})
    repaired, _ = fix_record(msgs(("user", "q"), ("assistant", "refund\n")), "intent", ctx)
    assert repaired[1]["content"] == "refund" and check_record(repaired, "intent", ctx) == []


@pytest.mark.parametrize(
    "kind,spec",
    [("labels", []), ("json_schema", {"type": "nonsense"}), ("regex", "(unclosed"), ("sentiment", None)],
)
def test_bad_contract_definitions_are_refused(kind, spec):
    with pytest.raises(WorkbenchError):
        Contract("c", kind, spec)


# --- the SQL pre-test ------------------------------------------------------------------------------


def sql_clean(con, messages, max_tokens=2048) -> bool:
    canonical = [formats.canonical_message(m) for m in messages]
    return con.execute(
        f"SELECT {checks.clean_record_sql(max_tokens)} FROM (SELECT ?::{normaliser.MESSAGE_TYPE}[] AS messages)",
        [canonical],
    ).fetchone()[0]


@pytest.fixture(scope="module")
def con():
    return duckdb.connect()


def test_pretest_calls_ordinary_records_clean(con):
    assert sql_clean(con, GOOD) and sql_clean(con, GOOD_EN)
    assert sql_clean(con, msgs(("user", LONG_PROSE.replace("。", ".")), ("assistant", "fine")))


@pytest.mark.parametrize("code,messages,turn", BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKS)])
def test_pretest_never_calls_a_broken_record_clean(con, code, messages, turn):
    assert not sql_clean(con, [{"role": None, **m} for m in messages])


ROLES = st.sampled_from(["system", "user", "assistant", "tool", "USER", "asistant", "bot", None])
TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="ab 好的。!", min_size=60, max_size=400),
    st.builds(
        lambda unit, n, tail: unit * n + tail,
        st.text(min_size=2, max_size=20),
        st.integers(1, 40),
        st.text(max_size=30),
    ),
    st.sampled_from(["{{name}}", "æ‰“æ–°", "{“a”: “b”}", "   ", "", "\ufffd", "ok\x01"]),
)
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": st.one_of(st.none(), TEXT)})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGE, min_size=1, max_size=5))
def test_pretest_is_conservative_on_generated_records(con, messages):
    """Whenever SQL calls a record clean, the rules agree (otherwise bulk checks would miss issues)."""
    if sql_clean(con, messages, max_tokens=400):
        assert (
            check_record(
                messages, None, CheckContext(max_tokens=400, count_tokens=lambda m: checks.token_bound(m))
            )
            == []
        )
