# Two commands: `make run` (the main job) and `make test` (the suite).
# Each creates .venv when missing and installs everything the project needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/zoo tour --out runs/tour

test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile  # one worker per core (pytest-xdist); a test file stays on one worker

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow || test $$? -eq 5  # exit 5: no test is marked slow

bench: $(STAMP)
	$(PY) benchmarks/em_vs_sklearn.py
	$(PY) benchmarks/cavi_vs_sklearn.py
	$(PY) benchmarks/vae_step.py --no-jit
	$(PY) benchmarks/vae_digits.py --compare-plain
	$(PY) benchmarks/kde_vs_sklearn.py
	$(PY) benchmarks/em_out_of_core.py  # writes a 1.3 GB .npy under runs/bench the first time

clean:
	rm -rf $(VENV) runs .pytest_cache
