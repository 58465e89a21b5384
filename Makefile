# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint format demo-data train bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.app-installed

## Install the app and serve it on the demo data with gunicorn (port $(PORT)).
run: $(VENV)/.app-installed
	TRAIN_IF_MISSING=1 PORT=$(PORT) PATH="$(abspath $(BIN)):$$PATH" \
		sh -c "$$(sed -n 's/^web: //p' Procfile)"

## Install everything (Python packages, Debian chromium) and run lint + all tests.
test: $(VENV)/.dev-installed
	sh tests/install-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Regenerate the synthetic demo datasets in webapp/datasets.
demo-data: $(VENV)/.app-installed
	$(BIN)/python -m webapp.demo

train: $(VENV)/.app-installed
	$(BIN)/flask --app webapp ml train

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
