"""CLI for the trainer: `workbench train`, `workbench runs`, `workbench merge`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..errors import WorkbenchError
from ..train import runs
from ..train.config import PRESETS, SIZE_CAPS, help_texts, sized_values
from .common import cli_author, console, open_store, out, progress_bar

HELP = help_texts()


def _presets() -> str:
    return "; ".join(f"{name} {v['epochs']:g} epochs, rank {v['lora_rank']}" for name, v in PRESETS.items())


@click.command("train")
@click.argument("export", required=False)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    help=f"Task type defaults (epochs, rank) as practised on models of billions of parameters: "
    f"{_presets()}. Default: the export's task type with the rank capped for the model (at most "
    f"{SIZE_CAPS[0][1]} under hidden size {SIZE_CAPS[0][0]}, {SIZE_CAPS[1][1]} under {SIZE_CAPS[1][0]}: rank "
    f"{sized_values('classification', 576)['lora_rank']} for classification on SmolLM2-135M), "
    f"and early stopping on validation accuracy when the export has output contracts.",
)
@click.option("--from-run", "from_run", type=int, help="Start from an earlier run (with --init).")
@click.option(
    "--init",
    type=click.Choice(runs.INITS),
    help="With --from-run: continue its adapter, or a fresh adapter on its base model.",
)
@click.option("--epochs", type=float, help=HELP["epochs"])
@click.option("--max-steps", type=int, help=HELP["max_steps"])
@click.option("--lr", "learning_rate", type=float, help=HELP["learning_rate"])
@click.option("--rank", "lora_rank", type=int, help=HELP["lora_rank"])
@click.option("--batch-size", type=int, help=HELP["batch_size"])
@click.option("--max-length", type=int, help=HELP["max_length"])
@click.option("--model", "base_model", help=HELP["base_model"])
@click.option("--chat-template", help=HELP["chat_template"])
@click.option("--seed", type=int, help=HELP["seed"])
@click.option("--eval-every", "eval_every_steps", type=int, help=HELP["eval_every_steps"])
@click.option("--early-stopping", "early_stopping_patience", type=int, help=HELP["early_stopping_patience"])
@click.option("--device", help=HELP["device"])
@click.option("--threads", type=int, help=HELP["threads"])
@click.option("--resume", "resume_id", type=int, help="Continue run RUN from its latest checkpoint.")
@click.option(
    "--launcher",
    help="Start the worker with this command for several GPUs or nodes, e.g. "
    "'accelerate launch --num_processes 4' (default: one Python process).",
)
@click.option(
    "--detach", is_flag=True, help="Start the run in the background and return (watch: workbench runs)."
)
@click.option(
    "--show-mask", is_flag=True, help="Print a tokenised record with the trained tokens marked; no training."
)
@click.option("--record", "record_id", help="With --show-mask: the record id to show (default: the first).")
@click.pass_context
def train_cmd(
    ctx, export, preset, from_run, init, resume_id, launcher, detach, show_mask, record_id, **options
):
    """Train a LoRA adapter on EXPORT (an export folder or name) in a background run, and watch it."""
    store = open_store(ctx)
    if resume_id is not None:
        run_id = runs.resume_run(store, resume_id)
        out.print(f"run {run_id} resumed from its latest checkpoint")
    else:
        if not export:
            raise WorkbenchError(
                "name the export to train on: workbench train EXPORT (workbench exports lists them)"
            )
        export_dir = runs.resolve_export(store, export)
        if show_mask:
            _show_mask(export_dir, options.get("base_model"), options.get("chat_template"), record_id, store)
            return
        config = runs.config_for_export(export_dir, preset, models_dir=store.models_dir, **options)
        run_id = runs.start_run(
            store,
            export_dir,
            config,
            from_run=from_run,
            init=init,
            author=cli_author(),
            launcher=launcher,
        )
        start = runs.run_status(store, run_id).row
        how = (
            f"continuing run {from_run}'s adapter (rank {start.config['lora_rank']})"
            if start.init == "continue"
            else f"rank {start.config['lora_rank']}"
        )
        out.print(
            f"run {run_id} started: {export_dir.name}, {config.epochs:g} epoch{'s' if config.epochs != 1 else ''}, "
            f"{how}, lr {config.learning_rate:g}" + (f", preset {config.preset}" if config.preset else "")
        )
    if detach:
        out.print(
            f"training in the background in {store.runs_dir / str(run_id)}; watch it with `workbench runs {run_id}`"
        )
        return
    _watch(store, run_id)


def _show_mask(export_dir, base_model, chat_template, record_id, store) -> None:
    from ..train.data import preview_mask

    preview = preview_mask(
        export_dir,
        base_model=base_model,
        chat_template=chat_template,
        record_id=record_id,
        models_dir=store.models_dir,
    )
    out.print(
        f"record {preview.record_id} (line {preview.line} of its file): {preview.tokens} tokens, "
        f"{len(preview.trained)} trained; trained spans are inside ⟦ ⟧",
        markup=False,
    )
    out.print(preview.marked_text, markup=False)
    out.print(
        "trained tokens: " + " ".join(repr(t) + ("" if w == 1 else f"×{w:g}") for t, w in preview.trained),
        markup=False,
    )


def _watch(store, run_id: int) -> None:
    with progress_bar() as bar:
        task = bar.add_task(f"run {run_id}: starting", total=None)

        def show(status: runs.RunStatus) -> None:
            live = status.live
            phase = live.get("phase") or status.state
            text = f"run {run_id}: {phase}"
            if live.get("loss") is not None:
                text += f", epoch {live.get('epoch', 0):.2f}, loss {live['loss']:.3f}, {live.get('tokens_per_s', 0):.0f} tok/s"
            if status.eta_s:
                text += f", ETA {int(status.eta_s // 60)}m{int(status.eta_s % 60):02d}s"
            bar.update(task, description=text, completed=status.step, total=status.total_steps)

        try:
            final = runs.wait_for_run(store, run_id, show)
        except KeyboardInterrupt:
            console.print(f"stopping run {run_id} at the end of its current step ...")
            runs.cancel_run(store, run_id)
            final = runs.wait_for_run(store, run_id, show)
    out.print(_summary(final))
    if final.state == "failed":
        raise WorkbenchError(f"run {run_id} failed: {final.row.error or 'see ' + str(final.folder.log_path)}")


def _summary(status) -> Table:
    row = status.row
    table = Table(title=f"run {row.id}: {row.status}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("export", f"{row.export_name} ({(row.export_hash or '')[:10]})")
    table.add_row(
        "base model", row.base_model + (f" ({row.init} from run {row.parent_run})" if row.parent_run else "")
    )
    table.add_row("steps", f"{row.step or 0} of {row.total_steps or '?'} (epoch {row.epoch or 0:.2f})")
    live = status.live
    if row.status == "running" and live.get("tokens_per_s"):
        eta = status.eta_s or 0
        table.add_row(
            "now",
            f"{live.get('phase') or 'training'}, {live['tokens_per_s']:.0f} tokens/s, "
            f"ETA {int(eta // 60)}m{int(eta % 60):02d}s",
        )
    report = status.folder.report() or {}
    if report.get("tokens_per_s"):
        table.add_row(
            "speed", f"{report['tokens_per_s']:.0f} tokens/s over {report['train_seconds']:.0f} s of training"
        )
    table.add_row("train loss", _fmt(row.train_loss))
    if row.best_step is not None:
        table.add_row(
            "best (validation)",
            f"step {row.best_step}: loss {_fmt(row.val_loss)}, task accuracy "
            f"{_pct(row.val_accuracy)} (training sample {_pct(row.train_accuracy)})",
        )
    for warning in row.warnings or []:
        table.add_row("warning", warning)
    if row.adapter_dir:
        table.add_row("adapter", f"{row.adapter_dir} ({report.get('adapter_from', '')})")
    if row.error and row.status != "done":
        table.add_row("error", row.error)
    return table


def _when(stamp) -> str:
    """HH:MM for today, else the date: short enough for an 80-column table."""
    from datetime import date

    text = str(stamp)
    return text[11:16] if text[:10] == date.today().isoformat() else text[:10]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


@click.command("runs")
@click.argument("run_id", type=int, required=False)
@click.option("--cancel", is_flag=True, help="Stop RUN at the end of its current step (it stays resumable).")
@click.option("--lineage", is_flag=True, help="RUN's export and ancestor runs, with their adapters.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def runs_cmd(ctx, run_id, cancel, lineage, as_json):
    """List training runs, or show (or cancel) one."""
    store = open_store(ctx)
    if run_id is None:
        statuses = runs.list_runs(store)
        if as_json:
            out.print(
                json.dumps([s.as_dict() for s in statuses], ensure_ascii=False, default=str), markup=False
            )
            return
        table = Table("run", "status", "export", "from", "step", "loss", "val acc", "started")
        for s in statuses:
            r = s.row
            table.add_row(
                str(r.id),
                r.status,
                r.export_name or "",
                f"{r.init} {r.parent_run}" if r.parent_run else "",
                f"{s.step}/{s.total_steps or '?'}",
                _fmt(r.train_loss),
                _pct(r.val_accuracy),
                _when(r.created_at),
            )
        out.print(table)
        return
    if cancel:
        status = runs.cancel_run(store, run_id)
        out.print(
            f"run {run_id}: {status.state}"
            + (" (stops at the end of its current step)" if status.state == "running" else "")
        )
        return
    if lineage:
        chain = runs.run_lineage(store, run_id)
        out.print(
            json.dumps(chain, ensure_ascii=False, default=str, indent=None if as_json else 1), markup=False
        )
        return
    status = runs.run_status(store, run_id)
    if as_json:
        out.print(
            json.dumps(
                {**status.as_dict(), "report": status.folder.report()}, ensure_ascii=False, default=str
            ),
            markup=False,
        )
        return
    out.print(_summary(status))


@click.command("merge")
@click.argument("run_id", type=int)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Where to write (default: the run's merged/)."
)
@click.pass_context
def merge_cmd(ctx, run_id, out_dir):
    """Write RUN's base model with its adapter merged in: a plain transformers model folder."""
    store = open_store(ctx)
    target = runs.merge_run(store, run_id, out_dir, progress=lambda stage: console.print(stage))
    out.print(f"merged model written to {target}")


COMMANDS = [train_cmd, runs_cmd, merge_cmd]
