# Two commands for a fresh clone: `make reproduce` and `make test`. Both create .venv if missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lrkit-installed
PROFILE ?= smoke

.PHONY: install reproduce test test-all lab clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name lrkit --display-name "Python (lrkit)" >/dev/null
	@touch $(STAMP)

install: $(STAMP)

# Regenerate the kit's tables and figures on the embedded data and print the HTML report's path.
reproduce: $(STAMP)
	$(VENV)/bin/lrkit reproduce --profile $(PROFILE)

# The CPU test suite CI runs, the whole smoke batch and the paper-profile miniature through the real
# `lrkit reproduce` path included (GPU/online/slow tests are marked and skipped unless asked for). Two pytest
# workers, one test file each at a time: most unit tests use one thread, the two batch tests both cores.
TEST_WORKERS ?= 2
test: $(STAMP)
	@bash tests/setup_browser.sh
	$(PY) -m pytest -m "not slow and not gpu and not online" -q -n $(TEST_WORKERS) --dist loadfile

# Everything that can run on this machine, slow tests included.
# tests/setup_browser.sh: Debian's headless Chromium for the report tests (they skip, saying why, without it).
test-all: $(STAMP)
	@bash tests/setup_browser.sh
	$(PY) -m pytest -m "not gpu and not online" -q -n $(TEST_WORKERS) --dist loadfile

# JupyterLab on notebooks/ with the lrkit kernel; works as root too (lrkit lab adds --allow-root there).
LAB_ARGS ?=
lab: $(STAMP)
	$(VENV)/bin/lrkit lab $(LAB_ARGS)

clean-venv:
	rm -rf $(VENV)
