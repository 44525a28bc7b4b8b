"""Pharmacy claim features: opioid dose, doctor/pharmacy shopping, early refills, prescriber and
pharmacy patterns (schemes ``opioid_overprescribing``, ``doctor_shopping``, ``pharmacy_shopping``,
``early_refill``, ``prescriber_pharmacy_collusion``).

Output grain: one row per pharmacy claim (claim_id, claim_source='pharmacy'). Features are computed
per dispensed line ("fill") and aggregated to the claim (``mme_per_day`` sums over lines, the
others take the claim's maximum); member windows look back from the fill date.

Drug facts (opioid / benzodiazepine / DEA schedule / MME factor / brand & generic) come from the
shipped drug reference (``features.drug_reference``), joined on the 11-digit NDC.

Member daily MME: every opioid fill is exploded into its days of supply (``days_supply`` capped at
``max_days_supply_days``, default 90), summed per (member, day); the fill date of every claim is
added as a probe day so that range windows (``rangeBetween`` over day numbers, partitioned by member)
give the maximum daily MME and the number of days >= 90 MME in the 90 days ending on each fill date.
Opioid fills are a small share of fills and their supply is bounded, so the exploded frame stays a
small multiple of the opioid fill count; everything is Spark windows/aggregations, nothing on the
driver except one row of "which columns are populated".

Sparse feeds (no prescriber NPI, no pharmacy NPI, no days supply, no quantity) leave dependent
features null and name them in ``ctx.unavailable``.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from claimsentry.exact import exact_avg, exact_sum
from claimsentry.features.drug_reference import load_drug_reference, normalise_ndc

FEATURES: dict[str, str] = {
    "mme_per_day": "this fill's opioid dose, morphine milligram equivalents per day (quantity x strength x CDC factor / days supply)",
    "member_mme_per_day_max_90d": "member's highest daily MME from overlapping opioid supplies in the 90 days up to the fill date",
    "member_days_ge_90mme_90d": "days with >= 90 MME/day for the member in the 90 days up to the fill date",
    "member_opioid_prescribers_90d": "distinct prescribers of the member's opioid fills in the 90 days up to the fill date",
    "member_opioid_pharmacies_90d": "distinct pharmacies dispensing the member's opioid fills in the 90 days up to the fill date",
    "early_refill_share": "share of the previous same-drug fill's supply still left at this fill (0..1)",
    "early_refill_unneeded_share": "on an early refill: share of its supply the member did not need, because the next same-drug fill came before the previous fill's supply ran out (1 = an extra fill inserted into a regular cadence)",
    "pharmacy_early_refill_rate_90d": "on an early refill (>= 25% of the previous supply left): share of the pharmacy's refills in the 90 days up to it that were early too",
    "opioid_benzo_overlap": "1 when this opioid or benzodiazepine fill starts while both an opioid and a benzodiazepine supply are active",
    "controlled_fill": "1 when the drug is a DEA-scheduled (CII-CV) controlled substance",
    "prescriber_opioid_share_vs_peers": "prescriber's share of fills that are opioids / mean share of peer prescribers",
    "prescriber_mean_mme_vs_peers": "prescriber's mean MME/day per opioid fill / median of peer prescribers",
    "prescriber_new_patient_rate": "share of the prescriber's fills that are a patient's first fill from this prescriber",
    "pharmacy_top_prescriber_share": "share of the pharmacy's controlled-substance fills written by its most frequent prescriber (controlled fills only)",
    "brand_when_generic": "1 when a brand product was dispensed although a generic of the same ingredient, strength and form exists",
    "cost_per_unit_to_peer_median": "paid per unit / median paid per unit of fills of the same NDC (else same ingredient, strength and form)",
}
CONTEXT_COLUMNS: tuple[str, ...] = (
    "drug_name",
    "prescriber_opioid_share",
    "peer_opioid_share",
    "prescriber_mean_mme_per_day",
    "peer_mean_mme_per_day",
    "pharmacy_top_prescriber_npi",
    "pharmacy_controlled_fills",
    "cost_per_unit",
    "peer_cost_per_unit",
)

# Which features each input column feeds: when the column is null on every row the features stay null.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "days_supply": (
        "mme_per_day", "member_mme_per_day_max_90d", "member_days_ge_90mme_90d", "early_refill_share",
        "early_refill_unneeded_share", "opioid_benzo_overlap", "prescriber_mean_mme_vs_peers", "pharmacy_early_refill_rate_90d",
    ),
    "quantity": (
        "mme_per_day", "member_mme_per_day_max_90d", "member_days_ge_90mme_90d", "prescriber_mean_mme_vs_peers",
        "cost_per_unit_to_peer_median",
    ),
    "prescribing_provider_npi": (
        "member_opioid_prescribers_90d", "prescriber_opioid_share_vs_peers", "prescriber_mean_mme_vs_peers",
        "prescriber_new_patient_rate", "pharmacy_top_prescriber_share",
    ),
    "dispensing_provider_npi": ("member_opioid_pharmacies_90d", "pharmacy_top_prescriber_share", "pharmacy_early_refill_rate_90d"),
}

HIGH_MME_PER_DAY = 90.0  # CDC 2016/2022 guideline: avoid or carefully justify >= 90 MME/day


def populated_columns(df: DataFrame, columns: list[str]) -> set[str]:
    """Columns of ``df`` holding at least one non-null value (one aggregate row to the driver)."""
    present = [c for c in columns if c in df.columns]
    if not present:
        return set()
    row = df.agg(*[F.max(F.col(c).isNotNull().cast("int")).alias(c) for c in present]).first()
    return {c for c in present if row is not None and row[c] == 1}


def unavailable_features(populated: set[str]) -> list[str]:
    """Features that cannot be computed when the columns outside ``populated`` are all null."""
    out: list[str] = []
    for column, feats in DEPENDS_ON.items():
        if column not in populated:
            out += [f for f in feats if f not in out]
    return out


def prepare_fills(rx: DataFrame, drug_ref: DataFrame, *, max_days_supply_days: int = 90) -> DataFrame:
    """One row per pharmacy claim line (fill) with the drug facts and day numbers.

    Columns: claim_id, person_id, prescriber_npi, pharmacy_npi, fill_date, day (days since
    1970-01-01), days_supply_days (> 0, capped), end_day (last day of supply), quantity,
    paid_amount, ndc_11, drug_key (ingredient name, else NDC), drug_name, product_group,
    is_opioid, is_benzo, is_controlled (0/1), is_brand, generic_available, mme_per_day.
    """
    ds = F.col("days_supply").cast("double")
    days = F.when(ds > 0, F.least(ds, F.lit(float(max_days_supply_days))))
    fills = rx.select(
        "claim_id",
        "person_id",
        F.col("prescribing_provider_npi").alias("prescriber_npi"),
        F.col("dispensing_provider_npi").alias("pharmacy_npi"),
        F.col("dispensing_date").alias("fill_date"),
        F.unix_date("dispensing_date").alias("day"),
        days.alias("days_supply_days"),
        F.when(F.col("quantity") > 0, F.col("quantity").cast("double")).alias("quantity"),
        F.col("paid_amount").cast("double").alias("paid_amount"),
        normalise_ndc("ndc_code").alias("ndc_11"),
    ).join(F.broadcast(drug_ref), "ndc_11", "left")
    mme = F.col("quantity") * F.col("strength_per_unit") * F.col("mme_conversion_factor") / F.col("days_supply_days")
    return fills.select(
        "claim_id",
        "person_id",
        "prescriber_npi",
        "pharmacy_npi",
        "fill_date",
        "day",
        "days_supply_days",
        (F.col("day") + F.col("days_supply_days").cast("int") - 1).alias("end_day"),
        "quantity",
        "paid_amount",
        "ndc_11",
        F.coalesce("generic_name", "ndc_11").alias("drug_key"),
        F.col("generic_name").alias("drug_name"),
        "product_group",
        F.coalesce("is_opioid", F.lit(0)).alias("is_opioid"),
        F.coalesce("is_benzodiazepine", F.lit(0)).alias("is_benzo"),
        F.col("dea_schedule").isNotNull().cast("int").alias("is_controlled"),
        "is_brand",
        "generic_available",
        F.when(F.col("is_opioid") == 1, mme).alias("mme_per_day"),
    )


def member_mme_windows(fills: DataFrame, *, window_days: int = 90, high_mme: float = HIGH_MME_PER_DAY) -> DataFrame:
    """One row per (person_id, day) of a fill: max daily MME and days >= ``high_mme`` in the
    ``window_days`` days ending that day, from all the member's overlapping opioid supplies."""
    supply_days = fills.where(F.col("mme_per_day").isNotNull() & F.col("end_day").isNotNull()).select(
        "person_id", F.explode(F.sequence("day", "end_day")).alias("day"), "mme_per_day"
    )
    daily = supply_days.groupBy("person_id", "day").agg(exact_sum("mme_per_day").alias("daily_mme"))
    probes = fills.select("person_id", "day").distinct().withColumn("daily_mme", F.lit(None).cast("double"))
    series = daily.unionByName(probes).groupBy("person_id", "day").agg(F.max("daily_mme").alias("daily_mme"))
    w = Window.partitionBy("person_id").orderBy("day").rangeBetween(-(window_days - 1), 0)
    return series.select(
        "person_id",
        "day",
        F.coalesce(F.max("daily_mme").over(w), F.lit(0.0)).alias("member_mme_per_day_max_90d"),
        F.sum(F.when(F.col("daily_mme") >= high_mme, 1.0).otherwise(0.0)).over(w).alias("member_days_ge_90mme_90d"),
    )


def member_fill_features(fills: DataFrame, *, window_days: int = 90) -> DataFrame:
    """Per fill (fills' columns kept): distinct opioid prescribers/pharmacies in the window,
    early refill share against the previous same-drug fill, opioid + benzodiazepine overlap.

    ``early_refill_unneeded_share`` tells an inserted fill from the regular fill after it: both
    come with half a supply left (``early_refill_share`` 0.5 each), but only the inserted one was
    not needed — the previous fill's supply lasted until the next fill came. It looks one fill
    ahead, so it is null on a member's latest fill of the drug until the next one arrives."""
    w_recent = Window.partitionBy("person_id").orderBy("day").rangeBetween(-(window_days - 1), 0)
    w_all = Window.partitionBy("person_id").orderBy("day").rangeBetween(Window.unboundedPreceding, 0)
    w_drug = Window.partitionBy("person_id", "drug_key").orderBy("day", "claim_id")
    opioid = F.col("is_opioid") == 1
    benzo = F.col("is_benzo") == 1
    prev_day, prev_ds = F.lag("day").over(w_drug), F.lag("days_supply_days").over(w_drug)
    left_days = F.greatest(prev_day + prev_ds - F.col("day"), F.lit(0.0))
    early_share = F.when(prev_ds > 0, left_days / prev_ds)
    # days this fill had to bridge: from the end of the previous supply to the next fill
    needed_days = F.lead("day").over(w_drug) - (prev_day + prev_ds)  # null: no next fill (yet)
    # greatest/least skip nulls: guard them, or a missing next fill would read as "not needed"
    needed_share = F.when(needed_days.isNotNull(), F.least(F.greatest(needed_days / F.col("days_supply_days"), F.lit(0.0)), F.lit(1.0)))
    opioid_until = F.max(F.when(opioid, F.col("end_day"))).over(w_all)
    benzo_until = F.max(F.when(benzo, F.col("end_day"))).over(w_all)
    both_active = (opioid_until >= F.col("day")) & (benzo_until >= F.col("day"))
    return fills.select(
        "*",
        F.size(F.collect_set(F.when(opioid, F.col("prescriber_npi"))).over(w_recent)).cast("double").alias(
            "member_opioid_prescribers_90d"
        ),
        F.size(F.collect_set(F.when(opioid, F.col("pharmacy_npi"))).over(w_recent)).cast("double").alias(
            "member_opioid_pharmacies_90d"
        ),
        early_share.alias("early_refill_share"),
        F.when(early_share.isNull(), F.lit(None).cast("double"))
        .when(early_share < EARLY_REFILL_SHARE, 0.0)
        .when(F.col("days_supply_days") > 0, 1.0 - needed_share)
        .alias("early_refill_unneeded_share"),
        F.when(F.col("end_day").isNull(), F.lit(None).cast("double"))
        .when((opioid | benzo) & F.coalesce(both_active, F.lit(False)), 1.0)
        .otherwise(0.0)
        .alias("opioid_benzo_overlap"),
    )


def prescriber_features(fills: DataFrame, *, min_prescriber_fills: int = 10, min_prescriber_opioid_fills: int = 3) -> DataFrame:
    """One row per prescriber_npi: opioid share and mean MME against peer prescribers, new-patient rate.

    Peers are all prescribers with at least ``min_prescriber_fills`` fills (the contract carries no
    specialty); opioid share is compared with the peers' mean share (most prescribers write no
    opioids, so the median would be 0) and mean MME with the median of prescribers having at least
    ``min_prescriber_opioid_fills`` opioid fills. Values are null below those volumes.
    """
    per = fills.where(F.col("prescriber_npi").isNotNull()).groupBy("prescriber_npi").agg(
        F.count(F.lit(1)).alias("_fills"),
        F.sum("is_opioid").alias("_opioid_fills"),
        exact_avg("mme_per_day").alias("_mean_mme"),
        F.count("mme_per_day").alias("_mme_fills"),
        F.countDistinct("person_id").alias("_patients"),
    )
    eligible = F.col("_fills") >= min_prescriber_fills
    per = per.withColumn("prescriber_opioid_share", F.when(eligible, F.col("_opioid_fills") / F.col("_fills")))
    per = per.withColumn(
        "prescriber_mean_mme_per_day", F.when(F.col("_mme_fills") >= min_prescriber_opioid_fills, F.col("_mean_mme"))
    )
    peers = per.agg(
        exact_avg("prescriber_opioid_share").alias("peer_opioid_share"),
        F.percentile_approx("prescriber_mean_mme_per_day", 0.5, 10000).alias("peer_mean_mme_per_day"),
    )
    return per.crossJoin(F.broadcast(peers)).select(
        "prescriber_npi",
        "prescriber_opioid_share",
        "peer_opioid_share",
        "prescriber_mean_mme_per_day",
        "peer_mean_mme_per_day",
        F.when(F.col("peer_opioid_share") > 0, F.col("prescriber_opioid_share") / F.col("peer_opioid_share")).alias(
            "prescriber_opioid_share_vs_peers"
        ),
        F.when(F.col("peer_mean_mme_per_day") > 0, F.col("prescriber_mean_mme_per_day") / F.col("peer_mean_mme_per_day")).alias(
            "prescriber_mean_mme_vs_peers"
        ),
        F.when(eligible, F.col("_patients") / F.col("_fills")).alias("prescriber_new_patient_rate"),
    )


EARLY_REFILL_SHARE = 0.25  # a refill with at least this share of the previous supply left is early


def pharmacy_early_refills(fills: DataFrame, *, window_days: int = 90) -> DataFrame:
    """Per fill (claim_id, pharmacy_npi): ``pharmacy_early_refill_rate_90d``, the share of the
    pharmacy's refills (fills with a previous same-drug fill) in the ``window_days`` up to this
    fill that were early; set on early refills only, so the pharmacy's pattern weighs on the fills
    that show it. Trailing window: a pharmacy that starts refilling early shows at once."""
    refills = fills.where(F.col("early_refill_share").isNotNull() & F.col("pharmacy_npi").isNotNull())
    w = Window.partitionBy("pharmacy_npi").orderBy("day").rangeBetween(-(window_days - 1), 0)
    early = (F.col("early_refill_share") >= EARLY_REFILL_SHARE).cast("double")
    rate = F.sum(early).over(w) / F.count(F.lit(1)).over(w)
    return refills.select(
        "claim_id", F.when(early == 1.0, rate).alias("pharmacy_early_refill_rate_90d")
    ).groupBy("claim_id").agg(F.max("pharmacy_early_refill_rate_90d").alias("pharmacy_early_refill_rate_90d"))


def pharmacy_concentration(fills: DataFrame, *, min_pharmacy_controlled_fills: int = 10) -> DataFrame:
    """One row per pharmacy_npi with at least ``min_pharmacy_controlled_fills`` controlled fills
    naming a prescriber: the share written by its most frequent prescriber, and who that is."""
    pairs = (
        fills.where((F.col("is_controlled") == 1) & F.col("pharmacy_npi").isNotNull() & F.col("prescriber_npi").isNotNull())
        .groupBy("pharmacy_npi", "prescriber_npi")
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    per = pairs.groupBy("pharmacy_npi").agg(
        F.sum("_n").alias("_total"),
        F.max_by("prescriber_npi", F.struct("_n", "prescriber_npi")).alias("pharmacy_top_prescriber_npi"),
        F.max("_n").alias("_top"),
    )
    return per.where(F.col("_total") >= min_pharmacy_controlled_fills).select(
        "pharmacy_npi",
        "pharmacy_top_prescriber_npi",
        F.col("_total").cast("double").alias("pharmacy_controlled_fills"),
        (F.col("_top") / F.col("_total")).alias("pharmacy_top_prescriber_share"),
    )


def unit_cost_features(fills: DataFrame, *, min_peer_fills: int = 5) -> DataFrame:
    """Per fill (claim_id, ndc_11, ...): paid per unit against the median of the same NDC, else of
    the same product group (ingredient, strength, form), each needing ``min_peer_fills`` fills."""
    priced = fills.withColumn("cost_per_unit", F.col("paid_amount") / F.col("quantity"))
    by_ndc = priced.where(F.col("cost_per_unit").isNotNull()).groupBy("ndc_11").agg(
        F.count(F.lit(1)).alias("_n_ndc"), F.percentile_approx("cost_per_unit", 0.5, 10000).alias("_med_ndc")
    )
    by_group = priced.where(F.col("cost_per_unit").isNotNull() & F.col("product_group").isNotNull()).groupBy(
        "product_group"
    ).agg(F.count(F.lit(1)).alias("_n_grp"), F.percentile_approx("cost_per_unit", 0.5, 10000).alias("_med_grp"))
    peer = F.when(F.col("_n_ndc") >= min_peer_fills, F.col("_med_ndc")).when(
        F.col("_n_grp") >= min_peer_fills, F.col("_med_grp")
    )
    out = (
        priced.join(F.broadcast(by_ndc), "ndc_11", "left")
        .join(F.broadcast(by_group), "product_group", "left")
        .withColumn("peer_cost_per_unit", peer)
    )
    return out.withColumn(
        "cost_per_unit_to_peer_median",
        F.when(F.col("peer_cost_per_unit") > 0, F.col("cost_per_unit") / F.col("peer_cost_per_unit")),
    )


def pharmacy_features(
    rx: DataFrame,
    drug_ref: DataFrame,
    *,
    unavailable: list[str] | tuple[str, ...] = (),
    window_days: int = 90,
    max_days_supply_days: int = 90,
    min_prescriber_fills: int = 10,
    min_prescriber_opioid_fills: int = 3,
    min_pharmacy_controlled_fills: int = 10,
    min_peer_fills: int = 5,
    cache=lambda df: df,
) -> DataFrame:
    """One row per pharmacy claim_id (claim_source 'pharmacy'): ``FEATURES`` (doubles; those in
    ``unavailable`` all null) and ``CONTEXT_COLUMNS`` for reasons. ``rx`` is the typed
    pharmacy_claim table (line grain). ``cache``: persists the fill-grain frames that the member,
    prescriber and pharmacy aggregates each read (``BlockContext.cache``)."""
    fills = prepare_fills(rx, drug_ref, max_days_supply_days=max_days_supply_days)
    fills = cache(member_fill_features(fills, window_days=window_days))
    fills = fills.join(member_mme_windows(fills, window_days=window_days), ["person_id", "day"], "left")
    fills = cache(unit_cost_features(fills, min_peer_fills=min_peer_fills))
    fills = fills.join(
        F.broadcast(prescriber_features(
            fills, min_prescriber_fills=min_prescriber_fills, min_prescriber_opioid_fills=min_prescriber_opioid_fills
        )),
        "prescriber_npi",
        "left",
    )
    fills = fills.join(pharmacy_early_refills(fills, window_days=window_days), "claim_id", "left")
    conc = pharmacy_concentration(fills, min_pharmacy_controlled_fills=min_pharmacy_controlled_fills)
    fills = fills.join(F.broadcast(conc), "pharmacy_npi", "left").withColumn(
        "pharmacy_top_prescriber_share",
        F.when(F.col("is_controlled") == 1, F.col("pharmacy_top_prescriber_share")),
    )
    fills = fills.withColumn(
        "brand_when_generic",
        F.when(F.col("is_brand").isNotNull(), ((F.col("is_brand") == 1) & (F.col("generic_available") == 1)).cast("double")),
    ).withColumn("controlled_fill", F.when(F.col("drug_name").isNotNull(), F.col("is_controlled").cast("double")))

    summed = {"mme_per_day"}
    aggs = [
        (exact_sum if f in summed else F.max)(F.col(f).cast("double")).alias(f)
        for f in FEATURES
    ]
    aggs += [F.min("drug_name").alias("drug_name")]
    aggs += [F.max(c).alias(c) for c in CONTEXT_COLUMNS if c != "drug_name"]
    claims = fills.groupBy("claim_id").agg(*aggs)
    return claims.select(
        "claim_id",
        F.lit("pharmacy").alias("claim_source"),
        *[(F.lit(None).cast("double") if f in unavailable else F.col(f)).alias(f) for f in FEATURES],
        *CONTEXT_COLUMNS,
    )


def build(ctx) -> tuple[DataFrame | None, dict[str, str]]:
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    rx = ctx.tables.get("pharmacy_claim")
    if rx is None:  # medical-only feed: same columns (rules' reasons read the context ones), all null
        from claimsentry.schemas import PHARMACY_CLAIM

        rx = ctx.spark.createDataFrame([], PHARMACY_CLAIM.schema)
        missing = list(FEATURES)
    else:
        missing = unavailable_features(populated_columns(rx, list(DEPENDS_ON)))
    ctx.unavailable.extend(f for f in missing if f not in ctx.unavailable)
    frame = pharmacy_features(
        rx,
        load_drug_reference(ctx.spark),
        unavailable=missing,
        window_days=int(ctx.param("rx_window_days", 90)),
        max_days_supply_days=int(ctx.param("max_days_supply_days", 90)),
        min_prescriber_fills=int(ctx.param("min_prescriber_fills", 10)),
        min_prescriber_opioid_fills=int(ctx.param("min_prescriber_opioid_fills", 3)),
        min_pharmacy_controlled_fills=int(ctx.param("min_pharmacy_controlled_fills", 10)),
        min_peer_fills=int(ctx.param("min_peer_claims", 5)),
        cache=ctx.cache,
    )
    return frame, FEATURES
