# The three fixed entry points: `make setup` (idempotent), `make run`, `make test`; and `make test-fast`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp
INDEX  ?= index
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# No wheel cache beside the venv: it doubles setup's disk use (torch alone is ~700 MB), and a CI
# machine with little free disk failed `make setup` with ENOSPC.
export PIP_NO_CACHE_DIR := 1

.PHONY: setup run test test-fast test-deps lint clean

# compileall: the project's bytecode, as pip gives an installed package's (a cold `rag ask` otherwise
# compiles ~200 modules from source, 0.13 s, wherever PYTHONDONTWRITEBYTECODE is set); only changed files.
setup: $(STAMP)
	@$(BIN)/rag model >/dev/null
	@$(BIN)/python -m compileall -q -j 0 rag ui >/dev/null

# torch==2.13.0 first: it is the CPU build on this machine's disk; an unpinned torch
# pulled in by sentence-transformers would be a multi-gigabyte CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[formats,ocr,dev,milvus,ray]'
	$(BIN)/rag model
	touch $(STAMP)

# The chat UI and HTTP API on http://$(HOST):$(PORT) (builds the index from seeds/ on first start):
# `make run PORT=8000`, `make run HOST=0.0.0.0` (only together with RAG_API_KEY).
PORT ?= 7860
# HOST only from the command line: tcsh and some CI images export HOST as the machine's name,
# which would silently serve beyond this machine.
ifneq ($(origin HOST),command line)
HOST := 127.0.0.1
endif
run: setup
	$(BIN)/rag serve --index-dir $(INDEX) --host $(HOST) --port $(PORT) seeds

# Every test, both tiers: what CI runs (.ci/run).
test: setup test-deps
	$(BIN)/python -m pytest -q

# The fast tier, for the inner loop (about 2 minutes on two cores): every test but the slow ones, those marked
# slow or of a slow kind (browser, server, subprocess, train, milvus, ray: tests/conftest.py, pyproject.toml).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# Headless Chromium for the browser tests (and CJK fonts for its screenshots), from Debian's packages.
# In CI (CI set) a failed install fails here, as the browser tests would: a skip there would hide them.
test-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list 2>/dev/null | grep -qi "noto sans cjk" || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) || \
	    if [ -n "$$CI" ]; then echo "error: could not install chromium, chromium-driver and fonts-noto-cjk" >&2; exit 1; \
	    else echo "warning: could not install chromium; browser tests will be skipped"; fi; }

# ruff, the import contract (pyproject.toml [tool.importlinter]: layers one way, backends independent)
# and no module using another module's _private names
lint: setup
	$(BIN)/ruff check rag ui tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m tests.private_names rag ui

clean:
	rm -rf $(VENV) $(INDEX)/gen-* $(INDEX)/manifest.json
