"""Medical claim header: one row per claim_id, derived from claim lines.

Claims arrive at line grain with header fields repeated on every line. When lines disagree, the
header takes the value that strictly wins a vote among the claim's non-null values (more lines carry
it than any other value), and otherwise leaves the field null — never an arbitrary ``first()``.
This is how the Tuva Project builds its claim header.

Cost: one ``groupBy(claim_id)`` computes min/max per field; only claims where some field's min and
max differ (lines truly disagree) go through the per-value vote, so a clean feed pays one shuffle.

The 75 coding columns (diagnosis codes, their present-on-admission flags, procedure codes) are not
part of the header: only the MS-DRG grouper reads them, for inpatient stays. ``claim_coding`` votes
them the same way for the claims asked for, over those claims' lines alone. In the header's sort
aggregate they were three quarters of the fields, for every claim (BENCHMARKS.md's history in git, 2026-12-03 (g)).
"""

from __future__ import annotations

from typing import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry.exact import exact_sum
from claimsentry.schemas import DIAGNOSIS_COLUMNS, POA_COLUMNS, PROCEDURE_COLUMNS

HEADER_COLUMNS: tuple[str, ...] = (
    "claim_type",
    "person_id",
    "member_id",
    "payer",
    "plan",
    "billing_npi",
    "rendering_npi",
    "facility_npi",
    "claim_start_date",
    "claim_end_date",
    "admission_date",
    "discharge_date",
    "admit_source_code",
    "admit_type_code",
    "discharge_disposition_code",
    "place_of_service_code",
    "bill_type_code",
    "drg_code_type",
    "drg_code",
    "diagnosis_code_type",
    "procedure_code_type",
)
# Voted per claim by ``claim_coding``, for the claims that need them (inpatient stays to regroup).
CODING_COLUMNS: tuple[str, ...] = (*DIAGNOSIS_COLUMNS, *POA_COLUMNS, *PROCEDURE_COLUMNS)
SUMMED_AMOUNTS: tuple[str, ...] = ("paid_amount", "allowed_amount", "charge_amount")

# Claims whose lines disagree are voted on their own; up to this many, the vote is broadcast to the header
# (a claim_id and ~100 mostly null values each), so the header needs no shuffle of its own.
VOTE_BROADCAST_LIMIT = 200_000

# Fields whose presence marks a claim institutional (UB-04) when claim_type itself is missing.
_INSTITUTIONAL_MARKERS = (
    "bill_type_code",
    "drg_code",
    "admit_type_code",
    "admit_source_code",
    "discharge_disposition_code",
)


def _vote_conflicts(lines: DataFrame, conflicted: DataFrame, columns: list[str]) -> DataFrame:
    """Strict-majority vote per (claim_id, field) over the lines of conflicted claims only."""
    stacked = lines.join(conflicted, "claim_id", "left_semi").select(
        "claim_id",
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(c).alias("field"), F.col(c).cast("string").alias("value"))
                    for c in columns
                ]
            )
        ).alias("fv"),
    )
    counted = (
        stacked.where(F.col("fv.value").isNotNull())
        .groupBy("claim_id", F.col("fv.field").alias("field"), F.col("fv.value").alias("value"))
        .count()
    )
    w = Window.partitionBy("claim_id", "field").orderBy(F.col("count").desc())
    ranked = counted.withColumn("_rn", F.row_number().over(w)).withColumn(
        "_next", F.lead("count").over(w)
    )
    winners = ranked.where(
        (F.col("_rn") == 1) & (F.col("_next").isNull() | (F.col("count") > F.col("_next")))
    )
    return winners.groupBy("claim_id").pivot("field", columns).agg(F.first("value"))


def _voted(
    lines: DataFrame,
    present: list[str],
    aggs: list,
    *,
    cache: Callable[[DataFrame], DataFrame],
    broadcast_votes_up_to: int,
) -> tuple[DataFrame, bool]:
    """One row per claim_id of ``lines``: each of ``present`` voted (the value every non-null line
    agrees on, else the strict-majority vote, else null), in its own type, plus the columns of
    ``aggs`` (aliased aggregate expressions). Also whether the caller should cache what it builds
    on the result: a vote too large to broadcast is a shuffle join, not to be recomputed."""
    types = dict(lines.select(*present).dtypes)
    min_max = []
    for c in present:
        min_max += [F.min(c).alias(f"_min_{c}"), F.max(c).alias(f"_max_{c}")]
    grouped = lines.groupBy("claim_id").agg(*min_max, *aggs)

    conflict = F.lit(False)
    for c in present:
        conflict = conflict | (F.col(f"_min_{c}") != F.col(f"_max_{c}"))
    # One column per field: the value every line agrees on, else null (the vote below fills it).
    agreed = [F.when(F.col(f"_min_{c}") == F.col(f"_max_{c}"), F.col(f"_min_{c}")).alias(c) for c in present]
    rest = [c for c in grouped.columns if c != "claim_id" and not c.startswith(("_min_", "_max_"))]
    grouped = cache(grouped.select("claim_id", *agreed, *rest, conflict.alias("_conflict")))
    conflicted = grouped.where("_conflict").select("claim_id")
    n_conflicted = conflicted.count()  # one small job over the cached aggregate (it materialises it)
    if n_conflicted == 0:
        return grouped.select("claim_id", *present, *rest), False
    few = n_conflicted <= broadcast_votes_up_to
    votes = _vote_conflicts(lines, F.broadcast(conflicted) if few else conflicted, present)
    votes = votes.select("claim_id", *[F.col(f"`{c}`").alias(f"_vote_{c}") for c in present])
    joined = grouped.join(F.broadcast(cache(votes)), "claim_id", "left") if few else grouped.join(votes, "claim_id", "left")
    voted = [F.when(F.col("_conflict"), F.col(f"_vote_{c}").cast(types[c])).otherwise(F.col(c)).alias(c) for c in present]
    return joined.select("claim_id", *voted, *rest), not few


def medical_claim_header(
    lines: DataFrame,
    *,
    cache: Callable[[DataFrame], DataFrame] = lambda df: df,
    broadcast_votes_up_to: int = VOTE_BROADCAST_LIMIT,
) -> DataFrame:
    """One row per medical claim_id: voted header fields (``HEADER_COLUMNS``), amount totals, line
    count, line dates and ``top_hcpcs_code`` (the HCPCS code of the line paid most; ties go to the
    higher code). The coding columns are ``claim_coding``'s.

    ``lines`` is the typed medical_claim table (contract columns; absent optional columns are fine).
    ``claim_type`` falls back to the Tuva rule when no line states it: institutional if any of bill
    type, DRG, admit type/source or discharge disposition (or a revenue code) is present,
    professional if none is and a place of service is.

    ``cache``: persists a frame that the caller releases once the features are written
    (``BlockContext.cache``). The claim aggregate is cached: the header values, the count of claims
    whose lines disagree and the vote all read it. When no claim's lines disagree (the usual feed)
    the header is a projection of that cached aggregate; when at most ``broadcast_votes_up_to``
    claims do, their vote is cached too and joined by broadcast. Only a feed with more disagreeing
    claims than that pays a shuffle join, and its header is then cached on its own.
    """
    present = [c for c in HEADER_COLUMNS if c in lines.columns]
    aggs = []
    amounts = [c for c in SUMMED_AMOUNTS if c in lines.columns]
    aggs += [exact_sum(c).alias(c) for c in amounts]
    aggs += [F.count(F.lit(1)).alias("line_count")]
    if "revenue_center_code" in lines.columns:
        aggs.append(F.max(F.col("revenue_center_code").isNotNull().cast("int")).alias("_has_revenue_code"))
    if "hcpcs_code" in lines.columns:
        # In this (sort) aggregate it costs one more field; on its own it was a second pass over the lines.
        paid = F.coalesce(F.col("paid_amount"), F.lit(0.0)) if "paid_amount" in lines.columns else F.lit(0.0)
        costliest = F.max(F.when(F.col("hcpcs_code").isNotNull(), F.struct(paid.alias("p"), F.col("hcpcs_code").alias("c"))))
        aggs.append(costliest["c"].alias("top_hcpcs_code"))
    for c in ("claim_line_start_date", "claim_line_end_date"):
        if c in lines.columns:
            aggs.append((F.min if c.endswith("start_date") else F.max)(c).alias(c))
    header, shuffled = _voted(lines, present, aggs, cache=cache, broadcast_votes_up_to=broadcast_votes_up_to)
    cols = [F.col("claim_id"), *present, *amounts, "line_count"]
    cols += [c for c in ("claim_line_start_date", "claim_line_end_date", "top_hcpcs_code") if c in header.columns]
    if "revenue_center_code" in lines.columns:
        cols.append("_has_revenue_code")
    header = _derive_claim_type(header.select(*cols)).drop("_has_revenue_code")
    return cache(header) if shuffled else header


# Claims whose coding is voted (``claim_coding``) are picked from the lines by a broadcast of their
# ids up to this many (~30 bytes each); more (a feed of mostly inpatient claims) take a shuffle join.
CODING_BROADCAST_LIMIT = 1_000_000


def claim_coding(
    lines: DataFrame,
    claims: DataFrame,
    *,
    cache: Callable[[DataFrame], DataFrame] = lambda df: df,
    broadcast_votes_up_to: int = VOTE_BROADCAST_LIMIT,
) -> DataFrame:
    """One row per claim_id of ``claims`` that has lines: the coding columns (``CODING_COLUMNS``
    present in ``lines``), each voted across the claim's lines as the header's fields are. Reads
    only those claims' lines. ``cache`` as for ``medical_claim_header``; ``claims`` is counted once
    to choose between a broadcast and a shuffle join of the ids."""
    present = [c for c in CODING_COLUMNS if c in lines.columns]
    ids = claims.select("claim_id").distinct()
    if not present:
        return ids
    ids = cache(ids)
    picked = F.broadcast(ids) if ids.count() <= CODING_BROADCAST_LIMIT else ids
    subset = lines.select("claim_id", *present).join(picked, "claim_id", "left_semi")
    coding, shuffled = _voted(subset, present, [], cache=cache, broadcast_votes_up_to=broadcast_votes_up_to)
    return cache(coding) if shuffled else coding


def _derive_claim_type(header: DataFrame) -> DataFrame:
    markers = [F.col(c).isNotNull() for c in _INSTITUTIONAL_MARKERS if c in header.columns]
    if "_has_revenue_code" in header.columns:
        markers.append(F.col("_has_revenue_code") == 1)
    institutional = F.lit(False)
    for m in markers:
        institutional = institutional | m
    pos = F.col("place_of_service_code").isNotNull() if "place_of_service_code" in header.columns else F.lit(False)
    derived = F.when(institutional, F.lit("institutional")).when(pos, F.lit("professional"))
    if "claim_type" not in header.columns:
        return header.withColumn("claim_type", derived)
    return header.withColumn("claim_type", F.coalesce(F.lower(F.col("claim_type")), derived))
