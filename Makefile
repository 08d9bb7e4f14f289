# The README's two set-up commands: `make demo` and `make test`. Both work on a fresh machine
# with only Python 3.11 and make; torch is pinned to the CPU wheel through constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint typecheck unit bench docs dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip

# install stamps: reinstall when the package metadata or the pins change
$(VENV)/.demo-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[plot,tasks,tune]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.demo-installed

# the main job on the built-in digits task (offline): advise -> range test
# -> schedule -> guarded check run -> diagnosis -> report in demo-report/ (HTML + markdown)
DEMO_TASK  := digits
DEMO_STEPS := 600
DEMO_OUT   := demo-report
demo: $(VENV)/.demo-installed
	$(BIN)/lrkit auto --task $(DEMO_TASK) --train-steps $(DEMO_STEPS) --out $(DEMO_OUT)/
	@echo "demo: the report is $(abspath $(DEMO_OUT))/report.html (open it in a browser; markdown: $(DEMO_OUT)/report.md)"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks examples docs

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy src

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q -n 2

test: lint typecheck unit

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/schedules.py

# the documentation site (mkdocs.yml) into site/; any warning fails the build
docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# build the wheel and the sdist in a temporary directory, check their metadata (twine) and that
# the wheel holds the files lrkit reads at run time
dist: $(VENV)/.dev-installed
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m build --sdist --wheel --outdir "$$tmp" . >"$$tmp/build.log" 2>&1 \
	  || { cat "$$tmp/build.log"; exit 1; } && \
	$(BIN)/twine check --strict "$$tmp"/*.whl "$$tmp"/*.tar.gz && \
	$(BIN)/python -c "import sys, zipfile; names = set(zipfile.ZipFile(sys.argv[1]).namelist()); \
	need = {'lrkit/py.typed', 'lrkit/pipeline/templates/report.html.j2', \
	'lrkit/pipeline/templates/report.md.j2', 'lrkit/pipeline/templates/report.css'}; \
	missing = need - names; print('dist: wheel is missing', sorted(missing)) if missing else None; \
	sys.exit(bool(missing))" "$$tmp"/*.whl && \
	echo "dist: $$(cd "$$tmp" && ls *.whl *.tar.gz | tr '\n' ' ')built and checked"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
