"""claimsentry.spark.beside: work that runs in its own thread beside a block of Spark work."""

from __future__ import annotations

import threading
import time

import pytest

from claimsentry.spark import beside


def test_beside_runs_its_work_while_the_block_runs_in_its_own_scheduler_pool(spark):
    block_started = threading.Event()
    seen = {}

    def work() -> int:
        # A sequential runner would wait here for a block that has not started: the test times out.
        seen["beside_the_block"] = block_started.wait(timeout=60)
        seen["pool"] = spark.sparkContext.getLocalProperty("spark.scheduler.pool")
        seen["description"] = spark.sparkContext.getLocalProperty("spark.job.description")
        return spark.range(1000).where("id % 7 = 0").count()

    spark.sparkContext.setJobDescription("claimsentry test")
    try:
        with beside(spark, work, pool="data_quality") as result:
            block_started.set()
            in_block = spark.range(100).count()
            assert spark.sparkContext.getLocalProperty("spark.scheduler.pool") is None
            assert result() == 143
    finally:
        spark.sparkContext.setJobDescription(None)
    assert in_block == 100
    assert seen == {"beside_the_block": True, "pool": "data_quality", "description": "claimsentry test"}


def test_beside_hands_its_error_to_the_caller(spark):
    def work() -> None:
        raise ValueError("report broke")

    with pytest.raises(ValueError, match="report broke"):
        with beside(spark, work, pool="p") as result:
            result()


def test_a_failing_block_waits_for_the_work_and_keeps_its_own_error(spark, tmp_path, caplog):
    done = tmp_path / "written"

    def work() -> None:
        time.sleep(0.5)
        done.write_text("late write")  # e.g. the report writing into the run's staging folder
        raise OSError("disk full")

    with pytest.raises(KeyError, match="features broke"):
        with beside(spark, work, pool="data_quality"):
            raise KeyError("features broke")
    # The caller (atomic_dir) cleans up only after this point: nothing is written after it.
    assert done.read_text() == "late write"
    assert "data_quality, beside the run, failed too: disk full" in caplog.text
