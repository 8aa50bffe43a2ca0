# make demo: install, generate the synthetic data if missing, train + evaluate on the CPU.
# make test: install, run the test suite without the tests marked slow (under 3 min on 2 cores).
# make test-slow: only the slow tests (.ci/run runs both); make lint: ruff check + ruff format --check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA := datasets/synthetic-market
# reid track's tracker and metrics; --no-deps: they declare opencv-python, which would sit beside
# our opencv-contrib-python-headless as a second cv2 (numpy/scipy/matplotlib they need are ours already)
TRACK_PACKAGES := deep-sort-realtime trackeval

.PHONY: install demo test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt $(TRACK_PACKAGES)
	# a venv made before the switch to contrib: drop the other OpenCV, then restore the cv2 files they share
	if $(BIN)/python -m pip list 2>/dev/null | grep -qiE '^opencv-python(-headless)? '; then \
	  $(BIN)/python -m pip uninstall --quiet -y opencv-python opencv-python-headless; \
	  $(BIN)/python -m pip install --quiet --force-reinstall --no-deps -c constraints.txt opencv-contrib-python-headless; \
	fi
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
