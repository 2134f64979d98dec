"""The training loop, top to bottom: config, data, model, optimizer, loop, evaluation, checkpoints, adapter.

`train()` is blocking and needs no store: it reads the export folder and writes the run folder (see
folder.py). The background worker and the tests call it directly. What is prepared before the first
step is in setup.py, checkpoints and the adapter in checkpoints.py, the result and report.json in
report.py; the clever parts live in small named functions elsewhere: the loss mask in data.py, packing
and the packed attention in packing.py, scoring in validation.py. Under `accelerate launch` each process
takes its share of every step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from ..errors import WorkbenchError
from .checkpoints import LoopState, load_checkpoint, restore_best, save_adapter, save_checkpoint
from .config import TrainConfig
from .data import epoch_batches, first_turn_keys, micro_batches
from .folder import ReadOnlyRunFolder, RunFolder, now_iso, process_rank, sweep_unfinished_folders
from .packing import batch_loss, pack
from .report import TrainResult, evaluation_line, rounded_mean, train_result, write_report
from .setup import accelerator_for, load_data, load_model
from .validation import evaluation_row, overfitting_warnings

__all__ = ["Cancelled", "TrainResult", "train"]

Progress = Callable[[int, int, dict], None]
# TrainConfig.lr_scheduler -> transformers' schedule: each warms up linearly over the warmup steps first
SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class Cancelled(WorkbenchError):
    """The run was asked to stop; its latest checkpoint was saved, so `--resume` continues it."""


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
    init_adapter: str | Path | None,
    resume: bool,
    should_stop: Callable[[], bool],
    models_dir: Path | None,
) -> TrainResult:
    """The run itself, in the order it happens; `train` keeps the run folder's status around it."""
    from transformers import get_scheduler

    # --- config and devices
    accelerator, device, dtype = accelerator_for(config)
    main_process = accelerator.is_main_process
    say = folder.log if main_process else (lambda message: None)
    torch.manual_seed(config.seed)
    folder.update_status(phase="loading")

    # --- data
    data = load_data(export_dir, config, models_dir, say)
    train_set, val_set = data.train_set, data.val_set
    use_accuracy = config.eval_accuracy and bool(data.scored_val)

    # --- model
    model, packed = load_model(config, models_dir, device, dtype, init_adapter, say)

    # --- optimizer and schedule
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_set.examples) / config.batch_size)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    warmup = int(config.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        SCHEDULERS[config.lr_scheduler], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    state = LoopState()
    if resume:
        state = load_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, say)
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
            f"; accuracy on {len(data.scored_val)} validation and {len(data.scored_train)} training records"
            if use_accuracy
            else ""
        )
    )

    # --- the loop
    batches_of_epoch: dict[int, list[list[int]]] = {}
    share = config.share_prompts and packed
    keys = first_turn_keys(train_set.examples, data.encoder.end_of_turn_ids) if share else None
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
        smooth = rounded_mean(state.recent_losses)  # one step's loss jumps with its batch: show the trend
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

        # --- evaluation and checkpoints
        at_epoch_end = state.step % steps_per_epoch == 0
        due = (state.step % config.eval_every_steps == 0) if config.eval_every_steps else at_epoch_end
        if val_set.examples and (due or state.step == total_steps):
            if main_process:
                progress(state.step, total_steps, {"phase": "evaluating"})
                folder.update_status(phase="evaluating")
                scores = evaluation_row(
                    accelerator.unwrap_model(model),
                    step=state.step,
                    epoch=round(state.step / steps_per_epoch, 4),
                    train_loss=rounded_mean(state.loss_since_eval),
                    val_examples=val_set.examples,
                    scored=(("val", data.scored_val), ("train", data.scored_train)) if use_accuracy else (),
                    encoder=data.encoder,
                    contracts=data.export.contracts,
                    max_tokens=config.micro_batch_tokens,
                    max_new_tokens=config.eval_max_new_tokens,
                    device=accelerator.device,
                    packed=packed,
                    autocast=accelerator.autocast,
                )
                state.loss_since_eval = []
                folder.update_status(phase="training")
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
                say(evaluation_line(scores, improved))
                save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
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
            save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
        if _broadcast(should_stop(), accelerator):
            if main_process:
                save_checkpoint(folder, accelerator.unwrap_model(model), optimizer, scheduler, state)
            raise Cancelled(
                f"stopped at step {state.step} of {total_steps}; `workbench train --resume` continues it"
            )

    # --- the adapter
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    adapter_from = restore_best(folder, unwrapped, config.final_adapter, state)
    result_warnings = overfitting_warnings(state.evals, config.overfit_gap)
    if main_process:
        save_adapter(folder, unwrapped, data.tokenizer)
        for message in result_warnings:
            say(message)
        say(f"adapter ({adapter_from}) written to {folder.adapter}")

    # --- the report
    result = train_result(
        folder,
        state,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        adapter_from=adapter_from,
        warnings=result_warnings,
        stopped_early=stopped_early,
    )
    if main_process:
        write_report(
            folder,
            result,
            state.evals,
            config,
            data.export,
            {"train": dict(train_set.skipped), "val": dict(val_set.skipped)},
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


def _broadcast(flag: bool, accelerator) -> bool:
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])
