"""An evaluation answered by a registered OpenAI-compatible endpoint: the same set, budgets and verdicts as
in-process evaluation, requests in flight at once (bounded), each answer stored as it arrives; a failed request
is an error on its record, asked again by `resume_evaluation`, never a verdict."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..contracts import Contract
from ..endpoint import Endpoint, EndpointError, chat_many
from ..store import Store
from ..store import evaluations as sql
from ..store import registry as registry_sql
from ..train.data import _for_template
from .judge import judge
from .options import EvalOptions, EvaluationCancelled, Progress


class _TokenCounter:
    """Counts reference tokens for the answer budgets with the embedded model's tokenizer: an endpoint's own
    tokenizer is not at hand, so another model's budget is approximate (docs/evaluate.md)."""

    def __init__(self, models_dir):
        from ..models import load_tokenizer

        self.tok = load_tokenizer(None, models_dir)

    def tokens(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []


def prompt_messages(messages: list[dict]) -> list[dict]:
    """What the endpoint is asked: every turn before the final assistant answer, as the chat template sees it."""
    msgs = [_for_template(m) for m in messages]
    answers = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    return msgs[: answers[-1]] if answers else msgs


def answer_by_endpoint(
    store: Store, row: sql.EvaluationRow, todo: list[sql.ResultRow], tell: Progress, stop: Callable[[], bool]
) -> None:
    from .run import _contract_budgets

    options = EvalOptions.from_dict(row.config.get("options") or {})
    endpoint = Endpoint.from_config(row.config["endpoint"])
    if options.max_concurrency is not None:
        endpoint.max_concurrency = options.max_concurrency
    contracts = {
        c: Contract(c, v["kind"], v.get("spec")) for c, v in (row.config.get("contracts") or {}).items()
    }
    total, done = row.records, row.records - len(todo)
    said = threading.Lock()  # a request waiting out a 429 says so from its own thread

    def say(info: dict) -> None:
        with said:
            tell(done, total, info)

    say({"phase": f"asking {endpoint.name}"})
    budgets = _contract_budgets(todo, contracts, _TokenCounter(store.models_dir), options.max_new_tokens)
    by_seq = {r.seq: r for r in todo}
    requests = (
        (r.seq, prompt_messages(r.messages), r.tools or None, budgets.get(r.category, options.max_new_tokens))
        for r in todo
    )
    failed: dict[int, str] = {}
    answers = chat_many(
        endpoint,
        requests,
        on_wait=lambda seconds: say(
            {"phase": f"{endpoint.name} answers 429 (too many requests): waiting {seconds:.0f} s as it asks"}
        ),
    )
    try:
        for seq, answer in answers:
            record = by_seq.pop(seq)
            with store.transaction() as con:
                if isinstance(answer, EndpointError):
                    failed[seq] = str(answer)
                    registry_sql.record_request_error(con, row.id, seq, str(answer))
                else:
                    sql.save_results(
                        con, row.id, [_result_of(record, contracts.get(record.category), answer)]
                    )
                    registry_sql.clear_request_error(con, row.id, seq)
                    done += 1
            say({"phase": f"answered by {endpoint.name}", "failed": len(failed)})
            if stop():
                raise EvaluationCancelled(
                    f"evaluation {row.id} stopped after {done} of {total} records; "
                    f"`workbench evaluate --resume {row.id}` continues it"
                )
    finally:
        answers.close()
    if failed or by_seq:
        first = next(iter(failed.values()), "")
        unsent = f", {len(by_seq)} not sent (the endpoint had stopped answering)" if by_seq else ""
        raise EndpointError(
            f"{len(failed)} of {len(todo)} requests failed{unsent}; the {done} answers of {total} records are "
            f"stored. First failure: {first}. Once {endpoint.name!r} answers again, "
            f"`workbench evaluate --resume {row.id}` asks only for the rest"
        )


def _result_of(record: sql.ResultRow, contract: Contract | None, answer) -> dict:
    return {
        "seq": record.seq,
        "loss": None,  # an endpoint gives no loss
        "prompt_tokens": answer.prompt_tokens,
        "output_tokens": answer.output_tokens,
        "latency_s": answer.seconds,
        "output": answer.text,
        **judge(contract, answer.text, record.reference or ""),
    }


def request_errors(store: Store, evaluation_id: int) -> list[tuple[int, str]]:
    """(seq, error) of the records of an evaluation whose request failed and was not answered since."""
    with store.connect() as con:
        return registry_sql.request_errors(con, evaluation_id)
