# Two commands set up everything on a fresh machine: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv chromium clean bench bench-ray

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -r requirements-ray.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	IMGAI_HOME=$${IMGAI_HOME:-./imgai_data} $(BIN)/python app.py

# Browser tests drive Debian's Chromium; install it when missing (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/tag_throughput.py

bench-ray: $(STAMP)
	$(BIN)/python bench/tag_ray.py

clean:
	rm -rf $(VENV) imgai_data test-output .pytest_cache
