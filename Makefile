# Two commands set up everything on a fresh machine: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv chromium clean bench bench-ray gpu-wheels support-table

REQUIREMENTS := -r requirements-dev.txt -r requirements-ray.txt
# uv unpacks the wheels in parallel: this venv (6.9 GB) took 52 s with uv and 150-196 s with pip
# here. It leaves byte-compiling to each module's first import (PYRUN below lets Python write the
# .pyc): --compile-bytecode took 43 s of 45 s of an install from uv's cache, for ~19,400 modules of
# which a full test run imports ~4,500. It reads the sources pip is configured with
# (tools/uv_sources.py); where uv cannot be had or fails, pip installs (and compiles) the same pins.
# 0.13.9: the uv release measured here.
UV := uv==0.13.9

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml setup.py tools/uv_sources.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	( $(BIN)/pip install -q --disable-pip-version-check "$(UV)" && sources="$$($(BIN)/python tools/uv_sources.py)" \
	  && $(BIN)/uv pip install -q --python $(BIN)/python $$sources $(REQUIREMENTS) ) \
	|| $(BIN)/pip install -q --disable-pip-version-check $(REQUIREMENTS)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

# Python as the app and the tests run it: writing each module's bytecode on its first import, even
# where the environment sets PYTHONDONTWRITEBYTECODE (every later process reads the .pyc).
PYRUN := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python

run: $(STAMP)
	IMGAI_HOME=$${IMGAI_HOME:-./imgai_data} $(PYRUN) app.py

# Browser tests drive Debian's Chromium; install it when missing (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# Two test processes (TEST_WORKERS=0 runs them in this one). A file's tests stay in one process
# (--dist loadfile), so a module's fixture, such as the diffusion matrix, is built once; the slowest
# files go first, in the order tests/conftest.py's SLOWEST_FIRST gives (--no-loadscope-reorder).
TEST_WORKERS ?= 2
test: $(STAMP) chromium
	$(PYRUN) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/tag_throughput.py

bench-ray: $(STAMP)
	$(BIN)/python bench/tag_ray.py

# What bench/gpu_check.sh carries to the GPU machine (which lacks them): `make gpu-wheels`, then there
# `bash bench/gpu_check.sh ./.whl`. Pure-Python wheels, plus torchao's and psutil's abi3 x86_64 builds.
gpu-wheels: $(STAMP)
	$(BIN)/pip download -q --no-deps -d .whl diffusers==0.39.0 torchao==0.18.0 accelerate==1.15.0 \
	  pytest==8.4.2 pluggy==1.7.0 iniconfig==2.3.1 psutil==7.2.2

clean:
	rm -rf $(VENV) imgai_data test-output .pytest_cache

# The support table (imgai/classify/support_table.json): convert and validate every candidate
# family (`bench/support_sweep.py --only PATTERN` for some). Takes tens of minutes on two cores.
support-table: $(STAMP)
	$(BIN)/python bench/support_sweep.py
