"""Services after death and outside enrollment (schemes ``service_after_death``, ``outside_enrollment``).

Grain: the output is one row per (claim_id, claim_source), medical AND pharmacy claims, from the
base rows (``features.assemble``). The service period of a medical claim is claim_date ..
service_end_date (admission .. discharge for a stay); of a pharmacy claim the dispensing date
(a supply that runs past the end of coverage was dispensed while covered).

Eligibility (one row per enrollment span) is reduced to one row per person: the recorded death date
(earliest, when spans disagree) and the member's enrollment spans merged where they overlap or touch.

Enrollment is only known where the eligibility feed reaches: from its earliest span start to its
latest span end. A service day outside that window is unknown, not "outside enrollment" — CMS
DE-SynPUF, for one, has inpatient claims from late 2007 and beneficiary files from 2008 on, and every
such claim would otherwise count as billed without coverage (and rank first, as a certain rule).
Likewise a member one of whose eligibility rows the gate quarantined has unknown enrollment
(``days_outside_enrollment`` null): the rejected row may have held the span that covers the claim.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

FEATURES: dict[str, str] = {
    "days_after_death": (
        "days from the member's recorded death date to the service date (0 if on or before it or no death"
        " recorded; null if the member is not in eligibility)"
    ),
    "days_outside_enrollment": "days of the claim's service period not covered by any enrollment span of the member",
}
CONTEXT_COLUMNS = ("member_death_date", "service_period_days")


def merged_enrollment_spans(eligibility: DataFrame) -> DataFrame:
    """One row per (person_id, merged span): enrollment spans that overlap or are contiguous
    (next start <= previous end + 1 day) are merged into span_start_date .. span_end_date."""
    spans = eligibility.where(F.col("enrollment_start_date").isNotNull() & F.col("enrollment_end_date").isNotNull())
    order = Window.partitionBy("person_id").orderBy("enrollment_start_date", "enrollment_end_date")
    prev_end = F.max("enrollment_end_date").over(order.rowsBetween(Window.unboundedPreceding, -1))
    starts_new = (prev_end.isNull() | (F.col("enrollment_start_date") > F.date_add(prev_end, 1))).cast("int")
    numbered = spans.withColumn("_new", starts_new).withColumn(
        "_span_no", F.sum("_new").over(order.rowsBetween(Window.unboundedPreceding, 0))
    )
    return numbered.groupBy("person_id", "_span_no").agg(
        F.min("enrollment_start_date").alias("span_start_date"), F.max("enrollment_end_date").alias("span_end_date")
    ).drop("_span_no")


def member_death_dates(eligibility: DataFrame) -> DataFrame:
    """One row per person_id in eligibility: member_death_date (earliest recorded; null if none)."""
    return eligibility.groupBy("person_id").agg(F.min("death_date").alias("member_death_date"))


def quarantined_members(quarantine: DataFrame | None) -> DataFrame | None:
    """One row per person_id with an eligibility row the gate rejected (from its raw row content)."""
    if quarantine is None:
        return None
    pid = F.get_json_object(F.col("row_content"), "$.person_id")
    return quarantine.where(F.col("table") == "eligibility").select(pid.alias("person_id")).where(F.col("person_id").isNotNull()).distinct()


def member_features(claims: DataFrame, eligibility: DataFrame, incomplete: DataFrame | None = None) -> DataFrame:
    """One row per (claim_id, claim_source) of ``claims`` (claim_id, claim_source, person_id,
    claim_date, service_end_date) with FEATURES and CONTEXT_COLUMNS.

    ``days_outside_enrollment`` counts the claim's service days inside the feed's window (module
    docstring) and outside every merged span of the member; a member with no enrollment at all has
    every such day outside. ``days_after_death`` is null for a member absent from eligibility
    (nothing known), 0 with no recorded death. ``incomplete``: person_ids whose enrollment is not
    fully known (a rejected eligibility row); their ``days_outside_enrollment`` is null.
    """
    start = F.col("claim_date")
    end = F.when(F.col("claim_source") == "pharmacy", start).otherwise(
        F.greatest(start, F.coalesce(F.col("service_end_date"), start))
    )
    periods = claims.select("claim_id", "claim_source", "person_id", start.alias("_start"), end.alias("_end"))
    feed = eligibility.agg(  # one row: the dates the feed covers
        F.min("enrollment_start_date").alias("_feed_start"), F.max("enrollment_end_date").alias("_feed_end")
    )
    periods = periods.crossJoin(F.broadcast(feed)).select(
        "claim_id", "claim_source", "person_id", "_start", "_end",
        F.greatest("_start", "_feed_start").alias("_wstart"), F.least("_end", "_feed_end").alias("_wend"),
    )

    spans = merged_enrollment_spans(eligibility)
    overlap_days = F.datediff(F.least("_wend", "span_end_date"), F.greatest("_wstart", "span_start_date")) + 1
    covered = (
        periods.join(spans, "person_id", "inner")
        .where(overlap_days > 0)
        .groupBy("claim_id", "claim_source")
        .agg(F.sum(overlap_days).alias("_covered_days"))
    )
    deaths = member_death_dates(eligibility).withColumn("_known_member", F.lit(True))
    if incomplete is not None:
        periods = periods.join(F.broadcast(incomplete.withColumn("_incomplete", F.lit(True))), "person_id", "left")
    else:
        periods = periods.withColumn("_incomplete", F.lit(None).cast("boolean"))
    service_period_days = F.datediff("_end", "_start") + 1
    after_death = F.datediff("_start", "member_death_date")
    return (
        periods.join(covered, ["claim_id", "claim_source"], "left")
        .join(deaths, "person_id", "left")
        .select(
            "claim_id",
            "claim_source",
            F.when(F.col("_known_member"), F.greatest(F.coalesce(after_death, F.lit(0)), F.lit(0)))
            .cast("double")
            .alias("days_after_death"),
            F.when(
                F.col("_start").isNotNull() & F.col("_incomplete").isNull(),
                F.greatest(F.datediff("_wend", "_wstart") + 1, F.lit(0)) - F.coalesce(F.col("_covered_days"), F.lit(0)),
            )
            .cast("double")
            .alias("days_outside_enrollment"),
            "member_death_date",
            service_period_days.cast("double").alias("service_period_days"),
        )
    )


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    eligibility = ctx.tables.get("eligibility")
    if eligibility is None:
        ctx.unavailable.extend(FEATURES)
        return None, FEATURES
    return member_features(ctx.base, eligibility, quarantined_members(ctx.quarantine)), FEATURES
