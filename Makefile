# `make demo` and `make test` work on a fresh machine: each creates .venv and installs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := platform leaderboard tests bench

.PHONY: install sandbox demo test lint typecheck unit clean

# Submitted code runs in bubblewrap sandboxes under a seccomp filter (libseccomp). Installed
# here where we can (root with apt); elsewhere the platform refuses untrusted code unless
# MEDARENA_ALLOW_UNSANDBOXED=1 (README).
sandbox:
	@{ command -v bwrap && ldconfig -p | grep -q 'libseccomp\.so\.2'; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2; \
	  else \
	    echo "bubblewrap (bwrap) or libseccomp is not installed and cannot be installed here:" \
	         "install them (apt-get install bubblewrap libseccomp2) to sandbox submitted code"; \
	  fi; }

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build in constraints.txt (an unpinned torch pulls CUDA, GBs).
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) sandbox

demo: install
	$(BIN)/medarena demo

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

unit: install
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) .medarena .pytest_cache .mypy_cache .ruff_cache
