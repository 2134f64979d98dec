"""The CLI only calls the library: no command module opens the store or runs a store query itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

COMMANDS = sorted((Path(__file__).resolve().parent.parent / "workbench" / "commands").glob("*.py"))


def _store_reaches(path: Path) -> list[str]:
    """Where a command module opens the store (`.connect()`, `.transaction()`) or imports a store function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("connect", "transaction"):
                found.append(f"line {node.lineno}: .{node.func.attr}()")
        if isinstance(node, ast.ImportFrom) and node.level == 2 and (node.module or "").startswith("store"):
            # constants (WEIGHTS) and types (Selection, Store) are fine; a lowercase name is a query
            for alias in node.names:
                if alias.name[0].islower():
                    found.append(f"line {node.lineno}: from ..{node.module} import {alias.name}")
    return found


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_command_module_calls_only_the_library(path):
    assert _store_reaches(path) == []


def test_embed_dedup_and_cluster_are_separate_command_modules():
    from workbench.cli import COMMAND_MODULES

    names = {m.__name__.rsplit(".", 1)[1]: [c.name for c in m.COMMANDS] for m in COMMAND_MODULES}
    assert names["embed"] == ["embed"]
    assert names["dedup"] == ["dedup"]
    assert names["cluster"] == ["cluster"]


# The commands below used to open the store themselves; they now call one library function each.


def _import(runner, store_dir: str, path: Path, texts: list[str]) -> None:
    from workbench.cli import main

    path.write_text(
        "\n".join(
            json.dumps({"messages": [{"role": "user", "content": t}]}, ensure_ascii=False) for t in texts
        )
        + "\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["--store", store_dir, "import", str(path)])
    assert result.exit_code == 0, result.output


def test_dedup_runs_lists_each_run_and_the_summary_shows_the_kept_request(tmp_path):
    from workbench.cli import main

    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    _import(
        runner,
        store_dir,
        tmp_path / "b.jsonl",
        ["我要退款，订单号 123", "我要退款，订单号 456", "查询物流进度"],
    )
    first = runner.invoke(main, ["--store", store_dir, "dedup", "--no-semantic"])
    assert first.exit_code == 0, first.output
    assert (
        "我要退款，订单号" in first.stdout
    )  # the kept record's request, read through embed.request_snippets
    runs = runner.invoke(main, ["--store", store_dir, "dedup", "--runs"])
    assert runs.exit_code == 0, runs.output
    row = next(line for line in runs.stdout.splitlines() if line.strip().startswith("│ 1 "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == "1" and cells[3:6] == ["3", "1", "1"]  # records, groups, marked


def test_embed_text_choice_is_saved_and_config_shows_it(tmp_path):
    from workbench.cli import main

    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    _import(runner, store_dir, tmp_path / "b.jsonl", ["取消订单", "cancel my order"])
    missing = runner.invoke(main, ["--store", store_dir, "embed", "--model", str(tmp_path / "no-model")])
    assert missing.exit_code == 1
    before = runner.invoke(main, ["--store", store_dir, "config", "embed"])
    assert before.stdout == ""  # the failed choice saved nothing (no embed setting yet)
    embedded = runner.invoke(main, ["--store", store_dir, "embed", "--text", "user", "--json"])
    assert embedded.exit_code == 0, embedded.output
    assert json.loads(embedded.stdout)["text"] == "user"
    shown = runner.invoke(main, ["--store", store_dir, "config", "embed"])
    assert json.loads(shown.stdout.removeprefix("embed = "))["text"] == "user"


def test_cluster_show_json_lists_the_member_ids_of_a_stored_run(tmp_path):
    from tests.data_dedup_labels import PARAPHRASES_EN, PARAPHRASES_ZH
    from workbench.cli import main

    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    _import(runner, store_dir, tmp_path / "b.jsonl", PARAPHRASES_ZH[0] + PARAPHRASES_EN[4])
    made = runner.invoke(main, ["--store", store_dir, "cluster", "--k", "2", "--json"])
    assert made.exit_code == 0, made.output
    run = json.loads(made.stdout)
    shown = runner.invoke(main, ["--store", store_dir, "cluster", "--show", str(run["run_id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    stored = json.loads(shown.stdout)
    assert sorted(c["member_ids"] for c in stored["clusters"]) == sorted(
        sorted(c["member_ids"]) for c in run["clusters"]
    )
    assert sum(len(c["member_ids"]) for c in stored["clusters"]) == len(PARAPHRASES_ZH[0] + PARAPHRASES_EN[4])
