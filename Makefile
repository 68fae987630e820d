# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   (virtual environment if needed, then the main job on the synthetic data)
#   make test   (virtual environment if needed, then lint and the test suite)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint unit slow bench r-reference synthetic clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,dask]'
	touch $(STAMP)

# the end-to-end analysis on the synthetic cohorts: writes transport-demo/report.html
demo: $(STAMP)
	MPLBACKEND=Agg $(BIN)/transport demo --overwrite

test: lint unit

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m "not slow" --doctest-modules transport tests

lint: $(STAMP)
	$(BIN)/ruff check transport tests benchmarks vignettes
	$(BIN)/ruff format --check transport tests benchmarks vignettes
	$(BIN)/mypy

# pytest exits 5 when nothing is marked slow yet: that is not a failure
slow: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m slow; status=$$?; test $$status -eq 0 -o $$status -eq 5

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_km.py
	$(BIN)/python benchmarks/bench_bootstrap.py
	$(BIN)/python benchmarks/bench_scale.py

# Regenerate the stored R reference numbers (needs R with the survival package).
r-reference: $(STAMP)
	$(BIN)/python tests/r/make_km_cases.py
	Rscript tests/r/km_reference.R tests/r

synthetic: $(STAMP)
	$(BIN)/python -m transport.simulate.build data/synthetic

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache vignettes/figures
