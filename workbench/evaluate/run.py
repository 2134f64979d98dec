"""Starting, running and resuming an evaluation: the set frozen in the store, the model loaded with the
store closed, answers generated and scored in chunks, each saved in a short transaction."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .. import roles
from ..contracts import Contract
from ..errors import EmptySelectionError, WorkbenchError
from ..models import EMBEDDED_MODEL
from ..processes import pid_exists
from ..store import Store
from ..store import eval_cache as cache_sql
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
    known_answers: Mapping[str, dict] | None = None,
) -> EvaluationReport:
    """Evaluate `model` ('base', or a run id: its adapter) over an eval set and store every record's result.

    on: 'dataset' (the store's `dataset`, e.g. eval), 'val' (an export's validation split), 'trained' (the
    badcases a run trained on) or 'general' (general records the run did not train on: loss only, by default).
    The export is `export`, else that of `set_run`, else that of the run being evaluated.
    system_prompt / examples: a prompt trial; each record's system prompt is replaced and the examples
    (records) go before its question as earlier turns.
    should_stop() is asked between batches; a stopped evaluation raises EvaluationCancelled and resumes with
    `resume_evaluation`. base_model: the model 'base' means when no run names one (default: the embedded
    model). known_answers: answers this model gave before (the demo's, shipped as data), by `prompt_key` of the
    record, each a dict of output, output_tokens, loss, latency_s and prompt_tokens: they are judged now and
    stored; only the records without one are generated. Blocks until done; the store is open only to read the
    set and to write each chunk.
    """
    roles.require(store, "evaluate")
    options = options or EvalOptions()
    if on not in EVAL_SETS:
        raise WorkbenchError(f"unknown eval set {on!r}; use one of {', '.join(EVAL_SETS)}")
    endpoint = _endpoint_of(store, model, options)
    run_id = run_id_of(model) if endpoint is None else None
    if endpoint is not None and on == "general" and not options.generate:
        raise WorkbenchError(
            f"endpoint {endpoint.name!r} gives answers, not the loss the general set measures; "
            "evaluate it on a set with answers (--on val, or a dataset)"
        )
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
    if endpoint is not None:
        base_model = endpoint.model_id
    config = {
        "options": options.to_dict(),
        "contracts": {c: {"kind": k.kind, "spec": k.spec} for c, k in contracts.items()},
        "chat_template": (run or set_run_row).config.get("chat_template") if (run or set_run_row) else None,
        "adapter": str(Path(run.run_dir) / "adapter") if run is not None else None,
        "set_run": set_run,
        **({"endpoint": endpoint.as_config()} if endpoint is not None else {}),
    }
    with store.transaction() as con:
        evaluation_id = sql.insert_evaluation(
            con,
            model=f"run {run.id}"
            if run is not None
            else (f"endpoint:{endpoint.name}" if endpoint else "base"),
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
        if known_answers:
            sql.save_results(con, evaluation_id, _known_results(items, contracts, known_answers))
    return _run(store, evaluation_id, progress, should_stop)


def prompt_key(messages: Sequence[dict]) -> str:
    """What identifies a record's question for known answers: its messages before the final answer, as JSON."""
    return json.dumps(list(messages)[:-1], ensure_ascii=False, sort_keys=True)


def _known_results(items: list[dict], contracts: dict, known: Mapping[str, dict]) -> list[dict]:
    out = []
    for seq, item in enumerate(items):
        answer = known.get(prompt_key(item["messages"]))
        if answer is None:
            continue
        fields = ("output_tokens", "loss", "latency_s", "prompt_tokens")
        out.append(
            {
                "seq": seq,
                "output": answer["output"],
                **{k: answer.get(k) for k in fields},
                **judge(contracts.get(item["category"]), answer["output"], item["reference"] or ""),
            }
        )
    return out


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


def evaluation_models(store: Store) -> list[str]:
    """The models `evaluate` takes, as it names them: 'base' (the embedded model), 'run N' for each finished run
    with an adapter (newest first), 'endpoint:NAME' for each registered endpoint."""
    from ..registry import ENDPOINT_PREFIX, list_models
    from ..train import runs

    finished = [f"run {r.row.id}" for r in runs.list_runs(store) if r.state == "done" and r.row.adapter_dir]
    endpoints = [
        ENDPOINT_PREFIX + m.name for m in list_models(store, probe_health=False) if m.kind == "endpoint"
    ]
    return ["base", *finished, *endpoints]


def unfinished_evaluations(store: Store) -> list[sql.EvaluationRow]:
    """The evaluations `resume_evaluation` can continue, newest first: failed, cancelled, or running in a
    process that is gone."""
    with store.connect() as con:
        rows = sql.list_evaluations(con)
    return [
        r
        for r in rows
        if r.status in ("failed", "cancelled")
        or (r.status == "running" and not (r.pid and pid_exists(r.pid)))
    ]


def abandon_evaluation(store: Store, evaluation_id: int, pid: int, status: str, error: str | None) -> None:
    """An evaluation whose process `pid` ended without a word (killed): say so in the store, unless another
    process has taken it up since."""
    from datetime import datetime, timezone

    with store.transaction() as con:
        row = sql.get_evaluation(con, evaluation_id)
        if row.status == "running" and row.pid == pid:
            sql.update_evaluation(
                con, evaluation_id, status=status, error=error, finished_at=datetime.now(timezone.utc)
            )


def run_id_of(model: str | int) -> int | None:
    if isinstance(model, int):
        return model
    text = str(model).strip().lower()
    if text == "base":
        return None
    text = text.removeprefix("run").strip()
    if text.isdigit():
        return int(text)
    raise WorkbenchError(
        f"evaluate 'base', a run id or a registered endpoint as endpoint:NAME, not {model!r}"
    )


def _endpoint_of(store: Store, model: str | int, options: EvalOptions):
    """The registered endpoint `model` names ('endpoint:NAME'), with the options' concurrency; None for others."""
    from ..registry import ENDPOINT_PREFIX, endpoint_of

    if not isinstance(model, str) or not model.strip().lower().startswith(ENDPOINT_PREFIX):
        return None
    endpoint = endpoint_of(store, model.strip()[len(ENDPOINT_PREFIX) :])
    if options.max_concurrency is not None:
        endpoint.max_concurrency = options.max_concurrency
    return endpoint


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
    def tell(
        done: int, total: int, info: dict
    ) -> None:  # info names the evaluation (a watcher learns its id)
        if progress is not None:
            progress(done, total, {"evaluation": evaluation_id, **info})

    stop = should_stop or (lambda: False)
    started = time.perf_counter()
    with store.connect() as con:
        row = sql.get_evaluation(con, evaluation_id)
        todo = sql.unfinished_items(con, evaluation_id)
    try:
        if todo:
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
    except BaseException as exc:  # ours is a sentence for a person; anything else keeps its type's name
        error = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
        _finish(store, row, "failed", time.perf_counter() - started, error)
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
    from ..models import pick_device

    device, _dtype = pick_device(device)
    model = load_weights_for(row_base_model, adapter, models_dir=models_dir, device=device)
    return model, load_encoder_for(row_base_model, chat_template, models_dir=models_dir), device


def load_encoder_for(row_base_model: str, chat_template: str | None, *, models_dir: Path) -> ChatEncoder:
    """The ChatEncoder of an evaluation's model (its tokenizer and chat template), without the weights."""
    from ..models import end_of_turn_ids, load_chat_tokenizer

    name = None if row_base_model == EMBEDDED_MODEL else row_base_model
    tokenizer = load_chat_tokenizer(name, models_dir, chat_template)
    return ChatEncoder(tokenizer, end_of_turn_ids(name, models_dir))


def load_weights_for(row_base_model: str, adapter: str | None, *, models_dir: Path, device: str):
    """The base model in float32, with the run's adapter when there is one, on `device`, in eval mode."""
    import torch
    from transformers.utils import logging as hf_logging

    from ..models import load_causal_lm

    _check_adapter(adapter)
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

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, adapter)
    return model.to(device).eval()


def _check_adapter(adapter: str | None) -> None:
    if adapter and not (Path(adapter) / "adapter_config.json").is_file():
        raise WorkbenchError(f"the adapter {adapter} is gone; evaluate another run")


class _Model:
    """The evaluated model, loaded on first need: an evaluation whose answers and losses are all in the cache
    never loads it."""

    def __init__(self, row: sql.EvaluationRow, models_dir: Path, device: str, on_load: Callable[[], None]):
        self.row, self.models_dir, self.device, self.on_load = row, models_dir, device, on_load
        self._model = None

    def get(self):
        if self._model is None:
            self.on_load()
            self._model = load_weights_for(
                self.row.base_model,
                self.row.config.get("adapter"),
                models_dir=self.models_dir,
                device=self.device,
            )
        return self._model


def _generate_and_score(
    store: Store, row: sql.EvaluationRow, todo: list[sql.ResultRow], tell: Progress, stop: Callable[[], bool]
) -> None:
    if row.config.get("endpoint"):
        from .remote import answer_by_endpoint

        return answer_by_endpoint(store, row, todo, tell, stop)
    import torch

    from ..models import pick_device, resolve_model
    from .cache import CacheCounts, model_identity

    options = EvalOptions.from_dict(row.config.get("options") or {})
    contracts = {
        c: Contract(c, v["kind"], v.get("spec")) for c, v in (row.config.get("contracts") or {}).items()
    }
    generate = options.generate if options.generate is not None else row.eval_set != "general"
    total, done = row.records, row.records - len(todo)
    tell(done, total, {"phase": "loading the tokenizer"})
    if options.threads:
        torch.set_num_threads(options.threads)
    adapter, template = row.config.get("adapter"), row.config.get("chat_template")
    _check_adapter(adapter)
    encoder = load_encoder_for(row.base_model, template, models_dir=store.models_dir)
    device, _dtype = pick_device(options.device)
    identity = None
    if options.cache:
        tell(done, total, {"phase": "hashing the model for the cache"})
        name = None if row.base_model == EMBEDDED_MODEL else row.base_model
        identity = model_identity(
            store, resolve_model(name, store.models_dir), adapter, template, device, "float32"
        )
    model = _Model(row, store.models_dir, device, lambda: tell(done, total, {"phase": "loading the model"}))
    counts = CacheCounts.from_dict(row.config.get("cache"))
    budgets = _contract_budgets(todo, contracts, encoder, options.max_new_tokens)
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
        fresh: list[tuple] = []  # what this chunk computed, for the cache
        if generate:
            picked_budgets = [budgets.get(r.category, options.max_new_tokens) for r in chunk]
            fresh += _answers(
                store,
                model,
                encoder,
                identity,
                prompts,
                picked_budgets,
                options,
                outputs,
                seconds,
                counts,
                lambda n, phase, base=done: tell(base + n, total, {"phase": phase}),
            )
        # after the answers, each record's loss (a forward pass) and verdict take as long again on a CPU:
        # a stage of its own in the progress, then the save, so a bar never sits at "42/42" for a minute
        part = f" (records {k + 1:,}-{k + len(chunk):,} of {len(todo):,})" if len(todo) > len(chunk) else ""
        losses, new_losses = _losses(
            store,
            model,
            encoder,
            identity,
            chunk,
            counts,
            lambda i, n=len(chunk), part=part: tell(
                i, n, {"phase": f"loss and verdict of each answer{part}"}
            ),
        )
        fresh += new_losses
        results = [
            _result_of(
                record, contracts.get(record.category), encoder, prompts[i], outputs[i], seconds[i], losses[i]
            )
            for i, record in enumerate(chunk)
        ]
        tell(len(chunk), len(chunk), {"phase": f"saving the results{part}"})
        with store.transaction() as con:
            sql.save_results(con, row.id, results)
            if identity is not None:
                cache_sql.remember(con, fresh)
            row.config["cache"] = counts.as_dict()
            sql.update_evaluation(con, row.id, config=row.config)
        done += len(chunk)
        tell(done, total, {"phase": "saved"})


def _answers(
    store: Store,
    model: _Model,
    encoder: ChatEncoder,
    identity: str | None,
    prompts: list[list[int]],
    budgets: list[int],
    options: EvalOptions,
    outputs: list,
    seconds: list,
    counts,
    progress: Callable[[int, str], None],
) -> list[tuple]:
    """Fill outputs and seconds for a chunk's prompts: from the cache where it has them, else generated (the
    cache's new rows are returned). Answers under a contract are short: each category's get a budget from its
    own references (a label category's a few tokens, not the JSON category's beside it); one call per budget."""
    from ..generation import generate_greedy
    from .cache import answer_key

    stop_ids = sorted(encoder.end_of_turn_ids)
    keys = [
        answer_key(identity, p, b, stop_ids) if identity else None
        for p, b in zip(prompts, budgets, strict=True)
    ]
    found = _cached(store, keys)
    by_budget: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        if key in found:
            outputs[i], seconds[i] = found[key].output_ids, found[key].seconds
        else:
            by_budget.setdefault(budgets[i], []).append(i)
    hits = len(prompts) - sum(map(len, by_budget.values()))
    counts.answers += hits
    counts.answers_of += len(prompts)
    if hits:
        progress(hits, "answers from the cache")
    pad = encoder.tok.pad_token_id if encoder.tok.pad_token_id is not None else 0
    made, started = [], hits
    for budget, picked in sorted(by_budget.items()):
        answers = generate_greedy(
            model.get(),
            [prompts[i] for i in picked],
            max_new_tokens=budget,
            stop_ids=stop_ids,
            pad_id=pad,
            device=model.device,
            batch_size=options.batch_size,
            share_prefix=options.share_prefix,
            progress=lambda n, _t, base=started: progress(base + n, "generating"),
        )
        started += len(picked)
        for i, answer in zip(picked, answers, strict=True):
            outputs[i], seconds[i] = answer.ids, answer.seconds
            if keys[i]:
                made.append((keys[i], "answer", answer.ids, answer.seconds, None))
    return made


def _losses(
    store: Store,
    model: _Model,
    encoder: ChatEncoder,
    identity: str | None,
    chunk: list[sql.ResultRow],
    counts,
    progress: Callable[[int], None],
) -> tuple[list[float | None], list[tuple]]:
    """Each record's loss of its final answer (the reference): from the cache, else a forward pass; with the
    cache's new rows."""
    from ..train.data import Example
    from ..train.validation import answer_loss
    from .cache import loss_key

    encoded: list[tuple[list[int], list[float]] | None] = []
    for record in chunk:
        try:
            encoded.append(encoder.encode(_only_final_answer_trained(record.messages), record.tools))
        except SkipRecord:
            encoded.append(None)
    keys = [loss_key(identity, *e) if identity and e else None for e in encoded]
    found = _cached(store, keys)
    losses: list[float | None] = []
    made = []
    for i, (pair, key) in enumerate(zip(encoded, keys, strict=True)):
        progress(i)
        if pair is None:
            losses.append(None)
            continue
        counts.losses_of += 1
        if key in found:
            counts.losses += 1
            losses.append(found[key].loss)
            continue
        loss = answer_loss(model.get(), Example(*pair), device=model.device)
        losses.append(loss)
        if key:
            made.append((key, "loss", None, None, loss))
    return losses, made


def _cached(store: Store, keys: list[str | None]) -> dict:
    wanted = [k for k in keys if k]
    if not wanted:
        return {}
    with store.connect() as con:
        return cache_sql.cached(con, wanted)


def _result_of(
    record: sql.ResultRow,
    contract: Contract | None,
    encoder: ChatEncoder,
    prompt: list[int],
    output_ids: list[int] | None,
    seconds: float | None,
    loss: float | None,
) -> dict:
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
