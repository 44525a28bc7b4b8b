"""Order-independent double aggregates: a re-run of a date must give the same features."""

import itertools

from pyspark.sql import functions as F

from claimsentry.exact import exact_avg, exact_sum


def test_sum_and_mean_do_not_depend_on_row_order(spark):
    # As doubles, (0.1 + 0.2) + 0.3 = 0.6000000000000001 but 0.1 + (0.2 + 0.3) = 0.6.
    got, plain = set(), set()
    for order in itertools.permutations([0.1, 0.2, 0.3]):
        df = spark.createDataFrame([("g", v) for v in order], "g string, v double").coalesce(1)
        row = df.groupBy("g").agg(exact_sum("v").alias("s"), exact_avg("v").alias("m"), F.sum("v").alias("plain")).first()
        got.add((row["s"], row["m"]))
        plain.add(row["plain"])
    assert len(plain) > 1, "the data must be order-sensitive for a plain double sum"
    assert got == {(0.6, 0.2)}


def test_nulls_are_skipped_and_all_null_is_null(spark):
    df = spark.createDataFrame([("a", 2.5), ("a", None), ("b", None)], "g string, v double")
    rows = {r["g"]: (r["s"], r["m"]) for r in df.groupBy("g").agg(exact_sum("v").alias("s"), exact_avg("v").alias("m")).collect()}
    assert rows == {"a": (2.5, 2.5), "b": (None, None)}
