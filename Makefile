# Set-up is part of every target: the first run creates .venv and installs what is needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= demo-out

.PHONY: setup demo demo-quick test bench lint clean

setup: $(STAMP)

# torch first (the CPU build), so nothing pulls a CUDA build; animal-mnist last and with
# --no-deps because it declares tensorflow but never imports it. torchattacks and torchattack
# are the independent implementations tests/test_differential.py checks the attacks against:
# --no-deps, since they would pull torchvision (and more) that nothing here needs.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,dask]"
	$(PY) -m pip install --quiet --no-deps animal-mnist==0.4
	$(PY) -m pip install --quiet --no-deps torchattacks==3.5.1 torchattack==1.7.2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/transferability demo --out $(OUT)

demo-quick: $(STAMP)
	$(VENV)/bin/transferability demo --quick --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadgroup tests

# torchattacks (installed by setup, --no-deps) joins the attack benchmarks
bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
