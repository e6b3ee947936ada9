# Two commands set everything up on a fresh machine:
#   make demo   build the OpenMoji dataset, train a hints model on CPU, translate the test split, write a report
#   make test   run the test suite
# Both create .venv and install the project into it first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of PyTorch (this pin takes the CPU wheel); on a GPU machine: make TORCH=torch ...
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEMO   ?= demo
# The main job trains a generator of 32 filters for 4,000 steps at lr 1e-3 (see configs/openmoji_cpu.yaml; how
# long it takes: the README). `make DEMO_ARGS= demo` trains the config as written (16 filters, 6,000 steps).
DEMO_ARGS ?= --ngf 32 --max-steps 4000 --lr 1e-3

.PHONY: install demo broad-base test test-all check bench clean

install: $(STAMP)

# What the main job needs.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[openmoji,watch,onnx,serve,sketch]"
	touch $(STAMP)

# What only the tests add: pytest, import-linter, Playwright + Debian's Chromium, the TFLite converter.
$(TEST_STAMP): $(STAMP) scripts/setup-test-deps.sh
	$(BIN)/python -m pip install --quiet -e ".[openmoji,watch,onnx,serve,sketch,tflite,dev]"
	bash scripts/setup-test-deps.sh $(BIN)/python
	touch $(TEST_STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)/run $(DEMO)/report $(DEMO)/translated
	$(BIN)/pix2pix data openmoji --out $(DEMO)/data --size 64
	$(BIN)/pix2pix train --config configs/openmoji_cpu.yaml --data $(DEMO)/data --out $(DEMO)/run $(DEMO_ARGS)
	$(BIN)/pix2pix evaluate $(DEMO)/run --split test --checkpoint best --hints 10 --out $(DEMO)/report
	$(BIN)/pix2pix translate $(DEMO)/run $(DEMO)/report/inputs --checkpoint best --out $(DEMO)/translated
	@echo "results page: $(DEMO)/report/index.html"

# After `make demo`: a broader base for own art (`--init-from $(DEMO)/broad`), the main job's model trained 1,500
# steps more on OpenMoji plus Debian's Papirus app icons as line art (apt-get download; about 12 minutes on a
# 2-core CPU). docs/results.md measures it on the own-art benchmark.
broad-base: $(STAMP)
	$(BIN)/python benchmarks/broad_base.py --base $(DEMO)/run --base-only --out $(DEMO)/broad

# Lint and format (ruff), the import contract (pyproject.toml: imports only go down), then the tests.
test: $(TEST_STAMP) check
	$(BIN)/python -m pytest

test-all: $(TEST_STAMP) check
	$(BIN)/python -m pytest -m ""

check: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --quick

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
