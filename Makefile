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
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: embedrec needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + ": run make with PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(PIP_TORCH_FLAGS) "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,test]"
	touch $@

# each test file on one of up to 4 worker processes (pytest-xdist), so a file's module fixtures are built once;
# `pytest tests/FILE.py` alone runs in one process, as before
test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# the whole suite again with other releases of the dependencies that pyproject.toml admits, each set put first on
# PYTHONPATH from PyPI: pandas 3.0.6's str.match refused what pandas 3.1 reads (every ingest failed there), and the
# oldest set found pyarrow 14 without page checksums and click 8.2.0's other wording (session 38)
VERSION_SETS ?= pandas-2.2.3 pandas-3.0.6 oldest
SET_pandas-2.2.3 := pandas==2.2.3 pytz
SET_pandas-3.0.6 := pandas==3.0.6
SET_oldest := numpy==1.24.4 pandas==2.0.3 pyarrow==15.0.2 click==8.2.0 faiss-cpu==1.7.4 matplotlib==3.7.5 \
	contourpy==1.1.1 pytz
.PHONY: test-versions
test-versions: install
	$(foreach s,$(VERSION_SETS),$(BIN)/python -m pip install -q --no-deps --target .versions/$(s) $(SET_$(s)) && \
	  PYTHONPATH=$(CURDIR)/.versions/$(s) $(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile && ) true

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
