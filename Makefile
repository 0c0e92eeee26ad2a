# Two entry points: `make book` builds the whole book, `make test` runs the
# tests. Each creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv book test lab clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "Python 3.11 is needed (torch 2.13.0 CPU wheel), found %d.%d; set PYTHON=python3.11" % v)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m parity_learning.book build --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest $(if $(filter full,$(PROFILE)),--run-slow)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=chapters $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf _build
