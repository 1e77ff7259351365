# The whole set-up and every routine task of the book. `make test` and `make book` work on a fresh machine that has
# only Python 3.11: the first target that needs the environment creates .venv and installs everything into it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: env test unit-tests notebook-tests book notebooks repository-url clean gpu-tests gpu-bench gpu-experiments

env: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(INSTALLED)

## Unit tests of the package, then every notebook re-run and compared with its committed outputs.
test: unit-tests notebook-tests

unit-tests: $(INSTALLED)
	$(PY) -m pytest -q tests

notebook-tests: $(INSTALLED)
	$(PY) -m pytest -q $(NBVAL) notebooks

## The HTML book in _build/html, from the committed notebook outputs, with warnings as errors.
book: $(INSTALLED)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

## Re-execute every notebook in place (the only way committed outputs are made).
notebooks: $(INSTALLED)
	$(PY) -m radam.book_tools execute notebooks/*.ipynb

clean:
	rm -rf _build

## After changing repository.url in _config.yml (a fork): rewrite every notebook's Colab install cell to match.
repository-url: $(INSTALLED)
	$(PY) -m radam.book_tools sync-repository-url

## On a machine with a CUDA GPU, with the python3 and torch it has (no .venv, nothing installed, no network): the
## tests that need the GPU, the benchmark (JSON into radam/data/bench/) and the full-size experiments
## (radam/data/NAME-full.json), each resumable. Commit what they write, then `make notebooks`.
GPU_PYTHON ?= python3
GPU_JOBS ?= 8
GPU_RUN := PYTHONPATH=$(CURDIR) PYTHONUNBUFFERED=1 $(GPU_PYTHON)

# (tests/test_fused.py is left to CI: its interpreter tests need Triton >= 3.9's interpreter with numpy 2)
gpu-tests:
	$(GPU_RUN) -m pytest -q -rs tests/test_fused_cuda.py tests/test_optimizer_cuda.py tests/test_bench.py

gpu-bench:
	$(GPU_RUN) -m radam.bench --device cuda --out-dir radam/data/bench

gpu-experiments:
	for name in transformer-warmup gradient-histograms lr-robustness; do \
		for part in $$($(GPU_RUN) -m radam.experiments parts $$name --full); do \
			$(GPU_RUN) -m radam.experiments run $$name --full --part $$part --write-cache --jobs $(GPU_JOBS) --no-progress || exit 1; \
		done; \
	done
