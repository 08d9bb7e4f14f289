# The README's two set-up commands: `make demo` and `make test`. Both work on a fresh machine
# with only Python 3.11 and make; torch is pinned to the CPU wheel through constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip

# install stamps: reinstall when the package metadata or the pins change
$(VENV)/.demo-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[plot,tasks]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.demo-installed

# until `lrkit auto` exists: a schedule showcase (offline; plots + CSV in demo-report/schedules/)
DEMO_SCHED := demo-report/schedules
demo: $(VENV)/.demo-installed
	@mkdir -p $(DEMO_SCHED)
	$(BIN)/lrkit schedule "warmup(100, cosine(900, floor=0.05), start=0.01)" --steps 1000 --lr 3e-4 --plot $(DEMO_SCHED)/warmup-cosine.png --csv $(DEMO_SCHED)/warmup-cosine.csv
	$(BIN)/lrkit schedule "onecycle(1000)" --steps 1000 --lr 0.1 --log --plot $(DEMO_SCHED)/onecycle.png
	$(BIN)/lrkit schedule "restarts(100, mult=2.0, decay=0.7, floor=0.02)" --steps 1500 --lr 0.05 --plot $(DEMO_SCHED)/restarts.png
	$(BIN)/lrkit schedule "warmup(50, wsd(800, 150, cooldown=sqrt), start=0.0)" --steps 1000 --lr 1e-3 --plot $(DEMO_SCHED)/wsd.png
	$(BIN)/lrkit schedule "multistep([300, 600, 800], gamma=0.2)" --steps 1000 --lr 0.1 --plot $(DEMO_SCHED)/multistep.png
	@echo "demo: plots and CSV written to $(DEMO_SCHED)/"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks examples docs

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy src

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q -n 2

test: lint typecheck unit

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/schedules.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
