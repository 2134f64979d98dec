"""Starting, running and resuming an evaluation: the set frozen in the store, the model loaded with the
store closed, answers generated and scored in chunks, each saved in a short transaction."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import roles
from ..contracts import Contract
from ..errors import EmptySelectionError, WorkbenchError
from ..models import EMBEDDED_MODEL
from ..processes import pid_exists
from ..store import Store
from ..store import evaluations as sql
from ..store.runs import RunRow, get_run
from ..train.data import ChatEncoder, SkipRecord
from .judge import judge
from .options import EVAL_SETS, EvalOptions, EvaluationCancelled, Progress
from .results import EvaluationReport, evaluation_report
from .sets import contracts_for, item_of, read_set, sample_items, with_prompt


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
    roles.require(store, "evaluate")
    options = options or EvalOptions()
    if on not in EVAL_SETS:
        raise WorkbenchError(f"unknown eval set {on!r}; use one of {', '.join(EVAL_SETS)}")
    run_id = run_id_of(model)
    with store.connect() as con:
        run = get_run(con, run_id) if run_id is not None else None
        if set_run is None and run is not None:
            set_run = run.id
        set_run_row = get_run(con, set_run) if set_run is not None else None
        # a dataset needs no export (the store's contracts decide); a run's export gone missing is no obstacle then
        export_dir = (
            _export_dir(store, export, set_run_row) if on != "dataset" or export is not None else None
        )
        records, source = read_set(con, store, on, dataset=dataset, export=export_dir)
        contracts = contracts_for(con, export_dir)
    if run is not None and (
        run.status != "done" or not (Path(run.run_dir) / "adapter" / "adapter_config.json").is_file()
    ):
        raise WorkbenchError(
            f"run {run.id} has no finished adapter (it is {run.status}); evaluate a finished run"
        )
    items = [i for i in map(item_of, records) if i is not None]
    if system_prompt is not None or examples:
        shots = [s for s in map(item_of, examples) if s is not None]
        keys = {s["record_key"] for s in shots}
        items = [with_prompt(i, system_prompt, shots) for i in items if i["record_key"] not in keys]
    limit = options.limit if options.limit is not None else (200 if on == "general" else None)
    items = sample_items(items, limit, options.seed)
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
    roles.require(store, "evaluate")
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
    if row.status == "done":
        raise WorkbenchError(f"evaluation {evaluation_id} is done; nothing to resume")
    if row.status == "running" and row.pid and row.pid != os.getpid() and pid_exists(row.pid):
        raise WorkbenchError(f"evaluation {evaluation_id} is still running in process {row.pid}")
    with store.transaction() as con:
        sql.update_evaluation(con, evaluation_id, status="running", pid=os.getpid(), error=None)
    return _run(store, evaluation_id, progress, should_stop)


def run_id_of(model: str | int) -> int | None:
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
        from ..train.runs import resolve_export

        return resolve_export(store, export)
    if run is not None:
        folder = Path(run.export_dir)
        if not (folder / "manifest.json").is_file():
            raise WorkbenchError(f"run {run.id}'s export {folder} is gone; name another with --export")
        return folder
    return None


def _base_model_of(run: RunRow | None) -> str:
    return run.base_model if run is not None else EMBEDDED_MODEL


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

    from ..models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer, pick_device

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

    from ..generation import generate_greedy

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
        # after the answers, each record's loss (a forward pass) and verdict take as long again on a CPU:
        # a stage of its own in the progress, then the save, so a bar never sits at "42/42" for a minute
        part = f" (records {k + 1:,}-{k + len(chunk):,} of {len(todo):,})" if len(todo) > len(chunk) else ""
        results = []
        for i, record in enumerate(chunk):
            tell(i, len(chunk), {"phase": f"loss and verdict of each answer{part}"})
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
        tell(len(chunk), len(chunk), {"phase": f"saving the results{part}"})
        with store.transaction() as con:
            sql.save_results(con, row.id, results)
        done += len(chunk)
        tell(done, total, {"phase": "saved"})


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
    from ..train.data import Example
    from ..train.validation import answer_loss

    try:
        ids, weights = encoder.encode(_only_final_answer_trained(record.messages), record.tools)
        loss = answer_loss(model, Example(ids, weights), device=device)
    except SkipRecord:
        loss = None
    out = {"seq": record.seq, "loss": loss, "prompt_tokens": len(prompt), "latency_s": seconds}
    if output_ids is None:  # loss only
        return {**out, "output": "", "verdict": "pending", "reason": "not generated (loss only)"}
    from ..generation import decode_answer

    answer = decode_answer(encoder.tok, output_ids)
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
