"""CLI for the model registry and serving: `workbench models [add|remove]`, `workbench serve`."""

from __future__ import annotations

import click
from rich.table import Table

from .common import AUTHOR, dump_json, open_store, out


@click.group("models", invoke_without_command=True)
@click.option("--no-probe", is_flag=True, help="List without asking each endpoint whether it answers.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def models_cmd(ctx, no_probe, as_json):
    """The models the workbench can use: the embedded default and every registered one, with what each can do
    and whether it answers now."""
    if ctx.invoked_subcommand is not None:
        return
    from ..registry import list_models

    found = list_models(open_store(ctx), probe_health=not no_probe)
    if as_json:
        out.print(dump_json([m.as_dict() for m in found]), markup=False)
        return
    table = Table(title="models", title_justify="left")
    for name in ("name", "kind", "where", "model id", "can", "answers now"):
        table.add_column(name, overflow="fold")
    for m in found:
        health = (
            "-"
            if m.healthy is None
            else ("yes" if m.healthy else "no") + (f": {m.health}" if m.health else "")
        )
        table.add_row(m.name, m.kind, m.where or "", m.model_id or "", ", ".join(m.capabilities), health)
    out.print(table)


@models_cmd.command("add")
@click.argument("name")
@click.option("--endpoint", "url", help="An OpenAI-compatible server's URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", "model_id", help="The model id the endpoint serves (as its /v1/models lists it).")
@click.option(
    "--api-key-env",
    help="The NAME of the environment variable holding the API key (the key is never stored).",
)
@click.option("--max-concurrency", type=int, default=4, show_default=True, help="Requests in flight at once.")
@click.option("--path", type=click.Path(), help="A local transformers model folder or a .gguf file.")
@click.option("--no-check", is_flag=True, help="Register an endpoint without asking it first.")
@AUTHOR
@click.pass_context
def models_add_cmd(ctx, name, url, model_id, api_key_env, max_concurrency, path, no_check, author):
    """Register NAME: an endpoint (--endpoint URL --model ID) or a local model (--path DIR|FILE.gguf)."""
    from ..errors import WorkbenchError
    from ..registry import add_model

    if bool(url) == bool(path):
        raise WorkbenchError("give either --endpoint URL --model ID, or --path DIR|FILE.gguf")
    model = add_model(
        open_store(ctx),
        name,
        url=url,
        model_id=model_id,
        path=path,
        api_key_env=api_key_env,
        max_concurrency=max_concurrency,
        check=not no_check,
        author=author,
    )
    out.print(
        f"registered {model.name}: {model.kind} {model.where}"
        + (f" ({model.model_id})" if model.model_id else ""),
        markup=False,
    )


@models_cmd.command("remove")
@click.argument("name")
@click.pass_context
def models_remove_cmd(ctx, name):
    """Forget the registered model NAME (its files and server are left alone)."""
    from ..registry import remove_model

    remove_model(open_store(ctx), name)
    out.print(f"removed {name}", markup=False)


@click.command("serve")
@click.argument("run_id", type=int)
@click.option("--port", type=int, help="The port on 127.0.0.1 (default: a free one).")
@click.option("--name", help="The name it is registered as (default: run-RUN_ID).")
@click.pass_context
def serve_cmd(ctx, run_id, port, name):
    """Merge RUN's adapter into its base model (cached under the run), start `transformers serve` on it bound to
    127.0.0.1 and register it as a model, so the Playground and `evaluate endpoint:NAME` can use it."""
    from ..serve import serve_run

    served = serve_run(open_store(ctx), run_id, port=port, name=name)
    out.print(
        f"run {run_id} serves at {served.server.url} (model id {served.server.model_id}), registered as "
        f"{served.name}; process {served.server.pid} (stop it with: kill {served.server.pid})",
        markup=False,
    )


COMMANDS = [models_cmd, serve_cmd]
