"""Order-independent sums and means of doubles for Spark aggregates.

A double ``sum``/``avg`` depends on the order rows reach the aggregate, and that order follows
shuffle fetch order, which varies between runs: the same date re-run could give features that differ
in the last bits, and through them a different score or queue. These helpers round every value to a
fixed scale (micro-units by default: a millionth of a dollar, of an MME) and add exact 64-bit
integers, so a re-run gives identical results. Headroom at scale 6: sums up to 9.2e12 per group.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

SCALE = 6


def _units(col: Column | str, scale: int) -> Column:
    c = F.col(col) if isinstance(col, str) else col
    return F.round(c.cast("double") * F.lit(10.0**scale)).cast("long")


def exact_sum(col: Column | str, scale: int = SCALE) -> Column:
    """``sum(col)`` as a double, the same on every run; null when every value is null."""
    return (F.sum(_units(col, scale)) / F.lit(10.0**scale)).cast("double")


def exact_avg(col: Column | str, scale: int = SCALE) -> Column:
    """``avg(col)`` over non-null values as a double, the same on every run; null when none."""
    units = _units(col, scale)
    return F.when(F.count(units) > 0, F.sum(units) / F.count(units) / F.lit(10.0**scale))
