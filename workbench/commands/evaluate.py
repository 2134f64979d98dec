"""CLI for evaluation: `workbench evaluate`, `evaluations`, `compare`, `verdict`, `failures`, `prompt-trial`, `loop`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..errors import WorkbenchError
from .common import cli_author, console, open_store, out, progress_bar

SETS = ("val", "trained", "general")


def _help(name: str) -> str:
    from ..evaluate import EvalOptions

    return EvalOptions.help_text(name)


def _options(
    limit, batch_size, max_new_tokens, no_share_prefix, device, threads, no_cache=False, max_concurrency=None
):
    from ..evaluate import EvalOptions

    values = {
        "limit": limit,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "device": device,
        "threads": threads,
        "max_concurrency": max_concurrency,
        "share_prefix": False if no_share_prefix else None,
        "cache": False if no_cache else None,
    }
    return EvalOptions(**{k: v for k, v in values.items() if v is not None})


def _option_flags(command):
    for decorator in reversed(
        [
            click.option("--limit", type=int, help=_help("limit")),
            click.option("--batch-size", type=int, help=_help("batch_size")),
            click.option("--max-new-tokens", type=int, help=_help("max_new_tokens")),
            click.option(
                "--no-share-prefix", is_flag=True, help="Generate every prompt whole (for comparison)."
            ),
            click.option(
                "--no-cache",
                is_flag=True,
                help="Compute every answer and loss again instead of reusing this store's evaluation cache.",
            ),
            click.option("--device", help=_help("device")),
            click.option("--threads", type=int, help=_help("threads")),
            click.option("--max-concurrency", type=int, help=_help("max_concurrency")),
        ]
    ):
        command = decorator(command)
    return command


def _progress(bar, task):
    def show(done, total, info):
        bar.update(task, description=info.get("phase") or "evaluating", completed=done, total=total)

    return show


@click.command("evaluate")
@click.argument("model", required=False)
@click.option(
    "--on",
    "on",
    default="val",
    show_default=True,
    help="The eval set: val (the export's validation split), trained (the badcases the run trained on), "
    "general (general records the run did not train on: loss only), or a dataset's name (e.g. eval).",
)
@click.option(
    "--run", "set_run", type=int, help="Take the set from this run's export (for evaluating the base model)."
)
@click.option("--export", help="Take the set from this export instead (a folder or an export name).")
@click.option("--resume", "resume_id", type=int, help="Continue evaluation ID where it stopped.")
@_option_flags
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def evaluate_cmd(ctx, model, on, set_run, export, resume_id, as_json, **options):
    """Evaluate MODEL ('base', a run id, or endpoint:NAME, a registered endpoint) over an eval set; every record's output and verdict is stored."""
    from .. import evaluate

    store = open_store(ctx)
    with progress_bar() as bar:
        show = _progress(bar, bar.add_task("loading", total=None))
        if resume_id is not None:
            report = evaluate.resume_evaluation(store, resume_id, progress=show)
        else:
            if not model:
                raise WorkbenchError(
                    "say which model to evaluate: workbench evaluate base --on val --run N, or "
                    "workbench evaluate N (a run id)"
                )
            eval_set, dataset = (on, None) if on in SETS else ("dataset", on)
            report = evaluate.evaluate(
                store,
                model,
                eval_set,
                dataset=dataset,
                export=export,
                set_run=set_run,
                options=_options(**options),
                progress=show,
                author=cli_author(),
            )
    _print_report(report, as_json)


def _print_report(report, as_json: bool) -> None:

    if as_json:
        out.print(json.dumps(report.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    e = report.evaluation
    prompt = (
        " (prompt trial: edited system prompt" + (f", {e.examples} examples" if e.examples else "") + ")"
        if e.system_prompt is not None or e.examples
        else ""
    )
    table = Table(
        title=f"evaluation {e.id}: {e.model} on {e.eval_set} ({e.source}){prompt}, {e.status}",
        title_justify="left",
    )
    table.add_column("category", no_wrap=True)
    for name in ("records", "right", "wrong", "pending", "acc.", "loss", "prompt", "s/ans."):
        table.add_column(name)
    for c in report.categories:
        table.add_row(
            c.category,
            f"{c.done}/{c.n}" if c.done != c.n else str(c.n),
            str(c.right),
            str(c.wrong),
            str(c.pending),
            _pct(c.accuracy),
            _num(c.mean_loss, 3),
            _num(c.prompt_tokens, 0),
            _num(c.seconds_per_answer, 3),
        )
    out.print(table)
    out.print(report.cache.describe(), markup=False)
    if e.error:
        out.print(f"{e.status}: {e.error}", markup=False)


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@click.command("evaluations")
@click.argument("evaluation_id", type=int, required=False)
@click.option(
    "--results",
    "verdict",
    type=click.Choice(["all", "right", "wrong", "pending"]),
    help="With ID: list its records with that verdict.",
)
@click.option(
    "--hard",
    is_flag=True,
    help="With ID: the records it gets wrong or learned last, with the most "
    "similar records that answer differently (often a wrong label).",
)
@click.option(
    "--limit", type=int, default=20, show_default=True, help="Records listed with --results or --hard."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def evaluations_cmd(ctx, evaluation_id, verdict, hard, limit, as_json):
    """List evaluations, or report one (accuracy per category), its records, or its hard records."""
    from .. import evaluate

    store = open_store(ctx)
    if evaluation_id is None:
        reports = evaluate.list_evaluations(store)
        if as_json:
            out.print(
                json.dumps([r.as_dict() for r in reports], ensure_ascii=False, default=str), markup=False
            )
            return
        table = Table("id", "model", "set", "status", "records", "accuracy", "loss", "prompt")
        for r in reports:
            e = r.evaluation
            table.add_row(
                str(e.id),
                e.model,
                e.eval_set + (f" {e.source}" if e.eval_set == "dataset" else ""),
                e.status,
                f"{r.total.done}/{r.total.n}",
                _pct(r.total.accuracy),
                _num(r.total.mean_loss, 3),
                "trial" if e.system_prompt is not None or e.examples else "",
            )
        out.print(table)
        return
    if hard:
        records = evaluate.hard_records(store, evaluation_id, limit=limit)
        if as_json:
            out.print(
                json.dumps([h.as_dict() for h in records], ensure_ascii=False, default=str), markup=False
            )
            return
        for h in records:
            out.print(
                f"[{h.verdict}] record {h.record_key}, loss {_num(h.loss, 3)}: {h.question!r} → "
                f"said {h.output!r}, reference {h.reference!r}",
                markup=False,
            )
            for c in h.contradicting:
                out.print(
                    f"    similar ({c['similarity']:.2f}) record {c['record_key']}: {c['question']!r} → "
                    f"{c['reference']!r}",
                    markup=False,
                )
        return
    if verdict:
        rows = evaluate.evaluation_results(
            store, evaluation_id, verdict=None if verdict == "all" else verdict, limit=limit
        )
        if as_json:
            out.print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, default=str), markup=False)
            return
        table = Table("#", "record", "category", "verdict", "output", "reference", "why")
        for r in rows:
            why = (
                "breaks the contract"
                if r.contract_ok is False
                else "not the reference"
                if r.exact_match is False and r.verdict == "wrong"
                else ""
            )
            table.add_row(
                str(r.seq),
                r.record_key,
                r.category or "",
                r.human_verdict or r.verdict or "",
                (r.output or "")[:60],
                (r.reference or "")[:60],
                why,
            )
        out.print(table)
        return
    _print_report(evaluate.evaluation_report(store, evaluation_id), as_json)


@click.command("compare")
@click.argument("before", type=int)
@click.argument("after", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def compare_cmd(ctx, before, after, as_json):
    """Compare evaluation BEFORE with AFTER on the records both scored: fixed, regressed, still wrong."""
    from .. import evaluate

    comparison = evaluate.compare_evaluations(open_store(ctx), before, after)
    if as_json:
        out.print(json.dumps(comparison.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    for table in render_comparison(comparison):
        out.print(table)


def render_comparison(c) -> list:
    a, b = c.before, c.after
    tables = []
    for title, groups in (("category", c.categories + [c.total]), ("cluster", c.clusters)):
        if not groups:
            continue
        table = Table(
            title,
            "n",
            a.model,
            b.model,
            "fixed",
            "regressed",
            "still wrong",
            "pending",
            title=f"evaluation {a.id} ({a.model}) → {b.id} ({b.model}) on {b.eval_set}: accuracy per {title}",
            title_justify="left",
        )
        for g in groups:
            table.add_row(
                g.name,
                str(g.n),
                _pct(g.accuracy_before),
                _pct(g.accuracy_after),
                str(g.fixed),
                str(g.regressed),
                str(g.still_wrong),
                str(g.pending),
            )
        tables.append(table)
    if c.loss_before is not None and c.loss_after is not None:
        tables.append(
            f"mean loss of the reference answers: {c.loss_before:.4f} → {c.loss_after:.4f} "
            f"({c.loss_after - c.loss_before:+.4f})"
        )
    if c.only_before or c.only_after:
        tables.append(
            f"left out: {c.only_before} records only in {a.id}, {c.only_after} only in {b.id} "
            f"(or without an output yet)"
        )
    return tables


@click.command("verdict")
@click.argument("evaluation_id", type=int)
@click.argument("seq", type=int)
@click.argument("verdict", type=click.Choice(["better", "same", "worse", "both_bad", "clear"]))
@click.pass_context
def verdict_cmd(ctx, evaluation_id, seq, verdict):
    """A person's verdict on record SEQ of an evaluation (its output vs the reference); better and same count right."""
    from .. import evaluate

    evaluate.set_verdict(
        open_store(ctx),
        evaluation_id,
        seq,
        None if verdict == "clear" else verdict,
        author=cli_author(),
    )
    out.print(f"evaluation {evaluation_id}, record {seq}: {verdict}")


@click.command("failures")
@click.argument("evaluation_id", type=int)
@click.option(
    "--to", "dataset", default="badcases", show_default=True, help="The badcase dataset to send them to."
)
@click.option(
    "--status",
    default="fixed",
    show_default=True,
    help="Status of the new badcases ('fixed': the right answer is in, so the next export takes those its eval-leak guard does not leave out).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def failures_cmd(ctx, evaluation_id, dataset, status, as_json):
    """Send evaluation ID's failed records to a badcase dataset, the model's output kept as the bad output."""
    from .. import evaluate

    sent = evaluate.send_failures_to_badcases(
        open_store(ctx), evaluation_id, dataset, status=status, author=cli_author()
    )
    if as_json:
        out.print(json.dumps(sent.as_dict(), ensure_ascii=False), markup=False)
        return
    out.print(
        f"evaluation {evaluation_id}: {len(sent.created)} failures added to {dataset} as {status}"
        + (f", {len(sent.updated)} already there given their bad output" if sent.updated else "")
        + (f", {sent.already_sent} sent before" if sent.already_sent else "")
    )


@click.command("prompt-trial")
@click.option(
    "--system",
    "system_file",
    type=click.Path(dir_okay=False, exists=True),
    required=True,
    help="A text file with the edited system prompt.",
)
@click.option(
    "--examples",
    type=int,
    default=0,
    show_default=True,
    help="Examples from the run's training split put before each question (one per answer in turn).",
)
@click.option(
    "--run", "run_id", type=int, help="The tuned run to compare with (default: the newest finished run)."
)
@click.option(
    "--on", "on", default="trained", show_default=True, help="The set: trained, val, or a dataset's name."
)
@_option_flags
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def prompt_trial_cmd(ctx, system_file, examples, run_id, on, as_json, **options):
    """The base model with an edited system prompt: how many badcases prompting alone fixes, beside the tuned model."""
    from pathlib import Path

    from .. import evaluate

    store = open_store(ctx)
    run_id = run_id if run_id is not None else evaluate.newest_finished_run(store)
    eval_set, dataset = (on, None) if on in SETS else ("dataset", on)
    with progress_bar() as bar:
        trial = evaluate.prompt_trial(
            store,
            run_id,
            Path(system_file).read_text(encoding="utf-8"),
            examples=examples,
            on=eval_set,
            dataset=dataset,
            options=_options(**options),
            progress=_progress(bar, bar.add_task("loading", total=None)),
            author=cli_author(),
        )
    if as_json:
        out.print(json.dumps(trial.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    table = Table(
        "model and prompt",
        "eval.",
        "accuracy",
        "fixed",
        "regressed",
        "prompt tok.",
        "s/answer",
        title=f"prompt trial on {trial.base.evaluation.eval_set} ({trial.base.total.n} records); fixed and "
        f"regressed against the base model with the records' own prompt",
        title_justify="left",
    )
    base = trial.base.total
    table.add_row(
        "base, own prompt",
        str(trial.base.evaluation.id),
        _pct(base.accuracy),
        "",
        "",
        _num(base.prompt_tokens, 0),
        _num(base.seconds_per_answer, 3),
    )
    for name, report, c in (
        (
            f"base, edited prompt{f' + {examples} ex.' if examples else ''}",
            trial.prompted,
            trial.prompt_vs_base,
        ),
        (f"run {run_id}, own prompt", trial.tuned, trial.tuned_vs_base),
    ):
        table.add_row(
            name,
            str(report.evaluation.id),
            _pct(report.total.accuracy),
            str(c.total.fixed),
            str(c.total.regressed),
            _num(report.total.prompt_tokens, 0),
            _num(report.total.seconds_per_answer, 3),
        )
    out.print(table)


@click.command("loop")
@click.argument("badcases", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--general",
    "general_file",
    type=click.Path(dir_okay=False, exists=True),
    help="General chats to mix in and to measure forgetting on.",
)
@click.option("--category", help="Category of badcases that name none.")
@click.option(
    "--labels", help="Comma-separated labels: a labels contract for the category (the verdict's rule)."
)
@click.option("--name", default="loop", show_default=True, help="The export's name.")
@click.option(
    "--preset",
    type=click.Choice(["classification", "extraction", "qa", "copywriting", "creative"]),
    help="Training preset (default: from the export's task types).",
)
@click.option("--epochs", type=float, help="Training epochs (default: the preset's).")
@click.option("--model", "base_model", help="Base model (default: the embedded SmolLM2-135M-Instruct).")
@click.option("--val", type=float, default=0.2, show_default=True, help="Share held out for validation.")
@click.option(
    "--general-share",
    type=float,
    default=0.2,
    show_default=True,
    help="Share of general data in the training set (the rest of it is the general regression set).",
)
@_option_flags
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def loop_cmd(
    ctx,
    badcases,
    general_file,
    category,
    labels,
    name,
    preset,
    epochs,
    base_model,
    val,
    general_share,
    as_json,
    **options,
):
    """The whole loop: import → check → export → train → evaluate base and tuned → compare."""
    from ..cycle import TrainSettings, run_loop

    result = run_loop(
        open_store(ctx),
        badcases,
        general_file=general_file,
        category=category,
        labels=[x.strip() for x in labels.split(",") if x.strip()] if labels else None,
        export_name=name,
        val=val,
        general_share=general_share,
        train=TrainSettings(preset, {"epochs": epochs, "base_model": base_model}),
        options=_options(**options),
        progress=lambda stage: console.print(stage, markup=False),
        author=cli_author(),
    )
    if as_json:
        out.print(json.dumps(result.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    out.print(
        f"import #{result.import_id}: {result.imported} badcases; export {result.export_dir}; run {result.run_id}",
        markup=False,
    )
    for table in render_comparison(result.held_out):
        out.print(table)
    if result.general is not None:
        out.print(
            f"general set ({result.general.total.n} held-out records): mean loss {result.general.loss_before:.4f}"
            f" → {result.general.loss_after:.4f} ({result.general.loss_after - result.general.loss_before:+.4f})",
            markup=False,
        )


@click.command("rubric")
@click.argument("category", required=False)
@click.argument("rubric", required=False)
@click.option("--remove", is_flag=True, help="Remove CATEGORY's rubric.")
@click.pass_context
def rubric_cmd(ctx, category, rubric, remove):
    """What the LLM judge checks in CATEGORY's answers (a category a person judges); without RUBRIC, the rubrics."""
    from .. import evaluate

    store = open_store(ctx)
    if category and (rubric or remove):
        evaluate.set_rubric(store, category, None if remove else rubric, author=cli_author())
        out.print(f"{category}: " + ("rubric removed" if remove else "rubric set"), markup=False)
        return
    table = Table("category", "rubric")
    for name, text in evaluate.rubrics(store).items():
        if category in (None, name):
            table.add_row(name, text)
    out.print(table)


@click.command("judge")
@click.argument("evaluation_id", type=int)
@click.option(
    "--model", "judge", required=True, help="The judge: a registered model (endpoint:NAME or NAME)."
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Only these categories (default: every one with a rubric and no contract).",
)
@click.option("--again", is_flag=True, help="Ask again about records the judge already gave a verdict.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def judge_cmd(ctx, evaluation_id, judge, categories, again, as_json):
    """Ask an LLM judge for a suggested verdict on EVALUATION_ID's answers; a person's verdict overrides it, and
    the agreement between the two (Cohen's kappa) is printed beside it."""
    from dataclasses import asdict

    from .. import evaluate

    store = open_store(ctx)
    with progress_bar() as bar:
        task = bar.add_task("judging", total=None)
        report = evaluate.judge_evaluation(
            store,
            evaluation_id,
            judge,
            categories=list(categories) or None,
            again=again,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    agreement = evaluate.judge_agreement(store, evaluation_id)
    if as_json:
        out.print(
            json.dumps({"judged": asdict(report), "agreement": asdict(agreement)}, ensure_ascii=False),
            markup=False,
        )
        return
    out.print(
        f"{report.judge} judged {report.judged} records of evaluation {evaluation_id} "
        f"({', '.join(report.categories) or 'no category'}); {len(report.failed)} without a verdict",
        markup=False,
    )
    for seq, why in sorted(report.failed.items())[:5]:
        out.print(f"  record {seq}: {why}", markup=False)
    table = Table(
        "category", "judged by both", "agree", "Cohen's kappa", title="judge vs person", title_justify="left"
    )
    for c in agreement.categories:
        table.add_row(
            c.category,
            str(c.both),
            "-" if c.share is None else f"{c.share:.0%}",
            "-" if c.kappa is None else f"{c.kappa:.2f}",
        )
    out.print(table)
    if not agreement.total.both:
        out.print(
            "no record has both a judge's and a person's verdict yet: the judge's agreement is unknown (workbench verdict EVAL SEQ ...)",
            markup=False,
        )


COMMANDS = [
    evaluate_cmd,
    evaluations_cmd,
    compare_cmd,
    verdict_cmd,
    rubric_cmd,
    judge_cmd,
    failures_cmd,
    prompt_trial_cmd,
    loop_cmd,
]
