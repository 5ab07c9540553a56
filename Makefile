# The two commands: `make demo` and `make test`. Both build everything they need from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean system-deps conformance

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# what containers run in (bubblewrap; fuse3 for collection mounts read on demand; Docker and Podman and busybox-static for the Docker runtime's test; Slurm
# and munge for the Slurm dispatcher's), from Debian's packages when missing (we run as root;
# services are started by the tests themselves, never by apt)
SYSTEM_PACKAGES := bubblewrap fuse3 docker.io podman runc busybox-static slurm-wlm munge
system-deps:
	@command -v bwrap >/dev/null && command -v fusermount3 >/dev/null && command -v podman >/dev/null && command -v dockerd >/dev/null && test -x /bin/busybox && \
	  command -v slurmctld >/dev/null && command -v munged >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

demo: $(STAMP) system-deps
	$(BIN)/archi demo

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# the CWL v1.2 conformance suite against archi-cwl-runner and cwltool, side by side per tag
conformance: $(STAMP) system-deps
	$(BIN)/python benchmarks/conformance.py

bench: $(STAMP)
	$(BIN)/python benchmarks/keep_throughput.py
	$(BIN)/python benchmarks/manifest.py

clean:
	rm -rf $(VENV) .bench-venv .pytest_cache .ruff_cache .hypothesis
