"""The training loop: config, data, model, optimizer, loop, evaluation, checkpoints, in that order.

`train()` is blocking and needs no store: it reads the export folder and writes the run folder (see
folder.py). The background worker and the tests call it directly. The clever parts live in small
named functions elsewhere: the loss mask in data.py, packing and the packed attention in packing.py,
scoring in evaluate.py. Under `accelerate launch` each process takes its share of every step.
"""

from __future__ import annotations

import math
import shutil
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WorkbenchError
from ..models import end_of_turn_ids, load_causal_lm, load_chat_tokenizer, pick_device, resolve_model
from .config import TrainConfig
from .data import ChatEncoder, encode_records, epoch_batches, first_turn_keys, micro_batches, read_export
from .evaluate import overfitting_warnings, sample, scorable, task_accuracy, validation_loss
from .folder import (
    ReadOnlyRunFolder,
    RunFolder,
    adapter_problem,
    now_iso,
    process_rank,
    sweep_unfinished_folders,
    written_whole,
)
from .packing import batch_loss, pack, register_packed_attention, supports_packing
from .trainer_state import load_trainer_state, save_trainer_state

Progress = Callable[[int, int, dict], None]
# TrainConfig.lr_scheduler -> transformers' schedule: each warms up linearly over the warmup steps first
SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class Cancelled(WorkbenchError):
    """The run was asked to stop; its latest checkpoint was saved, so `--resume` continues it."""


@dataclass
class TrainResult:
    run_dir: Path
    state: str
    steps: int
    total_steps: int
    epochs: float
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    train_accuracy: float | None
    best: dict | None
    adapter_dir: Path | None
    adapter_from: str | None
    tokens: int
    train_seconds: float
    tokens_per_s: float
    warnings: list[str] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["run_dir"], out["adapter_dir"] = str(self.run_dir), self.adapter_dir and str(self.adapter_dir)
        return out


@dataclass
class _State:
    """What a checkpoint must carry besides the weights to continue exactly where it stopped."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    best: dict | None = None
    evals_since_best: int = 0
    evals: list[dict] = field(default_factory=list)
    loss_since_eval: list[float] = field(default_factory=list)
    recent_losses: list[float] = field(default_factory=list)  # the last 20 steps', for the summary


def train(
    export_dir: str | Path,
    config: TrainConfig,
    run_dir: str | Path,
    progress: Progress | None = None,
    *,
    init_adapter: str | Path | None = None,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
    models_dir: Path | None = None,
) -> TrainResult:
    """Train a LoRA adapter on an export folder; everything the run produces goes into `run_dir`.

    init_adapter: an earlier run's adapter to continue training (None: a fresh adapter).
    resume: continue this run folder from its latest checkpoint.
    should_stop: polled after every step; when it says True the run saves a checkpoint and raises Cancelled.
    progress(step, total_steps, info): info has phase, epoch, loss, lr, tokens_per_s, eta_s.
    """
    folder = RunFolder(Path(run_dir)) if process_rank() == 0 else ReadOnlyRunFolder(Path(run_dir))
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.start_status()
    try:
        if process_rank() == 0:
            for done in sweep_unfinished_folders(folder.path) + sweep_unfinished_folders(folder.checkpoints):
                folder.log(f"cleaned up after an earlier process that was stopped while writing: {done}")
        result = _train(
            folder,
            Path(export_dir),
            config,
            progress or (lambda *a: None),
            init_adapter,
            resume,
            should_stop or folder.cancel_requested,
            models_dir,
        )
    except Cancelled as exc:
        folder.log(f"cancelled: {exc}")
        folder.update_status(state="cancelled", phase=None, finished_at=now_iso(), error=str(exc))
        raise
    except BaseException as exc:
        folder.log(f"failed: {type(exc).__name__}: {exc}")
        folder.update_status(
            state="failed",
            phase=None,
            finished_at=now_iso(),
            error=str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}",
        )
        raise
    folder.update_status(state="done", phase=None, finished_at=now_iso(), step=result.steps)
    return result


def _train(
    folder: RunFolder,
    export_dir: Path,
    config: TrainConfig,
    progress: Progress,
    init_adapter,
    resume: bool,
    should_stop: Callable[[], bool],
    models_dir,
) -> TrainResult:
    from accelerate import Accelerator
    from transformers import get_scheduler

    # --- config and devices
    if config.threads:
        torch.set_num_threads(config.threads)
    device, dtype = pick_device(config.device)
    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision="bf16" if dtype == torch.bfloat16 else "no"
    )
    main_process = accelerator.is_main_process
    say = folder.log if main_process else (lambda message: None)
    torch.manual_seed(config.seed)
    folder.update_status(phase="loading")

    # --- data
    export = read_export(export_dir)
    tokenizer = load_chat_tokenizer(config.base_model, models_dir, config.chat_template)
    encoder = ChatEncoder(tokenizer, end_of_turn_ids(config.base_model, models_dir))
    train_set = encode_records(encoder, export.train, config.max_length)
    val_set = encode_records(encoder, export.val, config.max_length)
    say(f"export {export.name} ({export.folder}), hash {export.hash}")
    for split, records, encoded in (("train", export.train, train_set), ("val", export.val, val_set)):
        say(
            f"{split}: {len(records)} records -> {len(encoded.examples)} examples, {encoded.tokens:,} tokens"
            + "".join(
                f"; left out {n}: {why} (lines {encoded.skipped_lines[why]})"
                for why, n in encoded.skipped.items()
            )
        )
    if not train_set.examples:
        raise WorkbenchError(
            f"nothing to train on in {export.folder}/train.jsonl: "
            + ("; ".join(f"{n} {why}" for why, n in train_set.skipped.items()) or "it is empty")
        )
    scored_val = sample(scorable(export.val, export.contracts), config.eval_max_records, config.seed)
    scored_train = sample(scorable(export.train, export.contracts), len(scored_val), config.seed + 1)
    scored_val = [r for r in scored_val if _fits(encoder, r, config.max_length)]
    scored_train = [r for r in scored_train if _fits(encoder, r, config.max_length)]
    use_accuracy = config.eval_accuracy and bool(scored_val)

    # --- model
    started = time.perf_counter()
    model = load_causal_lm(config.base_model, models_dir, dtype=dtype)
    say(
        f"base model {resolve_model(config.base_model, models_dir)} loaded in {time.perf_counter() - started:.1f} s "
        f"({device}, {str(dtype).replace('torch.', '')}, {torch.get_num_threads()} CPU threads)"
    )
    packed, why_not = supports_packing(model.config)
    if packed:
        register_packed_attention()
    else:
        say(f"padded batches instead of packed rows: {why_not}")
    model = _attach_lora(model, config, init_adapter, say)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_set.examples) / config.batch_size)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    warmup = int(config.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        SCHEDULERS[config.lr_scheduler], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    state = _State()
    if resume:
        state = _load_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, say)
    folder.update_status(
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        phase="training",
        step=state.step,
        train_examples=len(train_set.examples),
        val_examples=len(val_set.examples),
    )
    say(
        f"training {total_steps} steps ({total_steps / steps_per_epoch:.2f} epochs of {steps_per_epoch}), "
        f"batch {config.batch_size}, lr {config.learning_rate:g} ({config.lr_scheduler}, {warmup} warmup steps), "
        f"{sum(p.numel() for p in trainable):,} trainable parameters"
        + (
            f"; accuracy on {len(scored_val)} validation and {len(scored_train)} training records"
            if use_accuracy
            else ""
        )
    )

    def evaluate(step: int) -> dict:
        folder.update_status(phase="evaluating")
        unwrapped = accelerator.unwrap_model(model)
        row = {
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            "kind": "eval",
            "train_loss": _mean(state.loss_since_eval),
            "val_loss": validation_loss(
                unwrapped,
                val_set.examples,
                max_tokens=config.micro_batch_tokens,
                device=accelerator.device,
                packed=packed,
                autocast=accelerator.autocast,
            ),
        }
        if use_accuracy:
            for side, records in (("val", scored_val), ("train", scored_train)):
                if records:
                    acc = task_accuracy(
                        unwrapped,
                        encoder,
                        records,
                        export.contracts,
                        max_new_tokens=config.eval_max_new_tokens,
                        device=accelerator.device,
                    )
                    row[f"{side}_accuracy"], row[f"{side}_valid"], row[f"{side}_n"] = (
                        acc.accuracy,
                        acc.valid_rate,
                        acc.n,
                    )
                    row[f"{side}_detail"] = acc.as_dict()
        state.loss_since_eval = []
        folder.update_status(phase="training")
        return row

    # --- the loop
    batches_of_epoch: dict[int, list[list[int]]] = {}
    share = config.share_prompts and packed
    keys = first_turn_keys(train_set.examples, encoder.end_of_turn_ids) if share else None
    if keys:
        say(
            f"shared prompts: on; {len(set(keys))} distinct first turns among {len(keys)} conversations, each "
            f"laid once per step"
        )
    stopped_early = False
    world, rank = accelerator.num_processes, accelerator.process_index
    window: list[tuple[float, int]] = []
    loop_started = time.perf_counter()
    first_step = state.step
    model.train()
    while state.step < total_steps:
        epoch, index = divmod(state.step, steps_per_epoch)
        if epoch not in batches_of_epoch:
            batches_of_epoch = {
                epoch: epoch_batches(len(train_set.examples), config.batch_size, config.seed, epoch)
            }
        chosen = batches_of_epoch[epoch][index]
        batch = [train_set.examples[i] for i in chosen]
        batch_keys = [keys[i] for i in chosen] if keys else None
        lr = scheduler.get_last_lr()[0]  # the rate this step uses
        t0 = time.perf_counter()
        loss = _train_step(
            model, optimizer, scheduler, accelerator, batch, batch_keys, config, packed, world, rank
        )
        seconds = time.perf_counter() - t0
        state.step += 1
        batch_tokens = sum(len(e) for e in batch)
        state.tokens += batch_tokens
        state.train_seconds += seconds
        state.loss_since_eval.append(loss)
        state.recent_losses = (state.recent_losses + [loss])[-20:]
        window = (window + [(seconds, batch_tokens)])[-20:]
        tokens_per_s = sum(n for _, n in window) / max(1e-9, sum(s for s, _ in window))
        row = {
            "step": state.step,
            "epoch": round(state.step / steps_per_epoch, 4),
            "loss": round(loss, 5),
            "lr": lr,
            "tokens": batch_tokens,
            "tokens_per_s": round(tokens_per_s, 1),
            "step_s": round(seconds, 3),
        }
        elapsed = time.perf_counter() - loop_started
        eta = elapsed / (state.step - first_step) * (total_steps - state.step)
        smooth = round(_mean(state.recent_losses), 5)  # one step's loss jumps with its batch: show the trend
        if main_process:
            folder.append_metrics(row)
            folder.update_status(
                step=state.step,
                epoch=row["epoch"],
                loss=smooth,
                lr=lr,
                tokens_per_s=row["tokens_per_s"],
                eta_s=round(eta, 1),
            )
        progress(state.step, total_steps, {**row, "loss": smooth, "phase": "training", "eta_s": eta})

        at_epoch_end = state.step % steps_per_epoch == 0
        due = (state.step % config.eval_every_steps == 0) if config.eval_every_steps else at_epoch_end
        if val_set.examples and (due or state.step == total_steps):
            if main_process:
                progress(state.step, total_steps, {"phase": "evaluating"})
                scores = evaluate(state.step)
                improved = _is_better(scores, state.best)
                if improved:
                    state.best = {
                        k: scores.get(k)
                        for k in ("step", "val_loss", "val_accuracy", "val_n", "train_accuracy")
                    }
                    state.evals_since_best = 0
                else:
                    state.evals_since_best += 1
                scores["best"] = improved
                state.evals.append({k: v for k, v in scores.items() if not k.endswith("_detail")})
                folder.append_metrics(scores)
                say(
                    "eval at step {step}: val loss {vl}, val accuracy {va}, train accuracy {ta}{b}".format(
                        step=state.step,
                        vl=_fmt(scores.get("val_loss")),
                        va=_fmt(scores.get("val_accuracy")),
                        ta=_fmt(scores.get("train_accuracy")),
                        b=" (best so far)" if improved else "",
                    )
                )
                _save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
                folder.update_status(best=state.best)
                stop = (
                    bool(config.early_stopping_patience)
                    and state.evals_since_best >= config.early_stopping_patience
                )
            else:
                stop = False
            stop = _broadcast(stop, accelerator)
            if stop:
                say(f"early stopping: {state.evals_since_best} evaluations without a better validation score")
                stopped_early = True
                break
        elif config.save_every_steps and state.step % config.save_every_steps == 0 and main_process:
            _save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
        if _broadcast(should_stop(), accelerator):
            if main_process:
                _save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
            raise Cancelled(
                f"stopped at step {state.step} of {total_steps}; `workbench train --resume` continues it"
            )

    # --- the adapter
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    adapter_from = "last"
    if config.final_adapter == "best" and state.best and state.best["step"] != state.step:
        best_dir = folder.checkpoints / f"step-{state.best['step']:06d}"
        if (best_dir / "adapter_model.safetensors").exists():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(unwrapped, load_file(best_dir / "adapter_model.safetensors"))
            adapter_from = f"best: step {state.best['step']}"
    elif state.best and state.best["step"] == state.step:
        adapter_from = f"best: step {state.step}, the last"
    result_warnings = overfitting_warnings(state.evals, config.overfit_gap)
    if main_process:
        with written_whole(folder.adapter) as tmp:  # merge and --from-run take an adapter/ folder as finished
            unwrapped.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        for message in result_warnings:
            say(message)
        say(f"adapter ({adapter_from}) written to {folder.adapter}")
    last_eval = state.evals[-1] if state.evals else {}
    result = TrainResult(
        run_dir=folder.path,
        state="done",
        steps=state.step,
        total_steps=total_steps,
        epochs=round(state.step / steps_per_epoch, 4),
        train_loss=_mean(state.recent_losses),
        val_loss=last_eval.get("val_loss"),
        val_accuracy=last_eval.get("val_accuracy"),
        train_accuracy=last_eval.get("train_accuracy"),
        best=state.best,
        adapter_dir=folder.adapter,
        adapter_from=adapter_from,
        tokens=state.tokens,
        train_seconds=round(state.train_seconds, 2),
        tokens_per_s=round(state.tokens / state.train_seconds, 1) if state.train_seconds else 0.0,
        warnings=result_warnings,
        stopped_early=stopped_early,
    )
    if main_process:
        from .folder import write_json_atomic

        write_json_atomic(
            folder.report_path,
            {
                **result.as_dict(),
                "evals": state.evals,
                "config": config.to_dict(),
                "export": {"folder": str(export.folder), "name": export.name, "hash": export.hash},
                "skipped": {"train": dict(train_set.skipped), "val": dict(val_set.skipped)},
            },
        )
        folder.update_status(warnings=result_warnings, adapter=str(folder.adapter), adapter_from=adapter_from)
    return result


def _train_step(
    model,
    optimizer,
    scheduler,
    accelerator,
    batch,
    keys,
    config: TrainConfig,
    packed: bool,
    world: int,
    rank: int,
) -> float:
    """One optimizer step over `batch`; returns its loss (weighted mean cross-entropy over trained tokens).
    keys: each conversation's first turn when shared prompts are on (their conversations stay together).

    The loss is normalised by the trained tokens of the whole step, so splitting the step into
    micro-batches (or over processes) changes nothing but memory use.
    """
    trained = sum(e.trained_tokens for e in batch)
    mine = batch[rank::world]
    my_keys = keys[rank::world] if keys else None
    weight = 1.0
    if not mine:  # fewer conversations than processes: take part with a zero-weight copy
        mine, my_keys, weight = batch[:1], keys[:1] if keys else None, 0.0
    groups = micro_batches(mine, config.micro_batch_tokens, my_keys)
    total = 0.0
    for k, group in enumerate(groups):
        sync = accelerator.no_sync(model) if world > 1 and k < len(groups) - 1 else nullcontext()
        with sync, accelerator.autocast():
            packed_batch = pack(group, share_prefixes=config.share_prompts and packed)
            loss_sum, _ = batch_loss(model, packed_batch.to(accelerator.device), packed=packed)
            # DDP averages gradients over processes; scaling by `world` makes that a sum over the step.
            loss = loss_sum * (weight * world / trained)
            accelerator.backward(loss)
        total += loss_sum.item() * weight
    if config.max_grad_norm:
        accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if world > 1:
        total = float(accelerator.reduce(torch.tensor(total, device=accelerator.device), reduction="sum"))
    return total / trained


def _attach_lora(model, config: TrainConfig, init_adapter, say):
    from peft import LoraConfig, PeftModel, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft asks transformers a deprecated question
        if init_adapter:
            problem = adapter_problem(Path(init_adapter), tokenizer=False)
            if problem:
                raise WorkbenchError(
                    f"the adapter {init_adapter} to continue is incomplete: {problem}. It was "
                    f"probably cut short while being written; continue from a finished run's adapter"
                )
            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
            rank = model.peft_config["default"].r
            say(
                f"continuing the adapter {init_adapter} (rank {rank} as it was trained; lora_rank is not applied)"
            )
            return model
        torch.manual_seed(config.seed)
        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules,
            task_type="CAUSAL_LM",
        )
        say(
            f"fresh LoRA adapter: rank {config.lora_rank}, alpha {config.alpha}, targets {config.target_modules}"
        )
        return get_peft_model(model, lora)


def _is_better(scores: dict, best: dict | None) -> bool:
    """Better validation task accuracy wins, when the difference is more than the noise of counting right
    answers over n validation records (one standard error, sqrt(p(1-p)/n)): on 10 records 0.3 against 0.2 is
    one answer, a tie. Ties go to the lower validation loss, which also decides where no category has a
    contract. (A kept best without its n, from an older checkpoint, compares exactly.)"""
    if best is None:
        return True
    loss = scores.get("val_loss")
    loss_best = best.get("val_loss")
    lower_loss = (loss if loss is not None else math.inf) < (loss_best if loss_best is not None else math.inf)
    acc, acc_best = scores.get("val_accuracy"), best.get("val_accuracy")
    if acc is None and acc_best is None:
        return lower_loss
    if acc is None or acc_best is None:
        return acc is not None  # a score with accuracy beats one without
    n = min(scores.get("val_n") or 0, best.get("val_n") or 0)
    p = (acc + acc_best) / 2
    noise = math.sqrt(p * (1 - p) / n) if n else 0.0
    if abs(acc - acc_best) > noise + 1e-9:
        return acc > acc_best
    return lower_loss


def _save_checkpoint(folder: RunFolder, model, optimizer, scheduler, state: _State) -> Path:
    """Write checkpoints/step-N (adapter, optimizer, scheduler, RNG, counters), then keep only it and the best.
    The folder is written beside and renamed into place whole, with checkpoint.json last (older versions wrote
    it in place: a checkpoint without checkpoint.json is ignored)."""
    import json

    target = folder.checkpoints / f"step-{state.step:06d}"
    with written_whole(target) as tmp:
        model.save_pretrained(tmp)
        save_trainer_state(
            tmp,
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "state": dict(state.__dict__),
            },
        )
        (tmp / "checkpoint.json").write_text(
            json.dumps({"step": state.step, "best": state.best}), encoding="utf-8"
        )
    keep = {target.name} | ({f"step-{state.best['step']:06d}"} if state.best else set())
    for old in folder.checkpoints.iterdir():
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _load_checkpoint(folder: RunFolder, model, optimizer, scheduler, say) -> _State:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = folder.checkpoint_dirs()
    if not found:
        raise WorkbenchError(f"{folder.path} has no checkpoint to resume from; start the run again instead")
    latest = found[-1]
    saved = load_trainer_state(latest)  # first: a state it refuses changes nothing
    set_peft_model_state_dict(model, load_file(latest / "adapter_model.safetensors"))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    state = _State(**saved["state"])
    folder.truncate_metrics(state.step)
    say(f"resumed from {latest.name} (step {state.step})")
    return state


def _broadcast(flag: bool, accelerator) -> bool:
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])


def _fits(encoder: ChatEncoder, record: dict, max_length: int) -> bool:
    return bool(encode_records(encoder, [record], max_length).examples)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 5) if values else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
