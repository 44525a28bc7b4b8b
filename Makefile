# One environment for everything (Spark, XGBoost, MLflow, Great Expectations, Airflow), pinned by
# requirements.lock. Needs only Python 3.11, Java 17 and make on the machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Test workers: each is one pytest process with its own local SparkSession (about 3 GB).
TEST_WORKERS ?= 2
STAMP  := $(VENV)/.installed
# uv installs the same pinned lock as pip would (same packages and versions), in 37 s against pip's
# 149 s on an empty cache (2 cores, 2026-12-03). --compile-bytecode writes the .pyc files at install,
# as pip does: without them, where PYTHONDONTWRITEBYTECODE is set (this VM), every process compiled
# what it imported, every time: importing Airflow, PySpark, MLflow, GE, pandas and XGBoost took
# 19.0-19.2 s against 9.2-9.3 s.
UV_VERSION := 0.13.9

.PHONY: setup demo test browser bench holdout lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null 2>&1 || { echo "claimsentry setup: Java 17 is required by Spark (java not on PATH)" >&2; exit 1; }
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "claimsentry setup: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(PY) -m uv pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

demo: setup
	$(VENV)/bin/claimsentry demo

test: setup browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# The case-page tests read pages in a real headless Chromium (tests/browser.py). Installed from the
# Debian packages when missing and this is root on a Debian/Ubuntu machine; otherwise it says how.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 \
	  || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	         echo "claimsentry test: installing Chromium (apt-get) for the case-page tests"; \
	         apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	       else echo "claimsentry test: the case-page tests need Chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# The benchmark of BENCHMARKS.md: each size in a fresh process, with its ceilings, on the shipped
# Spark settings (10M lines: 552 s on 2 cores, JVM peak 5.3 GB, 2026-12-04).
# `make bench BENCH_SIZES=1000000` runs one size; `BENCH_CONFIG=bench/spark-16g.yaml` the 16g heap.
# An exported CLAIMSENTRY_CONFIG is kept, not blanked.
BENCH_SIZES  ?= 1000000,5000000,10000000
BENCH_CONFIG ?= $(CLAIMSENTRY_CONFIG)

bench: setup
	CLAIMSENTRY_CONFIG=$(BENCH_CONFIG) $(PY) bench/run.py --sizes $(BENCH_SIZES)

# The held-out-perpetrator table of docs/modeling.md: demo-size data, seed 42 and the untuned seed 7.
holdout: setup
	$(PY) bench/holdout.py --seeds 42,7

# Re-pin after changing dependencies in pyproject.toml (run inside a fresh venv).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -vi '^claimsentry' > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
