# crossgraph: `make test` and `make demo` work on a fresh machine with nothing but Python 3.10+.
# Each creates .venv if it is missing and installs everything (CPU builds; pins in constraints.txt).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.crossgraph-installed
PYTEST_ARGS ?=

.PHONY: install test test-fast demo lint bench bench-large fuzz sweep fixtures clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	# Keras 2 (tf_keras) for the Keras-2 front-end tests. --no-deps: its metadata asks for the
	# full `tensorflow` wheel, which would be installed over tensorflow-cpu.
	$(PY) -m pip install --quiet --no-deps -c constraints.txt tf-keras
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) fixtures/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(PY) bench/run_all.py

bench-large: $(STAMP)
	$(PY) bench/large.py $(if $(GIB),--gib $(GIB),)

fuzz: $(STAMP)
	$(PY) bench/fuzz_loaders.py $(or $(CASES),500)

# Models the tests do not cover, to every target with parity: ~90 architectures and modules
# (sweep_models.py, about 30 minutes) and ~40 ONNX files as other tools write them (sweep_onnx.py,
# about 3 minutes). ONLY=a,b picks some rows of the first.
sweep: $(STAMP)
	$(PY) bench/sweep_models.py $(if $(ONLY),--only $(ONLY),); s1=$$?; \
	$(PY) bench/sweep_onnx.py; s2=$$?; test $$s1 -eq 0 -a $$s2 -eq 0

fixtures: $(STAMP)
	$(PY) fixtures/build_onnx_fixtures.py
	$(PY) fixtures/build_tf_fixtures.py
	$(PY) fixtures/build_torch_fixtures.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
