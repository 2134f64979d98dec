"""Shared fixtures: a real on-disk store in a temp folder, the real data sets, file writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"

# One converted copy of the embedded model for the whole suite (and across runs), instead of a
# 20-second conversion in every temp store.
os.environ.setdefault("WORKBENCH_MODELS", str(ROOT / ".cache" / "models"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Each xdist worker gets its share of the cores for torch (and the servers and workers it starts): two workers
# each spinning torch's default of one thread per core on 2 cores ran the real-model tests 5x slower.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("OMP_NUM_THREADS", _threads)
    os.environ.setdefault("MKL_NUM_THREADS", _threads)
# Waits on background runs look every 0.2 s instead of the product's 1-2 s: a tiny run ends in seconds.
os.environ.setdefault("WORKBENCH_POLL_S", "0.2")

# Property tests: "ci" (the default here) bounds the examples and drops the per-example deadline, which a
# machine shared with other work misses by chance; HYPOTHESIS_PROFILE=thorough runs ten times as many.
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def store(tmp_path):
    from workbench.store import Store

    return Store.open(tmp_path / "store")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """One tiny random llama for the whole session (each xdist worker makes its own): tests only read it."""
    from tests.data_train import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny(tiny_model) -> str:
    """The tiny model's folder as the `base_model` string a TrainConfig or a page takes."""
    return str(tiny_model)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A REAL `transformers serve` on the embedded SmolLM2 (127.0.0.1, a free port), one for the session: the
    modules that use it are one unit (SHARED_UNITS), so one worker starts it once. A test that kills it starts
    it again on the same port (tests/local_server.revive) before it ends."""
    from workbench.models import default_models_dir, ensure_embedded_model
    from workbench.serve import start_server

    folder = ensure_embedded_model(default_models_dir())
    started = start_server(folder, log=tmp_path_factory.mktemp("serve") / "serve.log", device="cpu")
    yield started
    started.stop()


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} is absent (the shared real data sets live beside the project checkout)")
    return REAL_DATA


@pytest.fixture
def write_jsonl(tmp_path):
    def write(records, name="data.jsonl", encoding="utf-8", newline="\n") -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
        path.write_bytes((newline.join(lines) + newline).encode(encoding))
        return path

    return write


def chat(user: str, assistant: str | None = None, **extra) -> dict:
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"messages": messages, **extra}


_ITEM_FIELDS = ("record_key", "record_id", "category", "messages", "tools", "reference")


def stored_evaluation(
    store,
    rows: list[dict],
    *,
    model: str = "base",
    run_id: int | None = None,
    eval_set: str = "dataset",
    system_prompt: str | None = None,
    status: str = "done",
) -> int:
    """An evaluation as the evaluation stage stores it, without running a model: each row holds a record's
    fields (record_key, record_id, category, messages, reference) and its result (output, verdict, loss...)."""
    from workbench.store import evaluations as sql

    with store.transaction() as con:
        eid = sql.insert_evaluation(
            con,
            model=model,
            run_id=run_id,
            base_model="tiny",
            eval_set=eval_set,
            source="eval",
            system_prompt=system_prompt,
            examples=None,
            config={},
            items=[{k: r[k] for k in _ITEM_FIELDS if k in r} for r in rows],
            pid=None,
            author="t",
        )
        results = [
            {"seq": n, **{k: v for k, v in r.items() if k not in _ITEM_FIELDS}} for n, r in enumerate(rows)
        ]
        sql.save_results(con, eid, results)
        sql.update_evaluation(con, eid, status=status)
    return eid


@pytest.fixture(scope="session")
def real_loop(tmp_path_factory):
    """The whole loop once on the real embedded model (SmolLM2-135M-Instruct), shared by the real-model tests
    (test_evaluate_real, test_train_real): import → check → export → train 12 LoRA steps (one evaluation, at
    the end, so the adapter is the evaluated one) → evaluate base and tuned → compare, on generated intent
    records (English and Chinese, labels in the system prompt). Returns the store and the loop's result."""
    from tests.data_train import INTENTS, classification_records
    from workbench.background import process
    from workbench.cycle import TrainSettings, run_loop
    from workbench.evaluate import EvalOptions
    from workbench.store import Store

    root = tmp_path_factory.mktemp("real-loop")
    path = root / "intents.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": m["role"], "content": m["content"]} for m in r["messages"]]},
                ensure_ascii=False,
            )
            + "\n"
            for r in classification_records(60, seed=2)
        ),
        encoding="utf-8",
    )
    store = Store.open(root / "store")
    try:
        result = run_loop(
            store,
            path,
            category="intent",
            labels=list(INTENTS),
            export_name="intents",
            val=0.2,
            train=TrainSettings(
                overrides={
                    "max_steps": 12,
                    "eval_every_steps": 12,
                    "batch_size": 4,
                    "lora_rank": 8,
                    "learning_rate": 1e-3,
                    "warmup_ratio": 0.0,
                    "eval_accuracy": False,
                    "save_every_steps": 0,
                }
            ),
            options=EvalOptions(batch_size=8),
        )
    finally:
        for child in process.children():  # a loop that failed half-way: stop its worker
            if child.poll() is None:
                child.kill()
                child.wait()
    return store, result


# `make test` runs the suite on two workers (pytest -n 2 --dist loadfile). A worker takes whole files, so a
# file's module fixtures (a trained run, a loaded model) are built once; files that share a costly session
# fixture form one unit (SHARED_UNITS), so that one worker builds it, and the longest units are handed out
# first, so that neither worker is left with a long file at the end. (xdist's own loadgroup does not group
# under pytest 9: it renames node ids, which pytest 9 no longer lets it do.)
SHARED_UNITS = {
    "test_evaluate_real": "real_model",
    "test_train_real": "real_model",
    "test_endpoints": "endpoint_server",
    "test_llm_judge": "endpoint_server",
    "test_app_evaluate_run": "endpoint_server",
}
LONGEST_FIRST = ("real_model",)


def _unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(Path(path).stem, path)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for the other modes

    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the order below, not the most tests first

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return ByFile(config, log)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        unit = _unit(item.nodeid)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a rank, the files and their tests keep their order


def shown(markdown: str) -> str:
    """The text a reader sees of a markdown body a page hands Streamlit (escaped names read as themselves)."""
    import html
    import re

    from markdown_it import MarkdownIt

    return html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(markdown))).strip()
