# The two commands: `make demo` and `make test`. Both build everything they need from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench clean system-deps demo-deps test-deps bench-deps conformance

# Each step says what it is doing: a first `make demo` creates the environment and installs
# Archipelago (about a minute, pip lists each package), then the two system packages the demo needs.
$(BIN)/python:
	@echo "==> creating $(VENV), the Python environment Archipelago runs in"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip in $(VENV)"
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing Archipelago and its dependencies into $(VENV) (API server, keepstore, CWL runner, matplotlib for the forest plot)"
	$(BIN)/pip install -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml $(STAMP)
	@echo "==> installing the test tools into $(VENV) (pytest and pytest-xdist, hypothesis, moto, ruff, mypy, the official Arvados tools, cwltest)"
	$(BIN)/pip install -e '.[test]'
	touch $(TEST_STAMP)

# Debian packages, installed when missing (we run as root; the tests start the services themselves,
# never apt): scripts/system-deps lists each with the reason it is needed
demo-deps:
	@scripts/system-deps demo

test-deps system-deps:
	@scripts/system-deps test

bench-deps:
	@scripts/system-deps bench

demo: $(STAMP) demo-deps
	@echo "==> archi demo: three clusters on loopback, then the scenario (about a minute)"
	$(BIN)/archi demo

test: $(TEST_STAMP) test-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	@echo "==> the test suite, three workers (most tests wait on real servers; a module's tests share one worker)"
	$(BIN)/python -m pytest -q -n 3 --dist loadscope

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# the CWL v1.2 conformance suite against archi-cwl-runner and cwltool, side by side per tag
conformance: $(TEST_STAMP) test-deps
	$(BIN)/python benchmarks/conformance.py

bench: $(TEST_STAMP) bench-deps
	$(BIN)/python benchmarks/keep_throughput.py
	$(BIN)/python benchmarks/manifest.py

clean:
	rm -rf $(VENV) .bench-venv .pytest_cache .ruff_cache .hypothesis
