"""The command line as a user runs it: import, check (with --json and --fix), stats, rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main

from .conftest import chat


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(*args, store=None, check=False) -> Ran:
    """The command in this process (click's runner: the same parsing, output and exit status as the console
    script, without a Python start-up each time; test_console_script_is_installed runs the real one)."""
    env = {"WORKBENCH_STORE": str(store)} if store is not None else {}
    result = CliRunner().invoke(main, list(map(str, args)), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if check:
        assert ran.returncode == 0, ran.stderr
    return ran


@pytest.fixture
def messy(write_jsonl):
    return write_jsonl(
        [
            chat("Where is my order?", "delivery_status"),
            {"messages": [{"role": "USER", "content": "退款"}, {"role": "asistant", "content": "refund"}]},
            "{not json",
            "",
            chat("取消订单", ""),
        ]
    )


def test_check_json_gives_one_object_per_record_in_input_order(messy):
    result = run("check", messy, "--json")
    assert result.returncode == 1  # errors present
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["index"], o["line"], o["ok"]) for o in objects] == [
        (0, 1, True),
        (1, 2, False),
        (2, 3, False),
        (3, 5, False),
    ]
    assert objects[0]["issues"] == []
    by_code = {i["code"]: i for i in objects[1]["issues"]}
    assert by_code["role-case"]["turn"] == 1 and by_code["role-case"]["fix"] == "rename to 'user'"
    assert by_code["role-typo"]["severity"] == "error"
    assert objects[2]["issues"][0]["code"] == "invalid-json"
    assert set(objects[2]["issues"][0]) == {"code", "severity", "message", "turn", "fix"}
    assert [i["code"] for i in objects[3]["issues"]] == ["empty-answer"]


def test_check_exit_codes(write_jsonl, tmp_path):
    assert run("check", write_jsonl([chat("hi", "hello")], name="clean.jsonl")).returncode == 0
    assert run("check", write_jsonl([chat("hi")], name="bad.jsonl")).returncode == 1
    missing = run("check", tmp_path / "nope.jsonl")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_check_fix_writes_repaired_records(messy, tmp_path):
    out = tmp_path / "fixed.jsonl"
    result = run("check", messy, "--fix", out)
    assert result.returncode == 1
    fixed = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(fixed) == 3  # the unparseable line is reported, not written
    assert [m["role"] for m in fixed[1]["messages"]] == ["user", "assistant"]
    assert "1 unreadable" in result.stderr
    again = run("check", out, "--json")
    assert [json.loads(line)["ok"] for line in again.stdout.splitlines()] == [True, True, False]


def test_import_prints_a_summary_and_stats_counts_it(messy, tmp_path):
    store = tmp_path / "store"
    result = run("import", messy, "--category", "intent", store=store, check=True)
    assert "messages (3)" in result.stdout and "imported" in result.stdout
    assert "invalid-json 1" in result.stdout and "role-typo" in result.stdout
    stats = json.loads(run("stats", "--json", store=store, check=True).stdout)
    assert stats["records"] == 3 and stats["imports"] == 1
    assert ["intent", 3] in stats["categories"]
    assert {"role-case", "role-typo", "empty-answer"} <= {row[0] for row in stats["issues"]}
    human = run("stats", store=store, check=True).stdout
    assert "badcases" in human and "role-typo" in human


def test_rejects_lists_every_rejected_line(messy, tmp_path):
    store = tmp_path / "store"
    run("import", messy, store=store, check=True)
    rows = [json.loads(line) for line in run("rejects", "1", store=store, check=True).stdout.splitlines()]
    assert rows == [{"line": 3, "code": "invalid-json", "reason": rows[0]["reason"], "raw": "{not json"}]


def test_import_of_a_missing_file_is_one_clear_line(tmp_path):
    result = run("import", tmp_path / "nope.json", store=tmp_path / "store")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


def test_console_script_is_installed():
    exe = (
        Path(sys.executable).parent / "workbench"
    )  # beside the Python running the tests (make install puts it there)
    assert exe.exists(), f"no console script {exe}: install the project (make install)"
    assert "import" in subprocess.run([exe, "--help"], capture_output=True, text=True).stdout


def test_status_approves_records_for_export(messy, tmp_path):
    store = tmp_path / "store"
    run("import", messy, "--category", "intent", store=store, check=True)
    assert (
        "3 record(s) set to approved"
        in run("status", "approved", "--category", "intent", store=store, check=True).stdout
    )
    stats = json.loads(run("stats", "--json", store=store, check=True).stdout)
    assert stats["statuses"] == [["approved", 3]]
    assert "0 record(s)" in run("status", "approved", "--ids", "1", store=store, check=True).stdout


def test_the_cli_starts_without_torch_or_the_other_heavy_libraries():
    """`workbench --help` and every command that does not train or run a model load no torch (a second
    of start-up); a fresh interpreter, since this one has loaded everything."""
    code = "import sys, workbench.cli; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "workbench.cli" in loaded
    assert not {"torch", "transformers", "peft", "scipy", "sklearn", "pandas"} & loaded
