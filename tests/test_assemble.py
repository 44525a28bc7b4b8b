"""Wiring of the feature blocks (features/assemble.py): values land on the right claim, and a
single-source block never makes Spark re-shuffle the wide claim frame."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from claimsentry.features.assemble import join_blocks


def _base(spark):
    # The same claim_id in both sources: a join on claim_id alone would cross them.
    return spark.createDataFrame(
        [("c1", "medical", 10.0), ("c1", "pharmacy", 20.0), ("c2", "medical", 30.0)],
        "claim_id string, claim_source string, amount_paid double",
    )


def _blocks(spark):
    rx = spark.createDataFrame([("c1", 5.0)], "claim_id string, mme_per_day double").select(
        "claim_id", F.lit("pharmacy").alias("claim_source"), "mme_per_day"
    )
    prof = spark.createDataFrame([("c1", 1.0), ("c2", 0.0)], "claim_id string, em_level double").select(
        "claim_id", F.lit("medical").alias("claim_source"), "em_level"
    )
    both = spark.createDataFrame(
        [("c1", "medical", 1.0), ("c1", "pharmacy", 2.0)], "claim_id string, claim_source string, peer_z double"
    )
    return [both, rx, prof]


def test_blocks_join_on_claim_id_and_source(spark):
    got = join_blocks(_base(spark), _blocks(spark))
    expect = spark.createDataFrame(
        [("c1", "medical", 10.0, 1.0, None, 1.0), ("c1", "pharmacy", 20.0, 2.0, 5.0, None),
         ("c2", "medical", 30.0, None, None, 0.0)],
        "claim_id string, claim_source string, amount_paid double, peer_z double, mme_per_day double, em_level double",
    )
    assertDataFrameEqual(got, expect)


def test_single_source_blocks_keep_both_keys_in_the_join(spark):
    """A block whose claim_source is a literal used to be joined on claim_id alone, the literal a
    filter: the wide frame was then re-hashed on claim_id (a 3.5 GiB exchange at 10M lines,
    BENCHMARKS.md's history in git, 2026-12-03). Every block join is now on the one claim key."""
    plan = join_blocks(_base(spark), _blocks(spark))._jdf.queryExecution().optimizedPlan().toString()
    joins = [line for line in plan.splitlines() if "Join LeftOuter" in line]
    assert len(joins) == 3
    assert all("_claim_key" in j and "claim_source" not in j for j in joins), joins
