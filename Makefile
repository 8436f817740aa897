# Everything a new machine needs: Python 3.10+, pip and cargo. Targets create .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test check test-rust test-python dev native bench clean constraints

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Editable install: a debug build of the Rust core, rebuilt incrementally by cargo. The test
# environment's versions are pinned by requirements/test-constraints.txt: without the pins pip's
# resolver backtracked for over 10 minutes on a fresh venv (2026-12-03), and CI would not start.
# `make constraints` refreshes the pins from a working .venv.
CONSTRAINTS := requirements/test-constraints.txt

# torch (zoopipe_zerocopy's tests) is installed beside .venv, in $(TORCH_DIR), and put on its path
# by a .pth file: Ray's pip runtime_envs copy the whole driver virtualenv per environment and node
# (ray/_private/runtime_env/_clonevirtualenv.py), and inside .venv torch's 4.7 GB of CUDA wheels
# made every such copy take 40 s; the copied .pth still points here.
TORCH_DIR := .venv-torch

dev: $(PY) $(TORCH_DIR)/.installed
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[test]"
	echo "$(CURDIR)/$(TORCH_DIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zoopipe-torch.pth"

$(TORCH_DIR)/.installed: $(CONSTRAINTS) | $(PY)
	rm -rf $(TORCH_DIR)
	$(PIP) install --quiet --target $(TORCH_DIR) -c $(CONSTRAINTS) torch
	touch $@

constraints: $(PY)
	{ echo "# pip constraints for the test environment (make dev); refreshed by make constraints"; \
	  $(PIP) freeze --exclude-editable | grep -v ' @ file:'; } > $(CONSTRAINTS)

# Rebuild only the Rust extension of an editable install (debug), in place.
native: $(PY)
	cargo build -p zoopipe-py
	so=$$($(PY) -c "import sysconfig; print('zoopipe_core/_native' + sysconfig.get_config_var('EXT_SUFFIX'))"); \
	cp target/debug/lib_native.so $$so.tmp && mv $$so.tmp $$so

# A new user's first run: the release build a `pip install` gives, in its own venv, with only
# what the demo uses (no extras: no Ray, Dask or test tools).
DEMO_VENV ?= .venv-demo
demo:
	test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet .
	$(DEMO_VENV)/bin/python examples/demo.py

test: check test-rust test-python

# The house rules: lint and format (Python and Rust), types, and the architecture's import contracts.
check: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	cargo test -p zoopipe-exec --locked

test-python: dev
	$(PY) -m pytest

# Benchmarks use a release build in their own venv, with the peers installed beside it.
BENCH_VENV ?= .venv-bench
bench:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet ".[bench]"
	cd benchmarks && ../$(BENCH_VENV)/bin/python run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TORCH_DIR) $(BENCH_VENV) $(DEMO_VENV) target build *.egg-info zoopipe_core/_native*.so
