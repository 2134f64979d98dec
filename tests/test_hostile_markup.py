"""Data is shown as text, never as markup: a store whose dataset, category, tag, file, cluster, export, run and
model names and whose record text and model output are Rich markup, markdown, HTML or math (`[/bold]`,
`[cat-link](http://127.0.0.1:9/x)`, `![beacon](http://127.0.0.1:9/b.png)`, `<script>`, `**粗体**`) is walked
through every CLI command that prints a table, every page (AppTest), and in Chromium every page and a streamed
Playground answer: each name appears literally, nothing fails, and no request leaves for the image's address."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner, Result
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from workbench import dedup, ingest, registry, review
from workbench.cli import main
from workbench.commands import common
from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.dedup import DedupConfig
from workbench.export import ExportConfig, export_training_set
from workbench.review import ReviewFilter
from workbench.serve import free_port
from workbench.store import Store
from workbench.store import evaluations as evaluations_sql
from workbench.store import runs as runs_sql
from workbench.store.records import Selection

from .conftest import ROOT, chat, shown, stored_evaluation
from .test_browser import ARGS, CHROMIUM, running_app
from .test_clusters_view import save_run

# Each hostile name, and a marker that shows whether a piece of output is about it.
HOSTILE = {
    "[/bold]": "/bold",
    "[cat-link](http://127.0.0.1:9/x)": "cat-link",
    "![beacon](http://127.0.0.1:9/b.png)": "beacon",
    "<script>alert(1)</script>": "alert(1)",
    "**粗体**": "粗体",
    "`code代码`": "code代码",
    "$x数学$": "x数学",
    ":red[红色] :smile:": "红色",
}
NAMES = list(HOSTILE)
CATEGORY, DATASET, TAG = NAMES[1], NAMES[0], NAMES[4]  # the ones the pages show most
# a file name cannot hold "/": the same tricks without one (a relative image would be fetched from the app)
FILE_NAME = "[文件](x.jsonl) ![图](b.png) **粗体** $x$ :red[红].jsonl"
EXPORT_NAME = "__粗体导出__"  # export names are letters, digits, _ . -: underscores are emphasis
BEACONS = ("127.0.0.1:9", "b.png")
WORKBENCH = [sys.executable, "-m", "workbench.cli"]


def hostile_records() -> list[dict]:
    """Two records per hostile category (one a near copy, for dedup), text and answers hostile too, plus one
    with a misspelt role so that issues are listed."""
    records = []
    for n, name in enumerate(NAMES):
        for copy in ("", "！"):
            records.append(
                chat(
                    f"退款问题 {n}: {name}{copy}",
                    f"回答 {name}",
                    category=name,
                    tags=[TAG, NAMES[(n + 1) % len(NAMES)]],
                    task_type=NAMES[(n + 2) % len(NAMES)],
                )
            )
    records.append(
        {"messages": [{"role": "user", "content": f"坏的 {CATEGORY}"}, {"role": "asistant", "content": "x"}]}
    )
    return records


def build_store(root: Path, data: Path) -> Store:
    """A store full of hostile names: imports into hostile datasets from a hostile file name, a contract, a
    dedup run, a clustering run with hostile cluster names, an export, a run and two evaluations."""
    store = Store.open(root)
    path = data / FILE_NAME
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in hostile_records()) + "\n", "utf-8")
    ingest.import_file(store, path, dataset=DATASET)
    held_out = data / "eval **评测**.jsonl"
    held_out.write_text(
        "\n".join(
            json.dumps(
                chat(f"外卖为什么还没到？第 {n} 单 {name}", f"回答 {name}", category=name), ensure_ascii=False
            )
            for n, name in enumerate(NAMES)
        )
        + "\n",
        "utf-8",
    )
    ingest.import_file(store, held_out, dataset="eval")
    ids = review.load_queue(store, ReviewFilter(datasets=(DATASET,)), "oldest", limit=100).ids
    set_contract(store, Contract(CATEGORY, "labels", [f"回答 {CATEGORY}", NAMES[2]]))
    set_status(store, Selection(dataset=DATASET), "approved", NAMES[3])
    dedup.dedup(store, ids, config=DedupConfig(semantic=False))
    save_run(store, {0: ids[:8], 1: ids[8:]}, names=dict(enumerate(NAMES[:2])), keywords=[NAMES[5], NAMES[6]])
    export = export_training_set(
        store, ExportConfig(name=EXPORT_NAME, datasets=(DATASET,), general_share=0, leakage_guard="exact")
    )
    with store.transaction() as con:
        run = runs_sql.insert_run(
            con,
            export_dir=str(export.folder),
            export_name=EXPORT_NAME,
            export_hash=None,
            base_model=NAMES[2],
            parent_run=None,
            init="fresh",
            config={"epochs": 1},
            runs_dir=str(root / "runs"),
        )
        runs_sql.update_run(con, run.id, status="failed", step=3, total_steps=9, error=f"停止 {NAMES[0]}")
    eval_ids = review.load_queue(store, ReviewFilter(datasets=("eval",)), "oldest", limit=100).ids[:6]
    rows = [
        {
            "record_key": str(i),
            "record_id": i,
            "category": NAMES[n],
            "messages": [{"role": "user", "content": f"问题 {NAMES[n]}"}],
            "reference": f"回答 {NAMES[n]}",
        }
        for n, i in enumerate(eval_ids)
    ]
    outputs = [NAMES[2], NAMES[1], NAMES[3], NAMES[4], NAMES[5], NAMES[6]]
    stored_evaluation(
        store, [{**r, "output": "错", "verdict": "wrong", "loss": 2.0} for r in rows], model=NAMES[0]
    )
    stored_evaluation(
        store,
        [
            {**r, "output": o, "verdict": v, "loss": 1.0}
            for r, o, v in zip(rows, outputs, ["right", "wrong"] * 3, strict=True)
        ],
        model=NAMES[1],
        run_id=run.id,
    )
    return store


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Store:
    folder = tmp_path_factory.mktemp("hostile")
    return build_store(folder / "store", folder)


@pytest.fixture
def hostile_cli(tmp_path) -> Store:
    """A store of its own: the commands change what they look at (imports, a contract, failures sent)."""
    return build_store(tmp_path / "store", tmp_path)


# --- the command line --------------------------------------------------------------------------------------------
def cli(store: Store, *args: str) -> Result:
    """Run the command in this process (a subprocess per command costs seconds of imports), its tables wide
    enough that no name wraps; a WorkbenchError ends it as for a user (one line, exit status 1 or 2)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_STORE", str(store.root))
        for console in (common.out, common.console):
            mp.setattr(console, "width", 400)
        result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def shown_literally(output: str, *names: str) -> None:
    for name in names:
        assert name in output, f"{name!r} is not shown as it is in:\n{output}"


def test_every_cli_table_shows_hostile_names_as_they_are(hostile_cli, tmp_path):
    path = tmp_path / FILE_NAME
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in hostile_records()) + "\n", "utf-8")
    expect = {
        # the import's report names the file and the dataset; check lists the issues of a file
        ("import", str(path), "--dataset", NAMES[4], "--category", NAMES[5]): [path.name, NAMES[4]],
        ("check", str(path)): [],
        ("stats",): NAMES,
        ("recheck",): [],
        ("contract", NAMES[0], "--labels", "a,b"): [NAMES[0]],
        ("dedup", "--dry-run", "--dataset", DATASET, "--no-semantic"): [f"退款问题 0: {NAMES[0]}"],
        ("dedup", "--runs"): [],
        ("cluster", "--show", "1"): NAMES[:2] + [NAMES[5]],
        ("export", "--name", "x", "--datasets", DATASET, "--general-share", "0"): NAMES,
        ("exports",): [EXPORT_NAME],
        ("runs",): [EXPORT_NAME],
        ("runs", "1"): [EXPORT_NAME, NAMES[0]],
        ("evaluations",): NAMES[:2],
        ("evaluations", "2"): NAMES[1:6],
        ("compare", "1", "2"): NAMES[:6],
        ("evaluations", "2", "--results", "all"): NAMES[1:6],
        ("failures", "2", "--to", NAMES[2]): [],
    }
    for args, names in expect.items():
        result = cli(hostile_cli, *args)
        assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr, (args, result.stderr)
        assert result.exit_code in (0, 1), (args, result.stderr)
        shown_literally(result.stdout + result.stderr, *names)


def test_an_error_naming_hostile_data_is_one_line_not_a_markup_error(hostile_cli):
    result = cli(hostile_cli, "status", "approved", "--ids", "1", "--from-status", "[/bold]")
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    missing = cli(hostile_cli, "import", f"/nonexistent/{NAMES[0]}.jsonl")
    assert missing.exit_code == 2 and missing.stderr.startswith("error:")
    shown_literally(missing.stderr, f"{NAMES[0]}.jsonl")


# --- the pages, headless -----------------------------------------------------------------------------------------
APP = str(ROOT / "app.py")
MARKDOWN = MarkdownIt("commonmark")


def rendered(body: str) -> tuple[str, str]:
    """What a markdown body turns into: its HTML, and the text a reader sees."""
    return MARKDOWN.render(body), shown(body)


def markdown_bodies(at: AppTest) -> list[str]:
    """Every string the page hands Streamlit as markdown: texts, captions, headings, messages, and the labels of
    metrics, expanders, tabs, buttons, page links, progress bars and radio options."""
    bodies = [
        e.value
        for kind in (
            "title",
            "header",
            "subheader",
            "markdown",
            "caption",
            "success",
            "error",
            "info",
            "warning",
        )
        for e in getattr(at, kind)
    ]
    for kind in ("metric", "expander", "tabs", "button", "download_button", "page_link"):
        bodies += [e.label if hasattr(e, "label") else e.proto.label for e in getattr(at, kind)]
    bodies += [e.text for e in at.progress if e.text]
    bodies += [o for r in at.radio for o in r.options]
    return bodies


def visible_text(at: AppTest) -> str:
    """All a reader sees as text: the markdown bodies rendered, text and code, tables, widgets' options and
    values."""
    parts = [rendered(b)[1] for b in markdown_bodies(at)]
    parts += [e.value for kind in ("text", "code") for e in getattr(at, kind)]
    parts += [" ".join(map(str, d.value.astype(str).to_numpy().ravel())) for d in at.dataframe]
    for kind in ("selectbox", "multiselect"):
        parts += [o for w in getattr(at, kind) for o in w.options]
    parts += [str(w.value) for w in at.text_input]
    return "\n".join(parts)


def assert_data_is_text(at: AppTest, *expected: str) -> None:
    """Nothing failed; no markdown body holds a hostile name unescaped, renders a link or an image, or loses a
    name's characters; `expected` names appear as they are."""
    assert not at.exception, at.exception
    for body in markdown_bodies(at):
        page, text = rendered(body)
        for name, marker in HOSTILE.items():
            assert name not in body, f"{name!r} reaches markdown unescaped: {body!r}"
            if marker in text:
                assert name in text, f"{name!r} is not shown as it is: {body!r} reads {text!r}"
        assert "<a " not in page and "<img" not in page, f"{body!r} renders as {page!r}"
    seen = visible_text(at)
    for name in expected:
        assert name in seen, f"{name!r} is not on the page as it is"


@pytest.fixture
def pages(hostile, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(hostile.root))
    return hostile


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(page).run()
    return at


def test_overview_shows_hostile_names_as_text(pages):
    assert_data_is_text(open_page("pages/overview.py"), NAMES[3])  # the author of the latest change


def test_import_shows_hostile_file_dataset_and_category_names_as_text(pages):
    at = open_page("pages/imports.py")
    assert_data_is_text(at, FILE_NAME, DATASET, NAMES[4])
    at.text_area(key="im_paste_text").set_value(
        json.dumps(chat(f"粘贴 {NAMES[2]}", NAMES[1], category=NAMES[6]), ensure_ascii=False)
    )
    at.selectbox(key="im_paste_dataset").set_value("(new badcases dataset)").run()
    at.text_input(key="im_paste_new").set_value(NAMES[7]).run()
    at.button(key="im_paste_go").click().run()
    assert_data_is_text(at, NAMES[7])


def test_review_shows_hostile_names_as_text_and_a_bulk_category_too(pages):
    at = open_page("pages/review.py")
    assert_data_is_text(at, DATASET, NAMES[0], NAMES[1], TAG)
    at.selectbox(key="rv_bulk_kind").set_value("category").run()
    at.text_input(key="rv_bulk_category").set_value(NAMES[1]).run()
    assert_data_is_text(at)
    at.button(key="rv_bulk_go").click().run()
    assert at.success, "the bulk action reported nothing"
    assert_data_is_text(at, NAMES[1])
    undo = next(b for b in at.button if b.key and b.key.startswith("rv_undo_op_"))
    undo.click().run()
    assert_data_is_text(at)


def test_quality_shows_hostile_categories_and_contracts_as_text(pages):
    at = open_page("pages/quality.py")
    assert_data_is_text(at, CATEGORY)
    at.selectbox(key="q_cat").set_value(NAMES[2]).run()
    at.text_input(key=f"q_spec_{NAMES[2]}_labels").set_value(f"{NAMES[3]}, {NAMES[4]}").run()
    assert_data_is_text(at)
    at.button(key="q_save_contract").click().run()
    assert at.success, "saving the contract reported nothing"
    assert_data_is_text(at, NAMES[2])


def test_coverage_shows_hostile_categories_as_text(pages):
    assert_data_is_text(open_page("pages/coverage.py"), *NAMES)


def test_clusters_show_hostile_cluster_names_and_keywords_as_text(pages):
    at = open_page("pages/clusters.py")
    assert_data_is_text(at, NAMES[0], NAMES[1], NAMES[5], NAMES[6])


def test_train_shows_hostile_export_and_category_names_as_text(pages):
    assert_data_is_text(open_page("pages/train.py"), EXPORT_NAME)


def test_evaluate_shows_hostile_models_categories_and_outputs_as_text(pages):
    # the page's action too: an endpoint with a hostile name among the models, and its failed evaluation's
    # recorded error (naming it) above Resume; the store is the module's, so the Chromium walk shows them as well
    registry.add_endpoint(pages, NAMES[6], f"http://127.0.0.1:{free_port()}/v1", "m", check=False)
    question = {"role": "user", "content": f"问 {NAMES[7]}"}
    row = {"record_key": "q", "category": NAMES[7], "messages": [question], "reference": "答"}
    failed = stored_evaluation(pages, [row], model=f"endpoint:{NAMES[6]}", status="failed")
    with pages.transaction() as con:
        error = f"1 of 1 requests failed: endpoint {NAMES[6]!r} said {NAMES[7]}; `workbench evaluate --resume {failed}`"
        evaluations_sql.update_evaluation(con, failed, error=error)
    at = open_page("pages/evaluate.py")
    assert_data_is_text(at, *NAMES[:8])
    assert f"endpoint:{NAMES[6]}" in at.selectbox(key="ev_model").options
    assert any(shown(e.value) == error for e in at.error)


# --- a model whose answer is markdown ----------------------------------------------------------------------------
ANSWER = f"看这里 {NAMES[2]} {NAMES[1]} {NAMES[4]}"


def write_beacon_model(folder: Path) -> Path:
    """A tiny model that answers every question with ANSWER: its last norm is zero, so every logit is 0 and the
    generation config's sequence biases alone pick each next token of ANSWER, then the end of the turn."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.data_train import write_tiny_model

    write_tiny_model(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = AutoTokenizer.from_pretrained(folder).encode(ANSWER, add_special_tokens=False)
    end = model.generation_config.eos_token_id
    sequence = [*ids, end[0] if isinstance(end, list) else end]
    with torch.no_grad():
        model.model.norm.weight.zero_()
    model.generation_config.sequence_bias = [
        [sequence[: n + 1], 10.0 * (n + 1)] for n in range(len(sequence))
    ]
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def beacon_model(tmp_path_factory) -> Path:
    return write_beacon_model(tmp_path_factory.mktemp("beacon") / "model")


def test_playground_shows_a_markdown_answer_as_text(pages, beacon_model):
    at = open_page("pages/playground.py")
    at.text_input(key="pg_base").set_value(str(beacon_model)).run()
    at.chat_input(key="pg_question").set_value(f"你好 {NAMES[6]}").run()
    assert_data_is_text(at, ANSWER, f"你好 {NAMES[6]}")


# --- in Chromium ---------------------------------------------------------------------------------------------------
# Each page's address, a text its last part shows once drawn, and names it shows as text (tables and charts are
# drawn on canvases, whose text is not in the page's).
BROWSER_PAGES = {
    "": ("Recent activity", []),
    "review": ("Keys: Alt+J", []),
    "quality": ("Save the settings and re-check", []),
    "coverage": ("badcase records ready", NAMES),
    "clusters": ("Duplicate groups", NAMES),
    "imports": ("Rejected lines of an earlier import", [FILE_NAME]),
    "train": ("Export, train and evaluate", []),
    "evaluate": ("Send failures to badcases", [NAMES[0], NAMES[2], NAMES[4]]),
}


def assert_shown_as_text(page, *expected: str) -> None:
    """`expected` is on the page as it is; no link hides its address behind data's words, no image from data."""
    body = page.locator("body").inner_text()
    for name in expected:
        assert name in body, f"{name!r} is not on the page as it is"
    links = page.eval_on_selector_all("a", "as => as.map(a => [a.href, a.innerText])")
    hidden = [(href, text) for href, text in links if "127.0.0.1:9" in href and text.strip() != unquote(href)]
    assert not hidden, f"links whose text hides their address: {hidden}"
    images = page.eval_on_selector_all("img", "ims => ims.map(i => i.src)")
    assert not [src for src in images if any(b in src for b in BEACONS)], images


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make install does it)"
)
def test_in_chromium_every_page_and_a_streamed_answer_show_data_as_text(hostile, beacon_model, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with running_app(hostile.root) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on("request", lambda request: requests.append(request.url))
        for slug, (drawn, expected) in BROWSER_PAGES.items():
            page.goto(f"{url}/{slug}")
            expect(page.get_by_text(drawn).first).to_be_visible(timeout=60_000)
            page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / f"hostile-{slug or 'overview'}.png"), full_page=True)
            assert_shown_as_text(page, *expected)

        page.goto(f"{url}/playground")
        expect(page.get_by_role("heading", name="Playground", exact=True)).to_be_visible(timeout=60_000)
        page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=60_000)
        folder = page.get_by_role("textbox", name="Base model folder")
        for _ in range(
            3
        ):  # a rerun that lands with the click can close the expander again: open it until it shows
            page.get_by_text("System prompt and sampling").click()
            try:
                expect(folder).to_be_visible(timeout=10_000)
                break
            except AssertionError:
                continue
        folder.fill(str(beacon_model))
        folder.press("Enter")
        page.wait_for_timeout(800)
        box = page.get_by_placeholder("Ask the model (English or 中文)…")
        box.fill(f"你好 {NAMES[6]}")
        box.press("Enter")
        expect(page.get_by_role("button", name="Flag this answer")).to_be_visible(timeout=120_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "hostile-playground.png"), full_page=True)
        assert_shown_as_text(page, ANSWER, f"你好 {NAMES[6]}")
        browser.close()
    fetched = [r for r in requests if any(b in r for b in BEACONS)]
    assert not fetched, f"the browser fetched what data named: {fetched}"
