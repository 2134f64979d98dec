"""The demo workspace: built in real stores by a tiny generated llama (the embedded model's tokenizer and
chat template), deterministic, its badcases the model's real failures with the reference answers as fixes."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from workbench import demo
from workbench.errors import WorkbenchError
from workbench.evaluate import EvalOptions
from workbench.store import Store
from workbench.store.records import Selection, list_records
from workbench.store.settings import get_contracts

OPTIONS = EvalOptions(max_new_tokens=8, batch_size=16, threads=1)


def snapshot(store: Store) -> list[tuple]:
    with store.connect() as con:
        return [
            (
                r.dataset,
                json.dumps(r.messages, ensure_ascii=False),
                r.category,
                r.status,
                r.bad_output,
                tuple(r.tags),
            )
            for r in list_records(con, Selection(), limit=10**6)
        ]


def test_demo_data_is_varied_and_bilingual():
    sets = demo.demo_records()
    support, held_out = sets[demo.SUPPORT_DATASET], sets[demo.EVAL_DATASET]
    users = [r["messages"][1]["content"] for r in support + held_out]
    assert len(users) == len(set(users)), "no phrasing twice"
    for dataset in (support, held_out):
        intents = {r["messages"][-1]["content"] for r in dataset if r["category"] == "intent"}
        assert intents == set(demo.INTENTS)
        assert {r["category"] for r in dataset} == {"intent", "order_slots", "short_reply"}
        assert any("\u4e00" <= ch <= "\u9fff" for r in dataset for ch in r["messages"][1]["content"])
    for contract in demo.contracts():  # every reference answer obeys its category's contract
        for r in support + held_out:
            if r["category"] == contract.category:
                assert contract.violation(r["messages"][-1]["content"]) is None, r
    prompts = demo.general_prompts()
    assert len(prompts) >= 100 and len(set(prompts)) == len(prompts)
    assert any("\u4e00" <= ch <= "\u9fff" for p in prompts for ch in p)


def test_build_demo_is_deterministic_and_collects_real_failures(tmp_path, tiny):
    said: list[str] = []
    stores = [Store.open(tmp_path / f"store{i}") for i in (1, 2)]
    reports = [
        demo.build_demo(
            s, base_model=tiny, general_limit=12, options=OPTIONS, progress=said.append if i == 0 else None
        )
        for i, s in enumerate(stores)
    ]
    first, second = snapshot(stores[0]), snapshot(stores[1])
    assert first == second, "the same build twice gives the same records"
    report = reports[0]
    assert report.support + report.held_out == sum(len(v) for v in demo.demo_records().values())
    assert any("general prompts" in line for line in said) and any("badcases" in line for line in said)
    by_dataset: dict[str, list[tuple]] = {}
    for row in first:
        by_dataset.setdefault(row[0], []).append(row)
    assert len(by_dataset["support"]) == report.support and len(by_dataset["eval"]) == report.held_out
    assert len(by_dataset.get("general", [])) == report.general <= 12
    # the tiny model knows nothing: every support answer it gives is wrong, and each becomes a fixed badcase
    wrong = report.base_evaluation.total.wrong
    assert wrong == report.badcases == len(by_dataset["badcases"]) > 0
    for _ds, messages, _category, status, bad_output, tags in by_dataset["badcases"]:
        assert status == "fixed" and bad_output is not None and "eval-failure" in tags
        reference = json.loads(messages)[-1]["content"]
        assert reference != bad_output
    with stores[0].connect() as con:
        assert set(get_contracts(con)) == {"intent", "order_slots", "short_reply"}


def test_build_demo_refuses_a_store_with_records(tmp_path, tiny, write_jsonl):
    from workbench.ingest import import_file

    store = Store.open(tmp_path / "store")
    import_file(store, write_jsonl([{"prompt": "我的订单到哪了？", "response": "order_status"}]))
    assert not demo.store_is_empty(store)
    with pytest.raises(WorkbenchError, match="already holds records"):
        demo.build_demo(store, base_model=tiny, general_limit=2, options=OPTIONS)


def test_demo_loop_on_a_tiny_model(tmp_path, tiny):
    """The loop's mechanics (a tiny model learns nothing useful; the real figures come from `make demo-loop`)."""
    store = Store.open(tmp_path / "store")
    said: list[str] = []
    result = demo.demo_loop(
        store,
        base_model=tiny,
        general_limit=8,
        options=OPTIONS,
        progress=said.append,
        train_overrides={"epochs": 1, "batch_size": 16, "lora_rank": 4, "eval_accuracy": False},
    )
    assert {"build", "export", "train", "evaluate"} <= set(result.seconds)
    assert result.held_out.total.n == len(demo.demo_records()[demo.EVAL_DATASET])
    b = result.badcases.total
    assert b.right_before == 0 and b.fixed + b.still_wrong == b.n  # every trained badcase was a base failure
    assert result.badcases_fixed_share == b.fixed / b.n
    assert any(line.startswith("training run") for line in said)


def test_demo_command_refuses_a_store_with_records(tmp_path, write_jsonl):
    from click.testing import CliRunner

    from workbench.cli import main
    from workbench.ingest import import_file

    store = Store.open(tmp_path / "store")
    import_file(store, write_jsonl([{"prompt": "退款什么时候到账？", "response": "refund"}]))
    result = CliRunner().invoke(main, ["--store", str(store.root), "demo"])
    assert result.exit_code == 1 and "already holds records" in result.output


def test_the_demo_build_runs_once_per_store_in_the_background_with_its_progress(tmp_path, tiny):
    store = Store.open(tmp_path / "store")
    first = demo.start_demo_build(store, base_model=tiny, general_limit=4, options=OPTIONS, author="演示")
    second = demo.start_demo_build(store, base_model=tiny, general_limit=4)  # another tab, at once
    assert first.running and second.id == first.id == 1
    seen: list[demo.DemoBuild] = []
    deadline = time.monotonic() + 600
    while (build := demo.demo_build(store)).running and time.monotonic() < deadline:
        seen.append(build)
        time.sleep(0.1)
    assert build.state == "done", build.error
    counted = [b for b in seen if b.total]
    assert counted and counted[-1].total == 4 + len(demo.demo_records()[demo.SUPPORT_DATASET])
    assert any(b.eta_s is not None and b.eta_s >= 0 for b in counted)
    assert not demo.store_is_empty(store)
    again = demo.start_demo_build(store, base_model=tiny)  # a reload after it is done: nothing new
    assert again.id == 1 and again.state == "done"
    assert sorted(p.name for p in (store.root / "demo-builds").iterdir() if p.name.isdigit()) == ["1"]


def test_no_demo_build_for_a_store_with_records(tmp_path, write_jsonl):
    from workbench.ingest import import_file

    store = Store.open(tmp_path / "store")
    import_file(store, write_jsonl([{"prompt": "退款什么时候到账？", "response": "refund"}]))
    assert demo.start_demo_build(store) is None and demo.demo_build(store) is None


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is not installed")
def test_the_demo_build_in_the_browser_survives_tabs_reloads_and_page_clicks(tmp_path, tiny, monkeypatch):
    from playwright.sync_api import sync_playwright

    from tests.test_browser import ARGS, CHROMIUM, running_app

    monkeypatch.setenv("WORKBENCH_DEMO_ON_EMPTY", "1")
    monkeypatch.setenv("WORKBENCH_DEMO_BASE_MODEL", tiny)
    monkeypatch.setenv("WORKBENCH_DEMO_GENERAL_LIMIT", "6")
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    store_dir = tmp_path / "store"
    store = Store.open(store_dir)
    with running_app(store_dir) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        one = browser.new_page(viewport={"width": 1400, "height": 900})
        one.goto(url)
        one.get_by_text("Building the demo workspace").wait_for(timeout=60_000)
        two = browser.new_page(viewport={"width": 1400, "height": 900})
        two.goto(url + "/review")  # a second tab, on another page: the same build
        two.get_by_text("Building the demo workspace").wait_for(timeout=60_000)
        one.get_by_role("link", name="Clusters").click()  # clicking a page does not drop it
        one.get_by_text("Building the demo workspace").wait_for(timeout=60_000)
        one.locator("[data-testid=stProgress]").wait_for(timeout=60_000)
        one.get_by_text(re.compile(r"about [\d.]+ min left")).wait_for(
            timeout=300_000
        )  # an ETA once answers come
        one.screenshot(path=str(shots / "demo-build.png"))
        two.reload()  # a reload reattaches to the same build (it is minutes from done here)
        two.get_by_text("Building the demo workspace").wait_for(timeout=60_000)
        one.get_by_text("Clusters", exact=False).first.wait_for(timeout=600_000)
        one.get_by_text("Building the demo workspace").wait_for(state="detached", timeout=600_000)
        body = one.inner_text("body")
        browser.close()
    build = demo.demo_build(store)
    assert build.state == "done" and build.id == 1, build
    assert sorted(p.name for p in (store_dir / "demo-builds").iterdir() if p.name.isdigit()) == ["1"]
    assert "Traceback" not in body and not demo.store_is_empty(store)
