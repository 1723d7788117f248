# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# the demo needs the package alone (no dev tools: no docs, notebooks, zennit)
DEMO_STAMP := $(VENV)/.installed-demo-stamp

.PHONY: demo test lint docs benchmarks figures clean test-models

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/captum-wsam demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

# LRP over every torchvision classification model (slow); writes docs/supported_architectures.md
test-models: $(STAMP)
	CAPTUM_WSAM_FULL_REGISTRY=1 CAPTUM_WSAM_ARCH_TABLE=docs/supported_architectures.md \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/attr/test_lrp_models.py

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

benchmarks: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# README figures as median and range over 3 runs, with date and machine: docs/figures.md, benchmarks/figures.json.
# Run on an idle machine (about 25 min); e.g. `make figures FIGURES_ARGS="--skip demo"` or "--quick --runs 1" (smoke).
# --keep-going: a failing script is marked on the page and the exit status is 1, the others' figures are kept.
FIGURES_ARGS ?=
figures: $(STAMP)
	$(BIN)/python benchmarks/figures.py --keep-going $(FIGURES_ARGS)

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache *.egg-info
