"""``claimsentry.spark.Background``: a side job (the GE report) runs beside the caller's Spark work
on the same session; its result or error comes back to the caller, and a failing caller cancels it."""

from __future__ import annotations

import time

import pytest

from claimsentry.spark import Background


def test_background_returns_its_result_and_reraises_its_error(spark):
    with Background(spark, "side", lambda: spark.range(1000).selectExpr("sum(id) AS s").first()["s"]) as side:
        here = spark.range(10).count()  # the caller's own job, meanwhile
        assert side.result() == 499500 and here == 10

    def broken():
        raise ValueError("report failed")

    with pytest.raises(ValueError, match="report failed"), Background(spark, "side", broken) as side:
        side.result()
    with pytest.raises(ValueError, match="report failed"), Background(spark, "side", broken):
        pass  # an error is never lost, even when nobody asked for the result


def test_a_failing_caller_cancels_the_background_jobs_and_waits_for_them(spark):
    started = []

    def endless():  # a job that would run for hours: only cancelling ends it
        started.append(True)
        return spark.range(0, 10**14, numPartitions=2).selectExpr("sum(id)").collect()

    with pytest.raises(RuntimeError, match="caller failed"):
        with Background(spark, "side", endless) as side:
            while not started or not spark.sparkContext.statusTracker().getActiveJobsIds():
                time.sleep(0.1)
            raise RuntimeError("caller failed")
    assert not side._thread.is_alive()
    assert "cancel" in str(side._error).lower()
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []
