"""The optional LLM judge for categories a person judges: a rubric per category, a registered model behind a real
`transformers serve` asked for a verdict on each answer, stored as a suggestion with its reason (or why there is
none); a person's verdict is what counts; the agreement between judge and person is Cohen's kappa on the records
both judged."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from workbench import evaluate as E
from workbench import registry
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluate.llm_judge import parse_judgement
from workbench.ingest import import_file
from workbench.serve import free_port
from workbench.store import Store
from workbench.store import judge as judge_sql

pytestmark = pytest.mark.slow

CHATS = [
    ("你好，今天天气怎么样？", "您好！我无法查看实时天气，建议您打开天气应用查看。"),
    ("Say hello to a new customer in one sentence.", "Hello and welcome! How can I help you today?"),
    ("请用一句话感谢顾客的耐心等待。", "感谢您的耐心等待，我们马上为您处理！"),
    ("Apologise for a late delivery in one sentence.", "We are sorry your order arrived late."),
]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, server):
    """A store with a generative category (no contract) evaluated on the base model, and the server registered."""
    store = Store.open(tmp_path_factory.mktemp("judge") / "store")
    path = store.root / "eval.jsonl"
    rows = [
        {
            "category": "寒暄",
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        }
        for q, a in CHATS
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    import_file(store, path, dataset="eval")
    report = E.evaluate(store, "base", "dataset", dataset="eval", options=E.EvalOptions(max_new_tokens=24))
    registry.add_endpoint(store, "评委", server.url, server.model_id, max_concurrency=2)
    return store, report.evaluation.id


def test_a_reply_is_a_verdict_only_when_it_names_one():
    assert parse_judgement('{"verdict": "wrong", "reason": "没有道歉"}') == ("wrong", "没有道歉")
    assert parse_judgement('Sure! {"verdict": "Right", "reason": "polite"} done') == ("right", "polite")
    assert parse_judgement("Wrong: it does not apologise.") == ("wrong", "it does not apologise.")
    assert parse_judgement("**Correct** - short and polite")[0] == "right"
    assert parse_judgement("No, the answer is not right by the rubric.") == (
        "wrong",
        "the answer is not right by the rubric.",
    )
    # words inside a sentence are no verdict: the embedded model said this one of a right-looking answer
    for text in (
        "",
        "I am not sure.",
        "The answer is not right by the rubric.",
        '{"verdict": "maybe"}',
        "Nope.",
    ):
        with pytest.raises(ValueError, match="not a verdict"):
            parse_judgement(text)


def test_the_judge_suggests_a_verdict_per_answer_and_the_persons_verdict_counts(evaluated):
    store, evaluation_id = evaluated
    with pytest.raises(WorkbenchError, match="no rubric for '寒暄'"):
        E.judge_evaluation(store, evaluation_id, "endpoint:评委", categories=["寒暄"])
    E.set_rubric(store, "寒暄", "礼貌、简短，并且回应了顾客的问题 / polite, short, answers what was asked")
    before = E.evaluation_report(store, evaluation_id).total
    assert before.pending == len(CHATS)  # a person judges this category: no contract, no verdict yet

    result = CliRunner().invoke(
        main, ["--store", str(store.root), "judge", str(evaluation_id), "--model", "endpoint:评委", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["judged"]
    assert report["categories"] == ["寒暄"] and report["judged"] + len(report["failed"]) == len(CHATS)
    suggestions = E.judge_suggestions(store, evaluation_id)
    assert [s.seq for s in suggestions] == list(range(len(CHATS)))
    for s in suggestions:  # a verdict with its reason, or why there is none: never both, never neither
        assert (s.verdict is None) != (s.error is None) and s.judge == "endpoint:评委"
        assert s.verdict is None or s.verdict in ("right", "wrong")
    # a suggestion is not a verdict: the scores still wait for a person
    assert E.evaluation_report(store, evaluation_id).total.pending == len(CHATS)

    # a person judges: that verdict counts, and the agreement is measured on the records both judged
    judged = [s for s in suggestions if s.verdict]
    for s in judged:
        E.set_verdict(store, evaluation_id, s.seq, "same" if s.verdict == "right" else "worse", author="小王")
    after = E.evaluation_report(store, evaluation_id).total
    assert after.pending == len(CHATS) - len(judged)
    agreement = E.judge_agreement(store, evaluation_id)
    assert agreement.total.both == len(judged) and agreement.total.agree == len(judged)
    assert agreement.judged == len(judged) and agreement.unparsed == len(CHATS) - len(judged)
    # asked again, records with a verdict are skipped unless --again
    with store.connect() as con:
        asked_again = [row[0] for row in judge_sql.to_judge(con, evaluation_id, ["寒暄"], again=False)]
        everything = [row[0] for row in judge_sql.to_judge(con, evaluation_id, ["寒暄"], again=True)]
    assert asked_again == [s.seq for s in suggestions if not s.verdict] and everything == list(
        range(len(CHATS))
    )


def test_cohens_kappa_between_judge_and_person_on_planted_verdicts(evaluated):
    store, evaluation_id = evaluated
    planted = {0: ("right", "same"), 1: ("right", "worse"), 2: ("wrong", "both_bad"), 3: ("wrong", "worse")}
    with store.transaction() as con:
        for seq, (verdict, _person) in planted.items():
            judge_sql.save_suggestion(con, evaluation_id, seq, "endpoint:评委", "r", verdict, "planted", None)
    for seq, (_verdict, person) in planted.items():
        E.set_verdict(store, evaluation_id, seq, person, author="小王")
    total = E.judge_agreement(store, evaluation_id).total
    # observed agreement 3/4; chance 0.5*0.25 + 0.5*0.75 = 0.5; kappa (0.75 - 0.5) / (1 - 0.5) = 0.5
    assert (total.both, total.agree) == (4, 3) and total.kappa == pytest.approx(0.5)


def test_the_evaluate_page_shows_the_judges_suggestions_and_its_agreement_with_a_person(
    evaluated, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    store, evaluation_id = evaluated  # the planted verdicts of the test before: kappa 0.5
    monkeypatch.setenv("WORKBENCH_STORE", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception
    assert "LLM judge" in [h.value for h in at.subheader]
    [agreement] = [d.value for d in at.dataframe if "Cohen's kappa" in d.value.columns]
    assert agreement.set_index("category").loc["all", "Cohen's kappa"] == pytest.approx(0.5)
    [table] = [d.value for d in at.dataframe if "reason, or why none" in d.value.columns]
    assert list(table["judge"]) == ["right", "right", "wrong", "wrong"] and set(
        table["reason, or why none"]
    ) == {"planted"}
    assert "wrong (both bad)" in list(table["person"])
    assert [b.label for b in at.button if b.label.startswith("Ask the judge")] == ["Ask the judge about 寒暄"]


def test_a_judge_that_does_not_answer_says_so_and_keeps_the_verdicts_it_gave(evaluated):
    store, evaluation_id = evaluated
    before = {s.seq: (s.verdict, s.reason) for s in E.judge_suggestions(store, evaluation_id)}
    registry.add_endpoint(store, "gone", f"http://127.0.0.1:{free_port()}/v1", "m", check=False)
    report = E.judge_evaluation(store, evaluation_id, "endpoint:gone", again=True)
    assert report.judged == 0 and len(report.failed) == len(CHATS)
    assert all("cannot be reached" in why or "connect" in why.lower() for why in report.failed.values())
    after = {s.seq: (s.verdict, s.reason) for s in E.judge_suggestions(store, evaluation_id)}
    assert after == before  # a failed request never replaces a verdict given before
