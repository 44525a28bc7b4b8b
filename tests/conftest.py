"""Shared fixtures: one real local SparkSession per test session, settings rooted in a temp dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("claimsentry-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "3g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture()
def settings(tmp_path):
    """Settings whose data_dir (MLflow store, queue history) is a fresh temp folder."""
    from claimsentry.config import load_settings

    return load_settings(
        environ={},
        overrides={"data_dir": str(tmp_path / "data")},
    )


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the repo")
    return SHARED


@pytest.fixture(scope="session")
def generated_claims(tmp_path_factory) -> Path:
    """A small generated claims directory (contract tables, labels, truth), shared by the session."""
    from claimsentry.generate import generate

    out = tmp_path_factory.mktemp("generated") / "input"
    generate(str(out), members=300, seed=5)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, spark, generated_claims):
    """``train_from_input`` on ``generated_claims`` into a fresh MLflow store, once per session:
    ``{"settings": ..., "result": ...}`` (the job's returned model_version, run_id, metrics...)."""
    import datetime as dt

    from claimsentry.config import load_settings
    from claimsentry.jobs.train import train_from_input

    data_dir = tmp_path_factory.mktemp("trained") / "data"
    settings = load_settings(environ={}, overrides={"data_dir": str(data_dir)})
    result = train_from_input(spark, str(generated_claims), settings, as_of=dt.date(2026, 1, 1))
    return {"settings": settings, "result": result}


@pytest.fixture(scope="session")
def trained_settings(trained_run):
    """Settings whose MLflow store holds a champion trained on ``generated_claims``.

    Tests that write queue history must point ``queue.history_dir`` at their own temp dir. No test
    may register a model in this store: the others rely on its champion being ``trained_run``'s."""
    return trained_run["settings"]


def claimsentry_cli(*args: str, env: dict | None = None, cwd=None):
    """Run the installed console command as a user would; returns CompletedProcess."""
    import subprocess

    exe = Path(sys.executable).with_name("claimsentry")
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600)


# The two longest chains of tests, dispatched first so that each takes a worker at once: the Airflow
# DAG runs (model_training, then claims_daily and its backfill) and everything scored by the
# session's champion. The rest then fill whichever worker is free.
FIRST_GROUPS = ("airflow_runs", "champion")


def _group(item) -> str:
    if "trained_run" in item.fixturenames:
        return "champion"
    if {"airflow_home", "trained"} <= set(item.fixturenames):
        return "airflow_runs"
    return item.module.__name__


def pytest_itemcollected(item):
    """``make test`` runs ``pytest -n 2 --dist loadgroup --no-loadscope-reorder``: a worker takes a
    whole group at a time. Tests that share an expensive fixture share a group, so it is built once:
    the champion, the DAG runs, otherwise the test's module (its module fixtures). Marked as each
    item is collected, because xdist reads the marks in its own ``collection_modifyitems``."""
    item.add_marker(pytest.mark.xdist_group(_group(item)))


def pytest_collection_modifyitems(items):
    first = {name: rank for rank, name in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: first.get(_group(item), len(first)))  # stable: modules stay whole
