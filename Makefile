# fraudcore dev loop.
#
#   make test        set up .venv (first time / when build inputs change), run the whole suite
#   make demo        set up, then `fraudcore demo`
#   make bench       set up, install the benchmark peers, then run every suite (`fraudcore bench`)
#   make bench-deps  install the benchmark peers and plotting (bench/deps.sh), and redis-server
#   make lint        ruff, when it is installed (not a hard dependency)
#   make clean       remove build products (keeps .venv); `make distclean` removes .venv too
#
# Set-up is incremental, driven by three stamps:
#   .venv/.stamp-deps     venv created, pip upgraded, build deps installed   (pyproject.toml)
#   .venv/.stamp-install  editable install with the test extras           (pyproject.toml, setup.py)
#   build/.stamp-native   Cython extensions built in place   (*.pyx/.pxd/.pxi/.h, cel/opcodes.py, the list of them)
# so a second `make test` goes straight to pytest, and editing a .pyx rebuilds only
# what changed (`setup.py build_ext --inplace` is incremental; pip's editable build is not).
#
# Knobs: PYTHON=python3.12 (interpreter for the venv), PYTEST_ARGS="-k string -x".
# A debug build (setup.py's FRAUDCORE_DEBUG=1) is `make clean && FRAUDCORE_DEBUG=1 make native`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PYTEST_ARGS ?=

NATIVE_DIR := src/fraudcore/_native
# Inputs of the native build: Cython sources and headers, plus the Python opcode
# table that setup.py renders into _native/opcodes.pxi.
NATIVE_SRCS := $(sort $(wildcard $(NATIVE_DIR)/*.pyx $(NATIVE_DIR)/*.pxd $(NATIVE_DIR)/*.pxi $(NATIVE_DIR)/*.h \
                                 src/fraudcore/cel/opcodes.py))

STAMP_DEPS := $(VENV)/.stamp-deps
STAMP_INSTALL := $(VENV)/.stamp-install
STAMP_NATIVE := build/.stamp-native
# The list of native sources, rewritten only when it changes, so that adding or
# deleting a .pyx/.pxd/.h (not only editing one) triggers a rebuild.
NATIVE_LIST := build/native-sources.txt

ifneq ($(strip $(file <$(NATIVE_LIST))),$(strip $(NATIVE_SRCS)))
$(shell mkdir -p build)
$(file >$(NATIVE_LIST),$(NATIVE_SRCS))
endif

.DEFAULT_GOAL := test
.PHONY: test demo bench bench-deps lint clean distclean setup native

setup: $(STAMP_NATIVE)

$(STAMP_DEPS): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install --upgrade "setuptools>=77" wheel "Cython>=3.0.10" "numpy>=1.26"
	@touch $@

# --no-build-isolation: build with the venv's Cython/numpy (no fresh download per install).
# setuptools' editable mode builds the extensions and copies them into src/, and
# the src/ tree is what the venv imports (a static .pth), so the .so files are importable.
$(STAMP_INSTALL): $(STAMP_DEPS) pyproject.toml setup.py
	$(PIP) install --no-build-isolation -e '.[test]'
	@touch $@

# Incremental in-place rebuild; also drops extensions whose .pyx is gone, so a
# deleted module cannot linger as a stale .so that still imports.
$(STAMP_NATIVE): $(STAMP_INSTALL) setup.py $(NATIVE_SRCS) $(NATIVE_LIST)
	@for so in $(NATIVE_DIR)/*.so; do \
	    [ -e "$$so" ] || continue; \
	    base=$${so%%.*}; \
	    if [ ! -e "$$base.pyx" ]; then echo "removing stale $$so"; rm -f "$$so" "$$base.c" "$$base.cpp"; fi; \
	done
	$(PY) setup.py -q build_ext --inplace
	@mkdir -p build && touch $@

native: $(STAMP_NATIVE)

# The CEL and rule tests run a second time with the native extension off:
# the reference paths must give the same answers on their own.
NO_EXT_TESTS := tests/unit/test_cel_api.py tests/unit/test_policy.py tests/conformance

test: $(STAMP_NATIVE)
	FRAUDCORE_NO_EXTENSIONS=1 $(PY) -m pytest -q $(NO_EXT_TESTS)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP_NATIVE)
	$(VENV)/bin/fraudcore demo

# Every suite in full (`fraudcore bench --help` lists them); results in bench/results/.
bench: bench-deps
	$(VENV)/bin/fraudcore bench

# What the suites need beyond the test dependencies: the peer engines and
# plotting (bench/requirements-bench.txt) and Debian's redis-server.
bench-deps: $(STAMP_NATIVE)
	bash bench/deps.sh $(PY)

lint:
	@if [ -x $(VENV)/bin/ruff ]; then RUFF=$(VENV)/bin/ruff; \
	elif command -v ruff >/dev/null 2>&1; then RUFF=ruff; \
	else echo "ruff is not installed; skipping lint (pip install ruff)"; exit 0; fi; \
	$$RUFF check src tests bench server && $$RUFF format --check src tests bench server

clean:
	rm -rf build dist src/*.egg-info .pytest_cache .hypothesis .benchmarks
	rm -f $(NATIVE_DIR)/*.so $(NATIVE_DIR)/*.c $(NATIVE_DIR)/*.cpp $(NATIVE_DIR)/*.html
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
