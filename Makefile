# Two commands on a fresh machine: `make train` and `make test` (each sets up .venv first).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
# The suite on three workers, a test file per worker (its module fixtures are built once). On 2 cores a third
# worker fills the time the others spend waiting on launched runs, SLURM and servers (docs/design.md, "Tests").
XDIST ?= -n 3 --dist loadfile

.PHONY: install train test lint clean

install: $(VENV)/.installed

# torch goes in first, pinned, so that the project's `torch>=2.4` is already satisfied by the CPU
# wheel and pip never pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,eval]'
	touch $@

train: install
	$(VENV)/bin/lmlab-train $(ARGS)

test: install
	$(VENV)/bin/pytest $(XDIST) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
