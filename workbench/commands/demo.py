"""`workbench demo` (build the demo workspace) and `workbench demo-loop` (the whole loop on it)."""

from __future__ import annotations

import json

import click

from .common import cli_author, console, open_store, out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


@click.command("demo")
@click.option(
    "--general-limit", type=int, help="Ask the base model only the first N shipped general prompts."
)
@click.option("--threads", type=int, help="CPU threads for torch (default: torch's choice).")
@click.pass_context
def demo_cmd(ctx, general_limit, threads):
    """Build the demo workspace (food-delivery support, English and Chinese) in an empty store; the base model's
    real wrong answers become the badcases."""
    from ..demo import build_demo
    from ..evaluate import EvalOptions

    report = build_demo(
        open_store(ctx),
        general_limit=general_limit,
        options=EvalOptions(threads=threads),
        progress=lambda stage: console.print(stage, markup=False),
        author=cli_author(),
    )
    total = report.base_evaluation.total
    out.print(
        f"demo workspace: {report.support} support prompts, {report.held_out} held out (eval), "
        f"{report.general} general records; the base model got {total.right} of {total.right + total.wrong} "
        f"support prompts right; {report.badcases} badcases; {report.seconds:.0f} s",
        markup=False,
    )


@click.command("demo-loop")
@click.option(
    "--epochs",
    type=float,
    help="Training epochs (default: 6, for the demo's ~90 badcases; see demo.DEMO_EPOCHS).",
)
@click.option("--preset", default="classification", show_default=True, help="TrainConfig preset.")
@click.option("--threads", type=int, help="CPU threads for torch, training and evaluation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def demo_loop_cmd(ctx, epochs, preset, threads, as_json):
    """The whole loop on the demo workspace (built first in an empty store): export → train → evaluate base and
    tuned → compare."""
    from ..demo import demo_loop
    from ..evaluate import EvalOptions

    result = demo_loop(
        open_store(ctx),
        preset=preset,
        options=EvalOptions(threads=threads),
        train_overrides={"epochs": epochs} if epochs else None,
        progress=lambda stage: console.print(stage, markup=False),
        author=cli_author(),
    )
    if as_json:
        out.print(json.dumps(result.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    h, b = result.held_out.total, result.badcases.total
    out.print(f"run {result.run_id} (export {result.export_dir})", markup=False)
    out.print(
        f"held-out accuracy: base {_pct(h.accuracy_before)} → tuned {_pct(h.accuracy_after)} "
        f"({h.n} records; fixed {h.fixed}, regressed {h.regressed}, still wrong {h.still_wrong})",
        markup=False,
    )
    for c in result.held_out.categories:
        out.print(f"  {c.name}: {_pct(c.accuracy_before)} → {_pct(c.accuracy_after)} ({c.n})", markup=False)
    out.print(
        f"badcases trained on: {b.fixed} of {b.fixed + b.still_wrong} fixed ({_pct(result.badcases_fixed_share)})"
        f", regressions {b.regressed}",
        markup=False,
    )
    if result.general is not None and result.general.loss_before is not None:
        out.print(
            f"general set ({result.general.total.n} held-out records): mean loss "
            f"{result.general.loss_before:.4f} → {result.general.loss_after:.4f} "
            f"({_pct(result.general_loss_change)})",
            markup=False,
        )
    out.print(
        "seconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items())
        + f"; total {sum(result.seconds.values()):.0f}",
        markup=False,
    )


COMMANDS = [demo_cmd, demo_loop_cmd]
