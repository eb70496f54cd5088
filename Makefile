# Two entry points (see README): `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pbrl-installed
# Everything CI tests: DeepMind Control, Ray Tune, videos, the labeling server, the dev tools (pytest, psycopg…).
EXTRAS := dev,video,label,dmc,ray

.PHONY: install demo test test-slow system-deps repair-mujoco

# After the install, `import mujoco` must work; an environment broken by hand afterwards is repaired here too.
install: $(STAMP)
	@$(BIN)/python -c 'import mujoco' >/dev/null 2>&1 || { \
	  $(MAKE) --no-print-directory repair-mujoco && $(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'; }

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
	$(BIN)/python -m pip install -q torch==2.13.0
	@$(MAKE) --no-print-directory repair-mujoco
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# MuJoCo 4 split the one `mujoco` package into mujoco + mujoco-core + mujoco-studio, which install
# the same files: pip moving an environment across the split, in either direction, deletes or
# shadows files the other side needs and `import mujoco` fails. pbrl pins the monolithic 3.3.0
# (pyproject.toml); an environment holding the split packages, or whose `import mujoco` fails,
# gets all three removed with whatever they left behind, and the install puts 3.3.0 back.
repair-mujoco:
	@if [ -x $(BIN)/python ] && { $(BIN)/python -m pip show -q mujoco-core >/dev/null 2>&1 || \
	     { $(BIN)/python -m pip show -q mujoco >/dev/null 2>&1 && ! $(BIN)/python -c 'import mujoco' >/dev/null 2>&1; }; }; then \
	  echo "$(VENV): MuJoCo is the split 4.x packages or a broken mix; removing mujoco, mujoco-core, mujoco-studio (pbrl installs mujoco 3.3.0)"; \
	  $(BIN)/python -m pip uninstall -y -q mujoco mujoco-core mujoco-studio; \
	  rm -rf "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mujoco"; \
	fi

demo: install
	$(BIN)/pbrl train --config experiments/configs/demo.yaml

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow
