"""Evaluation: the base model or a run's adapter over an eval set, verdicts, comparisons, failures back to badcases.

An evaluation reads its set and the output contracts from the store, freezes the set in the store,
closes it, and generates with the store closed; results go back in chunks, each a short transaction,
so the app and the CLI take turns with it, and a cancelled or killed evaluation resumes where it stopped.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from .contracts import Contract
from .errors import EmptySelectionError, NotFoundError, WorkbenchError
from .models import EMBEDDED_MODEL
from .processes import pid_exists
from .store import Store
from .store import evaluations as sql
from .store.records import Record, Selection, get_record, insert_record, list_records, update_record
from .store.runs import RunRow, get_run
from .store.settings import get_contracts
from .train.data import ChatEncoder, SkipRecord, read_export, reference_answer

EVAL_SETS = ("dataset", "val", "trained", "general")
Progress = Callable[[int, int, dict], None]  # (done, total, info)


class EvaluationCancelled(WorkbenchError):
    """The evaluation was stopped; what it had done is stored and `resume_evaluation` continues it."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EvalOptions:
    """How an evaluation generates. Every field has a default; the help texts are what the UI shows."""

    max_new_tokens: int = field(
        default=128,
        metadata=_help(
            "Most tokens generated for an answer without a contract. Answers under a contract get twice their "
            "reference's length plus 8, enough to see a right answer end."
        ),
    )
    batch_size: int = field(default=16, metadata=_help("Prompts generated together."))
    limit: int | None = field(
        default=None,
        metadata=_help(
            "Evaluate a fixed sample of at most this many records (default: all; the general set: 200)."
        ),
    )
    seed: int = field(default=0, metadata=_help("Seed of the sample."))
    generate: bool | None = field(
        default=None,
        metadata=_help(
            "Generate answers (default: yes, except on the general set, where only the answers' loss is measured)."
        ),
    )
    share_prefix: bool = field(
        default=True,
        metadata=_help(
            "Compute a prompt beginning shared by many records (the system prompt) once per group of prompts."
        ),
    )
    device: str | None = field(
        default=None, metadata=_help("cuda, cpu, ... (default: a GPU when there is one).")
    )
    threads: int | None = field(
        default=None, metadata=_help("CPU threads for torch (default: torch's choice).")
    )
    chunk: int = field(default=64, metadata=_help("Records written back to the store per transaction."))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> EvalOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class CategoryScore:
    category: str
    n: int
    done: int
    right: int
    wrong: int
    pending: int
    mean_loss: float | None
    prompt_tokens: float | None
    output_tokens: float | None
    seconds_per_answer: float | None

    @property
    def accuracy(self) -> float | None:
        judged = self.right + self.wrong
        return self.right / judged if judged else None

    def as_dict(self) -> dict:
        return {**self.__dict__, "accuracy": self.accuracy}


@dataclass
class EvaluationReport:
    """An evaluation and its scores per category (the last row, category 'all', totals them)."""

    evaluation: sql.EvaluationRow
    categories: list[CategoryScore]

    @property
    def total(self) -> CategoryScore:
        return self.categories[-1]

    def as_dict(self) -> dict:
        return {"evaluation": self.evaluation.as_dict(), "categories": [c.as_dict() for c in self.categories]}


# --- the eval set ----------------------------------------------------------------------------------------


def record_key(record: dict) -> str:
    """How a record is matched across evaluations: its store id, else a hash of its messages."""
    if record.get("id") is not None:
        return str(record["id"])
    text = json.dumps(record.get("messages"), ensure_ascii=False, sort_keys=True)
    return "sha:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _item(record: dict) -> dict | None:
    messages = [
        {k: v for k, v in m.items() if v is not None and k != "loss_weight"} for m in record["messages"]
    ]
    reference = reference_answer(messages)
    if reference is None or messages[-1].get("role") != "assistant":
        return None
    record_id = record.get("id")
    return {
        "record_key": record_key(record),
        "record_id": int(record_id) if isinstance(record_id, int) else None,
        "category": record.get("category"),
        "messages": messages,
        "tools": record.get("tools"),
        "reference": reference,
    }


def _sample(items: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or len(items) <= limit:
        return items
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def _store_records(con, selection: Selection) -> list[dict]:
    out = []
    for record in list_records(con, selection, limit=10**9):
        if record.status == "rejected":
            continue
        out.append({**record.to_json(), "id": record.id})
    return out


def _read_set(
    con, store: Store, on: str, *, dataset: str | None, export: Path | None
) -> tuple[list[dict], str]:
    """The records of an eval set (dicts as in an export's lines) and the name of where they came from."""
    if on == "dataset":
        if not dataset:
            raise WorkbenchError("name the dataset to evaluate on (e.g. --on eval, or any dataset name)")
        return _store_records(con, Selection(dataset=dataset)), dataset
    if export is None:
        raise WorkbenchError(
            f"the {on!r} set comes from an export: evaluate a run (its export), or name one with --export"
        )
    data = read_export(export)
    if on == "val":
        if not data.val:
            raise WorkbenchError(
                f"{data.folder} has no validation split (val.jsonl); export with a val share"
            )
        return data.val, str(data.folder)
    if on == "trained":
        seen, out = set(), []
        for r in data.train:  # the badcases, each once (upsampling repeats records)
            if r.get("source", "badcase") == "badcase" and record_key(r) not in seen:
                seen.add(record_key(r))
                out.append(r)
        return out, str(data.folder)
    # general: the general records the export did not train on
    trained = {r.get("id") for r in data.train}
    kinds = con.execute("SELECT name FROM datasets WHERE kind = 'general' ORDER BY name").fetchall()
    records = _store_records(con, Selection(datasets=tuple(k[0] for k in kinds))) if kinds else []
    return [r for r in records if r["id"] not in trained], str(data.folder)


def _contracts(con, export: Path | None) -> dict[str, Contract]:
    """The store's output contracts, and the export's for categories the store has none for."""
    contracts = dict(read_export(export).contracts) if export is not None else {}
    contracts.update(get_contracts(con))
    return contracts


# --- starting, running, resuming -------------------------------------------------------------------------


def evaluate(
    store: Store,
    model: str | int = "base",
    on: str = "val",
    *,
    dataset: str | None = None,
    export: str | Path | None = None,
    set_run: int | None = None,
    options: EvalOptions | None = None,
    system_prompt: str | None = None,
    examples: Sequence[dict] = (),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    author: str | None = None,
    base_model: str | None = None,
) -> EvaluationReport:
    """Evaluate `model` ('base', or a run id: its adapter) over an eval set and store every record's result.

    on: 'dataset' (the store's `dataset`, e.g. eval), 'val' (an export's validation split), 'trained' (the
    badcases a run trained on) or 'general' (general records the run did not train on: loss only, by default).
    The export is `export`, else that of `set_run`, else that of the run being evaluated.
    system_prompt / examples: a prompt trial; each record's system prompt is replaced and the examples
    (records) go before its question as earlier turns.
    should_stop() is asked between batches; a stopped evaluation raises EvaluationCancelled and resumes with
    `resume_evaluation`. base_model: the model 'base' means when no run names one (default: the embedded
    model). Blocks until done; the store is open only to read the set and to write each chunk.
    """
    options = options or EvalOptions()
    if on not in EVAL_SETS:
        raise WorkbenchError(f"unknown eval set {on!r}; use one of {', '.join(EVAL_SETS)}")
    run_id = _run_id(model)
    with store.connect() as con:
        run = get_run(con, run_id) if run_id is not None else None
        if set_run is None and run is not None:
            set_run = run.id
        set_run_row = get_run(con, set_run) if set_run is not None else None
        # a dataset needs no export (the store's contracts decide); a run's export gone missing is no obstacle then
        export_dir = (
            _export_dir(store, export, set_run_row) if on != "dataset" or export is not None else None
        )
        records, source = _read_set(con, store, on, dataset=dataset, export=export_dir)
        contracts = _contracts(con, export_dir)
    if run is not None and (
        run.status != "done" or not (Path(run.run_dir) / "adapter" / "adapter_config.json").is_file()
    ):
        raise WorkbenchError(
            f"run {run.id} has no finished adapter (it is {run.status}); evaluate a finished run"
        )
    items = [i for i in map(_item, records) if i is not None]
    if system_prompt is not None or examples:
        shots = [s for s in map(_item, examples) if s is not None]
        keys = {s["record_key"] for s in shots}
        items = [_with_prompt(i, system_prompt, shots) for i in items if i["record_key"] not in keys]
    limit = options.limit if options.limit is not None else (200 if on == "general" else None)
    items = _sample(items, limit, options.seed)
    if not items:
        raise EmptySelectionError(
            f"the {on} set ({source}) has no record with a final assistant answer to compare with"
        )
    base_model = run.base_model if run is not None else (base_model or _base_model_of(set_run_row))
    config = {
        "options": options.to_dict(),
        "contracts": {c: {"kind": k.kind, "spec": k.spec} for c, k in contracts.items()},
        "chat_template": (run or set_run_row).config.get("chat_template") if (run or set_run_row) else None,
        "adapter": str(Path(run.run_dir) / "adapter") if run is not None else None,
        "set_run": set_run,
    }
    with store.transaction() as con:
        evaluation_id = sql.insert_evaluation(
            con,
            model=f"run {run.id}" if run is not None else "base",
            run_id=run_id,
            base_model=base_model,
            eval_set=on,
            source=source,
            system_prompt=system_prompt,
            examples=len(examples) or None,
            config=config,
            items=items,
            pid=os.getpid(),
            author=author,
        )
    return _run(store, evaluation_id, progress, should_stop)


def resume_evaluation(
    store: Store,
    evaluation_id: int,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EvaluationReport:
    """Continue a cancelled, failed or killed evaluation with the records that have no result yet."""
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
    if row.status == "done":
        raise WorkbenchError(f"evaluation {evaluation_id} is done; nothing to resume")
    if row.status == "running" and row.pid and row.pid != os.getpid() and pid_exists(row.pid):
        raise WorkbenchError(f"evaluation {evaluation_id} is still running in process {row.pid}")
    with store.transaction() as con:
        sql.update_evaluation(con, evaluation_id, status="running", pid=os.getpid(), error=None)
    return _run(store, evaluation_id, progress, should_stop)


def _run_id(model: str | int) -> int | None:
    if isinstance(model, int):
        return model
    text = str(model).strip().lower()
    if text == "base":
        return None
    text = text.removeprefix("run").strip()
    if text.isdigit():
        return int(text)
    raise WorkbenchError(f"evaluate 'base' or a run id, not {model!r}")


def _export_dir(store: Store, export: str | Path | None, run: RunRow | None) -> Path | None:
    if export is not None:
        from .train.runs import resolve_export

        return resolve_export(store, export)
    if run is not None:
        folder = Path(run.export_dir)
        if not (folder / "manifest.json").is_file():
            raise WorkbenchError(f"run {run.id}'s export {folder} is gone; name another with --export")
        return folder
    return None


def _base_model_of(run: RunRow | None) -> str:
    return run.base_model if run is not None else EMBEDDED_MODEL


def _with_prompt(item: dict, system_prompt: str | None, shots: list[dict]) -> dict:
    """The record with its system prompt replaced and the example records' question and answer before its own."""
    messages = list(item["messages"])
    head = [m for m in messages[:1] if m.get("role") == "system"]
    rest = messages[len(head) :]
    if system_prompt is not None:
        head = [{"role": "system", "content": system_prompt}]
    turns = []
    for shot in shots:
        question = next((m for m in reversed(shot["messages"][:-1]) if m.get("role") == "user"), None)
        if question is not None:
            turns += [
                {"role": "user", "content": question.get("content") or ""},
                {"role": "assistant", "content": shot["reference"]},
            ]
    return {**item, "messages": head + turns + rest}


def _run(store: Store, evaluation_id: int, progress: Progress | None, should_stop) -> EvaluationReport:
    tell = progress or (lambda done, total, info: None)
    stop = should_stop or (lambda: False)
    started = time.perf_counter()
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        todo = sql.unfinished_items(con, evaluation_id)
    try:
        _generate_and_score(store, row, todo, tell, stop)
    except EvaluationCancelled as exc:
        _finish(store, row, "cancelled", time.perf_counter() - started, str(exc))
        raise
    except KeyboardInterrupt:
        _finish(store, row, "cancelled", time.perf_counter() - started, "interrupted")
        raise EvaluationCancelled(
            f"evaluation {evaluation_id} stopped; what it had done is stored. "
            f"`workbench evaluate --resume {evaluation_id}` continues it"
        ) from None
    except BaseException as exc:
        _finish(store, row, "failed", time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        raise
    _finish(store, row, "done", time.perf_counter() - started, None)
    return evaluation_report(store, evaluation_id)


def _finish(store: Store, row: sql.EvaluationRow, status: str, seconds: float, error: str | None) -> None:
    from datetime import datetime, timezone

    with store.transaction() as con:
        sql.update_evaluation(
            con,
            row.id,
            status=status,
            seconds=(row.seconds or 0) + seconds,
            error=error,
            finished_at=datetime.now(timezone.utc) if status != "running" else None,
        )


def load_model_for(
    row_base_model: str,
    adapter: str | None,
    chat_template: str | None,
    *,
    models_dir: Path,
    device: str | None = None,
):
    """(model, ChatEncoder, device) for an evaluation: the base model, with the run's adapter when there is one."""
    import torch
    from transformers.utils import logging as hf_logging

    from .models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer, pick_device

    device, _dtype = pick_device(device)
    name = None if row_base_model == EMBEDDED_MODEL else row_base_model
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the library never prints: no "Loading weights" bar on the caller's terminal
    try:
        model = load_causal_lm(name, models_dir, dtype=torch.float32)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if adapter:
        import warnings

        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise WorkbenchError(f"the adapter {adapter} is gone; evaluate another run")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter)
    model = model.to(device).eval()
    tokenizer = load_chat_tokenizer(name, models_dir, chat_template)
    return model, ChatEncoder(tokenizer, end_of_turn_ids(name, models_dir)), device


def _generate_and_score(
    store: Store, row: sql.EvaluationRow, todo: list[sql.ResultRow], tell: Progress, stop: Callable[[], bool]
) -> None:
    import torch

    from .generation import generate_greedy

    options = EvalOptions.from_dict(row.config.get("options") or {})
    contracts = {
        c: Contract(c, v["kind"], v.get("spec")) for c, v in (row.config.get("contracts") or {}).items()
    }
    generate = options.generate if options.generate is not None else row.eval_set != "general"
    total, done = row.records, row.records - len(todo)
    tell(done, total, {"phase": "loading the model"})
    if options.threads:
        torch.set_num_threads(options.threads)
    model, encoder, device = load_model_for(
        row.base_model,
        row.config.get("adapter"),
        row.config.get("chat_template"),
        models_dir=store.models_dir,
        device=options.device,
    )
    budgets = _contract_budgets(todo, contracts, encoder, options.max_new_tokens)
    pad = encoder.tok.pad_token_id if encoder.tok.pad_token_id is not None else 0
    stop_ids = sorted(encoder.end_of_turn_ids)
    for k in range(0, len(todo), options.chunk):
        if stop():
            raise EvaluationCancelled(
                f"evaluation {row.id} stopped after {done} of {total} records; "
                f"`workbench evaluate --resume {row.id}` continues it"
            )
        chunk = todo[k : k + options.chunk]
        prompts = [encoder.prompt_ids(r.messages, r.tools) for r in chunk]
        outputs: list[list[int] | None] = [None] * len(chunk)
        seconds: list[float | None] = [None] * len(chunk)
        if generate:
            # answers under a contract are short: each category's get a budget from its own references
            # (a label category's a few tokens, not the JSON category's beside it); one call per budget
            by_budget: dict[int, list[int]] = {}
            for i, r in enumerate(chunk):
                by_budget.setdefault(budgets.get(r.category, options.max_new_tokens), []).append(i)
            started = done
            for budget, picked in sorted(by_budget.items()):
                answers = generate_greedy(
                    model,
                    [prompts[i] for i in picked],
                    max_new_tokens=budget,
                    stop_ids=stop_ids,
                    pad_id=pad,
                    device=device,
                    batch_size=options.batch_size,
                    share_prefix=options.share_prefix,
                    progress=lambda n, _t, base=started: tell(base + n, total, {"phase": "generating"}),
                )
                started += len(picked)
                for i, answer in zip(picked, answers, strict=True):
                    outputs[i], seconds[i] = answer.ids, answer.seconds
        results = []
        for i, record in enumerate(chunk):
            results.append(
                _result_of(
                    record,
                    contracts.get(record.category),
                    encoder,
                    model,
                    device,
                    prompts[i],
                    outputs[i],
                    seconds[i],
                )
            )
        with store.transaction() as con:
            sql.save_results(con, row.id, results)
        done += len(chunk)
        tell(done, total, {"phase": "scoring"})


def _result_of(
    record: sql.ResultRow,
    contract: Contract | None,
    encoder: ChatEncoder,
    model,
    device,
    prompt: list[int],
    output_ids: list[int] | None,
    seconds: float | None,
) -> dict:
    from .train.data import Example
    from .train.validation import answer_loss

    try:
        ids, weights = encoder.encode(_only_final_answer_trained(record.messages), record.tools)
        loss = answer_loss(model, Example(ids, weights), device=device)
    except SkipRecord:
        loss = None
    out = {"seq": record.seq, "loss": loss, "prompt_tokens": len(prompt), "latency_s": seconds}
    if output_ids is None:  # loss only
        return {**out, "output": "", "verdict": "pending", "reason": "not generated (loss only)"}
    answer = encoder.tok.decode(output_ids, skip_special_tokens=True)
    return {
        **out,
        "output": answer,
        "output_tokens": len(output_ids),
        **judge(contract, answer, record.reference or ""),
    }


def _only_final_answer_trained(messages: list[dict]) -> list[dict]:
    """The loss of an evaluation is that of the final answer (the reference), not of example turns before it."""
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return [
        {**m, "loss_weight": 1.0 if i == last else 0.0} if m.get("role") == "assistant" else m
        for i, m in enumerate(messages)
    ]


def _contract_budgets(records, contracts: dict, encoder, max_new_tokens: int) -> dict[str | None, int]:
    """Per category under a contract, the most tokens generated for an answer: twice its longest reference plus
    8, enough to see a right answer end (a right answer says what the reference says), never over
    max_new_tokens. Categories without a contract are not in it: they get max_new_tokens."""
    longest: dict[str | None, int] = {}
    for r in records:
        if r.category in contracts:
            longest[r.category] = max(longest.get(r.category, 1), len(encoder.tokens(r.reference or "")))
    return {c: max(1, min(max_new_tokens, 2 * n + 8)) for c, n in longest.items()}


def judge(contract: Contract | None, answer: str, reference: str) -> dict:
    """The automatic verdict: where the category has an output contract it decides (label set: the exact label;
    JSON: parses; JSON Schema: valid; regex: matches) and the answer must also match the reference (the same
    text, or the same JSON value); without a contract the verdict waits for a person, and the similarity of
    the answer to the reference is only a hint."""
    from .train.validation import same_answer  # imported here: that module loads torch, a verdict needs none

    similarity = round(
        difflib.SequenceMatcher(None, answer.strip(), reference.strip(), autojunk=False).ratio(), 4
    )
    if contract is None:
        return {
            "verdict": "pending",
            "contract_ok": None,
            "exact_match": same_answer(answer, reference),
            "reason": "no output contract: a person's verdict decides",
            "similarity": similarity,
        }
    violation = contract.violation(answer)
    exact = same_answer(answer, reference, as_json=contract.kind in ("json", "json_schema"))
    if violation is not None:
        reason = violation
    elif not exact:
        reason = f"obeys the {contract.kind} contract but differs from the reference {_clip(reference)!r}"
    else:
        reason = None
    return {
        "verdict": "right" if violation is None and exact else "wrong",
        "contract_ok": violation is None,
        "exact_match": exact,
        "reason": reason,
        "similarity": similarity,
    }


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


# --- reading results ---------------------------------------------------------------------------------------


def evaluation_report(store: Store, evaluation_id: int) -> EvaluationReport:
    """An evaluation with its accuracy per category (right / (right + wrong); pending answers wait for a person)."""
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        rows = sql.category_summary(con, evaluation_id)
    categories = [CategoryScore(*r) for r in rows]
    categories.append(_total(categories))
    return EvaluationReport(row, categories)


def _total(categories: list[CategoryScore]) -> CategoryScore:
    def mean(attr: str) -> float | None:
        pairs = [(getattr(c, attr), c.done) for c in categories if getattr(c, attr) is not None and c.done]
        weight = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / weight if weight else None

    return CategoryScore(
        "all",
        sum(c.n for c in categories),
        sum(c.done for c in categories),
        sum(c.right for c in categories),
        sum(c.wrong for c in categories),
        sum(c.pending for c in categories),
        mean("mean_loss"),
        mean("prompt_tokens"),
        mean("output_tokens"),
        mean("seconds_per_answer"),
    )


def list_evaluations(store: Store, limit: int | None = None) -> list[EvaluationReport]:
    with store.connect() as con:
        ids = [r.id for r in sql.list_evaluations(con, limit)]
    return [evaluation_report(store, i) for i in ids]


def default_pair(reports: Sequence[EvaluationReport]) -> tuple[int, int] | None:
    """The two evaluations a person most likely wants compared first: the newest finished run evaluation with
    verdicts, beside the newest base-model evaluation (not a prompt trial) of the same set and source; where
    no run has verdicts, the same for loss-only sets (the general set's forgetting). None when no such pair
    exists. Reports are newest first, as list_evaluations gives them."""

    def plain(r: EvaluationReport) -> bool:
        return (
            r.evaluation.status == "done" and r.evaluation.system_prompt is None and not r.evaluation.examples
        )

    for need_verdicts in (True, False):
        for after in reports:
            e = after.evaluation
            if e.run_id is None or not plain(after) or (need_verdicts and after.total.accuracy is None):
                continue
            for before in reports:
                b = before.evaluation
                if b.run_id is None and plain(before) and (b.eval_set, b.source) == (e.eval_set, e.source):
                    return b.id, e.id
    return None


def evaluation_results(
    store: Store, evaluation_id: int, *, verdict: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[sql.ResultRow]:
    """A page of an evaluation's per-record results (verdict: right, wrong or pending)."""
    with store.connect() as con:
        sql.get_evaluation(con, evaluation_id)
        return sql.results(con, evaluation_id, verdict=verdict, limit=limit, offset=offset)


def set_verdict(store: Store, evaluation_id: int, seq: int, verdict: str | None, *, author: str) -> None:
    """A person's verdict on a generative answer, compared with the reference: better, same, worse or both_bad
    (better and same count as right). None clears it."""
    with store.transaction() as con:
        sql.set_human_verdict(con, evaluation_id, seq, verdict, author)


# --- comparing two evaluations -------------------------------------------------------------------------------


@dataclass
class GroupComparison:
    """Accuracy before and after on one category or cluster, and what changed."""

    name: str
    n: int
    right_before: int
    right_after: int
    fixed: int
    regressed: int
    still_wrong: int
    pending: int

    @property
    def judged(self) -> int:
        return self.n - self.pending

    @property
    def accuracy_before(self) -> float | None:
        return self.right_before / self.judged if self.judged else None

    @property
    def accuracy_after(self) -> float | None:
        return self.right_after / self.judged if self.judged else None

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
        }


@dataclass
class Comparison:
    """Two evaluations on the records they share: per category, per cluster, and the records fixed
    (wrong before, right after), regressed (right before, wrong after) and still wrong."""

    before: sql.EvaluationRow
    after: sql.EvaluationRow
    categories: list[GroupComparison]
    clusters: list[GroupComparison]
    total: GroupComparison
    fixed: list[str]
    regressed: list[str]
    still_wrong: list[str]
    only_before: int
    only_after: int
    loss_before: float | None
    loss_after: float | None

    def as_dict(self) -> dict:
        return {
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "categories": [c.as_dict() for c in self.categories],
            "clusters": [c.as_dict() for c in self.clusters],
            "total": self.total.as_dict(),
            "fixed": self.fixed,
            "regressed": self.regressed,
            "still_wrong": self.still_wrong,
            "only_before": self.only_before,
            "only_after": self.only_after,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
        }


def compare_evaluations(store: Store, before: int, after: int) -> Comparison:
    """Compare evaluation `before` with `after` (base vs a run, run A vs run B) on the records both scored."""
    with store.connect() as con:
        a, b = sql.get_evaluation(con, before), sql.get_evaluation(con, after)
        pairs = sql.paired_verdicts(con, before, after)
        losses = {e: {r.record_key: r.loss for r in sql.results(con, e)} for e in (before, after)}
    if not pairs:
        raise WorkbenchError(
            f"evaluations {before} and {after} share no scored record: compare two evaluations "
            f"of the same set (e.g. `workbench evaluate base --on val --run N` and "
            f"`workbench evaluate N --on val`)"
        )
    shared = {p[0] for p in pairs}
    by_category: dict[str, GroupComparison] = {}
    by_cluster: dict[str, GroupComparison] = {}
    total = GroupComparison("all", 0, 0, 0, 0, 0, 0, 0)
    fixed, regressed, still = [], [], []
    for key, _record_id, category, cluster, v_before, v_after in pairs:
        groups = [by_category.setdefault(category, GroupComparison(category, 0, 0, 0, 0, 0, 0, 0)), total]
        if cluster is not None:
            groups.append(by_cluster.setdefault(cluster, GroupComparison(cluster, 0, 0, 0, 0, 0, 0, 0)))
        pending = "pending" in (v_before, v_after)
        for g in groups:
            g.n += 1
            if pending:
                g.pending += 1
                continue
            g.right_before += v_before == "right"
            g.right_after += v_after == "right"
            g.fixed += v_before == "wrong" and v_after == "right"
            g.regressed += v_before == "right" and v_after == "wrong"
            g.still_wrong += v_before == "wrong" and v_after == "wrong"
        if not pending:
            if v_before == "wrong" and v_after == "right":
                fixed.append(key)
            elif v_before == "right" and v_after == "wrong":
                regressed.append(key)
            elif v_before == v_after == "wrong":
                still.append(key)

    def mean_loss(e: int) -> float | None:
        values = [v for k, v in losses[e].items() if k in shared and v is not None]
        return sum(values) / len(values) if values else None

    return Comparison(
        a,
        b,
        sorted(by_category.values(), key=lambda g: g.name),
        sorted(by_cluster.values(), key=lambda g: -g.n),
        total,
        fixed,
        regressed,
        still,
        len(set(losses[before]) - shared),
        len(set(losses[after]) - shared),
        mean_loss(before),
        mean_loss(after),
    )


# --- failures back into the badcase queue ---------------------------------------------------------------------


@dataclass
class FailuresSent:
    evaluation_id: int
    dataset: str
    created: list[int]
    updated: list[int]
    already_sent: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def send_failures_to_badcases(
    store: Store, evaluation_id: int, dataset: str = "badcases", *, status: str = "fixed", author: str
) -> FailuresSent:
    """Every failed record of an evaluation (wrong, or judged worse / both bad by a person) into a badcase dataset:
    the reference answer as the final turn, the model's output kept as the bad output, source and tags linking the
    evaluation and run. A record already in that dataset gets the bad output and tags instead of a copy. Status
    'fixed' (the right answer is written in) lets the next export take them. In one transaction; a failure
    sent before is not sent twice."""
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        failed = sql.results(con, evaluation_id, verdict="wrong")
    source = f"evaluation {row.id}" + (f" (run {row.run_id})" if row.run_id is not None else " (base model)")
    tags = ["eval-failure", f"evaluation-{row.id}"] + (
        [f"run-{row.run_id}"] if row.run_id is not None else []
    )
    created, updated, already = [], [], 0
    with store.transaction() as con:
        links = []
        for result in failed:
            if result.badcase_id is not None:
                already += 1
                continue
            existing = _existing(con, result.record_id, dataset)
            if existing is not None:
                merged = sorted(set(existing.tags) | set(tags))
                update_record(
                    con,
                    existing.id,
                    existing.version,
                    {"bad_output": result.output, "tags": merged},
                    author,
                    action="eval-failure",
                    note=source,
                )
                links.append((result.seq, existing.id))
                updated.append(existing.id)
                continue
            messages = _original_prompt(result.messages, row)
            record = Record(
                id=0,
                dataset=dataset,
                messages=messages,
                category=result.category,
                status=status,
                tags=tags,
                source=source,
                bad_output=result.output,
                tools=result.tools,
            )
            new_id = insert_record(con, record, author, note=f"failure of {source}")
            links.append((result.seq, new_id))
            created.append(new_id)
        sql.mark_sent_to_badcases(con, evaluation_id, links)
    return FailuresSent(evaluation_id, dataset, created, updated, already)


def _existing(con, record_id: int | None, dataset: str) -> Record | None:
    if record_id is None:
        return None
    try:
        record = get_record(con, record_id)
    except NotFoundError:
        return None
    return record if record.dataset == dataset else None


def _original_prompt(messages: list[dict], row: sql.EvaluationRow) -> list[dict]:
    """A prompt trial's records carry its examples as earlier turns: the badcase keeps only the record's own."""
    if not row.examples:
        return messages
    head = [m for m in messages[:1] if m.get("role") == "system"]
    return head + messages[len(head) + 2 * row.examples :]


# --- prompt trial ------------------------------------------------------------------------------------------


@dataclass
class PromptTrial:
    """Prompting alone vs fine-tuning, on the same records: what each fixes against the base model with the
    records' own prompt, and what each costs per answer (prompt tokens, seconds)."""

    base: EvaluationReport
    prompted: EvaluationReport
    tuned: EvaluationReport | None
    prompt_vs_base: Comparison
    tuned_vs_base: Comparison | None

    def as_dict(self) -> dict:
        return {
            "base": self.base.as_dict(),
            "prompted": self.prompted.as_dict(),
            "tuned": self.tuned.as_dict() if self.tuned else None,
            "prompt_vs_base": self.prompt_vs_base.as_dict(),
            "tuned_vs_base": self.tuned_vs_base.as_dict() if self.tuned_vs_base else None,
        }


def pick_examples(records: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """`n` example records, one per distinct reference answer in turn (every label shown before any twice)."""
    by_answer: dict[str, list[dict]] = {}
    for r in records:
        answer = reference_answer(r["messages"])
        if answer is not None:
            by_answer.setdefault(answer, []).append(r)
    rng = random.Random(seed)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_answer.items())]
    picked: list[dict] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return picked


def prompt_trial(
    store: Store,
    run: int,
    system_prompt: str,
    *,
    examples: int = 0,
    on: str = "trained",
    dataset: str | None = None,
    options: EvalOptions | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    author: str | None = None,
) -> PromptTrial:
    """The base model with an edited system prompt (and `examples` badcases from the run's training split)
    over a set (by default the badcases run `run` trained on), beside the base model with the records' own
    prompt and the run's tuned model: how many prompting alone fixes, how many tuning fixes. Evaluations
    of the base and the tuned model already done on the same set are reused."""
    with store.connect() as con:
        row = get_run(con, run)
    badcases = [r for r in read_export(row.export_dir).train if r.get("source", "badcase") == "badcase"]
    shots = pick_examples(badcases, examples, (options or EvalOptions()).seed) if examples else []
    reports = []
    for model, prompt, picked in (("base", None, []), (run, None, []), ("base", system_prompt, shots)):
        found = None if prompt is not None else _done_evaluation(store, model, on, row, dataset)
        if found is not None:
            reports.append(evaluation_report(store, found))
            continue
        reports.append(
            evaluate(
                store,
                model,
                on,
                dataset=dataset,
                set_run=run,
                options=options,
                system_prompt=prompt,
                examples=picked,
                progress=progress,
                should_stop=should_stop,
                author=author,
            )
        )
    base, tuned, prompted = reports
    return PromptTrial(
        base,
        prompted,
        tuned,
        compare_evaluations(store, base.evaluation.id, prompted.evaluation.id),
        compare_evaluations(store, base.evaluation.id, tuned.evaluation.id),
    )


def newest_finished_run(store: Store) -> int:
    """The id of the newest run that finished with an adapter."""
    from .train.runs import list_runs as runs_of

    for status in runs_of(store):
        if status.state == "done":
            return status.id
    raise WorkbenchError(
        "no finished training run yet: train one first (workbench train EXPORT), or name one with --run"
    )


def _done_evaluation(store: Store, model, on: str, run: RunRow, dataset: str | None) -> int | None:
    run_id = _run_id(model)
    source = dataset if on == "dataset" else str(Path(run.export_dir))
    with store.connect() as con:
        for e in sql.list_evaluations(con):
            if (
                e.status == "done"
                and e.run_id == run_id
                and e.eval_set == on
                and e.system_prompt is None
                and not e.examples
                and e.config.get("set_run") == run.id
                and (e.source == source or Path(e.source or "").resolve() == Path(source).resolve())
            ):
                return e.id
    return None


# --- records the model cannot learn -----------------------------------------------------------------------------


@dataclass
class HardRecord:
    """A training record the tuned model still gets wrong or learned last (highest loss), with the nearest
    training records that give a different answer: often a wrong label or a contradiction."""

    record_key: str
    record_id: int | None
    category: str | None
    question: str
    reference: str | None
    output: str | None
    verdict: str | None
    loss: float | None
    contradicting: list[dict]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def hard_records(
    store: Store,
    evaluation_id: int,
    *,
    limit: int = 20,
    neighbours: int = 3,
    record_id: int | None = None,
) -> list[HardRecord]:
    """The records of an evaluation (best: a run's on the set it trained on) it answers wrong, then the rest by
    loss, highest first; each with the `neighbours` most similar records of the set in its category (character
    n-grams, so Chinese works) whose reference answer differs. record_id: only that store record (the Review page's
    "why is it here"), compared against the whole set."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    with store.connect() as con:
        rows = [r for r in sql.results(con, evaluation_id) if r.output is not None]
    if not rows:
        return []
    questions = [_question(r.messages) for r in rows]
    ranked = sorted(range(len(rows)), key=lambda i: (rows[i].verdict != "wrong", -(rows[i].loss or 0.0)))
    if record_id is not None:
        ranked = [i for i in ranked if rows[i].record_id == record_id]
    ranked = ranked[:limit]
    if not ranked:
        return []
    try:
        matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).fit_transform(questions)
    except ValueError:  # no question has any text: nothing to compare
        matrix = None
    out = []
    for i in ranked:
        scores = linear_kernel(matrix[i], matrix).ravel() if matrix is not None else None
        others = (
            [
                j
                for j in scores.argsort()[::-1]
                if j != i and rows[j].category == rows[i].category and rows[j].reference != rows[i].reference
            ][:neighbours]
            if scores is not None
            else []
        )
        out.append(
            HardRecord(
                rows[i].record_key,
                rows[i].record_id,
                rows[i].category,
                questions[i],
                rows[i].reference,
                rows[i].output,
                rows[i].verdict,
                rows[i].loss,
                [
                    {
                        "record_key": rows[j].record_key,
                        "record_id": rows[j].record_id,
                        "question": questions[j],
                        "reference": rows[j].reference,
                        "similarity": round(float(scores[j]), 4),
                    }
                    for j in others
                ],
            )
        )
    return out


def _question(messages: list[dict]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


__all__ = [
    "EVAL_SETS",
    "default_pair",
    "Comparison",
    "EvalOptions",
    "EvaluationCancelled",
    "EvaluationReport",
    "FailuresSent",
    "HardRecord",
    "PromptTrial",
    "compare_evaluations",
    "evaluate",
    "evaluation_report",
    "evaluation_results",
    "hard_records",
    "judge",
    "list_evaluations",
    "newest_finished_run",
    "pick_examples",
    "prompt_trial",
    "resume_evaluation",
    "send_failures_to_badcases",
    "set_verdict",
]
