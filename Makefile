# embedrec: `make install`, `make test`, `make demo`, `make bench`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# This project's machines install the local CPU wheel of torch 2.13.0; elsewhere any recent torch works:
#   make install TORCH=torch            (your platform's default build)
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu   (CPU-only build, no CUDA download)
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=
PIP_TORCH_FLAGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: install test demo lint bench bench-quick clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(PIP_TORCH_FLAGS) "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,test]"
	touch $@

# each test file on one of up to 4 worker processes (pytest-xdist), so a file's module fixtures are built once;
# `pytest tests/FILE.py` alone runs in one process, as before
test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# the whole suite again with each pandas that pyproject.toml admits and this machine's does not cover, put first on
# PYTHONPATH (pandas 3.0.6's str.match refused what pandas 3.1 reads: every ingest failed there, session 38)
PANDAS_OTHER ?= 2.2.3 3.0.6
.PHONY: test-pandas
test-pandas: install
	for v in $(PANDAS_OTHER); do \
	  $(BIN)/python -m pip install -q --no-deps --target .pandas-$$v pandas==$$v pytz && \
	  PYTHONPATH=$(CURDIR)/.pandas-$$v $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile \
	    || exit 1; done

# the property tests with new random examples, 20x as many as `make test` draws (which draws the same ones each run)
.PHONY: fuzz
fuzz: install
	HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest -q tests/test_properties.py

lint: install
	$(BIN)/ruff check embedrec tests

demo: install
	$(BIN)/embedrec ingest ml-100k --overwrite
	$(BIN)/embedrec train
	$(BIN)/embedrec recommend --user 196 -k 10 --format table

$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev,test,bench]"
	# LightFM 1.17 has no wheel for this Python: build it (the ranking bench records it as absent if this fails)
	$(BIN)/python -m pip install -q setuptools wheel cython
	-$(BIN)/python -m pip install -q --no-build-isolation lightfm
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench.py

bench-quick: $(VENV)/.bench
	$(BIN)/python benchmarks/bench.py --quick

# explicit ratings vs Surprise SVD (tuned) and SVD++ on ML-100K, 5 random 80/20 seeds; updates BENCHMARKS.md
bench-explicit: $(VENV)/.bench
	$(BIN)/python benchmarks/explicit.py --update-benchmarks

.PHONY: faults
# the full fault suite (issue #17): kill -9, corruption sweep, writers/readers, hostile corpus; counts into BENCHMARKS.md
faults: install
	$(BIN)/python benchmarks/faults.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# The projector export opened in the real TensorBoard in headless Chromium (apt-get install chromium): checks the
# plugin's HTTP API and that the points are drawn; leaves out/projector-check/projector.png. Exit 2: no Chromium.
.PHONY: projector-check
projector-check: install
	$(BIN)/python benchmarks/projector_check.py

# Beyond one machine: 1 vs 2 ranks (torchrun) training and all-user top-K, peak RSS per rank, FAISS IVF-PQ recall
# vs memory at 2M movies (about 40 minutes on a loaded 2-core box); the rows BENCHMARKS.md and docs/scaling.md quote
.PHONY: bench-scaling
bench-scaling: install
	$(BIN)/python benchmarks/scaling.py --json BENCHMARKS.scaling.json
