# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if
# missing and installs torch first (a CPU build by default; see README for a CUDA build),
# then this package with its dev extra.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
WORKSPACE ?= workspace

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first: a bare requirement would pull a multi-GB CUDA build into a CPU machine.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

demo: install
	$(PY) samples/demo.py --workspace $(WORKSPACE)

test: install
	$(VENV)/bin/ruff check faceswap_gan tests benchmarks samples
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check faceswap_gan tests benchmarks samples

bench: install
	$(PY) benchmarks/extract.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/render.py

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache build *.egg-info
