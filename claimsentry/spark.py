"""The one place a SparkSession is built. Jobs' entry points call ``get_spark``; transforms never do."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator

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
