# The two commands: `make run` (the service on http://127.0.0.1:8000) and
# `make test` (the whole suite). Each sets up everything it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv lint format lock bench bench-quick bench-curves k8s-tools kind-dev clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,standalone]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m cli standalone

test: $(STAMP)
	$(BIN)/python scripts/install-k8s-tools.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q
	scripts/test-cluster.sh $(BIN)/python
	$(BIN)/python scripts/bench-smoke.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# requirements.lock: every package the image installs, pinned with its hashes
# (Dockerfile: pip install --require-hashes). Run after changing dependencies.
lock:
	test -x var/lock-venv/bin/pip-compile || ($(PYTHON) -m venv var/lock-venv \
		&& var/lock-venv/bin/pip install -q pip-tools==7.7.0)
	CUSTOM_COMPILE_COMMAND="make lock" var/lock-venv/bin/pip-compile --quiet \
		--generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# Cost curves, lag under sustained load and docs/capacity.md (~15 min);
# matplotlib (the optional `bench` extra) draws docs/curves/*.png.
bench-curves: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench.curves

k8s-tools: $(STAMP)
	$(BIN)/python scripts/install-k8s-tools.py

kind-dev: $(STAMP)
	scripts/kind-dev.sh

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
