# The three fixed entry points: `make setup` (idempotent), `make run`, `make test`.
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

.PHONY: setup run test test-deps lint clean

setup: $(STAMP)
	@$(BIN)/rag model >/dev/null

# torch==2.13.0 first: it is the CPU build on this machine's disk; an unpinned torch
# pulled in by sentence-transformers would be a multi-gigabyte CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[formats,dev,milvus,ray]'
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

test: setup test-deps
	$(BIN)/python -m pytest -q

# Headless Chromium for the browser tests (and CJK fonts for its screenshots), from Debian's packages.
test-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list 2>/dev/null | grep -qi "noto sans cjk" || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) || \
	    echo "warning: could not install chromium; browser tests will be skipped"; }

lint: setup
	$(BIN)/ruff check rag ui tests bench

clean:
	rm -rf $(VENV) $(INDEX)/gen-* $(INDEX)/manifest.json
