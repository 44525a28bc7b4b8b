"""Duplicate claims and overlapping stays (scheme ``duplicate_billing``; overlaps also ``split_admission``).

Grain: the output is one row per (claim_id, claim_source), medical and pharmacy.

A claim's *service signature* is the sorted set of its line codes: HCPCS (else revenue center) codes
plus the billed DRG for medical claims, NDCs for pharmacy claims.

- exact duplicate: another claim_id with the same person, billing provider, signature, service date
  and paid amount (to the cent). Every claim of such a group is flagged: which one is the copy is
  the auditor's call (paid dates do not tell reliably; a copy is often paid first). Each names
  another member of its group in ``duplicate_of_claim_id`` (the earliest paid, or for that one the
  next). ``exact_duplicate_later`` marks every claim of the group but the one with the lowest claim
  id: payers number claims as they receive them (ICN/DCN), so a higher number was billed later —
  the copy, which the knowledge base treats as certain (rule DUP004).
- near duplicate: the previous claim of the same person with the same signature (ordered by service
  date) lies within ``near_duplicate_days`` days and is not an exact copy (a different provider,
  date or amount). The later claim is flagged.
- overlapping stay: another inpatient stay of the same person (any facility) overlaps this one by
  at least a night (other admission < this discharge and other discharge > this admission); a
  transfer discharged and admitted on the same day does not count.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry.features.drg import inpatient_stays

FEATURES: dict[str, str] = {
    "exact_duplicate": "1 if another claim has the same person, provider, service codes, date and paid amount",
    "exact_duplicate_later": "1 if an exact duplicate with a lower claim id (received earlier) exists: this claim is the copy",
    "near_duplicate": (
        "1 if the member's previous claim with the same service codes is within near_duplicate_days days"
        " but differs in provider, date or amount"
    ),
    "overlapping_stay": "1 if another inpatient stay of the same member overlaps this stay by a night or more",
}
CONTEXT_COLUMNS = ("duplicate_of_claim_id", "near_duplicate_of_claim_id", "near_duplicate_gap_days", "overlapping_claim_id")
DEFAULTS = {"near_duplicate_days": 3}


def service_signatures(lines: DataFrame, header: DataFrame | None, pharmacy: DataFrame | None) -> DataFrame:
    """One row per (claim_id, claim_source): ``service_signature`` (sorted distinct codes joined by
    ``|``) and the claim's earliest ``first_paid_date``."""
    code = F.coalesce(F.col("hcpcs_code"), F.col("revenue_center_code"))
    medical = lines.groupBy("claim_id").agg(
        F.array_sort(F.collect_set(code)).alias("_codes"), F.min("paid_date").alias("first_paid_date")
    )
    if header is not None and "drg_code" in header.columns:
        drg = F.array(F.concat(F.lit("drg:"), F.col("drg_code")))
        medical = medical.join(header.select("claim_id", "drg_code"), "claim_id", "left").withColumn(
            "_codes", F.when(F.col("drg_code").isNotNull(), F.concat(drg, F.col("_codes"))).otherwise(F.col("_codes"))
        )
    medical = medical.select(
        "claim_id",
        F.lit("medical").alias("claim_source"),
        F.when(F.size("_codes") > 0, F.concat_ws("|", "_codes")).alias("service_signature"),
        "first_paid_date",
    )
    if pharmacy is None:
        return medical
    ndcs = F.array_sort(F.collect_set("ndc_code"))
    rx = pharmacy.groupBy("claim_id").agg(
        F.when(F.size(ndcs) > 0, F.concat_ws("|", ndcs)).alias("service_signature"),
        F.min("paid_date").alias("first_paid_date"),
    )
    return medical.unionByName(rx.select("claim_id", F.lit("pharmacy").alias("claim_source"), "service_signature", "first_paid_date"))


def duplicate_features(claims: DataFrame, signatures: DataFrame, *, near_duplicate_days: int) -> DataFrame:
    """One row per (claim_id, claim_source) of ``claims`` (base rows: claim_id, claim_source,
    person_id, billing_npi, claim_date, amount_paid) with exact_duplicate, near_duplicate and their
    context columns. ``signatures`` is ``service_signatures`` output."""
    frame = claims.select("claim_id", "claim_source", "person_id", "billing_npi", "claim_date", "amount_paid").join(
        signatures, ["claim_id", "claim_source"], "left"
    ).withColumn("_cents", F.round(F.col("amount_paid") * 100).cast("long"))
    keyed = F.col("person_id").isNotNull() & F.col("service_signature").isNotNull() & F.col("claim_date").isNotNull()

    exact_w = Window.partitionBy(
        "claim_source", "person_id", "billing_npi", "service_signature", "claim_date", "_cents"
    ).orderBy(F.col("first_paid_date").asc_nulls_last(), "claim_id")
    rank = F.row_number().over(exact_w)
    group_size = F.count(F.lit(1)).over(exact_w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
    other = F.when(rank > 1, F.first("claim_id").over(exact_w)).otherwise(F.lead("claim_id").over(exact_w))
    first_received = F.min("claim_id").over(exact_w.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
    exact_ok = keyed & F.col("billing_npi").isNotNull() & F.col("_cents").isNotNull()

    near_w = Window.partitionBy("claim_source", "person_id", "service_signature").orderBy(
        "claim_date", F.col("first_paid_date").asc_nulls_last(), "claim_id"
    )
    prev_date = F.lag("claim_date").over(near_w)
    gap = F.datediff("claim_date", prev_date)
    same_as_prev = (
        (F.lag("billing_npi").over(near_w) == F.col("billing_npi"))
        & (gap == 0)
        & (F.lag("_cents").over(near_w) == F.col("_cents"))
    )
    near = (gap <= near_duplicate_days) & ~F.coalesce(same_as_prev, F.lit(False))
    return frame.select(
        "claim_id",
        "claim_source",
        F.when(exact_ok & (group_size > 1), 1.0).otherwise(0.0).alias("exact_duplicate"),
        F.when(exact_ok & (group_size > 1) & (F.col("claim_id") != first_received), 1.0).otherwise(0.0).alias("exact_duplicate_later"),
        F.when(keyed & F.coalesce(near, F.lit(False)), 1.0).otherwise(0.0).alias("near_duplicate"),
        F.when(exact_ok & (group_size > 1), other).alias("duplicate_of_claim_id"),
        F.when(keyed & F.coalesce(near, F.lit(False)), F.lag("claim_id").over(near_w)).alias("near_duplicate_of_claim_id"),
        F.when(keyed & F.coalesce(near, F.lit(False)), gap.cast("double")).alias("near_duplicate_gap_days"),
    )


def overlapping_stays(stays: DataFrame) -> DataFrame:
    """One row per inpatient claim_id of ``stays`` (``drg.inpatient_stays``): overlapping_stay
    (0/1; null without dates) and the id of one overlapping stay."""
    order = Window.partitionBy("person_id").orderBy("admission_date", "discharge_date", "claim_id")
    before = order.rowsBetween(Window.unboundedPreceding, -1)
    prev_max_discharge = F.max("discharge_date").over(before)
    prev_claim = F.max_by("claim_id", F.struct("discharge_date", "claim_id")).over(before)
    next_admission = F.lead("admission_date").over(order)
    overlaps_prev = F.coalesce(prev_max_discharge > F.col("admission_date"), F.lit(False))
    overlaps_next = F.coalesce(next_admission < F.col("discharge_date"), F.lit(False))
    known = F.col("admission_date").isNotNull() & F.col("discharge_date").isNotNull() & F.col("person_id").isNotNull()
    return stays.select(
        "claim_id",
        F.lit("medical").alias("claim_source"),
        F.when(known, (overlaps_prev | overlaps_next).cast("double")).alias("overlapping_stay"),
        F.when(known & overlaps_prev, prev_claim)
        .when(known & overlaps_next, F.lead("claim_id").over(order))
        .alias("overlapping_claim_id"),
    )


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    signatures = service_signatures(ctx.tables["medical_claim"], ctx.header, ctx.tables.get("pharmacy_claim"))
    dupes = duplicate_features(ctx.base, signatures, near_duplicate_days=int(ctx.param("near_duplicate_days", 3)))
    frame = dupes.join(overlapping_stays(inpatient_stays(ctx.header)), ["claim_id", "claim_source"], "left")
    return frame, FEATURES
