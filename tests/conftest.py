"""Shared fixtures: one real local SparkSession per test session, settings rooted in a temp dir."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DAGS = REPO / "dags"
TRAINING_DATE = "2026-01-04"  # the model_training run that trains the session's champion


def bench_module(name: str):
    """A script of bench/ imported as a module (bench/ is not a package)."""
    import importlib

    sys.path.insert(0, str(REPO / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "bench"))


def utc(ds: str) -> dt.datetime:
    """A DAG run's logical date: midnight UTC of ``YYYY-MM-DD``."""
    return dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc)


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
        .config("spark.scheduler.mode", "FAIR")  # as conf/claimsentry.yaml: the GE report runs beside scoring
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
def airflow_home(tmp_path_factory):
    """A private AIRFLOW_HOME with a migrated sqlite metadata DB. Must run before Airflow is imported."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    if "airflow.configuration" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail("Airflow was imported before the airflow_home fixture could point AIRFLOW_HOME at a temp dir")
    os.environ.update(env)
    from airflow.utils import db

    db.initdb()
    return home


@pytest.fixture(scope="session")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@contextlib.contextmanager
def without_retries(dag):
    """dag.test() waits out retry delays (2, 4 min); a full run in CI should fail at once instead."""
    saved = {t.task_id: t.retries for t in dag.tasks}
    for t in dag.tasks:
        t.retries = 0
    try:
        yield dag
    finally:
        for t in dag.tasks:
            t.retries = saved[t.task_id]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, airflow_home, dagbag, spark, generated_claims):
    """The session's champion: a real ``dag.test()`` run of ``model_training`` (in-process path:
    ``train_from_input``) on ``generated_claims`` into a fresh MLflow store, once per session.
    ``{"settings", "result" (the train task's summary: model_version, run_id, decision, metrics...),
    "dag_run", "output_root"}``; tests/test_dags.py asserts the run itself."""
    from claimsentry.config import load_settings

    work = tmp_path_factory.mktemp("trained")
    overrides = {"data_dir": str(work / "data")}
    conf = {"training_input": str(generated_claims), "output_root": str(work / "out"), "spark_submit": False,
            "settings_overrides": overrides}
    with without_retries(dagbag.dags["model_training"]) as dag:
        dag_run = dag.test(logical_date=utc(TRAINING_DATE), run_conf=conf)
    summary = work / "out" / "_training" / TRAINING_DATE / "train_summary.json"
    return {
        "settings": load_settings(environ={}, overrides=overrides),
        "result": json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {},
        "dag_run": dag_run,
        "output_root": work / "out",
    }


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


# The longest chain of tests, dispatched first so that it takes a worker at once: everything that
# needs the session's champion (the model_training DAG run that trains it, the claims_daily DAG runs
# and every other test it scores for). The rest then fill the other worker.
FIRST_GROUPS = ("champion",)


def _group(item) -> str:
    if "trained_run" in item.fixturenames:
        return "champion"
    return item.module.__name__


def pytest_itemcollected(item):
    """``make test`` runs ``pytest -n 2 --dist loadgroup --no-loadscope-reorder``: a worker takes a
    whole group at a time. Tests that share an expensive fixture share a group, so it is built once:
    the champion, otherwise the test's module (its module fixtures). Marked as each
    item is collected, because xdist reads the marks in its own ``collection_modifyitems``."""
    item.add_marker(pytest.mark.xdist_group(_group(item)))


def pytest_collection_modifyitems(items):
    first = {name: rank for rank, name in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: first.get(_group(item), len(first)))  # stable: modules stay whole
