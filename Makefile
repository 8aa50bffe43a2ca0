# make demo: install, generate the synthetic data if missing, train + evaluate on the CPU.
# make test: install, run the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA := datasets/synthetic-market

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

$(DATA): | install
	$(BIN)/reid data synth --out $(DATA) --identities 200 --seed 0

demo: install $(DATA)
	rm -rf runs/demo
	$(BIN)/reid train -c configs/demo.yaml --output runs/demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check reid tests tools

clean:
	rm -rf runs .pytest_cache $(DATA)
