"""The one place a SparkSession is built. Jobs' entry points call ``get_spark``; transforms never do."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from pyspark.sql import SparkSession

from claimsentry.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


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


@contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str | None]) -> Iterator[None]:
    """Run the block with these SQL settings (None: unset), then put each back as it was, also on an
    error: a setting that helps one pass must not leak into the plans that follow."""

    def put(values: dict[str, str | None]) -> None:
        for key, value in values.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)

    before = {key: spark.conf.get(key, None) for key in settings}
    put(settings)
    try:
        yield
    finally:
        put(before)


@contextmanager
def beside(spark: SparkSession, work: Callable[[], T], *, pool: str) -> Iterator[Callable[[], T]]:
    """Run ``work`` in a thread of its own while the block runs; the block gets a function that
    waits for ``work`` and returns its result (or raises its error).

    Spark jobs of both threads share the executors. With ``spark.scheduler.mode: FAIR`` (the
    default settings) ``work``'s jobs go to a scheduler ``pool`` of their own, so a long stage of
    the block does not hold every core while ``work`` waits, nor the reverse. The thread is a
    ``pyspark.InheritableThread``: it starts with the caller's Spark job properties.

    Leaving the block always waits for ``work`` first, also on an error, so nothing ``work`` writes
    appears after its caller has moved on (or cleaned up); the block's own error wins, and an error
    of ``work`` no one asked for is logged."""
    from pyspark.util import InheritableThread

    outcome: dict[str, object] = {}

    def run() -> None:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller's thread by result()
            outcome["error"] = exc

    thread = InheritableThread(target=run, name=f"claimsentry-{pool}", daemon=True)

    def result() -> T:
        thread.join()
        if "error" in outcome:
            raise outcome.pop("error")  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]

    thread.start()
    try:
        yield result
    finally:
        thread.join()
        if "error" in outcome:
            log.error("%s, beside the run, failed too: %s", pool, outcome["error"])
