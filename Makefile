# The two commands a new machine needs: `make demo` and `make test` (both install first).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint format bench clean

install: $(STAMP)

# torch is installed on its own first and pinned, so that no resolver picks another build later.
# Where pip's configuration does not already serve the CPU wheel (it does on the project's
# machines), name PyTorch's CPU index, e.g.  make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_FLAGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q torch==2.13.0 $(TORCH_FLAGS)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/candlewise demo

test: install
	$(BIN)/python -m pytest

# Everything but the end-to-end tests marked slow: the edit-and-rerun loop (a few minutes).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install
	$(BIN)/python bench/bench_market.py
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_signal.py
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_backtest_command.py
	$(BIN)/python bench/bench_architecture.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
