# The README's two commands: `make demo` and `make test`.  Nothing else needs installing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
LLAMA_VERSION := 0.3.36
# llama.cpp is compiled with -march=native; on CPUs with AMX its AMX kernels die with
# SIGILL at the first evaluation.  Build without AMX, into a wheelhouse of our own so
# that a wheel from a default (crashing) build in pip's cache is never reused.
NOAMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
WHEELHOUSE ?= $(HOME)/.cache/hainet/wheels/llama-$(LLAMA_VERSION)-noamx
LLAMA_WHEEL := $(WHEELHOUSE)/.built

.PHONY: demo test install install-dev sysdeps clean

demo: install
	$(VENV)/bin/hainet bench --quick

test: install-dev sysdeps
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(LLAMA_WHEEL): | $(PY)
	mkdir -p $(WHEELHOUSE)
	@echo "building llama-cpp-python $(LLAMA_VERSION) without AMX (about 5-7 minutes on 2 cores)"
	CFLAGS="$(NOAMX)" CXXFLAGS="$(NOAMX)" $(PIP) wheel --no-cache-dir --no-deps \
		llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELHOUSE)
	touch $@

install: $(LLAMA_WHEEL)
	$(PIP) install --quiet --find-links $(WHEELHOUSE) --only-binary llama-cpp-python \
		-e '.[llama,server]'

install-dev: $(LLAMA_WHEEL)
	$(PIP) install --quiet --find-links $(WHEELHOUSE) --only-binary llama-cpp-python \
		-e '.[llama,server,transformers,dev]'

# System packages the tests use: PostgreSQL binaries (store tests), bubblewrap (sandbox).
sysdeps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi


clean:
	rm -rf $(VENV) build src/*.egg-info
