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

.PHONY: install serve test lint typecheck unit e2e bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if ! $(BIN)/python -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$(LLAMA_VERSION)')" 2>/dev/null; then \
		echo "Compiling llama-cpp-python $(LLAMA_VERSION) (takes about 6 minutes, once)..."; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
			$(BIN)/pip install --no-cache-dir llama-cpp-python==$(LLAMA_VERSION); \
	fi
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

serve: install
	$(BIN)/modelyard serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .modelyard .pytest_cache .mypy_cache .ruff_cache
