# Two entry points (see README): `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pbrl-installed

.PHONY: install demo test test-slow system-deps

install: $(STAMP)

# Headless MuJoCo rendering needs EGL with Mesa's software renderer (Debian packages).
system-deps:
	@if command -v dpkg >/dev/null && ! dpkg -s libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri; \
	  else echo "note: install libegl1 libegl-mesa0 libgl1-mesa-dri for headless rendering"; fi; fi
	@# The labeling page's browser test drives Debian's chromium; it is skipped (never failed) without it.
	@if command -v dpkg >/dev/null && ! dpkg -s chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	      || echo "note: chromium could not be installed; the labeling page's browser test will be skipped"; \
	  else echo "note: install chromium for the labeling page's browser test (skipped without it)"; fi; fi

# torch is installed first and pinned, so pip never swaps in a multi-GB CUDA build.
$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,video,label]'
	touch $(STAMP)

demo: install
	$(BIN)/pbrl train --config experiments/configs/demo.yaml

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow
