# Set-up and checks. `make test` works on a fresh machine: it creates .venv and installs everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test test-fast demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# headless Chromium for the HTML report's browser test (tests/report); skipped there if this cannot run
	command -v chromium >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium not installed (needs root and apt-get): the HTML browser test will be skipped"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The demo: a fresh MMAR with synthetic data, a small real search tracked in the embedded MLflow store,
# then the report. DEMO_DIR is overwritten (--force) but never deleted.
DEMO_DIR ?= demo
DEMO_JOBS ?= 6
MMAR_AUTOML := $(VENV)/bin/mmar-automl

demo: $(STAMP)
	$(MMAR_AUTOML) init $(DEMO_DIR) --synthetic-data 16 --force
	$(MMAR_AUTOML) run $(DEMO_DIR) --workers cpu:cpu --seed 0 --max-jobs $(DEMO_JOBS)
	$(MMAR_AUTOML) report $(DEMO_DIR) --html $(DEMO_DIR)/automl/report.html
	@echo "HTML report: $(abspath $(DEMO_DIR))/automl/report.html"
	@echo "MLflow UI:   $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath $(DEMO_DIR))/automl/mlflow.db"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
