# The two commands of the set-up contract: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest lab install dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,sql,lab]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/portone-recon demo

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: dev
	$(BIN)/mypy

pytest: dev
	$(BIN)/pytest -q

test: lint typecheck pytest

# One command per benchmark question, from a fresh clone (benchmarks/README.md), e.g.
#   make bench B=sync_throughput ARGS="--payments 1e5 --latency-ms 50 --concurrency 4"
bench: $(VENV)/.installed
	@test -n "$(B)" || { echo "usage: make bench B=<script name in benchmarks/> ARGS=\"...\""; exit 2; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/python benchmarks/$(B).py $(ARGS)

lab: dev
	$(BIN)/jupyter lab portone_recon/reports/notebooks/

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
