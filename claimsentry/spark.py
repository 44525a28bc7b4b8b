"""The one place a SparkSession is built. Jobs' entry points call ``get_spark``; transforms never do."""

from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from claimsentry.config import Settings

log = logging.getLogger(__name__)


def get_spark(settings: Settings) -> SparkSession:
    """Return the active session, or build one from ``spark.*`` settings.

    Under ``spark-submit`` a session's master is already set by the launcher, so the configured
    ``spark.master`` (local by default) only applies when the job runs as a plain Python process.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(settings.get("spark.app_name", "claimsentry"))
    if "SPARK_SUBMIT_OPTS" not in os.environ and not os.environ.get("CLAIMSENTRY_UNDER_SPARK_SUBMIT"):
        builder = builder.master(settings.get("spark.master", "local[2]"))
        # Local Python workers must run this interpreter (the one with pandas/xgboost), not the
        # first python3 on PATH. On a cluster, spark-submit's own PYSPARK_PYTHON applies.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in (settings.get("spark.conf") or {}).items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info("spark session: master=%s version=%s", spark.sparkContext.master, spark.version)
    return spark


class Background:
    """Run ``fn`` in a thread that shares the SparkSession, while the caller's thread goes on.

    Spark runs jobs from several threads at once; the background's jobs carry their own job group
    and scheduler pool (``spark.scheduler.mode: FAIR`` then shares the cores between the two), so a
    latency-bound side job such as the Great Expectations report (hundreds of one-metric jobs)
    overlaps the caller's CPU-bound stages instead of adding to them. Use it as a context manager:
    ``result()`` waits and re-raises the thread's exception; leaving the block early (the caller
    failed) cancels the background's Spark jobs and waits for the thread, so nothing is still
    writing when the caller cleans up."""

    def __init__(self, spark: SparkSession, name: str, fn) -> None:
        from pyspark import InheritableThread

        self._sc, self._group = spark.sparkContext, f"claimsentry-{name}-{id(self)}"
        self._value, self._error = None, None

        def run() -> None:
            self._sc.setJobGroup(self._group, f"claimsentry {name}", interruptOnCancel=True)
            self._sc.setLocalProperty("spark.scheduler.pool", name)
            try:
                self._value = fn()
            except BaseException as exc:  # re-raised in the caller's thread by result()
                self._error = exc

        self._thread = InheritableThread(target=run, name=f"claimsentry-{name}", daemon=True)

    def __enter__(self) -> "Background":
        self._thread.start()
        return self

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._thread.is_alive():
            self._sc.cancelJobGroup(self._group)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error  # never lost, even when the caller did not ask for the result
