# make demo: install, generate the synthetic data if missing, train + evaluate on the CPU.
# make test: install, run the test suite without the tests marked slow (under 3 min on 2 cores).
# make test-slow: only the slow tests (.ci/run runs both); make lint: ruff check + ruff format --check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA := datasets/synthetic-market

.PHONY: install demo test test-slow lint clean

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

# pytest -m expression of `make test`; MARK= runs everything
MARK ?= not slow

test: install
	$(BIN)/python -m pytest -m "$(MARK)"

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check reid tests tools
	$(BIN)/ruff format --check reid tests tools

clean:
	rm -rf runs .pytest_cache $(DATA)
