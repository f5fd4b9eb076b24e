# tinyfleet — the two commands:
#   make demo    service + simulated devices + UI on an embedded broker and database
#   make test    everything CI runs: services, TimescaleDB, lint, types, tests
#
# The Python environment (.venv) is made by uv from uv.lock; uv itself is pinned and bootstrapped into
# .venv-tools/ with pip, so a fresh machine needs nothing but python3 (with venv) and make.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON     ?= python3
UV_VERSION := 0.13.8
TOOLS      := .venv-tools
UV         := $(TOOLS)/bin/uv
UV_STAMP   := $(TOOLS)/.uv-$(UV_VERSION)
VENV       := .venv
VENV_STAMP := $(VENV)/.tinyfleet-synced
BIN        := $(VENV)/bin
ARGS       ?=

# uv: never download a Python (only the package registries are reachable), never touch another venv.
export UV_PYTHON_DOWNLOADS := never
unexport VIRTUAL_ENV

.PHONY: help env demo test lint typecheck services timescaledb c-sdk-deps audio-deps browser-deps bench models models-quick models-push clean

help:
	@echo "make demo       service + simulated devices + UI on an embedded broker and database"
	@echo "make test       everything CI runs: services, TimescaleDB, lint, types, tests"
	@echo "make lint       ruff + mypy"
	@echo "make bench      run the benchmarks in bench/ against the local broker and database"
	@echo "make models     the TinyML pipeline: simulated data -> train -> int8/prune -> TFLM evaluation -> models/artifacts"
	@echo "make models-push  push models/artifacts into the registry (TINYFLEET_URL, TINYFLEET_API_KEY)"
	@echo "make env        only create/refresh .venv from uv.lock"
	@echo "make clean      remove .venv, .venv-tools and caches"

# ---------------------------------------------------------------------------------------------- environment

$(UV_STAMP):
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	  scripts/ensure-system-packages.sh python3-venv; \
	fi
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	touch $@

$(VENV_STAMP): uv.lock pyproject.toml $(UV_STAMP)
	$(UV) sync --frozen --all-extras --python "$$(command -v $(PYTHON))"
	touch $@

env: $(VENV_STAMP)

# ------------------------------------------------------------------------------------------------ the two

demo: env
	$(BIN)/tinyfleet demo $(ARGS)

# Lint, types and tests all run even when an earlier one fails; the exit status is non-zero if any failed.
test: env services timescaledb c-sdk-deps audio-deps browser-deps
	@failed=(); \
	echo "==> ruff check ."; $(BIN)/ruff check . || failed+=(ruff); \
	echo "==> mypy"; $(BIN)/mypy || failed+=(mypy); \
	echo "==> pytest"; $(BIN)/pytest -q $(ARGS) || failed+=(pytest); \
	if [ $${#failed[@]} -gt 0 ]; then echo "make test: FAILED: $${failed[*]}" >&2; exit 1; fi

# ------------------------------------------------------------------------------------------------ the parts

lint: env
	@failed=(); \
	echo "==> ruff check ."; $(BIN)/ruff check . || failed+=(ruff); \
	echo "==> mypy"; $(BIN)/mypy || failed+=(mypy); \
	if [ $${#failed[@]} -gt 0 ]; then echo "make lint: FAILED: $${failed[*]}" >&2; exit 1; fi

typecheck: env
	$(BIN)/mypy

services:
	scripts/ensure-services.sh

timescaledb: services
	scripts/install-timescaledb.sh

# The C device SDK's toolchain: tests/device_sdk/test_c_sdk.py builds it with gcc and clang (plus ASan/UBSan and
# libFuzzer) and runs its cmocka tests under ctest; the Cortex-M4 build runs under QEMU.
C_SDK_PACKAGES := cmake gcc clang pkg-config libcmocka-dev libsodium-dev libclang-rt-dev libmosquitto-dev \
	gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm valgrind
c-sdk-deps:
	scripts/ensure-system-packages.sh $(C_SDK_PACKAGES)

# The web UI's browser tests (tests/web) drive Debian's Chromium through Playwright: never a downloaded browser.
browser-deps:
	scripts/ensure-system-packages.sh chromium fonts-dejavu-core

# The pipeline in models/ (TensorFlow from the `train` extra, which `make env` syncs). Full models in minutes, run
# niced; `make models-quick` is the CI size (small data, few epochs) into models/build/quick.
models: env
	TF_USE_LEGACY_KERAS=1 nice -n 10 $(BIN)/python -m models build $(ARGS)

models-quick: env
	TF_USE_LEGACY_KERAS=1 nice -n 10 $(BIN)/python -m models build --quick $(ARGS)

models-push: env
	$(BIN)/python -m models push $(ARGS)

# The reference device's keyword source synthesizes utterances with espeak-ng (tests/device_sdk: KWS on the
# MLCommons model).
AUDIO_PACKAGES := espeak-ng
audio-deps:
	scripts/ensure-system-packages.sh $(AUDIO_PACKAGES)

bench: env services timescaledb c-sdk-deps audio-deps
	scripts/ensure-system-packages.sh gcc libmosquitto-dev
	@shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks in bench/" >&2; exit 1; fi; \
	for f in "$${files[@]}"; do echo "==> $$f"; $(BIN)/python "$$f" $(ARGS); done; \
	for f in bench/*.sh; do echo "==> $$f"; bash "$$f"; done

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
